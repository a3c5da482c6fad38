package chain

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/note"

	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
)

// Kinds of damage Verify names.
const (
	Modified       = "modified"
	Deleted        = "deleted"
	Inserted       = "inserted"
	Reordered      = "reordered"
	Truncated      = "truncated"
	Spliced        = "spliced from another log"
	MissingSegment = "missing segment"
	BadSignature   = "bad signature"
	WrongKey       = "wrong key"
)

// Damage is the first place where a log is not what its writer wrote.
type Damage struct {
	Kind    string
	Segment string // file
	Line    int    // 1-based line in Segment; 0 if not about a line
	Seq     uint64 // seq of the record concerned; 0 if unknown
	Detail  string
}

func (d *Damage) Error() string {
	where := d.Segment
	if d.Line > 0 {
		where += fmt.Sprintf(" line %d", d.Line)
	}
	if d.Seq > 0 {
		where += fmt.Sprintf(" (seq %d)", d.Seq)
	}
	return fmt.Sprintf("%s at %s: %s", d.Kind, where, d.Detail)
}

// HeadRef is a chain head held outside the log: the hash of line Seq.
type HeadRef struct {
	Seq  uint64
	Hash Hash
}

// VerifyOptions of a verification.
type VerifyOptions struct {
	// PublicKeys, if set, are the only keys the log's segments and
	// checkpoints may be signed with: one per run that wrote it, when each
	// run had its own (ephemeral) key.
	PublicKeys []string
	// Head, if set, must be in the log: catches truncation of the tail
	// together with its checkpoints.
	Head *HeadRef
	// Open accepts a log that is still being written: its records after
	// the last checkpoint are reported as unsigned, not as truncation.
	Open bool
	// Visit, if set, is given every complete line of the log, in order,
	// newline included, valid during the call: those verified and, after
	// damage, the rest unverified. A reader of the log (show) reads it once.
	Visit func(line []byte)
}

// Report says what was checked.
type Report struct {
	LogID         string
	Segments      []string
	Records       uint64 // lines verified
	Checkpoints   int
	LastSignedSeq uint64
	LastSeq       uint64
	Unsigned      uint64   // records after the last checkpoint
	Keys          []string // checkpoint keys, in order of first use
	Recovered     []string // how each recovery record says a segment ended (crash, torn bytes, unsigned records)
	Damage        *Damage  // nil: intact
}

type verifier struct {
	opts   VerifyOptions
	rep    *Report
	expect uint64
	prev   Hash
	tree   Tree
	keys   map[string]note.Verifier
	given  map[string]bool // opts.PublicKeys
	lastCP uint64
	final  bool
	// torns are the torn tails (and segments with no complete record)
	// the next segment's recovery records must acknowledge, in order.
	torns    []*tornTail
	headSeen bool
}

type tornTail struct {
	file   string
	offset int64
	data   []byte
}

// batchBytes is how much of a segment is validated at once: JSON
// validation is most of the cost of verifying, so it runs on every CPU over
// a batch of lines while hashing stays sequential. Memory is bounded by it
// plus the longest line (logfile.MaxLine).
const (
	batchBytes = 8 << 20
	batchLines = 64 << 10
)

// Verify checks the segments of one log, given in order (segment 1 first).
// The error is for I/O and for input that is not an agenttrace log at all
// (ErrNotALog); damage to a log is in Report.Damage.
func Verify(segments []string, numbers []int, opts VerifyOptions) (*Report, error) {
	v := &verifier{opts: opts, rep: &Report{Segments: segments}, expect: 1, keys: map[string]note.Verifier{}, given: map[string]bool{}}
	for _, k := range opts.PublicKeys {
		nv, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		v.keys[k], v.given[k] = nv, true
	}
	if len(segments) == 0 || numbers[0] != 1 {
		first := "(none)"
		if len(segments) > 0 {
			first = segments[0]
		}
		v.rep.Damage = &Damage{Kind: MissingSegment, Segment: first, Detail: "segment 1 of the log is missing"}
		return v.rep, nil
	}
	for i, path := range segments {
		if numbers[i] != i+1 {
			v.rep.Damage = &Damage{Kind: MissingSegment, Segment: path,
				Detail: fmt.Sprintf("segment %d is missing before segment %d", i+1, numbers[i])}
			return v.rep, nil
		}
		d, resume, err := v.segment(path, i+1)
		if err != nil {
			return nil, err
		}
		if d != nil {
			v.rep.Damage = d
			if opts.Visit != nil {
				for line := range restOf(path, resume-1) {
					opts.Visit(line)
				}
				for _, later := range segments[i+1:] {
					for line := range restOf(later, -1) {
						opts.Visit(line)
					}
				}
			}
			return v.rep, nil
		}
	}
	v.rep.Damage = v.end(segments[len(segments)-1])
	return v.rep, nil
}

// segment verifies one segment, streaming it in batches of lines. After
// damage it returns the offset of the first line not given to Visit.
func (v *verifier) segment(path string, number int) (*Damage, int64, error) {
	rd, err := logfile.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer rd.Close()
	var (
		store   []byte   // the batch's lines, in order
		lens    []int    // their lengths
		offsets []int64  // the file offset after each
		batch   [][]byte // store split into lines
		carry   []byte   // the last line of a batch, verified with the next one
		n       = 1      // line number of the batch's first line
		readErr error
	)
	for readErr == nil {
		store, lens, offsets = store[:0], lens[:0], offsets[:0]
		if len(carry) > 0 {
			// The reader is still at the end of the carried line.
			store, lens, offsets = append(store, carry...), append(lens, len(carry)), append(offsets, rd.Offset())
		}
		for len(store) < batchBytes && len(lens) < batchLines {
			line, err := rd.Next()
			if err != nil {
				readErr = err
				break
			}
			store, lens, offsets = append(store, line...), append(lens, len(line)), append(offsets, rd.Offset())
		}
		batch = batch[:0]
		for pos, i := 0, 0; i < len(lens); i++ {
			batch = append(batch, store[pos:pos+lens[i]])
			pos += lens[i]
		}
		switch {
		case readErr == io.EOF:
		case errors.Is(readErr, logfile.ErrLineTooLong) && number == 1 && n == 1 && len(batch) == 0:
			return nil, 0, fmt.Errorf("%s: %w", path, ErrNotALog)
		case errors.Is(readErr, logfile.ErrLineTooLong):
			// Lines before the long one are not verified: name the place.
			return &Damage{Kind: Modified, Segment: path, Line: n + len(batch), Seq: v.expect, Detail: readErr.Error()}, rd.Offset() + 1, nil
		case readErr != nil:
			return nil, 0, readErr
		}
		if n == 1 && len(batch) == 0 {
			if number == 1 {
				return nil, 0, fmt.Errorf("%s has no complete record: %w", path, ErrNotALog)
			}
			// A segment whose start a crash or a full disk cut: its bytes are
			// torn, and the next segment must say so.
			v.torns = append(v.torns, &tornTail{file: path, data: append([]byte(nil), rd.Pending()...)})
			return nil, 0, nil
		}
		// Verify every line but the last, which needs the next batch's
		// first line (does it link back?), unless the segment has ended.
		upto := len(batch) - 1
		if readErr != nil {
			upto = len(batch)
		}
		invalid := firstInvalidJSON(batch[:upto])
		for i := 0; i < upto; i++ {
			lineNo := n + i
			var next []byte
			if i+1 < len(batch) {
				next = batch[i+1]
			}
			start := offsets[i] - int64(len(batch[i]))
			if lineNo == 1 {
				if d, err := v.header(path, number, batch[0]); d != nil || err != nil {
					return d, start + 1, err
				}
			}
			if d := v.line(path, lineNo, batch[i], i == invalid, next, offsets[i]); d != nil {
				return d, start + 1, nil
			}
			if v.opts.Visit != nil {
				v.opts.Visit(batch[i])
			}
			if lineNo == 1 && len(v.torns) > 0 {
				// The lines after a continuing header must acknowledge the
				// torn tails before it.
				if d := v.recovered(path, offsets[i]); d != nil {
					return d, offsets[i] + 1, nil
				}
			}
		}
		n += upto
		carry = append(carry[:0], store[len(store)-lenAfter(lens, upto):]...)
	}
	if pending := rd.Pending(); len(pending) > 0 {
		v.torns = append(v.torns, &tornTail{file: path, offset: rd.Offset(), data: append([]byte(nil), pending...)})
	}
	return nil, 0, nil
}

// lenAfter is the number of bytes of the lines after the first upto.
func lenAfter(lens []int, upto int) int {
	n := 0
	for _, l := range lens[upto:] {
		n += l
	}
	return n
}

// restOf iterates over the lines of a segment that end after offset: what
// the diagnosis of a damaged line looks at (is the missing seq later? do
// the records from here belong to another log?). It reads the file again,
// so verifying stays bounded in memory.
func restOf(path string, offset int64) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		rd, err := logfile.Open(path)
		if err != nil {
			return
		}
		defer rd.Close()
		for {
			line, err := rd.Next()
			if err != nil {
				return
			}
			if rd.Offset() <= offset {
				continue
			}
			if !yield(line) {
				return
			}
		}
	}
}

// firstInvalidJSON returns the index of the first line that is not valid
// JSON or repeats a key in an object, or -1. JSON validation is most of the
// cost of verifying, so it runs on every CPU while hashing stays sequential.
func firstInvalidJSON(lines [][]byte) int {
	workers := runtime.GOMAXPROCS(0)
	chunk := (len(lines) + workers - 1) / workers
	if chunk < 1024 {
		chunk, workers = len(lines), 1
	}
	firsts := make([]int, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		firsts[w] = -1
		lo, hi := w*chunk, min((w+1)*chunk, len(lines))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				line := trimNewline(lines[i])
				if !json.Valid(line) || record.ValidLine(line) != nil {
					firsts[w] = i
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, f := range firsts {
		if f >= 0 {
			return f
		}
	}
	return -1
}

func (v *verifier) header(path string, number int, line []byte) (*Damage, error) {
	at := func(kind, format string, args ...any) *Damage {
		return &Damage{Kind: kind, Segment: path, Line: 1, Seq: v.expect, Detail: fmt.Sprintf(format, args...)}
	}
	env, err := record.ParseEnvelope(line)
	if err != nil || env.Type != "header" {
		if number == 1 {
			if !bytes.HasPrefix(line, []byte(`{"v":`)) {
				return nil, fmt.Errorf("%s does not start with an agenttrace record: %w", path, ErrNotALog)
			}
			return at(Modified, "the first record is not a header"), nil
		}
		return at(MissingSegment, "the segment does not start with a header: a segment before it may be missing"), nil
	}
	hdr, err := decodeBody[record.Header](line)
	if err != nil {
		return at(Modified, "%v", err), nil
	}
	if hdr.Segment != number {
		return at(MissingSegment, "the header says segment %d, the file is segment %d", hdr.Segment, number), nil
	}
	if number == 1 {
		if hdr.Continues != nil {
			return at(MissingSegment, "segment 1 continues %s: the log's earlier segments are missing", hdr.Continues.SegmentFile), nil
		}
		v.rep.LogID = hdr.LogID
	} else {
		if hdr.LogID != v.rep.LogID {
			return at(Spliced, "log id %s, the log's is %s", hdr.LogID, v.rep.LogID), nil
		}
		c := hdr.Continues
		if c == nil || c.LastSeq != v.expect-1 || c.LastHash != v.prev.String() {
			return at(MissingSegment, "the header does not continue the end of the previous segment (seq %d)", v.expect-1), nil
		}
		if !slices.Equal(c.Tree, v.tree.State()) {
			return at(Modified, "the header's tree state differs from the tree of the records before it"), nil
		}
	}
	if len(v.given) > 0 && !v.given[hdr.Key] {
		return at(WrongKey, "the segment is signed by %s, expected %s", hdr.Key, strings.Join(v.opts.PublicKeys, " or ")), nil
	}
	if _, ok := v.keys[hdr.Key]; !ok {
		nv, err := note.NewVerifier(hdr.Key)
		if err != nil {
			return at(Modified, "header key: %v", err), nil
		}
		v.keys[hdr.Key] = nv
		v.rep.Keys = append(v.rep.Keys, hdr.Key)
	} else if len(v.rep.Keys) == 0 || v.rep.Keys[len(v.rep.Keys)-1] != hdr.Key {
		v.rep.Keys = append(v.rep.Keys, hdr.Key)
	}
	return nil, nil
}

// recovered checks that the records right after a header (the lines of
// the segment after offset) acknowledge, with recovery records, every torn
// tail before it.
func (v *verifier) recovered(path string, offset int64) *Damage {
	torns := v.torns
	v.torns = nil
	recs := map[string]*record.Recovery{} // by segment file
	for line := range restOf(path, offset) {
		env, err := record.ParseEnvelope(line)
		if err != nil || env.Type != "recovery" {
			break
		}
		rec, err := decodeBody[record.Recovery](line)
		if err != nil {
			break
		}
		recs[rec.SegmentFile] = rec
	}
	for _, t := range torns {
		bad := &Damage{Kind: Truncated, Segment: t.file}
		rec := recs[filepath.Base(t.file)]
		switch {
		case rec == nil:
			bad.Detail = fmt.Sprintf("%d bytes after the last complete record are not acknowledged by a recovery record in %s", len(t.data), filepath.Base(path))
			return bad
		case rec.TornOffset != t.offset || rec.TornBytes != int64(len(t.data)) || len(t.data) > 0 && rec.TornSHA256 != HashLine(t.data).String():
			bad.Detail = "the recovery record does not describe the torn tail as found"
			return bad
		}
	}
	return nil
}

// line verifies line n of a segment; next is the line after it (nil at
// the end), and the lines after offset the rest of the segment, which the
// diagnosis of damage reads.
func (v *verifier) line(path string, n int, line []byte, invalid bool, next []byte, offset int64) *Damage {
	rest := func(yield func([]byte) bool) { restOf(path, offset)(yield) }
	at := func(kind string, seq uint64, lineNo int, format string, args ...any) *Damage {
		return &Damage{Kind: kind, Segment: path, Line: lineNo, Seq: seq, Detail: fmt.Sprintf(format, args...)}
	}
	// broken names the first failure, unless the records from here on
	// belong to another log: then the log was spliced here.
	broken := func(d *Damage) *Damage {
		if isAnotherLog(line, v.rep.LogID) || spliced(rest, v.rep.LogID) {
			return at(Spliced, v.expect, n, "the records from here on belong to another log")
		}
		return d
	}
	if invalid {
		return broken(at(Modified, v.expect, n, "the line is not valid JSON, or repeats a key"))
	}
	env, err := record.ParseEnvelope(line)
	if err != nil {
		return broken(at(Modified, v.expect, n, "%v", err))
	}
	h := HashLine(line)
	nextLinksHere := next != nil && linksTo(next, h)
	switch {
	case env.Seq > v.expect:
		for later := range rest {
			if e, err := record.ParseEnvelope(later); err == nil && e.Seq == v.expect {
				return broken(at(Reordered, env.Seq, n, "seq %d appears where seq %d belongs", env.Seq, v.expect))
			}
		}
		return broken(at(Deleted, v.expect, n, "records %d to %d are missing", v.expect, env.Seq-1))
	case env.Seq < v.expect:
		if env.Seq == v.expect-1 && nextLinksHere {
			// This record is the one the log goes on from: the one before
			// it, with the same seq, was inserted.
			return broken(at(Inserted, env.Seq, n-1, "a second record with seq %d was inserted before this one", env.Seq))
		}
		return broken(at(Inserted, env.Seq, n, "a record with seq %d appears again after seq %d", env.Seq, v.expect-1))
	case Hash(env.Prev) != v.prev:
		// Either the previous line was changed, or this line's prev was.
		// If the next line still links to this one, this one is intact.
		if nextLinksHere || next == nil {
			return broken(at(Modified, v.expect-1, n-1, "the record does not match the hash that seq %d holds for it", v.expect))
		}
		return broken(at(Modified, v.expect, n, "the record's prev does not match the record before it"))
	case env.Type == "header" && n != 1:
		return broken(at(Inserted, env.Seq, n, "a header record in the middle of a segment"))
	}
	if v.opts.Head != nil && env.Seq == v.opts.Head.Seq {
		v.headSeen = true
		if h != v.opts.Head.Hash {
			return at(Modified, env.Seq, n, "the record does not match the head held elsewhere (%s)", v.opts.Head.Hash)
		}
	}
	if env.Type == "checkpoint" {
		if d := v.checkpoint(path, n, line, env.Seq); d != nil {
			return d
		}
	}
	if env.Type == "recovery" {
		if rec, err := decodeBody[record.Recovery](line); err == nil {
			v.rep.Recovered = append(v.rep.Recovered, recoveryText(rec))
		}
	}
	v.prev = h
	v.tree.Append(v.prev)
	v.expect++
	v.rep.Records++
	v.rep.LastSeq = env.Seq
	if env.Type != "checkpoint" {
		v.final = false
	}
	return nil
}

// recoveryText says how a recovery record says a segment ended.
func recoveryText(r *record.Recovery) string {
	switch {
	case r.TornBytes > 0 && r.TornOffset == 0:
		return fmt.Sprintf("%s: a segment with no complete record (%d bytes; its start was cut), after seq %d", r.SegmentFile, r.TornBytes, r.AfterSeq)
	case r.TornBytes > 0:
		return fmt.Sprintf("%s: ended without a final checkpoint after seq %d (%d unsigned records) and %d torn bytes at offset %d (a crash)", r.SegmentFile, r.AfterSeq, r.Unsigned, r.TornBytes, r.TornOffset)
	}
	return fmt.Sprintf("%s: ended without a final checkpoint after seq %d (%d unsigned records: a crash)", r.SegmentFile, r.AfterSeq, r.Unsigned)
}

func linksTo(line []byte, h Hash) bool {
	env, err := record.ParseEnvelope(line)
	return err == nil && Hash(env.Prev) == h
}

// isAnotherLog reports whether line is a header or checkpoint of a log
// other than logID.
func isAnotherLog(line []byte, logID string) bool {
	env, err := record.ParseEnvelope(line)
	if err != nil {
		return false
	}
	switch env.Type {
	case "checkpoint":
		cp, err := decodeBody[record.Checkpoint](line)
		return err == nil && cp.LogID != logID
	case "header":
		h, err := decodeBody[record.Header](line)
		return err == nil && h.LogID != logID
	}
	return false
}

// spliced reports whether the rest of a segment holds a header or
// checkpoint of another log.
func spliced(rest iter.Seq[[]byte], logID string) bool {
	for line := range rest {
		if isAnotherLog(line, logID) {
			return true
		}
	}
	return false
}

func (v *verifier) checkpoint(path string, n int, line []byte, seq uint64) *Damage {
	at := func(kind, format string, args ...any) *Damage {
		return &Damage{Kind: kind, Segment: path, Line: n, Seq: seq, Detail: fmt.Sprintf(format, args...)}
	}
	cp, err := decodeBody[record.Checkpoint](line)
	if err != nil {
		return at(Modified, "%v", err)
	}
	if cp.LogID != v.rep.LogID {
		return at(Spliced, "checkpoint of log %s in log %s", cp.LogID, v.rep.LogID)
	}
	root := v.tree.Root()
	want := CheckpointText(v.rep.LogID, seq-1, root, v.prev)
	if cp.Size != seq-1 || cp.Head != v.prev.String() || cp.Root != base64.StdEncoding.EncodeToString(root[:]) {
		return at(Modified, "the checkpoint does not match the records before it")
	}
	list := make([]note.Verifier, 0, len(v.keys))
	for _, k := range v.keys {
		list = append(list, k)
	}
	signed, err := note.Open([]byte(cp.Note), note.VerifierList(list...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return at(WrongKey, "the checkpoint has no signature by the expected key")
		}
		return at(BadSignature, "%v", err)
	}
	if signed.Text != want {
		return at(Modified, "the signed checkpoint text does not match the records before it")
	}
	v.rep.Checkpoints++
	v.rep.LastSignedSeq = seq - 1
	v.lastCP = seq
	v.final = cp.Final
	return nil
}

// end checks how the log ends.
func (v *verifier) end(lastFile string) *Damage {
	v.rep.Unsigned = v.rep.LastSeq - v.lastCP
	if v.opts.Head != nil && !v.headSeen {
		return &Damage{Kind: Truncated, Segment: lastFile, Seq: v.rep.LastSeq,
			Detail: fmt.Sprintf("the log ends at seq %d, before seq %d of the head held elsewhere", v.rep.LastSeq, v.opts.Head.Seq)}
	}
	if v.opts.Open {
		return nil
	}
	if len(v.torns) > 0 {
		t := v.torns[0]
		return &Damage{Kind: Truncated, Segment: t.file, Seq: v.rep.LastSeq,
			Detail: fmt.Sprintf("the segment ends in %d bytes of an incomplete record (a crash not yet recovered)", len(t.data))}
	}
	if !v.final {
		return &Damage{Kind: Truncated, Segment: lastFile, Seq: v.rep.LastSeq,
			Detail: fmt.Sprintf("the log does not end with a final checkpoint: %d records after seq %d are unsigned (a truncated tail, a crash, or a log still being written: use --open)", v.rep.Unsigned, v.lastCP)}
	}
	return nil
}
