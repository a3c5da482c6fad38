package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/agenttrace/agenttrace/internal/dns"
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
	r, err := record.Decode(line)
	if err != nil {
		return "", fmt.Errorf("not a record: %w", err)
	}
	toolCall := ""
	if r.Proc != nil && !r.Proc.ToolCall.IsZero() {
		toolCall = r.Proc.ToolCall.String()
	}
	if f != nil {
		filter := f
		switch r.Body.(type) {
		case *record.Gap, *record.Freeze, *record.Thaw:
			filter = f.eventFilter()
		}
		if !filter.matches(r, toolCall) {
			return "", nil
		}
	}
	t := &textWriter{color: color}
	kind, text := t.compact(r, toolCall)
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
func (t *textWriter) compact(r *record.Record, toolCall string) (kind, text string) {
	switch b := r.Body.(type) {
	case *record.Start:
		if b.Mode == record.ModeDaemon {
			return t.style(styleBold, compactKind("start")), fmt.Sprintf("agenttrace daemon (pid %d) tracing %s", b.Pid, display(strings.Join(readables(b.Targets), ", ")))
		}
		return t.style(styleBold, compactKind("start")), fmt.Sprintf("session: %s (agenttrace pid %d, cgroup %s)", argvText(readables(b.Argv)), b.Pid, display(record.Readable(b.Cgroup)))
	case *record.Stop:
		text := fmt.Sprintf("session: exit %d", b.ExitCode)
		if b.Mode == record.ModeDaemon {
			text = "agenttrace daemon: " + display(b.Reason)
		}
		if b.LeftRunning > 0 {
			text += fmt.Sprintf(", %d processes left running were killed", b.LeftRunning)
		}
		if len(b.Lost) > 0 {
			text += ", " + t.style(styleRed, "EVENTS LOST: "+lostText(b.Lost))
		}
		return t.style(styleBold, compactKind("stop")), text
	case *record.Gap:
		return t.style(styleRed, compactKind("GAP")), display(gapText(b))
	case *record.Freeze:
		return t.style(styleRed, compactKind("FROZEN")), "processes frozen: " + display(record.Readable(b.Reason))
	case *record.Thaw:
		return t.style(styleRed, compactKind("THAWED")), fmt.Sprintf("processes thawed after %s: %s", seconds(b.FrozenNs), display(record.Readable(b.Reason)))
	}
	if r.Proc == nil {
		return "", ""
	}
	comm := display(record.Readable(r.Proc.Comm))
	who := fmt.Sprintf("pid %d %s", r.Proc.Pid, comm)
	suffix := ""
	if toolCall != "" {
		suffix = t.style(styleDim, " [tool call "+display(toolCall)+"]")
	}
	switch b := r.Body.(type) {
	case *record.Exec:
		argv := readables(b.Argv())
		img := Image{Exe: record.Readable(b.Exe), Fileless: b.ExeFile.Fileless, Deleted: b.ExeFile.Deleted}
		label := ""
		if l := img.Label(); l != "" {
			label = t.style(styleRed, l) + " "
		}
		switch {
		case b.Ret == 0 && r.HasTag(record.TagToolCallCommand):
			return t.style(styleCyan, compactKind("TOOL")), fmt.Sprintf("pid %d $ %s%s%s", r.Proc.Pid, label, t.style(styleBold, argvText(argv)), suffix)
		case b.Ret == 0 && label != "":
			return t.style(styleRed, compactKind("exec")), fmt.Sprintf("pid %d %s%s%s", r.Proc.Pid, label, argvText(argv), suffix)
		case b.Ret == 0:
			return compactKind("exec"), fmt.Sprintf("pid %d %s%s%s", r.Proc.Pid, argvText(argv), exeText(argv, record.Readable(b.Exe)), suffix)
		}
		failure := ExecFailure{Argv: argv, ArgvUnreadable: b.ArgsUnreadable, PastNoReturn: b.PastNoReturn}
		return t.style(styleYellow, compactKind("exec")), fmt.Sprintf("%s %s %s %s%s", who, t.style(styleYellow, "failed "+display(record.Errno(b.Ret))),
			display(record.Readable(b.Filename)), failure.ArgvText(), suffix)
	case *record.Open:
		path, errno := display(requestedPath(b)), record.Errno(b.Ret)
		if opened := openedPath(r, b); opened != "" {
			path += " → " + display(opened)
		}
		switch {
		case r.HasTag(record.TagCredentialAccess):
			return t.style(styleRed, compactKind("CRED")), fmt.Sprintf("%s %s%s", who,
				t.style(styleRed, openAccess(b.Flags)+" "+path+failure(errno)), suffix)
		case errno != "":
			return t.style(styleYellow, compactKind("open")), fmt.Sprintf("%s %s %s %s%s", who, t.style(styleYellow, "failed "+display(errno)),
				openAccess(b.Flags), path, suffix)
		}
	case *record.Connect:
		result := connectResult(b)
		if result != "ok" && result != "in progress" {
			result = t.style(styleYellow, display(result))
		}
		return compactKind("connect"), fmt.Sprintf("%s %s %s%s", who, display(connectAddress(b)), result, suffix)
	case *record.SockState:
		// A connect's outcome: what the record of the connect said was "in progress".
		outcome := record.StateName(b.To)
		if b.Error != "" {
			outcome = t.style(styleYellow, b.Error)
		}
		return compactKind("connect"), fmt.Sprintf("%s %s %s%s", who, display(b.Remote.String()), outcome, suffix)
	case *record.Send:
		if !b.Dest.HasFamily {
			return "", ""
		}
		return compactKind("send"), fmt.Sprintf("%s %s %s%s", who, display(b.Dest.String()), netResult(b.Ret, b.NoResult, "bytes"), suffix)
	case *record.Bind:
		return t.style(styleYellow, compactKind("bind")), fmt.Sprintf("%s %s %s%s", who, display(connectAddress(&b.Connect)), netResult(b.Ret, false, ""), suffix)
	case *record.Listen:
		return t.style(styleYellow, compactKind("listen")), fmt.Sprintf("%s %s %s%s", who, display(b.Socket.Local.String()), netResult(b.Ret, b.NoResult, ""), suffix)
	case *record.Accept:
		return t.style(styleYellow, compactKind("accept")), fmt.Sprintf("%s from %s %s%s", who, display(b.Socket.Remote.String()), netResult(b.Ret, b.NoResult, ""), suffix)
	case *record.DNS:
		m := &b.Message
		if len(m.Questions) == 0 {
			return "", ""
		}
		q := display(m.String(m.Questions[0].Name))
		if !b.Response {
			return compactKind("dns"), fmt.Sprintf("%s ? %s%s", who, q, suffix)
		}
		var answers []string
		for _, a := range m.Answers {
			answers = append(answers, display(m.String(a.Data)))
		}
		if len(answers) == 0 {
			answers = []string{t.style(styleYellow, dns.RcodeName(m.Rcode))}
		}
		return compactKind("dns"), fmt.Sprintf("%s %s = %s%s", who, q, strings.Join(answers, ", "), suffix)
	case *record.Exit:
		if toolCall != "" && r.Proc.ExecID.Pid == r.Proc.ToolCall.Pid && r.Proc.ExecID.Start == r.Proc.ToolCall.Start {
			// The top-most process of a tool call: the tool call is over.
			e := &Exit{Core: b.Signal() != 0 && b.Status&0x80 != 0}
			if sig := b.Signal(); sig != 0 {
				e.Signal = record.SignalName(sig)
			} else {
				code := b.Code()
				e.Code = &code
			}
			return t.style(styleCyan, compactKind("done")), fmt.Sprintf("%s %s%s", who, exitText(e), suffix)
		}
	}
	return "", ""
}

// netResult is a network syscall's result: "ok" ("N bytes"), the errno, or
// nothing when io_uring skipped the completion.
func netResult(ret int64, none bool, unit string) string {
	switch {
	case none:
		return ""
	case ret < 0:
		return record.Errno(ret)
	case unit != "":
		return fmt.Sprintf("%d %s", ret, unit)
	}
	return "ok"
}

// exeText names the executed file when argv[0] does not.
func exeText(argv []string, exe string) string {
	if len(argv) > 0 {
		_, arg0 := splitPath(argv[0])
		_, name := splitPath(exe)
		if arg0 == name {
			return ""
		}
	}
	return " (" + display(exe) + ")"
}
