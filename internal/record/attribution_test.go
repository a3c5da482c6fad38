package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/decoder"
	"github.com/agenttrace/agenttrace/internal/loader"
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

func (m image) hdr(kind uint32) loader.EventHeader {
	h := loader.EventHeader{
		Ktime: 1_000_000_000_000, Kseq: 1, CgroupId: cgroupID, Kind: kind, Cpu: 0,
		Pid: m.pid, Tid: m.pid, Ppid: m.parentPid, StartTime: m.start, ExecSeq: m.seq,
		ParentPid: m.parentPid, ParentStartTime: m.parentStart, ParentExecSeq: m.parentSeq,
		Auid: 4294967295,
	}
	setComm(&h, m.comm)
	return h
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

func (m image) forkEv(c image) decoder.Event {
	return decoder.Event{Hdr: m.hdr(loader.KindFork), Fork: decoder.Fork{ChildPid: c.pid, ChildStartTime: c.start}}
}

func (m image) execEv(argv string) decoder.Event {
	return decoder.Event{Hdr: m.hdr(loader.KindExec), Exec: decoder.Exec{
		Syscall: loader.SyscallExecve, Dirfd: -100, Filename: []byte("/bin/" + m.comm), Exe: []byte("/usr/bin/" + m.comm),
		ExeMode: 0o100755, Argc: 1, Args: []byte(argv + "\x00"), ArgsSize: uint32(len(argv) + 1),
	}}
}

func (m image) failedExecEv() decoder.Event {
	return decoder.Event{Hdr: m.hdr(loader.KindExec), Exec: decoder.Exec{
		Ret: -2, Syscall: loader.SyscallExecve, Dirfd: -100, Filename: []byte("/nonexistent"), Argc: 1, Args: []byte("x\x00"), ArgsSize: 2,
	}}
}

func (m image) openEv(path string) decoder.Event {
	return decoder.Event{Hdr: m.hdr(loader.KindOpen), Open: decoder.Open{Ret: 3, Syscall: loader.SyscallOpenat, Dirfd: -100, Path: []byte(path)}}
}

func (m image) exitEv() decoder.Event {
	return decoder.Event{Hdr: m.hdr(loader.KindExit)}
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
		ev   decoder.Event
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
	enc.Sensitive = DefaultSensitive()
	enc.BeginSession(agenttracePid)
	var recompute Attributor
	if _, err := recompute.Next(IDs{Type: "start", StartPid: agenttracePid}); err != nil {
		t.Fatal(err)
	}
	var prev chain.Hash
	for i, step := range steps {
		line := enc.AppendEvent(nil, uint64(i+2), &prev, &step.ev)
		prev = chain.HashLine(append(line[:len(line):len(line)], '\n'))
		if err := schema.Validate(line); err != nil {
			t.Errorf("step %d: %v\n%s", i, err, line)
		}
		got := parseWritten(t, line)
		if fmt.Sprint(got) != fmt.Sprint(step.want) {
			t.Errorf("step %d: wrote %+v, want %+v\n%s", i, got, step.want, line)
		}
		ids, err := ParseIDs(line)
		if err != nil {
			t.Fatal(err)
		}
		again, err := recompute.Next(ids)
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

// TestToolCallAttributionOff: an encoder whose session has not begun writes
// no attribution (the golden files of the kernel records are unchanged).
func TestToolCallAttributionOff(t *testing.T) {
	enc := newTestEncoder()
	agent := image{pid: 100, start: 1000, seq: 4, parentPid: agenttracePid, parentStart: 500, parentSeq: 4, comm: "sh"}
	ev := agent.forkEv(agent.child(101, 1100, "sh"))
	line := enc.AppendEvent(nil, 1, &chain.Hash{}, &ev)
	if got := parseWritten(t, line); fmt.Sprint(got) != fmt.Sprint(written{}) {
		t.Errorf("before BeginSession: %+v\n%s", got, line)
	}
}

// TestBeginSessionResets: a second session starts with no memory of the
// first one's processes.
func TestBeginSessionResets(t *testing.T) {
	enc := newTestEncoder()
	enc.BeginSession(agenttracePid)
	agent := image{pid: 100, start: 1000, seq: 4, parentPid: agenttracePid, parentStart: 500, parentSeq: 4, comm: "sh"}
	ev := agent.forkEv(agent.child(101, 1100, "sh"))
	enc.AppendEvent(nil, 1, &chain.Hash{}, &ev)
	enc.BeginSession(60)
	if n := len(enc.attr.procs); n != 0 {
		t.Errorf("BeginSession left %d processes", n)
	}
	// pid 100 was created by the old creator: now it is the top of a tool call.
	ev = agent.openEv("/x")
	if got := parseWritten(t, enc.AppendEvent(nil, 2, &chain.Hash{}, &ev)); got.ToolCall != "100-1000-4" {
		t.Errorf("tool_call %q, want 100-1000-4", got.ToolCall)
	}
}

// TestToolCallStateBounded: a root process that starts many tool calls,
// each forking and exiting, leaves only itself in the state.
func TestToolCallStateBounded(t *testing.T) {
	enc := NewEncoder("h", "b", 0, nil)
	enc.BeginSession(agenttracePid)
	agent := image{pid: 100, start: 1000, seq: 4, parentPid: agenttracePid, parentStart: 500, parentSeq: 4, comm: "sh"}
	var prev chain.Hash
	for i := range uint32(1000) {
		tool := agent.child(200+i, uint64(2000+i), "sh")
		grandchild := tool.child(5000+i, uint64(9000+i), "sh")
		for _, ev := range []decoder.Event{agent.forkEv(tool), tool.forkEv(grandchild), tool.exitEv(), grandchild.openEv("/x"), grandchild.exitEv()} {
			enc.AppendEvent(nil, 1, &prev, &ev)
		}
	}
	if n := len(enc.attr.procs); n != 1 {
		t.Errorf("%d processes in the attribution state after 1000 finished tool calls, want 1 (the agent)", n)
	}
}

func TestAttributorErrors(t *testing.T) {
	var a Attributor
	a.Next(IDs{Type: "start", StartPid: 1})
	for _, ids := range []IDs{
		{Type: "open", ExecID: "1-2", ParentExecID: "1-2-3"},
		{Type: "open", ExecID: "1-2-3", ParentExecID: "x-2-3"},
		{Type: "fork", ExecID: "1-2-3", ParentExecID: "4-5-6", ChildExecID: "7-8"},
	} {
		if _, err := a.Next(ids); err == nil {
			t.Errorf("Next(%+v) accepted malformed ids", ids)
		}
	}
	// Records before any start are not attributed.
	var fresh Attributor
	if got, err := fresh.Next(IDs{Type: "open", ExecID: "1-2-3", ParentExecID: "4-5-6"}); err != nil || got != (Attribution{}) {
		t.Errorf("before start: %+v, %v", got, err)
	}
}

// attributedEncoder is the hot path as a session runs it: attribution on,
// the default sensitive list, and the open's process inside a tool call.
func attributedEncoder(tb testing.TB) (*Encoder, []byte) {
	tb.Helper()
	raw := rawOpen(tb, "/usr/lib/x86_64-linux-gnu/libc.so.6", 0o2000000, 3)
	enc := newBenchEncoder()
	enc.Sensitive = DefaultSensitive()
	enc.BeginSession(4000) // rawOpen's process 4321 was created by 4320: a tool call
	return enc, raw
}

// BenchmarkEncodeOpenAttributed is BenchmarkEncodeOpen with tool-call
// attribution and sensitive-path tagging on.
func BenchmarkEncodeOpenAttributed(b *testing.B) {
	enc, raw := attributedEncoder(b)
	var ev decoder.Event
	prev := chain.HashLine([]byte("{}\n"))
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for i := 0; b.Loop(); i++ {
		if err := decoder.Decode(raw, &ev); err != nil {
			b.Fatal(err)
		}
		buf = enc.AppendEvent(buf[:0], uint64(i+1), &prev, &ev)
	}
}

// TestEncodeAttributedAllocs keeps the attributed hot path free of
// allocations in steady state: opens, and processes that come and go (fork,
// exec, exit).
func TestEncodeAttributedAllocs(t *testing.T) {
	enc, raw := attributedEncoder(t)
	var ev decoder.Event
	prev := chain.HashLine([]byte("{}\n"))
	buf := make([]byte, 0, 4096)
	seq := uint64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		if err := decoder.Decode(raw, &ev); err != nil {
			t.Fatal(err)
		}
		buf = enc.AppendEvent(buf[:0], seq, &prev, &ev)
	})
	if allocs != 0 {
		t.Errorf("decode + AppendEvent of an attributed, tagged open record: %v allocs/op, want 0", allocs)
	}
	if !bytes.Contains(buf, []byte(`"tool_call":"4321-999000000000-4"`)) {
		t.Errorf("the record is not attributed: %s", buf)
	}

	enc.BeginSession(agenttracePid)
	agent := image{pid: 100, start: 1000, seq: 4, parentPid: agenttracePid, parentStart: 500, parentSeq: 4, comm: "sh"}
	n := uint32(0)
	allocs = testing.AllocsPerRun(1000, func() {
		n++
		tool := agent.child(200+n%7, uint64(2000+n), "sh")
		for _, ev := range [...]decoder.Event{agent.forkEv(tool), tool.exitEv()} {
			buf = enc.AppendEvent(buf[:0], 1, &prev, &ev)
		}
	})
	if allocs != 0 {
		t.Errorf("fork + exit of a tool call: %v allocs/op, want 0", allocs)
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
		ev   decoder.Event
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
	enc.BeginDaemon()
	var recompute Attributor
	start := []byte(`{"type":"start","start":{"mode":"daemon","pid":4242}}`)
	ids, err := ParseIDs(start)
	if err != nil || !ids.Daemon {
		t.Fatalf("ParseIDs of a daemon start: %+v, %v", ids, err)
	}
	recompute.Next(ids)
	var prev chain.Hash
	for i, step := range steps {
		line := enc.AppendEvent(nil, uint64(i+2), &prev, &step.ev)
		got := parseWritten(t, line)
		if fmt.Sprint(got) != fmt.Sprint(step.want) {
			t.Errorf("step %d: wrote %+v, want %+v\n%s", i, got, step.want, line)
		}
		ids, err := ParseIDs(line)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := recompute.Next(ids)
		if again.ToolCall != got.ToolCall || again.ChildToolCall != got.ChildToolCall || again.ToolCallCommand != got.ToolCallCommand {
			t.Errorf("step %d: recomputed %+v, the encoder wrote %+v", i, again, got)
		}
	}
	if n := len(enc.attr.procs); n != 0 {
		t.Errorf("%d processes left in the attribution state", n)
	}
}
