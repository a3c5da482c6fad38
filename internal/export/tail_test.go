package export

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/sink"
)

// openLog opens (creates or continues) the log at base with the sink, as
// agenttrace writes it.
func openLog(t testing.TB, base string, opts sink.Options) (*sink.Writer, *record.Encoder) {
	t.Helper()
	skey, vkey, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	enc := record.NewEncoder("testhost", "00000000-0000-0000-0000-000000000000", 0, nil)
	opts.Base, opts.Signer, opts.VerifierKey, opts.Encoder, opts.Version = base, signer, vkey, enc, "test"
	if opts.CheckpointRecords == 0 {
		opts.CheckpointRecords = 10
	}
	w, err := sink.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return w, enc
}

// appendOpens appends n open records.
func appendOpens(t testing.TB, w *sink.Writer, enc *record.Encoder, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		ev := record.Event{
			Kind: record.KindOpen, Ktime: uint64(1000 + i), Kseq: uint64(i),
			Proc: record.Proc{Pid: 4321, Tid: 4321, Ppid: 4320, Comm: "python3", CgroupID: 1,
				ExecID: record.ExecID{Pid: 4321, Start: 999, Seq: 5}, ParentExecID: record.ExecID{Pid: 4320, Start: 998, Seq: 4}},
			Open: record.Open{Syscall: "openat", Dirfd: -100, Path: "/work/file-" + strconv.Itoa(i), Ret: 3},
		}
		if err := w.AppendEvent(&ev); err != nil {
			t.Fatal(err)
		}
	}
}

// writeLog writes a complete log of n records (plus header and checkpoints).
func writeLog(t testing.TB, base string, n int, opts sink.Options) {
	t.Helper()
	w, enc := openLog(t, base, opts)
	appendOpens(t, w, enc, n)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// logLines returns every complete line of every segment, newline excluded,
// with the segment and offset each starts at.
func logLines(t testing.TB, base string) (lines [][]byte, at []Position) {
	t.Helper()
	files, numbers := logfile.Segments(base)
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		off := 0
		for {
			n := bytes.IndexByte(data[off:], '\n')
			if n < 0 {
				break
			}
			lines = append(lines, data[off:off+n])
			at = append(at, Position{Segment: numbers[i], Offset: int64(off)})
			off += n + 1
		}
	}
	return lines, at
}

// withTime sets r.Time as the tailer does: the envelope's "time", within
// the line (nil if the line has none).
func withTime(r Record) Record {
	_, rest, ok := bytes.Cut(r.Line, []byte(`,"time":"`))
	if i := bytes.IndexByte(rest, '"'); ok && i >= 0 {
		r.Time = rest[:i]
	}
	return r
}

// tailAll reads every record the tailer has now.
func tailAll(t testing.TB, tl *Tailer) []Record {
	t.Helper()
	var out []Record
	for {
		var r Record
		ok, err := tl.TryNext(&r)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, r)
	}
}

func checkRecords(t testing.TB, got []Record, lines [][]byte, at []Position, logID string) {
	t.Helper()
	if len(got) != len(lines) {
		t.Fatalf("tailer read %d records, the log has %d lines", len(got), len(lines))
	}
	for i, r := range got {
		env, err := record.ParseEnvelope(lines[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.Time, env.Time) || len(r.Time) == 0 || !bytes.Contains(r.Line, []byte(`,"time":"`+string(r.Time)+`",`)) {
			t.Fatalf("record %d: time %q, the envelope's is %q", i, r.Time, env.Time)
		}
		if !bytes.Equal(r.Line, lines[i]) || r.Seq != env.Seq || r.Type != env.Type || r.Segment != at[i].Segment ||
			r.Offset != at[i].Offset || r.LogID != logID || r.Host != "testhost" {
			t.Fatalf("record %d: got seq %d type %s segment %d offset %d log %s host %s line %q\nwant seq %d type %s segment %d offset %d log %s line %q",
				i, r.Seq, r.Type, r.Segment, r.Offset, r.LogID, r.Host, r.Line, env.Seq, env.Type, at[i].Segment, at[i].Offset, logID, lines[i])
		}
	}
}

func TestTailerAcrossRotation(t *testing.T) {
	base := filepath.Join(t.TempDir(), "audit.jsonl")
	writeLog(t, base, 300, sink.Options{RotateSize: 4000})
	files, _ := logfile.Segments(base)
	if len(files) < 5 {
		t.Fatalf("want at least 5 segments, got %d", len(files))
	}
	lines, at := logLines(t, base)
	logID, _ := firstLogID(base)

	tl := NewTailer(base, "", Position{}, time.Millisecond, func(s Skip) { t.Errorf("unexpected skip %+v", s) })
	got := tailAll(t, tl)
	checkRecords(t, got, lines, at, logID)
	for i, r := range got {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
	}
	end := tl.Position()
	if want := (Position{Segment: at[len(at)-1].Segment, Offset: at[len(at)-1].Offset + int64(len(lines[len(lines)-1])) + 1, Seq: uint64(len(lines))}); end != want {
		t.Fatalf("end position %+v, want %+v", end, want)
	}

	// Resuming from any record's position reads exactly the rest.
	for _, i := range []int{1, 37, len(lines) / 2, len(lines) - 1} {
		tl := NewTailer(base, logID, Position{Segment: at[i].Segment, Offset: at[i].Offset, Seq: uint64(i)}, time.Millisecond, nil)
		checkRecords(t, tailAll(t, tl), lines[i:], at[i:], logID)
	}
	// A position of another log is refused.
	tl = NewTailer(base, "0123456789abcdef0123456789abcdef", Position{}, time.Millisecond, nil)
	if _, err := tl.TryNext(&Record{}); err == nil || !bytes.Contains([]byte(err.Error()), []byte("belongs to log "+logID)) {
		t.Fatalf("tailing with another log's id: %v", err)
	}
}

// TestTailerLive tails a log while the sink writes and rotates it.
func TestTailerLive(t *testing.T) {
	base := filepath.Join(t.TempDir(), "audit.jsonl")
	w, enc := openLog(t, base, sink.Options{RotateSize: 3000})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 40; i++ {
			appendOpens(t, w, enc, 25)
			w.Flush()
			time.Sleep(2 * time.Millisecond)
		}
		w.Close()
	}()
	tl := NewTailer(base, "", Position{}, time.Millisecond, func(s Skip) { t.Errorf("unexpected skip %+v", s) })
	var got []Record
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		var r Record
		if err := tl.Next(ctx, &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
		if r.Type == "checkpoint" && bytes.Contains(r.Line, []byte(`"final":true`)) {
			break
		}
	}
	<-done
	lines, at := logLines(t, base)
	checkRecords(t, got, lines, at, got[0].LogID)
}

// TestTailerPartialLine: a line without its newline at the end of the
// newest segment is not a record until the newline is written.
func TestTailerPartialLine(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full.jsonl")
	writeLog(t, full, 10, sink.Options{})
	lines, at := logLines(t, full)

	base := filepath.Join(dir, "audit.jsonl")
	var data []byte
	for _, l := range lines[:6] {
		data = append(append(data, l...), '\n')
	}
	half := len(lines[6]) / 2
	if err := os.WriteFile(base, append(data, lines[6][:half]...), 0o600); err != nil {
		t.Fatal(err)
	}
	logID, _ := firstLogID(full)
	tl := NewTailer(base, "", Position{}, time.Millisecond, func(s Skip) { t.Errorf("unexpected skip %+v", s) })
	checkRecords(t, tailAll(t, tl), lines[:6], at[:6], logID)
	if pos := tl.Position(); pos != (Position{Segment: 1, Offset: int64(len(data)), Seq: 6}) {
		t.Fatalf("position after 6 records %+v", pos)
	}

	f, err := os.OpenFile(base, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(lines[6][half:])
	if got := tailAll(t, tl); len(got) != 0 {
		t.Fatalf("a line without newline was read: %q", got[0].Line)
	}
	f.Write([]byte("\n"))
	f.Close()
	checkRecords(t, tailAll(t, tl), lines[6:7], at[6:7], logID)
}

// TestTailerTornTail: a crash cut the last line of a segment; the next run
// continued the log in a new segment. The torn bytes are skipped and
// reported, exactly where the recovery record says they are.
func TestTailerTornTail(t *testing.T) {
	base := filepath.Join(t.TempDir(), "audit.jsonl")
	writeLog(t, base, 25, sink.Options{CheckpointRecords: 1000})
	data, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	// Cut inside the 20th line: lines 1-19 stay whole.
	off := 0
	for i := 0; i < 19; i++ {
		off += bytes.IndexByte(data[off:], '\n') + 1
	}
	cut := off + 30
	if err := os.Truncate(base, int64(cut)); err != nil {
		t.Fatal(err)
	}
	writeLog(t, base, 5, sink.Options{})
	lines, at := logLines(t, base)

	var skips []Skip
	tl := NewTailer(base, "", Position{}, time.Millisecond, func(s Skip) { skips = append(skips, s) })
	got := tailAll(t, tl)
	logID, _ := firstLogID(base)
	checkRecords(t, got, lines, at, logID)
	want := Skip{Segment: 1, Offset: int64(off), Bytes: 30}
	if len(skips) != 1 || skips[0].Segment != want.Segment || skips[0].Offset != want.Offset || skips[0].Bytes != want.Bytes {
		t.Fatalf("skips %+v, want one at segment 1 offset %d of 30 bytes", skips, off)
	}
	var rec *Record
	for i := range got {
		if got[i].Type == "recovery" {
			rec = &got[i]
		}
	}
	decoded, err := record.Decode(rec.Line)
	if err != nil {
		t.Fatal(err)
	}
	body, ok := decoded.Body.(*record.Recovery)
	if !ok {
		t.Fatalf("the recovery record decodes to a %T", decoded.Body)
	}
	if body.TornOffset != want.Offset || body.TornBytes != want.Bytes {
		t.Fatalf("recovery record says torn at %d, %d bytes; the tailer skipped %+v", body.TornOffset, body.TornBytes, skips[0])
	}
	for i, r := range got {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d: seq must go on across a torn tail", i, r.Seq)
		}
	}
}

func TestCursorSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := CursorPath(dir, "siem")
	if c, err := LoadCursor(path); c != nil || err != nil {
		t.Fatalf("no cursor: %+v %v", c, err)
	}
	want := Cursor{Log: "/var/log/agenttrace/audit.jsonl", LogID: "c265aca7ea38ba20c7474c6e772482e0", Position: Position{Segment: 3, Offset: 1048213, Seq: 212045}, Final: true}
	for i := 0; i < 2; i++ { // create, then replace
		if err := want.Save(path); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := os.ReadFile(path)
	if string(data) != `{"log":"/var/log/agenttrace/audit.jsonl","log_id":"c265aca7ea38ba20c7474c6e772482e0","segment":3,"offset":1048213,"seq":212045,"final":true}`+"\n" {
		t.Fatalf("cursor file %s", data)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("cursor mode %v", info.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("files left beside the cursor: %v", entries)
	}
	got, err := LoadCursor(path)
	if err != nil || *got != want {
		t.Fatalf("loaded %+v, %v; want %+v", got, err, want)
	}
	os.WriteFile(path, []byte(`{"log_id":`), 0o600)
	if _, err := LoadCursor(path); err == nil || !strings.Contains(err.Error(), "remove it to export the log from its start") {
		t.Fatalf("a torn cursor: %v", err)
	}
}
