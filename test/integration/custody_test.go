package integration

// The chain of custody under faults: a full disk, a second writer, crashes
// and restarts (issues 11 and 15).

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
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
	"github.com/agenttrace/agenttrace/internal/sink"
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

// TestSecondRunRefused: two `agenttrace run --log X` at once: the second is
// refused before it writes, naming the first's pid, and the log verifies.
func TestSecondRunRefused(t *testing.T) {
	requireRoot(t)
	dir := testDir(t)
	log := filepath.Join(dir, "one.jsonl")
	first := exec.Command(agentBin, "run", "--log", log, "--", "sleep", "3")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Wait()
	// Started: its log and its public key are written.
	waitFor(t, 10*time.Second, func() bool { _, err := os.Stat(log + ".pub"); return err == nil })
	before := dirNames(t, dir)
	out, err := exec.Command(agentBin, "run", "--log", log, "--", "true").CombinedOutput()
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != 1 || !strings.Contains(string(out), "is held by pid "+strconv.Itoa(first.Process.Pid)) {
		t.Fatalf("second run: exit %d, output %q; want exit 1 naming pid %d", code, out, first.Process.Pid)
	}
	if after := dirNames(t, dir); after != before {
		t.Fatalf("the refused run changed the log's directory:\nbefore %s\nafter  %s", before, after)
	}
	if lock, _ := os.ReadFile(log + ".lock"); string(lock) != strconv.Itoa(first.Process.Pid)+"\n" {
		t.Fatalf("the lock file says %q, want the first run's pid", lock)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first run: %v", err)
	}
	if out, err := exec.Command(agentBin, "verify", log).CombinedOutput(); err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
}

// dirNames names the files of dir.
func dirNames(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.Name() + " ")
	}
	return b.String()
}

// dirFiles names the files of dir with their sizes.
func dirFiles(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		info, _ := e.Info()
		fmt.Fprintf(&b, "%s:%d ", e.Name(), info.Size())
	}
	return b.String()
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// TestSecondDaemonRefused: a second daemon on the same configuration (the
// realistic trigger: someone runs `agenttrace daemon` by hand while the
// service is up) exits non-zero naming the first's pid, having written
// nothing; a daemon whose metrics port is taken fails before it writes a
// log at all.
func TestSecondDaemonRefused(t *testing.T) {
	e := newDaemonEnv(t)
	e.writeConfig(t, e.daemonConfig([]string{e.pattern("agent-*")}, ""))
	d := e.startDaemon(t)
	before := dirFiles(t, e.logDir)
	out, err := exec.Command(agentBin, "daemon", "--config", e.cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is held by pid "+strconv.Itoa(d.cmd.Process.Pid)) {
		t.Fatalf("second daemon: %v, output %q; want a failure naming pid %d", err, out, d.cmd.Process.Pid)
	}
	if after := dirFiles(t, e.logDir); after != before {
		t.Fatalf("the refused daemon changed the log directory:\nbefore %s\nafter  %s", before, after)
	}
	d.stop(t)

	// A port in use: nothing is written.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e2 := newDaemonEnv(t)
	e2.writeConfig(t, e2.daemonConfig([]string{e2.pattern("agent-*")}, l.Addr().String()))
	out, err = exec.Command(agentBin, "daemon", "--config", e2.cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "address already in use") {
		t.Fatalf("daemon on a port in use: %v, %q", err, out)
	}
	if files, _ := logfile.Segments(filepath.Join(e2.logDir, "audit.jsonl")); len(files) != 0 {
		t.Fatalf("the daemon that could not serve its metrics wrote %q", files)
	}
}

// TestDaemonDiskFull: a daemon stopped while its disk is full counts what it
// could not write for the next start; a daemon started while the disk is
// full waits for room, saying so, and starts by itself once there is; every
// open made is a record or counted.
func TestDaemonDiskFull(t *testing.T) {
	e := newDaemonEnv(t)
	mountSmall(t, e.logDir, "3m")
	e.writeConfig(t, e.daemonConfig([]string{e.pattern("agent-*")}, ""))
	d := e.startDaemon(t)
	e.mkdir(t, "agent-1")
	filler := fillUp(t, e.logDir)
	const burst = 300
	target := uniqueFile(t, t.TempDir(), "full")
	e.runIn(t, "agent-1", "repeat-open", target, strconv.Itoa(burst))
	time.Sleep(time.Second)
	d.signal(t, syscall.SIGTERM) // while full
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not stop while the disk was full")
	}
	if _, err := os.Stat(filepath.Join(e.logDir, "audit.jsonl.unwritten")); err != nil {
		t.Fatal(err)
	}

	// Restart while still full: it waits, says so, and starts once there is room.
	d2 := &daemonProc{cmd: exec.Command(agentBin, "daemon", "--config", e.cfgPath), done: make(chan struct{})}
	startProc(t, d2)
	d2.waitLog(t, 0, "the log's file system is full: nothing can be written, so nothing is traced; retrying", 20*time.Second)
	if files, _ := logfile.Segments(filepath.Join(e.logDir, "audit.jsonl")); len(files) != 1 {
		t.Fatalf("a start on a full disk left segments %q", files)
	}
	os.Remove(filler)
	d2.waitLog(t, 0, "tracing", 60*time.Second)
	e.runIn(t, "agent-1", "repeat-open", target, "10")
	time.Sleep(500 * time.Millisecond)
	// Stopped for good: the kernel side's whole life is in the log.
	if out, err := exec.Command(agentBin, "daemon", "stop", "--config", e.cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("agenttrace daemon stop: %v\n%s", err, out)
	}
	<-d2.done

	base := filepath.Join(e.logDir, "audit.jsonl")
	if out, err := exec.Command(agentBin, "verify", "--pubkey", e.pubPath, base).CombinedOutput(); err != nil {
		t.Fatalf("agenttrace verify: %v\n%s", err, out)
	}
	// Exact, over every open of the traced cgroup (the helpers' own too):
	// the kseq values of the open records per CPU are 1..max with holes,
	// never twice, and the holes are exactly the opens counted in gaps.
	var opens, counted uint64
	kseqs := map[uint32]map[uint64]bool{}
	var holes uint64
	for _, r := range decodeLog(t, base) {
		switch b := r.Body.(type) {
		case *record.Open:
			if b.Path == target {
				opens++
			}
			if kseqs[r.CPU] == nil {
				kseqs[r.CPU] = map[uint64]bool{}
			}
			if kseqs[r.CPU][r.Kseq] {
				t.Errorf("cpu %d open kseq %d is in the log twice", r.CPU, r.Kseq)
			}
			kseqs[r.CPU][r.Kseq] = true
		case *record.Gap:
			counted += b.Lost["open"]
		}
	}
	for _, seen := range kseqs {
		var max uint64
		for k := range seen {
			max = maxU(max, k)
		}
		holes += max - uint64(len(seen))
	}
	if holes != counted {
		t.Errorf("%d opens missing from the kseq sequences, %d counted in gap records: want equal", holes, counted)
	}
	if opens+counted < burst+10 {
		t.Fatalf("%d open records of %s + %d opens counted in gaps < %d made", opens, target, counted, burst+10)
	}
	t.Logf("%d open records of the target, %d opens counted in gaps, %d kseq holes", opens, counted, holes)
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// startProc starts a daemon process reading its stderr lines; it is
// killed at the end of the test if it still runs.
func startProc(t *testing.T, d *daemonProc) {
	t.Helper()
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(stderr)
		s.Buffer(nil, 1<<20)
		for s.Scan() {
			d.mu.Lock()
			d.lines = append(d.lines, s.Text())
			d.mu.Unlock()
		}
		io.Copy(io.Discard, stderr)
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
	})
}

// TestReadersBounded: verify and show refuse what is not a regular file
// (without blocking on a FIFO), say "not an agenttrace log" with exit 2 for
// input that never was one, stay within bounded memory on a file of
// newlines, and reject a record with a duplicate key as modified.
func TestReadersBounded(t *testing.T) {
	dir := testDir(t)
	fifo := filepath.Join(dir, "fifo.jsonl")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	newlines := filepath.Join(dir, "newlines.jsonl")
	if err := os.WriteFile(newlines, bytes.Repeat([]byte("\n"), 5<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		code       int
		say        string
	}{
		{"fifo", fifo, 2, "not a regular file"},
		{"/dev/zero", "/dev/zero", 2, "not a regular file"},
		{"/etc/passwd", "/etc/passwd", 2, "not an agenttrace log"},
		{"newlines", newlines, 2, "not an agenttrace log"},
	} {
		for _, cmd := range []string{"verify", "show"} {
			c := exec.Command(agentBin, cmd, tc.path)
			var out bytes.Buffer
			c.Stdout, c.Stderr = &out, &out
			done := make(chan error, 1)
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- c.Wait() }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				c.Process.Kill()
				t.Fatalf("%s %s did not return", cmd, tc.name)
			}
			if got := c.ProcessState.ExitCode(); got != tc.code || !strings.Contains(out.String(), tc.say) {
				t.Errorf("%s %s: exit %d, %q; want exit %d saying %q", cmd, tc.name, got, out.String(), tc.code, tc.say)
			}
			if rss := c.ProcessState.SysUsage().(*syscall.Rusage).Maxrss; rss > 200<<10 {
				t.Errorf("%s %s: max RSS %d KiB", cmd, tc.name, rss)
			}
		}
	}
}

// TestVerifyLargeLogBounded: verify streams a 1 GB log: its memory is
// bounded by a batch and the longest line, not by the log.
func TestVerifyLargeLogBounded(t *testing.T) {
	requireRoot(t) // not for privileges: to keep the 1 GB off developer runs without CI or root
	base := filepath.Join(testDir(t), "large.jsonl")
	skey, vkey, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	w, err := sink.Open(sink.Options{Base: base, Signer: signer, VerifierKey: vkey, Version: "test",
		Encoder: record.NewEncoder("host", "boot", 0, nil), CheckpointRecords: 100000})
	if err != nil {
		t.Fatal(err)
	}
	path := strings.Repeat("/very/long/directory/name", 160) // 4000 bytes: few records per GB
	ev := &record.Event{Kind: record.KindOpen, Proc: record.Proc{Pid: 42, Tid: 42, Comm: "cat",
		ExecID: record.ExecID{Pid: 42, Start: 7, Seq: 1}, ParentExecID: record.ExecID{Pid: 1, Start: 1, Seq: 1}},
		Open: record.Open{Syscall: "openat", Dirfd: -100, Path: path, Ret: 3}}
	var size int64
	for size < 1<<30 {
		for range 10000 {
			ev.Ktime++
			if err := w.AppendEvent(ev); err != nil {
				t.Fatal(err)
			}
		}
		info, err := os.Stat(w.Path())
		if err == nil {
			size = info.Size()
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(testDir(t), "large.pub")
	os.WriteFile(pub, []byte(vkey+"\n"), 0o600)
	c := exec.Command(agentBin, "verify", "--pubkey", pub, base)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	rss := c.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB
	t.Logf("verify of a %d MB log: max RSS %d MiB", size>>20, rss>>10)
	if rss > 128<<10 {
		t.Errorf("verify of a %d MB log used %d MiB", size>>20, rss>>10)
	}
}
