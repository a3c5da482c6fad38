// Package bench owns agenttrace's benchmark harness: the native workload
// programs in workload/ (compiled here with gcc), the conditions they run
// under — no tracer; agenttrace tracing them; agenttrace running but not
// tracing them; auditd; libbpf-tools; the agenttrace daemon running but not
// tracing them — the interleaved schedule that makes the conditions
// comparable on a shared, noisy machine, the sustained openat load and the
// real-work suite (a Go build, a C build, a test suite, a file search), the
// cost of each tracer counted as CPU time (in the workload's syscalls and
// in the tracer's own processes), the profile of agenttrace under load
// (BPF statistics per program, pprof of its user space), the sustained-rate
// search, the Go benchmarks of the user-space pipeline, and the report
// (BENCHMARKS.md and results.json).
//
// A slice under a tracer ends only when the tracer has written everything
// the workload made: the next slice never runs against a tracer's leftover
// work.
//
// It measures and never asserts a time: its only test is a smoke test that a
// tiny run produces a report in which agenttrace's events were counted.
//
// It must leave the machine as it found it. The audit daemon it starts, the
// audit rules and settings it changes, a tracefs mount and the cgroups it
// makes are undone on every exit it controls, SIGINT and SIGTERM included;
// it never touches an audit daemon or audit rules that were there before it.
// No tracer of its own stays loaded outside its conditions' slices.
package bench
