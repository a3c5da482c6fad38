package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
)

// DefaultPoll is how often a tailer at the end of the log looks for more.
const DefaultPoll = 200 * time.Millisecond

// Position is a place in a log: the byte offset of the next line in a
// segment, and the seq of the record before it (0 before the first).
type Position struct {
	Segment int    `json:"segment"`
	Offset  int64  `json:"offset"`
	Seq     uint64 `json:"seq"`
}

// Skip is a stretch of the log the tailer passed over because it holds no
// record: the torn last line of a segment that a crash cut (the next
// segment's recovery record describes the same bytes), or segments that are
// missing.
type Skip struct {
	Segment int
	Offset  int64
	Bytes   int64 // -1: the segment file is missing
	Reason  string
}

// Tailer reads the complete lines of a log, segment after segment, from a
// position, and waits for more. A line is a record only once its newline is
// written: a partial line at the end of the newest segment is waited for; a
// partial line at the end of a segment that a newer one follows was cut by
// a crash and is skipped (OnSkip says so). It never writes to the log.
type Tailer struct {
	base   string
	logID  string // the log's identity: from the cursor, else the first header read
	host   string // from the current segment's header
	pos    Position
	rd     *logfile.Reader // the segment at pos, positioned at pos.Offset
	poll   time.Duration
	onSkip func(Skip)
}

// NewTailer returns a tailer of the log at base (the path of segment 1)
// that starts at pos. logID, if not empty, is the log the position belongs
// to: a segment of another log is an error. onSkip may be nil.
func NewTailer(base, logID string, pos Position, poll time.Duration, onSkip func(Skip)) *Tailer {
	if pos.Segment < 1 {
		pos.Segment = 1
	}
	if poll <= 0 {
		poll = DefaultPoll
	}
	return &Tailer{base: base, logID: logID, pos: pos, poll: poll, onSkip: onSkip}
}

// Position is where the next record starts, and the seq of the last one read.
func (t *Tailer) Position() Position { return t.pos }

// LogID is the log's identity, once a header was read ("" before).
func (t *Tailer) LogID() string { return t.logID }

// Seek moves the tailer to pos (of the same log).
func (t *Tailer) Seek(pos Position) {
	t.closeFile()
	if pos.Segment < 1 {
		pos.Segment = 1
	}
	t.pos = pos
}

// Close releases the open segment.
func (t *Tailer) Close() error {
	t.closeFile()
	return nil
}

func (t *Tailer) closeFile() {
	if t.rd != nil {
		t.rd.Close()
		t.rd = nil
	}
}

// Next reads the next record into r, waiting for it until ctx is done.
func (t *Tailer) Next(ctx context.Context, r *Record) error {
	for {
		ok, err := t.TryNext(r)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(t.poll):
		}
	}
}

// TryNext reads the next record into r if one is complete; false if the
// tailer is at the end of the log for now. r's buffers are reused.
func (t *Tailer) TryNext(r *Record) (bool, error) {
	for {
		if t.rd == nil {
			ok, err := t.open()
			if err != nil || !ok {
				return false, err
			}
		}
		line, err := t.rd.Next()
		if err == io.EOF {
			next := t.nextSegment()
			if next == 0 {
				return false, nil
			}
			// A newer segment exists, so the writer is done with this one.
			// Bytes it wrote before creating the next are read first.
			line, err = t.rd.Next()
			if err == io.EOF {
				if torn := len(t.rd.Pending()); torn > 0 {
					t.skip(Skip{Segment: t.pos.Segment, Offset: t.pos.Offset, Bytes: int64(torn),
						Reason: "torn last line (a crash cut it; the next segment's recovery record describes it)"})
				}
				t.moveTo(next)
				continue
			}
		}
		if err != nil {
			return false, fmt.Errorf("%s offset %d: %w", logfile.SegmentPath(t.base, t.pos.Segment), t.pos.Offset, err)
		}
		if err := t.fill(r, line[:len(line)-1]); err != nil {
			return false, err
		}
		t.pos.Offset = t.rd.Offset()
		t.pos.Seq = r.Seq
		return true, nil
	}
}

// fill parses one line into r.
func (t *Tailer) fill(r *Record, line []byte) error {
	r.Line = append(r.Line[:0], line...)
	env, err := record.ParseEnvelope(r.Line)
	if err != nil {
		return fmt.Errorf("%s offset %d: %w: not a record of an agenttrace log (run agenttrace verify)",
			logfile.SegmentPath(t.base, t.pos.Segment), t.pos.Offset, err)
	}
	r.Seq = env.Seq
	r.Type = env.Type
	r.Time = env.Time
	r.LogID = t.logID
	r.Host = t.host
	r.Segment = t.pos.Segment
	r.Offset = t.pos.Offset
	return nil
}

// open opens the segment at t.pos and reads its header; false if there is
// nothing to read yet.
func (t *Tailer) open() (bool, error) {
	for {
		path := logfile.SegmentPath(t.base, t.pos.Segment)
		header, size, err := logfile.FirstLine(path)
		if errors.Is(err, os.ErrNotExist) {
			next := t.nextSegment()
			if next == 0 {
				return false, nil // not written yet
			}
			for k := t.pos.Segment; k < next; k++ {
				t.skip(Skip{Segment: k, Bytes: -1, Reason: "segment file missing"})
			}
			t.moveTo(next)
			continue
		}
		if err != nil {
			return false, fmt.Errorf("opening log segment: %w", err)
		}
		if header == nil {
			// The header is still being written, or a crash cut it.
			next := t.nextSegment()
			if next == 0 {
				return false, nil
			}
			if size > 0 {
				t.skip(Skip{Segment: t.pos.Segment, Bytes: size, Reason: "segment without a complete header (a crash cut it)"})
			}
			t.moveTo(next)
			continue
		}
		if err := t.header(path, header); err != nil {
			return false, err
		}
		if t.pos.Offset > size {
			return false, fmt.Errorf("%s has %d bytes, the position is at %d: the log was truncated or replaced", path, size, t.pos.Offset)
		}
		rd, err := logfile.Open(path)
		if err != nil {
			return false, fmt.Errorf("opening log segment: %w", err)
		}
		if err := rd.SeekLine(t.pos.Offset); err != nil {
			rd.Close()
			return false, fmt.Errorf("%w: the log was replaced", err)
		}
		t.rd = rd
		return true, nil
	}
}

// header checks a segment's header against the log and takes its host.
func (t *Tailer) header(path string, line []byte) error {
	rec, err := record.Decode(line[:len(line)-1])
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	hdr, ok := rec.Body.(*record.Header)
	if !ok {
		return fmt.Errorf("%s does not start with an agenttrace header record: not an agenttrace log", path)
	}
	if t.logID != "" && hdr.LogID != t.logID {
		return fmt.Errorf("%s belongs to log %s, not to log %s that is being exported: a different log was put at %s",
			path, hdr.LogID, t.logID, t.base)
	}
	t.logID, t.host = hdr.LogID, rec.Host
	return nil
}

// nextSegment is the number of the first existing segment after the
// current one, 0 if there is none.
func (t *Tailer) nextSegment() int {
	_, numbers := logfile.Segments(t.base)
	for _, k := range numbers {
		if k > t.pos.Segment {
			return k
		}
	}
	return 0
}

func (t *Tailer) moveTo(segment int) {
	t.closeFile()
	t.pos.Segment, t.pos.Offset = segment, 0
}

func (t *Tailer) skip(s Skip) {
	if t.onSkip != nil {
		t.onSkip(s)
	}
}

// bytesAfter is how many bytes of the log at base follow pos: what is not
// exported yet.
func bytesAfter(base string, pos Position) int64 {
	files, numbers := logfile.Segments(base)
	var n int64
	for i, k := range numbers {
		if k < pos.Segment {
			continue
		}
		info, err := os.Stat(files[i])
		if err != nil {
			continue
		}
		n += info.Size()
		if k == pos.Segment {
			n -= min(pos.Offset, info.Size())
		}
	}
	return n
}

// segmentFor returns the position of the start of the segment that holds
// seq: the last segment whose header's seq is at most seq.
func segmentFor(base string, seq uint64) (Position, error) {
	files, numbers := logfile.Segments(base)
	pos := Position{Segment: 1}
	for i, path := range files {
		line, _, err := logfile.FirstLine(path)
		if err != nil || line == nil {
			continue
		}
		env, err := record.ParseEnvelope(line)
		if err != nil {
			continue
		}
		if env.Seq > seq {
			break
		}
		pos = Position{Segment: numbers[i], Seq: env.Seq - 1}
	}
	return pos, nil
}
