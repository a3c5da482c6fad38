// Package bench owns agenttrace's benchmark harness: the native workload
// programs in workload/ (compiled here with gcc), the conditions they run
// under — no tracer; agenttrace tracing them; agenttrace running but not
// tracing them; auditd; libbpf-tools; the agenttrace daemon running but not
// tracing them — the interleaved schedule that makes the conditions
// comparable on a shared, noisy machine, the sustained-rate search, the Go
// benchmarks of the user-space pipeline, and the report (BENCHMARKS.md and
// results.json).
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
