// Package session owns one `agenttrace run`: a fresh cgroup, the tracer
// attached to it, the command started inside it, and the end-of-session
// policy for processes the command leaves behind.
//
// It must never let the command run before tracing is attached, and never
// return while a process of the session is still running untraced.
package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/cgroup"
	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/export"
	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/pipeline"
	"github.com/agenttrace/agenttrace/internal/preflight"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/sink"
	"github.com/agenttrace/agenttrace/internal/tracer"
)

// Version is agenttrace's version, set by the linker for releases.
var Version = "0.1.0-dev"

// DefaultExportDrain is how long exporters may take, after the log's final
// checkpoint, to deliver what they have not yet.
const DefaultExportDrain = 10 * time.Second

// DefaultGrace is how long processes may outlive the command before they
// are killed.
const DefaultGrace = 2 * time.Second

// Options of one run.
type Options struct {
	Argv         []string
	LogPath      string // "" for a unique name in the current directory
	MaxArgBytes  uint32
	RingBytes    uint32
	Grace        time.Duration
	CgroupParent string // below the cgroup2 mount; default "agenttrace"
	// SigningKey signs checkpoints; "" generates an ephemeral key whose
	// public half is written beside the log as <segment>.pub.
	SigningKey         string
	CheckpointRecords  uint64
	CheckpointInterval time.Duration
	RotateSize         int64
	RotateInterval     time.Duration
	Sync               sink.SyncPolicy
	// FailClosed freezes the session's processes while capture cannot be
	// guaranteed (ring buffer near full, log not writable).
	FailClosed bool
	Heartbeat  time.Duration
	// WriteDelay slows the writer down, for tests of loss accounting.
	WriteDelay time.Duration
	// Sensitive paths: opens of them are tagged credential_access. nil:
	// record.DefaultSensitive().
	Sensitive *record.PathSet
	// Exporters ship the log while the session runs, each tailing it with
	// its cursor in ExportStateDir; after the final checkpoint they get
	// ExportDrain (default DefaultExportDrain) to deliver the rest.
	Exporters      []export.Config
	ExportStateDir string
	ExportDrain    time.Duration
	ExportLogger   *zerolog.Logger // exporters' warnings; nil: none
	Stdin          io.Reader
	Stdout         io.Writer
	Stderr         io.Writer
}

// Result of a run.
type Result struct {
	LogPath     string   // the log's base path (its first segment)
	Segments    []string // the segments this run wrote
	PublicKey   string   // file holding the ephemeral public key, if one was generated
	ExitCode    int      // as a shell would report it: code, or 128+signal
	Records     uint64
	ByType      map[string]uint64
	Lost        map[string]uint64 // by kind, from the kernel's counters
	LeftRunning int               // processes of the session alive when the grace period ended, wherever they were
	// TaintedRunning counts processes outside the session that it took over
	// (ptrace, process_vm_writev) still running at its end: not killed.
	TaintedRunning int
	Freezes        int    // fail-closed freezes
	Unrecorded     uint64 // lost events not even a gap record could count (log not writable at the end)
	CommandErr     error  // the command could not be started or waited for
	Exports        []ExportResult
}

// ExportResult is what one exporter delivered.
type ExportResult struct {
	Name    string
	Stats   export.RunnerStats
	LastSeq uint64 // the log's last record: everything up to it is delivered if Stats.LastSeq is as high
	Err     error
}

// ExitError carries the exit status agenttrace should end with.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// lookCommand resolves argv[0] like a shell: 127 if it does not exist, 126
// if it cannot be executed.
func lookCommand(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err == nil {
		return path, nil
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return "", &ExitError{Code: 127, Err: fmt.Errorf("%s: command not found", name)}
	}
	return "", &ExitError{Code: 126, Err: fmt.Errorf("%s: cannot execute: %w", name, err)}
}

// DefaultLogName is unique per run: time, pid and random bits.
func DefaultLogName() string {
	var rnd [4]byte
	rand.Read(rnd[:])
	return fmt.Sprintf("agenttrace-%s-%d-%s.jsonl", time.Now().UTC().Format("20060102T150405Z"), os.Getpid(), hex.EncodeToString(rnd[:]))
}

// BootID reads the kernel's boot id.
func BootID() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// Run runs one session to the end and returns its result. Errors before the
// command started are returned with nothing left behind but, possibly, an
// empty log; errors after it started still return the result.
func Run(opts Options) (*Result, error) {
	if len(opts.Argv) == 0 {
		return nil, &ExitError{Code: 2, Err: errors.New("no command given: agenttrace run [flags] -- CMD [ARGS...]")}
	}
	if opts.Grace == 0 {
		opts.Grace = DefaultGrace
	}
	if opts.CgroupParent == "" {
		opts.CgroupParent = "agenttrace"
	}
	if opts.LogPath == "" {
		opts.LogPath = DefaultLogName()
	}
	cmdPath, err := lookCommand(opts.Argv[0])
	if err != nil {
		return nil, err
	}
	if err := preflight.Required(); err != nil {
		return nil, err
	}
	mount, err := cgroup.Mount()
	if err != nil {
		return nil, err
	}

	if err := unix.Access(filepath.Dir(opts.LogPath), unix.W_OK|unix.X_OK); err != nil {
		return nil, fmt.Errorf("cannot create log %s: %w", opts.LogPath, err)
	}
	for _, e := range opts.Exporters {
		if err := export.CheckCursor(e, opts.ExportStateDir, opts.LogPath); err != nil {
			return nil, err
		}
	}
	signer, vkey, ephemeral, err := signingKey(opts.SigningKey)
	if err != nil {
		return nil, err
	}

	name := fmt.Sprintf("run-%d-%d", time.Now().UnixNano(), os.Getpid())
	cg, err := cgroup.Create(mount, filepath.Join(opts.CgroupParent, name))
	if err != nil {
		return nil, err
	}
	defer cg.Remove()

	host, _ := os.Hostname()
	enc := record.NewEncoder(host, BootID(), record.WallOffset(), cgroup.NewResolver(mount, cg.Rel))
	sensitive := opts.Sensitive
	if sensitive == nil {
		sensitive = record.DefaultSensitive()
	}
	enc.SetSensitive(sensitive)
	enc.SetSensitiveFiles(record.ResolveSensitiveFiles(sensitive))
	enc.Hasher = record.NewExeHasher()
	cfg := tracer.Config{
		Load: loader.Config{MaxArgBytes: opts.MaxArgBytes, RingBytes: opts.RingBytes},
		Target: func(k *loader.Tracer) error {
			if err := k.SetTarget(0, cg.FD(), cg.ID); err != nil {
				return err
			}
			// Nothing in the kernel changes from here on: nobody can change it.
			return k.Freeze()
		},
		Encoder: enc,
		Log: sink.Options{
			Base: opts.LogPath, Signer: signer, VerifierKey: vkey, Version: Version,
			CheckpointRecords: opts.CheckpointRecords, CheckpointInterval: opts.CheckpointInterval,
			RotateSize: opts.RotateSize, RotateInterval: opts.RotateInterval, Sync: opts.Sync,
		},
		Pipeline: pipeline.Options{Heartbeat: opts.Heartbeat, WriteDelay: opts.WriteDelay, OnBlocked: func(err error) {
			if err != nil {
				fmt.Fprintf(opts.Stderr, "agenttrace: THE LOG REFUSES WRITES (%v): events are counted in the log once it takes writes again, not recorded\n", err)
			} else {
				fmt.Fprintln(opts.Stderr, "agenttrace: the log takes writes again; what was lost meanwhile is counted in a gap record")
			}
		}},
	}
	if opts.FailClosed {
		cfg.Freezer = cg
	}
	tr, err := tracer.Start(cfg)
	if err != nil {
		return nil, err
	}
	// What fails before the start record leaves a log of a header and a
	// final checkpoint: nothing was traced.
	abort := func(err error) (*Result, error) {
		tr.Stop(time.Minute)
		tr.Close()
		return nil, err
	}
	exporters, err := startExporters(opts, tr.Log)
	if err != nil {
		return abort(err)
	}
	defer exporters.stop() // on early returns; a no-op after the normal end
	pubPath := ""
	if ephemeral {
		pubPath = tr.Log.Path() + ".pub"
		if err := writePublicKey(pubPath, vkey); err != nil {
			return abort(err)
		}
	}
	maxArg := opts.MaxArgBytes
	if maxArg == 0 {
		maxArg = loader.DefaultMaxArgBytes
	}
	start := &record.Start{
		AgenttraceVersion: Version, Pid: os.Getpid(), Uid: os.Getuid(),
		Command: cmdPath, Argv: opts.Argv, Cgroup: cg.Rel, CgroupID: cg.ID, MaxArgBytes: maxArg,
		SensitivePaths: sensitive.Patterns(), Hooks: Hooks(tr.Kernel),
	}
	// Attribution starts with the start record: the kernel records after
	// it are the session's, and agenttrace created its root process.
	if err := tr.Log.Append(start); err != nil {
		return abort(fmt.Errorf("writing the start record: %w", err))
	}

	exitCode, waitErr := runCommand(cmdPath, opts, cg)

	// The command is gone; give its descendants the grace period, then
	// kill them, wherever they are.
	left, tainted, treeErr := endTree(tr.Kernel, cg, opts.Grace)
	if waitErr == nil {
		waitErr = treeErr
	}

	// Nothing in the cgroup can emit any more: drain the ring and stop.
	stats, pipeErr := tr.Stop(time.Minute)
	res := &Result{LogPath: opts.LogPath, PublicKey: pubPath, ExitCode: exitCode, CommandErr: waitErr, LeftRunning: left, TaintedRunning: tainted,
		Freezes: stats.Freezes, ByType: stats.WrittenCounts(), Lost: stats.LostCounts()}
	for kind := range stats.Unwritten {
		res.Unrecorded += stats.Unwritten[kind]
	}
	stopErr := tr.Log.Append(stopBody("command exited", res, waitErr, &stats))
	closeErr := tr.Close()
	finalSeq, _ := tr.Log.Head()
	res.Exports = exporters.stop()
	for i := range res.Exports {
		res.Exports[i].LastSeq = finalSeq
	}
	counts := tr.Log.Counts()
	res.Segments = tr.Log.Paths()
	res.ByType["start"], res.ByType["stop"] = 1, 0
	if stopErr == nil {
		res.ByType["stop"] = 1
	}
	res.ByType["gap"], res.ByType["heartbeat"] = stats.GapRecords, stats.Heartbeats
	res.ByType["freeze"], res.ByType["thaw"] = uint64(stats.Freezes), uint64(stats.Freezes)
	res.ByType["header"], res.ByType["checkpoint"], res.ByType["recovery"] = counts.Headers, counts.Checkpoints, counts.Recoveries
	res.Records = counts.Records + counts.Headers + counts.Checkpoints + counts.Recoveries
	if stopErr != nil {
		stopErr = fmt.Errorf("writing the stop record: %w", stopErr)
	}
	return res, errors.Join(pipeErr, stopErr, closeErr)
}

// Hooks are the attached programs and their kernel tags, for start records.
func Hooks(k *loader.Tracer) []record.Hook {
	tags := k.ProgramTags()
	out := make([]record.Hook, len(loader.Hooks))
	for i, h := range loader.Hooks {
		out[i] = record.Hook{Hook: h.Name, Tag: tags[h.Name]}
	}
	return out
}

// stopBody is the session's stop record.
func stopBody(reason string, res *Result, waitErr error, stats *pipeline.Stats) *record.Stop {
	s := &record.Stop{Reason: reason, ExitCode: res.ExitCode, LeftRunning: res.LeftRunning, TaintedRunning: res.TaintedRunning,
		Records: stats.WrittenCounts(), Lost: stats.LostCounts()}
	if waitErr != nil {
		s.Error = waitErr.Error()
	}
	if res.LeftRunning > 0 {
		s.LeftRunningAction = "killed with SIGKILL after the grace period"
	}
	return s
}

// runCommand starts the command inside the cgroup, forwards signals, and
// waits. It returns the exit status as a shell would.
func runCommand(path string, opts Options, cg *cgroup.Cgroup) (int, error) {
	cmd := exec.Command(path)
	cmd.Args = opts.Argv
	cmd.Stdin, cmd.Stdout, cmd.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// clone3(CLONE_INTO_CGROUP): in the traced cgroup before its first instruction.
		UseCgroupFD: true,
		CgroupFD:    cg.FD(),
		// Its own process group: a signal to agenttrace's group reaches
		// the command once, through forwarding, not twice.
		Setpgid: true,
	}
	tty, foreground := foregroundTTY(opts.Stdin)
	if foreground {
		// A job on the terminal: ^C and ^Z go to the command directly.
		cmd.SysProcAttr.Foreground = true
		cmd.SysProcAttr.Ctty = tty
	}

	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(signals)

	if err := cmd.Start(); err != nil {
		// The failed execve is in the log; exit like a shell would.
		code := 126
		if errors.Is(err, os.ErrNotExist) {
			code = 127
		}
		return code, fmt.Errorf("%s: cannot execute: %w", path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
wait:
	for {
		select {
		case sig := <-signals:
			cmd.Process.Signal(sig)
		case err = <-done:
			break wait
		}
	}
	if foreground {
		reclaimTTY(tty)
	}
	state := cmd.ProcessState
	if state == nil {
		return 1, err
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return state.ExitCode(), nil
}

// foregroundTTY reports whether stdin is a terminal whose foreground process
// group is agenttrace's own.
func foregroundTTY(stdin io.Reader) (int, bool) {
	f, ok := stdin.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil || pgrp != unix.Getpgrp() {
		return 0, false
	}
	return fd, true
}

// reclaimTTY makes agenttrace's process group the terminal's foreground again.
func reclaimTTY(fd int) {
	// tcsetpgrp from a background group raises SIGTTOU unless it is ignored.
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, unix.Getpgrp())
}

// signingKey reads the key at path, or generates an ephemeral one.
func signingKey(path string) (note.Signer, string, bool, error) {
	if path != "" {
		signer, vkey, err := chain.ReadSigningKey(path)
		return signer, vkey, false, err
	}
	skey, vkey, err := chain.GenerateKey()
	if err != nil {
		return nil, "", false, fmt.Errorf("generating signing key: %w", err)
	}
	signer, err := note.NewSigner(skey)
	return signer, vkey, true, err
}

func writePublicKey(path, vkey string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("writing public key: %w", err)
	}
	if _, err := f.WriteString(vkey + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("writing public key: %w", err)
	}
	return f.Close()
}

// runningExporters are the session's exporters.
type runningExporters struct {
	runners []*export.Runner
	cancel  context.CancelFunc
	done    []chan error
	results []ExportResult
}

// startExporters starts one Runner per configured exporter on the log;
// a cursor that does not belong to this log is an error before the command
// starts.
func startExporters(opts Options, log *sink.Writer) (*runningExporters, error) {
	e := &runningExporters{}
	if len(opts.Exporters) == 0 {
		return e, nil
	}
	drain := opts.ExportDrain
	if drain <= 0 {
		drain = DefaultExportDrain
	}
	head := func() uint64 { seq, _ := log.Head(); return seq }
	for _, cfg := range opts.Exporters {
		r, err := export.NewRunner(cfg, export.RunnerOptions{
			Log: opts.LogPath, StateDir: opts.ExportStateDir, Head: head, Logger: opts.ExportLogger, DrainTimeout: drain, Version: Version,
		})
		if err != nil {
			e.stop()
			return nil, err
		}
		e.runners = append(e.runners, r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	for _, r := range e.runners {
		done := make(chan error, 1)
		e.done = append(e.done, done)
		go func() { done <- r.Run(ctx) }()
	}
	return e, nil
}

// stop ends the exporters once the log is closed: each delivers what it
// has not yet, within its drain bound, and returns.
func (e *runningExporters) stop() []ExportResult {
	if e.results != nil || len(e.runners) == 0 {
		return e.results
	}
	if e.cancel == nil {
		for _, r := range e.runners {
			r.Close()
		}
		e.runners = nil
		return nil
	}
	e.cancel()
	e.results = []ExportResult{}
	for i, r := range e.runners {
		err := <-e.done[i]
		e.results = append(e.results, ExportResult{Name: r.Name(), Stats: r.Stats(), Err: err})
	}
	return e.results
}
