package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/sink"
	"github.com/agenttrace/agenttrace/schema"
)

// Session times: ktime 1_000_000_000_000 is 2025-01-02T03:04:05Z.
const (
	wallOffset = 1_735_787_045_000_000_000 - 1_000_000_000_000
	t0         = 1_000_000_000_000
	tracerPid  = 50
)

type proc struct {
	pid        uint32
	start, seq uint64
	parent     *proc
	comm       string
}

// ev is an event of p at t0+at as the decoder delivers it.
func (p *proc) ev(kind uint32, at uint64) record.Event {
	e := record.Event{Kind: kind, Ktime: t0 + at, Kseq: 1,
		Proc: record.Proc{Pid: p.pid, Tid: p.pid, Auid: 4294967295, Comm: p.comm, CgroupID: 7,
			ExecID: record.ExecID{Pid: p.pid, Start: p.start, Seq: p.seq}, ParentExecID: record.ExecID{Pid: tracerPid, Start: 1, Seq: 3}}}
	if p.parent != nil {
		e.Proc.Ppid, e.Proc.ParentExecID = p.parent.pid, record.ExecID{Pid: p.parent.pid, Start: p.parent.start, Seq: p.seq}
	}
	return e
}

// logBuilder writes a real log (header, chain, checkpoints) with the
// encoder a session uses.
type logBuilder struct {
	t    *testing.T
	enc  *record.Encoder
	log  *sink.Writer
	path string
	vkey string
}

func newLog(t *testing.T, path string) *logBuilder {
	t.Helper()
	skey, vkey, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	enc := record.NewEncoder("host-1", "b78835f2-8fc3-4e6c-826a-884af615cd65", wallOffset, nil)
	enc.SetSensitive(record.DefaultSensitive())
	w, err := sink.Open(sink.Options{Base: path, Signer: signer, VerifierKey: vkey, Encoder: enc, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return &logBuilder{t: t, enc: enc, log: w, path: path, vkey: vkey}
}

func (l *logBuilder) event(ev record.Event) {
	l.t.Helper()
	if err := l.log.AppendEvent(&ev); err != nil {
		l.t.Fatal(err)
	}
}

// body appends one of agenttrace's own records at t0+at.
func (l *logBuilder) body(at uint64, body record.Body) {
	l.t.Helper()
	if err := l.log.AppendAt(t0+at, body); err != nil {
		l.t.Fatal(err)
	}
}

// start appends the session's start record, which begins attribution.
func (l *logBuilder) start() {
	l.body(0, &record.Start{AgenttraceVersion: "test", Pid: tracerPid, Command: "/usr/bin/python3", Argv: []string{"python3", "agent.py"},
		Cgroup: "/agenttrace/run-1", CgroupID: 7, MaxArgBytes: 32768, SensitivePaths: l.enc.Sensitive().Patterns(),
		Hooks: []record.Hook{{Hook: "tp_btf/sched_process_fork"}}})
}

// close closes the log and checks that every line of it is valid.
func (l *logBuilder) close() {
	l.t.Helper()
	if err := l.log.Close(); err != nil {
		l.t.Fatal(err)
	}
	data, err := os.ReadFile(l.path)
	if err != nil {
		l.t.Fatal(err)
	}
	for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		if err := schema.Validate(line); err != nil {
			l.t.Errorf("line %d: %v\n%s", i+1, err, line)
		}
	}
}

func exec(p *proc, at uint64, exe string, argv ...string) record.Event {
	p.seq++
	args := strings.Join(argv, "\x00") + "\x00"
	e := p.ev(record.KindExec, at)
	e.Exec = record.Exec{Syscall: "execve", Dirfd: -100, Filename: exe, Exe: exe, ExeFile: record.ExeFile{Mode: 0o100755},
		Argc: uint32(len(argv)), Args: args, ArgsSize: uint32(len(args))}
	return e
}

func open(p *proc, at uint64, path string, flags uint64, ret int64) record.Event {
	e := p.ev(record.KindOpen, at)
	e.Open = record.Open{Ret: ret, Syscall: "openat", Dirfd: -100, Flags: flags, Path: path}
	return e
}

func fork(p, child *proc, at uint64) record.Event {
	child.parent, child.seq = p, p.seq
	e := p.ev(record.KindFork, at)
	e.Fork = record.Fork{ChildPid: child.pid, ChildExecID: record.ExecID{Pid: child.pid, Start: child.start, Seq: p.seq}}
	return e
}

func exit(p *proc, at uint64, status uint32) record.Event {
	e := p.ev(record.KindExit, at)
	e.Exit = record.Exit{Status: status}
	return e
}

func connect(p *proc, at uint64, port uint16, ret int64) record.Event {
	addr := []byte{2, 0, byte(port >> 8), byte(port), 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
	e := p.ev(record.KindConnect, at)
	e.Connect = record.Connect{Ret: ret, Syscall: "connect", Fd: 3, Addrlen: 16, Addr: record.ParseSockaddr(addr)}
	return e
}

// hostile is a file name that would recolour a terminal and reverse text.
const hostile = "/tmp/x\x1b[31m\u202etxt.exe"

// writeSessionLog writes a session: the agent (python3) reads its .env,
// runs a tool call (sh, which reads a file with a hostile name, connects,
// forks a child that outlives it), loses events (a gap record), and forks a
// worker that never execs, tries /etc/shadow and is killed.
func writeSessionLog(t *testing.T, path string) string {
	l := newLog(t, path)
	agent := &proc{pid: 100, start: 5000, seq: 3, comm: "python3"}
	sh := &proc{pid: 101, start: 6000, comm: "python3"}
	bg := &proc{pid: 102, start: 7000, comm: "sh"}
	worker := &proc{pid: 103, start: 8000, comm: "python3"}
	l.start()
	l.event(exec(agent, 1_000_000, "/usr/bin/python3", "python3", "agent.py"))
	l.event(open(agent, 2_000_000, "/home/u/project/.env", 0, 3))
	l.event(fork(agent, sh, 10_000_000))
	sh.comm = "sh"
	l.event(exec(sh, 11_000_000, "/usr/bin/sh", "sh", "-c", "cat "+hostile+" | nc 127.0.0.1 443"))
	l.event(open(sh, 12_000_000, hostile, 0, -2))
	l.event(open(sh, 12_500_000, hostile, 0, -2))
	l.event(open(sh, 13_000_000, "/tmp/out.txt", 0o1001, 4))
	l.event(connect(sh, 14_000_000, 443, 0))
	l.event(fork(sh, bg, 15_000_000))
	l.event(exit(sh, 20_000_000, 0))
	l.body(30_000_000, &record.Gap{Stage: "kernel", Reason: "ring buffer full", CPU: 1, Lost: record.Counts{"open": 7},
		From: mustTime(t, "2025-01-02T03:04:05.020000000Z"), To: mustTime(t, "2025-01-02T03:04:05.030000000Z")})
	l.event(open(bg, 40_000_000, "/var/log/bg.log", 0o2101, 3))
	l.event(exit(bg, 50_000_000, 1<<8))
	l.event(fork(agent, worker, 60_000_000))
	l.event(open(worker, 61_000_000, "/etc/shadow", 0, -13))
	l.event(exit(worker, 70_000_000, 9))
	l.event(exit(agent, 90_000_000, 0))
	l.body(100_000_000, &record.Stop{Reason: "command exited", ExitCode: 0, LeftRunning: 0,
		Records: record.Counts{"exec": 2, "open": 7, "connect": 1, "fork": 3, "exit": 4}, Lost: record.Counts{"open": 7}})
	l.close()
	return l.vkey
}

const wantText = `LOG: INTACT: 21 records verified (seq 1-21, 1 segment, 1 checkpoint, last signed seq 20), signed by the key you gave (--pubkey)
  1 session, 2 tool calls, 4 processes, 3 files opened (3 failed opens), 1 connection, 2 credential accesses, 7 events lost

session 2025-01-02T03:04:05.000000000Z · host host-1 · agenttrace pid 50 · cgroup /agenttrace/run-1
  command  python3 agent.py
  ended    exit 0 after 0.100s; EVENTS LOST: 7 open

  agent (the command and the programs it exec'd; their records have no tool_call)
    pid 100  python3 agent.py · exit 0
      CREDENTIAL read /home/u/project/.env

  tool call 101-6000-4 · +0.010s · took 0.040s · exit 0
    $ sh -c "cat /tmp/x\x1b[31m\u202etxt.exe | nc 127.0.0.1 443"
    pid 101  sh -c "cat /tmp/x\x1b[31m\u202etxt.exe | nc 127.0.0.1 443" · exit 0
      connect  127.0.0.1:443 ok
      write  /tmp/out.txt
      failed ENOENT /tmp/"x\x1b[31m\u202etxt.exe" ×2
      pid 102  (no exec recorded: sh) · exit 1
        create /var/log/bg.log

  GAP +0.020s to +0.030s 7 open events lost (kernel: ring buffer full, cpu 1) (seq 13)

  tool call 103-8000-4 · +0.060s · took 0.010s · killed by SIGKILL
    (no exec recorded: a fork of python3 agent.py)
    !! credential_access: this tool call opened credential material
    pid 103  (no exec recorded: python3) · killed by SIGKILL
      CREDENTIAL read /etc/shadow (failed: EACCES)
`

func loadReport(t *testing.T, path, vkey string, f Filter) *Report {
	t.Helper()
	rep, err := Load([]string{path}, Options{Verify: chain.VerifyOptions{PublicKeys: []string{vkey}}, Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	vkey := writeSessionLog(t, path)
	rep := loadReport(t, path, vkey, Filter{})
	var out bytes.Buffer
	if err := rep.WriteText(&out, false); err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(wantText, "LOG", path)
	if out.String() != want {
		t.Errorf("WriteText:\n%s\nwant:\n%s", out.String(), want)
	}
	if problems := rep.Logs[0].Problems; len(problems) != 0 {
		t.Errorf("problems: %q", problems)
	}
	out.Reset()
	rep.WriteText(&out, true)
	colored := out.String()
	if !strings.Contains(colored, "\x1b[1;31mCREDENTIAL read /etc/shadow (failed: EACCES)\x1b[0m") {
		t.Errorf("colour output has no red credential line:\n%s", colored)
	}
	// The only escape sequences are the report's own colours.
	if stripped := stripStyles(colored); strings.ContainsAny(stripped, "\x1b\u202e") {
		t.Errorf("the hostile name reached the terminal raw:\n%q", stripped)
	}
}

// stripStyles removes the report's own SGR sequences.
func stripStyles(s string) string {
	for _, code := range []string{styleBold, styleDim, styleRed, styleGreen, styleYellow, styleCyan, "0"} {
		s = strings.ReplaceAll(s, "\x1b["+code+"m", "")
	}
	return s
}

func TestJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	vkey := writeSessionLog(t, path)
	var out bytes.Buffer
	if err := loadReport(t, path, vkey, Filter{}).WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsRune(out.Bytes(), '\u202e') || !bytes.Contains(out.Bytes(), []byte(`\u202e`)) {
		t.Errorf("U+202E is not escaped in the JSON output")
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	s := rep.Logs[0].Sessions[0]
	if len(s.ToolCalls) != 2 || s.ToolCalls[0].ID != "101-6000-4" || s.ToolCalls[0].Argv[2] != "cat "+hostile+" | nc 127.0.0.1 443" ||
		s.ToolCalls[1].ForkOf[1] != "agent.py" || !s.ToolCalls[1].Credential || s.ToolCalls[0].Processes[0].Children[0].Pid != 102 {
		t.Errorf("JSON tree: %s", out.Bytes())
	}
	if f := s.ToolCalls[0].Processes[0].Files[0]; f.Path != hostile || f.Count != 2 || f.Errno != "ENOENT" {
		t.Errorf("JSON file: %+v", f)
	}
}

func TestHTML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	vkey := writeSessionLog(t, path)
	var out bytes.Buffer
	if err := loadReport(t, path, vkey, Filter{}).WriteHTML(&out); err != nil {
		t.Fatal(err)
	}
	html := out.String()
	for _, want := range []string{
		`<div class="verify ok" id="verify">`, `id="tc-101-6000-4"`, `<span class="tag">credential_access</span>`,
		`&#34;/tmp/x\x1b[31m\u202etxt.exe&#34;`, `sh -c &#34;cat /tmp/x\x1b[31m\u202etxt.exe | nc 127.0.0.1 443&#34;`,
		`style="left:10%;width:40%"`, `style="left:60%;width:10%"`, `class="mark" style="left:20%;width:10%"`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML has no %s", want)
		}
	}
	if strings.ContainsAny(html, "\x1b\u202e") || strings.Contains(html, "http") {
		t.Errorf("HTML has a raw control character or an external reference")
	}
}

func TestFilters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	vkey := writeSessionLog(t, path)
	for _, tc := range []struct {
		name      string
		filter    Filter
		toolCalls []string
		agent     bool
		events    int
		processes int
	}{
		{"all", Filter{}, []string{"101-6000-4", "103-8000-4"}, true, 1, 4},
		{"tool call", Filter{ToolCall: "103-8000-4"}, []string{"103-8000-4"}, false, 1, 1},
		{"tag", Filter{Tag: record.TagCredentialAccess}, []string{"103-8000-4"}, true, 1, 2},
		{"pid", Filter{Pid: 102}, []string{"101-6000-4"}, false, 1, 2}, // 101 stays as context
		{"type", Filter{Types: []string{"connect", "gap"}}, []string{"101-6000-4"}, false, 1, 1},
		{"window", Filter{Since: mustTime(t, "2025-01-02T03:04:05.035Z"), Until: mustTime(t, "2025-01-02T03:04:05.065Z")}, []string{"101-6000-4", "103-8000-4"}, true, 0, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := loadReport(t, path, vkey, tc.filter).Logs[0]
			if len(l.Sessions) != 1 {
				t.Fatalf("%d sessions", len(l.Sessions))
			}
			s := l.Sessions[0]
			var ids []string
			for _, c := range s.ToolCalls {
				ids = append(ids, c.ID)
			}
			if strings.Join(ids, " ") != strings.Join(tc.toolCalls, " ") || (len(s.Agent) > 0) != tc.agent || len(s.Events) != tc.events || l.Summary.Processes != tc.processes {
				t.Errorf("tool calls %q agent %v events %d processes %d", ids, len(s.Agent) > 0, len(s.Events), l.Summary.Processes)
			}
		})
	}
}

// TestDamaged: a changed byte makes the first line say DAMAGED; a changed
// tool_call is also reported as differing from the recomputed one.
func TestDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	vkey := writeSessionLog(t, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte(`"tool_call":"103-8000-4"},"open"`), []byte(`"tool_call":"101-6000-4"},"open"`), 1)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	rep := loadReport(t, path, vkey, Filter{})
	var out bytes.Buffer
	rep.WriteText(&out, false)
	first, _, _ := strings.Cut(out.String(), "\n")
	if want := path + ": DAMAGED: modified at " + path + " line 17 (seq 17): "; !strings.HasPrefix(first, want) {
		t.Errorf("first line %q, want prefix %q", first, want)
	}
	if p := rep.Logs[0].Problems; len(p) != 1 || !strings.Contains(p[0], "seq 17: the log's tool-call attribution") {
		t.Errorf("problems %q", p)
	}
	// The tree follows the ids, not the altered claim.
	if c := rep.Logs[0].Sessions[0].ToolCalls; len(c) != 2 || c[1].Processes[0].Pid != 103 {
		t.Errorf("tool calls after tampering: %+v", c)
	}
}

func TestDisplay(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/passwd":      "/etc/passwd",
		"café 日本":          "café 日本",
		"a\nb":             `"a\nb"`,
		"x\u202ey":         `"x\u202ey"`,
		"\u200bzero-width": `"\u200bzero-width"`,
		"bell\x07":         `"bell\a"`,
	} {
		if got := display(in); got != want {
			t.Errorf("display(%q) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{"ls": "ls", "a b": "'a b'", "it's": `'it'\''s'`, "": "''", "-c": "-c", "x\ty": `"x\ty"`} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestExecFailureArgv: a failed exec whose argv is not known never shows as
// a command run with no arguments.
func TestExecFailureArgv(t *testing.T) {
	for _, tc := range []struct {
		x    ExecFailure
		want string
	}{
		{ExecFailure{Argv: []string{"ls", "-l"}}, "ls -l"},
		{ExecFailure{Argv: []string{"ls"}, ArgvUnreadable: true}, "ls (argv unreadable)"},
		{ExecFailure{ArgvUnreadable: true}, "(argv unreadable)"},
		{ExecFailure{ArgvUnreadable: true, PastNoReturn: true}, "(past the point of no return: argv unknown)"},
	} {
		if got := tc.x.ArgvText(); got != tc.want {
			t.Errorf("%+v: ArgvText() = %q, want %q", tc.x, got, tc.want)
		}
	}
}
