package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
)

// Defaults of a Runner.
const (
	DefaultBatchSize       = 500
	DefaultFlushInterval   = time.Second
	DefaultDrainTimeout    = 5 * time.Second
	DefaultMinBackoff      = 200 * time.Millisecond
	DefaultMaxBackoff      = 5 * time.Second
	DefaultLagWarnFraction = 0.5
	// lagCheckInterval is how often lag bytes and free space are measured.
	lagCheckInterval = 5 * time.Second
	// finishTimeout bounds the orderly close that confirms the last batches.
	finishTimeout = 3 * time.Second
	// failureReport is how often a destination that keeps failing is
	// reported again.
	failureReport = 30 * time.Second
)

// RunnerOptions say what a Runner reads and where it keeps its cursor.
type RunnerOptions struct {
	Log      string // the log's base path (segment 1)
	StateDir string // holds <name>.cursor and <name>.lock
	// Replay (agenttrace export --once): start at FromSeq (the log's start
	// if 0), never read or write the cursor.
	Replay  bool
	FromSeq uint64
	ToSeq   uint64 // the last seq to export; 0: no bound
	// Once: stop at the end of the log (or ToSeq) instead of waiting for
	// more, after everything read was delivered.
	Once bool
	// Head returns the seq of the last record the log's writer appended,
	// for RunnerStats.LagRecords; nil: the last record the Runner read.
	Head func() uint64
	// Logger is the daemon's operational log; nil for none.
	Logger *zerolog.Logger
	// DrainTimeout: after the context is cancelled, how long the Runner
	// keeps delivering what the log holds before it stops.
	DrainTimeout time.Duration
	Poll         time.Duration // the tailer's poll interval; default DefaultPoll
	MinBackoff   time.Duration
	MaxBackoff   time.Duration
	// LagWarnFraction: warn when the bytes not yet exported exceed this
	// fraction of the free space of the log's file system. Default 0.5.
	LagWarnFraction float64
	// Version is agenttrace's version, for formats that name their
	// producer (ocsf: metadata.product.version).
	Version string
	// Destination and Format replace the ones the Config names (tests).
	Destination Destination
	Format      Format
}

// RunnerStats are a Runner's counters, for metrics.
type RunnerStats struct {
	Sent       uint64 // events sent (Send returned nil), resent ones included
	Delivered  uint64 // records the cursor moved past: each counted once
	Batches    uint64
	Retries    uint64 // events tried again after a failure: at least the duplicates the destination got
	Errors     uint64 // failed sends and broken connections
	Skipped    uint64 // bytes of the log that hold no record (torn tails)
	LagRecords uint64 // records in the log after LastSeq
	LagBytes   int64  // bytes of the log after the cursor
	LogFree    int64  // free bytes of the log's file system, at the last check
	FirstSeq   uint64 // the first seq delivered by this Runner (0: none)
	LastSeq    uint64 // the cursor: every record up to it was delivered
	LastAck    time.Time
	Connected  bool
}

// Runner exports one log to one destination: it tails the log from the
// cursor, formats records, sends them in batches, retries failures for as
// long as it runs (the log is the buffer), and moves the persisted cursor
// only past records the destination acknowledged. It never writes to the
// log and never slows its writer: a slow destination is lag, not loss.
type Runner struct {
	cfg    Config
	opts   RunnerOptions
	dest   Destination
	conf   Confirmer // dest, if it confirms after Send
	format Format
	tail   *Tailer
	lock   *os.File
	log    zerolog.Logger

	batchSize      int
	flushInterval  time.Duration
	maxUnconfirmed int // 0: no bound

	cursor  Cursor    // what was delivered; persisted unless Replay
	pending []pending // sent, not yet confirmed
	slots   []Record
	events  []Event
	batch   int // records in the current batch
	endPos  Position
	endLast bool // the batch's last record is a final checkpoint
	done    bool // reached ToSeq

	backoff     time.Duration
	failingFrom time.Time
	lastReport  time.Time
	nextLag     time.Time
	lagWarned   bool
	maxRead     uint64
	maxSent     uint64

	mu    sync.Mutex
	stats RunnerStats
}

type pending struct {
	mark    uint64
	pos     Position
	final   bool
	records uint64
}

// NewRunner prepares the exporter cfg for the log opts.Log: it takes the
// cursor's lock, reads the cursor and checks it belongs to this log. It
// does not connect: Run does, and retries.
func NewRunner(cfg Config, opts RunnerOptions) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("exporter %q: %w", cfg.Name, err)
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.MinBackoff)
	}
	if opts.LagWarnFraction <= 0 {
		opts.LagWarnFraction = DefaultLagWarnFraction
	}
	r := &Runner{cfg: cfg, opts: opts, dest: opts.Destination, format: opts.Format, log: zerolog.Nop()}
	if opts.Logger != nil {
		r.log = opts.Logger.With().Str("exporter", cfg.Name).Logger()
	}
	var err error
	if r.format == nil {
		if r.format, err = newFormat(&cfg, opts.Version); err != nil {
			return nil, fmt.Errorf("exporter %q: %w", cfg.Name, err)
		}
	}
	if r.dest == nil {
		if r.dest, err = newDestination(&cfg); err != nil {
			return nil, fmt.Errorf("exporter %q: %w", cfg.Name, err)
		}
	}
	r.conf, _ = r.dest.(Confirmer)
	r.batchSize, r.flushInterval = DefaultBatchSize, DefaultFlushInterval
	if b, ok := r.dest.(interface {
		batching() (int, time.Duration, int)
	}); ok {
		r.batchSize, r.flushInterval, r.maxUnconfirmed = b.batching()
	}
	if r.batchSize <= 0 {
		r.batchSize = DefaultBatchSize
	}
	if r.flushInterval <= 0 {
		r.flushInterval = DefaultFlushInterval
	}

	logID, err := firstLogID(opts.Log)
	if err != nil {
		r.dest.Close()
		return nil, err
	}
	r.cursor = Cursor{Log: opts.Log, LogID: logID, Position: Position{Segment: 1}}
	if opts.Replay {
		if opts.FromSeq > 1 {
			if r.cursor.Position, err = segmentFor(opts.Log, opts.FromSeq); err != nil {
				r.dest.Close()
				return nil, err
			}
		}
	} else if err := r.loadCursor(logID); err != nil {
		r.dest.Close()
		if r.lock != nil {
			r.lock.Close()
		}
		return nil, fmt.Errorf("exporter %q: %w", cfg.Name, err)
	}
	r.tail = NewTailer(opts.Log, r.cursor.LogID, r.cursor.Position, opts.Poll, r.skipped)
	r.endPos = r.cursor.Position
	r.stats.LastSeq = r.cursor.Seq
	r.maxRead = r.cursor.Seq
	r.slots = make([]Record, r.batchSize)
	r.events = make([]Event, r.batchSize)
	return r, nil
}

// firstLogID is the log id in the header of the log's first existing
// segment; "" if the log has no complete header yet.
func firstLogID(base string) (string, error) {
	files, _ := logfile.Segments(base)
	if len(files) == 0 {
		return "", nil
	}
	line, _, err := logfile.FirstLine(files[0])
	if err != nil || line == nil {
		return "", err
	}
	rec, err := record.Decode(line[:len(line)-1])
	if err != nil {
		return "", fmt.Errorf("%s: %w: not an agenttrace log", files[0], err)
	}
	hdr, ok := rec.Body.(*record.Header)
	if !ok {
		return "", fmt.Errorf("%s does not start with a header: not an agenttrace log", files[0])
	}
	return hdr.LogID, nil
}

func (r *Runner) loadCursor(logID string) error {
	if r.opts.StateDir == "" {
		return errors.New("no state directory for the export cursor (state_dir)")
	}
	lock, err := lockCursor(r.opts.StateDir, r.cfg.Name)
	if err != nil {
		return err
	}
	r.lock = lock
	path := CursorPath(r.opts.StateDir, r.cfg.Name)
	c, err := LoadCursor(path)
	if err != nil {
		return err
	}
	if err := cursorConflict(path, c, r.opts.Log, logID); err != nil {
		return err
	}
	if c != nil && c.LogID == logID {
		r.cursor = *c
		r.cursor.Log = r.opts.Log
		return nil
	}
	if c != nil {
		r.log.Info().Str("old_log_id", c.LogID).Str("log_id", logID).Msg("export: the previous log was delivered to its end; starting a cursor for this log")
	}
	if logID == "" {
		return nil // the first delivery writes it
	}
	// This exporter now answers for this log from its start: should it
	// stop before delivering all of it, a later run on another log says so
	// instead of leaving the rest behind unnoticed.
	return r.cursor.Save(path)
}

// cursorConflict is an error if the cursor c (nil: none) belongs to a log
// other than logID ("" for a log not created yet) and that log was not
// delivered to its final checkpoint.
func cursorConflict(path string, c *Cursor, base, logID string) error {
	if c == nil || c.LogID == logID || c.Final {
		return nil
	}
	this := fmt.Sprintf("%s is log %s", base, logID)
	if logID == "" {
		this = fmt.Sprintf("%s is a new log", base)
	}
	return fmt.Errorf("the cursor %s is for log %s (%s, delivered up to seq %d, not to its end), but %s: "+
		"deliver the rest with agenttrace export --once %s and remove the cursor, or give this log another state_dir or exporter name",
		path, c.LogID, c.Log, c.Seq, this, c.Log)
}

// CheckCursor reports whether exporter cfg can export the log at base: an
// error if its cursor in stateDir belongs to another log that it did not
// deliver to its end. agenttrace run calls it before it creates or
// continues the log.
func CheckCursor(cfg Config, stateDir, base string) error {
	logID, err := firstLogID(base)
	if err != nil {
		return err
	}
	path := CursorPath(stateDir, cfg.Name)
	c, err := LoadCursor(path)
	if err == nil {
		err = cursorConflict(path, c, base, logID)
	}
	if err != nil {
		return fmt.Errorf("exporter %q: %w", cfg.Name, err)
	}
	return nil
}

// Name is the exporter's name.
func (r *Runner) Name() string { return r.cfg.Name }

// Config is the exporter's configuration.
func (r *Runner) Config() Config { return r.cfg }

// Stats returns the counters.
func (r *Runner) Stats() RunnerStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func (r *Runner) skipped(s Skip) {
	ev := r.log.Warn().Str("log", logfile.SegmentPath(r.opts.Log, s.Segment)).Int64("offset", s.Offset).Int64("bytes", s.Bytes)
	ev.Msg("export: skipped " + s.Reason)
	if s.Bytes > 0 {
		r.mu.Lock()
		r.stats.Skipped += uint64(s.Bytes)
		r.mu.Unlock()
	}
}

// Run exports until ctx is cancelled (or, with Once, until the end of the
// log), then keeps delivering what the log holds for up to DrainTimeout
// and stops. It returns nil if everything it read was delivered, and an
// error if the log could not be read or records remain undelivered (they
// stay in the log: the cursor is where the next run resumes).
func (r *Runner) Run(ctx context.Context) error {
	defer r.close()
	err := r.loop(ctx, r.opts.Once)
	if err == nil && !r.opts.Once {
		// Stopping: deliver what is in the log now, within a bound.
		dctx, cancel := context.WithTimeout(context.Background(), r.opts.DrainTimeout)
		defer cancel()
		err = r.loop(dctx, true)
	}
	if ferr := r.finish(ctx); err == nil {
		err = ferr
	}
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		r.log.Error().Err(err).Msg("export: stopped")
		return err
	}
	if err != nil || len(r.pending) > 0 || r.batch > 0 {
		return fmt.Errorf("exporter %q stopped with records undelivered after seq %d: they stay in the log, and the next run resends them", r.cfg.Name, r.cursor.Seq)
	}
	return nil
}

// loop sends batches until ctx is done, or with untilEnd until the tailer
// has nothing more (or ToSeq was passed) and every batch is sent. It
// returns ctx's error when ctx ends it, nil at the end.
func (r *Runner) loop(ctx context.Context, untilEnd bool) error {
	for {
		end, err := r.fill(ctx, untilEnd)
		if err != nil && (untilEnd || ctx.Err() == nil) {
			return err
		}
		if err := ctx.Err(); err != nil {
			if untilEnd {
				return err
			}
			return nil // the batch stays for the drain
		}
		if r.batch > 0 {
			if err := r.send(ctx); err != nil {
				if untilEnd || ctx.Err() == nil {
					return err
				}
				return nil
			}
			continue
		}
		if end {
			return nil
		}
	}
}

// fill reads the next batch into r.slots: it waits for a first record,
// then takes what is there up to the batch size, or until FlushInterval has
// passed. end: the tailer is at the end (untilEnd) or ToSeq was passed.
func (r *Runner) fill(ctx context.Context, untilEnd bool) (end bool, err error) {
	var deadline time.Time
	for r.batch < r.batchSize && !r.done {
		ok, err := r.read()
		if err != nil {
			return false, err
		}
		if ok {
			if r.batch == 1 {
				deadline = time.Now().Add(r.flushInterval)
			}
			continue
		}
		if untilEnd {
			return true, nil
		}
		if r.batch > 0 && !time.Now().Before(deadline) {
			return false, nil
		}
		if err := r.idle(ctx); err != nil {
			return false, err
		}
		wait := r.opts.Poll
		if r.batch > 0 {
			wait = min(wait, time.Until(deadline))
		}
		if !sleep(ctx, wait) {
			return false, nil
		}
	}
	return r.done, nil
}

// read reads one record into the batch; false if there is none now.
func (r *Runner) read() (bool, error) {
	for {
		rec := &r.slots[r.batch]
		ok, err := r.tail.TryNext(rec)
		if err != nil || !ok {
			return false, err
		}
		r.maxRead = max(r.maxRead, rec.Seq)
		if r.opts.ToSeq > 0 && rec.Seq > r.opts.ToSeq {
			r.done = true
			return false, nil
		}
		r.endPos = r.tail.Position()
		r.endLast = rec.Type == "checkpoint" && bytes.Contains(rec.Line, []byte(`"final":true`))
		if rec.Seq < r.opts.FromSeq {
			// Before the range: passed over, and delivered as far as the
			// cursor is concerned.
			if r.batch == 0 && len(r.pending) == 0 {
				r.cursor.Position, r.cursor.Final = r.endPos, r.endLast
			}
			continue
		}
		r.batch++
		return true, nil
	}
}

// send formats and sends the batch, retrying until it is sent or ctx ends.
func (r *Runner) send(ctx context.Context) error {
	for r.batch > 0 {
		n := r.batch
		for i := 0; i < n; i++ {
			body, err := r.format.Append(r.events[i].Body[:0], &r.slots[i])
			if err != nil {
				return fmt.Errorf("formatting seq %d as %s: %w", r.slots[i].Seq, r.format.Name(), err)
			}
			r.events[i] = Event{Record: &r.slots[i], Body: body}
		}
		err := r.window(ctx, n)
		if ctx.Err() != nil {
			return ctx.Err() // the batch and the pending ones stay as they are
		}
		if err == nil {
			r.attempt(n)
			if err = r.dest.Send(ctx, r.events[:n]); err == nil {
				r.sent(n)
				if err = r.confirm(); err == nil {
					r.maintain()
					return nil
				}
			}
		}
		if err := r.failed(ctx, err); err != nil {
			return err
		}
		// failed rewound the tailer to the cursor: read the batch again.
		if _, err := r.fill(ctx, true); err != nil {
			return err
		}
	}
	return nil
}

// window waits until n more records keep the records sent and not yet
// confirmed within MaxUnconfirmed: the most a broken connection can make
// the Runner send again.
func (r *Runner) window(ctx context.Context, n int) error {
	for r.conf != nil && r.maxUnconfirmed > 0 && r.unconfirmed()+uint64(n) > uint64(r.maxUnconfirmed) {
		if err := r.confirm(); err != nil {
			return err
		}
		if !sleep(ctx, 5*time.Millisecond) {
			return ctx.Err()
		}
	}
	return nil
}

func (r *Runner) unconfirmed() uint64 {
	var n uint64
	for _, p := range r.pending {
		n += p.records
	}
	return n
}

// attempt counts the records of a send that were tried before.
func (r *Runner) attempt(n int) {
	var again uint64
	for i := 0; i < n; i++ {
		if r.slots[i].Seq <= r.maxSent {
			again++
		}
	}
	r.maxSent = max(r.maxSent, r.slots[n-1].Seq)
	r.mu.Lock()
	r.stats.Retries += again
	r.mu.Unlock()
}

// sent records a batch the destination took.
func (r *Runner) sent(n int) {
	r.mu.Lock()
	r.stats.Sent += uint64(n)
	r.stats.Batches++
	r.stats.Connected = true
	r.mu.Unlock()
	if !r.failingFrom.IsZero() {
		r.log.Info().Dur("down", time.Since(r.failingFrom)).Msg("export: destination reachable again")
		r.failingFrom = time.Time{}
	}
	r.backoff = 0
	p := pending{pos: r.endPos, final: r.endLast, records: uint64(n)}
	r.batch = 0
	if r.conf == nil {
		r.advance([]pending{p})
		return
	}
	p.mark = r.conf.Mark()
	r.pending = append(r.pending, p)
}

// confirm moves the cursor past every batch the destination confirmed.
func (r *Runner) confirm() error {
	if r.conf == nil || len(r.pending) == 0 {
		return nil
	}
	mark, err := r.conf.Confirmed()
	if err != nil {
		return err
	}
	n := 0
	for n < len(r.pending) && r.pending[n].mark <= mark {
		n++
	}
	if n > 0 {
		r.advance(r.pending[:n])
		r.pending = r.pending[:copy(r.pending, r.pending[n:])]
	}
	return nil
}

// advance moves the cursor past delivered batches and persists it.
func (r *Runner) advance(done []pending) {
	var records uint64
	for _, p := range done {
		records += p.records
	}
	last := done[len(done)-1]
	r.cursor.Position, r.cursor.Final = last.pos, last.final
	if r.cursor.LogID == "" {
		r.cursor.LogID = r.tail.LogID()
	}
	now := time.Now()
	r.mu.Lock()
	if r.stats.FirstSeq == 0 && records > 0 {
		r.stats.FirstSeq = last.pos.Seq - records + 1
	}
	r.stats.Delivered += records
	r.stats.LastSeq = last.pos.Seq
	r.stats.LastAck = now
	r.mu.Unlock()
	if r.opts.Replay {
		return
	}
	if err := r.cursor.Save(CursorPath(r.opts.StateDir, r.cfg.Name)); err != nil {
		// The cursor on disk stays behind: a restart resends more, no loss.
		r.log.Error().Err(err).Msg("export: cannot save the cursor")
	}
}

// failed handles a failed send or a broken connection: everything after
// the cursor is void and will be read and sent again, after a backoff.
func (r *Runner) failed(ctx context.Context, err error) error {
	now := time.Now()
	r.mu.Lock()
	r.stats.Errors++
	r.stats.Connected = false
	r.mu.Unlock()
	if r.failingFrom.IsZero() {
		r.failingFrom, r.lastReport = now, now
		r.log.Warn().Err(err).Uint64("delivered_seq", r.cursor.Seq).Msg("export: destination failed; the log keeps the records, retrying")
	} else if now.Sub(r.lastReport) >= failureReport {
		r.lastReport = now
		r.log.Warn().Err(err).Dur("down", now.Sub(r.failingFrom)).Uint64("delivered_seq", r.cursor.Seq).Msg("export: destination still failing")
	}
	// Lag keeps growing while the destination is down, and that is when
	// the warning about the log's free space matters most.
	r.maintain()
	r.pending = r.pending[:0]
	r.batch = 0
	r.done = false
	r.tail.Seek(r.cursor.Position)
	r.endPos = r.cursor.Position
	r.backoff = min(max(2*r.backoff, r.opts.MinBackoff), r.opts.MaxBackoff)
	// Equal jitter: half the backoff, plus up to as much again at random.
	wait := r.backoff/2 + rand.N(r.backoff/2+1)
	if !sleep(ctx, wait) {
		return ctx.Err()
	}
	return nil
}

// idle runs while the tailer waits: confirmations and lag.
func (r *Runner) idle(ctx context.Context) error {
	if err := r.confirm(); err != nil {
		if err := r.failed(ctx, err); err != nil {
			return err
		}
	}
	r.maintain()
	return nil
}

// maintain updates the lag; the bytes and free space every lagCheckInterval.
func (r *Runner) maintain() {
	now := time.Now()
	disk := !now.Before(r.nextLag)
	if disk {
		r.nextLag = now.Add(lagCheckInterval)
	}
	r.updateLag(disk)
}

// updateLag computes the lag; with disk, also the bytes and free space,
// and warns when the lag nears what the file system can still hold.
func (r *Runner) updateLag(disk bool) {
	head := r.maxRead
	if r.opts.Head != nil {
		head = max(head, r.opts.Head())
	}
	r.mu.Lock()
	r.stats.LagRecords = head - min(head, r.cursor.Seq)
	r.mu.Unlock()
	if !disk {
		return
	}
	lag := bytesAfter(r.opts.Log, r.cursor.Position)
	var fs unix.Statfs_t
	free := int64(-1)
	if unix.Statfs(filepath.Dir(r.opts.Log), &fs) == nil {
		free = int64(fs.Bavail) * fs.Bsize
	}
	r.mu.Lock()
	r.stats.LagBytes, r.stats.LogFree = lag, free
	r.mu.Unlock()
	if free < 0 {
		return
	}
	limit := int64(r.opts.LagWarnFraction * float64(free))
	switch {
	case lag > limit && !r.lagWarned:
		r.lagWarned = true
		r.log.Warn().Int64("lag_bytes", lag).Int64("free_bytes", free).Uint64("delivered_seq", r.cursor.Seq).
			Msg("export: the records not yet delivered near the free space of the log's file system; when it is full the tracer loses events")
	case lag <= limit/2 && r.lagWarned:
		r.lagWarned = false
		r.log.Info().Int64("lag_bytes", lag).Int64("free_bytes", free).Msg("export: lag back below the warning level")
	}
}

// finish confirms what was sent: a Confirmer's orderly close, within
// finishTimeout.
func (r *Runner) finish(ctx context.Context) error {
	if r.conf == nil || len(r.pending) == 0 {
		return nil
	}
	if err := r.confirm(); err != nil || len(r.pending) == 0 {
		return err
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	mark, err := r.conf.Finish(fctx)
	n := 0
	for n < len(r.pending) && r.pending[n].mark <= mark {
		n++
	}
	if n > 0 {
		r.advance(r.pending[:n])
		r.pending = r.pending[:copy(r.pending, r.pending[n:])]
	}
	return err
}

// Close releases a Runner that is not going to Run: its cursor lock and
// destination. Run releases them itself.
func (r *Runner) Close() error {
	r.close()
	return nil
}

func (r *Runner) close() {
	r.updateLag(true)
	r.mu.Lock()
	r.stats.Connected = false
	r.mu.Unlock()
	r.dest.Close()
	r.tail.Close()
	if r.lock != nil {
		r.lock.Close()
		r.lock = nil
	}
}

// sleep waits d or until ctx is done; false if ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// newFormat is the Format the exporter's configuration names.
func newFormat(cfg *Config, version string) (Format, error) {
	switch cfg.Format {
	case "", "native":
		return Native{}, nil
	case "ocsf":
		return OCSF{ProductVersion: version}, nil
	}
	return nil, fmt.Errorf("format %q is not available", cfg.Format)
}

// newDestination is the Destination the exporter's configuration names.
func newDestination(cfg *Config) (Destination, error) {
	switch cfg.Type {
	case "syslog":
		return NewSyslog(*cfg.Syslog)
	case "hec":
		format := cfg.Format
		if format == "" {
			format = "native"
		}
		return NewHEC(*cfg.HEC, format)
	}
	return nil, fmt.Errorf("type %q is not available", cfg.Type)
}
