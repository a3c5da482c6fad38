// Package pipeline moves records from the ring buffer to the log: read,
// decode, encode, append, in one goroutine so that log order is ring order.
// It also keeps the log's account of itself: every event the kernel matched
// is either a record in the log or counted in a gap record, and heartbeat
// records carry the running totals.
//
// It must not filter: nothing the kernel emitted is dropped without being
// counted in a gap record.
package pipeline

import (
	"cmp"
	"errors"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/agenttrace/agenttrace/internal/decoder"
	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/sink"
)

const (
	// flushInterval bounds how long a record may sit in the writer's
	// buffer while the ring keeps the pipeline busy; when the ring runs
	// dry, what is buffered is written within flushIdle. A record in the
	// file survives a kill of agenttrace; one in its buffer does not.
	flushInterval = 20 * time.Millisecond
	flushIdle     = 2 * time.Millisecond
	// accountInterval: kernel loss counters are read this often, so a
	// gap record follows a loss within a second.
	accountInterval = 200 * time.Millisecond
	// DefaultHeartbeat is the default heartbeat interval.
	DefaultHeartbeat = 10 * time.Second
)

// Source is the kernel side (a *loader.Tracer).
type Source interface {
	ReadInto(rec *ringbuf.Record) error
	SetDeadline(deadline time.Time)
	PerCPUCounters(dst [][loader.KindMax]loader.KindCounters) ([][loader.KindMax]loader.KindCounters, error)
	Pending() int // bytes not read yet
	Used() int    // bytes the kernel cannot write yet: not read, or not committed
	RingSize() int
	// Commit says that everything read so far is in the log, as far as p
	// says, and hands the ring's space back to the kernel.
	Commit(p *loader.Progress) error
}

// Options of a pipeline.
type Options struct {
	Heartbeat time.Duration // 0: DefaultHeartbeat
	// WriteDelay slows every record down (tests: a writer that cannot keep up).
	WriteDelay time.Duration
	// OnBlocked, if set, is told when the log starts refusing writes (err
	// says why) and when it takes them again (err nil), from the
	// pipeline's goroutine: the operator must hear of a full disk at once,
	// not when it is over.
	OnBlocked func(err error)
	// Resume continues the accounting of a kernel side an earlier
	// pipeline read (an adopted, pinned one): see ResumeFrom.
	Resume *Resume
	// OnCommitError, if set, is told when the custody record could not be
	// written (the ring's space then stays the kernel's).
	OnCommitError func(err error)
}

// Stats are the pipeline's counts, by record kind.
type Stats struct {
	Matched    [loader.KindMax]uint64 // events the kernel matched (read at the end)
	Written    [loader.KindMax]uint64 // event records in the log
	Gapped     [loader.KindMax]uint64 // events counted in gap records in the log
	Unwritten  [loader.KindMax]uint64 // lost events whose gap record could not be written either
	GapRecords uint64
	Heartbeats uint64
	Freezes    int // fail-closed freezes (the tracer's guard)
	// Reread: records read again from an adopted ring that the log
	// already had (its last reader wrote them and died before committing).
	Reread uint64
}

// WrittenCounts are the kernel records written, by type: every kernel kind.
func (s *Stats) WrittenCounts() record.Counts {
	c := record.Counts{}
	for kind := record.KindExec; kind < loader.KindMax; kind++ {
		if record.IsKind(kind) { // not the numbers no record kind uses
			c[record.KindName(kind)] = s.Written[kind]
		}
	}
	return c
}

// UnwrittenCounts are the lost events that not even a gap record counts
// (the log refused writes to the end), by type.
func (s *Stats) UnwrittenCounts() record.Counts {
	c := record.Counts{}
	for kind, n := range s.Unwritten {
		if n > 0 {
			c[record.KindName(uint32(kind))] = n
		}
	}
	return c
}

// LostCounts are the events that are not records, by type: only the kinds
// that lost some ("unknown" for records that could not be decoded).
func (s *Stats) LostCounts() record.Counts {
	c := record.Counts{}
	for kind := range loader.KindMax {
		if n := s.Lost(kind); n > 0 {
			c[record.KindName(kind)] = n
		}
	}
	return c
}

// Lost is the number of events of a kind that are not records in the log.
func (s *Stats) Lost(kind uint32) uint64 { return s.Gapped[kind] + s.Unwritten[kind] }

// gapKey says where events were lost.
type gapKey struct {
	stage  string // kernel, decode, write
	reason string
	cpu    int // -1 for user-space stages
}

// gapWrite: records the log file refused (disk full). The kernel's
// losses are counted per CPU (gapKey.cpu set) as gapRingFull and
// gapInflightFull.
var (
	gapWrite        = gapKey{"write", "the log file refused writes", -1}
	gapRingFull     = gapKey{"kernel", "ring buffer full", -1}
	gapInflightFull = gapKey{"kernel", "syscall pairing map full", -1}
)

// on is k for the losses of one CPU.
func (k gapKey) on(cpu int) gapKey {
	k.cpu = cpu
	return k
}

type gap struct {
	lost     [loader.KindMax]uint64 // kernel events, by kind
	own      record.Counts          // agenttrace's own records, by type
	from, to time.Time
}

// Pipeline is one read-decode-encode-append loop.
type Pipeline struct {
	src   Source
	log   *sink.Writer
	opts  Options
	start time.Time
	stats Stats

	// live holds the counts of records written and events counted in gap
	// records (Stats.Written, Stats.Gapped), readable while Run runs.
	live struct {
		written, gapped [loader.KindMax]atomic.Uint64
		counted         [loader.KindMax]atomic.Uint64 // every loss counted, in the log or not yet
	}
	wasBlocked     bool
	heartbeatEvery atomic.Int64 // opts.Heartbeat, changeable while running

	gaps          map[gapKey]*gap // counted, not yet in the log
	counters      [][loader.KindMax]loader.KindCounters
	accounted     [][loader.KindMax]loader.KindCounters // kernel losses already counted
	lastAccount   time.Time
	lastHeartbeat time.Time

	// An adopted kernel side's counts are since its creation: base is
	// what earlier pipelines wrote and counted, skip the records of its
	// ring the log already has.
	base     struct{ written, gapped [loader.KindMax]uint64 }
	skip     map[EventID]bool
	progress loader.Progress
	handOver atomic.Bool
}

// New returns a pipeline from src to log.
func New(src Source, log *sink.Writer, opts Options) *Pipeline {
	if opts.Heartbeat == 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	now := time.Now()
	p := &Pipeline{src: src, log: log, opts: opts, start: now, lastHeartbeat: now, lastAccount: now,
		gaps: map[gapKey]*gap{}}
	p.heartbeatEvery.Store(int64(opts.Heartbeat))
	if r := opts.Resume; r != nil {
		p.base.written, p.base.gapped = r.Written, r.Gapped
		for k := range r.Written {
			p.live.written[k].Store(r.Written[k])
			p.live.gapped[k].Store(r.Gapped[k])
		}
		p.accounted = r.Accounted
		if len(r.Skip) > 0 {
			p.skip = r.Skip
		}
	}
	return p
}

// HandOver makes the pipeline end, when the source is flushed, without
// counting what the kernel matched and the log does not have as lost: the
// kernel side stays (pinned) and its next reader reads on.
func (p *Pipeline) HandOver() { p.handOver.Store(true) }

// SetHeartbeat changes the heartbeat interval (0: DefaultHeartbeat); safe
// while Run runs.
func (p *Pipeline) SetHeartbeat(d time.Duration) {
	if d == 0 {
		d = DefaultHeartbeat
	}
	p.heartbeatEvery.Store(int64(d))
}

// Live returns, by kind, the records written and the events counted in gap
// records so far; safe while Run runs.
func (p *Pipeline) Live() (written, gapped [loader.KindMax]uint64) {
	for k := range written {
		written[k] = p.live.written[k].Load()
		gapped[k] = p.live.gapped[k].Load()
	}
	return written, gapped
}

// Counted returns, by kind, every loss counted so far: in gap records, or
// waiting for the log to take writes again; safe while Run runs.
func (p *Pipeline) Counted() (counted [loader.KindMax]uint64) {
	for k := range counted {
		counted[k] = p.live.counted[k].Load()
	}
	return counted
}

// Stats returns this pipeline's counts; call it after Run has returned.
func (p *Pipeline) Stats() Stats {
	s := p.stats
	s.Written, s.Gapped = p.Live()
	for k := range s.Written {
		s.Written[k] -= p.base.written[k]
		s.Gapped[k] -= p.base.gapped[k]
	}
	return s
}

// Run reads until the source is flushed (ringbuf.ErrFlushed) or closed,
// then accounts for every event the kernel matched and returns. Records the
// log refuses (disk full) are counted and become a gap record once it
// accepts data again; only a fatal log error ends Run early.
func (p *Pipeline) Run() error {
	var (
		rec       ringbuf.Record
		ev        record.Event
		lastFlush = time.Now()
		n         uint64
	)
	// Commit at once: a kernel side just created is complete (pinned)
	// only from its first commit.
	if err := p.flush(); err != nil {
		return err
	}
	p.src.SetDeadline(lastFlush.Add(loader.PollInterval))
	for {
		err := p.src.ReadInto(&rec)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The ring is idle: push out what is buffered.
			if err := p.housekeeping(true); err != nil {
				return err
			}
			lastFlush = time.Now()
			p.src.SetDeadline(lastFlush.Add(loader.PollInterval))
			continue
		case errors.Is(err, ringbuf.ErrFlushed), errors.Is(err, ringbuf.ErrClosed):
			return p.finish()
		default:
			p.finish()
			return err
		}

		if err := decoder.Decode(rec.RawSample, &ev); err != nil {
			p.lose(gapKey{"decode", "malformed record", -1}, kindOf(rec.RawSample), 1)
			continue
		}
		if p.skip != nil && p.reread(&ev) {
			continue
		}
		if p.opts.WriteDelay > 0 {
			time.Sleep(p.opts.WriteDelay)
		}
		err = p.log.AppendEvent(&ev)
		switch {
		case err == nil:
			p.live.written[ev.Kind].Add(1)
		case errors.Is(err, sink.ErrBlocked):
			p.lose(gapWrite, ev.Kind, 1)
		default:
			return err
		}
		if p.src.Pending() == 0 {
			// The ring is dry: write out now, or, just after a write, as
			// soon as the reader's deadline says the ring stayed dry.
			if now := time.Now(); now.Sub(lastFlush) >= flushIdle {
				if err := p.flush(); err != nil {
					return err
				}
				lastFlush = now
			} else {
				p.src.SetDeadline(lastFlush.Add(flushIdle))
			}
		}
		// Look at the clock every 64 records, not every record: at full
		// rate that is still many times per millisecond.
		if n++; n%64 != 0 {
			continue
		}
		now := time.Now()
		if now.Sub(lastFlush) >= flushInterval || now.Sub(p.lastAccount) >= accountInterval {
			if err := p.housekeeping(now.Sub(lastFlush) >= flushInterval); err != nil {
				return err
			}
			lastFlush = now
		}
		p.src.SetDeadline(now.Add(loader.PollInterval))
	}
}

// kindOf reads the record kind of a raw record that failed to decode; 0
// (counted as "unknown") if even that is not there.
func kindOf(raw []byte) uint32 {
	if len(raw) < decoder.HeaderSize {
		return 0
	}
	var ev record.Event
	decoder.Decode(raw[:decoder.HeaderSize], &ev)
	if ev.Kind >= loader.KindMax {
		return 0
	}
	return ev.Kind
}

func (p *Pipeline) lose(k gapKey, kind uint32, n uint64) {
	now := time.Now()
	p.loseWindow(k, kind, n, now, now)
}

// housekeeping turns kernel loss counters into gaps, writes pending gap
// records and a heartbeat when due, and flushes.
func (p *Pipeline) housekeeping(flush bool) error {
	if time.Since(p.lastAccount) >= accountInterval {
		p.accountKernel()
	}
	p.accountRefused()
	p.watchBlocked()
	p.writeGaps()
	if time.Since(p.lastHeartbeat) >= time.Duration(p.heartbeatEvery.Load()) {
		p.heartbeat()
	}
	if flush {
		return p.flush()
	}
	return nil
}

// flush writes what the log buffers; a log that refuses writes is not an
// error here (the sink keeps the records and retries). Once everything read
// is in the file, it is committed (see commit).
func (p *Pipeline) flush() error {
	pos, err := p.log.FlushPosition()
	if err != nil && !errors.Is(err, sink.ErrBlocked) {
		if blocked, _ := p.log.Blocked(); !blocked {
			return err
		}
	}
	if err == nil {
		p.commit(pos)
	}
	return nil
}

// commit tells the source that everything read is in the log file, which
// ends at pos, with the counts that continue the accounting; the ring's
// space goes back to the kernel. Not while a loss is counted but not in a
// gap record yet (it would be lost uncounted if agenttrace died now), nor
// while an adopted ring's records the log already has are still ahead
// (the next reader would write them twice).
func (p *Pipeline) commit(pos sink.Position) {
	if len(p.gaps) > 0 || p.skip != nil {
		return
	}
	pr := &p.progress
	pr.LogID, pr.Seq, pr.Segment, pr.Offset = pos.LogID, pos.Seq, pos.Segment, pos.Offset
	pr.Written, pr.Gapped = p.Live()
	if len(pr.Accounted) != len(p.accounted) {
		pr.Accounted = make([][loader.KindMax]loader.KindCounters, len(p.accounted))
	}
	copy(pr.Accounted, p.accounted)
	if err := p.src.Commit(pr); err != nil && p.opts.OnCommitError != nil {
		p.opts.OnCommitError(err)
	}
}

// reread reports whether ev is a record of an adopted ring that the log
// already has.
func (p *Pipeline) reread(ev *record.Event) bool {
	id := EventID{CPU: ev.CPU, Kind: ev.Kind, Kseq: ev.Kseq}
	if !p.skip[id] {
		return false
	}
	delete(p.skip, id)
	if len(p.skip) == 0 {
		p.skip = nil
	}
	p.stats.Reread++
	return true
}

// accountKernel counts kernel-side losses since the last call as gaps, per
// CPU and reason.
func (p *Pipeline) accountKernel() {
	now := time.Now()
	counters, err := p.src.PerCPUCounters(p.counters)
	if err != nil {
		return
	}
	p.counters = counters
	// Resumed, accounted comes from the custody record: kept, grown to
	// the CPUs the kernel reports.
	for len(p.accounted) < len(counters) {
		p.accounted = append(p.accounted, [loader.KindMax]loader.KindCounters{})
	}
	for cpu := range counters {
		for kind := range counters[cpu] {
			cur, seen := &counters[cpu][kind], &p.accounted[cpu][kind]
			if d := cur.LostRingbuf - seen.LostRingbuf; d > 0 {
				p.loseWindow(gapRingFull.on(cpu), uint32(kind), d, p.lastAccount, now)
			}
			if d := cur.LostInflight - seen.LostInflight; d > 0 {
				p.loseWindow(gapInflightFull.on(cpu), uint32(kind), d, p.lastAccount, now)
			}
			*seen = *cur
		}
	}
	p.lastAccount = now
}

// watchBlocked says when the log starts and stops refusing writes; when
// it takes them again, a heartbeat (after the gap records of what was lost)
// tells a reader of the log that the writer is back.
func (p *Pipeline) watchBlocked() {
	blocked, err := p.log.Blocked()
	switch {
	case blocked && !p.wasBlocked:
		p.wasBlocked = true
		if p.opts.OnBlocked != nil {
			p.opts.OnBlocked(err)
		}
	case !blocked && p.wasBlocked:
		p.wasBlocked = false
		p.writeGaps()
		p.heartbeat()
		if p.opts.OnBlocked != nil {
			p.opts.OnBlocked(nil)
		}
	}
}

// accountRefused counts agenttrace's own records (heartbeats, freezes,
// the daemon's records…) that the log refused, as a write gap.
func (p *Pipeline) accountRefused() {
	refused := p.log.Refused()
	if len(refused) == 0 {
		return
	}
	now := time.Now()
	p.loseWindow(gapWrite, 0, 0, now, now)
	g := p.gaps[gapWrite]
	if g.own == nil {
		g.own = record.Counts{}
	}
	for typ, n := range refused {
		g.own[typ] += n
	}
}

func (p *Pipeline) loseWindow(k gapKey, kind uint32, n uint64, from, to time.Time) {
	g := p.gaps[k]
	if g == nil {
		g = &gap{from: from}
		p.gaps[k] = g
	}
	g.lost[kind] += n
	p.live.counted[kind].Add(n)
	g.to = to
}

// writeGaps appends the pending gap records, unless the log refuses writes.
func (p *Pipeline) writeGaps() {
	if len(p.gaps) == 0 {
		return
	}
	keys := make([]gapKey, 0, len(p.gaps))
	for k := range p.gaps {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b gapKey) int {
		if a.stage != b.stage {
			return cmp.Compare(a.stage, b.stage)
		}
		if a.reason != b.reason {
			return cmp.Compare(a.reason, b.reason)
		}
		return a.cpu - b.cpu
	})
	for _, k := range keys {
		g := p.gaps[k]
		// Kept and retried until written: never counted as refused.
		if err := p.log.TryAppendAt(record.BootTime(), g.body(k)); err != nil {
			return // blocked: retried at the next housekeeping
		}
		for kind, n := range g.lost {
			p.live.gapped[kind].Add(n)
		}
		p.stats.GapRecords++
		delete(p.gaps, k)
	}
}

func (g *gap) body(k gapKey) *record.Gap {
	lost := record.Counts{}
	for kind, n := range g.lost {
		if n > 0 {
			lost[record.KindName(uint32(kind))] += n
		}
	}
	for typ, n := range g.own {
		lost[typ] += n
	}
	return &record.Gap{Stage: k.stage, Reason: k.reason, CPU: k.cpu, Lost: lost, From: g.from, To: g.to}
}

// heartbeat appends the running totals.
func (p *Pipeline) heartbeat() {
	now := time.Now()
	var matched [loader.KindMax]uint64
	for _, cpu := range p.counters {
		for kind, c := range cpu {
			matched[kind] += c.Matched
		}
	}
	c := p.log.Counts()
	hb := &record.Heartbeat{
		UptimeNs: int64(now.Sub(p.start)),
		Records:  c.Records + c.Headers + c.Checkpoints + c.Recoveries + 1, // with this one
		RingSize: p.src.RingSize(),
		RingUsed: p.src.Used(),
	}
	for kind := record.KindExec; kind < loader.KindMax; kind++ {
		if !record.IsKind(kind) {
			continue // a number no record kind uses
		}
		hb.Kinds = append(hb.Kinds, record.KindTotals{
			Kind:    record.KindName(kind),
			Matched: matched[kind],
			Written: p.live.written[kind].Load(),
			Lost:    p.live.gapped[kind].Load() + p.pendingLost(kind),
		})
	}
	// A heartbeat the log refuses is not retried: the next one carries
	// the totals.
	if p.log.TryAppendAt(record.BootTime(), hb) == nil {
		p.lastHeartbeat = now
		p.stats.Heartbeats++
	}
}

func (p *Pipeline) pendingLost(kind uint32) uint64 {
	var n uint64
	for _, g := range p.gaps {
		n += g.lost[kind]
	}
	return n
}

// finish runs after the ring is drained: it counts the last kernel losses,
// writes every pending gap, and checks the accounting identity; any event
// it cannot explain is recorded as a gap too. Handing over (HandOver),
// what the kernel matched and the log does not have yet is still in the
// ring, or in the kernel side's hooks, for the next reader: no identity.
func (p *Pipeline) finish() error {
	p.accountKernel()
	if p.handOver.Load() {
		return p.finishHandOver()
	}
	for kind := range p.stats.Matched {
		p.stats.Matched[kind] = 0
	}
	for _, cpu := range p.counters {
		for kind, c := range cpu {
			p.stats.Matched[kind] += c.Matched
		}
	}
	for kind := loader.KindExec; kind < loader.KindMax; kind++ {
		explained := p.live.written[kind].Load() + p.live.gapped[kind].Load() + p.pendingLost(kind)
		if p.stats.Matched[kind] > explained {
			p.lose(gapKey{"accounting", "matched by the kernel, not in the log", -1}, kind, p.stats.Matched[kind]-explained)
		}
	}
	// The log may refuse writes (disk full): give it as long as Close would.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if blocked, _ := p.log.Blocked(); !blocked || p.log.Flush() == nil {
			break
		}
	}
	p.writeGaps()
	for kind := range p.stats.Unwritten {
		p.stats.Unwritten[kind] = p.pendingLost(uint32(kind))
	}
	return p.flush()
}

// finishHandOver ends a pipeline whose kernel side stays: what it counted
// is written, and what it read committed, if the log takes it.
func (p *Pipeline) finishHandOver() error {
	p.writeGaps()
	// Nothing is Unwritten: a loss not in a gap record is after the last
	// commit, so the next reader counts it again (or reads its record).
	return p.flush()
}
