package pipeline

import (
	"errors"
	"fmt"
	"io"

	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
)

// EventID names one kernel event: its CPU, kind and kseq (per CPU and
// kind, 1, 2, 3…) are unique over a kernel side's life.
type EventID struct {
	CPU  uint32
	Kind uint32
	Kseq uint64
}

// Resume is where an adopted kernel side's accounting stands: its custody
// record, and what the log holds after the point it names.
type Resume struct {
	Written, Gapped [loader.KindMax]uint64
	Accounted       [][loader.KindMax]loader.KindCounters
	// Skip are the records after the custody point that the log has: they
	// are still in the ring (the reader died before committing them), and
	// are not written again.
	Skip map[EventID]bool
	// Tail is how many records the log has after the custody point.
	Tail uint64
}

// ResumeFrom reads the log at base, whose id is logID, from the point the
// custody record p names to its end: records written and losses counted
// there after p's counts were taken continue them. A log that does not
// continue where p says (another log, segments moved away) is an error,
// with a Resume of p's counts alone: the caller then cannot tell which of
// the ring's records the log has, and says so.
func ResumeFrom(base, logID string, p *loader.Progress) (*Resume, error) {
	r := &Resume{Written: p.Written, Gapped: p.Gapped}
	r.Accounted = append([][loader.KindMax]loader.KindCounters(nil), p.Accounted...)
	if p.LogID != logID {
		return r, fmt.Errorf("the kernel side was last read into log %s, not this one (%s)", p.LogID, logID)
	}
	tail := &Resume{Written: r.Written, Gapped: r.Gapped, Skip: map[EventID]bool{}}
	tail.Accounted = append([][loader.KindMax]loader.KindCounters(nil), p.Accounted...)
	if err := tail.scanFrom(base, p); err != nil {
		return r, err
	}
	return tail, nil
}

func (r *Resume) scanFrom(base string, p *loader.Progress) error {
	files, numbers := logfile.Segments(base)
	first := true
	for i, path := range files {
		if numbers[i] < p.Segment {
			continue
		}
		if first && numbers[i] != p.Segment {
			break
		}
		if err := r.scan(path, p, first); err != nil {
			return err
		}
		first = false
	}
	if first {
		return fmt.Errorf("segment %d, where the custody record says the log was, is missing", p.Segment)
	}
	return nil
}

// scan adds what one segment holds after the custody point.
func (r *Resume) scan(path string, p *loader.Progress, first bool) error {
	rd, err := logfile.Open(path)
	if err != nil {
		return err
	}
	defer rd.Close()
	if first {
		if err := rd.SeekLine(p.Offset); err != nil {
			return fmt.Errorf("%s: the custody record's offset %d: %w", path, p.Offset, err)
		}
	}
	for n := 0; ; n++ {
		line, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil // a torn last line is not in the log
		}
		if err != nil {
			return err
		}
		rec, err := record.Decode(line)
		if err != nil {
			return fmt.Errorf("%s at offset %d: %w", path, rd.Offset(), err)
		}
		if first && n == 0 && rec.Seq != p.Seq+1 {
			return fmt.Errorf("%s: the record after the custody point is seq %d, not %d", path, rec.Seq, p.Seq+1)
		}
		r.add(rec)
	}
}

func (r *Resume) add(rec *record.Record) {
	if kind := record.KindOf(rec.Type); kind != record.KindUnknown {
		r.Written[kind]++
		r.Skip[EventID{CPU: rec.CPU, Kind: kind, Kseq: rec.Kseq}] = true
		r.Tail++
		return
	}
	g, ok := rec.Body.(*record.Gap)
	if !ok {
		return
	}
	r.Tail++
	for name, n := range g.Lost {
		kind := record.KindOf(name)
		if name != "unknown" && kind == record.KindUnknown {
			continue // one of agenttrace's own records
		}
		r.Gapped[kind] += n
		if g.Stage != gapRingFull.stage || g.CPU < 0 || g.CPU >= 1<<16 {
			continue
		}
		for len(r.Accounted) <= g.CPU {
			r.Accounted = append(r.Accounted, [loader.KindMax]loader.KindCounters{})
		}
		switch g.Reason {
		case gapRingFull.reason:
			r.Accounted[g.CPU][kind].LostRingbuf += n
		case gapInflightFull.reason:
			r.Accounted[g.CPU][kind].LostInflight += n
		}
	}
}
