package record

import "fmt"

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
	toolCall ExecID
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
		m.toolCall = ExecID{p.pid, p.start, parentSeq}
		m.awaitingCommand = true
	}
	a.procs[p] = m
	return m
}

// fork records that the process with membership m created child, which
// inherits m's self_exec_id seq. It reports whether child starts a tool call.
func (a *attribution) fork(m membership, child processID, seq uint64) bool {
	if m.root {
		a.procs[child] = membership{toolCall: ExecID{child.pid, child.start, seq}, awaitingCommand: true}
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

// Attributor recomputes tool-call attribution from a log alone: give it every
// record of the log in seq order and it returns, for each, what the encoder
// wrote (proc.tool_call, fork.child_tool_call, the tool_call_command tag).
type Attributor struct {
	a attribution
}

// Next takes the next record of the log.
func (t *Attributor) Next(r *Record) (Attribution, error) {
	if s, ok := r.Body.(*Start); ok {
		if s.Mode == ModeDaemon {
			t.a.begin(0, true)
		} else {
			t.a.begin(uint32(s.Pid), false)
		}
		return Attribution{}, nil
	}
	// cgroup records take no part: their process made a directory.
	if !t.a.active || r.Proc == nil || r.Type == "cgroup" {
		return Attribution{}, nil
	}
	self, parent := r.Proc.ExecID, r.Proc.ParentExecID
	if self.IsZero() || parent.IsZero() {
		return Attribution{}, fmt.Errorf("proc: missing exec_id or parent_exec_id")
	}
	m := t.a.of(self.process(), parent.process(), parent.Seq)
	var out Attribution
	if !m.root {
		out.ToolCall = m.toolCall.String()
	}
	switch body := r.Body.(type) {
	case *Exec:
		if body.Ret == 0 {
			out.ToolCallCommand = t.a.exec(self.process(), m)
		}
	case *Fork:
		if t.a.fork(m, body.ChildExecID.process(), body.ChildExecID.Seq) {
			out.ChildToolCall = body.ChildExecID.String()
		}
	case *Exit:
		t.a.exit(self.process())
	}
	return out, nil
}

// Written is the attribution a record carries, to compare with what
// Attributor recomputes.
func Written(r *Record) Attribution {
	var a Attribution
	if r.Proc != nil && !r.Proc.ToolCall.IsZero() {
		a.ToolCall = r.Proc.ToolCall.String()
	}
	if f, ok := r.Body.(*Fork); ok && f.ChildToolCall {
		a.ChildToolCall = f.ChildExecID.String()
	}
	a.ToolCallCommand = r.HasTag(TagToolCallCommand)
	return a
}
