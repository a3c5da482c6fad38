//go:build agenttrace_bench_pprof

// This file is not part of any package of the module: the benchmark
// harness (bench/profile.go) adds it to cmd/agenttrace with go build's
// -overlay and -tags agenttrace_bench_pprof, for the agenttrace it profiles
// under the sustained load. The agenttrace that is measured does not have it.

package main

import (
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// init serves the CPU profile on the unix socket that
// AGENTTRACE_BENCH_PPROF names.
func init() {
	sock := os.Getenv("AGENTTRACE_BENCH_PPROF")
	if sock == "" {
		return
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	go http.Serve(ln, mux)
}
