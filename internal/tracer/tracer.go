// Package tracer is the one runtime that `agenttrace run` and `agenttrace
// daemon` build: it loads the kernel side, sets what it traces, opens the
// log, attaches the hooks, and runs the pipeline (and, fail-closed, the
// guard); Stop and Close take it down in the reverse order. Run and daemon
// keep only what differs: what is traced (a session cgroup or target
// patterns), their start and stop records, and their own lifecycles.
//
// It never writes a record itself beyond what the pipeline and guard write:
// the start and stop records are the caller's.
package tracer

import (
	"errors"
	"fmt"
	"time"

	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/pipeline"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/sink"
)

// Config of a tracer.
type Config struct {
	Load loader.Config
	// Target sets what the kernel traces, after loading and before
	// anything is attached (run: the session cgroup; daemon: patterns).
	Target func(*loader.Tracer) error
	// Encoder is what the log's records are written with; its sensitive
	// paths and cgroup resolver are the caller's.
	Encoder *record.Encoder
	// Log is the log's options; Encoder is set from above.
	Log      sink.Options
	Pipeline pipeline.Options
	// Freezer, if set, makes the tracer fail-closed from the start.
	Freezer pipeline.Freezer
	// BeforeRead, if set, runs once the hooks are attached and before the
	// ring is read: the caller's start record goes first in the log, before
	// what an adopted kernel side recorded while no daemon ran.
	BeforeRead func(*Tracer) error
}

// Tracer is a loaded, attached and running tracer.
type Tracer struct {
	Kernel *loader.Tracer
	Enc    *record.Encoder
	Log    *sink.Writer
	Pipe   *pipeline.Pipeline

	// Kernel state adopted or replaced (a daemon's pinned kernel side).
	Resume    *pipeline.Resume       // adopted: where the accounting stood
	ResumeErr error                  // adopted: why the log's tail could not be matched with the ring
	Replaced  []loader.ReplacedState // kernel sides of other builds, removed

	pipeDone chan error
	pipeErr  error
	drained  bool
	guard    *pipeline.Guard
}

// Start loads, targets, opens the log, attaches and starts the pipeline, in
// that order; on error it undoes what it did (a log it created stays, with
// what was written to it).
func Start(cfg Config) (*Tracer, error) {
	t := &Tracer{Enc: cfg.Encoder}
	if err := t.start(cfg); err != nil {
		t.undo()
		return nil, err
	}
	return t, nil
}

func (t *Tracer) start(cfg Config) error {
	var err error
	if t.Kernel, err = loader.Load(cfg.Load); err != nil {
		return err
	}
	if cfg.Target != nil {
		if err = cfg.Target(t.Kernel); err != nil {
			return err
		}
	}
	cfg.Log.Encoder = cfg.Encoder
	if t.Log, err = sink.Open(cfg.Log); err != nil {
		return err
	}
	if t.Kernel.Adopted() {
		// The log's tail after the custody point: records the last
		// reader wrote and did not commit are still in the ring.
		t.Resume, t.ResumeErr = pipeline.ResumeFrom(cfg.Log.Base, t.Log.LogID(), t.Kernel.Resumed())
		cfg.Pipeline.Resume = t.Resume
	}
	if err = t.Kernel.Attach(); err != nil {
		return err
	}
	// Only now that this kernel side records: nothing goes unrecorded
	// between the two.
	t.Replaced = t.Kernel.RemoveReplaced()
	if cfg.BeforeRead != nil {
		if err := cfg.BeforeRead(t); err != nil {
			return err
		}
	}
	t.Pipe = pipeline.New(t.Kernel, t.Log, cfg.Pipeline)
	t.pipeDone = make(chan error, 1)
	go func() { t.pipeDone <- t.Pipe.Run() }()
	if cfg.Freezer != nil {
		t.SetFailClosed(cfg.Freezer)
	}
	return nil
}

// undo takes down a Start that failed part way. An adopted kernel side
// stays pinned, recording (the daemon retries a start on a full disk); one
// loaded now goes.
func (t *Tracer) undo() {
	if t.Kernel != nil && !t.Kernel.Pinned() {
		t.Kernel.Release()
	}
	if t.Pipe != nil {
		t.HandOver(time.Minute)
	}
	t.Close()
}

// SetFailClosed starts the fail-closed guard with freezer, or stops it
// (nil). Not safe for concurrent use with itself or Stop.
func (t *Tracer) SetFailClosed(freezer pipeline.Freezer) {
	switch {
	case freezer != nil && t.guard == nil:
		t.guard = pipeline.NewGuard(t.Kernel, t.Log, freezer)
		t.guard.Start()
	case freezer == nil && t.guard != nil:
		t.guard.Stop()
		t.guard = nil
	}
}

// Freezes is how many times the guard froze the traced processes.
func (t *Tracer) Freezes() int {
	if t.guard == nil {
		return 0
	}
	return t.guard.Freezes()
}

// ErrDrainTimeout: the pipeline did not drain the ring within the time
// given to Stop. The records not drained are in no gap record either.
var ErrDrainTimeout = errors.New("draining the ring buffer did not finish in time")

// Stop ends tracing: the guard (thawing what it froze), the hooks (a
// pinned kernel side is released: a deliberate stop), then it drains the
// ring into the log and waits for the pipeline, at most timeout. It
// returns the pipeline's counts. The log stays open for the caller's stop
// record; Close closes it.
func (t *Tracer) Stop(timeout time.Duration) (pipeline.Stats, error) {
	return t.stop(timeout, false)
}

// HandOver ends this tracer's part and leaves its pinned kernel side
// recording, for the next daemon to adopt: the guard stops, what the ring
// holds now is written to the log, and the pipeline ends without counting
// the rest as lost. Without a pinned kernel side it is Stop.
func (t *Tracer) HandOver(timeout time.Duration) (pipeline.Stats, error) {
	return t.stop(timeout, t.Kernel.Pinned())
}

func (t *Tracer) stop(timeout time.Duration, handOver bool) (pipeline.Stats, error) {
	freezes := t.Freezes()
	t.SetFailClosed(nil)
	if handOver {
		t.Pipe.HandOver()
		t.Log.KeepKernelRecords()
	} else {
		if err := t.Kernel.Release(); err != nil {
			t.pipeErr = fmt.Errorf("unpinning the kernel side: %w", err)
		}
		t.Kernel.Detach()
	}
	t.Kernel.Flush()
	if !t.drained {
		select {
		case err := <-t.pipeDone:
			t.pipeErr = errors.Join(t.pipeErr, err)
			t.drained = true
		case <-time.After(timeout):
			t.pipeErr = errors.Join(t.pipeErr, ErrDrainTimeout)
		}
	}
	stats := t.Pipe.Stats()
	stats.Freezes = freezes
	// Losses the log refused even as a gap record: if it still refuses
	// writes at Close, they are counted for its next writer.
	t.Log.AddUnwritten(stats.UnwrittenCounts())
	return stats, t.pipeErr
}

// Close closes the log (a final checkpoint) and unloads the kernel side.
func (t *Tracer) Close() error {
	var err error
	if t.Log != nil {
		err = t.Log.Close()
	}
	if t.Kernel != nil {
		err = errors.Join(err, t.Kernel.Close())
	}
	return err
}
