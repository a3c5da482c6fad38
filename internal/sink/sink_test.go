package sink

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
)

func openLog(t *testing.T, base string, enc *record.Encoder) (*Writer, string) {
	t.Helper()
	skey, vkey, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Open(Options{Base: base, Signer: signer, VerifierKey: vkey, Encoder: enc, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return w, vkey
}

func verifyLog(t *testing.T, base, vkey string) *chain.Report {
	t.Helper()
	files, numbers := logfile.Segments(base)
	rep, err := chain.Verify(files, numbers, chain.VerifyOptions{PublicKeys: []string{vkey}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Damage != nil {
		t.Fatalf("the log does not verify: %v", rep.Damage)
	}
	return rep
}

// readTypes returns the types of the log's records, in order.
func readTypes(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		r, err := record.Decode(line)
		if err != nil {
			t.Fatalf("%v\n%s", err, line)
		}
		types = append(types, r.Type)
	}
	return types
}

func openEvent(path string) *record.Event {
	return &record.Event{Kind: record.KindOpen, Ktime: record.BootTime(), Proc: record.Proc{Pid: 42, Tid: 42, Comm: "cat",
		ExecID: record.ExecID{Pid: 42, Start: 7, Seq: 1}, ParentExecID: record.ExecID{Pid: 1, Start: 1, Seq: 1}},
		Open: record.Open{Syscall: "openat", Dirfd: -100, Path: path, Ret: 3}}
}

// TestAppendValues: records go in as values and come out as the same
// values, chained and signed.
func TestAppendValues(t *testing.T) {
	base := filepath.Join(t.TempDir(), "audit.jsonl")
	enc := record.NewEncoder("host", "boot", 0, nil)
	w, vkey := openLog(t, base, enc)
	reload := &record.Reload{Status: "applied", Config: "/etc/agenttrace.yaml", ConfigSHA256: strings.Repeat("ab", 32), Changed: []string{}}
	if err := w.Append(reload); err != nil {
		t.Fatal(err)
	}
	if err := w.AppendEvent(openEvent("/etc/hostname")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	verifyLog(t, base, vkey)
	if got, want := strings.Join(readTypes(t, base), ","), "header,reload,open,checkpoint"; got != want {
		t.Fatalf("types %s, want %s", got, want)
	}
}

// blockWrites makes every write past the current size of path fail (the
// process's file size limit: EFBIG, like a full disk, without root);
// unblock lifts it.
func blockWrites(t *testing.T, path string) (unblock func()) {
	t.Helper()
	signal.Ignore(syscall.SIGXFSZ)
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	limit := old
	limit.Cur = uint64(info.Size())
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(restore)
	return restore
}

// TestBlockedLog: while the file refuses writes, Append refuses records
// and counts agenttrace's own ones by type; TryAppendAt refuses without
// counting (its caller keeps the record); what was chained before is kept
// and written once the file takes data again, with no torn line.
func TestBlockedLog(t *testing.T) {
	base := filepath.Join(t.TempDir(), "audit.jsonl")
	enc := record.NewEncoder("host", "boot", 0, nil)
	w, vkey := openLog(t, base, enc)
	unblock := blockWrites(t, base)

	// Chained before the first write fails: kept, not refused.
	if err := w.AppendEvent(openEvent("/kept")); err != nil {
		t.Fatalf("first append: %v", err)
	}
	if err := w.Flush(); err == nil {
		t.Fatal("Flush succeeded past the file size limit")
	}
	if blocked, _ := w.Blocked(); !blocked {
		t.Fatal("the log does not say it is blocked")
	}
	time.Sleep(2 * blockedRetry)
	n := 0
	for _, body := range []record.Body{&record.Target{Op: "add", Reason: "start", Cgroup: "/a"}, &record.Target{Op: "remove", Reason: "reload", Cgroup: "/a"}, &record.Reload{Status: "rejected"}} {
		if err := w.Append(body); !errors.Is(err, ErrBlocked) {
			t.Fatalf("Append while blocked = %v, want ErrBlocked", err)
		}
		n++
	}
	if err := w.TryAppendAt(record.BootTime(), &record.Freeze{Reason: "x"}); !errors.Is(err, ErrBlocked) {
		t.Fatalf("TryAppendAt while blocked = %v, want ErrBlocked", err)
	}
	if err := w.AppendEvent(openEvent("/refused")); !errors.Is(err, ErrBlocked) {
		t.Fatalf("AppendEvent while blocked = %v, want ErrBlocked", err)
	}
	if got := w.Refused(); len(got) != 2 || got["target"] != 2 || got["reload"] != 1 {
		t.Fatalf("Refused() = %v, want target 2, reload 1 (not the freeze, whose caller retries, nor the event, whose caller counts it)", got)
	}
	if got := w.Refused(); got != nil {
		t.Fatalf("Refused() after reading = %v, want nil", got)
	}

	unblock()
	time.Sleep(2 * blockedRetry)
	if err := w.AppendEvent(openEvent("/after")); err != nil {
		t.Fatalf("append after the file takes data again: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	verifyLog(t, base, vkey)
	if got, want := strings.Join(readTypes(t, base), ","), "header,open,open,checkpoint"; got != want {
		t.Fatalf("types %s, want %s (the refused records are not in the log)", got, want)
	}
}

// TestEncoderStateWhileBlocked is the reload defect of issue 11: the
// daemon changed the encoder's sensitive list inside a closure given to an
// append that a blocked log never ran, and counted the reload applied. The
// list is now set on the encoder, whatever the log does: the first open
// written after the log takes data again is tagged by the new list.
func TestEncoderStateWhileBlocked(t *testing.T) {
	base := filepath.Join(t.TempDir(), "audit.jsonl")
	enc := record.NewEncoder("host", "boot", 0, nil)
	enc.SetSensitive(record.DefaultSensitive())
	w, vkey := openLog(t, base, enc)
	unblock := blockWrites(t, base)
	w.AppendEvent(openEvent("/x")) // chained, then the write fails
	w.Flush()
	time.Sleep(2 * blockedRetry)

	// The reload: new list, then its record, which the log refuses.
	newList, err := record.SensitiveWith([]string{"/srv/secret/*"})
	if err != nil {
		t.Fatal(err)
	}
	enc.SetSensitive(newList)
	if err := w.Append(&record.Reload{Status: "applied", Config: "c", ConfigSHA256: strings.Repeat("0", 64)}); !errors.Is(err, ErrBlocked) {
		t.Fatalf("reload record while blocked: %v, want ErrBlocked", err)
	}

	unblock()
	time.Sleep(2 * blockedRetry)
	if err := w.AppendEvent(openEvent("/srv/secret/token")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	verifyLog(t, base, vkey)
	if got, want := strings.Join(readTypes(t, base), ","), "header,open,open,gap,checkpoint"; got != want {
		t.Fatalf("types %s, want %s", got, want)
	}
	data, _ := os.ReadFile(base)
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	r, err := record.Decode(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := r.Body.(*record.Open); !ok || o.Path != "/srv/secret/token" || !r.HasTag(record.TagCredentialAccess) {
		t.Fatalf("the open after the reload is not tagged by the new list:\n%s", lines[2])
	}
	// Nobody took the refused reload record's count (no pipeline here):
	// the writer puts it in a gap before its final checkpoint.
	g, err := record.Decode(lines[3])
	if err != nil {
		t.Fatal(err)
	}
	if gap, ok := g.Body.(*record.Gap); !ok || gap.Stage != "write" || len(gap.Lost) != 1 || gap.Lost["reload"] != 1 {
		t.Fatalf("want a write gap counting the refused reload record, got:\n%s", lines[3])
	}
}

// TestOneWriterPerLog: a second writer of a log is refused, naming the
// first's pid, and changes nothing.
func TestOneWriterPerLog(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "audit.jsonl")
	w, vkey := openLog(t, base, record.NewEncoder("host", "boot", 0, nil))
	before := dirState(t, dir)
	skey, vkey2, _ := chain.GenerateKey()
	signer, _ := note.NewSigner(skey)
	_, err := Open(Options{Base: base, Signer: signer, VerifierKey: vkey2, Encoder: record.NewEncoder("h", "b", 0, nil), Version: "test"})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second writer: %v, want ErrLocked naming pid %d", err, os.Getpid())
	}
	if after := dirState(t, dir); after != before {
		t.Fatalf("the refused writer changed the directory:\nbefore %s\nafter  %s", before, after)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The lock goes with the writer: a later run continues the log.
	w2, _ := openLog(t, base, record.NewEncoder("host", "boot", 0, nil))
	w2.Close()
	files, numbers := logfile.Segments(base)
	rep, err := chain.Verify(files, numbers, chain.VerifyOptions{})
	if err != nil || rep.Damage != nil || len(files) != 2 {
		t.Fatalf("after two writers in turn: %v %v, %d segments", err, rep.Damage, len(files))
	}
	_ = vkey
}

// dirState describes the files of dir: names, sizes and modification times.
func dirState(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %d; ", e.Name(), info.Size(), info.ModTime().UnixNano())
	}
	return b.String()
}

// limitFileSize makes every write past size bytes of any file fail
// (EFBIG, like a full disk) until the returned function lifts it.
func limitFileSize(t *testing.T, size uint64) (unlimit func()) {
	t.Helper()
	signal.Ignore(syscall.SIGXFSZ)
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	limit := old
	limit.Cur = size
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	done := false
	unlimit = func() {
		if !done {
			done = true
			unix.Setrlimit(unix.RLIMIT_FSIZE, &old)
		}
	}
	t.Cleanup(unlimit)
	return unlimit
}

// TestSegmentOnlyWithItsHeader: a log cannot start while its header cannot
// be written (a full disk), and nothing is left behind that would stop a
// later start: no empty segment, no partial one.
func TestSegmentOnlyWithItsHeader(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "audit.jsonl")
	// The counts file takes its space when it is created, before the
	// limit; a header does not fit in 100 bytes.
	f, _ := os.Create(UnwrittenPath(base))
	f.Close()
	unlimit := limitFileSize(t, 100)
	skey, vkey, _ := chain.GenerateKey()
	signer, _ := note.NewSigner(skey)
	opts := Options{Base: base, Signer: signer, VerifierKey: vkey, Encoder: record.NewEncoder("h", "b", 0, nil), Version: "test"}
	if _, err := Open(opts); err == nil {
		t.Fatal("Open succeeded although its header cannot be written")
	}
	if files, _ := logfile.Segments(base); len(files) != 0 {
		t.Fatalf("a failed start left segments %q", files)
	}
	if _, err := os.Stat(newSegmentName(base)); !os.IsNotExist(err) {
		t.Fatalf("a failed start left %s", newSegmentName(base))
	}
	unlimit()
	w, err := Open(opts)
	if err != nil {
		t.Fatalf("start once the disk has room: %v", err)
	}
	w.Close()
	verifyLog(t, base, vkey)
}

// TestHeaderlessSegmentRecovered: a segment that holds no complete record
// (an earlier version's start cut by a crash or a full disk) is never a
// reason to refuse the log: the next segment's recovery record describes
// its bytes, and the log verifies.
func TestHeaderlessSegmentRecovered(t *testing.T) {
	for _, content := range []string{"", `{"v":1,"seq":41,"prev":"0000`} {
		dir := t.TempDir()
		base := filepath.Join(dir, "audit.jsonl")
		enc := record.NewEncoder("host", "boot", 0, nil)
		w, _ := openLog(t, base, enc)
		w.AppendEvent(openEvent("/a"))
		w.Close()
		cut := logfile.SegmentPath(base, 2)
		if err := os.WriteFile(cut, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		// Without a continuing writer the log ends in the cut segment.
		files, numbers := logfile.Segments(base)
		rep, err := chain.Verify(files, numbers, chain.VerifyOptions{})
		if err != nil || rep.Damage == nil || rep.Damage.Kind != chain.Truncated || rep.Damage.Segment != cut {
			t.Fatalf("before recovery: %v %+v, want truncated at %s", err, rep.Damage, cut)
		}
		w2, _ := openLog(t, base, enc)
		w2.AppendEvent(openEvent("/b"))
		if err := w2.Close(); err != nil {
			t.Fatal(err)
		}
		files, numbers = logfile.Segments(base)
		if len(files) != 3 || files[2] != logfile.SegmentPath(base, 3) {
			t.Fatalf("segments %q, want the log to go on in segment 3", files)
		}
		rep, err = chain.Verify(files, numbers, chain.VerifyOptions{})
		if err != nil || rep.Damage != nil {
			t.Fatalf("content %q: after recovery: %v %v", content, err, rep.Damage)
		}
		if len(rep.Recovered) != 1 || !strings.HasPrefix(rep.Recovered[0], filepath.Base(cut)+":") {
			t.Fatalf("recovered %q, want the cut segment named", rep.Recovered)
		}
		data, _ := os.ReadFile(files[2])
		lines := bytes.Split(data, []byte("\n"))
		r, err := record.Decode(lines[1])
		if err != nil {
			t.Fatal(err)
		}
		rec, ok := r.Body.(*record.Recovery)
		if !ok || rec.SegmentFile != filepath.Base(cut) || rec.TornBytes != int64(len(content)) {
			t.Fatalf("the record after the header is not the recovery of %s:\n%s", cut, lines[1])
		}
	}
}

// TestStopWhileBlockedIsCounted: a writer that stops while the log refuses
// writes counts what it could not write (its buffered records, the
// caller's uncounted losses, refused records) in a file beside the log; the
// next writer puts them in a gap record.
func TestStopWhileBlockedIsCounted(t *testing.T) {
	base := filepath.Join(t.TempDir(), "audit.jsonl")
	enc := record.NewEncoder("host", "boot", 0, nil)
	w, vkey := openLog(t, base, enc)
	unblock := blockWrites(t, base)
	for range 3 {
		w.AppendEvent(openEvent("/lost"))
	}
	w.Flush()
	time.Sleep(2 * blockedRetry)
	w.Append(&record.Stop{Reason: "command exited"}) // refused
	w.AddUnwritten(record.Counts{"open": 5})
	err := w.Close()
	if err == nil || !strings.Contains(err.Error(), UnwrittenPath(base)) {
		t.Fatalf("Close while blocked: %v, want an error naming %s", err, UnwrittenPath(base))
	}
	unblock()

	w2, _ := openLog(t, base, enc)
	w2.Close()
	files, numbers := logfile.Segments(base)
	// Each run signs with its own key here: give no key, check the chain.
	rep, err := chain.Verify(files, numbers, chain.VerifyOptions{})
	if err != nil || rep.Damage != nil {
		t.Fatalf("verify: %v %v", err, rep.Damage)
	}
	if len(rep.Keys) != 2 || rep.Keys[0] != vkey {
		t.Fatalf("keys %q, want the first run's then the second's", rep.Keys)
	}
	var gap *record.Gap
	data, _ := os.ReadFile(files[len(files)-1])
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		r, err := record.Decode(line)
		if err != nil {
			t.Fatal(err)
		}
		if g, ok := r.Body.(*record.Gap); ok {
			gap = g
		}
	}
	if gap == nil || gap.Lost["open"] != 3+5 || gap.Lost["stop"] != 1 || len(gap.Lost) != 2 {
		t.Fatalf("next writer's gap: %+v, want open 8 (3 buffered + 5 uncounted) and stop 1", gap)
	}
	if data, _ := os.ReadFile(UnwrittenPath(base)); len(bytes.Trim(data, "\x00")) != 0 {
		t.Fatalf("the counts are still in %s after the next writer wrote them: %q", UnwrittenPath(base), data)
	}
}
