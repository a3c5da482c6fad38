package pipeline

import (
	"testing"
	"unsafe"

	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/sink"
)

// openWithKseq is an open record of CPU 1 with the given kseq.
func openWithKseq(kseq uint64) []byte {
	raw := rawOpenRecord("/etc/hostname")
	(*loader.EventHeader)(unsafe.Pointer(&raw[0])).Kseq = kseq
	return raw
}

// TestResumeSkipsLogTail: a pipeline writes records after its last commit
// and dies (here: its first commit is taken as the last); the ring still
// holds them. The next pipeline, resumed from that commit, recognises them
// in the log's tail, does not write them again, continues the counts, and
// the accounting identity holds over both.
func TestResumeSkipsLogTail(t *testing.T) {
	log, base, _, signer := testLogSigner(t)
	src := &fakeSource{idleAt: -1}
	for k := uint64(1); k <= 10; k++ {
		src.records = append(src.records, openWithKseq(k))
	}
	src.counters = make([][loader.KindMax]loader.KindCounters, 2)
	src.counters[0][loader.KindOpen] = loader.KindCounters{Matched: 3, LostRingbuf: 3}
	src.counters[1][loader.KindOpen] = loader.KindCounters{Matched: 10}
	p := New(src, log, Options{})
	p.HandOver()
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}
	if len(src.commits) < 2 {
		t.Fatalf("%d commits, want one at the start and one at the end", len(src.commits))
	}
	custody := src.commits[0] // the one before any record
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}

	r, err := ResumeFrom(base, log.LogID(), &custody)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Skip) != 10 || !r.Skip[EventID{CPU: 1, Kind: loader.KindOpen, Kseq: 7}] {
		t.Fatalf("skip %v: want the 10 opens of CPU 1", r.Skip)
	}
	if r.Written[loader.KindOpen] != 10 || r.Gapped[loader.KindOpen] != 3 || r.Accounted[0][loader.KindOpen].LostRingbuf != 3 {
		t.Fatalf("resumed written %d, gapped %d, accounted %+v; want 10, 3, 3 ring-full on CPU 0",
			r.Written[loader.KindOpen], r.Gapped[loader.KindOpen], r.Accounted[0][loader.KindOpen])
	}
	if _, err := ResumeFrom(base, "another-log", &custody); err == nil {
		t.Fatal("resuming into another log: no error")
	}

	// The ring still has 1..10 (never committed) and 11..15 are new.
	log2, err := sink.Open(sink.Options{Base: base, Signer: signer, Encoder: record.NewEncoder("host", "boot", 0, nil), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	src2 := &fakeSource{idleAt: -1, counters: src.counters}
	for k := uint64(1); k <= 15; k++ {
		src2.records = append(src2.records, openWithKseq(k))
	}
	src2.counters[1][loader.KindOpen].Matched = 15
	p2 := New(src2, log2, Options{Resume: r})
	if err := p2.Run(); err != nil {
		t.Fatal(err)
	}
	stats := p2.Stats()
	if stats.Reread != 10 || stats.Written[loader.KindOpen] != 5 || stats.Lost(loader.KindOpen) != 0 {
		t.Fatalf("reread %d, written %d, lost %d: want 10, 5, 0", stats.Reread, stats.Written[loader.KindOpen], stats.Lost(loader.KindOpen))
	}
	if err := log2.Close(); err != nil {
		t.Fatal(err)
	}
	opens, gapped := 0, uint64(0)
	for _, rec := range decodeAll(t, base) {
		switch b := rec.Body.(type) {
		case *record.Open:
			opens++
		case *record.Gap:
			gapped += b.Lost["open"]
		}
	}
	if opens != 15 || gapped != 3 {
		t.Fatalf("the log has %d opens and %d counted in gaps; the kernel matched 15 + 3 lost", opens, gapped)
	}
}
