package loader_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/cgroup"
	"github.com/agenttrace/agenttrace/internal/loader"
)

// costWorkloadEnv makes this test binary the workload of
// BenchmarkTracedOpenCost: that many openat+close pairs, then exit.
// costPathEnv names the file it opens (default /etc/hostname).
const (
	costWorkloadEnv = "AGENTTRACE_OPEN_COST_WORKLOAD"
	costPathEnv     = "AGENTTRACE_OPEN_COST_PATH"
)

func TestMain(m *testing.M) {
	if n := os.Getenv(costWorkloadEnv); n != "" {
		os.Exit(openWorkload(n))
	}
	os.Exit(m.Run())
}

func openWorkload(arg string) int {
	n, err := strconv.Atoi(arg)
	if err != nil {
		return 2
	}
	path := os.Getenv(costPathEnv)
	if path == "" {
		path = "/etc/hostname"
	}
	for range n {
		fd, err := unix.Openat(unix.AT_FDCWD, path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 1
		}
		unix.Close(fd)
	}
	return 0
}

// BenchmarkTracedOpenCost measures what the eBPF programs cost per traced
// open: a process in a traced cgroup makes openat+close pairs, and the run
// time the kernel accounted to sys_enter and sys_exit (bpf_stats) is
// divided by their number. These programs run for every syscall on the
// host, so the same workload also runs in a cgroup that is not traced, right
// after, in 10 alternating rounds of b.N/10 opens each. Each untraced round
// gives the average cost of a program run that is not traced (nearly all of
// them the other processes' syscalls); "ebpf-ns/open" is the median over the
// rounds of what the traced round cost beyond its run count times that
// average, per open: what tracing adds to an open, however busy the host.
// "traced-ns/open" and "untraced-ns/open" are the medians of the raw run
// time per open of each kind of round. It needs root:
//
//	go test -run '^$' -bench TracedOpenCost -benchtime 200000x ./internal/loader
//
// AGENTTRACE_OPEN_COST_PATH chooses the file (the walk costs per component).
func BenchmarkTracedOpenCost(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: it loads the eBPF programs and creates cgroups")
	}
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enabling bpf_stats: %v", err)
	}
	defer stats.Close()
	tr, err := loader.Load(loader.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	mount, err := cgroup.Mount()
	if err != nil {
		b.Fatal(err)
	}
	var cgs [2]*cgroup.Cgroup // traced, untraced
	for i, name := range []string{"traced", "untraced"} {
		cg, err := cgroup.Create(mount, fmt.Sprintf("agenttrace-open-cost-%d/%s", os.Getpid(), name))
		if err != nil {
			b.Fatal(err)
		}
		defer os.Remove(filepath.Dir(cg.Path()))
		defer cg.Remove()
		cgs[i] = cg
	}
	if err := tr.SetTarget(0, cgs[0].FD(), cgs[0].ID); err != nil {
		b.Fatal(err)
	}
	if err := tr.Attach(); err != nil {
		b.Fatal(err)
	}
	// Drain the ring as the pipeline would: a full ring costs less. What
	// is read goes back to the kernel only when committed (as the
	// pipeline does once it is in the log), so commit every read.
	done := make(chan int)
	go func() {
		var rec ringbuf.Record
		var progress loader.Progress
		n := 0
		for {
			tr.SetDeadline(time.Now().Add(100 * time.Millisecond))
			err := tr.ReadInto(&rec)
			switch {
			case err == nil:
				n++
				if n%64 == 0 {
					tr.Commit(&progress)
				}
			case errors.Is(err, os.ErrDeadlineExceeded):
				tr.Commit(&progress)
			default:
				done <- n
				return
			}
		}
	}()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	const rounds = 10
	perRound := max(b.N/rounds, 1)
	// run runs the workload in cg and returns the eBPF run time and the
	// number of program runs meanwhile.
	run := func(cg *cgroup.Cgroup) (time.Duration, uint64) {
		before := tr.ProgramStats()
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), costWorkloadEnv+"="+strconv.Itoa(perRound))
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.FD()}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("workload: %v\n%s", err, out)
		}
		after := tr.ProgramStats()
		var runtime time.Duration
		var runs uint64
		for _, hook := range []string{"tp_btf/sys_enter", "tp_btf/sys_exit"} {
			runtime += after[hook].Runtime - before[hook].Runtime
			runs += after[hook].RunCount - before[hook].RunCount
		}
		return runtime, runs
	}
	var traced, untraced, added []float64
	n := float64(perRound)
	b.ResetTimer()
	for range rounds {
		tTime, tRuns := run(cgs[0])
		uTime, uRuns := run(cgs[1])
		perRun := float64(uTime.Nanoseconds()) / float64(uRuns)
		traced = append(traced, float64(tTime.Nanoseconds())/n)
		untraced = append(untraced, float64(uTime.Nanoseconds())/n)
		added = append(added, (float64(tTime.Nanoseconds())-float64(tRuns)*perRun)/n)
	}
	b.StopTimer()
	tr.Detach()
	tr.Flush()
	records := <-done
	counters, err := tr.Counters()
	if err != nil {
		b.Fatal(err)
	}
	if lost := counters[loader.KindOpen].LostRingbuf + counters[loader.KindOpen].LostInflight; lost != 0 {
		b.Fatalf("%d open records lost: the measurement is not of the full path", lost)
	}
	if records < rounds*perRound {
		b.Fatalf("%d records for %d traced opens", records, rounds*perRound)
	}
	b.ReportMetric(median(traced), "traced-ns/open")
	b.ReportMetric(median(untraced), "untraced-ns/open")
	b.ReportMetric(median(added), "ebpf-ns/open")
}

func median(v []float64) float64 {
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
