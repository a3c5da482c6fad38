package chain

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/note"
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
	Recovered     []string // torn tails acknowledged by a recovery record
	Damage        *Damage  // nil: intact
}

type verifier struct {
	opts     VerifyOptions
	rep      *Report
	expect   uint64
	prev     Hash
	tree     Tree
	keys     map[string]note.Verifier
	given    map[string]bool // opts.PublicKeys
	lastCP   uint64
	final    bool
	torn     *tornTail
	headSeen bool
	invalid  int // index of the current segment's first line that is not JSON, or -1
}

type tornTail struct {
	file   string
	offset int64
	data   []byte
}

// Verify checks the segments of one log, given in order (segment 1 first).
// The error is for I/O only; damage is in Report.Damage.
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
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		if d := v.segment(path, i+1, data); d != nil {
			v.rep.Damage = d
			return v.rep, nil
		}
	}
	v.rep.Damage = v.end(segments[len(segments)-1])
	return v.rep, nil
}

func (v *verifier) segment(path string, number int, data []byte) *Damage {
	end := bytes.LastIndexByte(data, '\n') + 1
	lines := splitLines(data[:end])
	if len(lines) == 0 {
		return &Damage{Kind: Truncated, Segment: path, Detail: "the segment has no complete record"}
	}
	if d := v.header(path, number, lines[0]); d != nil {
		return d
	}
	v.invalid = firstInvalidJSON(lines)
	for i, line := range lines {
		if d := v.line(path, i+1, line, lines[i+1:]); d != nil {
			return d
		}
		if i == 0 && v.torn != nil {
			// The line after a continuing header must acknowledge the torn tail.
			if d := v.recovered(path, lines[1:]); d != nil {
				return d
			}
		}
	}
	if end < len(data) {
		v.torn = &tornTail{file: path, offset: int64(end), data: data[end:]}
	}
	return nil
}

// firstInvalidJSON returns the index of the first line that is not valid
// JSON, or -1. JSON validation is most of the cost of verifying, so it runs
// on every CPU while hashing stays sequential.
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
				if !json.Valid(lines[i]) {
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

func splitLines(b []byte) [][]byte {
	lines := make([][]byte, 0, bytes.Count(b, []byte{'\n'}))
	for len(b) > 0 {
		n := bytes.IndexByte(b, '\n') + 1
		lines = append(lines, b[:n])
		b = b[n:]
	}
	return lines
}

func (v *verifier) header(path string, number int, line []byte) *Damage {
	at := func(kind, format string, args ...any) *Damage {
		return &Damage{Kind: kind, Segment: path, Line: 1, Seq: v.expect, Detail: fmt.Sprintf(format, args...)}
	}
	env, err := ParseEnvelope(line)
	if err != nil || env.Type != "header" {
		if number == 1 {
			return at(Modified, "the first record is not a header")
		}
		return at(MissingSegment, "the segment does not start with a header: a segment before it may be missing")
	}
	hdr, err := DecodeHeader(line)
	if err != nil {
		return at(Modified, "%v", err)
	}
	if hdr.Segment != number {
		return at(MissingSegment, "the header says segment %d, the file is segment %d", hdr.Segment, number)
	}
	if number == 1 {
		if hdr.Continues != nil {
			return at(MissingSegment, "segment 1 continues %s: the log's earlier segments are missing", hdr.Continues.SegmentFile)
		}
		v.rep.LogID = hdr.LogID
	} else {
		if hdr.LogID != v.rep.LogID {
			return at(Spliced, "log id %s, the log's is %s", hdr.LogID, v.rep.LogID)
		}
		c := hdr.Continues
		if c == nil || c.LastSeq != v.expect-1 || c.LastHash != v.prev.String() {
			return at(MissingSegment, "the header does not continue the end of the previous segment (seq %d)", v.expect-1)
		}
		if fmt.Sprint(c.Tree) != fmt.Sprint(v.tree.State()) {
			return at(Modified, "the header's tree state differs from the tree of the records before it")
		}
	}
	if len(v.given) > 0 && !v.given[hdr.Key] {
		return at(WrongKey, "the segment is signed by %s, expected %s", hdr.Key, strings.Join(v.opts.PublicKeys, " or "))
	}
	if _, ok := v.keys[hdr.Key]; !ok {
		nv, err := note.NewVerifier(hdr.Key)
		if err != nil {
			return at(Modified, "header key: %v", err)
		}
		v.keys[hdr.Key] = nv
		v.rep.Keys = append(v.rep.Keys, hdr.Key)
	} else if len(v.rep.Keys) == 0 || v.rep.Keys[len(v.rep.Keys)-1] != hdr.Key {
		v.rep.Keys = append(v.rep.Keys, hdr.Key)
	}
	return nil
}

// recovered checks that the record after a header acknowledges the torn
// tail left at the end of the previous segment.
func (v *verifier) recovered(path string, rest [][]byte) *Damage {
	t := v.torn
	v.torn = nil
	bad := &Damage{Kind: Truncated, Segment: t.file, Detail: fmt.Sprintf("%d bytes after the last complete record are not acknowledged by a recovery record in %s", len(t.data), filepath.Base(path))}
	if len(rest) == 0 {
		return bad
	}
	env, err := ParseEnvelope(rest[0])
	if err != nil || env.Type != "recovery" {
		return bad
	}
	rec, err := DecodeRecovery(rest[0])
	if err != nil || rec.SegmentFile != filepath.Base(t.file) || rec.TornOffset != t.offset ||
		rec.TornBytes != int64(len(t.data)) || rec.TornSHA256 != HashLine(t.data).String() {
		bad.Detail = "the recovery record does not describe the torn tail as found"
		return bad
	}
	v.rep.Recovered = append(v.rep.Recovered, fmt.Sprintf("%s: %d torn bytes at offset %d after seq %d", t.file, len(t.data), t.offset, rec.AfterSeq))
	return nil
}

func (v *verifier) line(path string, n int, line []byte, rest [][]byte) *Damage {
	at := func(kind string, seq uint64, lineNo int, format string, args ...any) *Damage {
		return &Damage{Kind: kind, Segment: path, Line: lineNo, Seq: seq, Detail: fmt.Sprintf(format, args...)}
	}
	// broken names the first failure, unless the records from here on
	// belong to another log: then the log was spliced here.
	broken := func(d *Damage) *Damage {
		if spliced(append([][]byte{line}, rest...), v.rep.LogID) {
			return at(Spliced, v.expect, n, "the records from here on belong to another log")
		}
		return d
	}
	if n-1 == v.invalid {
		return broken(at(Modified, v.expect, n, "the line is not valid JSON"))
	}
	env, err := ParseEnvelope(line)
	if err != nil {
		return broken(at(Modified, v.expect, n, "%v", err))
	}
	h := HashLine(line)
	nextLinksHere := len(rest) > 0 && linksTo(rest[0], h)
	switch {
	case env.Seq > v.expect:
		for _, later := range rest {
			if e, err := ParseEnvelope(later); err == nil && e.Seq == v.expect {
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
	case env.Prev != v.prev:
		// Either the previous line was changed, or this line's prev was.
		// If the next line still links to this one, this one is intact.
		if nextLinksHere || len(rest) == 0 {
			return broken(at(Modified, v.expect-1, n-1, "the record does not match the hash that seq %d holds for it", v.expect))
		}
		return broken(at(Modified, v.expect, n, "the record's prev does not match the record before it"))
	case env.Type == "header" && n != 1:
		return broken(at(Inserted, env.Seq, n, "a header record in the middle of a segment"))
	}
	if v.opts.Head != nil && env.Seq == v.opts.Head.Seq {
		v.headSeen = true
		if HashLine(line) != v.opts.Head.Hash {
			return at(Modified, env.Seq, n, "the record does not match the head held elsewhere (%s)", v.opts.Head.Hash)
		}
	}
	if env.Type == "checkpoint" {
		if d := v.checkpoint(path, n, line, env.Seq); d != nil {
			return d
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

func linksTo(line []byte, h Hash) bool {
	env, err := ParseEnvelope(line)
	return err == nil && env.Prev == h
}

// spliced reports whether the rest of a segment holds a header or
// checkpoint of another log.
func spliced(rest [][]byte, logID string) bool {
	for _, line := range rest {
		env, err := ParseEnvelope(line)
		if err != nil {
			continue
		}
		switch env.Type {
		case "checkpoint":
			if cp, err := DecodeCheckpoint(line); err == nil && cp.LogID != logID {
				return true
			}
		case "header":
			if h, err := DecodeHeader(line); err == nil && h.LogID != logID {
				return true
			}
		}
	}
	return false
}

func (v *verifier) checkpoint(path string, n int, line []byte, seq uint64) *Damage {
	at := func(kind, format string, args ...any) *Damage {
		return &Damage{Kind: kind, Segment: path, Line: n, Seq: seq, Detail: fmt.Sprintf(format, args...)}
	}
	cp, err := DecodeCheckpoint(line)
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
	if v.torn != nil {
		return &Damage{Kind: Truncated, Segment: v.torn.file, Seq: v.rep.LastSeq,
			Detail: fmt.Sprintf("the segment ends in %d bytes of an incomplete record (a crash not yet recovered)", len(v.torn.data))}
	}
	if !v.final {
		return &Damage{Kind: Truncated, Segment: lastFile, Seq: v.rep.LastSeq,
			Detail: fmt.Sprintf("the log does not end with a final checkpoint: %d records after seq %d are unsigned (a truncated tail, a crash, or a log still being written: use --open)", v.rep.Unsigned, v.lastCP)}
	}
	return nil
}
