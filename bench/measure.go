package bench

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// profile runs, per workload, one slice of each agenttrace condition with
// the kernel's BPF statistics on and reads the run time of each of
// agenttrace's programs: where the traced workload's extra time goes in the
// kernel, and what each mode's filter costs an untraced one. The
// statistics cost two clock reads per program run, so these slices are not
// part of the comparison.
func (h *harness) profile(ctx context.Context) {
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		h.report.ProfileError = fmt.Sprintf("enabling BPF statistics: %v", err)
		return
	}
	// Closing the descriptor turns them off again, as does the harness's exit.
	defer stats.Close()
	for _, name := range h.report.Settings.Workloads {
		w := lookupWorkload(name)
		p, err := h.profileWorkload(ctx, w)
		if err != nil {
			h.report.ProfileError = err.Error()
			return
		}
		h.report.Profile = append(h.report.Profile, *p)
	}
}

func (h *harness) profileWorkload(ctx context.Context, w *workload) (*Profile, error) {
	logPath := filepath.Join(h.dir, "sessions", "profile-"+w.Name+".jsonl")
	sess, err := startSession(ctx, h.agenttrace, h.mount, logPath)
	if err != nil {
		return nil, err
	}
	defer func() {
		removeLog(logPath)
	}()
	p := &Profile{Workload: w.Name}
	for _, cond := range []string{CondTraced, CondUntraced} {
		pc, err := h.profileSlice(ctx, h.profileRun(w, cond, sess, nil), sess.Pid())
		if err != nil {
			sess.kill()
			return nil, err
		}
		p.Conditions = append(p.Conditions, *pc)
	}
	if err := sess.stop(); err != nil {
		return nil, err
	}
	if !h.ran(CondDaemonUntraced) {
		return p, nil
	}
	run, err := h.daemon.start(ctx)
	if err != nil {
		return nil, err
	}
	pc, err := h.profileSlice(ctx, h.profileRun(w, CondDaemonUntraced, nil, run), run.Pid())
	if err != nil {
		run.kill()
		return nil, err
	}
	if err := run.stop(); err != nil {
		return nil, err
	}
	p.Conditions = append(p.Conditions, *pc)
	return p, h.daemon.endLog(h.cfg.Keep, "profile-"+w.Name)
}

// profileRun is one of the profile's slices: like a round's, not recorded.
func (h *harness) profileRun(w *workload, cond string, sess *session, daemon *daemonRun) sliceRun {
	return sliceRun{Round: h.cfg.Rounds + 1, Workload: w, Cond: cond, Sess: sess, Daemon: daemon, Duration: h.cfg.Slice, MaxOps: h.cfg.MaxOps}
}

// profileSlice runs one slice and reads the run time of the programs of
// the tracer process pid over it.
func (h *harness) profileSlice(ctx context.Context, run sliceRun, pid int) (*ProfileCond, error) {
	w, cond := run.Workload, run.Cond
	before, err := hookStats(pid)
	if err != nil {
		return nil, err
	}
	s, err := h.slice(ctx, run)
	if err != nil {
		return nil, err
	}
	after, err := hookStats(pid)
	if err != nil {
		return nil, err
	}
	pc := &ProfileCond{Condition: cond, Ops: s.Ops, NsPerOp: s.NsPerOp}
	pc.Hooks, pc.BPFNsPerOp = hookDeltas(before, after, s.Ops)
	h.logf("profile     %-16s %-26s %12.1f ns/op, of which eBPF %.1f ns/op", w.Name, cond, pc.NsPerOp, pc.BPFNsPerOp)
	return pc, nil
}

// rateSearch finds the highest rate of the openat workload at which
// agenttrace, with default settings, loses nothing, and the loss at twice
// that rate. Each trial is a fresh `agenttrace run` of the workload.
func (h *harness) rateSearch(ctx context.Context) (*RateSearch, error) {
	rs := &RateSearch{Workload: WorkloadOpenat, TrialMs: h.cfg.RateTrial.Milliseconds()}
	trial := func(rate float64) (RateTrial, error) {
		t, err := h.rateTrial(ctx, len(rs.Trials), rate)
		if err != nil {
			return t, err
		}
		rs.Trials = append(rs.Trials, t)
		target := "full speed"
		if rate > 0 {
			target = fmt.Sprintf("%.0f/s", rate)
		}
		h.logf("rate search target %-12s achieved %9.0f opens/s, lost %d", target, t.AchievedRate, t.Lost)
		return t, nil
	}
	// Full speed twice: one lucky trial on a noisy machine proves little.
	for range 2 {
		t, err := trial(0)
		if err != nil {
			return rs, err
		}
		rs.MaxRate = max(rs.MaxRate, t.AchievedRate)
		rs.FullSpeedLost = max(rs.FullSpeedLost, t.Lost)
	}
	if rs.FullSpeedLost == 0 {
		for _, t := range rs.Trials {
			rs.ZeroLossRate = max(rs.ZeroLossRate, t.AchievedRate)
		}
		rs.TwiceExceedsMax = true
		return rs, nil
	}
	// Bisect the target rate between 0 (nothing to lose) and full speed.
	lo, hi := 0.0, rs.MaxRate
	for range 6 {
		mid := (lo + hi) / 2
		t, err := trial(mid)
		if err != nil {
			return rs, err
		}
		if t.Lost == 0 {
			lo = mid
			rs.ZeroLossRate = max(rs.ZeroLossRate, t.AchievedRate)
		} else {
			hi = mid
		}
	}
	if rs.ZeroLossRate == 0 {
		return rs, nil
	}
	if 2*rs.ZeroLossRate > rs.MaxRate {
		rs.TwiceExceedsMax = true
		return rs, nil
	}
	t, err := trial(2 * rs.ZeroLossRate)
	if err != nil {
		return rs, err
	}
	rs.Twice = &t
	return rs, nil
}

// rateTrial runs the openat workload at rate (0: full speed) under a fresh
// agenttrace with default settings and reads the loss from its stop record.
func (h *harness) rateTrial(ctx context.Context, n int, rate float64) (RateTrial, error) {
	logPath := filepath.Join(h.dir, "sessions", fmt.Sprintf("rate-%d.jsonl", n))
	defer func() {
		removeLog(logPath)
	}()
	w := lookupWorkload(WorkloadOpenat)
	spec := runSpec{CgroupFD: -1, AUID: -1, Duration: h.cfg.RateTrial, MaxOps: h.cfg.MaxOps, Rate: rate}
	cmd := exec.CommandContext(ctx, h.agenttrace, append([]string{"run", "--log", logPath, "--", h.programs[w.Program]}, spec.args(w, h.target)...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	if err := cmd.Run(); err != nil {
		return RateTrial{}, fmt.Errorf("agenttrace run of the openat workload: %w: %s", err, lastLines(stderr.String(), 3))
	}
	res, err := parseWorkloadResult(stdout.String())
	if err != nil {
		return RateTrial{}, err
	}
	l, err := readStop(logPath)
	if err != nil {
		return RateTrial{}, err
	}
	t := RateTrial{TargetRate: rate, AchievedRate: float64(res.Ops) / (float64(res.Ns) / 1e9), Ops: res.Ops,
		Written: l.StopRecords["open"], Lost: l.LostTotal(), LostByKind: l.StopLost}
	if len(t.LostByKind) == 0 {
		t.LostByKind = nil
	}
	return t, nil
}

// runGoBench runs every Go benchmark of the module (what `make bench` ran
// before the harness existed) and returns their medians.
func runGoBench(ctx context.Context, goCmd, dir string, count int) ([]GoBenchmark, error) {
	cmd := exec.CommandContext(ctx, goCmd, "test", "-run", "^$", "-bench", ".", "-benchmem", "-count", strconv.Itoa(count), "./...")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	benches := parseGoBench(string(out))
	if err != nil {
		return benches, fmt.Errorf("go test -bench: %w: %s", err, lastLines(string(out), 5))
	}
	if len(benches) == 0 {
		return nil, fmt.Errorf("go test -bench printed no benchmark: %s", lastLines(string(out), 5))
	}
	return benches, nil
}

// parseGoBench reads `go test -bench` output: "pkg: P" lines, then lines of
// name, iterations and value-unit pairs.
func parseGoBench(out string) []GoBenchmark {
	type key struct{ pkg, name string }
	var order []key
	runs := map[key][]map[string]float64{}
	pkg := ""
	for line := range strings.SplitSeq(out, "\n") {
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name := f[0]
		// Drop the -GOMAXPROCS suffix.
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[f[i+1]] = v
			}
		}
		k := key{pkg, name}
		if _, ok := runs[k]; !ok {
			order = append(order, k)
		}
		runs[k] = append(runs[k], m)
	}
	var benches []GoBenchmark
	for _, k := range order {
		b := GoBenchmark{Package: k.pkg, Name: k.name, Runs: len(runs[k]), Metrics: map[string]float64{}}
		for unit := range runs[k][0] {
			var vs []float64
			for _, m := range runs[k] {
				if v, ok := m[unit]; ok {
					vs = append(vs, v)
				}
			}
			b.Metrics[unit] = median(vs)
		}
		benches = append(benches, b)
	}
	return benches
}

// profileHotPath runs BenchmarkHotPath under the CPU profiler and returns
// the top functions by flat time: where the user-space pipeline's time goes.
func profileHotPath(ctx context.Context, goCmd, dir, tmp string) ([]PprofLine, error) {
	prof := filepath.Join(tmp, "hotpath.pprof")
	cmd := exec.CommandContext(ctx, goCmd, "test", "-run", "^$", "-bench", "^BenchmarkHotPath$", "-benchtime", "2s",
		"-cpuprofile", prof, "-o", filepath.Join(tmp, "pipeline.test"), "./internal/pipeline")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("profiling BenchmarkHotPath: %w: %s", err, lastLines(string(out), 5))
	}
	cmd = exec.CommandContext(ctx, goCmd, "tool", "pprof", "-top", "-nodecount", "12", prof)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof: %w", err)
	}
	return parsePprofTop(string(out)), nil
}

// parsePprofTop reads the rows of `go tool pprof -top`:
// flat flat% sum% cum cum% function.
func parsePprofTop(out string) []PprofLine {
	var lines []PprofLine
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasSuffix(f[1], "%") || !strings.HasSuffix(f[4], "%") {
			continue
		}
		flat, err1 := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
		cum, err2 := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err1 != nil || err2 != nil {
			continue
		}
		lines = append(lines, PprofLine{Function: strings.Join(f[5:], " "), FlatPct: flat, CumPct: cum})
	}
	return lines
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
