package record

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/agenttrace/agenttrace/schema"
)

// agenttracePid is the creator of the session's command in these tests.
const agenttracePid = 50

// image is one process image: exec_id parts and its creator's.
type image struct {
	pid         uint32
	start, seq  uint64
	parentPid   uint32
	parentStart uint64
	parentSeq   uint64
	comm        string
}

// ev is an event of m as the decoder delivers it.
func (m image) ev(kind uint32) Event {
	return Event{
		Kind: kind, Ktime: 1_000_000_000_000, Kseq: 1, CPU: 0,
		Proc: Proc{
			Pid: m.pid, Tid: m.pid, Ppid: m.parentPid, Auid: 4294967295, Comm: m.comm, CgroupID: cgroupID,
			ExecID: ExecID{m.pid, m.start, m.seq}, ParentExecID: ExecID{m.parentPid, m.parentStart, m.parentSeq},
		},
	}
}

// child is the image of a new process created by m.
func (m image) child(pid uint32, start uint64, comm string) image {
	return image{pid: pid, start: start, seq: m.seq, parentPid: m.pid, parentStart: m.start, parentSeq: m.seq, comm: comm}
}

// execed is m after a successful exec.
func (m image) execed(comm string) image {
	m.seq++
	m.comm = comm
	return m
}

// forkEv is m's fork of c: the child inherits m's exec counter.
func (m image) forkEv(c image) Event {
	e := m.ev(KindFork)
	e.Fork = Fork{ChildPid: c.pid, ChildExecID: ExecID{c.pid, c.start, m.seq}}
	return e
}

func (m image) execEv(argv string) Event {
	e := m.ev(KindExec)
	e.Exec = Exec{
		Syscall: "execve", Dirfd: -100, Filename: "/bin/" + m.comm, Exe: "/usr/bin/" + m.comm,
		ExeFile: ExeFile{Mode: 0o100755}, Argc: 1, Args: argv + "\x00", ArgsSize: uint32(len(argv) + 1),
	}
	return e
}

func (m image) failedExecEv() Event {
	e := m.ev(KindExec)
	e.Exec = Exec{Ret: -2, Syscall: "execve", Dirfd: -100, Filename: "/nonexistent", Argc: 1, Args: "x\x00", ArgsSize: 2}
	return e
}

func (m image) openEv(path string) Event {
	e := m.ev(KindOpen)
	e.Open = Open{Ret: 3, Syscall: "openat", Dirfd: -100, Path: path}
	return e
}

func (m image) exitEv() Event { return m.ev(KindExit) }

// hashLine is the chain hash of a line (the sink's: SHA-256 of the line and
// its newline). record's tests cannot import chain, which imports record.
func hashLine(line []byte) [32]byte {
	return sha256.Sum256(append(line[:len(line):len(line)], '\n'))
}

// begin appends a start record, which begins tool-call attribution as
// start describes, and returns its line.
func begin(t testing.TB, enc *Encoder, seq uint64, prev *[32]byte, start *Start) []byte {
	t.Helper()
	line := enc.Append(nil, seq, prev, 1_000_000_000_000, start)
	if err := schema.Validate(line); err != nil {
		t.Fatalf("start record: %v\n%s", err, line)
	}
	*prev = hashLine(line)
	return line
}

// runStart is the start record of `agenttrace run` as agenttrace (pid)
// writes it.
func runStart(pid int) *Start {
	return &Start{AgenttraceVersion: "test", Pid: pid, Command: "/usr/bin/sh", Argv: []string{"sh", "agent.sh"},
		Cgroup: "/agenttrace/run-1", CgroupID: cgroupID, MaxArgBytes: 32768, SensitivePaths: ParsePatterns(DefaultSensitivePaths),
		Hooks: []Hook{{Hook: "tp_btf/sched_process_fork", Tag: "478f13daf0743651"}, {Hook: "tp_btf/sys_exit"}}}
}

// daemonStart is the daemon's start record.
func daemonStart(pid int) *Start {
	return &Start{Mode: ModeDaemon, AgenttraceVersion: "test", Pid: pid, Config: "/etc/agenttrace/agenttrace.yaml",
		ConfigSHA256: strings.Repeat("ab", 32), CgroupMount: "/sys/fs/cgroup", Targets: []string{"agents/*"},
		MaxArgBytes: 32768, RingSize: 16 << 20, SensitivePaths: ParsePatterns(DefaultSensitivePaths),
		Hooks: []Hook{{Hook: "tp_btf/cgroup_mkdir", Tag: "478f13daf0743651"}}}
}

// decode decodes a line the encoder wrote.
func decode(t testing.TB, line []byte) *Record {
	t.Helper()
	r, err := Decode(line)
	if err != nil {
		t.Fatalf("Decode: %v\n%s", err, line)
	}
	return r
}

// written is what a line says about attribution and tags.
type written struct {
	ToolCall        string
	ChildToolCall   string
	ToolCallCommand bool
	Tags            []string
}

func parseWritten(t *testing.T, line []byte) written {
	t.Helper()
	var r struct {
		Proc struct {
			ToolCall string `json:"tool_call"`
		} `json:"proc"`
		Fork struct {
			ChildToolCall string `json:"child_tool_call"`
		} `json:"fork"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	w := written{ToolCall: r.Proc.ToolCall, ChildToolCall: r.Fork.ChildToolCall}
	for _, tag := range r.Tags {
		if tag == TagToolCallCommand {
			w.ToolCallCommand = true
		} else {
			w.Tags = append(w.Tags, tag)
		}
	}
	return w
}

// TestToolCallAttribution runs a session through the encoder: the command
// (a root process, also after it execs again), a tool call that pipes and
// double-forks, a tool call whose fork record was lost, a process whose
// creator the log never showed, and checks every record's attribution, that
// Attributor recomputes exactly the same from the lines, and that nothing
// is left in the encoder's state once every process has exited.
func TestToolCallAttribution(t *testing.T) {
	agent := image{pid: 100, start: 1000, seq: 4, parentPid: agenttracePid, parentStart: 500, parentSeq: 4, comm: "agenttrace"}
	agentPy := agent.execed("python3")
	sh := agentPy.child(101, 1100, "python3")
	shExec := sh.execed("sh")
	tr := shExec.child(102, 1200, "sh")
	trExec := tr.execed("tr")
	daemon := trExec.child(103, 1300, "tr") // forked by tr after sh exited: reparented
	lost := agentPy.child(104, 1400, "python3")
	lostExec := lost.execed("curl")
	stray := image{pid: 105, start: 1500, seq: 9, parentPid: 999, parentStart: 900, parentSeq: 9, comm: "stray"}
	agentSh := agentPy.execed("sh")
	late := agentSh.child(106, 1600, "sh")

	const (
		tc1 = "101-1100-5" // sh's id at its fork: the agent's image had exec counter 5
		tc2 = "104-1400-5"
		tc3 = "105-1500-9"
		tc4 = "106-1600-6"
	)
	steps := []struct {
		ev   Event
		want written
	}{
		{agentPy.execEv("python3"), written{}}, // the command's exec: a root process, no command marker
		{agentPy.openEv("/etc/hostname"), written{}},
		{agentPy.forkEv(sh), written{ChildToolCall: tc1}},
		{sh.openEv("/dev/null"), written{ToolCall: tc1}},
		{sh.failedExecEv(), written{ToolCall: tc1}}, // a failed exec is not the command
		{shExec.execEv("sh"), written{ToolCall: tc1, ToolCallCommand: true}},
		{shExec.forkEv(tr), written{ToolCall: tc1}},
		{trExec.execEv("tr"), written{ToolCall: tc1}}, // not the top-most process: no marker
		{shExec.exitEv(), written{ToolCall: tc1}},
		{trExec.forkEv(daemon), written{ToolCall: tc1}},
		{trExec.exitEv(), written{ToolCall: tc1}},
		{daemon.openEv("/home/u/.ssh/id_ed25519"), written{ToolCall: tc1, Tags: []string{TagCredentialAccess}}},
		// The fork record of lost is not in the log: its first record is its exec.
		{lostExec.execEv("curl"), written{ToolCall: tc2, ToolCallCommand: true}},
		{lostExec.openEv("/etc/hosts"), written{ToolCall: tc2}},
		{stray.openEv("x/.env"), written{ToolCall: tc3, Tags: []string{TagCredentialAccess}}},
		{agentSh.execEv("sh"), written{}},
		{agentSh.forkEv(late), written{ChildToolCall: tc4}},
		{late.exitEv(), written{ToolCall: tc4}},
		{daemon.exitEv(), written{ToolCall: tc1}},
		{lostExec.exitEv(), written{ToolCall: tc2}},
		{stray.exitEv(), written{ToolCall: tc3}},
		{agentSh.exitEv(), written{}},
	}

	enc := newTestEncoder()
	enc.SetSensitive(DefaultSensitive())
	var prev [32]byte
	start := begin(t, enc, 1, &prev, runStart(agenttracePid))
	var recompute Attributor
	if got, err := recompute.Next(decode(t, start)); err != nil || got != (Attribution{}) {
		t.Fatalf("Next(start) = %+v, %v", got, err)
	}
	for i, step := range steps {
		line := enc.AppendEvent(nil, uint64(i+2), &prev, &step.ev)
		prev = hashLine(line)
		if err := schema.Validate(line); err != nil {
			t.Errorf("step %d: %v\n%s", i, err, line)
		}
		got := parseWritten(t, line)
		if fmt.Sprint(got) != fmt.Sprint(step.want) {
			t.Errorf("step %d: wrote %+v, want %+v\n%s", i, got, step.want, line)
		}
		rec := decode(t, line)
		if w := Written(rec); w.ToolCall != got.ToolCall || w.ChildToolCall != got.ChildToolCall || w.ToolCallCommand != got.ToolCallCommand {
			t.Errorf("step %d: Written = %+v, the line says %+v", i, w, got)
		}
		again, err := recompute.Next(rec)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if again.ToolCall != got.ToolCall || again.ChildToolCall != got.ChildToolCall || again.ToolCallCommand != got.ToolCallCommand {
			t.Errorf("step %d: recomputed %+v, the encoder wrote %+v", i, again, got)
		}
	}
	// The agent's first image never exited (it exec'ed): only the
	// processes alive at the end would remain, and there are none.
	if n := len(enc.attr.procs); n != 0 {
		t.Errorf("%d processes left in the attribution state after every exit: %v", n, enc.attr.procs)
	}
	if n := len(recompute.a.procs); n != 0 {
		t.Errorf("%d processes left in the recomputation's state", n)
	}
}

// TestToolCallAttributionOff: an encoder that has not written a start
// record writes no attribution (the golden files of the kernel records are
// unchanged).
func TestToolCallAttributionOff(t *testing.T) {
	enc := newTestEncoder()
	agent := image{pid: 100, start: 1000, seq: 4, parentPid: agenttracePid, parentStart: 500, parentSeq: 4, comm: "sh"}
	ev := agent.forkEv(agent.child(101, 1100, "sh"))
	line := enc.AppendEvent(nil, 1, &[32]byte{}, &ev)
	if got := parseWritten(t, line); fmt.Sprint(got) != fmt.Sprint(written{}) {
		t.Errorf("before a start record: %+v\n%s", got, line)
	}
	// Records of agenttrace's own other than start do not begin it either.
	enc.Append(nil, 2, &[32]byte{}, 1, &Heartbeat{})
	enc.Append(nil, 3, &[32]byte{}, 1, &Stop{Reason: "exit"})
	ev = agent.openEv("/x")
	if got := parseWritten(t, enc.AppendEvent(nil, 4, &[32]byte{}, &ev)); fmt.Sprint(got) != fmt.Sprint(written{}) {
		t.Errorf("after heartbeat and stop records: %+v", got)
	}
}

// TestStartResets: a second start record begins a session with no memory
// of the first one's processes.
func TestStartResets(t *testing.T) {
	enc := newTestEncoder()
	var prev [32]byte
	begin(t, enc, 1, &prev, runStart(agenttracePid))
	agent := image{pid: 100, start: 1000, seq: 4, parentPid: agenttracePid, parentStart: 500, parentSeq: 4, comm: "sh"}
	ev := agent.forkEv(agent.child(101, 1100, "sh"))
	enc.AppendEvent(nil, 2, &prev, &ev)
	begin(t, enc, 3, &prev, runStart(60))
	if n := len(enc.attr.procs); n != 0 {
		t.Errorf("a second start record left %d processes", n)
	}
	// pid 100 was created by the old creator: now it is the top of a tool call.
	ev = agent.openEv("/x")
	if got := parseWritten(t, enc.AppendEvent(nil, 4, &prev, &ev)); got.ToolCall != "100-1000-4" {
		t.Errorf("tool_call %q, want 100-1000-4", got.ToolCall)
	}
}

// TestToolCallStateBounded: a root process that starts many tool calls,
// each forking and exiting, leaves only itself in the state.
func TestToolCallStateBounded(t *testing.T) {
	enc := NewEncoder("h", testBootID, 0, nil)
	var prev [32]byte
	begin(t, enc, 1, &prev, runStart(agenttracePid))
	agent := image{pid: 100, start: 1000, seq: 4, parentPid: agenttracePid, parentStart: 500, parentSeq: 4, comm: "sh"}
	for i := range uint32(1000) {
		tool := agent.child(200+i, uint64(2000+i), "sh")
		grandchild := tool.child(5000+i, uint64(9000+i), "sh")
		for _, ev := range []Event{agent.forkEv(tool), tool.forkEv(grandchild), tool.exitEv(), grandchild.openEv("/x"), grandchild.exitEv()} {
			enc.AppendEvent(nil, 1, &prev, &ev)
		}
	}
	if n := len(enc.attr.procs); n != 1 {
		t.Errorf("%d processes in the attribution state after 1000 finished tool calls, want 1 (the agent)", n)
	}
}

// TestAttributorErrors: ids that are not <pid>-<start>-<counter> do not
// decode (so they never reach an Attributor), and a kernel record without
// exec_id or parent_exec_id is an error of Next.
func TestAttributorErrors(t *testing.T) {
	enc := newTestEncoder()
	ev := exitEv(agent, 0)
	good := enc.AppendEvent(nil, 1, &[32]byte{}, &ev)
	forkEvent := forkEv(shell, child)
	goodFork := enc.AppendEvent(nil, 2, &[32]byte{}, &forkEvent)
	for _, tc := range []struct {
		line     []byte
		old, new string
	}{
		{good, `"exec_id":"200-910000000000-7"`, `"exec_id":"1-2"`},
		{good, `"parent_exec_id":"99-800000000000-4"`, `"parent_exec_id":"x-2-3"`},
		{good, `"exec_id":"200-910000000000-7"`, `"exec_id":"1-2-3-4"`},
		{good, `"exec_id":"200-910000000000-7"`, `"exec_id":"4294967296-2-3"`},
		{goodFork, `"child_exec_id":"101-900500000000-5"`, `"child_exec_id":"7-8"`},
	} {
		if !bytes.Contains(tc.line, []byte(tc.old)) {
			t.Fatalf("test line has no %s: %s", tc.old, tc.line)
		}
		bad := bytes.Replace(tc.line, []byte(tc.old), []byte(tc.new), 1)
		if r, err := Decode(bad); err == nil {
			t.Errorf("Decode accepted malformed ids %s: %+v", tc.new, r.Proc)
		}
	}

	var a Attributor
	a.Next(&Record{Type: "start", Body: &Start{Pid: 1}})
	for _, p := range []*Proc{
		{ExecID: ExecID{1, 2, 3}},       // no parent_exec_id
		{ParentExecID: ExecID{4, 5, 6}}, // no exec_id
		{},
	} {
		if got, err := a.Next(&Record{Type: "open", Proc: p, Body: &Open{}}); err == nil {
			t.Errorf("Next(proc %+v) accepted missing ids: %+v", p, got)
		}
	}
	// Records before any start are not attributed.
	var fresh Attributor
	rec := decode(t, good)
	if got, err := fresh.Next(rec); err != nil || got != (Attribution{}) {
		t.Errorf("before start: %+v, %v", got, err)
	}
}

// TestToolCallAttributionDaemon: under the daemon, processes the log never
// saw created (a container's init, a process already running) are root
// processes, and what they create are tool calls as in a run session.
func TestToolCallAttributionDaemon(t *testing.T) {
	init1 := image{pid: 200, start: 2000, seq: 3, parentPid: 1, parentStart: 10, parentSeq: 1, comm: "agent"}
	tool := init1.child(201, 2100, "agent")
	toolExec := tool.execed("git")
	other := image{pid: 300, start: 3000, seq: 2, parentPid: 77, parentStart: 70, parentSeq: 5, comm: "node"}
	const tc = "201-2100-3"
	steps := []struct {
		ev   Event
		want written
	}{
		{init1.openEv("/etc/hostname"), written{}},
		{init1.forkEv(tool), written{ChildToolCall: tc}},
		{toolExec.execEv("git"), written{ToolCall: tc, ToolCallCommand: true}},
		{other.openEv("/tmp/x"), written{}}, // another root: entered from outside
		{toolExec.exitEv(), written{ToolCall: tc}},
		{other.exitEv(), written{}},
		{init1.exitEv(), written{}},
	}
	enc := newTestEncoder()
	var prev [32]byte
	start := decode(t, begin(t, enc, 1, &prev, daemonStart(4242)))
	if s, ok := start.Body.(*Start); !ok || s.Mode != ModeDaemon || s.Pid != 4242 {
		t.Fatalf("Decode of a daemon start: %+v", start.Body)
	}
	var recompute Attributor
	recompute.Next(start)
	for i, step := range steps {
		line := enc.AppendEvent(nil, uint64(i+2), &prev, &step.ev)
		prev = hashLine(line)
		got := parseWritten(t, line)
		if fmt.Sprint(got) != fmt.Sprint(step.want) {
			t.Errorf("step %d: wrote %+v, want %+v\n%s", i, got, step.want, line)
		}
		again, err := recompute.Next(decode(t, line))
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if again.ToolCall != got.ToolCall || again.ChildToolCall != got.ChildToolCall || again.ToolCallCommand != got.ToolCallCommand {
			t.Errorf("step %d: recomputed %+v, the encoder wrote %+v", i, again, got)
		}
	}
	if n := len(enc.attr.procs); n != 0 {
		t.Errorf("%d processes left in the attribution state", n)
	}
}
