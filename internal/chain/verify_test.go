package chain_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/sink"
)

type key struct {
	signer note.Signer
	vkey   string
}

func newKey(t testing.TB) key {
	skey, vkey, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return key{signer, vkey}
}

// openEvent is the kernel's i-th open of /work/file-<i>.
func openEvent(i int) *record.Event {
	return &record.Event{
		Kind: record.KindOpen, Ktime: uint64(1000 + i), CPU: 1, Kseq: uint64(i),
		Proc: record.Proc{Pid: 4321, Tid: 4321, Ppid: 4320, Comm: "python3", CgroupID: 1,
			ExecID: record.ExecID{Pid: 4321, Start: 999, Seq: 5}, ParentExecID: record.ExecID{Pid: 4320, Start: 998, Seq: 4}},
		Open: record.Open{Syscall: "openat", Dirfd: -100, Path: "/work/file-" + strconv.Itoa(i), Ret: 3},
	}
}

// writeLog appends n open records to the log at base with a checkpoint
// every 10 records, and closes it (final checkpoint).
func writeLog(t testing.TB, base string, k key, n int, opts sink.Options) {
	t.Helper()
	enc := record.NewEncoder("testhost", "00000000-0000-0000-0000-000000000000", 0, nil)
	opts.Base, opts.Signer, opts.VerifierKey, opts.Encoder, opts.Version = base, k.signer, k.vkey, enc, "test"
	if opts.CheckpointRecords == 0 {
		opts.CheckpointRecords = 10
	}
	w, err := sink.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := w.AppendEvent(openEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(data, []byte("\n"))[:bytes.Count(data, []byte("\n"))]
}

func writeLines(t testing.TB, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func verify(t testing.TB, base string, opts chain.VerifyOptions) *chain.Report {
	t.Helper()
	files, numbers := logfile.Segments(base)
	rep, err := chain.Verify(files, numbers, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func lineType(t testing.TB, line []byte) string {
	env, err := record.ParseEnvelope(line)
	if err != nil {
		t.Fatal(err)
	}
	return env.Type
}

// The log of 45 records: line 1 header, a checkpoint every 10 lines (lines
// 11, 22, 33, 44), the last record on line 50 and the final checkpoint on
// line 51.
const records = 45

func TestIntactLogVerifies(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "audit.jsonl")
	k := newKey(t)
	writeLog(t, base, k, records, sink.Options{})
	rep := verify(t, base, chain.VerifyOptions{PublicKeys: []string{k.vkey}})
	if rep.Damage != nil {
		t.Fatalf("intact log: %v", rep.Damage)
	}
	if rep.Records != 51 || rep.Checkpoints != 5 || rep.LastSignedSeq != 50 || rep.Unsigned != 0 {
		t.Fatalf("report %+v", rep)
	}
	lines := readLines(t, base)
	for _, i := range []int{11, 22, 33, 44, 51} {
		if got := lineType(t, lines[i-1]); got != "checkpoint" {
			t.Fatalf("line %d is %s, want checkpoint", i, got)
		}
	}
}

// positions: first record, middle, just before a checkpoint, just after a
// checkpoint, last record.
var positions = []struct {
	name string
	line int // 1-based line of the record tampered with
}{
	{"first record", 2},
	{"middle", 17},
	{"before checkpoint", 21},
	{"after checkpoint", 23},
	{"last record", 50},
}

func TestTamperMatrix(t *testing.T) {
	k := newKey(t)
	pristine := filepath.Join(t.TempDir(), "audit.jsonl")
	writeLog(t, pristine, k, records, sink.Options{})
	orig := readLines(t, pristine)

	type tamper struct {
		name  string
		apply func(lines [][]byte, i int) [][]byte // i: 0-based index of the line
		kind  string
		seq   func(i int) uint64 // seq named in the damage
	}
	cases := []tamper{
		{name: "flip one byte", kind: chain.Modified,
			apply: func(lines [][]byte, i int) [][]byte {
				l := bytes.Clone(lines[i])
				j := bytes.Index(l, []byte("/work/file-")) + 1
				l[j] ^= 0x01 // 'w' -> 'v'
				lines[i] = l
				return lines
			},
			seq: func(i int) uint64 { return uint64(i + 1) }},
		{name: "delete a line", kind: chain.Deleted,
			apply: func(lines [][]byte, i int) [][]byte { return append(lines[:i:i], lines[i+1:]...) },
			seq:   func(i int) uint64 { return uint64(i + 1) }},
		{name: "insert a forged line", kind: chain.Inserted,
			apply: func(lines [][]byte, i int) [][]byte {
				// A careful forger: the next seq, linked to the line before.
				prev := chain.HashLine(lines[i-1])
				forged := fmt.Sprintf(`{"v":1,"seq":%d,"prev":"%s","time":"2026-01-01T00:00:00.000000000Z","ktime":1,"host":"testhost","boot_id":"x","type":"open","open":{"path":"/forged","ret":3}}`+"\n", i+1, prev)
				out := append(append(lines[:i:i], []byte(forged)), lines[i:]...)
				return out
			},
			seq: func(i int) uint64 { return uint64(i + 1) }},
		{name: "swap two lines", kind: chain.Reordered,
			apply: func(lines [][]byte, i int) [][]byte {
				lines[i], lines[i+1] = lines[i+1], lines[i]
				return lines
			},
			seq: func(i int) uint64 { return uint64(i + 2) }},
	}
	for _, tc := range cases {
		for _, pos := range positions {
			t.Run(tc.name+"/"+pos.name, func(t *testing.T) {
				base := filepath.Join(t.TempDir(), "audit.jsonl")
				lines := make([][]byte, len(orig))
				copy(lines, orig)
				writeLines(t, base, tc.apply(lines, pos.line-1))
				rep := verify(t, base, chain.VerifyOptions{PublicKeys: []string{k.vkey}})
				if rep.Damage == nil {
					t.Fatal("tampering not detected")
				}
				if rep.Damage.Kind != tc.kind || rep.Damage.Seq != tc.seq(pos.line-1) {
					t.Fatalf("damage %v, want %s at seq %d", rep.Damage, tc.kind, tc.seq(pos.line-1))
				}
			})
		}
	}

	t.Run("truncate the tail", func(t *testing.T) {
		for _, keep := range []int{50, 47, 45} { // after the last record, mid-way, just after a checkpoint
			base := filepath.Join(t.TempDir(), "audit.jsonl")
			writeLines(t, base, orig[:keep])
			rep := verify(t, base, chain.VerifyOptions{PublicKeys: []string{k.vkey}})
			if rep.Damage == nil || rep.Damage.Kind != chain.Truncated {
				t.Fatalf("keep %d lines: damage %v, want truncated", keep, rep.Damage)
			}
		}
	})

	t.Run("bad signature", func(t *testing.T) {
		base := filepath.Join(t.TempDir(), "audit.jsonl")
		lines := make([][]byte, len(orig))
		copy(lines, orig)
		// The checkpoint on line 22: change a character inside the Ed25519
		// signature, past the key hash that precedes it.
		l := bytes.Clone(lines[21])
		sig := bytes.LastIndex(l, []byte(`— agenttrace `)) + len(`— agenttrace `) + 40
		if l[sig] == 'A' {
			l[sig] = 'B'
		} else {
			l[sig] = 'A'
		}
		lines[21] = l
		writeLines(t, base, lines)
		rep := verify(t, base, chain.VerifyOptions{PublicKeys: []string{k.vkey}})
		if rep.Damage == nil || rep.Damage.Kind != chain.BadSignature || rep.Damage.Line != 22 {
			t.Fatalf("damage %v, want bad signature on line 22", rep.Damage)
		}
	})

	t.Run("re-chain with another key", func(t *testing.T) {
		base := filepath.Join(t.TempDir(), "audit.jsonl")
		writeLog(t, base, newKey(t), records, sink.Options{})
		if rep := verify(t, base, chain.VerifyOptions{}); rep.Damage != nil {
			t.Fatalf("without --pubkey the re-chained log is self-consistent, got %v", rep.Damage)
		}
		rep := verify(t, base, chain.VerifyOptions{PublicKeys: []string{k.vkey}})
		if rep.Damage == nil || rep.Damage.Kind != chain.WrongKey {
			t.Fatalf("damage %v, want wrong key", rep.Damage)
		}
	})

	t.Run("splice two logs", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other.jsonl")
		writeLog(t, other, k, records, sink.Options{})
		otherLines := readLines(t, other)
		base := filepath.Join(t.TempDir(), "audit.jsonl")
		spliced := append(append([][]byte{}, orig[:30]...), otherLines[30:]...)
		writeLines(t, base, spliced)
		rep := verify(t, base, chain.VerifyOptions{PublicKeys: []string{k.vkey}})
		if rep.Damage == nil || rep.Damage.Kind != chain.Spliced || rep.Damage.Line != 31 {
			t.Fatalf("damage %v, want spliced at line 31", rep.Damage)
		}
	})
}

func TestSegmentsAndHead(t *testing.T) {
	k := newKey(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "audit.jsonl")
	// Rotation: about 500 bytes a record, 2 KiB segments.
	writeLog(t, base, k, 60, sink.Options{RotateSize: 2048})
	files, _ := logfile.Segments(base)
	if len(files) < 5 {
		t.Fatalf("%d segments, want at least 5", len(files))
	}
	rep := verify(t, base, chain.VerifyOptions{PublicKeys: []string{k.vkey}})
	if rep.Damage != nil {
		t.Fatal(rep.Damage)
	}
	events := 0
	for _, f := range files {
		for _, l := range readLines(t, f) {
			if lineType(t, l) == "open" {
				events++
			}
		}
	}
	if events != 60 || rep.Records != rep.LastSeq {
		t.Fatalf("%d event records across %d segments (want 60), %d verified of %d", events, len(files), rep.Records, rep.LastSeq)
	}

	t.Run("missing middle segment", func(t *testing.T) {
		d := t.TempDir()
		for i, f := range files {
			if i == 2 {
				continue
			}
			data, _ := os.ReadFile(f)
			os.WriteFile(filepath.Join(d, filepath.Base(f)), data, 0o600)
		}
		rep := verify(t, filepath.Join(d, "audit.jsonl"), chain.VerifyOptions{PublicKeys: []string{k.vkey}})
		if rep.Damage == nil || rep.Damage.Kind != chain.MissingSegment {
			t.Fatalf("damage %v, want missing segment", rep.Damage)
		}
	})

	t.Run("tail truncated with its checkpoints, caught with --head", func(t *testing.T) {
		d := t.TempDir()
		b := filepath.Join(d, "audit.jsonl")
		writeLog(t, b, k, 20, sink.Options{}) // run 1 ends in a final checkpoint
		writeLog(t, b, k, 20, sink.Options{}) // run 2 continues in segment 2
		seq, err := lastCheckpointHead(t, logfile.SegmentPath(b, 2))
		if err != nil {
			t.Fatal(err)
		}
		if rep := verify(t, b, chain.VerifyOptions{PublicKeys: []string{k.vkey}, Head: seq}); rep.Damage != nil {
			t.Fatalf("intact: %v", rep.Damage)
		}
		os.Remove(logfile.SegmentPath(b, 2))
		if rep := verify(t, b, chain.VerifyOptions{PublicKeys: []string{k.vkey}}); rep.Damage != nil {
			t.Fatalf("without --head the shortened log looks complete, got %v", rep.Damage)
		}
		rep := verify(t, b, chain.VerifyOptions{PublicKeys: []string{k.vkey}, Head: seq})
		if rep.Damage == nil || rep.Damage.Kind != chain.Truncated {
			t.Fatalf("damage %v, want truncated", rep.Damage)
		}
	})
}

// lastCheckpointHead is what a SIEM holds: the size and head of the last checkpoint.
func lastCheckpointHead(t testing.TB, path string) (*chain.HeadRef, error) {
	lines := readLines(t, path)
	last := lines[len(lines)-1]
	r, err := record.Decode(last[:len(last)-1])
	if err != nil {
		return nil, err
	}
	cp, ok := r.Body.(*record.Checkpoint)
	if !ok {
		return nil, fmt.Errorf("the last line is a %s record", r.Type)
	}
	h, err := chain.ParseHash(cp.Head)
	return &chain.HeadRef{Seq: cp.Size, Hash: h}, err
}

func TestTornTailRecovery(t *testing.T) {
	k := newKey(t)
	base := filepath.Join(t.TempDir(), "audit.jsonl")
	writeLog(t, base, k, 15, sink.Options{})
	torn := []byte(`{"v":1,"seq":18,"prev":"0123`)
	f, _ := os.OpenFile(base, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(torn)
	f.Close()
	before, _ := os.ReadFile(base)

	if rep := verify(t, base, chain.VerifyOptions{}); rep.Damage == nil || rep.Damage.Kind != chain.Truncated {
		t.Fatalf("unrecovered torn tail: damage %v, want truncated", rep.Damage)
	}
	writeLog(t, base, k, 5, sink.Options{})
	after, _ := os.ReadFile(base)
	if !bytes.Equal(before, after) {
		t.Fatal("the torn segment was modified")
	}
	rep := verify(t, base, chain.VerifyOptions{PublicKeys: []string{k.vkey}})
	if rep.Damage != nil || len(rep.Recovered) != 1 {
		t.Fatalf("damage %v, recovered %v", rep.Damage, rep.Recovered)
	}
	want := fmt.Sprintf("%s: ended without a final checkpoint after seq 18 (0 unsigned records) and %d torn bytes at offset %d (a crash)", filepath.Base(base), len(torn), len(before)-len(torn))
	if rep.Recovered[0] != want {
		t.Fatalf("recovered %q, want %q", rep.Recovered[0], want)
	}
}

func BenchmarkVerify(b *testing.B) {
	k := newKey(b)
	base := filepath.Join(b.TempDir(), "audit.jsonl")
	writeLog(b, base, k, 100000, sink.Options{CheckpointRecords: 10000})
	info, _ := os.Stat(base)
	b.SetBytes(info.Size())
	b.ResetTimer()
	for b.Loop() {
		verify(b, base, chain.VerifyOptions{PublicKeys: []string{k.vkey}})
	}
}

// TestSeveralKeys: a log continued by a second run with its own key verifies
// against both keys, given one by one or in one file; either key alone
// names the other run's segment as signed by the wrong key.
func TestSeveralKeys(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "audit.jsonl")
	k1, k2 := newKey(t), newKey(t)
	writeLog(t, base, k1, 20, sink.Options{})
	writeLog(t, base, k2, 20, sink.Options{})
	if rep := verify(t, base, chain.VerifyOptions{PublicKeys: []string{k1.vkey, k2.vkey}}); rep.Damage != nil {
		t.Fatalf("both keys: %v", rep.Damage)
	}
	for _, tc := range []struct {
		key     key
		segment string
		line    int
	}{{k1, logfile.SegmentPath(base, 2), 1}, {k2, base, 1}} {
		rep := verify(t, base, chain.VerifyOptions{PublicKeys: []string{tc.key.vkey}})
		if rep.Damage == nil || rep.Damage.Kind != chain.WrongKey || rep.Damage.Segment != tc.segment || rep.Damage.Line != tc.line {
			t.Errorf("one key: damage %+v, want wrong key at %s line %d", rep.Damage, tc.segment, tc.line)
		}
	}

	file := filepath.Join(dir, "keys.pub")
	if err := os.WriteFile(file, []byte("# the runs of audit.jsonl\n"+k1.vkey+"\n\n"+k2.vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	keys, err := chain.ReadVerifierKeys(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != k1.vkey || keys[1] != k2.vkey {
		t.Fatalf("ReadVerifierKeys = %q, want the two keys in order", keys)
	}
	if err := os.WriteFile(file, []byte(k1.vkey+"\nnot a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := chain.ReadVerifierKeys(file); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a bad second line: error %v, want one naming line 2", err)
	}
}

// TestDuplicateKeyIsModified: a line that repeats a key is not what the
// writer wrote (readers could disagree on its value), even where nothing
// else could tell: the last line of a log still being written, whose hash
// no later line holds.
func TestDuplicateKeyIsModified(t *testing.T) {
	k := newKey(t)
	pristine := filepath.Join(t.TempDir(), "audit.jsonl")
	writeLog(t, pristine, k, 15, sink.Options{})
	orig := readLines(t, pristine)
	const last = 15 // 1-based: header, 10 records, a checkpoint, 3 records
	if lineType(t, orig[last-1]) != "open" {
		t.Fatalf("line %d is not an open record", last)
	}
	for _, tc := range []struct {
		name, old, new string
		kind           string
	}{
		// Control: a changed value alone goes unnoticed on that line.
		{"changed value", `"path":"/work/file-12"`, `"path":"/etc/shadow"`, ""},
		{"repeated key", `"path":"/work/file-12"`, `"path":"/work/file-12","path":"/etc/shadow"`, chain.Modified},
		{"repeated key, escaped", `"path":"/work/file-12"`, `"path":"/work/file-12","\u0070ath":"/etc/shadow"`, chain.Modified},
		{"repeated key in proc", `"comm":"python3"`, `"comm":"python3","comm":"sshd"`, chain.Modified},
		{"repeated envelope key", `"host":"testhost"`, `"host":"testhost","host":"other"`, chain.Modified},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := append([][]byte(nil), orig[:last]...)
			if !bytes.Contains(lines[last-1], []byte(tc.old)) {
				t.Fatalf("line %d has no %s: %s", last, tc.old, lines[last-1])
			}
			lines[last-1] = bytes.Replace(lines[last-1], []byte(tc.old), []byte(tc.new), 1)
			base := filepath.Join(t.TempDir(), "audit.jsonl")
			writeLines(t, base, lines)
			rep := verify(t, base, chain.VerifyOptions{PublicKeys: []string{k.vkey}, Open: true})
			if tc.kind == "" {
				if rep.Damage != nil {
					t.Fatalf("damage %v", rep.Damage)
				}
				return
			}
			if rep.Damage == nil || rep.Damage.Kind != tc.kind || rep.Damage.Line != last || rep.Damage.Seq != last {
				t.Fatalf("damage %v, want %s on line %d (seq %d)", rep.Damage, tc.kind, last, last)
			}
		})
	}
	// In the middle of a closed log, too.
	lines := append([][]byte(nil), orig...)
	lines[4] = bytes.Replace(lines[4], []byte(`"ret":3}`), []byte(`"ret":3,"ret":-1}`), 1)
	base := filepath.Join(t.TempDir(), "audit.jsonl")
	writeLines(t, base, lines)
	if rep := verify(t, base, chain.VerifyOptions{PublicKeys: []string{k.vkey}}); rep.Damage == nil || rep.Damage.Kind != chain.Modified || rep.Damage.Line != 5 {
		t.Fatalf("damage %v, want modified on line 5", rep.Damage)
	}
}

// TestNotALog: input that is not an agenttrace log at all is an error
// wrapping ErrNotALog, not damage to a log.
func TestNotALog(t *testing.T) {
	dir := t.TempDir()
	passwd := "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
	for _, tc := range []struct {
		name    string
		content string
	}{
		{"passwd", passwd},
		{"passwd without a final newline", strings.TrimSuffix(passwd, "\n")},
		{"empty", ""},
		{"JSON of something else", `{"level":"info","msg":"started"}` + "\n"},
		{"JSON array", `[{"v":1}]` + "\n"},
		{"binary without newlines", strings.Repeat("\x00\xff", logfile.MaxLine)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".jsonl")
			if err := os.WriteFile(base, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			files, numbers := logfile.Segments(base)
			rep, err := chain.Verify(files, numbers, chain.VerifyOptions{})
			if !errors.Is(err, chain.ErrNotALog) {
				t.Fatalf("Verify = %+v, %v, want an error wrapping ErrNotALog", rep, err)
			}
			if _, err := chain.ReadTail(base, 1); !errors.Is(err, chain.ErrNotALog) {
				t.Errorf("ReadTail = %v, want ErrNotALog", err)
			}
		})
	}

	// A log whose first record was damaged is a damaged log, not another file.
	k := newKey(t)
	base := filepath.Join(dir, "audit.jsonl")
	writeLog(t, base, k, 3, sink.Options{})
	lines := readLines(t, base)
	lines[0] = bytes.Replace(lines[0], []byte(`"type":"header","header":{`), []byte(`"type":"open","open":{`), 1)
	writeLines(t, base, lines)
	if rep := verify(t, base, chain.VerifyOptions{}); rep.Damage == nil || rep.Damage.Kind != chain.Modified || rep.Damage.Line != 1 {
		t.Fatalf("damage %v, want modified on line 1", rep.Damage)
	}

	// A FIFO in place of a segment is refused, without waiting for a writer.
	fifo := filepath.Join(dir, "fifo.jsonl")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := chain.Verify([]string{fifo}, []int{1}, chain.VerifyOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, logfile.ErrNotRegular) {
			t.Errorf("Verify(FIFO) = %v, want ErrNotRegular", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Verify(FIFO) blocks")
	}
}

// TestVisitEveryLine: Visit is given every complete line of the log once,
// in order: those verified, and after damage the rest unverified.
func TestVisitEveryLine(t *testing.T) {
	k := newKey(t)
	base := filepath.Join(t.TempDir(), "audit.jsonl")
	writeLog(t, base, k, 40, sink.Options{RotateSize: 4096})
	files, _ := logfile.Segments(base)
	if len(files) < 3 {
		t.Fatalf("%d segments, want at least 3", len(files))
	}
	var all [][]byte
	for _, f := range files {
		all = append(all, readLines(t, f)...)
	}
	visit := func(opts chain.VerifyOptions) (*chain.Report, [][]byte) {
		var got [][]byte
		opts.Visit = func(line []byte) { got = append(got, bytes.Clone(line)) }
		return verify(t, base, opts), got
	}
	same := func(got [][]byte) {
		t.Helper()
		if len(got) != len(all) {
			t.Fatalf("Visit got %d lines, the log has %d", len(got), len(all))
		}
		for i := range got {
			if !bytes.Equal(got[i], all[i]) {
				t.Fatalf("Visit line %d = %s, want %s", i+1, got[i], all[i])
			}
		}
	}
	rep, got := visit(chain.VerifyOptions{PublicKeys: []string{k.vkey}})
	if rep.Damage != nil || rep.Records != uint64(len(all)) {
		t.Fatalf("intact: %v, %d records of %d lines", rep.Damage, rep.Records, len(all))
	}
	same(got)

	// Damage in the middle of segment 2, and at the start of segment 3.
	seg2 := readLines(t, files[1])
	mid := len(seg2) / 2
	for _, tc := range []struct {
		name   string
		file   string
		line   int
		mutate func([]byte) []byte
	}{
		{"modified mid-segment", files[1], mid, func(l []byte) []byte { return bytes.Replace(l, []byte("/work/file-"), []byte("/work/FILE-"), 1) }},
		{"invalid JSON mid-segment", files[1], mid, func(l []byte) []byte { return append([]byte("}"), l...) }},
		{"header of a later segment", files[2], 0, func(l []byte) []byte { return bytes.Replace(l, []byte(`"segment":3`), []byte(`"segment":4`), 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := readLines(t, tc.file)
			orig := lines[tc.line]
			lines[tc.line] = tc.mutate(bytes.Clone(orig))
			writeLines(t, tc.file, lines)
			defer func() { lines[tc.line] = orig; writeLines(t, tc.file, lines) }()
			want := all
			all = nil
			for _, f := range files {
				all = append(all, readLines(t, f)...)
			}
			defer func() { all = want }()
			rep, got := visit(chain.VerifyOptions{PublicKeys: []string{k.vkey}})
			if rep.Damage == nil {
				t.Fatal("damage not found")
			}
			same(got)
		})
	}
}
