package integration

// The chain of custody under faults: a full disk, a second writer, crashes
// and restarts (issues 11 and 15).

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
)

// mountSmall mounts a tmpfs of size bytes at dir (created), unmounted at
// the end of the test.
func mountSmall(t *testing.T, dir string, size string) {
	t.Helper()
	requireRoot(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("mounting a small tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}

// fillUp fills the file system of dir, leaving nothing free, with a file
// it returns.
func fillUp(t *testing.T, dir string) string {
	t.Helper()
	filler := filepath.Join(dir, "filler")
	f, err := os.OpenFile(filler, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	for {
		if _, err := f.Write(chunk[:1]); err != nil {
			break
		}
	}
	return filler
}

// decodeLog decodes every complete line of every segment of the log at base.
func decodeLog(t *testing.T, base string) []*record.Record {
	t.Helper()
	files, _ := logfile.Segments(base)
	var recs []*record.Record
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		data = data[:bytes.LastIndexByte(data, '\n')+1]
		for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			r, err := record.Decode(line)
			if err != nil {
				t.Fatalf("%s: %v\n%s", f, err, line)
			}
			recs = append(recs, r)
		}
	}
	return recs
}

// TestDaemonReloadWhileLogBlocked is the reload defect of issue 11: a reload
// while the log refuses writes (disk full) must still apply its new
// sensitive-path list; the reload record the full disk refused is counted
// in a gap record, and the log verifies.
func TestDaemonReloadWhileLogBlocked(t *testing.T) {
	e := newDaemonEnv(t)
	mountSmall(t, e.logDir, "2m")
	pattern := e.pattern("agent-*")
	e.writeConfig(t, e.daemonConfig([]string{pattern}, ""))
	d := e.startDaemon(t)
	e.mkdir(t, "agent-1")

	filler := fillUp(t, e.logDir)
	// Something to write, so the writer finds the disk full.
	e.openIn(t, "agent-1", "/etc/hostname")
	time.Sleep(1500 * time.Millisecond)

	secretDir := t.TempDir()
	secret := uniqueFile(t, secretDir, "token")
	at := d.mark()
	e.writeConfig(t, e.daemonConfig([]string{pattern}, "", "sensitive_paths:", "  - "+quoteYAML(secretDir+"/token-*")))
	d.signal(t, syscall.SIGHUP)
	d.waitLog(t, at, "reloaded", 10*time.Second)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the writer retries; the log takes writes again
	_, fd := e.openIn(t, "agent-1", secret)
	time.Sleep(500 * time.Millisecond)
	d.stop(t)

	base := filepath.Join(e.logDir, "audit.jsonl")
	if out, err := exec.Command(agentBin, "verify", "--pubkey", e.pubPath, base).CombinedOutput(); err != nil {
		t.Fatalf("agenttrace verify: %v\n%s", err, out)
	}
	var opened *record.Record
	var refusedReloads uint64
	for _, r := range decodeLog(t, base) {
		switch b := r.Body.(type) {
		case *record.Open:
			if b.Path == secret && b.Ret == int64(fd) {
				opened = r
			}
		case *record.Reload:
			t.Errorf("a reload record was written while the disk was full:\n%+v", b)
		case *record.Gap:
			if b.Stage == "write" {
				refusedReloads += b.Lost["reload"]
			}
		}
	}
	if opened == nil {
		t.Fatalf("no open record of %s", secret)
	}
	if !opened.HasTag(record.TagCredentialAccess) {
		t.Errorf("the open of %s, in the sensitive list the reload set while the log was blocked, is not tagged credential_access: tags %q", secret, opened.Tags)
	}
	if refusedReloads != 1 {
		t.Errorf("the refused reload record is counted %d times in write gaps, want 1", refusedReloads)
	}
}

// quoteYAML quotes s as a YAML double-quoted scalar.
func quoteYAML(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
