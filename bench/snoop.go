package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tracefsPath is where the harness mounts tracefs when nothing has: libbpf
// finds a tracepoint's id there, and libbpf-tools attach tracepoints.
const tracefsPath = "/sys/kernel/tracing"

// snoopTools is condition 5: libbpf-tools, one per workload, printing to a
// file while that workload's slices run.
type snoopTools struct {
	paths   map[string]string // tool → binary
	missing map[string]string // tool → why it cannot run
	mounted bool              // the harness mounted tracefs
	Version string
}

// setupSnoop finds the tools and makes sure tracefs is mounted.
func setupSnoop(ctx context.Context) (*snoopTools, error) {
	t := &snoopTools{paths: map[string]string{}, missing: map[string]string{}}
	for _, tool := range []string{"opensnoop", "execsnoop", "tcpconnect"} {
		if p, err := findProgram(tool); err == nil {
			t.paths[tool] = p
		} else {
			t.missing[tool] = err.Error()
		}
	}
	if len(t.paths) == 0 {
		return nil, errors.New("libbpf-tools is not installed (no opensnoop, execsnoop, tcpconnect)")
	}
	if out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f", "${Version}", "libbpf-tools").Output(); err == nil {
		t.Version = "libbpf-tools " + string(out)
	}
	if !tracefsMounted() {
		if err := unix.Mount("nodev", tracefsPath, "tracefs", 0, ""); err != nil {
			return nil, fmt.Errorf("libbpf-tools attach tracepoints, which need tracefs; mounting it at %s: %w", tracefsPath, err)
		}
		t.mounted = true
	}
	// tcpconnect attaches kprobes; a kernel without them has no kprobe PMU.
	if _, err := os.Stat("/sys/bus/event_source/devices/kprobe"); err != nil && t.paths["tcpconnect"] != "" {
		delete(t.paths, "tcpconnect")
		t.missing["tcpconnect"] = "tcpconnect (the libbpf-tools program for connect) attaches kprobes, and this kernel has no kprobe support (CONFIG_KPROBES is off)"
	}
	return t, nil
}

func tracefsMounted() bool {
	for _, p := range []string{tracefsPath, "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(filepath.Join(p, "events")); err == nil {
			return true
		}
	}
	return false
}

// close unmounts tracefs if the harness mounted it.
func (t *snoopTools) close() error {
	if !t.mounted {
		return nil
	}
	t.mounted = false
	if err := unix.Unmount(tracefsPath, 0); err != nil {
		// Busy: someone opened it meanwhile. It goes when they are done.
		return unix.Unmount(tracefsPath, unix.MNT_DETACH)
	}
	return nil
}

// snoopRun is one tool traced one slice.
type snoopRun struct {
	cmd             *exec.Cmd
	tool            string
	out, errPath    string
	workloadPid     int // 0: count every line
	outFile, errOut *os.File
}

// canTrace reports whether libbpf-tools have every program w needs.
func (t *snoopTools) canTrace(w *workload) bool {
	return t.whyNot(w) == ""
}

// whyNot is why libbpf-tools cannot trace w, "" if they can.
func (t *snoopTools) whyNot(w *workload) string {
	if w.NoSnoop != "" {
		return w.NoSnoop
	}
	for _, tool := range w.snoopTools() {
		if t.paths[tool] == "" {
			return t.missing[tool]
		}
	}
	return ""
}

// startFor starts the tools that trace w's process pid, in cgroup. A
// process tree (a real-work command) gets execsnoop filtered by its cgroup
// and opensnoop for the whole host: opensnoop filters by pid, thread, uid
// or name, none of which follows a tree. Its lines are then counted whole.
func (t *snoopTools) startFor(ctx context.Context, w *workload, pid int, cgroup, dir string) ([]*snoopRun, error) {
	var runs []*snoopRun
	for _, tool := range w.snoopTools() {
		r, err := t.start(ctx, tool, pid, cgroup, dir, w.Tree)
		if err != nil {
			for _, r := range runs {
				r.stop()
			}
			return nil, err
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// start starts tool for the workload pid (in cgroup, for execsnoop, which
// cannot filter by pid: the children it must see have other pids) and
// waits until it is polling its perf buffer, so nothing of the slice is
// missed.
func (t *snoopTools) start(ctx context.Context, tool string, pid int, cgroup, dir string, tree bool) (*snoopRun, error) {
	bin := t.paths[tool]
	if bin == "" {
		return nil, errors.New(t.missing[tool])
	}
	r := &snoopRun{tool: tool, workloadPid: pid,
		out: filepath.Join(dir, fmt.Sprintf("%s-%d.out", tool, pid)), errPath: filepath.Join(dir, fmt.Sprintf("%s-%d.err", tool, pid))}
	args := []string{"-p", strconv.Itoa(pid)}
	switch {
	case tool == "execsnoop":
		args = []string{"-c", cgroup}
	case tree:
		args = nil
	}
	if tree {
		r.workloadPid = 0
	}
	var err error
	if r.outFile, err = os.Create(r.out); err != nil {
		return nil, err
	}
	if r.errOut, err = os.Create(r.errPath); err != nil {
		r.outFile.Close()
		return nil, err
	}
	r.cmd = exec.CommandContext(ctx, bin, args...)
	r.cmd.Stdout, r.cmd.Stderr = r.outFile, r.errOut
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	if err := r.cmd.Start(); err != nil {
		r.close()
		return nil, fmt.Errorf("starting %s: %w", tool, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !pollingPerfBuffer(r.cmd.Process.Pid) {
		if processGone(r.cmd.Process.Pid) != nil || time.Now().After(deadline) || ctx.Err() != nil {
			r.cmd.Process.Kill()
			r.cmd.Wait()
			r.close()
			msg, _ := os.ReadFile(r.errPath)
			return nil, fmt.Errorf("%s did not start: %s", tool, strings.TrimSpace(string(msg)))
		}
		time.Sleep(5 * time.Millisecond)
	}
	return r, nil
}

// pollingPerfBuffer reports whether a libbpf-tools program is in its event
// loop: libbpf creates the perf buffer's epoll instance after attaching, and
// the program then waits in epoll_wait.
func pollingPerfBuffer(pid int) bool {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	epoll := false
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && l == "anon_inode:[eventpoll]" {
			epoll = true
		}
	}
	wchan, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", pid))
	return epoll && strings.Contains(string(wchan), "epoll")
}

func (r *snoopRun) close() {
	r.outFile.Close()
	r.errOut.Close()
}

var lostRe = regexp.MustCompile(`Lost (\d+) events`)

// stop lets the tool print what its perf buffer still holds, stops it
// (SIGINT, as a user would) and counts its lines for the workload and the
// events it says it lost. cpu is the tool's CPU time until then.
func (r *snoopRun) stop() (written, lost int64, cpu time.Duration, err error) {
	// It polls every 100 ms: give it three rounds to empty the buffer.
	time.Sleep(300 * time.Millisecond)
	cpu = processCPU(r.cmd.Process.Pid)
	stopProcess(r.cmd, syscall.SIGINT)
	r.close()
	// The column holding the pid the line is counted by: the workload's own
	// pid, or, for execsnoop, the parent pid of the exec'ing child.
	col, want := 0, strconv.Itoa(r.workloadPid)
	if r.tool == "execsnoop" {
		col = 2
	}
	f, err := os.Open(r.out)
	if err != nil {
		return 0, 0, cpu, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for first := true; s.Scan(); first = false {
		f := strings.Fields(s.Text())
		if r.workloadPid == 0 && !first || len(f) > col && f[col] == want {
			written++
		}
	}
	if err := s.Err(); err != nil {
		return 0, 0, cpu, err
	}
	stderr, err := os.ReadFile(r.errPath)
	if err != nil {
		return 0, 0, cpu, err
	}
	for _, m := range lostRe.FindAllStringSubmatch(string(stderr), -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		lost += n
	}
	os.Remove(r.out)
	os.Remove(r.errPath)
	return written, lost, cpu, nil
}
