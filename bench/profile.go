package bench

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// pprofHook is added to cmd/agenttrace for the profiled agenttrace: it
// serves the CPU profile on a unix socket (see pprofhook/hook.go).
//
//go:embed pprofhook/hook.go
var pprofHook []byte

const pprofTag = "agenttrace_bench_pprof"

// buildPprofAgenttrace builds agenttrace with the pprof endpoint, without
// touching the source tree: go build's -overlay adds the hook to the main
// package.
func (h *harness) buildPprofAgenttrace(ctx context.Context) (string, error) {
	if h.agenttracePprof != "" {
		return h.agenttracePprof, nil
	}
	dir := filepath.Join(h.dir, "pprof")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	hook := filepath.Join(dir, "hook.go")
	if err := os.WriteFile(hook, pprofHook, 0o644); err != nil {
		return "", err
	}
	overlay, err := json.Marshal(map[string]map[string]string{
		"Replace": {filepath.Join(h.module, "cmd", "agenttrace", "zz_bench_pprof.go"): hook}})
	if err != nil {
		return "", err
	}
	overlayPath := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayPath, overlay, 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "agenttrace")
	build := exec.CommandContext(ctx, h.cfg.Go, "build", "-tags", pprofTag, "-overlay", overlayPath, "-o", bin, "./cmd/agenttrace")
	build.Dir = h.module
	if msg, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building agenttrace with pprof: %w\n%s", err, msg)
	}
	h.agenttracePprof = bin
	return bin, nil
}

// fetchCPUProfile asks the agenttrace serving on sock for a CPU profile of
// the next d and writes it to path.
func fetchCPUProfile(ctx context.Context, sock string, d time.Duration, path string) error {
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	secs := int((d + time.Second - 1) / time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://agenttrace/debug/pprof/profile?seconds=%d", secs), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("fetching agenttrace's CPU profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("fetching agenttrace's CPU profile: %s: %s", resp.Status, msg)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sustainedProfile runs one more sustained slice of the traced openat
// workload with BPF statistics on, under an agenttrace built with the
// pprof endpoint, and reads where agenttrace's CPU goes: the run time of
// each of its eBPF programs, and its user space's CPU profile. The
// statistics and the profiler cost time of their own, so this slice is
// not in the sustained results.
func (h *harness) sustainedProfile(ctx context.Context) {
	sp, err := h.runSustainedProfile(ctx)
	if err != nil {
		if ctx.Err() == nil {
			h.report.SustainedProfileError = err.Error()
			h.logf("sustained profile: %v", err)
		}
		return
	}
	h.report.SustainedProfile = sp
}

func (h *harness) runSustainedProfile(ctx context.Context) (*SustainedProfile, error) {
	bin, err := h.buildPprofAgenttrace(ctx)
	if err != nil {
		return nil, err
	}
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("enabling BPF statistics: %w", err)
	}
	defer stats.Close()
	w := lookupWorkload(WorkloadOpenat)
	logPath := filepath.Join(h.dir, "sessions", "sustained-profile.jsonl")
	sock := filepath.Join(h.dir, "pprof", "agenttrace.sock")
	sess, err := startSession(ctx, bin, h.mount, logPath, "AGENTTRACE_BENCH_PPROF="+sock)
	if err != nil {
		return nil, err
	}
	defer func() {
		removeLog(logPath)
	}()
	before, err := hookStats(sess.Pid())
	if err != nil {
		sess.kill()
		return nil, err
	}
	prof := h.cfg.PprofOut
	if prof == "" {
		prof = filepath.Join(h.dir, "pprof", "sustained.pprof")
	}
	// The profile spans the slice and the drain after it.
	fetched := make(chan error, 1)
	go func() { fetched <- fetchCPUProfile(ctx, sock, h.cfg.Sustained+time.Second, prof) }()
	run := sliceRun{Phase: PhaseSustained, Round: h.cfg.SustainedRounds + 1, Workload: w, Cond: CondTraced, Sess: sess, Duration: h.cfg.Sustained}
	s, err := h.slice(ctx, run)
	if err != nil {
		sess.kill()
		return nil, err
	}
	after, err := hookStats(sess.Pid())
	if err != nil {
		sess.kill()
		return nil, err
	}
	ferr := <-fetched
	if err := sess.stop(); err != nil {
		return nil, err
	}
	l, err := parseSessionLog(logPath, map[int]string{s.Pid: CondTraced})
	if err != nil {
		return nil, err
	}
	sp := &SustainedProfile{Ops: s.Ops, NsPerOp: s.NsPerOp, CPUNsPerOp: s.CPUNsPerOp, TracerCPUNs: s.TracerCPUNs, DrainMs: s.DrainMs}
	for _, n := range l.ByKey[CondTraced] {
		sp.Records += n
	}
	if sp.Records > 0 {
		sp.UserNsPerRecord = float64(s.TracerCPUNs) / float64(sp.Records)
	}
	sp.Hooks, sp.BPFNsPerOp = hookDeltas(before, after, s.Ops)
	h.logf("sustained profile: %.0f ns/op, eBPF %.0f ns/op, agenttrace %.0f ns CPU per record (%d records)", sp.NsPerOp, sp.BPFNsPerOp, sp.UserNsPerRecord, sp.Records)
	if ferr != nil {
		sp.PprofError = ferr.Error()
		return sp, nil
	}
	for _, cum := range []bool{false, true} {
		args := []string{"tool", "pprof", "-top", "-nodecount", "25"}
		if cum {
			args = append(args, "-cum")
		}
		cmd := exec.CommandContext(ctx, h.cfg.Go, append(args, prof)...)
		cmd.Dir = h.module
		out, err := cmd.Output()
		if err != nil {
			sp.PprofError = fmt.Sprintf("go tool pprof: %v", err)
			break
		}
		if cum {
			sp.PprofCum = parsePprofTop(string(out))
		} else {
			sp.PprofFlat = parsePprofTop(string(out))
		}
	}
	return sp, nil
}
