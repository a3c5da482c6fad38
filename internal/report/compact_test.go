package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// compactLines is the live view of the log at path: its Compact lines.
func compactLines(t *testing.T, path string, f *Filter, color bool) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		text, err := Compact(line, f, color)
		if err != nil {
			t.Fatal(err)
		}
		if text != "" {
			out.WriteString(text + "\n")
		}
	}
	return out.String()
}

const wantCompact = `03:04:05.000 start   session: python3 agent.py (agenttrace pid 50, cgroup /agenttrace/run-1)
03:04:05.001 exec    pid 100 python3 agent.py
03:04:05.002 CRED    pid 100 python3 read /home/u/project/.env
03:04:05.011 TOOL    pid 101 $ sh -c "cat /tmp/x\x1b[31m\u202etxt.exe | nc 127.0.0.1 443" [tool call 101-6000-4]
03:04:05.012 open    pid 101 sh failed ENOENT read "/tmp/x\x1b[31m\u202etxt.exe" [tool call 101-6000-4]
03:04:05.012 open    pid 101 sh failed ENOENT read "/tmp/x\x1b[31m\u202etxt.exe" [tool call 101-6000-4]
03:04:05.014 connect pid 101 sh 127.0.0.1:443 ok [tool call 101-6000-4]
03:04:05.020 done    pid 101 sh exit 0 [tool call 101-6000-4]
03:04:05.030 GAP     7 open events lost (kernel: ring buffer full, cpu 1)
03:04:05.061 CRED    pid 103 python3 read /etc/shadow (failed: EACCES) [tool call 103-8000-4]
03:04:05.070 done    pid 103 python3 killed by SIGKILL [tool call 103-8000-4]
03:04:05.100 stop    session: exit 0, EVENTS LOST: 7 open
`

// TestCompact: the live view has one line per record of note: every exec
// (the tool call's command marked), credential access, failed opens, every
// connect, the end of each tool call, lost events; escaped, coloured only
// when asked, and filtered like the tree.
func TestCompact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	writeSessionLog(t, path)
	if got := compactLines(t, path, &Filter{}, false); got != wantCompact {
		t.Errorf("Compact:\n%s\nwant:\n%s", got, wantCompact)
	}
	colored := compactLines(t, path, &Filter{}, true)
	if !strings.Contains(colored, "\x1b[1;31mread /etc/shadow (failed: EACCES)\x1b[0m") {
		t.Errorf("colour output has no red credential access:\n%s", colored)
	}
	if stripped := stripStyles(colored); stripped != wantCompact {
		t.Errorf("colour output without its colours differs:\n%s", stripped)
	}

	for _, tc := range []struct {
		name   string
		filter Filter
		seqs   []string // the times of the lines selected
	}{
		{"tool call", Filter{ToolCall: "103-8000-4"}, []string{"03:04:05.030", "03:04:05.061", "03:04:05.070"}}, // the gap stays
		{"pid", Filter{Pid: 100}, []string{"03:04:05.001", "03:04:05.002", "03:04:05.030"}},
		{"tag", Filter{Tag: "credential_access"}, []string{"03:04:05.002", "03:04:05.030", "03:04:05.061"}},
		{"type", Filter{Types: []string{"connect"}}, []string{"03:04:05.014"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var times []string
			for _, line := range strings.Split(strings.TrimSuffix(compactLines(t, path, &tc.filter, false), "\n"), "\n") {
				times = append(times, strings.Fields(line)[0])
			}
			if strings.Join(times, " ") != strings.Join(tc.seqs, " ") {
				t.Errorf("lines at %q, want %q", times, tc.seqs)
			}
		})
	}
}

// TestCompactNetwork: the live view's lines of the network records, from
// the schema's examples (records written by the real tracer).
func TestCompactNetwork(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "schema", "testdata", "valid.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		typ := ""
		for _, k := range []string{"send", "bind", "listen", "accept", "sock_state", "dns"} {
			if bytes.Contains(line, []byte(`"type":"`+k+`"`)) {
				typ = k
			}
		}
		if typ == "" {
			continue
		}
		text, err := Compact(line, nil, false)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		got[typ] = append(got[typ], text[len("00:00:00.000 "):])
	}
	for typ, prefix := range map[string]string{
		"send": "send    pid 20284 it.test ", "bind": "bind    pid 20357 uring_net ", "listen": "listen  pid 20357 uring_net ",
		"accept": "accept  pid 20357 uring_net from ", "sock_state": "connect pid 20322 it.test ", "dns": "dns     pid 20322 it.test ",
	} {
		if len(got[typ]) == 0 {
			t.Errorf("no compact line for a %s record", typ)
		}
		for _, line := range got[typ] {
			if !strings.HasPrefix(line, prefix) {
				t.Errorf("%s: %q, want it to start %q", typ, line, prefix)
			}
		}
	}
	t.Logf("%v", got)
}
