package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/logfile"
)

var (
	floodOnce sync.Once
	floodBin  string
	floodErr  error
)

// flood builds testdata/flood.c, statically: a dynamic loader would add
// opens the generator does not count.
func flood(t *testing.T) string {
	t.Helper()
	floodOnce.Do(func() {
		bin := filepath.Join(baseDir, "bin", "flood")
		out, err := exec.Command("gcc", "-O2", "-Wall", "-Werror", "-static", "-o", bin, filepath.Join("testdata", "flood.c")).CombinedOutput()
		if err != nil {
			floodErr = fmt.Errorf("gcc -static testdata/flood.c (needs libc6-dev): %v\n%s", err, out)
			return
		}
		floodBin = bin
	})
	if floodErr != nil {
		t.Fatal(floodErr)
	}
	return floodBin
}

// accounting is what a log says about each record kind.
type accounting struct {
	records  map[string]uint64            // event records by type
	gapped   map[string]uint64            // events counted in gap records, by kind
	stages   map[string]uint64            // gap counts by stage
	types    map[string]int               // every record type
	gaps     []map[string]json.RawMessage // the gap objects
	restarts int
}

func restarted(line []byte) bool {
	for _, e := range []string{"ERESTARTSYS", "ERESTARTNOINTR", "ERESTARTNOHAND", "ERESTART_RESTARTBLOCK"} {
		if bytes.Contains(line, []byte(`"errno":"`+e+`"`)) {
			return true
		}
	}
	return false
}

func account(t *testing.T, path string) accounting {
	t.Helper()
	// Complete lines only: a writer killed (SIGKILL) in a write leaves a
	// torn tail, which is no record (the next writer's recovery record
	// says so, and the record is written again from the ring).
	f, err := logfile.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := accounting{records: map[string]uint64{}, gapped: map[string]uint64{}, stages: map[string]uint64{}, types: map[string]int{}}
	for {
		line, err := f.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Type string `json:"type"`
			Gap  *struct {
				Stage string            `json:"stage"`
				Lost  map[string]uint64 `json:"lost"`
			} `json:"gap"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		a.types[r.Type]++
		switch r.Type {
		case "exec", "open", "connect", "fork", "exit", "sock_state":
			// A syscall the freezer interrupted is recorded twice: once with
			// a kernel-internal restart errno, once when the kernel redoes it.
			if !restarted(line) {
				a.records[r.Type]++
			} else {
				a.restarts++
			}
		case "gap":
			for kind, n := range r.Gap.Lost {
				a.gapped[kind] += n
				a.stages[r.Gap.Stage] += n
			}
			var raw map[string]json.RawMessage
			json.Unmarshal(line, &raw)
			a.gaps = append(a.gaps, raw)
		}
	}
	return a
}

// accountLog is account over every segment of the log at base.
func accountLog(t *testing.T, base string) accounting {
	t.Helper()
	total := accounting{records: map[string]uint64{}, gapped: map[string]uint64{}, stages: map[string]uint64{}, types: map[string]int{}}
	files, _ := logfile.Segments(base)
	for _, f := range files {
		a := account(t, f)
		for k, n := range a.records {
			total.records[k] += n
		}
		for k, n := range a.gapped {
			total.gapped[k] += n
		}
		for k, n := range a.stages {
			total.stages[k] += n
		}
		for k, n := range a.types {
			total.types[k] += n
		}
		total.gaps = append(total.gaps, a.gaps...)
	}
	return total
}

// floodExpect is what `flood OPENS EXECS CONNECTS` makes, per record kind,
// counting the exec of flood itself and its exit. Every connect is refused:
// its outcome is a sock_state record.
func floodExpect(opens, execs, connects uint64) map[string]uint64 {
	return map[string]uint64{"open": opens, "exec": execs + 1, "connect": connects, "fork": execs, "exit": execs + 1, "sock_state": connects}
}

// checkIdentity asserts, per kind: records + gap counts == generated, exactly.
func checkIdentity(t *testing.T, a accounting, want map[string]uint64) {
	t.Helper()
	for kind, n := range want {
		if got := a.records[kind] + a.gapped[kind]; got != n {
			t.Errorf("%s: %d records + %d in gaps = %d, generated %d", kind, a.records[kind], a.gapped[kind], got, n)
		}
	}
	if a.stages["accounting"] != 0 {
		t.Errorf("%d events the pipeline could not account for", a.stages["accounting"])
	}
	t.Logf("generated %v; records %v; gap-counted %v by stage %v", want, a.records, a.gapped, a.stages)
}

func runFlood(t *testing.T, log string, flags []string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(agentBin, append(append([]string{"run", "--log", log}, flags...), append([]string{"--", flood(t)}, args...)...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("agenttrace run: %v\n%s", err, stderr.Bytes())
	}
	if verify, err := exec.Command(agentBin, "verify", log).CombinedOutput(); err != nil {
		t.Fatalf("verify: %v\n%s", err, verify)
	}
	return out
}

// TestFloodLossAccounted: a generator floods a deliberately tiny ring
// buffer drained by a deliberately slowed writer, so that thousands of
// events are lost in the kernel; every one of them is in a gap record.
func TestFloodLossAccounted(t *testing.T) {
	requireRoot(t)
	log := filepath.Join(testDir(t), "flood.jsonl")
	// Port 1 on loopback: nothing listens, connects fail fast with ECONNREFUSED.
	out := runFlood(t, log, []string{"--ring-size", "262144", "--debug-write-delay", "20us"}, "30000", "300", "3000", "1")
	if string(out) != "open 30000 exec 300 connect 3000\n" {
		t.Fatalf("flood said %q", out)
	}
	a := account(t, log)
	checkIdentity(t, a, floodExpect(30000, 300, 3000))
	if a.stages["kernel"] < 1000 {
		t.Fatalf("only %d events lost in the kernel: the test did not overflow the ring", a.stages["kernel"])
	}
	for _, g := range a.gaps {
		var body map[string]json.RawMessage
		json.Unmarshal(g["gap"], &body)
		for _, key := range []string{"stage", "reason", "lost", "from", "to"} {
			if _, ok := body[key]; !ok {
				t.Fatalf("gap record without %q: %s", key, g["gap"])
			}
		}
	}
}

// TestFloodZeroLossDefault: the same generator at full speed with default
// settings loses nothing.
func TestFloodZeroLossDefault(t *testing.T) {
	requireRoot(t)
	log := filepath.Join(testDir(t), "flood.jsonl")
	runFlood(t, log, nil, "100000", "500", "10000", "1")
	a := account(t, log)
	checkIdentity(t, a, floodExpect(100000, 500, 10000))
	if a.types["gap"] != 0 {
		t.Fatalf("%d gap records with default settings: %v", a.types["gap"], a.gaps)
	}
}

// TestFailClosed: with a small ring and the slowed writer of the flood
// test, fail-closed mode freezes the generator instead of losing events.
// The ring (1 MiB) leaves three quarters above the freeze watermark for
// what the generator makes before the freeze takes hold: its 50 execs
// alone take 420 KiB (8.4 KiB each), and on a loaded machine (CI runs a
// second suite beside this one) the guard's 1 ms poll can be late by
// several milliseconds. With 256 KiB that burst overflowed the ring now and
// then (20 exec, fork and exit records, counted in a gap).
func TestFailClosed(t *testing.T) {
	requireRoot(t)
	log := filepath.Join(testDir(t), "flood.jsonl")
	runFlood(t, log, []string{"--fail-closed", "--ring-size", "1048576", "--debug-write-delay", "20us"}, "10000", "50", "1000", "1")
	a := account(t, log)
	checkIdentity(t, a, floodExpect(10000, 50, 1000))
	if a.types["gap"] != 0 {
		t.Fatalf("fail-closed lost events: %v", a.gaps)
	}
	if a.types["freeze"] == 0 || a.types["freeze"] != a.types["thaw"] {
		t.Fatalf("%d freeze and %d thaw records, want as many of each and at least one", a.types["freeze"], a.types["thaw"])
	}
}

// TestDiskFull: the log's file system fills up mid-run; no partial record
// is written, the records that could not be written are counted in a gap
// record once space returns, and the log verifies.
func TestDiskFull(t *testing.T) {
	requireRoot(t)
	dir := filepath.Join(testDir(t), "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=4m"); err != nil {
		t.Fatalf("mounting a small tmpfs: %v", err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	filler := filepath.Join(dir, "filler")
	var st unix.Statfs_t
	unix.Statfs(dir, &st)
	free := int64(st.Bavail) * st.Bsize
	if err := os.WriteFile(filler, make([]byte, free-256<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "full.jsonl")
	// 20,000 opens (about 14 MB of records) into 256 KiB, a second for the
	// writer to find the disk full, then free space and 100 more.
	out := runFlood(t, log, nil, "20000", "0", "0", "1", "1000", filler, "100")
	if string(out) != "open 20100 exec 0 connect 0\n" {
		t.Fatalf("flood said %q", out)
	}
	a := account(t, log)
	checkIdentity(t, a, floodExpect(20100, 0, 0))
	if a.stages["write"] == 0 {
		t.Fatalf("no gap record for the records the full disk refused: %v", a.gaps)
	}
}

// TestKillWriterMidFlood: agenttrace is killed (SIGKILL) while a flood is
// being recorded. In `run` the kernel side and the writer are one process,
// so the kill ends tracing too: what the log must show is exactly where it
// stops. The killed segment's records are complete and chained, their kseq
// runs per CPU and kind have no hole (nothing was lost silently before the
// kill), the next run continues the log with a recovery record that counts
// the unsigned records, and the whole log verifies.
func TestKillWriterMidFlood(t *testing.T) {
	requireRoot(t)
	mount, err := cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	dir := testDir(t)
	log := filepath.Join(dir, "killed.jsonl")
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd := exec.Command(agentBin, "run", "--log", log, "--", flood(t), "5000000", "0", "0", "1")
	cmd.Stderr = stderr // a file: the flood outlives agenttrace and would hold a pipe open
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killSession(t, mount, cmd.Process.Pid) })
	// Kill once the flood is being recorded: the log has grown past its start.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if info, err := os.Stat(log); err == nil && info.Size() > 1<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the log did not grow")
		}
	}
	cmd.Process.Signal(unix.SIGKILL)
	cmd.Wait()
	killSession(t, mount, cmd.Process.Pid)

	killed, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(killed, []byte("\n"))
	complete := lines[:len(lines)-1] // the last element is "" or a torn line
	type key struct {
		cpu  uint64
		kind string
	}
	kseqs := map[key][]uint64{}
	for _, l := range complete {
		var r struct {
			Type string  `json:"type"`
			CPU  *uint64 `json:"cpu"`
			Kseq uint64  `json:"kseq"`
		}
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("a complete line of the killed segment does not parse: %v", err)
		}
		if r.CPU != nil {
			kseqs[key{*r.CPU, r.Type}] = append(kseqs[key{*r.CPU, r.Type}], r.Kseq)
		}
	}
	records := 0
	for k, seqs := range kseqs {
		slices.Sort(seqs)
		for i, s := range seqs {
			if s != uint64(i+1) {
				t.Fatalf("cpu %d %s: kseq %d where %d belongs: a record was lost before the kill", k.cpu, k.kind, s, i+1)
			}
		}
		records += len(seqs)
	}
	if records < 1000 {
		t.Fatalf("only %d kernel records before the kill", records)
	}

	if out, err := exec.Command(agentBin, "run", "--log", log, "--", "true").CombinedOutput(); err != nil {
		t.Fatalf("run after the kill: %v\n%s", err, out)
	}
	next, err := os.ReadFile(filepath.Join(dir, "killed.000002.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	second := bytes.SplitN(next, []byte("\n"), 3)[1]
	var rec struct {
		Type     string `json:"type"`
		Recovery struct {
			AfterSeq  uint64 `json:"after_seq"`
			Unsigned  uint64 `json:"unsigned_records"`
			TornBytes int    `json:"torn_bytes"`
		} `json:"recovery"`
	}
	if err := json.Unmarshal(second, &rec); err != nil || rec.Type != "recovery" {
		t.Fatalf("the continuing segment's second record is not a recovery record: %s", second)
	}
	if rec.Recovery.AfterSeq != uint64(len(complete)) || rec.Recovery.TornBytes != len(lines[len(lines)-1]) || rec.Recovery.Unsigned == 0 {
		t.Fatalf("recovery %+v, the killed segment has %d complete lines and %d torn bytes", rec.Recovery, len(complete), len(lines[len(lines)-1]))
	}
	if out, err := exec.Command(agentBin, "verify", log).CombinedOutput(); err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	t.Logf("killed after %d kernel records; recovery: %+v", records, rec.Recovery)
}

// TestRotationUnderLoad: a flood across small segments (rotation by size,
// and by time) leaves a chain that verifies across at least five segments,
// with exactly the records the generator caused.
func TestRotationUnderLoad(t *testing.T) {
	requireRoot(t)
	dir := testDir(t)
	log := filepath.Join(dir, "rot.jsonl")
	runFlood(t, log, []string{"--rotate-size", "262144", "--rotate-interval", "500ms"}, "20000", "20", "2000", "1")
	segments, _ := filepath.Glob(filepath.Join(dir, "rot*.jsonl"))
	if len(segments) < 5 {
		t.Fatalf("%d segments, want at least 5", len(segments))
	}
	total := accountLog(t, log)
	if total.types["header"] != len(segments) {
		t.Fatalf("%d headers in %d segments", total.types["header"], len(segments))
	}
	checkIdentity(t, total, floodExpect(20000, 20, 2000))
	if total.types["gap"] != 0 {
		t.Fatalf("events lost across rotation: %v", total.gapped)
	}
}
