package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/internal/cgroup"
)

// TestSmoke runs the harness on a tiny scale — a few thousand operations
// per slice, one round after the warm-up, then the profile; conditions 1 to
// 3 and 6; one round of a 300 ms sustained load and its profile; the C
// project and the file search of the real-work suite, made small — and
// checks that the report is produced, that agenttrace's records of each
// workload were counted, exactly where the workload makes them
// deterministically, and that neither `agenttrace run` nor `agenttrace
// daemon` recorded a workload it does not trace. It never checks a time.
func TestSmoke(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the benchmark smoke test needs root (eBPF, cgroups); CI runs as root")
		}
		t.Skip("needs root (eBPF, cgroups)")
	}
	// At most 3000 operations per slice, and at most 250 ms of them: the
	// fork-exec workload stops by time after a few hundred.
	const maxOps = 3000
	conds := []string{CondNone, CondTraced, CondUntraced, CondDaemonUntraced}
	module, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Rounds: 1, Slice: 250 * time.Millisecond, MaxOps: maxOps, Conditions: conds, Profile: true,
		Sustained: 300 * time.Millisecond, SustainedRounds: 1, SustainedProfile: true,
		RealWork: []string{JobCMake, JobFileSearch}, RealWorkRounds: 1, CFiles: 3, SearchDirs: []string{filepath.Join(module, "bench")},
		Go: "go", WorkDir: t.TempDir(), Command: "go test ./bench", Progress: testLog{t}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}

	short := slices.DeleteFunc(slices.Clone(rep.Slices), func(s *Slice) bool { return s.Phase != "" })
	if got, want := len(short), 2*len(workloads)*len(conds); got != want {
		t.Errorf("%d slices, want %d (warm-up and one round, %d workloads, %d conditions)", got, want, len(workloads), len(conds))
	}
	for _, s := range short {
		if s.Ops <= 0 || s.Ops > maxOps || s.Errors != 0 {
			t.Errorf("%s/%s round %d: %d ops, %d errors; want 1 to %d ops, 0 errors", s.Workload, s.Condition, s.Round, s.Ops, s.Errors, maxOps)
		}
		switch s.Condition {
		case CondNone:
			if s.Events != nil {
				t.Errorf("%s with no tracer has events %+v", s.Workload, s.Events)
			}
		case CondUntraced, CondDaemonUntraced:
			if s.Events == nil || s.Events.Written != 0 || s.Events.Lost != 0 {
				t.Errorf("%s %s: events %+v, want 0 written, 0 lost", s.Workload, s.Condition, s.Events)
			}
		case CondTraced:
			if s.Events == nil {
				t.Errorf("%s traced: no events counted", s.Workload)
				continue
			}
			if s.Events.Written == 0 || s.Events.Lost != 0 {
				t.Errorf("%s traced: %d written, %d lost; want some written, 0 lost", s.Workload, s.Events.Written, s.Events.Lost)
			}
			// Every workload's own process: its exec and its exit. Then the
			// records of each operation; fork-exec's children also open what
			// /bin/true's dynamic loader opens, which depends on the host.
			want := map[string]int64{"exec": 1, "exit": 1}
			got := maps.Clone(s.Events.ByType)
			switch s.Workload {
			case WorkloadOpenat:
				want["open"] = s.Ops + 1 // and the open that checks the file first
			case WorkloadConnectListener:
				// Its listener's bind and listen; per operation the connect,
				// the connection's state change and the accept.
				maps.Copy(want, map[string]int64{"bind": 1, "listen": 1, "connect": s.Ops, "sock_state": s.Ops, "accept": s.Ops})
			case WorkloadConnectRefused:
				// The bind that found a free port; the connect and its refusal.
				maps.Copy(want, map[string]int64{"bind": 1, "connect": s.Ops, "sock_state": s.Ops})
			case WorkloadUDPSend:
				// The receiver's bind; one send per datagram (the recv is not a record).
				maps.Copy(want, map[string]int64{"bind": 1, "send": s.Ops})
			case WorkloadForkExec:
				want = map[string]int64{"fork": s.Ops, "exec": s.Ops + 1, "exit": s.Ops + 1}
				delete(got, "open")
			}
			if !maps.Equal(got, want) {
				t.Errorf("%s traced, round %d: records %v, want %v", s.Workload, s.Round, got, want)
			}
		}
	}
	for _, w := range rep.Workloads {
		if len(w.Conditions) != len(ConditionIDs()) {
			t.Errorf("%s: %d conditions, want %d", w.Name, len(w.Conditions), len(ConditionIDs()))
		}
		for _, c := range w.Conditions {
			switch {
			case !slices.Contains(conds, c.Condition):
				if c.Ran || c.Reason != "not selected for this run" {
					t.Errorf("%s/%s: ran %v (%q), want not selected", w.Name, c.Condition, c.Ran, c.Reason)
				}
			case !c.Ran || c.Slices != 1 || c.MedianNsPerOp <= 0 || c.Reason != "":
				t.Errorf("%s/%s: ran %v (%q), %d slices, %v ns/op; want 1 measured slice", w.Name, c.Condition, c.Ran, c.Reason, c.Slices, c.MedianNsPerOp)
			case c.Condition != CondNone && c.Ratio <= 0:
				t.Errorf("%s/%s: no ratio to no tracer", w.Name, c.Condition)
			}
		}
	}
	// Each agenttrace process's programs ran during its profile slice.
	for _, name := range WorkloadNames() {
		for _, cond := range conds[1:] {
			if p := rep.profile(name, cond); p == nil || p.Ops <= 0 || p.hook("handle_sys_enter").Runs <= 0 {
				t.Errorf("%s/%s: profile %+v, want ops and sys_enter runs (profile error %q)", name, cond, p, rep.ProfileError)
			}
		}
	}

	// The sustained load: agenttrace wrote every record of it (the open
	// that checks the file, each operation's, the exec and the exit) before
	// the slice ended, and its own CPU time was counted.
	if c := rep.Sustained.condition(CondTraced); c == nil || c.Lost != 0 || c.Written != c.Ops+3 || c.TracerNsPerOp <= 0 || c.DrainMs <= 0 {
		t.Errorf("sustained traced: %+v; want a ratio, %d+3 records, 0 lost, agenttrace's CPU time and a drain", c, c.Ops)
	}
	for _, s := range rep.Slices {
		if s.Phase == PhaseSustained && s.Condition == CondTraced && s.DrainSettled {
			t.Errorf("sustained round %d: agenttrace's log never showed the workload's exit record", s.Round)
		}
	}
	if sp := rep.SustainedProfile; sp == nil || sp.Records != sp.Ops+3 || sp.BPFNsPerOp <= 0 || sp.PprofError != "" {
		t.Errorf("sustained profile %+v (error %q); want every record, eBPF time and a CPU profile", sp, rep.SustainedProfileError)
	}
	// The real-work jobs ran without an error under both conditions, and
	// agenttrace recorded their process trees.
	if len(rep.RealWork) != 2 {
		t.Errorf("%d real-work results, want 2", len(rep.RealWork))
	}
	for _, pr := range rep.RealWork {
		c := pr.condition(CondTraced)
		if c == nil || c.Lost != 0 || c.Written < 3 {
			t.Errorf("real work %s traced: %+v; want a ratio, records, 0 lost", pr.Name, c)
		}
	}
	for _, s := range rep.Slices {
		if s.Phase == PhaseRealWork && (s.Errors != 0 || s.Ops <= 0) {
			t.Errorf("real work %s/%s round %d: %d runs, %d failed", s.Workload, s.Condition, s.Round, s.Ops, s.Errors)
		}
	}

	md := rep.Markdown()
	for _, want := range []string{"## Machine", "## Targets", "| sustained openat+close traced, ratio to no tracer | ≤ 1.30× |",
		"## Sustained load", "## Real work", "### c-make: `make -j", "## Where agenttrace's CPU goes under the sustained load",
		"### openat: openat + close of an existing file", "| 2 | agenttrace, workload traced |", "did not run: not selected for this run",
		"| 6 | agenttrace daemon, workload untraced |", "6. agenttrace daemon, workload untraced — ran.",
		"| openat | agenttrace daemon, workload untraced |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil || len(back.Workloads) != len(workloads) {
		t.Errorf("results.json does not read back: %v", err)
	}
	// The harness left nothing behind.
	if dirs, _ := filepath.Glob(filepath.Join(cfg.WorkDir, "sessions", "*.jsonl")); len(dirs) != 0 {
		t.Errorf("logs left behind: %v", dirs)
	}
	if dirs, _ := filepath.Glob(filepath.Join(cfg.WorkDir, "daemon", "log*")); len(dirs) != 0 {
		t.Errorf("daemon logs left behind: %v", dirs)
	}

	mount, err := cgroup.Mount()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"work-%d", "daemon-%d-agents"} {
		dir := filepath.Join(mount, "agenttrace-bench", fmt.Sprintf(name, os.Getpid()))
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the harness's cgroup %s is still there (%v)", dir, err)
		}
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
