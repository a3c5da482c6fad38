package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitStatus: agenttrace exits with the command's code, or 128+signal,
// and the exit and stop records say the same; a command that does not exist
// is 127 with "command not found" and leaves no file. An existing --log is
// never overwritten: a file that is not an agenttrace log makes the run fail
// before the command starts; an agenttrace log is continued in a new
// segment chained to its last line, the existing file untouched.
func TestExitStatus(t *testing.T) {
	requireRoot(t)
	t.Parallel()

	t.Run("code", func(t *testing.T) {
		t.Parallel()
		s := agent(t, testDir(t), runOpts{helper: "exit"}, helperBin, "3")
		if s.exit != 3 {
			t.Fatalf("agenttrace exited %d, want 3:\n%s", s.exit, s.stderr)
		}
		cmd := s.one(t, "exec", func(r *rec) bool { return r.Exec.Filename == helperBin })
		wantBody(t, s.one(t, "exit", byPid(cmd.Proc.Pid)), obj{"status": 3 << 8, "code": 3})
		if stop := s.stop(); stop.ExitCode != 3 || stop.LeftRunning != 0 {
			t.Errorf("stop record: exit_code %d left_running %d, want 3 and 0", stop.ExitCode, stop.LeftRunning)
		}
	})

	t.Run("sigkill", func(t *testing.T) {
		t.Parallel()
		s := agent(t, testDir(t), runOpts{helper: "sigkill"}, helperBin)
		if s.exit != 128+9 {
			t.Fatalf("agenttrace exited %d, want 137:\n%s", s.exit, s.stderr)
		}
		pid := num(t, s.result(t), "pid")
		wantBody(t, s.one(t, "exit", byPid(pid)), obj{"status": 9, "signal": "SIGKILL", "signal_num": 9})
		if stop := s.stop(); stop.ExitCode != 137 {
			t.Errorf("stop record: exit_code %d, want 137", stop.ExitCode)
		}
	})

	t.Run("not-found", func(t *testing.T) {
		t.Parallel()
		dir := testDir(t)
		for _, name := range []string{filepath.Join(dir, "no-such-command"), "agenttrace-no-such-command-" + filepath.Base(dir)} {
			s := agent(t, dir, runOpts{noLog: true}, name, "arg")
			if s.exit != 127 {
				t.Errorf("%s: agenttrace exited %d, want 127:\n%s", name, s.exit, s.stderr)
			}
			if want := "agenttrace: " + name + ": command not found\n"; s.stderr != want {
				t.Errorf("%s: stderr %q, want %q", name, s.stderr, want)
			}
			// Nothing is created: no log, no key.
			if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
				t.Errorf("%s: the run left files behind: %v %v", name, entries, err)
			}
		}
	})

	t.Run("log-exists-foreign", func(t *testing.T) {
		t.Parallel()
		dir := testDir(t)
		logPath := filepath.Join(dir, "existing.jsonl")
		content := []byte("{\"precious\":true}\n")
		if err := os.WriteFile(logPath, content, 0o600); err != nil {
			t.Fatal(err)
		}
		marker := filepath.Join(dir, "command-ran")
		s := agent(t, dir, runOpts{helper: "touch", log: logPath, noLog: true}, helperBin, marker)
		if s.exit != 1 {
			t.Errorf("agenttrace exited %d, want 1", s.exit)
		}
		if want := "agenttrace: cannot continue log " + logPath + ": "; !strings.HasPrefix(s.stderr, want) || !strings.Contains(s.stderr, "not an agenttrace log") {
			t.Errorf("stderr %q, want %q... not an agenttrace log", s.stderr, want)
		}
		got, err := os.ReadFile(logPath)
		if err != nil || string(got) != string(content) {
			t.Errorf("existing file changed: %q, %v; want %q", got, err, content)
		}
		// The command did not run, and nothing else was written.
		if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
			t.Errorf("want only the existing file in %s, found %v %v", dir, entries, err)
		}
	})

	t.Run("log-exists-continued", func(t *testing.T) {
		t.Parallel()
		dir := testDir(t)
		first := agent(t, dir, runOpts{helper: "true"}, helperBin)
		before, err := os.ReadFile(first.logPath)
		if err != nil {
			t.Fatal(err)
		}
		marker := filepath.Join(dir, "second-run")
		second := agent(t, dir, runOpts{helper: "touch", noLog: true}, helperBin, marker)
		if second.exit != 0 {
			t.Fatalf("second run on an existing log exited %d:\n%s", second.exit, second.stderr)
		}
		after, err := os.ReadFile(first.logPath)
		if err != nil || string(after) != string(before) {
			t.Fatalf("the existing log changed (%v): %d bytes before, %d after", err, len(before), len(after))
		}
		// The run continues the log in a new segment, chained to the last line.
		segment := strings.TrimSuffix(first.logPath, ".jsonl") + ".000002.jsonl"
		data, err := os.ReadFile(segment)
		if err != nil {
			t.Fatalf("the continued log's second segment: %v\n%s", err, second.stderr)
		}
		last := first.lines[len(first.lines)-1]
		sum := sha256.Sum256(append(last[:len(last):len(last)], '\n'))
		_, recs := checkSegment(t, data, first.recs[len(first.recs)-1].Seq+1, hex.EncodeToString(sum[:]))
		if len(s2open(recs, marker)) != 1 {
			t.Errorf("the second segment has no record of the second run's command")
		}
		verifyLog(t, first.logPath)
	})
}

// s2open returns the open records of path.
func s2open(recs []*rec, path string) []*rec {
	var out []*rec
	for _, r := range recs {
		if r.Type == "open" && r.Open.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// TestPipeline: `sh -c 'cat < A | cat > B'`: the shell forks one child per
// command, each opens its redirection before exec. Each child's records
// carry the shell's exec_id as parent_exec_id; before exec, the fork
// record's child_exec_id as exec_id.
func TestPipeline(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	if err := os.WriteFile(in, []byte("piped\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := "cat < " + in + " | cat > " + out
	s := agent(t, dir, runOpts{}, "sh", "-c", script)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	if data, err := os.ReadFile(out); err != nil || string(data) != "piped\n" {
		t.Fatalf("the pipeline did not run: %q, %v", data, err)
	}
	shell := s.one(t, "exec", func(r *rec) bool {
		return len(r.Exec.Argv) == 3 && r.Exec.Argv[0] == "sh" && r.Exec.Argv[2] == script
	})
	forks := s.find("fork", func(r *rec) bool { return r.Proc.ExecID == shell.Proc.ExecID })
	if len(forks) != 2 {
		t.Fatalf("want 2 forks by the shell, got %d:\n%s", len(forks), s.dump(forks))
	}
	for _, path := range []string{in, out} {
		open := s.one(t, "open", openOf(path))
		fork := s.one(t, "fork", func(r *rec) bool { return r.Fork.ChildPid == open.Proc.Pid })
		if fork.Proc.ExecID != shell.Proc.ExecID {
			t.Errorf("%s opened by pid %d, forked by %q, not the shell %q", path, open.Proc.Pid, fork.Proc.ExecID, shell.Proc.ExecID)
		}
		if open.Proc.ExecID != fork.Fork.ChildExecID {
			t.Errorf("%s: open before exec has exec_id %q, fork says child_exec_id %q", path, open.Proc.ExecID, fork.Fork.ChildExecID)
		}
		if open.Proc.ParentExecID != shell.Proc.ExecID || open.Proc.Ppid != shell.Proc.Pid {
			t.Errorf("%s: open has parent_exec_id %q ppid %d, want the shell's %q %d", path, open.Proc.ParentExecID, open.Proc.Ppid, shell.Proc.ExecID, shell.Proc.Pid)
		}
		cat := s.one(t, "exec", byPid(open.Proc.Pid))
		if cat.Exec.Ret != 0 || len(cat.Exec.Argv) != 1 || cat.Exec.Argv[0] != "cat" || cat.Proc.ParentExecID != shell.Proc.ExecID {
			t.Errorf("%s: exec of cat: %s", path, cat.line)
		}
		exit := s.one(t, "exit", byPid(open.Proc.Pid))
		wantBody(t, exit, obj{"status": 0, "code": 0})
		if exit.Proc.ExecID != cat.Proc.ExecID || exit.Proc.ParentExecID != shell.Proc.ExecID {
			t.Errorf("%s: exit of cat has exec_id %q parent_exec_id %q, want %q %q", path, exit.Proc.ExecID, exit.Proc.ParentExecID, cat.Proc.ExecID, shell.Proc.ExecID)
		}
	}
}

// TestDoubleFork: fork, setsid, fork, and the middle process exits before
// the grandchild acts. The grandchild, reparented, still names the middle
// process as its creator.
func TestDoubleFork(t *testing.T) {
	requireRoot(t)
	bin := requireC(t, forkBin)
	t.Parallel()
	dir := testDir(t)
	childPath, grandchildPath := filepath.Join(dir, "child"), filepath.Join(dir, "grandchild")
	for _, p := range []string{childPath, grandchildPath} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := agent(t, dir, runOpts{}, bin, childPath, grandchildPath)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	if len(s.results) != 3 {
		t.Fatalf("want 3 result lines, got:\n%s", s.stdout)
	}
	roles := map[string]map[string]any{}
	for _, r := range s.results {
		roles[r["role"].(string)] = r
	}
	parentPid := num(t, roles["parent"], "pid")
	childPid := num(t, roles["child"], "pid")
	grandchildPid := num(t, roles["grandchild"], "pid")
	if num(t, roles["parent"], "child_status") != 5<<8 || num(t, roles["grandchild"], "ppid") == childPid {
		t.Fatalf("the helper did not run as planned: %v", s.results)
	}

	parent := s.one(t, "exec", byPid(parentPid))
	fork1 := s.one(t, "fork", byPid(parentPid))
	fork2 := s.one(t, "fork", byPid(childPid))
	if fork1.Fork.ChildPid != childPid || fork2.Fork.ChildPid != grandchildPid {
		t.Fatalf("fork records do not match the helper's pids %v:\n%s%s", s.results, fork1.line, fork2.line)
	}
	if fork1.Proc.ExecID != parent.Proc.ExecID || fork2.Proc.ExecID != fork1.Fork.ChildExecID {
		t.Errorf("fork records: %q forked %q; %q forked %q; want the parent %q then the child", fork1.Proc.ExecID, fork1.Fork.ChildExecID, fork2.Proc.ExecID, fork2.Fork.ChildExecID, parent.Proc.ExecID)
	}

	child := s.one(t, "open", openOf(childPath))
	if child.Proc.Pid != childPid || child.Proc.ExecID != fork1.Fork.ChildExecID || child.Proc.ParentExecID != parent.Proc.ExecID {
		t.Errorf("child open: pid %d exec_id %q parent_exec_id %q; want %d %q %q", child.Proc.Pid, child.Proc.ExecID, child.Proc.ParentExecID, childPid, fork1.Fork.ChildExecID, parent.Proc.ExecID)
	}
	grandchild := s.one(t, "open", openOf(grandchildPath))
	if grandchild.Proc.Pid != grandchildPid || grandchild.Proc.ExecID != fork2.Fork.ChildExecID || grandchild.Proc.ParentExecID != fork1.Fork.ChildExecID {
		t.Errorf("grandchild open: pid %d exec_id %q parent_exec_id %q; want %d %q %q", grandchild.Proc.Pid, grandchild.Proc.ExecID, grandchild.Proc.ParentExecID, grandchildPid, fork2.Fork.ChildExecID, fork1.Fork.ChildExecID)
	}
	// Reparented: the current parent is no longer the creator.
	if grandchild.Proc.Ppid == childPid {
		t.Errorf("grandchild open: ppid %d is still the exited child's", grandchild.Proc.Ppid)
	}

	wantBody(t, s.one(t, "exit", byPid(childPid)), obj{"status": 5 << 8, "code": 5})
	wantBody(t, s.one(t, "exit", byPid(grandchildPid)), obj{"status": 0, "code": 0})
	wantBody(t, s.one(t, "exit", byPid(parentPid)), obj{"status": 0, "code": 0})
	for _, pid := range []int{childPid, grandchildPid} {
		if n := len(s.find("exec", byPid(pid))); n != 0 {
			t.Errorf("pid %d never execs, but has %d exec records", pid, n)
		}
	}
}
