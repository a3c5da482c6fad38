package report

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/agenttrace/agenttrace/internal/record"
)

// ANSI styles, used only when writing to a terminal.
const (
	styleBold   = "1"
	styleDim    = "2"
	styleRed    = "1;31"
	styleGreen  = "1;32"
	styleYellow = "33"
	styleCyan   = "1;36"
)

// maxArgvText bounds an argv on one terminal line; JSON and HTML keep all.
const maxArgvText = 1024

type textWriter struct {
	b     strings.Builder
	color bool
}

func (t *textWriter) style(code, s string) string {
	if !t.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (t *textWriter) line(indent int, parts ...string) {
	t.b.WriteString(strings.Repeat("  ", indent))
	t.b.WriteString(strings.Join(parts, ""))
	t.b.WriteByte('\n')
}

// WriteText writes the report as an indented tree: for each log, first
// whether it verifies, then each session, its agent (root) processes and
// tool calls with their processes, files, connections, credential access
// and lost events. color adds ANSI colours (for a terminal only).
func (rep *Report) WriteText(w io.Writer, color bool) error {
	t := &textWriter{color: color}
	for i, l := range rep.Logs {
		if i > 0 {
			t.line(0)
		}
		t.logText(l, rep.Filter)
	}
	_, err := io.WriteString(w, t.b.String())
	return err
}

// VerifyLine is the first line of a log's report: intact or damaged.
func (l *Log) VerifyLine() string {
	v := &l.Verify
	if !v.Intact {
		return fmt.Sprintf("%s: DAMAGED: %s; what follows is read from a log that is not what agenttrace wrote", display(l.Path), display(v.Damage))
	}
	key := "the key you gave (--pubkey)"
	if !v.KeyChecked {
		key = strings.Join(v.Keys, ", ") + ", the key named in the log (check it with --pubkey)"
	}
	s := fmt.Sprintf("%s: INTACT: %d records verified (seq 1-%d, %d segment%s, %d checkpoint%s, last signed seq %d), signed by %s",
		display(l.Path), v.Records, v.LastSeq, len(l.Segments), plural(len(l.Segments)), v.Checkpoints, plural(v.Checkpoints),
		v.LastSignedSeq, display(key))
	if v.Unsigned > 0 {
		s += fmt.Sprintf("; %d records after the last checkpoint are not signed", v.Unsigned)
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (t *textWriter) logText(l *Log, filter string) {
	if l.Verify.Intact {
		t.line(0, t.style(styleGreen, l.VerifyLine()))
	} else {
		t.line(0, t.style(styleRed, l.VerifyLine()))
	}
	for _, r := range l.Verify.Recovered {
		t.line(1, "recovered: ", display(r))
	}
	for _, p := range l.Problems {
		t.line(1, t.style(styleYellow, "problem: "+display(p)))
	}
	if filter != "" {
		t.line(1, "filter: ", display(filter))
	}
	s := &l.Summary
	t.line(1, fmt.Sprintf("%d session%s, %d tool call%s, %d process%s, %d file%s opened (%d failed open%s), %d connection%s, %d credential access%s, %d events lost",
		s.Sessions, plural(s.Sessions), s.ToolCalls, plural(s.ToolCalls), s.Processes, pluralEs(s.Processes), s.FilesOpened, plural(s.FilesOpened),
		s.FailedOpens, plural(s.FailedOpens), s.Connections, plural(s.Connections), s.CredentialAccess, pluralEs(s.CredentialAccess), s.LostEvents))
	for _, s := range l.Sessions {
		t.line(0)
		t.session(s)
	}
}

func pluralEs(n int) string {
	if n == 1 {
		return ""
	}
	return "es"
}

func (t *textWriter) session(s *Session) {
	if s.Seq == 0 {
		t.line(0, t.style(styleBold, "records outside any session (no start record before them)"))
	} else {
		t.line(0, t.style(styleBold, "session "+display(s.Time)), fmt.Sprintf(" · host %s · agenttrace pid %d · cgroup %s", display(s.Host), s.AgenttracePid, display(s.Cgroup)))
		t.line(1, "command  ", argvText(s.Argv))
		if s.Ended {
			end := fmt.Sprintf("exit %d after %s", s.ExitCode, seconds(s.DurationNs))
			if s.TaintedRunning > 0 {
				end += fmt.Sprintf("; %d processes outside the session it took over were still running", s.TaintedRunning)
			}
			if s.LeftRunning > 0 {
				end += fmt.Sprintf("; %d processes left running were killed", s.LeftRunning)
			}
			if len(s.Lost) > 0 {
				end += "; " + t.style(styleRed, "EVENTS LOST: "+lostText(s.Lost))
			}
			t.line(1, "ended    ", end)
		} else {
			t.line(1, "ended    ", t.style(styleYellow, "no stop record: the session did not end cleanly, or the log was cut"))
		}
		if !s.Attributed {
			t.line(1, "note     the tracer did not attribute tool calls in this log: computed here from the records' ids")
		}
	}
	if len(s.Agent) > 0 {
		t.line(0)
		t.line(1, t.style(styleBold, "agent"), t.style(styleDim, " (the command and the programs it exec'd; their records have no tool_call)"))
		for _, p := range s.Agent {
			t.process(p, 2)
		}
	}
	for _, item := range s.Items() {
		if item.Event != nil {
			t.event(item.Event)
		} else {
			t.toolCall(item.ToolCall)
		}
	}
}

// lostText lists loss counts: "7 open, 1 exec", kernel kinds first.
func lostText(lost record.Counts) string {
	var parts []string
	for _, kind := range lostOrder(lost) {
		parts = append(parts, fmt.Sprintf("%d %s", lost[kind], kind))
	}
	return strings.Join(parts, ", ")
}

func (t *textWriter) event(e *Event) {
	t.line(0)
	label := map[string]string{"gap": "GAP", "freeze": "FROZEN", "thaw": "THAWED"}[e.Type]
	when := "+" + seconds(e.AtNs)
	if e.UntilNs > e.AtNs {
		when += " to +" + seconds(e.UntilNs)
	}
	t.line(1, t.style(styleRed, label+" "+when), " ", display(e.Text), t.style(styleDim, fmt.Sprintf(" (seq %d)", e.Seq)))
}

func (t *textWriter) toolCall(c *ToolCall) {
	t.line(0)
	head := fmt.Sprintf("tool call %s", c.ID)
	result := "no exit recorded"
	if c.Exit != nil {
		result = exitText(c.Exit)
	}
	t.line(1, t.style(styleCyan, head), fmt.Sprintf(" · +%s · took %s · %s", seconds(c.StartNs), seconds(c.DurationNs), result))
	switch {
	case len(c.Argv) > 0:
		label := ""
		if l := c.ExeLabel(); l != "" {
			label = t.style(styleRed, l) + " "
		}
		t.line(2, "$ ", label, t.style(styleBold, argvText(c.Argv)))
	case len(c.ForkOf) > 0:
		t.line(2, "(no exec recorded: a fork of ", argvText(c.ForkOf), ")")
	default:
		t.line(2, t.style(styleYellow, "(what it ran is not in the log: its fork and first exec records are missing)"))
	}
	if c.Credential {
		t.line(2, t.style(styleRed, "!! credential_access: this tool call opened credential material"))
	}
	for _, p := range c.Processes {
		t.process(p, 2)
	}
}

func exitText(e *Exit) string {
	switch {
	case e.Signal != "" && e.Core:
		return "killed by " + e.Signal + " (core dumped)"
	case e.Signal != "":
		return "killed by " + e.Signal
	case e.Code != nil:
		return "exit " + strconv.Itoa(*e.Code)
	}
	return "exited"
}

func (t *textWriter) process(p *Process, indent int) {
	var what []string
	for _, img := range p.Images {
		text := argvText(img.Argv)
		if label := img.Label(); label != "" {
			text = t.style(styleRed, label) + " " + text
		}
		what = append(what, text)
	}
	head := strings.Join(what, " → exec ")
	if head == "" {
		head = t.style(styleDim, "(no exec recorded: "+display(p.Comm)+")")
	}
	end := "no exit recorded"
	if p.Exit != nil {
		end = exitText(p.Exit)
	}
	if p.Cgroup != "" {
		end += " · in cgroup " + display(p.Cgroup)
	}
	t.line(indent, t.style(styleBold, fmt.Sprintf("pid %d", p.Pid)), "  ", head, " · ", end)
	for _, f := range p.Credentials {
		t.line(indent+1, t.style(styleRed, "CREDENTIAL "+f.Access+" "+display(f.Path)+opened(f)+count(f.Count)+failure(f.Errno)))
	}
	for _, c := range p.Connects {
		res := c.Result
		if c.Result != "ok" && c.Result != "in progress" && c.Result != "in progress → ok" {
			res = t.style(styleYellow, display(res))
		}
		t.line(indent+1, "connect  ", display(c.Address), " ", res, count(c.Count))
	}
	for _, x := range p.Net {
		res := display(x.Result)
		if x.Result != "ok" && !strings.HasPrefix(x.Result, "→") {
			res = t.style(styleYellow, res)
		}
		t.line(indent+1, fmt.Sprintf("%-8s ", x.Kind), display(x.Text), " ", res, count(x.Count))
	}
	t.files(p.Files, indent+1)
	for _, x := range p.ExecFailed {
		t.line(indent+1, t.style(styleYellow, "exec failed "+x.Errno), " ", display(x.Filename), " ", x.ArgvText())
	}
	for _, a := range p.Actions {
		text := display(a.Text) + failure(a.Errno)
		switch {
		case a.Alert:
			text = t.style(styleRed, strings.ToUpper(a.Type)+" "+text)
		case len(a.Tags) > 0:
			text = t.style(styleRed, a.Type+" "+text+" ["+strings.Join(a.Tags, ",")+"]")
		default:
			text = a.Type + " " + text
		}
		t.line(indent+1, text)
	}
	for _, c := range p.Children {
		t.process(c, indent+1)
	}
}

// accessOrder is the order of the file groups of a process.
var accessOrder = []string{"read", "dir", "path", "write", "create", "rdwr"}

// files writes a process's opens grouped: successes by access, then
// failures by errno; within a group, files of one directory on one line;
// everything in the order of first open.
func (t *textWriter) files(files []*File, indent int) {
	for _, access := range accessOrder {
		t.fileGroup(files, indent, access, func(f *File) bool { return f.Access == access && f.Errno == "" }, "")
	}
	var errnos []string
	for _, f := range files {
		if f.Errno != "" && !slices.Contains(errnos, f.Errno) {
			errnos = append(errnos, f.Errno)
		}
	}
	for _, errno := range errnos {
		t.fileGroup(files, indent, "failed", func(f *File) bool { return f.Errno == errno }, errno)
	}
}

// opened is " → the file opened" when a File names it.
func opened(f *File) string {
	if f.Opened == "" {
		return ""
	}
	return " → " + display(f.Opened)
}

func (t *textWriter) fileGroup(files []*File, indent int, label string, in func(*File) bool, errno string) {
	var dirs []string
	names := map[string][]string{}
	for _, f := range files {
		if !in(f) {
			continue
		}
		dir, name := splitPath(f.Path)
		if _, ok := names[dir]; !ok {
			dirs = append(dirs, dir)
		}
		what := display(name) + opened(f) + count(f.Count)
		if errno != "" && f.Access != "read" {
			what += " (" + f.Access + ")"
		}
		names[dir] = append(names[dir], what)
	}
	label = fmt.Sprintf("%-7s", label)
	if errno != "" {
		label += errno + " "
	}
	for _, dir := range dirs {
		text := display(dir) + strings.Join(names[dir], ", ")
		if len(names[dir]) > 1 {
			text = display(dir) + "{" + strings.Join(names[dir], ", ") + "}"
		}
		if errno != "" {
			t.line(indent, t.style(styleYellow, label), text)
		} else {
			t.line(indent, label, text)
		}
		label = strings.Repeat(" ", len(label))
	}
}

// splitPath splits after the last slash: "/a/b" is "/a/" and "b"; a name
// without a slash has no directory.
func splitPath(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 || i == len(p)-1 {
		return "", p
	}
	return p[:i+1], p[i+1:]
}

func count(n int) string {
	if n > 1 {
		return fmt.Sprintf(" ×%d", n)
	}
	return ""
}

func failure(errno string) string {
	if errno == "" {
		return ""
	}
	return " (failed: " + errno + ")"
}

// argvText is argv as a shell would read it, quoted where needed, with
// control and format characters escaped; cut at maxArgvText.
func argvText(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = shellQuote(a)
	}
	s := strings.Join(parts, " ")
	if len(s) > maxArgvText {
		cut := maxArgvText
		for cut > 0 && s[cut]&0xc0 == 0x80 {
			cut--
		}
		s = fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s))
	}
	return s
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	if !plainText(s) {
		return strconv.QuoteToGraphic(s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

// plainText reports whether s can be shown as is: every character visible
// (letters, marks, numbers, punctuation, symbols, spaces), none that could
// move the cursor, break the line, reorder or hide text.
func plainText(s string) bool {
	for _, r := range s {
		if !unicode.IsGraphic(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}

// display is s as is when it is plain text, else Go-quoted with escapes.
func display(s string) string {
	if plainText(s) {
		return s
	}
	return strconv.QuoteToGraphic(s)
}
