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

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/record"
)

// daemonRecords are the start, stop and gap records of a daemon's log, in
// order, and its open records of one path.
type daemonRecords struct {
	starts []*record.Start
	stops  []*record.Stop
	gaps   []*record.Gap
	opens  int
}

func readDaemonLog(t *testing.T, base, path string) daemonRecords {
	t.Helper()
	var out daemonRecords
	for _, r := range decodeLog(t, base) {
		switch b := r.Body.(type) {
		case *record.Start:
			out.starts = append(out.starts, b)
		case *record.Stop:
			out.stops = append(out.stops, b)
		case *record.Gap:
			out.gaps = append(out.gaps, b)
		case *record.Open:
			if b.Path == path {
				out.opens++
			}
		}
	}
	return out
}

func (e *daemonEnv) verify(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(agentBin, "verify", "--pubkey", e.pubPath, filepath.Join(e.logDir, "audit.jsonl")).CombinedOutput()
	if err != nil {
		t.Fatalf("agenttrace verify: %v\n%s", err, out)
	}
	return string(out)
}

// TestDaemonRestartPinned: SIGTERM leaves the kernel side pinned and
// recording; what a traced process does while no daemon runs is in the log
// once the next daemon adopts it, with nothing lost and nothing twice; the
// start records say created, then adopted; `agenttrace daemon stop` ends it
// for good (released, the pins gone).
func TestDaemonRestartPinned(t *testing.T) {
	e := newDaemonEnv(t)
	e.writeConfig(t, e.daemonConfig([]string{e.pattern("agent-*")}, ""))
	target := uniqueFile(t, t.TempDir(), "pinned")
	d := e.startDaemon(t)
	e.mkdir(t, "agent-1")
	e.runIn(t, "agent-1", "repeat-open", target, "200")
	d.stop(t)
	pinned := loader.PinDir(e.stateDir)
	if !dirExists(pinned) {
		t.Fatalf("after SIGTERM nothing is pinned in %s", pinned)
	}

	// No daemon: the kernel side records into its ring.
	e.runIn(t, "agent-1", "repeat-open", target, "300")

	d2 := e.startDaemon(t)
	e.runIn(t, "agent-1", "repeat-open", target, "100")
	time.Sleep(300 * time.Millisecond)
	out, err := exec.Command(agentBin, "daemon", "stop", "--config", e.cfgPath).CombinedOutput()
	if err != nil {
		t.Fatalf("agenttrace daemon stop: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "stopped and released its kernel side") {
		t.Fatalf("agenttrace daemon stop said %q", out)
	}
	select {
	case <-d2.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the daemon did not exit after agenttrace daemon stop")
	}
	if dirExists(pinned) {
		t.Fatalf("%s is still there after agenttrace daemon stop", pinned)
	}

	e.verify(t)
	got := readDaemonLog(t, filepath.Join(e.logDir, "audit.jsonl"), target)
	if got.opens != 600 {
		t.Errorf("%d open records of %s, made 600 (200 traced, 300 with no daemon, 100 after)", got.opens, target)
	}
	for _, g := range got.gaps {
		t.Errorf("gap record: %+v", g)
	}
	if len(got.starts) != 2 || got.starts[0].KernelState != "created" || got.starts[1].KernelState != "adopted" {
		t.Fatalf("start records %+v: want created, then adopted", got.starts)
	}
	if len(got.stops) != 2 || got.stops[0].KernelState != "kept" || got.stops[1].KernelState != "released" {
		t.Fatalf("stop records %+v: want kept, then released", got.stops)
	}
	if got.starts[1].ResumeError != "" {
		t.Errorf("the adoption could not match the log: %s", got.starts[1].ResumeError)
	}
	// The second daemon wrote what the first left in the ring.
	if n := got.stops[1].Records["open"]; n < 400 {
		t.Errorf("the adopting daemon wrote %d opens, want at least the 400 made after the first stopped", n)
	}

	// Nothing pinned, no daemon: daemon stop says so and succeeds.
	out, err = exec.Command(agentBin, "daemon", "stop", "--config", e.cfgPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nothing to stop") {
		t.Fatalf("agenttrace daemon stop with nothing running: %v\n%s", err, out)
	}
}

// startFlood starts testdata/flood (OPENS opens, nothing else) in the
// cgroup rel, placed there by clone3: it never runs elsewhere.
func (e *daemonEnv) startFlood(t *testing.T, rel string, opens int) *exec.Cmd {
	t.Helper()
	fd, err := unix.Open(e.cg(rel), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	cmd := exec.Command(flood(t), strconv.Itoa(opens), "0", "0", "1")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd
}

// TestDaemonKillFloodExact: the daemon is killed (SIGKILL) ten times at
// random moments while a flood runs in a traced cgroup, and restarted
// after a random pause each time; then stopped for good. Records plus
// counted losses equal what the flood made, exactly, per kind: a kill
// loses nothing the ring holds (what the killed daemon read and had not
// written is still there, uncommitted), writes nothing twice (what it
// wrote and had not committed is recognised by cpu, kind and kseq), and
// the ring's overflow while no daemon reads is counted by the kernel.
func TestDaemonKillFloodExact(t *testing.T) {
	e := newDaemonEnv(t)
	e.writeConfig(t, e.daemonConfig([]string{e.pattern("agent-*")}, ""))
	d := e.startDaemon(t)
	e.mkdir(t, "agent-1")
	const opens = 600_000
	fl := e.startFlood(t, "agent-1", opens)
	floodDone := make(chan error, 1)
	go func() { floodDone <- fl.Wait() }()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	kills := 0
	for ; kills < 10; kills++ {
		time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		d = e.startDaemon(t)
	}
	select {
	case err := <-floodDone:
		if err != nil {
			t.Fatalf("flood: %v", err)
		}
	case <-time.After(5 * time.Minute):
		t.Fatal("the flood did not end within 5 minutes")
	}
	time.Sleep(500 * time.Millisecond)
	if out, err := exec.Command(agentBin, "daemon", "stop", "--config", e.cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("agenttrace daemon stop: %v\n%s", err, out)
	}
	<-d.done

	e.verify(t)
	base := filepath.Join(e.logDir, "audit.jsonl")
	a := accountLog(t, base)
	checkIdentity(t, a, map[string]uint64{"open": opens, "exec": 1, "exit": 1})
	got := readDaemonLog(t, base, "")
	adopted, reread := 0, uint64(0)
	for _, s := range got.starts {
		if s.KernelState == "adopted" {
			adopted++
		}
		if s.ResumeError != "" {
			t.Errorf("an adoption could not match the log: %s", s.ResumeError)
		}
	}
	for _, s := range got.stops {
		reread += s.Reread
	}
	if adopted != kills {
		t.Errorf("%d of %d starts adopted the kernel side", adopted, kills)
	}
	t.Logf("%d kills; %d records read again and not written twice; gaps by stage %v", kills, reread, a.stages)
}

// TestDaemonReplacesOtherBuild: a daemon started with another kernel side
// pinned for its state directory (another build, or here another ring
// size) replaces it once its own hooks are attached, and counts what the
// old one matched and no log shows in a gap record: exactly what a flood
// made while no daemon ran (its exec, its opens, its exit).
func TestDaemonReplacesOtherBuild(t *testing.T) {
	e := newDaemonEnv(t)
	e.writeConfig(t, e.daemonConfig([]string{e.pattern("agent-*")}, ""))
	d := e.startDaemon(t)
	e.mkdir(t, "agent-1")
	d.stop(t)
	const opens = 1000
	if err := e.startFlood(t, "agent-1", opens).Wait(); err != nil {
		t.Fatal(err)
	}
	e.writeConfig(t, e.daemonConfig([]string{e.pattern("agent-*")}, "", "ring_size: 8MiB"))
	d = e.startDaemon(t)
	entries, err := os.ReadDir(loader.PinDir(e.stateDir))
	if err != nil || len(entries) != 1 {
		t.Fatalf("pinned kernel sides after the replacement: %v (%v)", entries, err)
	}
	d.stop(t)
	e.verify(t)
	got := readDaemonLog(t, filepath.Join(e.logDir, "audit.jsonl"), "")
	if len(got.starts) != 2 || got.starts[1].KernelState != "replaced" {
		t.Fatalf("start records %+v: want created, then replaced", got.starts)
	}
	var unread uint64
	for _, g := range got.gaps {
		if strings.Contains(g.Reason, "another build or configuration was replaced") {
			unread += g.Lost["unknown"]
		}
	}
	if unread != opens+2 {
		t.Fatalf("the replaced kernel side's gap counts %d events, the flood made %d (its exec, %d opens, its exit)", unread, opens+2, opens)
	}
}
