package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/agenttrace/agenttrace/internal/cgroup"
)

// Config is one run of the harness.
type Config struct {
	Rounds     int           // measured rounds; one warm-up round runs first
	Slice      time.Duration // how long one workload slice runs
	MaxOps     int64         // cap on operations per slice (0: none)
	Workloads  []string      // nil: all
	Conditions []string      // nil: all
	// Install runs apt-get install auditd libbpf-tools when they are missing.
	Install bool
	// RateTrial is how long each trial of the sustained-rate search runs;
	// 0 skips the search.
	RateTrial time.Duration
	// Profile runs one slice per workload with BPF statistics on.
	Profile bool
	// GoBenchCount is -count for the Go benchmarks; 0 skips them.
	GoBenchCount int
	// Sustained is how long the openat workload runs without a pause under
	// each condition, SustainedRounds times; 0 skips the sustained load.
	Sustained       time.Duration
	SustainedRounds int
	// SustainedProfile profiles agenttrace over one more sustained slice:
	// its eBPF programs' run time and its user space (pprof).
	SustainedProfile bool
	// PprofOut keeps the sustained profile's CPU profile of agenttrace
	// there ("": not kept).
	PprofOut string
	// RealWork are the real-work jobs (nil: all), run RealWorkRounds
	// times after a warm-up round; 0 rounds skips them.
	RealWork       []string
	RealWorkRounds int
	CFiles         int      // source files of the C project
	SearchDirs     []string // trees the file search reads (nil: GOROOT/src and the module cache)
	Go             string   // the go command
	Agenttrace     string   // an agenttrace binary; "" builds ./cmd/agenttrace
	WorkDir        string   // scratch space; "" makes (and removes) one
	Keep           bool     // keep the scratch space and logs
	Command        string   // the command line the report names
	Progress       io.Writer
}

// DefaultConfig is what `make bench` runs.
func DefaultConfig() Config {
	return Config{Rounds: 19, Slice: 200 * time.Millisecond, Install: true, RateTrial: 2 * time.Second,
		Profile: true, GoBenchCount: 3, Go: "go", Command: "make bench",
		Sustained: 10 * time.Second, SustainedRounds: 4, SustainedProfile: true, RealWorkRounds: 3, CFiles: 150}
}

// harness is the state of one run.
type harness struct {
	cfg        Config
	dir        string
	module     string // the module's root directory
	mount      string // cgroup2
	untraced   *cgroup.Cgroup
	programs   map[string]string
	target     string // the file the openat workload opens
	agenttrace string
	audit      *auditDaemon
	daemon     *hostDaemon
	snoop      *snoopTools
	// The real-work suite's inputs.
	goBin       string
	moduleCopy  string // the Go jobs' copy of the module
	gomodcache  string
	gocache     string // the machine's build cache, for the test job
	ctree       string
	searchDirs  []string
	searchFiles int
	// The agenttrace built with the pprof endpoint, for the profile.
	agenttracePprof string
	report          *Report
	conds           map[string]*Condition
	cleanups        []func() error
}

// Run runs the benchmark and returns its report. It undoes what it changed
// on the machine before it returns, also when ctx is cancelled (SIGINT).
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the benchmark needs root (eBPF, cgroups, audit): run it with sudo")
	}
	if cfg.Rounds < 1 || cfg.Slice <= 0 {
		return nil, errors.New("rounds and slice must be positive")
	}
	if cfg.Go == "" {
		cfg.Go = "go"
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	h := &harness{cfg: cfg, conds: map[string]*Condition{}}
	h.report = &Report{Schema: 1, Command: cfg.Command, HarnessArgs: append([]string{"benchrun"}, os.Args[1:]...), Started: time.Now().UTC(),
		Settings: Settings{Rounds: cfg.Rounds, WarmupRounds: 1, SliceMs: cfg.Slice.Milliseconds(), MaxOps: cfg.MaxOps,
			RateTrialMs: cfg.RateTrial.Milliseconds(), AuditBacklog: auditBacklog,
			SustainedMs: cfg.Sustained.Milliseconds(), SustainedRounds: cfg.SustainedRounds, RealWorkRounds: cfg.RealWorkRounds, CFiles: cfg.CFiles}}
	defer func() {
		// A cancelled run cleans up too: each step with a context of its own.
		for i := len(h.cleanups) - 1; i >= 0; i-- {
			if cerr := h.cleanups[i](); cerr != nil {
				h.report.Cleanup = append(h.report.Cleanup, cerr.Error())
				h.logf("cleanup: %v", cerr)
			}
		}
		h.report.DurationSeconds = time.Since(h.report.Started).Seconds()
	}()
	h.report.PhaseSeconds = map[string]float64{}
	start := time.Now()
	if err := h.setup(ctx); err != nil {
		return nil, cmp.Or(ctx.Err(), err)
	}
	h.report.PhaseSeconds["setup"] = time.Since(start).Seconds() - h.report.PhaseSeconds["go benchmarks"]
	start = time.Now()
	if err := h.rounds(ctx); err != nil {
		// A cancelled run fails wherever it was: the cancellation is the cause.
		return nil, cmp.Or(ctx.Err(), err)
	}
	h.phase("interleaved rounds", start)
	if cfg.Profile && h.ran(CondTraced) {
		start = time.Now()
		h.profile(ctx)
		h.phase("profile", start)
	}
	if cfg.Sustained > 0 && cfg.SustainedRounds > 0 {
		start = time.Now()
		if err := h.sustained(ctx); err != nil {
			return nil, cmp.Or(ctx.Err(), err)
		}
		h.phase("sustained", start)
		if cfg.SustainedProfile && h.ran(CondTraced) {
			start = time.Now()
			h.sustainedProfile(ctx)
			h.phase("sustained profile", start)
		}
	}
	if cfg.RealWorkRounds > 0 && len(h.report.Settings.RealWork) > 0 {
		start = time.Now()
		if err := h.realWork(ctx); err != nil {
			return nil, cmp.Or(ctx.Err(), err)
		}
		h.phase("real work", start)
	}
	if cfg.RateTrial > 0 && slices.Contains(h.report.Settings.Workloads, WorkloadOpenat) {
		start = time.Now()
		defer h.phase("rate search", start)
		rs, err := h.rateSearch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			h.report.RateSearchError = err.Error()
		}
		h.report.RateSearch = rs
	}
	h.summarise()
	return h.report, ctx.Err()
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.cfg.Progress, "bench: "+format+"\n", args...)
}

func (h *harness) phase(name string, start time.Time) {
	h.report.PhaseSeconds[name] = time.Since(start).Seconds()
}

func (h *harness) onCleanup(f func() error) { h.cleanups = append(h.cleanups, f) }

func (h *harness) ran(cond string) bool { c := h.conds[cond]; return c != nil && c.Ran }

// stopCondition records why a condition could not run (any more).
func (h *harness) stopCondition(cond string, err error) {
	c := h.conds[cond]
	if c == nil || !c.Ran && c.Reason != "" {
		return
	}
	if c.Ran {
		h.logf("%s stopped: %v", cond, err)
	}
	c.Ran, c.Reason = false, err.Error()
}

func (h *harness) setup(ctx context.Context) error {
	var err error
	if h.dir = h.cfg.WorkDir; h.dir == "" {
		if h.dir, err = os.MkdirTemp("", "agenttrace-bench-"); err != nil {
			return err
		}
		if !h.cfg.Keep {
			h.onCleanup(func() error { return os.RemoveAll(h.dir) })
		}
	} else if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, h.cfg.Go, "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return fmt.Errorf("run the harness inside the agenttrace module (go env GOMOD: %v)", err)
	}
	h.module = filepath.Dir(strings.TrimSpace(string(out)))
	h.report.Machine = describeMachine(ctx, h.cfg.Go, h.module)

	wanted := map[string]bool{}
	for _, id := range orAll(h.cfg.Conditions, ConditionIDs()) {
		if conditionNumber(id) == 0 {
			return fmt.Errorf("unknown condition %q (known: %s)", id, strings.Join(ConditionIDs(), ", "))
		}
		wanted[id] = true
	}
	for _, c := range conditionTitles {
		cond := &Condition{ID: c.ID, Number: conditionNumber(c.ID), Title: c.Title, Ran: wanted[c.ID]}
		if !cond.Ran {
			cond.Reason = "not selected for this run"
		}
		h.conds[c.ID] = cond
	}
	for _, name := range orAll(h.cfg.Workloads, WorkloadNames()) {
		if !slices.Contains(WorkloadNames(), name) {
			return fmt.Errorf("unknown workload %q (known: %s)", name, strings.Join(WorkloadNames(), ", "))
		}
		h.report.Settings.Workloads = append(h.report.Settings.Workloads, name)
	}
	if cfg := h.cfg; cfg.RealWorkRounds > 0 {
		for _, name := range orAll(cfg.RealWork, RealWorkNames()) {
			if lookupJob(name) == nil {
				return fmt.Errorf("unknown real-work job %q (known: %s)", name, strings.Join(RealWorkNames(), ", "))
			}
			h.report.Settings.RealWork = append(h.report.Settings.RealWork, name)
		}
	}

	// The Go benchmarks first, before anything of the harness loads the machine.
	if h.cfg.GoBenchCount > 0 {
		start := time.Now()
		h.logf("Go benchmarks (go test -bench, -count %d)", h.cfg.GoBenchCount)
		if h.report.GoBench, err = runGoBench(ctx, h.cfg.Go, h.module, h.cfg.GoBenchCount); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			h.report.GoBenchError = err.Error()
		}
		if h.report.HotPathProfile, err = profileHotPath(ctx, h.cfg.Go, h.module, h.dir); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			h.report.GoBenchError = strings.TrimPrefix(h.report.GoBenchError+"; ", "; ") + err.Error()
		}
		h.phase("go benchmarks", start)
	}

	h.logf("building the workloads and agenttrace")
	if h.programs, err = buildWorkloads(ctx, h.dir); err != nil {
		return err
	}
	if len(h.report.Settings.RealWork) > 0 {
		if err := h.setupRealWork(ctx); err != nil {
			return err
		}
	}
	if h.agenttrace = h.cfg.Agenttrace; h.agenttrace == "" {
		h.agenttrace = filepath.Join(h.dir, "bin", "agenttrace")
		build := exec.CommandContext(ctx, h.cfg.Go, "build", "-o", h.agenttrace, "./cmd/agenttrace")
		build.Dir = h.module
		if msg, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("building agenttrace: %w\n%s", err, msg)
		}
	}
	if v, err := exec.CommandContext(ctx, h.agenttrace, "version").Output(); err == nil {
		h.report.Machine.Agenttrace = strings.TrimSpace(string(v))
	}
	h.conds[CondTraced].Detail = "agenttrace run with default settings (16 MiB ring, fsync at checkpoints), log on " + h.dir
	// A file of a typical size at a typical depth.
	h.target = filepath.Join(h.dir, "target", "openat-target.txt")
	if err := os.MkdirAll(filepath.Dir(h.target), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(h.target, []byte(strings.Repeat("agenttrace benchmark\n", 200)), 0o644); err != nil {
		return err
	}
	for _, d := range []string{"sessions", "snoop"} {
		if err := os.MkdirAll(filepath.Join(h.dir, d), 0o755); err != nil {
			return err
		}
	}

	// Conditions 1, 3, 4, 5 and 6 run the workload in a cgroup of the
	// harness at the same depth as agenttrace's session cgroups.
	if h.mount, err = cgroup.Mount(); err != nil {
		return err
	}
	parent := "agenttrace-bench"
	if h.untraced, err = cgroup.Create(h.mount, fmt.Sprintf("%s/work-%d", parent, os.Getpid())); err != nil {
		return err
	}
	h.onCleanup(func() error {
		err := h.untraced.Remove()
		os.Remove(filepath.Join(h.mount, parent)) // if no other harness uses it
		return err
	})
	if h.ran(CondDaemonUntraced) {
		d, err := setupDaemon(ctx, h.agenttrace, filepath.Join(h.dir, "daemon"), h.mount, parent)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			h.stopCondition(CondDaemonUntraced, err)
		} else {
			h.daemon = d
			h.onCleanup(d.close)
			h.conds[CondDaemonUntraced].Detail = d.detail()
		}
	}

	if h.ran(CondAuditd) || h.ran(CondSnoop) {
		h.installTools()
	}
	if h.ran(CondAuditd) {
		dir := filepath.Join(h.dir, "auditd")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		a, err := startAudit(ctx, dir)
		if err != nil {
			h.stopCondition(CondAuditd, err)
		} else {
			h.audit = a
			h.onCleanup(func() error { return a.stop(context.Background()) })
			h.conds[CondAuditd].Detail = fmt.Sprintf("%s; its own auditd.conf (Debian's defaults, log in the scratch directory); "+
				"rules on exit of open, openat, creat, openat2, connect, execve, execveat, bind, listen, accept, accept4, sendto, sendmsg, sendmmsg (b64 and b32) and socketcall, "+
				"selected by the workload's login uid, loaded with backlog limit %d and auditing enabled only during its slices",
				a.Version, auditBacklog)
		}
	}
	if h.ran(CondSnoop) {
		t, err := setupSnoop(ctx)
		if err != nil {
			h.stopCondition(CondSnoop, err)
		} else {
			h.snoop = t
			h.onCleanup(t.close)
			detail := t.Version + "; opensnoop -p PID for openat, execsnoop -c CGROUP for fork-exec, and for a real-work job " +
				"execsnoop -c CGROUP with opensnoop for the whole host; stdout to a file"
			if t.mounted {
				detail += "; tracefs mounted at " + tracefsPath + " for the run (unmounted after)"
			}
			h.conds[CondSnoop].Detail = detail
		}
	}
	return nil
}

func orAll(selected, all []string) []string {
	if len(selected) == 0 {
		return all
	}
	return selected
}

// installTools installs auditd and libbpf-tools when they are missing.
func (h *harness) installTools() {
	var missing []string
	if _, err := findProgram("auditd"); err != nil && h.ran(CondAuditd) {
		missing = append(missing, "auditd")
	}
	if _, err := findProgram("opensnoop"); err != nil && h.ran(CondSnoop) {
		missing = append(missing, "libbpf-tools")
	}
	if len(missing) == 0 || !h.cfg.Install {
		return
	}
	h.logf("installing %s", strings.Join(missing, " "))
	// Not cancelled with the run, and in a process group of its own so that
	// a ^C on the terminal does not reach it: a dpkg killed half-way leaves
	// the machine worse than found.
	install := func() error {
		cmd := exec.Command("apt-get", append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get install %s: %w: %s", strings.Join(missing, " "), err, lastLines(string(out), 3))
		}
		return nil
	}
	err := install()
	if err != nil {
		// A fresh machine has no package lists yet.
		update := exec.Command("apt-get", "update", "-q")
		update.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if out, uerr := update.CombinedOutput(); uerr != nil {
			err = fmt.Errorf("%w; apt-get update: %v: %s", err, uerr, lastLines(string(out), 3))
		} else {
			err = install()
		}
	}
	if err != nil {
		h.logf("%v", err)
		h.report.Notes = append(h.report.Notes, "Installing the comparison tools failed: "+err.Error())
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], " / ")
}

// rounds runs the interleaved schedule: for each round (the first a warm-up),
// for each workload, every condition once, in an order rotated by round.
// agenttrace runs only during its conditions: conditions 2 and 3 in a
// session started for them, condition 6 in a daemon started for it (see
// daemonUnit). Loaded, its hooks run for every syscall on the host.
func (h *harness) rounds(ctx context.Context) error {
	var units [][]string
	for _, u := range [][]string{{CondNone}, {CondTraced, CondUntraced}, {CondDaemonUntraced}, {CondAuditd}, {CondSnoop}} {
		var conds []string
		for _, c := range u {
			if h.ran(c) {
				conds = append(conds, c)
			}
		}
		if len(conds) > 0 {
			units = append(units, conds)
		}
	}
	for round := 0; round <= h.cfg.Rounds; round++ {
		for _, name := range h.report.Settings.Workloads {
			run := sliceRun{Round: round, Workload: lookupWorkload(name), Duration: h.cfg.Slice, MaxOps: h.cfg.MaxOps, Record: true}
			for i := range units {
				unit := units[(round+i)%len(units)]
				var err error
				switch {
				case unit[0] == CondTraced || unit[0] == CondUntraced:
					err = h.agenttraceUnit(ctx, run, unit)
				case !h.ran(unit[0]): // stopped during the run
				case unit[0] == CondDaemonUntraced:
					err = h.daemonUnit(ctx, run)
				default:
					run.Cond = unit[0]
					_, err = h.slice(ctx, run)
				}
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func lookupWorkload(name string) *workload {
	for i := range workloads {
		if workloads[i].Name == name {
			return &workloads[i]
		}
	}
	return nil
}

// sliceRun says what one slice runs: a workload under a condition, for a
// phase of the run.
type sliceRun struct {
	Phase    string // "" for the interleaved rounds; PhaseSustained, PhaseRealWork
	Round    int
	Workload *workload
	Cond     string
	Sess     *session // conditions 2 and 3: the agenttrace session
	Daemon   *daemonRun
	Duration time.Duration
	MaxOps   int64
	// Record puts the slice into the report; the profile's slices are not.
	Record bool
	// Env is the workload's environment (default: empty).
	Env []string
	// Operands replace the workload's own (a real-work command line).
	Operands []string
}

// agenttraceUnit runs conditions 2 and 3 (in an order alternating by
// round) in one agenttrace session, then reads its log.
func (h *harness) agenttraceUnit(ctx context.Context, run sliceRun, conds []string) error {
	logPath := filepath.Join(h.dir, "sessions", fmt.Sprintf("%sr%d-%s.jsonl", phasePrefix(run.Phase), run.Round, run.Workload.Name))
	sess, err := startSession(ctx, h.agenttrace, h.mount, logPath)
	if err != nil {
		return err
	}
	order := slices.Clone(conds)
	if run.Round%2 == 1 {
		slices.Reverse(order)
	}
	pids := map[int]string{}
	ran := map[string]*Slice{}
	for _, c := range order {
		run.Cond, run.Sess = c, sess
		s, err := h.slice(ctx, run)
		if err != nil {
			sess.kill()
			return err
		}
		pids[s.Pid], ran[c] = c, s
	}
	if err := sess.stop(); err != nil {
		return err
	}
	l, err := parseSessionLog(logPath, pids)
	if err != nil {
		return fmt.Errorf("reading agenttrace's log: %w", err)
	}
	if !l.HasStop {
		return fmt.Errorf("agenttrace's log %s has no stop record", logPath)
	}
	if !h.cfg.Keep {
		removeLog(logPath)
	}
	for c, s := range ran {
		ev := &SliceEvents{ByType: l.ByKey[c]}
		for _, n := range l.ByKey[c] {
			ev.Written += n
		}
		if c == CondTraced {
			// Only the traced workload can lose events: nothing else in the session makes any.
			ev.Lost = l.LostTotal()
		}
		s.Events = ev
	}
	return nil
}

func phasePrefix(phase string) string {
	if phase == "" {
		return ""
	}
	return phase + "-"
}

// slice runs one workload under one condition and, with a tracer, waits
// until the tracer has written everything the workload made: the next
// slice must not run against a tracer still busy with this one's events.
// The tracer's own CPU time is read from the workload's start to then.
func (h *harness) slice(ctx context.Context, run sliceRun) (*Slice, error) {
	w, cond, sess := run.Workload, run.Cond, run.Sess
	spec := runSpec{CgroupFD: h.untraced.FD(), AUID: -1, Duration: run.Duration, MaxOps: run.MaxOps, Wait: true, Env: run.Env, Operands: run.Operands}
	if cond == CondTraced {
		spec.CgroupFD = sess.CgroupFD()
	}
	if cond == CondAuditd {
		spec.AUID = h.audit.newAUID()
	}
	if cond == CondSnoop && !h.snoop.canTrace(w) {
		return nil, nil // reported as not run for this workload
	}
	s := &Slice{Phase: run.Phase, Round: run.Round, Warmup: run.Round == 0, Workload: w.Name, Condition: cond}
	s.ForeignTracers = loadedPrograms("handle_sys_enter")
	if sess != nil || cond == CondDaemonUntraced {
		s.ForeignTracers-- // the condition's own
	}
	p, err := startWorkload(ctx, h.programs[w.Program], spec.args(w, h.target), spec)
	if err != nil {
		return nil, err
	}
	s.Pid = p.Pid

	var auditFrom, auditLost, logFrom int64
	var snoops []*snoopRun
	var tracer []int // the tracer's processes, whose CPU time is counted
	switch cond {
	case CondTraced, CondUntraced:
		tracer, logFrom = []int{sess.Pid()}, logSize(sess.Log)
	case CondDaemonUntraced:
		tracer = []int{run.Daemon.Pid()}
	case CondAuditd:
		tracer = h.audit.pids()
		auditFrom = h.audit.logSize()
		st, err := h.audit.status(ctx)
		if err == nil {
			auditLost = st["lost"]
			err = h.audit.rulesOn(ctx, spec.AUID)
		}
		if err != nil {
			p.abort()
			h.stopCondition(cond, err)
			return nil, ctx.Err()
		}
	case CondSnoop:
		if snoops, err = h.snoop.startFor(ctx, w, p.Pid, h.untraced.Path(), filepath.Join(h.dir, "snoop")); err != nil {
			p.abort()
			h.stopCondition(cond, err)
			return nil, ctx.Err()
		}
		for _, r := range snoops {
			tracer = append(tracer, r.cmd.Process.Pid)
		}
	}
	cpuFrom := processesCPU(tracer)
	s.Start = time.Now().UTC()
	err = p.release()
	var res workloadResult
	if err == nil {
		res, err = p.wait()
	} else {
		p.abort()
	}
	s.End = time.Now().UTC()

	var condErr error
	switch cond {
	case CondTraced:
		if err == nil {
			var waited time.Duration
			var found bool
			waited, found, condErr = awaitExitRecord(ctx, sess.Log, logFrom, p.Pid)
			s.DrainMs, s.DrainSettled = float64(waited.Microseconds())/1000, !found
		}
	case CondAuditd:
		// Rules off first: the host pays for them while they are loaded.
		condErr = h.audit.rulesOff(context.WithoutCancel(ctx))
		if condErr == nil {
			drainStart := time.Now()
			condErr = h.audit.drain(ctx)
			s.DrainMs = float64(time.Since(drainStart).Microseconds()) / 1000
		}
		if condErr == nil {
			var st auditStatus
			if st, condErr = h.audit.status(ctx); condErr == nil {
				s.Events = &SliceEvents{Lost: st["lost"] - auditLost}
				s.Events.Written, s.Events.Lines, condErr = h.audit.count(auditFrom, spec.AUID)
			}
		}
	case CondSnoop:
		s.Events = &SliceEvents{}
		for _, r := range snoops {
			written, lost, cpu, serr := r.stop()
			s.Events.Written, s.Events.Lost, s.TracerCPUNs = s.Events.Written+written, s.Events.Lost+lost, s.TracerCPUNs+cpu.Nanoseconds()
			condErr = cmp.Or(condErr, serr)
		}
	}
	if cond != CondSnoop && len(tracer) > 0 {
		s.TracerCPUNs = (processesCPU(tracer) - cpuFrom).Nanoseconds()
	} else if cond == CondSnoop {
		s.TracerCPUNs -= cpuFrom.Nanoseconds()
	}
	if err != nil {
		return nil, err
	}
	if condErr != nil {
		if cond == CondTraced {
			return nil, condErr
		}
		h.stopCondition(cond, condErr)
		return nil, ctx.Err()
	}
	s.Ops, s.Ns, s.NsPerOp, s.Errors, s.Extra = res.Ops, res.Ns, res.NsPerOp, res.Errors, res.Extra
	s.CPUNsPerOp = float64(res.CPUNs) / float64(res.Ops)
	if len(s.Extra) == 0 {
		s.Extra = nil
	}
	if run.Record {
		h.report.Slices = append(h.report.Slices, s)
		label := fmt.Sprintf("round %d/%d", run.Round, h.cfg.Rounds)
		switch {
		case run.Phase != "":
			label = fmt.Sprintf("%s %d", run.Phase, run.Round)
		case run.Round == 0:
			label = "warm-up"
		}
		h.logf("%-13s %-16s %-26s %12.1f ns/op %12.1f CPU ns/op %9d ops, tracer %.3f s CPU, drained in %.0f ms",
			label, w.Name, cond, s.NsPerOp, s.CPUNsPerOp, s.Ops, float64(s.TracerCPUNs)/1e9, s.DrainMs)
	}
	return s, nil
}
