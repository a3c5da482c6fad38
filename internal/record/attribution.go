package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Tool-call attribution (docs/schema.md, "Tool calls"). The session's root
// processes are the ones agenttrace itself created (the command, and the
// programs it becomes by exec). Every process a root process creates starts
// a tool call, named by the exec_id that process had when it was created (the
// child_exec_id of the fork record); its descendants belong to the same tool
// call for life, whatever they do (exec, setsid, double fork, reparenting).
//
// The state is a function of the records before: the encoder feeds it the
// ids of each record it writes, and Attributor feeds it the same ids read
// back from a log, so both compute the same tool_call for every record.

// processID names a process for its whole life: an exec_id without its exec
// counter.
type processID struct {
	pid   uint32
	start uint64
}

// membership is where a live process belongs.
type membership struct {
	root bool
	// toolCall is the fork-time exec_id of the tool call's top-most process.
	toolCall procKey
	// awaitingCommand: the top-most process of its tool call, which has not
	// exec'ed yet; its first successful exec is the tool call's command.
	awaitingCommand bool
}

// attribution tracks the membership of the live processes of one session.
// Entries are created at a process's fork record (or its first record, if
// the fork record is not in the log) and dropped at its exit record.
type attribution struct {
	active  bool
	creator uint32 // agenttrace's pid: the processes it creates are the roots
	// daemon: there is no creator; a process the log has not seen created
	// (it was in a target before tracing began, or entered one from
	// outside) is a root process.
	daemon bool
	procs  map[processID]membership
}

func (a *attribution) begin(creator uint32, daemon bool) {
	a.active, a.creator, a.daemon = true, creator, daemon
	if a.procs == nil {
		a.procs = make(map[processID]membership)
	}
	clear(a.procs)
}

// of returns the membership of process p, whose creator was parent with
// self_exec_id parentSeq at the creation, learning it on p's first record.
func (a *attribution) of(p, parent processID, parentSeq uint64) membership {
	if m, ok := a.procs[p]; ok {
		return m
	}
	var m membership
	switch pm, known := a.procs[parent]; {
	case parent.pid == a.creator:
		m.root = true
	case known && !pm.root:
		m.toolCall = pm.toolCall
	case a.daemon && !known:
		m.root = true
	default:
		// Created by a root process whose fork record is not in the log, or
		// by a process the log never showed: p is the top of a tool call.
		m.toolCall = procKey{p.pid, p.start, parentSeq}
		m.awaitingCommand = true
	}
	a.procs[p] = m
	return m
}

// fork records that the process with membership m created child, which
// inherits m's self_exec_id seq. It reports whether child starts a tool call.
func (a *attribution) fork(m membership, child processID, seq uint64) bool {
	if m.root {
		a.procs[child] = membership{toolCall: procKey{child.pid, child.start, seq}, awaitingCommand: true}
		return true
	}
	a.procs[child] = membership{toolCall: m.toolCall}
	return false
}

// exec records a successful exec of p and reports whether its argv is the
// command of p's tool call.
func (a *attribution) exec(p processID, m membership) bool {
	if !m.awaitingCommand {
		return false
	}
	m.awaitingCommand = false
	a.procs[p] = m
	return true
}

func (a *attribution) exit(p processID) { delete(a.procs, p) }

// Attribution is what the encoder derives from a record's ids and the
// records before it.
type Attribution struct {
	ToolCall        string // proc.tool_call; "" for a root process and for records without proc
	ChildToolCall   string // fork.child_tool_call: the fork starts this tool call
	ToolCallCommand bool   // tags has tool_call_command: this exec's argv is its tool call's command
}

// IDs are the members of a record that attribution reads.
type IDs struct {
	Type         string
	StartPid     uint32 // start: start.pid
	Daemon       bool   // start: start.mode is "daemon"
	ExecID       string // kernel records: proc.exec_id
	ParentExecID string // kernel records: proc.parent_exec_id
	ChildExecID  string // fork: fork.child_exec_id
	ExecOK       bool   // exec: exec.ret is 0
}

// ParseIDs reads the IDs of one log line.
func ParseIDs(line []byte) (IDs, error) {
	var r struct {
		Type string `json:"type"`
		Proc *struct {
			ExecID       string `json:"exec_id"`
			ParentExecID string `json:"parent_exec_id"`
		} `json:"proc"`
		Start *struct {
			Pid  uint32 `json:"pid"`
			Mode string `json:"mode"`
		} `json:"start"`
		Exec *struct {
			Ret int64 `json:"ret"`
		} `json:"exec"`
		Fork *struct {
			ChildExecID string `json:"child_exec_id"`
		} `json:"fork"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return IDs{}, err
	}
	ids := IDs{Type: r.Type}
	if r.Proc != nil {
		ids.ExecID, ids.ParentExecID = r.Proc.ExecID, r.Proc.ParentExecID
	}
	if r.Start != nil {
		ids.StartPid = r.Start.Pid
		ids.Daemon = r.Start.Mode == "daemon"
	}
	if r.Exec != nil {
		ids.ExecOK = r.Exec.Ret == 0
	}
	if r.Fork != nil {
		ids.ChildExecID = r.Fork.ChildExecID
	}
	return ids, nil
}

// Attributor recomputes tool-call attribution from a log alone: give it every
// record of the log in seq order and it returns, for each, what the encoder
// wrote (proc.tool_call, fork.child_tool_call, the tool_call_command tag).
type Attributor struct {
	a attribution
}

// Next takes the next record of the log.
func (t *Attributor) Next(ids IDs) (Attribution, error) {
	switch ids.Type {
	case "start":
		t.a.begin(ids.StartPid, ids.Daemon)
		return Attribution{}, nil
	case "exec", "open", "connect", "fork", "exit":
	default:
		return Attribution{}, nil
	}
	if !t.a.active {
		return Attribution{}, nil
	}
	self, _, err := parseExecID(ids.ExecID)
	if err != nil {
		return Attribution{}, fmt.Errorf("proc.exec_id: %w", err)
	}
	parent, parentSeq, err := parseExecID(ids.ParentExecID)
	if err != nil {
		return Attribution{}, fmt.Errorf("proc.parent_exec_id: %w", err)
	}
	m := t.a.of(self, parent, parentSeq)
	var out Attribution
	if !m.root {
		out.ToolCall = formatExecID(m.toolCall)
	}
	switch ids.Type {
	case "exec":
		if ids.ExecOK {
			out.ToolCallCommand = t.a.exec(self, m)
		}
	case "fork":
		child, seq, err := parseExecID(ids.ChildExecID)
		if err != nil {
			return Attribution{}, fmt.Errorf("fork.child_exec_id: %w", err)
		}
		if t.a.fork(m, child, seq) {
			out.ChildToolCall = ids.ChildExecID
		}
	case "exit":
		t.a.exit(self)
	}
	return out, nil
}

var errExecID = errors.New("not <pid>-<start>-<counter>")

func parseExecID(s string) (processID, uint64, error) {
	pid, rest, ok1 := strings.Cut(s, "-")
	start, seq, ok2 := strings.Cut(rest, "-")
	if !ok1 || !ok2 {
		return processID{}, 0, fmt.Errorf("%q: %w", s, errExecID)
	}
	p, err1 := strconv.ParseUint(pid, 10, 32)
	st, err2 := strconv.ParseUint(start, 10, 64)
	sq, err3 := strconv.ParseUint(seq, 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return processID{}, 0, fmt.Errorf("%q: %w", s, errExecID)
	}
	return processID{uint32(p), st}, sq, nil
}

func formatExecID(k procKey) string {
	return string(appendID(nil, k.pid, k.start, k.seq))
}
