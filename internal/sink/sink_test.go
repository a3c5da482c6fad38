package sink

import (
	"bytes"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
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
	data, _ := os.ReadFile(base)
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	last := lines[len(lines)-2] // before the final checkpoint
	r, err := record.Decode(last)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := r.Body.(*record.Open); !ok || o.Path != "/srv/secret/token" || !r.HasTag(record.TagCredentialAccess) {
		t.Fatalf("the open after the reload is not tagged by the new list:\n%s", last)
	}
}
