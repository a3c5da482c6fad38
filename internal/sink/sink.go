// Package sink owns the audit log files: it creates or continues a log
// (never over an existing file), numbers records with a contiguous seq,
// links each to the one before by hash, writes whole lines only, signs
// checkpoints, rotates segments, and makes records durable before any
// checkpoint covers them.
//
// It must never reorder, rewrite or truncate what it has written.
package sink

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
)

// flushBytes is how much is buffered before a write(2); the writer also
// flushes on its own tick so a record reaches the file within a second.
const flushBytes = 256 << 10

// Defaults for checkpoints and rotation.
const (
	// DefaultRotateSize keeps a segment small enough to copy, ship and
	// verify piecewise; a log is any number of segments.
	DefaultRotateSize         = 256 << 20
	DefaultCheckpointRecords  = 10000
	DefaultCheckpointInterval = 10 * time.Second
	tick                      = 250 * time.Millisecond
	blockedRetry              = 20 * time.Millisecond
)

// SyncPolicy says when the log is fsync'ed.
type SyncPolicy int

const (
	// SyncCheckpoint: before every checkpoint (so a checkpoint never covers
	// a record that is not on disk), at rotation and at close.
	SyncCheckpoint SyncPolicy = iota
	// SyncAlways: additionally after every write of buffered records.
	SyncAlways
)

// ParseSyncPolicy parses "checkpoint" or "always".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch s {
	case "checkpoint":
		return SyncCheckpoint, nil
	case "always":
		return SyncAlways, nil
	}
	return 0, fmt.Errorf("unknown fsync policy %q (want checkpoint or always)", s)
}

// Options of a log.
type Options struct {
	Base               string // path of segment 1; later segments are numbered beside it
	Signer             note.Signer
	VerifierKey        string
	Encoder            *record.Encoder // envelope of the writer's own records
	Version            string          // agenttrace version, for headers
	CheckpointRecords  uint64
	CheckpointInterval time.Duration
	RotateSize         int64         // bytes; 0: never
	RotateInterval     time.Duration // 0: never
	Sync               SyncPolicy
	// Mode of new segment files; 0 means 0600 (owner only).
	Mode os.FileMode
	// Observe, if set, is told how long each write and fsync of the log
	// took (op "write" or "fsync"), for the daemon's metrics. It is called
	// with the writer's lock held and must be quick.
	Observe func(op string, d time.Duration)
}

// ErrBlocked is returned by Append while the log file refuses writes. The
// record was not added (and not chained): the caller counts it as lost.
var ErrBlocked = errors.New("log is not writable")

// Counts of what a writer appended.
type Counts struct {
	Records     uint64 // appended by callers
	Headers     uint64
	Checkpoints uint64
	Recoveries  uint64
}

// Writer appends records to a log. It is safe for concurrent use.
type Writer struct {
	opts Options

	mu        sync.Mutex
	f         *os.File
	segPath   string
	segNum    int
	segBytes  int64
	segOpened time.Time
	paths     []string // segments this writer created
	buf       []byte
	logID     string
	seq       uint64
	prev      chain.Hash
	tree      chain.Tree
	since     uint64 // records since the last checkpoint
	lastCP    time.Time
	counts    Counts
	err       error // a fatal error (signing, creating a segment); later appends fail with it
	// blocked is the last write or sync error while the file refuses data
	// (disk full, I/O error). Lines already chained stay in buf and are
	// retried every tick; new records are refused with ErrBlocked so the
	// caller can count them, until a retry succeeds.
	blocked      error
	isBlocked    atomic.Bool
	blockedSince time.Time
	lastRetry    time.Time
	refused      record.Counts // own records refused while blocked, by type

	// kernelKept: the kernel records in buf are still in a pinned ring
	// buffer, uncommitted (KeepKernelRecords): not lost at Close.
	kernelKept bool

	lock       *os.File      // the log's lock, held until Close
	unwritten  *os.File      // where Close counts what it could not write
	notWritten record.Counts // counted by the caller (AddUnwritten), for the same file

	stop chan struct{}
	done chan struct{}
}

// Open starts writing the log at opts.Base. If the log does not exist it is
// created. If it does, its last segment is read and a new segment continues
// its chain; a torn last line (a crash) is left untouched and described in a
// recovery record. Nothing existing is ever modified.
func Open(opts Options) (*Writer, error) {
	if opts.CheckpointRecords == 0 {
		opts.CheckpointRecords = DefaultCheckpointRecords
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = DefaultCheckpointInterval
	}
	if opts.Signer == nil || opts.Encoder == nil {
		return nil, errors.New("sink: a signer and an encoder are required")
	}
	w := &Writer{opts: opts, buf: make([]byte, 0, 2*flushBytes), refused: record.Counts{}, notWritten: record.Counts{},
		stop: make(chan struct{}), done: make(chan struct{})}

	// One writer per log: nothing is read or written before the lock.
	lockFile, created, err := lock(opts.Base)
	if err != nil {
		return nil, err
	}
	w.lock = lockFile
	if err := w.open(); err != nil {
		if created {
			// This writer changed nothing: not even a lock file stays.
			os.Remove(LockPath(opts.Base))
		}
		w.lock.Close()
		if w.unwritten != nil {
			w.unwritten.Close()
		}
		return nil, err
	}
	go w.ticker()
	return w, nil
}

// open continues the log, or creates it, and writes the start of a new
// segment: header, recovery records, and a gap for what the previous
// writer counted but could not write.
func (w *Writer) open() error {
	mode := w.opts.Mode
	if mode == 0 {
		mode = 0o600
	}
	left, err := readUnwritten(w.opts.Base)
	if err != nil {
		return err
	}
	files, numbers := logfile.Segments(w.opts.Base)
	next := 1
	if len(numbers) > 0 {
		next = numbers[len(numbers)-1] + 1
	}
	files, numbers, leftovers, err := findLeftovers(files, numbers)
	if err != nil {
		return err
	}
	var tail *chain.Tail
	var starts []record.Body
	switch {
	case len(files) == 0 && len(leftovers) > 0:
		return fmt.Errorf("%s has no complete record (a start cut by a crash or a full disk): the log never began; move it away to start the log", leftovers[0].path)
	case len(files) == 0:
		w.logID = chain.NewLogID()
	default:
		last := len(files) - 1
		if tail, err = chain.ReadTail(files[last], numbers[last]); err != nil {
			return fmt.Errorf("cannot continue log %s: %w", w.opts.Base, err)
		}
		w.logID, w.seq, w.prev, w.tree = tail.LogID, tail.LastSeq, tail.LastHash, *tail.Tree
		if !tail.EndedFinal || len(tail.Torn) > 0 {
			starts = append(starts, recoveryOf(tail.Path, tail.LastSeq, tail.Unsigned, tail.TornOffset, tail.Torn))
		}
		for _, l := range leftovers {
			starts = append(starts, recoveryOf(l.path, tail.LastSeq, 0, 0, l.data))
		}
	}
	if left != nil {
		starts = append(starts, &record.Gap{Stage: left.Stage, CPU: -1, Lost: left.Lost, From: left.From, To: left.To,
			Reason: "the previous writer stopped while the log refused writes: these were never written"})
	}
	// The log is one agenttrace can write: from here on files are made.
	_, statErr := os.Lstat(UnwrittenPath(w.opts.Base))
	if w.unwritten, err = openUnwritten(w.opts.Base, mode); err != nil {
		return err
	}
	w.segNum = next
	// The start of a segment is durable before anything else is written:
	// a power loss must not take the recovery record that explains the
	// previous segment's end.
	if err := w.startSegment(tail, starts); err != nil {
		if os.IsNotExist(statErr) && len(files) == 0 {
			os.Remove(UnwrittenPath(w.opts.Base)) // a log that never began
		}
		return err
	}
	if left != nil {
		// In the log now: the file is for the next stop.
		if err := writeUnwritten(w.unwritten, nil); err != nil {
			return fmt.Errorf("clearing %s: %w", UnwrittenPath(w.opts.Base), err)
		}
	}
	return nil
}

// recoveryOf describes how a segment ended: after seq, with unsigned
// records after its last checkpoint, and torn bytes at offset.
func recoveryOf(path string, after, unsigned uint64, offset int64, torn []byte) *record.Recovery {
	rec := &record.Recovery{SegmentFile: filepath.Base(path), AfterSeq: after, Unsigned: unsigned, TornBytes: int64(len(torn))}
	if len(torn) > 0 {
		h := chain.HashLine(torn)
		rec.TornOffset, rec.TornSHA256 = offset, h.String()
	}
	return rec
}

// Path is the current segment's file.
func (w *Writer) Path() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.segPath
}

// Paths are the segments this writer created, in order.
func (w *Writer) Paths() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.paths...)
}

// LogID is the log's identity.
func (w *Writer) LogID() string { return w.logID }

// Counts returns what was appended so far.
func (w *Writer) Counts() Counts {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts
}

// Head returns the seq and hash of the last record appended.
func (w *Writer) Head() (uint64, chain.Hash) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq, w.prev
}

// Append adds one of agenttrace's own records, timed now.
//
// While the file refuses writes it returns an error wrapping ErrBlocked and
// the record is not added (nor chained); it is counted in Refused, and the
// records before it are kept and written when the file accepts data again.
// Other errors are fatal.
func (w *Writer) Append(body record.Body) error {
	return w.AppendAt(record.BootTime(), body)
}

// AppendAt is Append for a record of an earlier moment (boot-time ns).
func (w *Writer) AppendAt(ktime uint64, body record.Body) error {
	return w.add(body.Type(), func() { w.appendLocked(ktime, body) })
}

// TryAppendAt is AppendAt for a caller that keeps a refused record and
// tries again later: the record is not counted in Refused.
func (w *Writer) TryAppendAt(ktime uint64, body record.Body) error {
	return w.add("", func() { w.appendLocked(ktime, body) })
}

// AppendEvent adds the record of one kernel event.
func (w *Writer) AppendEvent(ev *record.Event) error {
	return w.add("", func() { w.appendEventLocked(ev) })
}

// add runs appendRecord under the lock unless the log is failed or refuses
// writes; typ names the record for Refused ("" for kernel events, which
// their caller counts by kind).
func (w *Writer) add(typ string, appendRecord func()) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if w.blocked != nil && !w.retryLocked() {
		if typ != "" {
			w.refused[typ]++
		}
		return fmt.Errorf("%w: %v", ErrBlocked, w.blocked)
	}
	appendRecord()
	w.counts.Records++
	if w.since >= w.opts.CheckpointRecords {
		w.checkpointLocked(false)
	}
	if w.opts.RotateSize > 0 && w.segBytes+int64(len(w.buf)) >= w.opts.RotateSize {
		w.rotateLocked()
	} else if len(w.buf) >= flushBytes {
		w.flushLocked()
	}
	return w.err
}

// retryLocked writes what a blocked log holds, at most every blockedRetry
// (from Append too, so records are kept again as soon as the file accepts
// data, not only at the next tick); true once the log accepts writes.
func (w *Writer) retryLocked() bool {
	if time.Since(w.lastRetry) < blockedRetry {
		return false
	}
	w.lastRetry = time.Now()
	return w.flushLocked() == nil
}

// Refused returns, by record type, how many of agenttrace's own records
// the log refused while it was blocked, and resets the counts: the caller
// writes them in a gap record.
func (w *Writer) Refused() record.Counts {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.refused) == 0 {
		return nil
	}
	out := w.refused
	w.refused = record.Counts{}
	return out
}

// Blocked reports whether the log currently refuses writes, and why.
func (w *Writer) Blocked() (bool, error) {
	if !w.isBlocked.Load() {
		return false, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.blocked != nil, w.blocked
}

func (w *Writer) block(err error) error {
	if err != nil && w.blocked == nil {
		w.blockedSince = time.Now()
	}
	w.blocked = err
	w.isBlocked.Store(err != nil)
	return err
}

func (w *Writer) appendLocked(ktime uint64, body record.Body) {
	start := len(w.buf)
	w.buf = w.opts.Encoder.Append(w.buf, w.seq+1, (*[32]byte)(&w.prev), ktime, body)
	w.chainLocked(start)
}

func (w *Writer) appendEventLocked(ev *record.Event) {
	start := len(w.buf)
	w.buf = w.opts.Encoder.AppendEvent(w.buf, w.seq+1, (*[32]byte)(&w.prev), ev)
	w.chainLocked(start)
}

// chainLocked ends the line that starts at buf[start] and chains it.
func (w *Writer) chainLocked(start int) {
	w.buf = append(w.buf, '\n')
	h := chain.HashLine(w.buf[start:])
	w.seq++
	w.prev = h
	w.tree.Append(h)
	w.since++
}

// checkpointLocked makes every record so far durable, then signs and
// appends a checkpoint covering them.
func (w *Writer) checkpointLocked(final bool) {
	if w.flushLocked() != nil || w.syncLocked() != nil {
		return // retried at the next tick, once the records are durable
	}
	root := w.tree.Root()
	text := chain.CheckpointText(w.logID, w.seq, root, w.prev)
	signed, err := note.Sign(&note.Note{Text: text}, w.opts.Signer)
	if err != nil {
		w.err = fmt.Errorf("signing checkpoint: %w", err)
		return
	}
	cp := record.Checkpoint{LogID: w.logID, Size: w.seq, Head: w.prev.String(), Root: base64.StdEncoding.EncodeToString(root[:]), Final: final, Note: string(signed)}
	w.appendLocked(record.BootTime(), &cp)
	w.counts.Checkpoints++
	w.since = 0
	w.lastCP = time.Now()
	if w.flushLocked() == nil {
		w.syncLocked()
	}
}

// rotateLocked ends the segment with a checkpoint and continues in a new one.
func (w *Writer) rotateLocked() {
	w.checkpointLocked(false)
	if w.err != nil || w.blocked != nil {
		return
	}
	w.segNum++
	if err := w.startSegment(nil, nil); err != nil {
		// Retried at the next record (a full disk), the chain as it was:
		// the current segment goes on.
		w.segNum--
		w.block(err)
		return
	}
}

// LastCheckpoint is when the last checkpoint was appended (zero: none yet).
func (w *Writer) LastCheckpoint() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastCP
}

// Policy is what a running writer may change (a daemon reload).
type Policy struct {
	CheckpointRecords  uint64
	CheckpointInterval time.Duration
	RotateSize         int64
	RotateInterval     time.Duration
	Sync               SyncPolicy
}

// SetPolicy changes checkpoint, rotation and sync policy from the next record.
func (w *Writer) SetPolicy(p Policy) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p.CheckpointRecords == 0 {
		p.CheckpointRecords = DefaultCheckpointRecords
	}
	if p.CheckpointInterval == 0 {
		p.CheckpointInterval = DefaultCheckpointInterval
	}
	w.opts.CheckpointRecords, w.opts.CheckpointInterval = p.CheckpointRecords, p.CheckpointInterval
	w.opts.RotateSize, w.opts.RotateInterval, w.opts.Sync = p.RotateSize, p.RotateInterval, p.Sync
}

// Flush writes buffered records to the file (fsync only with SyncAlways).
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

// Position is where the file ends: the last record in it, and the length
// of the segment it is in.
type Position struct {
	LogID   string
	Seq     uint64
	Segment int
	Offset  int64
}

// FlushPosition writes buffered records to the file and says where it
// then ends: everything appended before the call is in the file (written,
// not necessarily durable: it survives the process, not the machine).
func (w *Writer) FlushPosition() (Position, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.flushLocked(); err != nil {
		return Position{}, err
	}
	if len(w.buf) > 0 {
		return Position{}, fmt.Errorf("%w: %d bytes not written", ErrBlocked, len(w.buf))
	}
	return Position{LogID: w.logID, Seq: w.seq, Segment: w.segNum, Offset: w.segBytes}, nil
}

func (w *Writer) flushLocked() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) > 0 {
		start := time.Now()
		n, err := w.f.Write(w.buf)
		if w.opts.Observe != nil {
			w.opts.Observe("write", time.Since(start))
		}
		w.segBytes += int64(n)
		// Keep what was not written: the next attempt continues exactly
		// where this one stopped, so a line cut by a full disk is completed.
		w.buf = w.buf[:copy(w.buf, w.buf[n:])]
		if err != nil {
			return w.block(fmt.Errorf("writing log %s: %w", w.segPath, err))
		}
	}
	if w.opts.Sync == SyncAlways || w.blocked != nil {
		return w.syncLocked()
	}
	return nil
}

func (w *Writer) syncLocked() error {
	if w.err != nil {
		return w.err
	}
	start := time.Now()
	err := w.f.Sync()
	if w.opts.Observe != nil {
		w.opts.Observe("fsync", time.Since(start))
	}
	if err != nil {
		return w.block(fmt.Errorf("syncing log %s: %w", w.segPath, err))
	}
	return w.block(nil)
}

// ticker writes time-based checkpoints and rotations, and flushes.
func (w *Writer) ticker() {
	defer close(w.done)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		w.mu.Lock()
		switch {
		case w.err != nil:
		case w.blocked != nil:
			w.flushLocked()
		case w.opts.RotateInterval > 0 && time.Since(w.segOpened) >= w.opts.RotateInterval:
			w.rotateLocked()
		case w.since > 0 && time.Since(w.lastCP) >= w.opts.CheckpointInterval:
			w.checkpointLocked(false)
		default:
			w.flushLocked()
		}
		w.mu.Unlock()
	}
}

// closeRetry is how long Close keeps retrying a log that refuses writes.
const closeRetry = 5 * time.Second

// Close appends a final checkpoint, syncs and closes the log. If the file
// still refuses writes after closeRetry, the records not written are lost
// and the error says how many bytes.
func (w *Writer) Close() error {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	for deadline := time.Now().Add(closeRetry); w.blocked != nil && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		w.flushLocked()
	}
	// Losses counted by the caller or refused here after its last gap
	// record (its stop record, say) are in the log before the final
	// checkpoint, or counted for the next writer.
	for typ, n := range w.refused {
		w.notWritten[typ] += n
	}
	if w.blocked == nil && w.err == nil && len(w.notWritten) > 0 {
		now := time.Now()
		w.appendLocked(record.BootTime(), &record.Gap{Stage: "write", Reason: "the log file refused writes", CPU: -1,
			Lost: w.notWritten, From: w.blockedSince, To: now})
	}
	if w.blocked == nil {
		w.checkpointLocked(true)
	}
	err := w.err
	if err == nil && w.blocked != nil {
		// Count what is lost, for the next writer's gap record.
		lost := record.Counts{}
		countLines(w.buf, lost, !w.kernelKept)
		for typ, n := range w.notWritten {
			lost[typ] += n
		}
		err = fmt.Errorf("%d records could not be written (%v): %w", lost.Total(), lost, w.blocked)
		if werr := writeUnwritten(w.unwritten, &unwrittenCounts{Lost: lost, Stage: "write", From: w.blockedSince, To: time.Now()}); werr != nil {
			err = fmt.Errorf("%w; and they could not be counted in %s: %v", err, UnwrittenPath(w.opts.Base), werr)
		} else {
			err = fmt.Errorf("%w; counted in %s for the log's next writer", err, UnwrittenPath(w.opts.Base))
		}
	}
	if cerr := w.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("closing log %s: %w", w.segPath, cerr)
	}
	w.unwritten.Close()
	w.lock.Close()
	return err
}

// KeepKernelRecords says that the kernel records not yet written are not
// lost if Close cannot write them: they are still in a pinned ring buffer
// whose space was not handed back (the daemon handing its kernel side
// over), and its next reader reads them again. Close counts only
// agenttrace's own records as unwritten then.
func (w *Writer) KeepKernelRecords() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kernelKept = true
}

// AddUnwritten counts events the caller could not even count in a gap
// record (the log refused writes to the end): if Close cannot write them
// either, they go to the next writer with the writer's own unwritten records.
func (w *Writer) AddUnwritten(c record.Counts) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for typ, n := range c {
		w.notWritten[typ] += n
	}
}
