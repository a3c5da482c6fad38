package chain

import (
	"errors"
	"fmt"
	"io"

	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
)

// decodeBody decodes line as a record of the body type T.
func decodeBody[T any, PT interface {
	*T
	record.Body
}](line []byte) (PT, error) {
	r, err := record.Decode(trimNewline(line))
	if err != nil {
		return nil, err
	}
	body, ok := r.Body.(PT)
	if !ok {
		return nil, fmt.Errorf("not a %s record", PT(new(T)).Type())
	}
	return body, nil
}

func trimNewline(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		return line[:n-1]
	}
	return line
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

// ErrNotALog: the file does not start with an agenttrace header record.
var ErrNotALog = errors.New("not an agenttrace log")

// ReadTail reads a segment and returns where its chain ends. It fails if a
// complete line is not a record of this log's chain: agenttrace then refuses
// to continue the log (run agenttrace verify to see why).
func ReadTail(path string, number int) (*Tail, error) {
	rd, err := logfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading log segment: %w", err)
	}
	defer rd.Close()
	t := &Tail{Path: path, Number: number}
	line, err := rd.Next()
	switch {
	case err == io.EOF:
		return nil, fmt.Errorf("%s has no complete record: %w", path, ErrNotALog)
	case errors.Is(err, logfile.ErrLineTooLong):
		return nil, fmt.Errorf("%s: %w: %w", path, ErrNotALog, err)
	case err != nil:
		return nil, err
	}
	env, err := record.ParseEnvelope(line)
	if err != nil || env.Type != "header" {
		return nil, fmt.Errorf("%s does not start with an agenttrace header record: %w", path, ErrNotALog)
	}
	hdr, err := decodeBody[record.Header](line)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.LogID, t.Key = hdr.LogID, hdr.Key
	t.Tree = &Tree{}
	expect := uint64(1)
	if c := hdr.Continues; c != nil {
		if t.Tree, err = RestoreTree(c.LastSeq, c.Tree); err != nil {
			return nil, fmt.Errorf("%s: header: %w", path, err)
		}
		expect = c.LastSeq + 1
		if t.LastHash, err = ParseHash(c.LastHash); err != nil {
			return nil, fmt.Errorf("%s: header: %w", path, err)
		}
	}
	for ; err == nil; line, err = rd.Next() {
		env, perr := record.ParseEnvelope(line)
		if perr != nil || env.Seq != expect || Hash(env.Prev) != t.LastHash {
			return nil, fmt.Errorf("%s: the chain is broken at seq %d: run agenttrace verify", path, expect)
		}
		t.LastHash = HashLine(line)
		t.Tree.Append(t.LastHash)
		t.LastSeq = env.Seq
		expect++
		t.Unsigned++
		t.EndedFinal = false
		if env.Type == "checkpoint" {
			cp, err := decodeBody[record.Checkpoint](line)
			if err != nil {
				return nil, fmt.Errorf("%s: seq %d: %w", path, env.Seq, err)
			}
			t.Unsigned = 0
			t.EndedFinal = cp.Final
		}
	}
	if err != io.EOF {
		return nil, err
	}
	t.TornOffset, t.Torn = rd.Offset(), append([]byte(nil), rd.Pending()...)
	return t, nil
}
