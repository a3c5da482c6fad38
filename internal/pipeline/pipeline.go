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
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/decoder"
	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/sink"
)

const (
	// flushInterval bounds how long a record may sit in the writer's
	// buffer while the ring keeps the pipeline busy.
	flushInterval = 200 * time.Millisecond
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
	Pending() int
	RingSize() int
}

// Options of a pipeline.
type Options struct {
	Heartbeat time.Duration // 0: DefaultHeartbeat
	// WriteDelay slows every record down (tests: a writer that cannot keep up).
	WriteDelay time.Duration
}

// Stats are the pipeline's counts, by record kind.
type Stats struct {
	Matched    [loader.KindMax]uint64 // events the kernel matched (read at the end)
	Written    [loader.KindMax]uint64 // event records in the log
	Gapped     [loader.KindMax]uint64 // events counted in gap records in the log
	Unwritten  [loader.KindMax]uint64 // lost events whose gap record could not be written either
	GapRecords uint64
	Heartbeats uint64
}

// Lost is the number of events of a kind that are not records in the log.
func (s *Stats) Lost(kind uint32) uint64 { return s.Gapped[kind] + s.Unwritten[kind] }

// gapKey says where events were lost.
type gapKey struct {
	stage  string // kernel, decode, write
	reason string
	cpu    int // -1 for user-space stages
}

type gap struct {
	lost     [loader.KindMax]uint64
	from, to time.Time
}

// Pipeline is one read-decode-encode-append loop.
type Pipeline struct {
	src   Source
	enc   *record.Encoder
	log   *sink.Writer
	opts  Options
	start time.Time
	stats Stats

	// live holds the counts of records written and events counted in gap
	// records (Stats.Written, Stats.Gapped), readable while Run runs.
	live struct {
		written, gapped [loader.KindMax]atomic.Uint64
	}
	heartbeatEvery atomic.Int64 // opts.Heartbeat, changeable while running

	gaps          map[gapKey]*gap // counted, not yet in the log
	counters      [][loader.KindMax]loader.KindCounters
	accounted     [][loader.KindMax]loader.KindCounters // kernel losses already counted
	lastAccount   time.Time
	lastHeartbeat time.Time
}

// New returns a pipeline from src to log through enc.
func New(src Source, enc *record.Encoder, log *sink.Writer, opts Options) *Pipeline {
	if opts.Heartbeat == 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	now := time.Now()
	p := &Pipeline{src: src, enc: enc, log: log, opts: opts, start: now, lastHeartbeat: now, lastAccount: now,
		gaps: map[gapKey]*gap{}}
	p.heartbeatEvery.Store(int64(opts.Heartbeat))
	return p
}

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

// Stats returns the counts; call it after Run has returned.
func (p *Pipeline) Stats() Stats {
	s := p.stats
	s.Written, s.Gapped = p.Live()
	return s
}

// Run reads until the source is flushed (ringbuf.ErrFlushed) or closed,
// then accounts for every event the kernel matched and returns. Records the
// log refuses (disk full) are counted and become a gap record once it
// accepts data again; only a fatal log error ends Run early.
func (p *Pipeline) Run() error {
	var (
		rec       ringbuf.Record
		ev        decoder.Event
		lastFlush = time.Now()
		n         uint64
	)
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
		if p.opts.WriteDelay > 0 {
			time.Sleep(p.opts.WriteDelay)
		}
		err = p.log.Append(func(b []byte, seq uint64, prev *chain.Hash) []byte {
			return p.enc.AppendEvent(b, seq, prev, &ev)
		})
		switch {
		case err == nil:
			p.live.written[ev.Hdr.Kind].Add(1)
		case errors.Is(err, sink.ErrBlocked):
			p.lose(gapKey{"write", "the log file refused writes", -1}, ev.Hdr.Kind, 1)
		default:
			return err
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
	var ev decoder.Event
	decoder.Decode(raw[:decoder.HeaderSize], &ev)
	if ev.Hdr.Kind >= loader.KindMax {
		return 0
	}
	return ev.Hdr.Kind
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
	p.writeGaps()
	if time.Since(p.lastHeartbeat) >= time.Duration(p.heartbeatEvery.Load()) {
		p.heartbeat()
	}
	if flush {
		if err := p.log.Flush(); err != nil && !errors.Is(err, sink.ErrBlocked) {
			if blocked, _ := p.log.Blocked(); !blocked {
				return err
			}
		}
	}
	return nil
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
	if len(p.accounted) != len(counters) {
		p.accounted = make([][loader.KindMax]loader.KindCounters, len(counters))
	}
	for cpu := range counters {
		for kind := range counters[cpu] {
			cur, seen := &counters[cpu][kind], &p.accounted[cpu][kind]
			if d := cur.LostRingbuf - seen.LostRingbuf; d > 0 {
				p.loseWindow(gapKey{"kernel", "ring buffer full", cpu}, uint32(kind), d, p.lastAccount, now)
			}
			if d := cur.LostInflight - seen.LostInflight; d > 0 {
				p.loseWindow(gapKey{"kernel", "syscall pairing map full", cpu}, uint32(kind), d, p.lastAccount, now)
			}
			*seen = *cur
		}
	}
	p.lastAccount = now
}

func (p *Pipeline) loseWindow(k gapKey, kind uint32, n uint64, from, to time.Time) {
	g := p.gaps[k]
	if g == nil {
		g = &gap{from: from}
		p.gaps[k] = g
	}
	g.lost[kind] += n
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
		err := p.log.Append(func(b []byte, seq uint64, prev *chain.Hash) []byte {
			return p.appendGap(b, seq, prev, k, g)
		})
		if err != nil {
			return // blocked: retried at the next housekeeping
		}
		for kind, n := range g.lost {
			p.live.gapped[kind].Add(n)
		}
		p.stats.GapRecords++
		delete(p.gaps, k)
	}
}

func kindName(kind int) string {
	if name := record.KindName(uint32(kind)); name != "" {
		return name
	}
	return "unknown"
}

func (p *Pipeline) appendGap(b []byte, seq uint64, prev *chain.Hash, k gapKey, g *gap) []byte {
	b = p.enc.AppendEnvelope(b, seq, prev, record.BootTime(), "gap")
	b = append(b, `,"gap":{"stage":"`...)
	b = append(b, k.stage...)
	b = append(b, `","reason":"`...)
	b = append(b, k.reason...)
	b = append(b, '"')
	if k.cpu >= 0 {
		b = append(b, `,"cpu":`...)
		b = strconv.AppendInt(b, int64(k.cpu), 10)
	}
	b = append(b, `,"lost":{`...)
	first := true
	for kind, n := range g.lost {
		if n == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, kindName(kind)...)
		b = append(b, `":`...)
		b = strconv.AppendUint(b, n, 10)
	}
	b = append(b, `},"from":"`...)
	b = g.from.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","to":"`...)
	b = g.to.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}}`...)
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
	pending := p.src.Pending()
	c := p.log.Counts()
	lines := c.Records + c.Headers + c.Checkpoints + c.Recoveries + 1 // with this one
	err := p.log.Append(func(b []byte, seq uint64, prev *chain.Hash) []byte {
		b = p.enc.AppendEnvelope(b, seq, prev, record.BootTime(), "heartbeat")
		b = append(b, `,"heartbeat":{"uptime_ns":`...)
		b = strconv.AppendInt(b, int64(now.Sub(p.start)), 10)
		b = append(b, `,"records":`...)
		b = strconv.AppendUint(b, lines, 10)
		b = append(b, `,"ring":{"size":`...)
		b = strconv.AppendInt(b, int64(p.src.RingSize()), 10)
		b = append(b, `,"used":`...)
		b = strconv.AppendInt(b, int64(pending), 10)
		b = append(b, `},"kinds":{`...)
		for kind := loader.KindExec; kind < loader.KindMax; kind++ {
			if kind > loader.KindExec {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, record.KindName(kind)...)
			b = append(b, `":{"matched":`...)
			b = strconv.AppendUint(b, matched[kind], 10)
			b = append(b, `,"written":`...)
			b = strconv.AppendUint(b, p.live.written[kind].Load(), 10)
			b = append(b, `,"lost":`...)
			b = strconv.AppendUint(b, p.live.gapped[kind].Load()+p.pendingLost(kind), 10)
			b = append(b, '}')
		}
		return append(b, "}}}"...)
	})
	if err == nil {
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
// it cannot explain is recorded as a gap too.
func (p *Pipeline) finish() error {
	p.accountKernel()
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
	if err := p.log.Flush(); err != nil {
		if blocked, _ := p.log.Blocked(); !blocked {
			return err
		}
	}
	return nil
}
