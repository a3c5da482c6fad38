package report

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agenttrace/agenttrace/internal/record"
)

// Compact is the one-line form of a record for a live view (agenttrace show
// --follow): the time (UTC), what happened, who did it and to what. It
// covers what an operator watching an agent wants to see as it happens:
// sessions starting and stopping, tool calls and their end, every exec,
// opens of note (credential access, failures), every connect, lost events
// (gap), freezes and thaws. Other records, and records f does not select,
// give "". Tool-call attribution is the one the log carries (a live view
// has not read the records before it); names are escaped as in every
// report. color adds ANSI colours (for a terminal only).
func Compact(line []byte, f *Filter, color bool) (string, error) {
	var r rawRecord
	if err := json.Unmarshal(line, &r); err != nil {
		return "", fmt.Errorf("not a record: %w", err)
	}
	toolCall := ""
	if r.Proc != nil {
		toolCall = r.Proc.ToolCall
	}
	if f != nil {
		filter := f
		if r.Type == "gap" || r.Type == "freeze" || r.Type == "thaw" {
			filter = f.eventFilter()
		}
		if !filter.matches(&r, toolCall) {
			return "", nil
		}
	}
	t := &textWriter{color: color}
	kind, text := t.compact(&r)
	if kind == "" {
		return "", nil
	}
	when := r.Time
	if ts, err := time.Parse(time.RFC3339Nano, r.Time); err == nil {
		when = ts.UTC().Format("15:04:05.000")
	}
	return fmt.Sprintf("%s %s %s", t.style(styleDim, when), kind, text), nil
}

// compactKind pads a kind to the width of the longest.
func compactKind(kind string) string { return fmt.Sprintf("%-7s", kind) }

// compact returns the styled kind column and the rest of r's line, or ""
// for a record the live view leaves out.
func (t *textWriter) compact(r *rawRecord) (kind, text string) {
	switch {
	case r.Start != nil:
		if r.Start.Mode == "daemon" {
			return t.style(styleBold, compactKind("start")), fmt.Sprintf("agenttrace daemon (pid %d) tracing %s", r.Start.Pid, display(strings.Join(r.Start.Targets, ", ")))
		}
		return t.style(styleBold, compactKind("start")), fmt.Sprintf("session: %s (agenttrace pid %d, cgroup %s)", argvText(r.Start.Argv), r.Start.Pid, display(r.Start.Cgroup))
	case r.Stop != nil:
		text := fmt.Sprintf("session: exit %d", r.Stop.ExitCode)
		if r.Stop.LeftRunning > 0 {
			text += fmt.Sprintf(", %d processes left running were killed", r.Stop.LeftRunning)
		}
		if len(r.Stop.Lost) > 0 {
			text += ", " + t.style(styleRed, "EVENTS LOST: "+lostText(r.Stop.Lost))
		}
		return t.style(styleBold, compactKind("stop")), text
	case r.Gap != nil:
		return t.style(styleRed, compactKind("GAP")), display(r.Gap.text())
	case r.Freeze != nil:
		return t.style(styleRed, compactKind("FROZEN")), "processes frozen: " + display(r.Freeze.Reason)
	case r.Thaw != nil:
		return t.style(styleRed, compactKind("THAWED")), fmt.Sprintf("processes thawed after %s: %s", seconds(r.Thaw.FrozenNs), display(r.Thaw.Reason))
	case r.Proc == nil:
		return "", ""
	}
	who := fmt.Sprintf("pid %d %s", r.Proc.Pid, display(r.Proc.Comm))
	suffix := ""
	if r.Proc.ToolCall != "" {
		suffix = t.style(styleDim, " [tool call "+display(r.Proc.ToolCall)+"]")
	}
	switch {
	case r.Exec != nil && r.Exec.Ret == 0 && slices.Contains(r.Tags, record.TagToolCallCommand):
		return t.style(styleCyan, compactKind("TOOL")), fmt.Sprintf("pid %d $ %s%s", r.Proc.Pid, t.style(styleBold, argvText(r.Exec.Argv)), suffix)
	case r.Exec != nil && r.Exec.Ret == 0:
		return compactKind("exec"), fmt.Sprintf("pid %d %s%s%s", r.Proc.Pid, argvText(r.Exec.Argv), exeText(r.Exec), suffix)
	case r.Exec != nil:
		return t.style(styleYellow, compactKind("exec")), fmt.Sprintf("%s %s %s %s%s", who, t.style(styleYellow, "failed "+display(r.Exec.Errno)),
			display(r.Exec.Filename), argvText(r.Exec.Argv), suffix)
	case r.Open != nil && slices.Contains(r.Tags, record.TagCredentialAccess):
		return t.style(styleRed, compactKind("CRED")), fmt.Sprintf("%s %s%s", who,
			t.style(styleRed, openAccess(r.Open.Flags)+" "+display(r.Open.Path)+failure(r.Open.Errno)), suffix)
	case r.Open != nil && r.Open.Errno != "":
		return t.style(styleYellow, compactKind("open")), fmt.Sprintf("%s %s %s %s%s", who, t.style(styleYellow, "failed "+display(r.Open.Errno)),
			openAccess(r.Open.Flags), display(r.Open.Path), suffix)
	case r.Connect != nil:
		result := r.Connect.result()
		if result != "ok" && result != "in progress" {
			result = t.style(styleYellow, display(result))
		}
		return compactKind("connect"), fmt.Sprintf("%s %s %s%s", who, display(r.Connect.address()), result, suffix)
	case r.Exit != nil && r.Proc.ToolCall != "" && processKey(r.Proc.ExecID) == processKey(r.Proc.ToolCall):
		// The top-most process of a tool call: the tool call is over.
		e := &Exit{Code: r.Exit.Code, Signal: r.Exit.Signal, Core: r.Exit.CoreDumped}
		return t.style(styleCyan, compactKind("done")), fmt.Sprintf("%s %s%s", who, exitText(e), suffix)
	}
	return "", ""
}

// exeText names the executed file when argv[0] does not.
func exeText(e *rawExec) string {
	if len(e.Argv) > 0 {
		_, arg0 := splitPath(e.Argv[0])
		_, exe := splitPath(e.Exe)
		if arg0 == exe {
			return ""
		}
	}
	return " (" + display(e.Exe) + ")"
}
