package integration

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// exeFile is the exe_file object the kernel reports for path, with the
// SHA-256 agenttrace computes of it.
func exeFile(t *testing.T, path string) obj {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return obj{
		"ino":    st.Ino,
		"dev":    fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)),
		"mode":   fmt.Sprintf("0%o", st.Mode),
		"uid":    st.Uid,
		"gid":    st.Gid,
		"ctime":  st.Ctim.Nano(),
		"sha256": fileSHA256(t, path),
	}
}

// helperComm is the kernel's comm of the helper binary: its name, cut to 15 bytes.
func helperComm() string {
	name := filepath.Base(helperBin)
	return name[:min(len(name), 15)]
}

// b64s is the argv_b64 form of args.
func b64s(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = base64.StdEncoding.EncodeToString([]byte(a))
	}
	return out
}

// TestExec: a successful execve (argv element by element, filename, exe,
// exe_file, argc), failures with ENOENT, EACCES (not executable) and the
// errno the kernel gives for an executable file of garbage (ENOEXEC), with
// the failed call's argv, and one whose argv pointer cannot be read (EFAULT):
// argv_unreadable, never an argv that merely ends there.
func TestExec(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	if err := os.WriteFile(filepath.Join(dir, execNoExec), []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, execGarbage), []byte("\x00\x01\x02garbage, not a program\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	s := agent(t, dir, runOpts{helper: "execs"}, helperBin, dir)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	pid, all := ops(t, s.result(t))

	for _, c := range []struct {
		name  string
		errno unix.Errno
	}{{execMissing, unix.ENOENT}, {execNoExec, unix.EACCES}, {execGarbage, unix.ENOEXEC}} {
		t.Run(c.name, func(t *testing.T) {
			op := wantOp(t, all, c.name, c.errno)
			path := filepath.Join(dir, c.name)
			r := s.one(t, "exec", func(r *rec) bool { return r.Exec.Filename == path })
			wantBody(t, r, obj{
				"syscall":  "execve",
				"filename": path,
				"argv":     []string{execFailArgv, c.name},
				"argc":     2,
				"ret":      op.Ret,
				"errno":    unix.ErrnoName(c.errno),
			})
			if r.Proc.Pid != pid || r.Proc.Exe != helperBin {
				t.Errorf("failed exec: proc pid %d exe %q, want %d %q", r.Proc.Pid, r.Proc.Exe, pid, helperBin)
			}
		})
	}

	t.Run(execArgvFault, func(t *testing.T) {
		op := wantOp(t, all, execArgvFault, unix.EFAULT)
		r := s.one(t, "exec", func(r *rec) bool { return r.Proc.Pid == pid && r.Exec.Ret == -int(unix.EFAULT) })
		wantBody(t, r, obj{
			"syscall":         "execve",
			"filename":        helperBin,
			"argv":            []string{},
			"argc":            0,
			"argv_unreadable": true,
			"argv_empty":      true, // argv[0] could not be read at entry either
			"ret":             op.Ret,
			"errno":           "EFAULT",
		})
	})

	t.Run("success", func(t *testing.T) {
		argv := []string{"exec-ok", "a b", "", "c\"d", "\xff"}
		r := s.one(t, "exec", func(r *rec) bool {
			return r.Proc.Pid == pid && r.Exec.Ret == 0 && len(r.Exec.Argv) > 0 && r.Exec.Argv[0] == "exec-ok"
		})
		wantBody(t, r, obj{
			"syscall":  "execve",
			"filename": helperBin,
			"exe":      helperBin,
			"exe_file": exeFile(t, helperBin),
			"argv":     []string{"exec-ok", "a b", "", "c\"d", `\xff`},
			"argv_b64": b64s(argv),
			"argc":     len(argv),
			"ret":      0,
		})
		// comm is the executed file's name (at most 15 bytes), not argv[0].
		if comm := helperComm(); r.Proc.Exe != helperBin || r.Proc.Comm != comm {
			t.Errorf("after exec: proc exe %q comm %q, want %q %q", r.Proc.Exe, r.Proc.Comm, helperBin, comm)
		}
		// The new image exits; its exit record carries the new exec_id.
		exit := s.one(t, "exit", byPid(pid))
		if exit.Proc.ExecID != r.Proc.ExecID {
			t.Errorf("exit exec_id %q, want the exec's %q", exit.Proc.ExecID, r.Proc.ExecID)
		}
		wantBody(t, exit, obj{"status": 0, "code": 0})
	})
}

// badEntryELF is an x86-64 executable the kernel accepts up to the point of
// no return and rejects after it: its entry point is not a user address
// (load_elf_binary checks it only once the new image is mapped), so execve
// fails with EINVAL when the caller's image is already gone, and the kernel
// kills the process with SIGSEGV.
func badEntryELF() []byte {
	b := make([]byte, 64+56) // the ELF header, one program header
	le := binary.LittleEndian
	copy(b, "\x7fELF\x02\x01\x01") // 64-bit, little endian, version 1
	le.PutUint16(b[16:], 2)        // ET_EXEC
	le.PutUint16(b[18:], 62)       // EM_X86_64
	le.PutUint32(b[20:], 1)        // EV_CURRENT
	le.PutUint64(b[24:], 1<<47)    // e_entry: above the highest user address
	le.PutUint64(b[32:], 64)       // e_phoff
	le.PutUint16(b[52:], 64)       // e_ehsize
	le.PutUint16(b[54:], 56)       // e_phentsize
	le.PutUint16(b[56:], 1)        // e_phnum
	ph := b[64:]
	le.PutUint32(ph[0:], 1)               // PT_LOAD
	le.PutUint32(ph[4:], 5)               // PF_R | PF_X
	le.PutUint64(ph[16:], 0x400000)       // p_vaddr
	le.PutUint64(ph[24:], 0x400000)       // p_paddr
	le.PutUint64(ph[32:], uint64(len(b))) // p_filesz
	le.PutUint64(ph[40:], uint64(len(b))) // p_memsz
	le.PutUint64(ph[48:], 0x1000)         // p_align
	return b
}

// TestExecPastPointOfNoReturn: an execve that fails after the kernel has
// replaced the caller's image (the point of no return), made by Go's
// os/exec (vfork, execve in the child). The record is a failure (ret,
// errno) that says it came past the point of no return: no argv (it was in
// the caller's memory, which is gone; what is at its address now belongs to
// the new image), exe the file the kernel was executing, proc what the
// kernel left (the new comm, exec_id bumped by one). The exit that follows
// is the kernel's SIGSEGV under the same exec_id.
func TestExecPastPointOfNoReturn(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	path := filepath.Join(dir, "bad-entry")
	if err := os.WriteFile(path, badEntryELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	s := agent(t, dir, runOpts{helper: "exec-past-no-return"}, helperBin, path)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid, child := num(t, res, "pid"), num(t, res, "child")
	fork := s.one(t, "fork", func(r *rec) bool { return r.Proc.Pid == pid && r.Fork.ChildPid == child })
	r := s.one(t, "exec", byPid(child))
	wantBody(t, r, obj{
		"syscall":                 "execve",
		"filename":                path,
		"exe":                     path,
		"exe_file":                exeFile(t, path),
		"argv":                    []string{},
		"argc":                    0,
		"argv_unreadable":         true,
		"past_point_of_no_return": true,
		"ret":                     -int(unix.EINVAL),
		"errno":                   "EINVAL",
	})
	process, seq := execIDParts(t, fork.Fork.ChildExecID)
	if want := fmt.Sprintf("%s-%d", process, seq+1); r.Proc.ExecID != want || r.Proc.Comm != "bad-entry" || r.Proc.Exe != path {
		t.Errorf("exec past the point of no return: proc exec_id %q comm %q exe %q, want %q %q %q", r.Proc.ExecID, r.Proc.Comm, r.Proc.Exe, want, "bad-entry", path)
	}
	exit := s.one(t, "exit", byPid(child))
	if exit.Proc.ExecID != r.Proc.ExecID || body(exit)["signal"] != "SIGSEGV" {
		t.Errorf("exit of the child: want exec_id %q and SIGSEGV, got:\n%s", r.Proc.ExecID, exit.line)
	}
}

// TestExecKilledWhileLoading: the race behind a flaky TestProcessAccess,
// made frequent. Go's os/exec returns from Start once the child's exec has
// closed its close-on-exec descriptors, past the point of no return; a
// SIGKILL sent then can land while the kernel still loads the new image
// (here: waits for the disk, the program having been dropped from the page
// cache), and the execve then fails (EFAULT: a page fault the fatal signal
// cut short) with the caller's image gone. Every child's exec is recorded
// once, with the exec_id bump: a success with ret 0 and its argv, or a
// failure that says it came past the point of no return, its argv unknown
// (never [] as if the caller had passed none). Then the exit: SIGKILL, or a
// normal one for a child that finished first.
func TestExecKilledWhileLoading(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	prog := filepath.Join(dir, "true")
	data, err := os.ReadFile("/usr/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prog, data, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 100
	s := agent(t, dir, runOpts{helper: "exec-killed-loading"}, helperBin, prog, strconv.Itoa(n))
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid := num(t, res, "pid")
	children, _ := res["children"].([]any)
	if len(children) != n {
		t.Fatalf("helper reported %d children, want %d", len(children), n)
	}
	file := exeFile(t, prog)
	failed := 0
	for i, c := range children {
		child := int(c.(float64))
		fork := s.one(t, "fork", func(r *rec) bool { return r.Proc.Pid == pid && r.Fork.ChildPid == child })
		r := s.one(t, "exec", byPid(child))
		want := obj{"syscall": "execve", "filename": prog, "exe": prog, "exe_file": file,
			"argv": []string{"killed-while-loading", strconv.Itoa(i)}, "argc": 2, "ret": 0}
		if r.Exec.Ret != 0 {
			failed++
			want = obj{"syscall": "execve", "filename": prog, "exe": prog, "exe_file": file,
				"argv": []string{}, "argc": 0, "argv_unreadable": true, "past_point_of_no_return": true,
				"ret": r.Exec.Ret, "errno": unix.ErrnoName(syscall.Errno(-r.Exec.Ret))}
		}
		wantBody(t, r, want)
		process, seq := execIDParts(t, fork.Fork.ChildExecID)
		if want := fmt.Sprintf("%s-%d", process, seq+1); r.Proc.ExecID != want || r.Proc.Comm != "true" {
			t.Errorf("exec of child %d: exec_id %q comm %q, want %q %q:\n%s", i, r.Proc.ExecID, r.Proc.Comm, want, "true", r.line)
		}
		exit := s.one(t, "exit", byPid(child))
		killed := body(exit)["signal"] == "SIGKILL"
		if exit.Proc.ExecID != r.Proc.ExecID || !killed && (r.Exec.Ret != 0 || exit.Exit.Status != 0) {
			t.Errorf("exit of child %d: want exec_id %q and SIGKILL (or status 0 after a success), got:\n%s", i, r.Proc.ExecID, exit.line)
		}
	}
	t.Logf("%d of %d execs failed past the point of no return", failed, n)
	if failed == 0 && !t.Failed() {
		t.Skipf("no SIGKILL landed while the kernel loaded the image (is %s on a file system whose page cache fadvise can drop?): the failure was not exercised", dir)
	}
}

// TestExecveat execs an open fd with AT_EMPTY_PATH.
func TestExecveat(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	s := agent(t, dir, runOpts{helper: "execveat"}, helperBin)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid, fd := num(t, res, "pid"), num(t, res, "fd")
	r := s.one(t, "exec", func(r *rec) bool { return r.Proc.Pid == pid && r.Exec.Syscall == "execveat" })
	wantBody(t, r, obj{
		"syscall":   "execveat",
		"dirfd":     fd,
		"flags":     []string{"AT_EMPTY_PATH"},
		"flags_raw": unix.AT_EMPTY_PATH,
		"filename":  "",
		"exe":       helperBin,
		"exe_file":  exeFile(t, helperBin),
		"argv":      []string{"via-execveat", fmt.Sprint(fd)},
		"argc":      2,
		"ret":       0,
	})
}

// TestExecEmptyArgv execs with argv = {NULL}: the kernel substitutes {""}
// and the record says so.
func TestExecEmptyArgv(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	s := agent(t, dir, runOpts{helper: "emptyargv"}, helperBin)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	pid := num(t, s.result(t), "pid")
	execs := s.find("exec", byPid(pid))
	if len(execs) != 2 {
		t.Fatalf("want 2 exec records of pid %d (agenttrace's, then the helper's), got %d:\n%s", pid, len(execs), s.dump(execs))
	}
	wantBody(t, execs[1], obj{
		"syscall":    "execve",
		"filename":   helperBin,
		"exe":        helperBin,
		"exe_file":   exeFile(t, helperBin),
		"argv":       []string{""},
		"argc":       1,
		"argv_empty": true,
		"ret":        0,
	})
}

// TestExecFailureArgvTruncated: a failed exec's argv is read from the
// caller's memory, at most 256 arguments of at most 4095 bytes each. Beyond
// that, the record must say argv_truncated rather than look complete.
func TestExecFailureArgvTruncated(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	long := strings.Repeat("y", 5000)
	many := make([]string, 300)
	for i := range many {
		many[i] = fmt.Sprintf("a%03d", i)
	}
	blob := func(args []string) int {
		n := 0
		for _, a := range args {
			n += len(a) + 1
		}
		return n
	}
	for _, c := range []struct {
		name string
		argv []string
		want []string // recorded
	}{
		{"300-args", many, many[:256]},
		{"long-arg", []string{"x", long, "z"}, []string{"x", long[:4095]}},
		{"complete", many[:256], many[:256]},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := testDir(t)
			missing := filepath.Join(dir, "missing-"+c.name)
			s := agent(t, dir, runOpts{helper: "exec-fail-args"}, append([]string{helperBin, missing}, c.argv...)...)
			if s.exit != 0 {
				t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
			}
			_, all := ops(t, s.result(t))
			wantOp(t, all, "execve", unix.ENOENT)
			r := s.one(t, "exec", func(r *rec) bool { return r.Exec.Filename == missing })
			want := obj{"syscall": "execve", "filename": missing, "argv": c.want, "argc": len(c.want), "ret": -int(unix.ENOENT), "errno": "ENOENT"}
			if len(c.want) != len(c.argv) || c.want[len(c.want)-1] != c.argv[len(c.want)-1] {
				want["argv_truncated"] = true
				want["argv_size"] = blob(c.want)
			}
			wantBody(t, r, want)
		})
	}
}

// TestThreads: a thread other than the leader forks (the fork record names
// that thread, the child names the process as its creator) and then execs
// (the exec record, made after the kernel gave the thread the leader's pid,
// still has what the syscall was given).
func TestThreads(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	s := agent(t, dir, runOpts{helper: "threads"}, helperBin)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid, tid, childPid := num(t, res, "pid"), num(t, res, "tid"), num(t, res, "child")
	if tid == pid {
		t.Fatalf("the helper ran on the leader thread: %v", res)
	}
	execs := s.find("exec", byPid(pid))
	if len(execs) != 2 {
		t.Fatalf("want 2 exec records of pid %d, got %d:\n%s", pid, len(execs), s.dump(execs))
	}
	first, second := execs[0], execs[1]

	// (The Go runtime's own probe for pidfd support forks a child too.)
	fork := s.one(t, "fork", func(r *rec) bool { return r.Fork.ChildPid == childPid })
	if fork.Proc.Pid != pid || fork.Proc.Tid != tid || fork.Proc.ExecID != first.Proc.ExecID {
		t.Errorf("fork record: pid %d tid %d exec_id %q; want %d %d %q", fork.Proc.Pid, fork.Proc.Tid, fork.Proc.ExecID, pid, tid, first.Proc.ExecID)
	}
	child := s.one(t, "exec", byPid(childPid))
	wantBody(t, child, obj{
		"syscall": "execve", "filename": helperBin, "exe": helperBin, "exe_file": exeFile(t, helperBin),
		"argv": []string{helperBin, "child-of-thread"}, "argc": 2, "ret": 0,
	})
	if child.Proc.ParentExecID != first.Proc.ExecID || child.Proc.Ppid != pid {
		t.Errorf("child: parent_exec_id %q ppid %d, want %q %d", child.Proc.ParentExecID, child.Proc.Ppid, first.Proc.ExecID, pid)
	}

	wantBody(t, second, obj{
		"syscall": "execve", "filename": helperBin, "exe": helperBin, "exe_file": exeFile(t, helperBin),
		"argv": []string{"exec-from-thread"}, "argc": 1, "ret": 0,
	})
	if second.Proc.Tid != pid {
		t.Errorf("exec from thread %d: proc.tid %d, want the pid %d it takes over", tid, second.Proc.Tid, pid)
	}
}
