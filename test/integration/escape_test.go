package integration

// Escapes from the trace, as an attacker inside the session would try them
// (issue 14): leaving the session's cgroup, acting through a process
// outside it, changing what names and namespaces mean, and tampering with
// the tracer. Each test asserts the exact records, and that what the
// escaped or hijacked process did afterwards is in the log.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/loader"
)

// requireEscapeC skips (fails in CI) when the escape tests' C helpers
// could not be built.
func requireEscapeC(t *testing.T) {
	t.Helper()
	if victimBin != "" {
		return
	}
	if inCI() {
		t.Fatalf("C test helpers not built; CI=true: not skipping: %v", escapeBuildErr)
	}
	t.Skipf("C test helpers not built: %v", escapeBuildErr)
}

// outside is a cgroup outside every session.
type outside struct {
	path string // absolute
	rel  string // as records name it: below the mount, with a leading /
	id   uint64
}

// outsideCgroup creates a cgroup below agenttrace-test/ that no session
// traces; the cleanup kills whatever is left in it.
func outsideCgroup(t *testing.T) outside {
	t.Helper()
	mount, err := cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	rel := fmt.Sprintf("/agenttrace-test/escape-%s-%d", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano())
	path := filepath.Join(mount, rel)
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroups(t, path) })
	return outside{path: path, rel: rel, id: cgroupIno(t, path)}
}

// body is a record's type object.
func body(r *rec) obj {
	m, _ := r.body.(map[string]any)
	return m
}

// bodyNum is an integer member of a record's type object, or -1.
func bodyNum(r *rec, key string) int {
	if v, ok := body(r)[key].(float64); ok {
		return int(v)
	}
	return -1
}

// resultWith returns the one helper result whose key is value.
func (s *session) resultWith(t *testing.T, key, value string) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, r := range s.results {
		if r[key] == value {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one helper result with %s %q, got %d:\n%s", key, value, len(found), s.stdout)
	}
	return found[0]
}

// resultWithout returns the one helper result without key.
func (s *session) resultWithout(t *testing.T, key string) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, r := range s.results {
		if _, ok := r[key]; !ok {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one helper result without %q, got %d:\n%s", key, len(found), s.stdout)
	}
	return found[0]
}

// waitGone waits until pid no longer exists.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := unix.Kill(pid, 0); err == unix.ESRCH {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d is still running after the session ended", pid)
		}
	}
}

// showJSON runs `agenttrace show --json` on the session's log.
func (s *session) showJSON(t *testing.T) map[string]any {
	t.Helper()
	out, err := exec.Command(agentBin, "show", "--json", "--pubkey", s.logPath+".pub", s.logPath).Output()
	if err != nil {
		t.Fatalf("agenttrace show --json: %v\n%s", err, out)
	}
	var rep map[string]any
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("agenttrace show --json: %v\n%s", err, out)
	}
	return rep
}

// toolCalls are the tool calls of the first session of the first log of a report.
func toolCalls(t *testing.T, rep map[string]any) []map[string]any {
	t.Helper()
	logs, _ := rep["logs"].([]any)
	if len(logs) != 1 {
		t.Fatalf("report has %d logs", len(logs))
	}
	sessions, _ := logs[0].(map[string]any)["sessions"].([]any)
	if len(sessions) != 1 {
		t.Fatalf("report has %d sessions", len(sessions))
	}
	var out []map[string]any
	calls, _ := sessions[0].(map[string]any)["tool_calls"].([]any)
	for _, c := range calls {
		out = append(out, c.(map[string]any))
	}
	return out
}

// checkEscaped checks what an escaped child did and what happened to it:
// its exec and its open of key are recorded in the cgroup outside, the
// session end killed it and counted it, it is gone, and `agenttrace show`
// has it as a tool call with its open.
func checkEscaped(t *testing.T, s *session, out outside, key string, childPid int, execIn outside) *rec {
	t.Helper()
	child := s.resultWith(t, "role", "escaped")
	if num(t, child, "pid") != childPid || child["cgroup"] != out.rel {
		t.Fatalf("the child %v is not pid %d in %s", child, childPid, out.rel)
	}
	_, childOps := ops(t, child)
	fd := wantOp(t, childOps, "open", 0).Ret

	exec := s.one(t, "exec", byPid(childPid))
	if exec.Exec.Ret != 0 || exec.Proc.CgroupID != execIn.id || exec.Proc.Cgroup != execIn.rel {
		t.Errorf("the escaped child's exec: want ret 0 in %s (%d):\n%s", execIn.rel, execIn.id, exec.line)
	}
	open := s.one(t, "open", openOf(key))
	wantBody(t, open, obj{"syscall": "open", "dirfd": -100, "path": key, "flags": []string{"O_RDONLY"}, "flags_raw": 0, "mode": "0", "fd": fd, "ret": fd,
		"file": fileOf(t, key)})
	if open.Proc.Pid != childPid || open.Proc.CgroupID != out.id || open.Proc.Cgroup != out.rel || open.Proc.ExecID != exec.Proc.ExecID {
		t.Errorf("the open of the key: want pid %d exec_id %s in %s (%d):\n%s", childPid, exec.Proc.ExecID, out.rel, out.id, open.line)
	}
	exit := s.one(t, "exit", byPid(childPid))
	wantBody(t, exit, obj{"status": 9, "signal": "SIGKILL", "signal_num": 9})
	if stop := s.stop(); stop.LeftRunning != 1 {
		t.Errorf("stop record: left_running %d, want 1 (the escaped child)", stop.LeftRunning)
	}
	waitGone(t, childPid)

	// show: the child is a tool call, with its program and the key.
	var call map[string]any
	for _, c := range toolCalls(t, s.showJSON(t)) {
		if argv, _ := c["argv"].([]any); len(argv) == 2 && (argv[0] == "escaped" || argv[0] == "escaped-wait") {
			call = c
		}
	}
	if call == nil {
		t.Fatalf("agenttrace show has no tool call of the escaped child")
	}
	text, _ := json.Marshal(call)
	if !bytes.Contains(text, []byte(strconv.Quote(key))) || !bytes.Contains(text, []byte(fmt.Sprintf(`"pid":%d`, childPid))) {
		t.Errorf("agenttrace show's tool call of the escaped child does not show pid %d or its open of %s:\n%s", childPid, key, text)
	}
	return exec
}

// opNamed returns the op called name, whatever the kernel answered.
func opNamed(t *testing.T, all map[string]helperOp, name string) helperOp {
	t.Helper()
	op, ok := all[name]
	if !ok {
		t.Fatalf("helper did not report %q: %v", name, all)
	}
	return op
}

// runEscape runs helper as the agent with a cgroup outside the session and a
// key to read, as root; the session's end kills what is left after 1 s.
func runEscape(t *testing.T, helper string) (s *session, out outside, key string) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	out = outsideCgroup(t)
	key = filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = agent(t, dir, runOpts{helper: helper, flags: []string{"--grace", "1s"}}, helperBin, out.path, key)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	return s, out, key
}

// TestEscapeCloneIntoCgroup: as root, the agent starts a child directly in
// a cgroup outside the session (clone3 with CLONE_INTO_CGROUP: no write to
// any cgroup.procs) and exits; the child reads a key and keeps running. The
// fork record names the child's cgroup, the child stays traced, the session
// end kills it and counts it, and show has it.
func TestEscapeCloneIntoCgroup(t *testing.T) {
	s, out, key := runEscape(t, "escape-clone3")
	parent := s.resultWithout(t, "role")
	agentPid, childPid := num(t, parent, "pid"), num(t, parent, "child")

	fork := s.one(t, "fork", func(r *rec) bool { return r.Fork.ChildPid == childPid })
	if fork.Proc.Pid != agentPid {
		t.Errorf("the fork of %d is by pid %d, want the agent %d:\n%s", childPid, fork.Proc.Pid, agentPid, fork.line)
	}
	wantBody(t, fork, obj{"child_pid": childPid, "child_exec_id": fork.Fork.ChildExecID, "child_tool_call": fork.Fork.ChildExecID,
		"child_cgroup_id": out.id, "child_cgroup": out.rel})
	checkEscaped(t, s, out, key, childPid, out)
	if moves := s.find("cgroup_move", nil); len(moves) != 0 {
		t.Errorf("clone3 into a cgroup is a fork, not a move; got:\n%s", s.dump(moves))
	}
}

// TestEscapeCgroupProcs: as root, the agent writes its child's pid into the
// cgroup.procs of a cgroup outside the session. The move is recorded (who
// moved whom, from, to), the child stays traced, the session end kills it
// and counts it.
func TestEscapeCgroupProcs(t *testing.T) {
	s, out, key := runEscape(t, "escape-procs")
	parent := s.resultWithout(t, "role")
	agentPid, childPid := num(t, parent, "pid"), num(t, parent, "child")
	// The child execs in the session, then the agent moves it out.
	exec := checkEscaped(t, s, out, key, childPid, outside{rel: s.start().Cgroup, id: s.start().CgroupID})

	procs := s.one(t, "open", openOf(filepath.Join(out.path, "cgroup.procs")))
	if procs.Proc.Pid != agentPid || procs.Open.Ret < 0 {
		t.Errorf("the agent's open of cgroup.procs:\n%s", procs.line)
	}
	move := s.one(t, "cgroup_move", nil)
	if move.Proc.Pid != agentPid {
		t.Errorf("the move was made by pid %d, want the agent %d:\n%s", move.Proc.Pid, agentPid, move.line)
	}
	wantBody(t, move, obj{"pid": childPid, "exec_id": exec.Proc.ExecID, "threadgroup": true,
		"from_cgroup_id": s.start().CgroupID, "from_cgroup": s.start().Cgroup,
		"to_cgroup_id": out.id, "to_cgroup": out.rel, "traced": true})
	if !(procs.Seq < move.Seq && move.Seq < s.one(t, "open", openOf(key)).Seq) {
		t.Errorf("want the open of cgroup.procs, the move, then the child's open of the key in this order")
	}
}

// TestEscapeUnprivileged: the same two escapes as uid 65534 are refused by
// the kernel, and each attempt is recorded with its errno: the clone3 into
// the other cgroup, and the open of its cgroup.procs.
func TestEscapeUnprivileged(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	out := outsideCgroup(t)
	s := agent(t, dir, runOpts{helper: "escape-unpriv"}, helperBin, out.path)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	pid, all := ops(t, s.result(t))
	clone := opNamed(t, all, "clone3").Ret
	if clone >= 0 {
		t.Fatalf("an unprivileged clone3 into %s succeeded", out.path)
	}
	move := s.one(t, "cgroup_move", byPid(pid))
	wantBody(t, move, obj{"syscall": "clone3", "to_cgroup_id": out.id, "to_cgroup": out.rel, "ret": clone, "errno": unix.ErrnoName(syscall.Errno(-clone))})
	open := s.one(t, "open", openOf(filepath.Join(out.path, "cgroup.procs")))
	wantBody(t, open, obj{"syscall": "open", "dirfd": -100, "path": filepath.Join(out.path, "cgroup.procs"), "flags": []string{"O_WRONLY"},
		"flags_raw": 1, "mode": "0", "ret": -int(unix.EACCES), "errno": "EACCES"})
	if ret := opNamed(t, all, "open-procs").Ret; ret != -int(unix.EACCES) {
		t.Errorf("open of cgroup.procs returned %d, want -EACCES", ret)
	}
	// (The Go runtime forks once to probe for pidfd support: that fork is
	// in the session's cgroup.)
	if forks := s.find("fork", func(r *rec) bool { return body(r)["child_cgroup_id"] != nil }); len(forks) != 0 {
		t.Errorf("a refused clone3 made no process in another cgroup; got:\n%s", s.dump(forks))
	}
}

// victim is a process outside the session (testdata/victim.c).
type victim struct {
	pid   int
	addr  uint64
	start uint64 // ns since boot, in clock ticks of /proc (1/100 s)
	cmd   *exec.Cmd
}

// startVictim starts testdata/victim.c outside any session as uid (and gid).
func startVictim(t *testing.T, uid int) *victim {
	t.Helper()
	cmd := exec.Command(victimBin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	rest, ok := strings.CutPrefix(line, "RESULT ")
	var r struct {
		Pid  int    `json:"pid"`
		Addr uint64 `json:"addr"`
	}
	if err != nil || !ok || json.Unmarshal([]byte(rest), &r) != nil || r.Pid != cmd.Process.Pid {
		t.Fatalf("victim: %q, %v", line, err)
	}
	return &victim{pid: r.Pid, addr: r.Addr, start: procStartTime(t, r.Pid), cmd: cmd}
}

// target is the target object a record must have for v: its identity as
// the kernel reads it.
func (v *victim) target(t *testing.T, s *session, traced bool) obj {
	t.Helper()
	return obj{"pid": v.pid, "exec_id": v.execID(t, s), "exe": victimBin, "comm": "victim", "traced": traced}
}

// execID is the victim's exec_id as the first record naming it has it,
// checked against its pid and start time.
func (v *victim) execID(t *testing.T, s *session) string {
	t.Helper()
	for _, r := range s.recs {
		target, _ := body(r)["target"].(map[string]any)
		if target == nil || int(target["pid"].(float64)) != v.pid {
			continue
		}
		id, _ := target["exec_id"].(string)
		parts := strings.Split(id, "-")
		start, _ := strconv.ParseUint(parts[1], 10, 64)
		if len(parts) != 3 || parts[0] != strconv.Itoa(v.pid) || start/10_000_000 != v.start/10_000_000 {
			t.Fatalf("target exec_id %q is not pid %d's (started at %d ticks)", id, v.pid, v.start/10_000_000)
		}
		return id
	}
	t.Fatalf("no record names pid %d as its target", v.pid)
	return ""
}

// TestPtraceInjection: the agent, as uid 65534, attaches with ptrace to a
// process of the same uid outside the session, writes a command line into
// its memory and makes it exec sh -c 'cat KEY > OUT'. The attach is
// recorded with the target's identity and taints it: the pokes, the
// register change, and then the victim's exec and opens are in the log.
func TestPtraceInjection(t *testing.T) {
	requireRoot(t)
	requireEscapeC(t)
	t.Parallel()
	dir := testDir(t)
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("the user's key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	drop := filepath.Join(dir, "drop")
	if err := os.Mkdir(drop, 0o777); err != nil || os.Chmod(drop, 0o777) != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(drop, "out")
	v := startVictim(t, 65534)

	s := agent(t, dir, runOpts{}, injectBin, strconv.Itoa(v.pid), key, outFile)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s\n%s", s.exit, s.stdout, s.stderr)
	}
	if data, err := os.ReadFile(outFile); err != nil || string(data) != "the user's key\n" {
		t.Fatalf("the injection did not work (%q, %v): the test proves nothing", data, err)
	}
	res := s.result(t)
	injector := num(t, res, "pid")
	var pokes []struct{ Addr, Data uint64 }
	b, _ := json.Marshal(res["pokes"])
	json.Unmarshal(b, &pokes)

	accesses := s.find("proc_access", byPid(injector))
	if len(accesses) != 2+len(pokes) {
		t.Fatalf("want %d proc_access records (attach, %d pokes, setregs), got:\n%s", 2+len(pokes), len(pokes), s.dump(accesses))
	}
	wantBody(t, accesses[0], obj{"syscall": "ptrace", "request": "PTRACE_ATTACH", "pid": v.pid, "addr": 0, "data": 0,
		"target": v.target(t, s, false), "tainted": true, "ret": 0})
	for i, p := range pokes {
		wantBody(t, accesses[1+i], obj{"syscall": "ptrace", "request": "PTRACE_POKEDATA", "pid": v.pid, "addr": p.Addr, "data": p.Data,
			"target": v.target(t, s, true), "ret": 0})
	}
	setregs := accesses[len(accesses)-1]
	wantBody(t, setregs, obj{"syscall": "ptrace", "request": "PTRACE_SETREGS", "pid": v.pid, "addr": 0, "data": body(setregs)["data"],
		"target": v.target(t, s, true), "ret": 0})

	// What the victim did for the agent.
	exec := s.one(t, "exec", byPid(v.pid))
	script := "cat " + key + " > " + outFile
	if exec.Exec.Ret != 0 || exec.Exec.Filename != "/bin/sh" || strings.Join(exec.Exec.Argv, "\x00") != "/bin/sh\x00-c\x00"+script ||
		exec.Proc.UID != 65534 || exec.Seq < setregs.Seq {
		t.Errorf("the victim's exec of sh -c %q after the injection:\n%s", script, exec.line)
	}
	redirect := s.one(t, "open", openOf(outFile))
	if redirect.Proc.Pid != v.pid || redirect.Open.Ret < 0 {
		t.Errorf("the victim's open of %s:\n%s", outFile, redirect.line)
	}
	read := s.one(t, "open", openOf(key))
	if read.Open.Ret < 0 || (read.Proc.Pid != v.pid && s.one(t, "fork", func(r *rec) bool { return r.Fork.ChildPid == read.Proc.Pid }).Proc.Pid != v.pid) {
		t.Errorf("the open of the key is not the victim's or its child's:\n%s", read.line)
	}
}

// TestProcessAccess: as uid 65534 the agent opens a pidfd of a process
// outside (victim 1), steals an fd through it, reads and then writes its
// memory (which taints it: a signal to it afterwards is not recorded), kills
// its own child (traced: not recorded), and signals victim 2 (same uid) with
// kill, tkill, tgkill, rt_sigqueueinfo and pidfd_send_signal (SIGKILL),
// victim 3 (root: EPERM) and a pid that does not exist (ESRCH). Every
// access to a process outside is a proc_access record with the target's
// identity read in the kernel.
func TestProcessAccess(t *testing.T) {
	requireRoot(t)
	requireEscapeC(t)
	t.Parallel()
	dir := testDir(t)
	v1, v2, v3 := startVictim(t, 65534), startVictim(t, 65534), startVictim(t, 0)
	pidMaxText, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	pidMax, _ := strconv.Atoi(strings.TrimSpace(string(pidMaxText)))

	s := agent(t, dir, runOpts{helper: "procaccess"}, helperBin, strconv.Itoa(v1.pid), strconv.FormatUint(v1.addr, 10),
		strconv.Itoa(v2.pid), strconv.Itoa(v3.pid), strconv.Itoa(pidMax))
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid, all := ops(t, res)
	if res["read"] != "victim-secret" {
		t.Fatalf("process_vm_readv read %q, want the victim's buffer", res["read"])
	}
	if err := v2.cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("victim 2 was not killed by the pidfd_send_signal: %v", err)
	}
	op := func(name string) int { return opNamed(t, all, name).Ret }
	errno := func(name string) string { return unix.ErrnoName(syscall.Errno(-op(name))) }

	want := []obj{
		{"syscall": "pidfd_open", "pid": v1.pid, "flags": []string{}, "target": v1.target(t, s, false), "ret": op("pidfd_open")},
		{"syscall": "process_vm_readv", "pid": v1.pid, "target": v1.target(t, s, false), "ret": 64},
		{"syscall": "process_vm_writev", "pid": v1.pid, "target": v1.target(t, s, false), "tainted": true, "ret": 64},
		{"syscall": "kill", "pid": v2.pid, "signal_num": 0, "target": v2.target(t, s, false), "ret": 0},
		{"syscall": "tkill", "pid": v2.pid, "signal_num": 0, "target": v2.target(t, s, false), "ret": 0},
		{"syscall": "tgkill", "pid": v2.pid, "tid": v2.pid, "signal_num": 0, "target": v2.target(t, s, false), "ret": 0},
		{"syscall": "rt_sigqueueinfo", "pid": v2.pid, "signal": "SIGCONT", "signal_num": 18, "target": v2.target(t, s, false), "ret": 0},
		{"syscall": "kill", "pid": v3.pid, "signal": "SIGTERM", "signal_num": 15, "target": obj{"pid": v3.pid, "exec_id": v3.execID(t, s),
			"exe": victimBin, "comm": "victim", "traced": false}, "ret": op("kill-root"), "errno": errno("kill-root")},
		{"syscall": "kill", "pid": pidMax, "signal_num": 0, "ret": -int(unix.ESRCH), "errno": "ESRCH"},
		{"syscall": "pidfd_open", "pid": v2.pid, "flags": []string{}, "target": v2.target(t, s, false), "ret": op("pidfd_open-v2")},
		{"syscall": "pidfd_send_signal", "pidfd": op("pidfd_open-v2"), "signal": "SIGKILL", "signal_num": 9, "target": v2.target(t, s, false), "ret": 0},
	}
	// (The Go runtime opens a pidfd of its own process once: not an access to another.)
	got := s.find("proc_access", func(r *rec) bool {
		target, _ := body(r)["target"].(map[string]any)
		return r.Proc.Pid == pid && (target == nil || int(target["pid"].(float64)) != pid)
	})
	if len(got) != len(want) {
		t.Fatalf("want %d proc_access records, got %d:\n%s", len(want), len(got), s.dump(got))
	}
	for i := range want {
		wantBody(t, got[i], want[i])
	}
	if op("kill-root") != -int(unix.EPERM) || op("kill-child") != 0 || op("kill-v1") != 0 || op("pidfd_getfd") < 0 {
		t.Errorf("the helper's syscalls did not do what the test needs: %+v", all)
	}
}

// TestFileOps: renames, links, symlinks, unlinks, chmods, chowns and
// truncates with every syscall of each kind, relative names resolved
// against a dirfd or the working directory (the directory is in the
// record), fd-based ones with the file the fd refers to, failures with
// their errno.
func TestFileOps(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := agent(t, dir, runOpts{helper: "fileops"}, helperBin, dir)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid, all := ops(t, res)
	var files []obj
	b, _ := json.Marshal(res["files"])
	json.Unmarshal(b, &files)
	if len(files) != 3 {
		t.Fatalf("helper reported %d files, want 3", len(files))
	}
	op := func(name string) helperOp { return opNamed(t, all, name) }
	dfd, fd := op("renameat").Fd, op("fchmod").Fd
	p := func(name string) string { return filepath.Join(dir, name) }
	sub := obj{"path": p("sub")}
	result := func(name string, o obj) obj {
		r := op(name).Ret
		o["ret"] = r
		if r < 0 {
			o["errno"] = unix.ErrnoName(syscall.Errno(-r))
		}
		return o
	}
	want := []obj{
		result("rename", obj{"syscall": "rename", "path": p("a"), "new_path": p("b")}),
		result("rename-enoent", obj{"syscall": "rename", "path": p("missing"), "new_path": p("x")}),
		result("renameat", obj{"syscall": "renameat", "dirfd": -100, "path": p("b"), "new_dirfd": dfd, "new_path": "c", "new_dir": sub}),
		result("renameat2", obj{"syscall": "renameat2", "dirfd": dfd, "path": "c", "dir": sub, "new_dirfd": dfd, "new_path": "d", "new_dir": sub, "flags": []string{"RENAME_NOREPLACE"}}),
		result("renameat2-exchange", obj{"syscall": "renameat2", "dirfd": dfd, "path": "d", "dir": sub, "new_dirfd": dfd, "new_path": "e", "new_dir": sub, "flags": []string{"RENAME_EXCHANGE"}}),
		result("renameat2-eexist", obj{"syscall": "renameat2", "dirfd": dfd, "path": "d", "dir": sub, "new_dirfd": dfd, "new_path": "e", "new_dir": sub, "flags": []string{"RENAME_NOREPLACE"}}),
		result("link", obj{"syscall": "link", "path": p("sub/d"), "new_path": p("l")}),
		result("linkat", obj{"syscall": "linkat", "dirfd": dfd, "path": "e", "dir": sub, "new_dirfd": -100, "new_path": p("l2"), "flags": []string{}}),
		result("symlink", obj{"syscall": "symlink", "path": "sub/d", "new_path": p("s")}),
		result("symlinkat", obj{"syscall": "symlinkat", "path": "../x", "new_dirfd": dfd, "new_path": "s2", "new_dir": sub}),
		result("chmod", obj{"syscall": "chmod", "path": p("l"), "mode": "0600"}),
		result("fchmod", obj{"syscall": "fchmod", "fd": fd, "file": files[0], "mode": "0640"}),
		result("fchmodat", obj{"syscall": "fchmodat", "dirfd": dfd, "path": "d", "dir": sub, "mode": "0604"}),
		result("fchmodat2", obj{"syscall": "fchmodat2", "dirfd": dfd, "path": "s2", "dir": sub, "mode": "0600", "flags": []string{"AT_SYMLINK_NOFOLLOW"}}),
		result("chown", obj{"syscall": "chown", "path": p("l"), "uid": 65534, "gid": 65534}),
		result("fchown", obj{"syscall": "fchown", "fd": fd, "file": files[1], "uid": 0, "gid": 65534}),
		result("lchown", obj{"syscall": "lchown", "path": p("s"), "uid": 65534, "gid": uint32(0xffffffff)}),
		result("fchownat", obj{"syscall": "fchownat", "dirfd": dfd, "path": "d", "dir": sub, "uid": 0, "gid": 0, "flags": []string{"AT_SYMLINK_NOFOLLOW"}}),
		result("truncate", obj{"syscall": "truncate", "path": p("l"), "length": 3}),
		result("ftruncate", obj{"syscall": "ftruncate", "fd": fd, "file": files[2], "length": 5}),
		result("unlink", obj{"syscall": "unlink", "path": p("l")}),
		result("unlinkat", obj{"syscall": "unlinkat", "dirfd": dfd, "path": "e", "dir": sub, "flags": []string{}}),
		result("unlinkat-dir", obj{"syscall": "unlinkat", "dirfd": dfd, "path": "dd", "dir": sub, "flags": []string{"AT_REMOVEDIR"}}),
		result("rmdir", obj{"syscall": "rmdir", "path": p("rd")}),
		result("rmdir-enoent", obj{"syscall": "rmdir", "path": p("missing")}),
		result("unlink-relative", obj{"syscall": "unlink", "path": "s", "dir": obj{"path": dir}}),
	}
	got := s.find("file_op", byPid(pid))
	if len(got) != len(want) {
		t.Fatalf("want %d file_op records, got %d:\n%s", len(want), len(got), s.dump(got))
	}
	for i := range want {
		wantBody(t, got[i], want[i])
	}
	for _, name := range []string{"rename", "renameat", "renameat2", "renameat2-exchange", "link", "linkat", "symlink", "symlinkat", "chmod", "fchmod",
		"fchmodat", "chown", "fchown", "lchown", "fchownat", "truncate", "ftruncate", "unlink", "unlinkat", "unlinkat-dir", "rmdir", "unlink-relative"} {
		if op(name).Ret != 0 {
			t.Errorf("%s failed (%d): the test expects it to succeed", name, op(name).Ret)
		}
	}
}

// TestMountNamespace: as uid 65534, in a user and mount namespace of its
// own, the agent mounts and unmounts a tmpfs with mount(2) and with the new
// mount API, fails to setns back and unshares more namespaces: every call is
// a record with its exact arguments and result.
func TestMountNamespace(t *testing.T) {
	requireRoot(t)
	requireEscapeC(t)
	t.Parallel()
	dir := testDir(t)
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	s := agent(t, dir, runOpts{}, nsopsBin, mnt)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	pid, all := ops(t, s.result(t))
	op := func(name string) helperOp { return opNamed(t, all, name) }
	result := func(name string, o obj) obj {
		r := op(name).Ret
		o["ret"] = r
		if r < 0 {
			o["errno"] = unix.ErrnoName(syscall.Errno(-r))
		}
		return o
	}
	fs, mfd := op("fsopen").Ret, op("fsmount").Ret
	wantNS := []obj{
		result("unshare", obj{"syscall": "unshare", "flags": []string{"CLONE_NEWNS", "CLONE_NEWUSER"}}),
		result("setns", obj{"syscall": "setns", "fd": op("setns").Fd, "flags": []string{"CLONE_NEWNS"}}),
		result("unshare-net", obj{"syscall": "unshare", "flags": []string{"CLONE_NEWUTS", "CLONE_NEWNET"}}),
	}
	wantMount := []obj{
		result("mount", obj{"syscall": "mount", "source": "none", "target": mnt, "fstype": "tmpfs", "flags": []string{"MS_NOSUID", "MS_NODEV"}}),
		result("umount2", obj{"syscall": "umount2", "target": mnt, "flags": []string{"MNT_DETACH"}}),
		result("umount2-einval", obj{"syscall": "umount2", "target": mnt, "flags": []string{}}),
		result("fsopen", obj{"syscall": "fsopen", "fstype": "tmpfs", "flags": []string{"FSOPEN_CLOEXEC"}}),
		result("fsconfig-source", obj{"syscall": "fsconfig", "fd": fs, "cmd": "FSCONFIG_SET_STRING", "key": "source", "value": "agent-fs"}),
		result("fsconfig-create", obj{"syscall": "fsconfig", "fd": fs, "cmd": "FSCONFIG_CMD_CREATE"}),
		result("fsmount", obj{"syscall": "fsmount", "fd": fs, "flags": []string{"FSMOUNT_CLOEXEC"}, "attr": []string{"MOUNT_ATTR_NODEV", "MOUNT_ATTR_NOEXEC"}}),
		result("move_mount", obj{"syscall": "move_mount", "from_dirfd": mfd, "source": "", "dirfd": -100, "target": mnt, "flags": []string{"MOVE_MOUNT_F_EMPTY_PATH"}}),
		result("umount2-new", obj{"syscall": "umount2", "target": mnt, "flags": []string{"MNT_DETACH"}}),
	}
	for typ, want := range map[string][]obj{"namespace": wantNS, "mount": wantMount} {
		got := s.find(typ, byPid(pid))
		if len(got) != len(want) {
			t.Fatalf("want %d %s records, got %d:\n%s", len(want), typ, len(got), s.dump(got))
		}
		for i := range want {
			wantBody(t, got[i], want[i])
		}
	}
	for _, name := range []string{"unshare", "mount", "umount2", "fsconfig-source", "fsconfig-create", "move_mount", "umount2-new", "unshare-net"} {
		if op(name).Ret != 0 {
			t.Errorf("%s failed (%d): the test expects it to succeed", name, op(name).Ret)
		}
	}
}

// TestTamperFrozenTargets: a root agent finds the tracer's targets map
// (the cgroup array whose slot 0 is the session) and tries to point it
// elsewhere and to clear it: the map is frozen, the kernel refuses, every
// bpf() call is a record naming the map, and tracing goes on.
func TestTamperFrozenTargets(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	marker := filepath.Join(dir, "after-tamper")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := agent(t, dir, runOpts{helper: "tamper-targets"}, helperBin, marker)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid, all := ops(t, res)
	mapID, own := num(t, res, "map_id"), num(t, res, "own_map_id")
	op := func(name string) int { return opNamed(t, all, name).Ret }
	if res["frozen"] != true {
		t.Errorf("the targets map is not frozen (fdinfo)")
	}
	if op("update") != -int(unix.EPERM) || op("delete") != -int(unix.EPERM) {
		t.Errorf("overwriting the frozen targets map: update %d, delete %d, want -EPERM", op("update"), op("delete"))
	}
	want := []obj{
		{"cmd": "BPF_MAP_GET_FD_BY_ID", "map_id": mapID, "ret": op("get_fd_by_id")},
		{"cmd": "BPF_MAP_UPDATE_ELEM", "map_id": mapID, "ret": -1, "errno": "EPERM"},
		{"cmd": "BPF_MAP_DELETE_ELEM", "map_id": mapID, "ret": -1, "errno": "EPERM"},
		{"cmd": "BPF_MAP_CREATE", "map_id": own, "ret": op("map_create")},
		{"cmd": "BPF_OBJ_GET_INFO_BY_FD", "map_id": own, "ret": 0},
	}
	// (What else the helper, a Go test binary, does with bpf() at start is not the test's.)
	got := s.find("bpf", func(r *rec) bool {
		id := bodyNum(r, "map_id")
		return r.Proc.Pid == pid && (id == mapID || id == own)
	})
	if len(got) != len(want) {
		t.Fatalf("want %d bpf records, got %d:\n%s", len(want), len(got), s.dump(got))
	}
	for i := range want {
		wantBody(t, got[i], want[i])
	}
	if open := s.one(t, "open", openOf(marker)); open.Proc.Pid != pid || open.Open.Ret != op("open") {
		t.Errorf("the open after the attempt:\n%s", open.line)
	}
}

// TestDaemonTamper: root outside the daemon overwrites the kernel's state
// of a traced cgroup (cgroup_states: traced 0), which would silence it.
// Within the check interval the daemon writes a tamper record (expected,
// found), counts it in agenttrace_tamper_total and restores the state: the
// next open in the cgroup is recorded.
func TestDaemonTamper(t *testing.T) {
	e := newDaemonEnv(t)
	pattern := e.pattern("agent-*")
	listen := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	e.writeConfig(t, e.daemonConfig([]string{pattern}, listen))
	agentID := e.mkdir(t, "agent-t")
	marker := uniqueFile(t, testDir(t), "after-tamper")
	d := e.startDaemon(t)

	states := daemonMap(t, d.cmd.Process.Pid, "cgroup_states")
	var st loader.CgroupState
	if err := states.Lookup(agentID, &st); err != nil || st.Traced == 0 {
		t.Fatalf("the daemon's state of agent-t: %+v, %v", st, err)
	}
	expected := st
	st.Traced = 0
	at := time.Now()
	if err := states.Put(agentID, &st); err != nil {
		t.Fatalf("overwriting cgroup_states: %v", err)
	}
	waitLogged(t, filepath.Join(e.logDir, "audit.jsonl"), `"type":"tamper"`)
	if took := time.Since(at); took > 2500*time.Millisecond {
		t.Errorf("the tamper record took %v, want it within the 1 s check interval", took)
	}
	if v := promValue(t, scrapeMetrics(t, listen), "agenttrace_tamper_total", map[string]string{"what": "cgroup_states"}); v != 1 {
		t.Errorf("agenttrace_tamper_total{what=cgroup_states} = %v, want 1", v)
	}
	if err := states.Lookup(agentID, &st); err != nil || st != expected {
		t.Errorf("the state after the check: %+v, %v; want it restored to %+v", st, err, expected)
	}
	pid, fd := e.openIn(t, "agent-t", marker)
	d.stop(t)

	l := e.readDaemonLog(t)
	tampers := l.find("tamper", nil)
	if len(tampers) != 1 {
		t.Fatalf("want one tamper record, got:\n%s", dumpRecs(tampers))
	}
	var r struct {
		Tamper obj `json:"tamper"`
	}
	json.Unmarshal(tampers[0].line, &r)
	want := obj{"what": "cgroup_states", "cgroup_id": agentID, "cgroup": e.cgPath("agent-t"),
		"expected": obj{"partial": expected.Partial, "traced": true}, "found": obj{"partial": expected.Partial, "traced": false}, "restored": true}
	if asJSON(r.Tamper) != asJSON(want) {
		t.Errorf("tamper record:\n got: %s\nwant: %s", asJSON(r.Tamper), asJSON(want))
	}
	wantOpen(t, l, marker, pid, fd, e.cgPath("agent-t"), agentID)
}

// TestDaemonUntracedKeepsMarks: a process that ran in a traced cgroup is
// marked; when a reload stops tracing the cgroup it stays traced (its open
// after the reload is recorded), while a process started there afterwards
// is not. The kernel skips the marks lookup for tasks in untraced cgroups
// until the daemon untraces one: then bit 63 of states_gen says so.
func TestDaemonUntracedKeepsMarks(t *testing.T) {
	e := newDaemonEnv(t)
	e.writeConfig(t, e.daemonConfig([]string{e.pattern("agent-*")}, ""))
	agentID := e.mkdir(t, "agent-m")
	dir := testDir(t)
	marked, fresh := uniqueFile(t, dir, "marked-after-reload"), uniqueFile(t, dir, "fresh-after-reload")
	d := e.startDaemon(t)
	gen := func() uint64 {
		var g uint64
		if err := daemonMap(t, d.cmd.Process.Pid, "states_gen").Lookup(uint32(0), &g); err != nil {
			t.Fatal(err)
		}
		return g
	}
	if g := gen(); g>>63 != 0 {
		t.Errorf("states_gen %#x has bit 63 before any cgroup was untraced", g)
	}

	// The helper execs in agent-m while it is traced, then waits.
	fd, err := unix.Open(e.cg("agent-m"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(helperBin, marked)
	cmd.Env = helperEnviron("escaped-wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	err = cmd.Start()
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	// (Start returns once the exec succeeded: it has been marked.)
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	e.writeConfig(t, e.daemonConfig([]string{e.pattern("none-*")}, ""))
	d.waitLog(t, d.signal(t, syscall.SIGHUP), "reloaded", 20*time.Second)
	if g := gen(); g>>63 != 1 {
		t.Errorf("states_gen %#x lacks bit 63 after the reload untraced agent-m", g)
	}
	fmt.Fprintln(stdin)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "RESULT ") {
		t.Fatalf("the marked helper printed %q: %v", line, err)
	}
	var res struct {
		Ops []helperOp `json:"ops"`
	}
	json.Unmarshal([]byte(strings.TrimPrefix(line, "RESULT ")), &res)
	if len(res.Ops) != 1 || res.Ops[0].Ret < 0 {
		t.Fatalf("the marked helper's open: %+v", res.Ops)
	}
	e.openIn(t, "agent-m", fresh)
	d.stop(t)

	l := e.readDaemonLog(t)
	wantOpen(t, l, marked, cmd.Process.Pid, res.Ops[0].Ret, e.cgPath("agent-m"), agentID)
	if got := l.find("open", dOpenOf(fresh)); len(got) != 0 {
		t.Errorf("a process started in agent-m after the reload is traced:\n%s", dumpRecs(got))
	}
}

// daemonMap opens the map called name among the fds of pid.
func daemonMap(t *testing.T, pid int, name string) *ebpf.Map {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		for _, line := range strings.Split(string(data), "\n") {
			v, ok := strings.CutPrefix(line, "map_id:")
			if !ok {
				continue
			}
			id, _ := strconv.Atoi(strings.TrimSpace(v))
			m, err := ebpf.NewMapFromID(ebpf.MapID(id))
			if err != nil {
				continue
			}
			if info, err := m.Info(); err == nil && info.Name == name {
				t.Cleanup(func() { m.Close() })
				return m
			}
			m.Close()
		}
	}
	t.Fatalf("pid %d has no map %s", pid, name)
	return nil
}
