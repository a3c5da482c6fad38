package integration

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the module's root directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// demoRecord is what the narration test reads of a record.
type demoRecord struct {
	Type string `json:"type"`
	Proc struct {
		ExecID   string `json:"exec_id"`
		ToolCall string `json:"tool_call"`
	} `json:"proc"`
	Exec *struct {
		Argv []string `json:"argv"`
		Ret  int      `json:"ret"`
	} `json:"exec"`
	Open *struct {
		Path  string   `json:"path"`
		Flags []string `json:"flags"`
		Ret   int      `json:"ret"`
		Errno string   `json:"errno"`
	} `json:"open"`
	Connect *struct {
		Addr  string `json:"addr"`
		Port  int    `json:"port"`
		Ret   int    `json:"ret"`
		Errno string `json:"errno"`
	} `json:"connect"`
	Exit *struct {
		Code *int `json:"code"`
	} `json:"exit"`
	Tags []string `json:"tags"`
}

// The demo's claims: every "agent:" line is one of these (or an indented
// detail line of the claim before it).
var (
	claimTool    = regexp.MustCompile(`^agent: tool call: (.+)$`)
	claimExit    = regexp.MustCompile(`^agent:   exit (\d+): `)
	claimOpen    = regexp.MustCompile(`^agent: (open|create) (\S+): (\w+)$`)
	claimConnect = regexp.MustCompile(`^agent: connect ([0-9.]+):(\d+): (\w+)$`)
	claimDetail  = regexp.MustCompile(`^agent:   (task|service said): `)
)

// TestDemoNarration: every claim demo/agent.py prints about what it did is
// what the log records: each tool call's command and exit status, each open
// (created or read, ok or the errno), each connect's result as the kernel
// returned it; the .env is tagged credential access.
func TestDemoNarration(t *testing.T) {
	requireRoot(t)
	python := pythonInterpreter(t)
	dir := testDir(t)
	s := agent(t, dir, runOpts{}, python, filepath.Join(repoRoot(t), "demo", "agent.py"))
	if s.exit != 0 {
		t.Fatalf("the demo exited %d:\n%s\n%s", s.exit, s.stdout, s.stderr)
	}
	var recs []*demoRecord
	for _, line := range s.lines {
		r := &demoRecord{}
		if err := json.Unmarshal(line, r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	errnoOf := func(ok bool, errno string) string {
		if ok {
			return "ok"
		}
		return errno
	}

	claims := 0
	var toolCall *demoRecord // the exec of the last tool call claimed
	for _, line := range strings.Split(strings.TrimSpace(s.stdout), "\n") {
		if !strings.HasPrefix(line, "agent: ") {
			continue
		}
		claims++
		switch m := []*regexp.Regexp{claimTool, claimExit, claimOpen, claimConnect, claimDetail}; {
		case m[0].MatchString(line):
			argv := m[0].FindStringSubmatch(line)[1]
			i := slices.IndexFunc(recs, func(r *demoRecord) bool {
				return r.Exec != nil && slices.Contains(r.Tags, "tool_call_command") && shellJoin(r.Exec.Argv) == argv
			})
			if i < 0 {
				t.Errorf("%q: no tool call ran %s", line, argv)
				toolCall = nil
				continue
			}
			toolCall = recs[i]
		case m[1].MatchString(line):
			code, _ := strconv.Atoi(m[1].FindStringSubmatch(line)[1])
			if toolCall == nil {
				t.Errorf("%q: exit of no tool call", line)
				continue
			}
			// The tool call ends with the exit of its top-most process.
			top := processOf(toolCall.Proc.ToolCall)
			i := slices.IndexFunc(recs, func(r *demoRecord) bool {
				return r.Exit != nil && processOf(r.Proc.ExecID) == top
			})
			if i < 0 || recs[i].Exit.Code == nil || *recs[i].Exit.Code != code {
				t.Errorf("%q: the log's exit of tool call %s is not code %d", line, toolCall.Proc.ToolCall, code)
			}
		case m[2].MatchString(line):
			g := m[2].FindStringSubmatch(line)
			create, path, result := g[1] == "create", g[2], g[3]
			i := slices.IndexFunc(recs, func(r *demoRecord) bool {
				return r.Open != nil && r.Open.Path == path && slices.Contains(r.Open.Flags, "O_CREAT") == create
			})
			if i < 0 {
				t.Errorf("%q: no open of %s in the log", line, path)
				continue
			}
			if got := errnoOf(recs[i].Open.Ret >= 0, recs[i].Open.Errno); got != result {
				t.Errorf("%q: the log says %s", line, got)
			}
			if strings.HasSuffix(path, "/.env") && !slices.Contains(recs[i].Tags, "credential_access") {
				t.Errorf("%q: the open is not tagged credential_access", line)
			}
		case m[3].MatchString(line):
			g := m[3].FindStringSubmatch(line)
			port, _ := strconv.Atoi(g[2])
			i := slices.IndexFunc(recs, func(r *demoRecord) bool {
				return r.Connect != nil && r.Connect.Addr == g[1] && r.Connect.Port == port
			})
			if i < 0 {
				t.Errorf("%q: no connect to %s:%d in the log", line, g[1], port)
				continue
			}
			if got := errnoOf(recs[i].Connect.Ret == 0, recs[i].Connect.Errno); got != g[3] {
				t.Errorf("%q: the log says %s", line, got)
			}
		case m[4].MatchString(line):
		default:
			t.Errorf("%q is not a claim this test can check against the log", line)
		}
	}
	if claims < 12 {
		t.Errorf("%d claims, want at least 12:\n%s", claims, s.stdout)
	}
	// The .env was read by a tool call (cat), tagged credential access.
	if !slices.ContainsFunc(recs, func(r *demoRecord) bool {
		return r.Open != nil && strings.HasSuffix(r.Open.Path, "/.env") && r.Proc.ToolCall != "" && slices.Contains(r.Tags, "credential_access")
	}) {
		t.Error("no tool call's read of the .env is tagged credential_access")
	}
}

// processOf is an exec_id without its exec counter.
func processOf(execID string) string {
	if i := strings.LastIndexByte(execID, '-'); i > 0 {
		return execID[:i]
	}
	return execID
}

// shellJoin is Python's shlex.join.
func shellJoin(argv []string) string {
	parts := make([]string, len(argv))
	safe := regexp.MustCompile(`^[\w@%+=:,./-]+$`)
	for i, a := range argv {
		if safe.MatchString(a) {
			parts[i] = a
		} else {
			parts[i] = "'" + strings.ReplaceAll(a, "'", `'"'"'`) + "'"
		}
	}
	return strings.Join(parts, " ")
}
