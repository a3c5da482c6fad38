package integration

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestOutsideProcessNotTraced: while the helper opens a file 40 times in
// the session, the test process opens the same file concurrently. Only the
// helper's 40 opens are in the log.
func TestOutsideProcessNotTraced(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	marker := filepath.Join(dir, "shared-marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	var outside atomic.Int64
	started, stop := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if f, err := os.Open(marker); err == nil {
				f.Close()
				outside.Add(1)
			}
			if i == 0 {
				close(started)
			}
		}
	}()
	// The outside opens run before, during and after the session.
	<-started
	const n = 40
	s := agent(t, dir, runOpts{helper: "repeat-open"}, helperBin, marker, "40")
	close(stop)
	wg.Wait()
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	pid, _ := ops(t, s.result(t))
	if outside.Load() == 0 {
		t.Fatal("the test process could not open the marker: the check below would prove nothing")
	}

	opens := s.find("open", openOf(marker))
	if len(opens) != n {
		t.Fatalf("want exactly the helper's %d opens of the marker, got %d (the test process opened it %d times meanwhile):\n%s", n, len(opens), outside.Load(), s.dump(opens))
	}
	for _, r := range opens {
		if r.Proc.Pid != pid || r.Open.Syscall != "open" || r.Open.Ret < 0 {
			t.Errorf("an open of the marker that is not the helper's raw open(2):\n%s", r.line)
		}
	}
	for _, r := range s.recs {
		if r.Proc.Pid == os.Getpid() {
			t.Errorf("a record of the test process, which is outside the session:\n%s", r.line)
		}
	}
}

// TestCgroupMove: the traced process creates a child of its own cgroup and
// moves itself there. It stays traced, and its records name the new cgroup.
func TestCgroupMove(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	marker := filepath.Join(dir, "after-move")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := agent(t, dir, runOpts{helper: "cgmove"}, helperBin, marker)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid, all := ops(t, res)
	session := s.start().Cgroup
	before, after := res["cgroup_before"].(string), res["cgroup_after"].(string)
	if before != session || after != session+"/moved" {
		t.Fatalf("helper moved from %q to %q; want from the session cgroup %q to %q/moved", before, after, session, session)
	}
	fd := wantOp(t, all, "open", 0).Ret

	r := s.one(t, "open", openOf(marker))
	wantBody(t, r, obj{"syscall": "open", "dirfd": -100, "path": marker, "flags": []string{"O_RDONLY"}, "flags_raw": 0, "mode": "0", "fd": fd, "ret": fd,
		"file": fileOf(t, marker)})
	if r.Proc.Pid != pid || r.Proc.Cgroup != after || r.Proc.CgroupID != uint64(num(t, res, "cgroup_after_id")) {
		t.Errorf("open after the move: pid %d cgroup %q cgroup_id %d; want %d %q %d", r.Proc.Pid, r.Proc.Cgroup, r.Proc.CgroupID, pid, after, num(t, res, "cgroup_after_id"))
	}
	// Before the move, the same process was in the session cgroup.
	exec := s.one(t, "exec", byPid(pid))
	if exec.Proc.Cgroup != session || exec.Proc.CgroupID != s.start().CgroupID {
		t.Errorf("exec before the move: cgroup %q id %d, want the session's %q %d", exec.Proc.Cgroup, exec.Proc.CgroupID, session, s.start().CgroupID)
	}
	exit := s.one(t, "exit", byPid(pid))
	if exit.Proc.Cgroup != after || !strings.HasPrefix(exit.Proc.Cgroup, session+"/") {
		t.Errorf("exit after the move: cgroup %q, want %q", exit.Proc.Cgroup, after)
	}
}
