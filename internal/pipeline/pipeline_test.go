package pipeline

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/mod/sumdb/note"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/sink"
)

// fakeSource is a kernel side in memory: the records it delivers and the
// counters it reports, as the kernel would keep them.
type fakeSource struct {
	records  [][]byte
	counters [][loader.KindMax]loader.KindCounters // by CPU
	idleAt   int                                   // deliver an idle deadline before this record (housekeeping runs)
	next     int
	idled    bool
	commits  []loader.Progress // every Commit, deep copies
}

func (s *fakeSource) ReadInto(rec *ringbuf.Record) error {
	if s.next == s.idleAt && !s.idled {
		s.idled = true
		time.Sleep(accountInterval) // let housekeeping's clock run
		return os.ErrDeadlineExceeded
	}
	if s.next == len(s.records) {
		return ringbuf.ErrFlushed
	}
	rec.RawSample = s.records[s.next]
	s.next++
	return nil
}

func (s *fakeSource) SetDeadline(time.Time) {}
func (s *fakeSource) Pending() int          { return 0 }
func (s *fakeSource) Used() int             { return 0 }
func (s *fakeSource) Commit(p *loader.Progress) error {
	c := *p
	c.Accounted = append([][loader.KindMax]loader.KindCounters(nil), p.Accounted...)
	s.commits = append(s.commits, c)
	return nil
}
func (s *fakeSource) RingSize() int { return 1 << 20 }

func (s *fakeSource) PerCPUCounters(dst [][loader.KindMax]loader.KindCounters) ([][loader.KindMax]loader.KindCounters, error) {
	return append(dst[:0], s.counters...), nil
}

func testLog(t *testing.T) (*sink.Writer, string, string) {
	log, base, vkey, _ := testLogSigner(t)
	return log, base, vkey
}

func testLogSigner(t *testing.T) (*sink.Writer, string, string, note.Signer) {
	t.Helper()
	skey, vkey, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	base := filepath.Join(t.TempDir(), "audit.jsonl")
	log, err := sink.Open(sink.Options{Base: base, Signer: signer, VerifierKey: vkey,
		Encoder: record.NewEncoder("host", "boot", 0, nil), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return log, base, vkey, signer
}

// decodeAll decodes every record of every segment of the log at base.
func decodeAll(t *testing.T, base string) []*record.Record {
	t.Helper()
	var out []*record.Record
	files, _ := logfile.Segments(base)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			r, err := record.Decode(line)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
	}
	return out
}

// TestAccountingIdentity: every event the kernel matched is a record in the
// log or counted in a gap record, by kind and stage, exactly: records
// delivered, records lost in the kernel (ring buffer full, pairing map full,
// on two CPUs), and a record the decoder cannot read.
func TestAccountingIdentity(t *testing.T) {
	const opens = 100
	src := &fakeSource{idleAt: 50}
	for range opens {
		src.records = append(src.records, rawOpenRecord("/etc/hostname"))
	}
	// A record too short for its kind: an open header with no open body.
	src.records = append(src.records, rawOpenRecord("/x")[:decoderHeaderSize()])
	src.counters = make([][loader.KindMax]loader.KindCounters, 2)
	src.counters[0][loader.KindOpen] = loader.KindCounters{Matched: 60 + 1 + 7, LostRingbuf: 7}
	src.counters[1][loader.KindOpen] = loader.KindCounters{Matched: 40 + 3, LostInflight: 3}
	src.counters[1][loader.KindExec] = loader.KindCounters{Matched: 2, LostRingbuf: 2}

	log, base, vkey := testLog(t)
	p := New(src, log, Options{})
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}
	stats := p.Stats()
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}

	want := map[string]uint64{"open": 7 + 3 + 1, "exec": 2}
	for kind := range loader.KindMax {
		name := record.KindName(kind)
		if stats.Matched[kind] != stats.Written[kind]+stats.Lost(kind) {
			t.Errorf("%s: matched %d != written %d + lost %d", name, stats.Matched[kind], stats.Written[kind], stats.Lost(kind))
		}
		if kind != record.KindUnknown && stats.Lost(kind) != want[name] {
			t.Errorf("%s: lost %d, want %d", name, stats.Lost(kind), want[name])
		}
	}
	if stats.Written[loader.KindOpen] != opens {
		t.Errorf("open records written %d, want %d", stats.Written[loader.KindOpen], opens)
	}

	// The log says the same, in gap records that name stage, reason and CPU.
	files, numbers := logfile.Segments(base)
	rep, err := chain.Verify(files, numbers, chain.VerifyOptions{PublicKeys: []string{vkey}})
	if err != nil || rep.Damage != nil {
		t.Fatalf("verify: %v %v", err, rep.Damage)
	}
	type where struct {
		stage, reason string
		cpu           int
	}
	gaps := map[where]record.Counts{}
	written := 0
	data, _ := os.ReadFile(base)
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		r, err := record.Decode(line)
		if err != nil {
			t.Fatal(err)
		}
		switch b := r.Body.(type) {
		case *record.Gap:
			gaps[where{b.Stage, b.Reason, b.CPU}] = b.Lost
		case *record.Open:
			written++
		}
	}
	wantGaps := map[where]record.Counts{
		{"kernel", "ring buffer full", 0}:         {"open": 7},
		{"kernel", "syscall pairing map full", 1}: {"open": 3},
		{"kernel", "ring buffer full", 1}:         {"exec": 2},
		{"decode", "malformed record", -1}:        {"open": 1},
	}
	if len(gaps) != len(wantGaps) {
		t.Errorf("gap records %v, want %v", gaps, wantGaps)
	}
	for w, lost := range wantGaps {
		if got := gaps[w]; len(got) != len(lost) || got[firstKey(lost)] != lost[firstKey(lost)] {
			t.Errorf("gap %+v: lost %v, want %v", w, got, lost)
		}
	}
	if written != opens {
		t.Errorf("%d open records in the log, want %d", written, opens)
	}
}

func firstKey(c record.Counts) string {
	for k := range c {
		return k
	}
	return ""
}

// TestUnexplainedLoss: events the kernel matched that are neither records
// nor in its loss counters are still counted, as an accounting gap.
func TestUnexplainedLoss(t *testing.T) {
	src := &fakeSource{idleAt: -1, records: [][]byte{rawOpenRecord("/a")}}
	src.counters = make([][loader.KindMax]loader.KindCounters, 1)
	src.counters[0][loader.KindOpen] = loader.KindCounters{Matched: 5}
	log, _, _ := testLog(t)
	p := New(src, log, Options{})
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}
	log.Close()
	stats := p.Stats()
	if stats.Written[loader.KindOpen] != 1 || stats.Lost(loader.KindOpen) != 4 {
		t.Fatalf("written %d lost %d, want 1 and 4 (counted by the accounting stage)", stats.Written[loader.KindOpen], stats.Lost(loader.KindOpen))
	}
}

func decoderHeaderSize() int { return int(unsafe.Sizeof(loader.EventHeader{})) }
