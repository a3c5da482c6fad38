package report

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agenttrace/agenttrace/internal/record"
)

// TestEscapeText: a fork into another cgroup whose child left no record of
// its own is still shown, with its cgroup; escape records are listed under
// the process that made them, takeovers and moves first of all.
func TestEscapeText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "escape.jsonl")
	l := newLog(t, path)
	agent := &proc{pid: 100, start: 5000, seq: 3, comm: "python3"}
	quiet := &proc{pid: 101, start: 6000, comm: "python3"}
	mover := &proc{pid: 102, start: 7000, comm: "python3"}
	l.start()
	l.event(exec(agent, 1_000_000, "/usr/bin/python3", "python3", "agent.py"))
	f := fork(agent, quiet, 2_000_000)
	f.Fork.ChildCgroupID = 99
	f.Fork.ChildCgroup = "/elsewhere"
	l.event(f)
	l.event(fork(agent, mover, 3_000_000))
	mv := mover.ev(record.KindCgroupMove, 4_000_000)
	mv.CgroupMove = record.CgroupMove{Pid: 102, Tid: 102, ExecID: record.ExecID{Pid: 102, Start: 7000, Seq: 3}, Threadgroup: true,
		FromKnown: true, FromCgroupID: 7, FromCgroup: "/agenttrace/run-1", ToCgroupID: 98, ToCgroup: "/out", Traced: true}
	l.event(mv)
	pa := mover.ev(record.KindProcAccess, 5_000_000)
	pa.ProcAccess = record.ProcAccess{Syscall: "ptrace", Request: 16, Pid: 300, Tainted: true,
		Target: record.AccessTarget{Found: true, Pid: 300, Tid: 300, ExecID: record.ExecID{Pid: 300, Start: 1, Seq: 2}, Exe: "/usr/bin/bash", Comm: "bash"}}
	l.event(pa)
	fo := mover.ev(record.KindFileOp, 6_000_000)
	fo.FileOp = record.FileOp{Syscall: "renameat", Dirfd: 3, Path: record.Name{Path: "a"}, Dir: record.Dir{Present: true, Path: "/work"},
		NewDirfd: -100, NewPath: record.Name{Path: "/tmp/b"}, Ret: -2}
	l.event(fo)
	l.event(exit(mover, 7_000_000, 9))
	l.event(exit(agent, 8_000_000, 0))
	l.body(10_000_000, &record.Stop{Reason: "command exited", LeftRunning: 2, LeftRunningAction: "killed with SIGKILL after the grace period",
		TaintedRunning: 1, Records: record.Counts{"exec": 1, "open": 0, "connect": 0, "fork": 2, "exit": 2, "cgroup_move": 1, "proc_access": 1, "file_op": 1}, Lost: record.Counts{}})
	l.close()

	var out bytes.Buffer
	if err := loadReport(t, path, l.vkey, Filter{}).WriteText(&out, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"1 processes outside the session it took over were still running; 2 processes left running were killed",
		// (The test's encoder resolves no cgroup: ids stand for paths.)
		"pid 101  (no exec recorded: python3) · no exit recorded · in cgroup id 99",
		"pid 102  (no exec recorded: python3) · killed by SIGKILL · in cgroup /out",
		"CGROUP_MOVE moved process pid 102 from id 7 to /out",
		"PROC_ACCESS ptrace PTRACE_ATTACH pid 300 (bash /usr/bin/bash, outside the trace): TAKEN OVER, traced from here on",
		"file_op rename /work/a → /tmp/b (failed: ENOENT)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the text report lacks %q:\n%s", want, out.String())
		}
	}
}
