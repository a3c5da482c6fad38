package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/agenttrace/agenttrace/internal/cgroup"
)

// hostDaemon is condition 6: `agenttrace daemon`, the production mode, with
// a configuration the harness wrote. Its kernel filter differs from
// `agenttrace run`'s: glob targets, decided per cgroup id and cached per CPU,
// instead of a cgroup array the task is checked against. Every process on a
// host that is not an agent pays that filter, so the workload runs in the
// harness's untraced cgroup while the daemon traces a cgroup of its own.
type hostDaemon struct {
	bin     string
	dir     string // 0700: configuration, key, log, state, the daemon's stderr
	cfgPath string
	logDir  string
	opLog   string // the daemon's operational log (its stderr), every start appended
	pattern string
	target  *cgroup.Cgroup // the one cgroup the pattern matches, empty
}

// setupDaemon writes the daemon's configuration and signing key into dir
// and creates the cgroup it traces, below parent (relative to mount).
func setupDaemon(ctx context.Context, bin, dir, mount, parent string) (*hostDaemon, error) {
	d := &hostDaemon{bin: bin, dir: dir, logDir: filepath.Join(dir, "log"), opLog: filepath.Join(dir, "daemon.log")}
	// The daemon refuses a configuration or key that others could have
	// written, along the whole path.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	keys := filepath.Join(dir, "keys")
	if out, err := exec.CommandContext(ctx, bin, "keygen", "--out", keys).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("agenttrace keygen: %w: %s", err, lastLines(string(out), 3))
	}
	// Its own prefix per harness: another harness's target is not this one's.
	prefix := fmt.Sprintf("daemon-%d-", os.Getpid())
	d.pattern = parent + "/" + prefix + "*"
	target, err := cgroup.Create(mount, parent+"/"+prefix+"agents")
	if err != nil {
		return nil, err
	}
	d.target = target
	// Production defaults (ring, checkpoints, heartbeat, fsync) except what
	// would reach outside the scratch directory: the log, the state, the
	// key, and the metrics endpoint, which is off.
	config := fmt.Sprintf(`# Written by the agenttrace benchmark harness (bench/daemon.go).
targets:
  - %q
log:
  dir: %q
signing_key: %q
state_dir: %q
metrics:
  listen: ""
`, d.pattern, d.logDir, filepath.Join(keys, "signing.key"), filepath.Join(dir, "state"))
	d.cfgPath = filepath.Join(dir, "agenttrace.yaml")
	if err := os.WriteFile(d.cfgPath, []byte(config), 0o600); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// close removes the target cgroup.
func (d *hostDaemon) close() error {
	if d.target == nil {
		return nil
	}
	return d.target.Remove()
}

// logPath is the audit log's first segment (rotation is off).
func (d *hostDaemon) logPath() string { return filepath.Join(d.logDir, "audit.jsonl") }

// endLog makes room for the next start's log: each run of the daemon
// writes a log of its own, read once. keep moves it aside as name instead.
func (d *hostDaemon) endLog(keep bool, name string) error {
	if keep {
		return os.Rename(d.logDir, filepath.Join(d.dir, "log-"+name))
	}
	return os.RemoveAll(d.logDir)
}

// daemonRun is one running `agenttrace daemon`.
type daemonRun struct {
	cmd   *exec.Cmd
	opLog string
	from  int64 // where its lines start in opLog
}

// start starts the daemon and waits until it logs "tracing": by then its
// programs are attached and the target cgroup is traced.
func (d *hostDaemon) start(ctx context.Context) (*daemonRun, error) {
	opLog, err := os.OpenFile(d.opLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer opLog.Close()
	st, err := opLog.Stat()
	if err != nil {
		return nil, err
	}
	r := &daemonRun{opLog: d.opLog, from: st.Size()}
	r.cmd = exec.CommandContext(ctx, d.bin, "daemon", "--config", d.cfgPath)
	r.cmd.Stderr = opLog
	// Stopped by SIGUSR1, what `agenttrace daemon stop` sends: it detaches
	// and releases its pinned kernel side, drains, writes its stop record
	// and exits 0 (SIGTERM would leave the kernel side recording for a next
	// daemon). If the harness dies, the daemon ends the same way instead of
	// staying loaded on the host.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGUSR1}
	r.cmd.Cancel = func() error { return r.cmd.Process.Signal(syscall.SIGUSR1) }
	r.cmd.WaitDelay = time.Minute
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting agenttrace daemon: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		tracing, err := r.logged("tracing")
		if err != nil {
			r.kill()
			return nil, err
		}
		if tracing != nil {
			// The pattern matches the harness's one target cgroup: a daemon
			// that traced nothing would measure a filter with no state.
			if n, _ := tracing["traced_cgroups"].(float64); n != 1 {
				r.kill()
				return nil, fmt.Errorf("agenttrace daemon traces %v cgroups, want 1 (pattern %s)", tracing["traced_cgroups"], d.pattern)
			}
			return r, nil
		}
		if processGone(r.cmd.Process.Pid) != nil || time.Now().After(deadline) || ctx.Err() != nil {
			r.kill()
			return nil, fmt.Errorf("agenttrace daemon did not start tracing: %s", r.tail())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logged returns the first line of this run's operational log with
// message msg, nil if there is none yet.
func (r *daemonRun) logged(msg string) (map[string]any, error) {
	data, err := os.ReadFile(r.opLog)
	if err != nil {
		return nil, err
	}
	for line := range bytes.SplitSeq(data[min(r.from, int64(len(data))):], []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["message"] == msg {
			return m, nil
		}
	}
	return nil, nil
}

// tail is the end of this run's operational log, for error messages.
func (r *daemonRun) tail() string {
	data, _ := os.ReadFile(r.opLog)
	return lastLines(string(data[min(r.from, int64(len(data))):]), 5)
}

func (r *daemonRun) Pid() int { return r.cmd.Process.Pid }

func (r *daemonRun) kill() {
	r.cmd.Process.Signal(syscall.SIGUSR1)
	r.cmd.Wait()
}

// stop sends SIGUSR1 (release), waits for a clean exit and for the kernel
// to free the daemon's programs.
func (r *daemonRun) stop() error {
	r.cmd.Process.Signal(syscall.SIGUSR1)
	if err := r.cmd.Wait(); err != nil {
		return fmt.Errorf("agenttrace daemon: %w: %s", err, r.tail())
	}
	awaitUnloaded()
	return nil
}

// daemonUnit runs condition 6 for one workload: the daemon is started for
// the slice and stopped after it, like the `agenttrace run` session of
// conditions 2 and 3 and unlike a daemon left running for the whole
// benchmark. Loaded, its sys_enter and sys_exit programs run for every
// syscall on the host, so a daemon kept running would add its filter to
// every other condition, no tracer included, and shrink every ratio (a
// stopped process's programs stay attached, so SIGSTOP would not help);
// and it must never be loaded together with the `agenttrace run` session,
// or condition 3's slices would pay both filters. The price is one daemon
// start per workload and round. A failure of the daemon stops this
// condition, not the run.
func (h *harness) daemonUnit(ctx context.Context, run sliceRun) error {
	daemon, err := h.daemon.start(ctx)
	if err != nil {
		h.stopCondition(CondDaemonUntraced, err)
		return ctx.Err()
	}
	run.Cond, run.Daemon = CondDaemonUntraced, daemon
	s, err := h.slice(ctx, run)
	if err != nil {
		daemon.kill()
		return err
	}
	if err := daemon.stop(); err != nil {
		h.stopCondition(CondDaemonUntraced, err)
		return ctx.Err()
	}
	ev, err := h.daemonEvents(s.Pid)
	if err == nil {
		err = h.daemon.endLog(h.cfg.Keep, fmt.Sprintf("r%d-%s", run.Round, run.Workload.Name))
	}
	if err != nil {
		h.stopCondition(CondDaemonUntraced, err)
		return ctx.Err()
	}
	s.Events = ev
	return nil
}

// daemonEvents reads what the daemon's log holds of the workload pid and
// its children (nothing, if the filter is right) and what it lost.
func (h *harness) daemonEvents(pid int) (*SliceEvents, error) {
	l, err := parseSessionLog(h.daemon.logPath(), map[int]string{pid: CondDaemonUntraced})
	if err != nil {
		return nil, fmt.Errorf("reading agenttrace daemon's log: %w", err)
	}
	if !l.HasStop {
		return nil, fmt.Errorf("agenttrace daemon's log %s has no stop record", h.daemon.logPath())
	}
	ev := &SliceEvents{ByType: l.ByKey[CondDaemonUntraced], Lost: l.LostTotal()}
	for _, n := range ev.ByType {
		ev.Written += n
	}
	return ev, nil
}

// daemonDetail describes condition 6 for the report.
func (d *hostDaemon) detail() string {
	return strings.Join([]string{
		"agenttrace daemon with the defaults of docs/config.md (16 MiB ring, checkpoints every 10,000 records or 10 s, heartbeat 10 s) " +
			"but no metrics endpoint, its configuration, key and log in the scratch directory",
		fmt.Sprintf("target pattern %s, matching one empty cgroup of the harness; the workload runs in the harness's untraced cgroup, "+
			"a sibling of that cgroup", d.pattern),
		"started for each of its slices and stopped (SIGUSR1: drained, its kernel side released) after, so that no other condition pays its filter",
	}, "; ")
}
