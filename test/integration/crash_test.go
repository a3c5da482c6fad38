package integration

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
)

// TestCrashRecovery kills `agenttrace run` with SIGKILL at random moments
// while its command keeps the tracer busy, 20 times over the same log; after
// every other kill it also simulates a power loss, cutting the last segment
// at a random byte after its last checkpoint (what was not yet fsynced). It
// then checks that the whole log verifies: every crash is either a clean cut
// between records or a torn tail acknowledged by the next segment's
// recovery record, and no byte left on disk was changed.
func TestCrashRecovery(t *testing.T) {
	requireRoot(t)
	mount, err := cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	base := filepath.Join(dir, "audit.jsonl")
	busy := `while :; do cat /etc/hostname >/dev/null; done`
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	snapshots := map[string][]byte{}
	torn := 0

	for i := 0; i < 20; i++ {
		cmd := exec.Command(agentBin, "run", "--log", base, "--checkpoint-records", "500", "--", "sh", "-c", busy)
		// A file, not a pipe: the session's processes outlive agenttrace
		// and would hold a pipe open, so Wait would never return.
		stderr, err := os.Create(filepath.Join(dir, "stderr"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Whatever happens to the test, the busy loop must not outlive it.
		t.Cleanup(func() { killSession(t, mount, cmd.Process.Pid) })
		time.Sleep(time.Duration(150+rng.IntN(600)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		killSession(t, mount, cmd.Process.Pid)
		stderr.Close()
		if said, _ := os.ReadFile(stderr.Name()); len(said) > 0 {
			t.Logf("crash %d: agenttrace said: %s", i, said)
		}
		if files, _ := logfile.Segments(base); i%2 == 1 && len(files) > 0 {
			// Only the segment this run wrote can lose unsynced bytes.
			if last := files[len(files)-1]; snapshots[last] == nil {
				powerLoss(t, last, rng)
			}
		}

		files, _ := logfile.Segments(base)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if old, ok := snapshots[f]; ok && !bytes.Equal(old, data) {
				t.Fatalf("crash %d: segment %s changed after it was written", i, f)
			}
			if _, ok := snapshots[f]; !ok && len(data) > 0 && data[len(data)-1] != '\n' {
				torn++
			}
			snapshots[f] = data
		}
	}

	// A clean run continues the log and acknowledges the last crash.
	if out, err := exec.Command(agentBin, "run", "--log", base, "--", "true").CombinedOutput(); err != nil {
		t.Fatalf("clean run after the crashes: %v\n%s", err, out)
	}
	out, err := exec.Command(agentBin, "verify", base).CombinedOutput()
	if err != nil {
		t.Fatalf("verify after 20 crashes: %v\n%s", err, out)
	}
	files, _ := logfile.Segments(base)
	for f, old := range snapshots {
		data, _ := os.ReadFile(f)
		if !bytes.Equal(old, data) {
			t.Fatalf("segment %s changed", f)
		}
	}
	// Every crashed segment (all but the clean run's) is recovered; the
	// torn ones with their bytes.
	if got := strings.Count(string(out), "recovered:"); got != len(files)-1 {
		t.Fatalf("verify reports %d recovered segments, %d segments ended in a crash:\n%s", got, len(files)-1, out)
	}
	if got := strings.Count(string(out), "torn bytes at offset"); got != torn {
		t.Fatalf("verify reports %d recovered torn tails, %d segments ended torn:\n%s", got, torn, out)
	}
	t.Logf("20 crashes: %d segments, %d torn tails recovered\n%s", len(files), torn, out)
}

// powerLoss cuts a segment at a random offset after the end of its last
// checkpoint (or its header and recovery record, which are fsynced when the
// segment is created): the bytes a power loss can take.
func powerLoss(t *testing.T, last string, rng *rand.Rand) {
	t.Helper()
	data, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	durable := 0
	for off := 0; off < len(data); {
		n := bytes.IndexByte(data[off:], '\n')
		if n < 0 {
			break
		}
		if env, err := record.ParseEnvelope(data[off : off+n+1]); err == nil && (env.Type == "checkpoint" || env.Type == "header" || env.Type == "recovery") {
			durable = off + n + 1
		}
		off += n + 1
	}
	if durable >= len(data) {
		return
	}
	cut := durable + 1 + rng.IntN(len(data)-durable)
	if err := os.Truncate(last, int64(cut)); err != nil {
		t.Fatal(err)
	}
}

// killSession kills what a killed `agenttrace run` (pid) left in its
// session cgroup and removes the cgroup.
func killSession(t *testing.T, mount string, pid int) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(mount, "agenttrace", "run-*-"+strconv.Itoa(pid)))
	for _, cg := range matches {
		os.WriteFile(filepath.Join(cg, "cgroup.kill"), []byte("1"), 0)
		for j := 0; j < 500; j++ {
			data, _ := os.ReadFile(filepath.Join(cg, "cgroup.events"))
			if bytes.Contains(data, []byte("populated 0")) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		removeTree(cg)
	}
}

func removeTree(dir string) {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		syscall.Rmdir(dirs[i])
	}
}
