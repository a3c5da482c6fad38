package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/pipeline"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/session"
	"github.com/agenttrace/agenttrace/internal/sink"
)

// runFlags are the flags of agenttrace run.
type runFlags struct {
	log            string
	maxArgBytes    uint
	ringSize       uint
	grace          time.Duration
	cgroupParent   string
	signingKey     string
	cpRecords      uint64
	cpInterval     time.Duration
	rotateSize     int64
	rotateInterval time.Duration
	failClosed     bool
	heartbeat      time.Duration
	writeDelay     time.Duration
	fsync          string
	exportConfig   string
	sensitivePaths string
}

func newRunCommand() *cobra.Command {
	var o runFlags
	cmd := &cobra.Command{
		Use:   "run [flags] [--] CMD [ARGS...]",
		Short: "Trace CMD and everything it starts into an audit log",
		Long: `Creates a fresh cgroup v2 for the session, attaches the eBPF programs and starts
CMD inside that cgroup from its first instruction, so neither CMD nor anything it
starts runs untraced. CMD keeps the terminal; agenttrace exits with its exit status
(128+N if it was killed by signal N; 127 if it does not exist) and prints a summary
on stderr, ending with the command that verifies the log.

The flags of run come before CMD: everything from CMD on is CMD's own command line.
"--" before CMD is optional, and needed only when CMD starts with a dash.

Needs root, or CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN (agenttrace check).`,
		Example: `  sudo agenttrace run --log audit.jsonl -- python3 agent.py
  sudo agenttrace run --log audit.jsonl --signing-key /etc/agenttrace/signing.key python3 agent.py --task t.txt
  sudo agenttrace run --rotate-size 100000000 --fail-closed -- ./agent`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("no command given: agenttrace run [flags] -- CMD [ARGS...]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runTrace(cmd, args, &o) },
	}
	f := cmd.Flags()
	// Everything from CMD on is CMD's: `agenttrace run python3 x.py --verbose`.
	f.SetInterspersed(false)
	f.StringVar(&o.log, "log", "", "audit log `path` (created; never overwritten). Default: agenttrace-<time>-<pid>-<random>.jsonl")
	f.UintVar(&o.maxArgBytes, "max-arg-bytes", loader.DefaultMaxArgBytes, fmt.Sprintf("argv bytes recorded per exec, at most %d; longer argv is marked truncated with its full size", loader.MaxMaxArgBytes))
	f.UintVar(&o.ringSize, "ring-size", loader.DefaultRingBytes, "ring buffer `bytes` (a power of two)")
	f.DurationVar(&o.grace, "grace", session.DefaultGrace, "after CMD exits, how long its remaining processes may run (traced) before they are killed")
	f.StringVar(&o.cgroupParent, "cgroup-parent", "agenttrace", "where session cgroups are created, below the cgroup2 mount")
	f.StringVar(&o.signingKey, "signing-key", "", "checkpoint signing key `file` (agenttrace keygen); default: an ephemeral key, its public half written beside the log")
	f.Uint64Var(&o.cpRecords, "checkpoint-records", sink.DefaultCheckpointRecords, "sign a checkpoint after this many records")
	f.DurationVar(&o.cpInterval, "checkpoint-interval", sink.DefaultCheckpointInterval, "sign a checkpoint after this long, if there are new records")
	f.Int64Var(&o.rotateSize, "rotate-size", sink.DefaultRotateSize, "start a new segment when one reaches this many `bytes` (0: never)")
	f.DurationVar(&o.rotateInterval, "rotate-interval", 0, "start a new segment after this long (0: never)")
	f.BoolVar(&o.failClosed, "fail-closed", false, "freeze the traced processes (cgroup.freeze) while capture cannot be guaranteed: ring buffer above a quarter full, or log not writable")
	f.DurationVar(&o.heartbeat, "heartbeat", pipeline.DefaultHeartbeat, "write a heartbeat record with running totals this often")
	f.StringVar(&o.fsync, "fsync", "checkpoint", "when to fsync: checkpoint (before every checkpoint, at rotation and exit) or always (after every write)")
	f.StringVar(&o.exportConfig, "export-config", "", "ship the log while it is written to the exporters of this configuration `file` (the daemon's YAML: exporters:, state_dir:); at the end they get 10s to deliver the rest")
	f.StringVar(&o.sensitivePaths, "sensitive-paths", "", "`file` of path globs, one a line, added after the default list: opens of matching paths are tagged credential_access (a line !GLOB excludes; the last match decides; docs/schema.md)")
	// A writer that cannot keep up, for the tests of loss accounting.
	f.DurationVar(&o.writeDelay, "debug-write-delay", 0, "slow the log writer down by this much per record (tests only)")
	f.MarkHidden("debug-write-delay")
	return cmd
}

func runTrace(cmd *cobra.Command, argv []string, o *runFlags) error {
	stderr := cmd.ErrOrStderr()
	if o.maxArgBytes == 0 || o.maxArgBytes > loader.MaxMaxArgBytes {
		return usageError("--max-arg-bytes must be between 1 and %d", loader.MaxMaxArgBytes)
	}
	if o.ringSize > 1<<30 {
		return usageError("--ring-size must be at most 1 GiB")
	}
	if o.grace < 0 {
		return usageError("--grace must not be negative")
	}
	grace := o.grace
	if grace == 0 {
		grace = time.Nanosecond
	}
	syncPolicy, err := sink.ParseSyncPolicy(o.fsync)
	if err != nil {
		return usageError("--fsync: %v", err)
	}
	if o.cpRecords == 0 || o.cpInterval <= 0 || o.rotateSize < 0 || o.rotateInterval < 0 || o.heartbeat <= 0 || o.writeDelay < 0 {
		return usageError("--checkpoint-records and --checkpoint-interval must be positive, --rotate-* not negative")
	}
	sensitive, err := sensitiveSet(o.sensitivePaths)
	if err != nil {
		return usageError("--sensitive-paths: %v", err)
	}

	opts := session.Options{
		Argv:         argv,
		LogPath:      o.log,
		MaxArgBytes:  uint32(o.maxArgBytes),
		RingBytes:    uint32(o.ringSize),
		Grace:        grace,
		CgroupParent: o.cgroupParent,
		SigningKey:   o.signingKey,

		CheckpointRecords:  o.cpRecords,
		CheckpointInterval: o.cpInterval,
		RotateSize:         o.rotateSize,
		RotateInterval:     o.rotateInterval,
		Sync:               syncPolicy,
		FailClosed:         o.failClosed,
		Heartbeat:          o.heartbeat,
		WriteDelay:         o.writeDelay,
		Sensitive:          sensitive,

		Stdin:  cmd.InOrStdin(),
		Stdout: cmd.OutOrStdout(),
		Stderr: stderr,
	}
	if err := exportOptions(o.exportConfig, &opts, stderr); err != nil {
		return usageError("--export-config: %v", err)
	}
	res, err := session.Run(opts)
	if res == nil {
		var exitErr *session.ExitError
		if errors.As(err, &exitErr) {
			return &exitError{code: exitErr.Code, err: exitErr.Err}
		}
		return failed(err)
	}
	if res.CommandErr != nil {
		fmt.Fprintf(stderr, "agenttrace: %v\n", res.CommandErr)
	}
	printSummary(stderr, res, o.signingKey)
	printExports(stderr, res.Exports)
	if err != nil {
		fmt.Fprintf(stderr, "agenttrace: %v\n", err)
		if res.ExitCode == 0 {
			return exitStatus(1)
		}
	}
	return exitStatus(res.ExitCode)
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

func printSummary(w io.Writer, res *session.Result, signingKey string) {
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
	if res.TaintedRunning > 0 {
		fmt.Fprintf(w, "agenttrace: %d processes outside the session that it took over (ptrace, process_vm_writev) are still running, untraced from now on\n", res.TaintedRunning)
	}
	fmt.Fprintf(w, "agenttrace: log: %s\n", strings.Join(res.Segments, " "))
	if res.PublicKey != "" {
		what := "checkpoints"
		if len(res.Segments) > 0 && res.Segments[0] != res.LogPath {
			what = "this run's checkpoints" // a continued log: earlier runs signed theirs
		}
		fmt.Fprintf(w, "agenttrace: %s signed with an ephemeral key: %s\n", what, res.PublicKey)
	}
	fmt.Fprintf(w, "agenttrace: verify: %s\n", verifyCommand(res.LogPath, signingKey))
}

// verifyCommand is the command that verifies the whole log at base. It
// names, with one --pubkey each, a file holding every key the log's
// segments are signed with: the <segment>.pub that each run with an
// ephemeral key wrote beside its first segment, and the signing.pub that
// agenttrace keygen wrote beside a --signing-key. A key for which no such
// file exists is named by its key name for the reader to fill in.
func verifyCommand(base, signingKey string) string {
	files, _ := logfile.Segments(base)
	held := map[string]string{} // key → a file that holds it
	candidates := make([]string, 0, len(files)+1)
	for _, f := range files {
		candidates = append(candidates, f+".pub")
	}
	if signingKey != "" {
		candidates = append(candidates, filepath.Join(filepath.Dir(signingKey), "signing.pub"))
	}
	for _, c := range candidates {
		if keys, err := chain.ReadVerifierKeys(c); err == nil {
			for _, k := range keys {
				if _, ok := held[k]; !ok {
					held[k] = c
				}
			}
		}
	}
	args := []string{"agenttrace", "verify"}
	named := map[string]bool{}
	for _, f := range files {
		key := segmentKey(f)
		if key == "" || named[key] {
			continue
		}
		named[key] = true
		if file, ok := held[key]; ok {
			args = append(args, "--pubkey", shellWord(file))
		} else {
			// name+hash of name+hash+key: what keygen's signing.pub starts with.
			// name+hash of name+hash+key (whose base64 may hold '+').
			parts := strings.SplitN(key, "+", 3)
			args = append(args, "--pubkey", "<the public key "+strings.Join(parts[:min(2, len(parts))], "+")+">")
		}
	}
	if len(named) == 0 {
		args = append(args, "--pubkey", "<your public key>")
	}
	return strings.Join(append(args, shellWord(base)), " ")
}

// segmentKey is the verifier key a segment's header names, "" if it cannot
// be read.
func segmentKey(path string) string {
	line, _, err := logfile.FirstLine(path)
	if err != nil || line == nil {
		return ""
	}
	r, err := record.Decode(line[:len(line)-1])
	if err != nil {
		return ""
	}
	if hdr, ok := r.Body.(*record.Header); ok {
		return hdr.Key
	}
	return ""
}

// shellWord quotes s for a POSIX shell when it needs it.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
