// Command agenttrace records every exec, file open and network connect made
// by an AI agent's process tree into a syscall-exact audit log.
//
//	agenttrace run [--log PATH] [--max-arg-bytes N] -- CMD [ARGS...]
//	agenttrace daemon [--config FILE]
//	agenttrace export --config FILE [--exporter NAME] [--from-seq N] [--to-seq M] --once LOG
//	agenttrace verify [--pubkey FILE] [--head SEQ:HASH] LOG|DIR...
//	agenttrace show [--json] [--html FILE] [filters] LOG|DIR...
//	agenttrace keygen --out DIR
//	agenttrace check
//	agenttrace version
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/pipeline"
	"github.com/agenttrace/agenttrace/internal/preflight"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/session"
	"github.com/agenttrace/agenttrace/internal/sink"
)

const usage = `agenttrace: a syscall-exact audit log of what an AI agent's processes do

Usage:
  agenttrace run [flags] -- CMD [ARGS...]   trace CMD and everything it starts
  agenttrace daemon [--config FILE]         trace the cgroups a configuration names, as a host service
  agenttrace export [flags] --once LOG      send a log (or a seq range) to the configured SIEM exporters again
  agenttrace verify [flags] LOG|DIR...      prove a log is complete and unmodified up to its signed checkpoints
  agenttrace show [flags] LOG|DIR...        verify, then show the tool calls, processes, files and connections
  agenttrace keygen --out DIR               create a checkpoint signing key pair
  agenttrace check                          check that this host can run agenttrace
  agenttrace version                        print the version

Run "agenttrace run -h" for the flags of run.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdin, stdout, stderr)
	case "daemon":
		return cmdDaemon(args[1:], stderr)
	case "export":
		return cmdExport(args[1:], stdout, stderr)
	case "check":
		return cmdCheck(stdout)
	case "verify":
		return cmdVerify(args[1:], stdout, stderr)
	case "show":
		return cmdShow(args[1:], stdout, stderr)
	case "keygen":
		return cmdKeygen(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "agenttrace", session.Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "agenttrace: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func cmdRun(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logPath := fs.String("log", "", "audit log `path` (created; never overwritten). Default: agenttrace-<time>-<pid>-<random>.jsonl")
	maxArg := fs.Uint("max-arg-bytes", loader.DefaultMaxArgBytes, fmt.Sprintf("argv bytes recorded per exec, at most %d; longer argv is marked truncated with its full size", loader.MaxMaxArgBytes))
	ringSize := fs.Uint("ring-size", loader.DefaultRingBytes, "ring buffer `bytes` (a power of two)")
	grace := fs.Duration("grace", session.DefaultGrace, "after CMD exits, how long its remaining processes may run (traced) before they are killed")
	cgroupParent := fs.String("cgroup-parent", "agenttrace", "where session cgroups are created, below the cgroup2 mount")
	signingKey := fs.String("signing-key", "", "checkpoint signing key `file` (agenttrace keygen); default: an ephemeral key, its public half written beside the log")
	cpRecords := fs.Uint64("checkpoint-records", sink.DefaultCheckpointRecords, "sign a checkpoint after this many records")
	cpInterval := fs.Duration("checkpoint-interval", sink.DefaultCheckpointInterval, "sign a checkpoint after this long, if there are new records")
	rotateSize := fs.Int64("rotate-size", 0, "start a new segment when one reaches this many `bytes` (0: never)")
	rotateInterval := fs.Duration("rotate-interval", 0, "start a new segment after this long (0: never)")
	failClosed := fs.Bool("fail-closed", false, "freeze the traced processes (cgroup.freeze) while capture cannot be guaranteed: ring buffer above half full, or log not writable")
	heartbeat := fs.Duration("heartbeat", pipeline.DefaultHeartbeat, "write a heartbeat record with running totals this often")
	writeDelay := fs.Duration("debug-write-delay", 0, "")
	fsync := fs.String("fsync", "checkpoint", "when to fsync: checkpoint (before every checkpoint, at rotation and exit) or always (after every write)")
	exportConfig := fs.String("export-config", "", "ship the log while it is written to the exporters of this configuration `file` (the daemon's YAML: exporters:, state_dir:); at the end they get 10s to deliver the rest")
	sensitivePaths := fs.String("sensitive-paths", "", "`file` of path globs, one a line, added after the default list: opens of matching paths are tagged credential_access (a line !GLOB excludes; the last match decides; docs/schema.md)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: agenttrace run [flags] -- CMD [ARGS...]\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			if f.Usage == "" {
				return // test-only knobs (debug-write-delay: a writer that cannot keep up)
			}
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(stderr, "  --%s %s\n    \t%s", f.Name, name, usage)
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "0s" {
				fmt.Fprintf(stderr, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(stderr)
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *maxArg == 0 || *maxArg > loader.MaxMaxArgBytes {
		fmt.Fprintf(stderr, "agenttrace: --max-arg-bytes must be between 1 and %d\n", loader.MaxMaxArgBytes)
		return 2
	}
	if *ringSize > 1<<30 {
		fmt.Fprintln(stderr, "agenttrace: --ring-size must be at most 1 GiB")
		return 2
	}
	if *grace < 0 {
		fmt.Fprintln(stderr, "agenttrace: --grace must not be negative")
		return 2
	}
	if *grace == 0 {
		*grace = time.Nanosecond
	}
	syncPolicy, err := sink.ParseSyncPolicy(*fsync)
	if err != nil {
		fmt.Fprintf(stderr, "agenttrace: --fsync: %v\n", err)
		return 2
	}
	if *cpRecords == 0 || *cpInterval <= 0 || *rotateSize < 0 || *rotateInterval < 0 || *heartbeat <= 0 || *writeDelay < 0 {
		fmt.Fprintln(stderr, "agenttrace: --checkpoint-records and --checkpoint-interval must be positive, --rotate-* not negative")
		return 2
	}

	sensitive, err := sensitiveSet(*sensitivePaths)
	if err != nil {
		fmt.Fprintf(stderr, "agenttrace: --sensitive-paths: %v\n", err)
		return 2
	}

	opts := session.Options{
		Argv:         fs.Args(),
		LogPath:      *logPath,
		MaxArgBytes:  uint32(*maxArg),
		RingBytes:    uint32(*ringSize),
		Grace:        *grace,
		CgroupParent: *cgroupParent,
		SigningKey:   *signingKey,

		CheckpointRecords:  *cpRecords,
		CheckpointInterval: *cpInterval,
		RotateSize:         *rotateSize,
		RotateInterval:     *rotateInterval,
		Sync:               syncPolicy,
		FailClosed:         *failClosed,
		Heartbeat:          *heartbeat,
		WriteDelay:         *writeDelay,
		Sensitive:          sensitive,

		Stdin:  stdin,
		Stdout: stdout,
		Stderr: stderr,
	}
	if err := exportOptions(*exportConfig, &opts, stderr); err != nil {
		fmt.Fprintf(stderr, "agenttrace: --export-config: %v\n", err)
		return 2
	}
	res, err := session.Run(opts)
	if res == nil {
		var exitErr *session.ExitError
		if errors.As(err, &exitErr) {
			fmt.Fprintf(stderr, "agenttrace: %v\n", exitErr.Err)
			return exitErr.Code
		}
		fmt.Fprintf(stderr, "agenttrace: %v\n", err)
		return 1
	}
	if res.CommandErr != nil {
		fmt.Fprintf(stderr, "agenttrace: %v\n", res.CommandErr)
	}
	printSummary(stderr, res)
	printExports(stderr, res.Exports)
	if err != nil {
		fmt.Fprintf(stderr, "agenttrace: %v\n", err)
		if res.ExitCode == 0 {
			return 1
		}
	}
	return res.ExitCode
}

// sensitiveSet compiles the default sensitive path list followed by the
// patterns of file ("" for none).
func sensitiveSet(file string) (*record.PathSet, error) {
	var extra []string
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		extra = record.ParsePatterns(string(data))
	}
	return record.SensitiveWith(extra)
}

func printSummary(w io.Writer, res *session.Result) {
	var parts []string
	for _, typ := range record.Types {
		if n := res.ByType[typ.Name]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", typ.Name, n))
		}
	}
	var lost uint64
	var lostParts []string
	keys := make([]string, 0, len(res.Lost))
	for k := range res.Lost {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lost += res.Lost[k]
		lostParts = append(lostParts, fmt.Sprintf("%s %d", k, res.Lost[k]))
	}
	fmt.Fprintf(w, "agenttrace: %d records (%s)\n", res.Records, strings.Join(parts, ", "))
	if lost == 0 {
		fmt.Fprintln(w, "agenttrace: events lost: 0")
	} else {
		fmt.Fprintf(w, "agenttrace: EVENTS LOST: %d (%s)\n", lost, strings.Join(lostParts, ", "))
		if res.Unrecorded == 0 {
			fmt.Fprintln(w, "agenttrace: every lost event is counted in a gap record in the log")
		} else {
			fmt.Fprintf(w, "agenttrace: %d of them could not be counted in the log either: it stayed unwritable\n", res.Unrecorded)
		}
	}
	if res.LeftRunning > 0 {
		fmt.Fprintf(w, "agenttrace: %d processes were still running after the grace period and were killed (their exits are in the log)\n", res.LeftRunning)
	}
	fmt.Fprintf(w, "agenttrace: log: %s\n", strings.Join(res.Segments, " "))
	switch {
	case res.PublicKey != "" && len(res.Segments) > 0 && res.Segments[0] == res.LogPath:
		fmt.Fprintf(w, "agenttrace: checkpoints signed with an ephemeral key: %s\n", res.PublicKey)
		fmt.Fprintf(w, "agenttrace: verify: agenttrace verify --pubkey %s %s\n", res.PublicKey, res.LogPath)
	case res.PublicKey != "":
		// A continued log: its earlier segments were signed by other runs' keys.
		fmt.Fprintf(w, "agenttrace: this run's checkpoints signed with an ephemeral key: %s\n", res.PublicKey)
		fmt.Fprintf(w, "agenttrace: verify: agenttrace verify %s (it lists the key of every segment)\n", res.LogPath)
	default:
		fmt.Fprintf(w, "agenttrace: verify: agenttrace verify --pubkey <your public key> %s\n", res.LogPath)
	}
}

func cmdCheck(stdout io.Writer) int {
	failed := false
	for _, r := range preflight.All() {
		status := "OK"
		switch {
		case !r.OK && r.Required:
			status = "MISSING"
			failed = true
		case !r.OK:
			status = "optional"
		}
		fmt.Fprintf(stdout, "%-8s %-28s %s\n", status, r.Name, r.Detail)
		if !r.OK && r.Fix != "" {
			fmt.Fprintf(stdout, "%-8s %-28s -> %s\n", "", "", r.Fix)
		}
	}
	if failed {
		fmt.Fprintln(stdout, "\nagenttrace cannot run here: fix the MISSING items above.")
		return 1
	}
	fmt.Fprintln(stdout, "\nagenttrace can run here.")
	return 0
}
