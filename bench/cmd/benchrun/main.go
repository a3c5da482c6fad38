// Command benchrun runs agenttrace's benchmark harness (package bench) and
// writes its report: BENCHMARKS.md and bench/results.json. `make bench`
// runs it from the repository root, as root.
//
//	sudo go run ./bench/cmd/benchrun [flags]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/agenttrace/agenttrace/bench"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfg := bench.DefaultConfig()
	flag.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "measured rounds (one warm-up round runs first)")
	flag.DurationVar(&cfg.Slice, "slice", cfg.Slice, "how long each workload slice runs")
	flag.Int64Var(&cfg.MaxOps, "max-ops", 0, "cap on operations per slice (0: none)")
	workloads := flag.String("workloads", "", "comma-separated workloads (default all: "+strings.Join(bench.WorkloadNames(), ",")+")")
	conditions := flag.String("conditions", "", "comma-separated conditions (default all: "+strings.Join(bench.ConditionIDs(), ",")+")")
	flag.BoolVar(&cfg.Install, "install", cfg.Install, "apt-get install auditd and libbpf-tools if missing")
	flag.DurationVar(&cfg.RateTrial, "rate-trial", cfg.RateTrial, "length of each sustained-rate trial (0: no rate search)")
	flag.BoolVar(&cfg.Profile, "profile", cfg.Profile, "one extra slice per workload with BPF statistics on")
	flag.IntVar(&cfg.GoBenchCount, "go-bench-count", cfg.GoBenchCount, "-count of the Go benchmarks (0: skip them)")
	flag.DurationVar(&cfg.Sustained, "sustained", cfg.Sustained, "length of each sustained openat slice (0: no sustained load)")
	flag.IntVar(&cfg.SustainedRounds, "sustained-rounds", cfg.SustainedRounds, "rounds of the sustained load")
	flag.BoolVar(&cfg.SustainedProfile, "sustained-profile", cfg.SustainedProfile, "one more traced sustained slice with BPF statistics on and agenttrace under pprof")
	flag.StringVar(&cfg.PprofOut, "pprof", "", "keep the sustained profile's CPU profile of agenttrace in this file")
	realWork := flag.String("real-work", "", "comma-separated real-work jobs (default all: "+strings.Join(bench.RealWorkNames(), ",")+")")
	flag.IntVar(&cfg.RealWorkRounds, "real-work-rounds", cfg.RealWorkRounds, "rounds of the real-work suite after its warm-up round (0: none)")
	flag.IntVar(&cfg.CFiles, "c-files", cfg.CFiles, "source files of the real-work C project")
	flag.StringVar(&cfg.Go, "go", cfg.Go, "the go command")
	flag.StringVar(&cfg.Agenttrace, "agenttrace", "", "an agenttrace binary (default: build ./cmd/agenttrace)")
	flag.StringVar(&cfg.WorkDir, "work", "", "scratch directory (default: a new one under $TMPDIR, removed after)")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the scratch directory and the logs")
	flag.StringVar(&cfg.Command, "command", "go run ./bench/cmd/benchrun", "the command line the report names")
	mdPath := flag.String("out", "BENCHMARKS.md", "markdown report")
	jsonPath := flag.String("json", "bench/results.json", "machine-readable report")
	flag.Parse()
	if *workloads != "" {
		cfg.Workloads = strings.Split(*workloads, ",")
	}
	if *realWork != "" {
		cfg.RealWork = strings.Split(*realWork, ",")
	}
	if *conditions != "" {
		cfg.Conditions = strings.Split(*conditions, ",")
	}
	cfg.Progress = os.Stderr

	// A signal cancels the run; the harness then restores the machine
	// (audit rules and daemon, tracefs, cgroups) before it returns.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "benchrun: interrupted; what the harness changed is undone, no report written")
			return 130
		}
		fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
		return 1
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
		return 1
	}
	if err := os.WriteFile(*jsonPath, append(data, '\n'), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
		return 1
	}
	md := rep.Markdown()
	if err := os.WriteFile(*mdPath, []byte(md), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
		return 1
	}
	fmt.Print(md)
	fmt.Fprintf(os.Stderr, "benchrun: wrote %s and %s in %.0f s\n", *mdPath, *jsonPath, rep.DurationSeconds)
	return 0
}
