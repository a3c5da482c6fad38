package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Envelope is the prefix every record starts with, in this order:
// {"v":1,"seq":N,"prev":"<64 hex>",... and later ,"type":"<type>".
type Envelope struct {
	Seq  uint64
	Prev Hash
	Type string
}

var (
	errNoPrefix = errors.New(`line does not start with {"v":1,"seq":N,"prev":"<hash>"`)
	errNoType   = errors.New(`line has no "type"`)
)

// ParseEnvelope reads seq, prev and type from a line without decoding the
// whole record. It relies on the fixed field order of the encoder; "type"
// is found as the first `,"type":"` because inside a JSON string every
// quote is escaped, so that byte sequence cannot occur in an earlier value.
func ParseEnvelope(line []byte) (Envelope, error) {
	var env Envelope
	rest, ok := bytes.CutPrefix(line, []byte(`{"v":1,"seq":`))
	if !ok {
		return env, errNoPrefix
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	seq, err := strconv.ParseUint(string(rest[:i]), 10, 64)
	if err != nil {
		return env, errNoPrefix
	}
	env.Seq = seq
	rest, ok = bytes.CutPrefix(rest[i:], []byte(`,"prev":"`))
	if !ok || len(rest) < 65 || rest[64] != '"' {
		return env, errNoPrefix
	}
	if _, err := hexDecode(env.Prev[:], rest[:64]); err != nil {
		return env, errNoPrefix
	}
	j := bytes.Index(rest, []byte(`,"type":"`))
	if j < 0 {
		return env, errNoType
	}
	t := rest[j+len(`,"type":"`):]
	k := bytes.IndexByte(t, '"')
	if k < 0 {
		return env, errNoType
	}
	env.Type = string(t[:k])
	return env, nil
}

func hexDecode(dst, src []byte) (int, error) {
	for i := 0; i < len(dst); i++ {
		hi, ok1 := unhex(src[2*i])
		lo, ok2 := unhex(src[2*i+1])
		if !ok1 || !ok2 {
			return i, errNoPrefix
		}
		dst[i] = hi<<4 | lo
	}
	return len(dst), nil
}

// unhex accepts lowercase only: the encoder writes lowercase, so an
// uppercase digit is a modification.
func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// HeaderBody is the "header" object of a segment's first record.
type HeaderBody struct {
	Schema            int        `json:"schema"`
	AgenttraceVersion string     `json:"agenttrace_version"`
	LogID             string     `json:"log_id"`
	Segment           int        `json:"segment"`
	Key               string     `json:"key"`
	Continues         *Continues `json:"continues,omitempty"`
}

// Continues links a segment to the one before it.
type Continues struct {
	SegmentFile string   `json:"segment_file"`
	LastSeq     uint64   `json:"last_seq"`
	LastHash    string   `json:"last_hash"`
	Tree        []string `json:"tree"`
}

// CheckpointBody is the "checkpoint" object.
type CheckpointBody struct {
	LogID string `json:"log_id"`
	Size  uint64 `json:"size"`
	Head  string `json:"head"`
	Root  string `json:"root"`
	Final bool   `json:"final,omitempty"`
	Note  string `json:"note"`
}

// RecoveryBody is the "recovery" object: how the previous segment ended.
type RecoveryBody struct {
	SegmentFile string `json:"segment_file"`
	AfterSeq    uint64 `json:"after_seq"`
	Unsigned    uint64 `json:"unsigned_records"` // records after the last checkpoint
	TornOffset  int64  `json:"torn_offset,omitempty"`
	TornBytes   int64  `json:"torn_bytes"`
	TornSHA256  string `json:"torn_sha256,omitempty"`
}

// decodeMember decodes the object named member of a record line.
func decodeMember[T any](line []byte, member string) (*T, error) {
	var r map[string]json.RawMessage
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, fmt.Errorf("not a %s record: %w", member, err)
	}
	raw, ok := r[member]
	if !ok {
		return nil, fmt.Errorf("not a %s record: no %q object", member, member)
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("%s record: %w", member, err)
	}
	return v, nil
}

// DecodeHeader decodes the header object of a line.
func DecodeHeader(line []byte) (*HeaderBody, error) { return decodeMember[HeaderBody](line, "header") }

// DecodeCheckpoint decodes the checkpoint object of a line.
func DecodeCheckpoint(line []byte) (*CheckpointBody, error) {
	return decodeMember[CheckpointBody](line, "checkpoint")
}

// DecodeRecovery decodes the recovery object of a line.
func DecodeRecovery(line []byte) (*RecoveryBody, error) {
	return decodeMember[RecoveryBody](line, "recovery")
}

// Tail is the state of a log at the end of its last segment: what a writer
// needs to continue the chain.
type Tail struct {
	Path       string
	Number     int
	LogID      string
	Key        string
	LastSeq    uint64
	LastHash   Hash
	Tree       *Tree
	EndedFinal bool   // the last record is a final checkpoint
	Unsigned   uint64 // records after the last checkpoint
	TornOffset int64  // offset of bytes after the last newline
	Torn       []byte // those bytes (a record cut by a crash)
}

// ReadTail reads a segment and returns where its chain ends. It fails if a
// complete line is not a record of this log's chain: agenttrace then refuses
// to continue the log (run agenttrace verify to see why).
func ReadTail(path string, number int) (*Tail, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading log segment: %w", err)
	}
	t := &Tail{Path: path, Number: number}
	end := bytes.LastIndexByte(data, '\n') + 1
	t.TornOffset, t.Torn = int64(end), data[end:]
	lines := data[:end]
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s has no complete record: not an agenttrace log", path)
	}
	first := lines[:bytes.IndexByte(lines, '\n')+1]
	env, err := ParseEnvelope(first)
	if err != nil || env.Type != "header" {
		return nil, fmt.Errorf("%s does not start with an agenttrace header record: not an agenttrace log", path)
	}
	hdr, err := DecodeHeader(first)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.LogID, t.Key = hdr.LogID, hdr.Key
	t.Tree = &Tree{}
	expect := uint64(1)
	if hdr.Continues != nil {
		if t.Tree, err = RestoreTree(hdr.Continues.LastSeq, hdr.Continues.Tree); err != nil {
			return nil, fmt.Errorf("%s: header: %w", path, err)
		}
		expect = hdr.Continues.LastSeq + 1
		if t.LastHash, err = ParseHash(hdr.Continues.LastHash); err != nil {
			return nil, fmt.Errorf("%s: header: %w", path, err)
		}
	}
	for len(lines) > 0 {
		n := bytes.IndexByte(lines, '\n') + 1
		line := lines[:n]
		lines = lines[n:]
		env, err := ParseEnvelope(line)
		if err != nil || env.Seq != expect || env.Prev != t.LastHash {
			return nil, fmt.Errorf("%s: the chain is broken at seq %d: run agenttrace verify", path, expect)
		}
		t.LastHash = HashLine(line)
		t.Tree.Append(t.LastHash)
		t.LastSeq = env.Seq
		expect++
		t.Unsigned++
		t.EndedFinal = false
		if env.Type == "checkpoint" {
			cp, err := DecodeCheckpoint(line)
			if err != nil {
				return nil, fmt.Errorf("%s: seq %d: %w", path, env.Seq, err)
			}
			t.Unsigned = 0
			t.EndedFinal = cp.Final
		}
	}
	return t, nil
}
