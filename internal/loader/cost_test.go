package loader_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
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
const costWorkloadEnv = "AGENTTRACE_OPEN_COST_WORKLOAD"

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
	for range n {
		fd, err := unix.Openat(unix.AT_FDCWD, "/etc/hostname", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 1
		}
		unix.Close(fd)
	}
	return 0
}

// BenchmarkTracedOpenCost measures what the eBPF programs cost per traced
// open: a process in a traced cgroup makes b.N openat+close pairs, and the
// run time the kernel accounted to sys_enter and sys_exit (bpf_stats) is
// divided by b.N. These programs run for every syscall on the host, so the
// same workload also runs in a cgroup that is not traced, and rounds
// alternate: "traced-ns/open" and "untraced-ns/open" are the lowest of the
// rounds (the least disturbed by other processes), and their difference is
// what tracing adds to an open ("ebpf-ns/open"). It needs root:
//
//	go test -run '^$' -bench TracedOpenCost -benchtime 200000x ./internal/loader
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
	// Drain the ring as the pipeline would: a full ring costs less.
	done := make(chan int)
	go func() {
		var rec ringbuf.Record
		n := 0
		for {
			tr.SetDeadline(time.Now().Add(100 * time.Millisecond))
			err := tr.ReadInto(&rec)
			switch {
			case err == nil:
				n++
			case errors.Is(err, os.ErrDeadlineExceeded):
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
	// run runs the workload in cg and returns the eBPF run time per open.
	run := func(cg *cgroup.Cgroup) float64 {
		before := tr.ProgramStats()
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), costWorkloadEnv+"="+strconv.Itoa(b.N))
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.FD()}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("workload: %v\n%s", err, out)
		}
		after := tr.ProgramStats()
		var runtime time.Duration
		for _, hook := range []string{"tp_btf/sys_enter", "tp_btf/sys_exit"} {
			runtime += after[hook].Runtime - before[hook].Runtime
		}
		return float64(runtime.Nanoseconds()) / float64(b.N)
	}
	const rounds = 5
	traced, untraced := math.Inf(1), math.Inf(1)
	b.ResetTimer()
	for range rounds {
		traced = min(traced, run(cgs[0]))
		untraced = min(untraced, run(cgs[1]))
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
	if records < rounds*b.N {
		b.Fatalf("%d records for %d traced opens", records, rounds*b.N)
	}
	b.ReportMetric(traced, "traced-ns/open")
	b.ReportMetric(untraced, "untraced-ns/open")
	b.ReportMetric(traced-untraced, "ebpf-ns/open")
}
