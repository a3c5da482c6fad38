package report

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agenttrace/agenttrace/internal/record"
)

// openFile is an open of path that the kernel resolved to file.
func openFile(p *proc, at uint64, path, file string, ret int64) record.Event {
	e := open(p, at, path, 0, ret)
	e.Open.File = record.File{Present: true, Path: file, Dev: 254 << 20, Ino: 9, Mode: 0o100644}
	return e
}

// TestTextFilesAndExecutables: show names the program a process ran when
// it has no path (fileless) or was deleted, before the argv it chose; and
// the file an open opened when the name asked for does not say which.
func TestTextFilesAndExecutables(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l := newLog(t, path)
	agent := &proc{pid: 100, start: 5000, seq: 3, comm: "python3"}
	tool := &proc{pid: 101, start: 6000, comm: "python3"}
	l.start()
	l.event(exec(agent, 1_000_000, "/usr/bin/python3", "python3", "agent.py"))
	for i, dir := range []string{"a", "b", "c"} {
		l.event(openFile(agent, uint64(2_000_000+i), "target.txt", "/home/u/"+dir+"/target.txt", 3))
	}
	l.event(openFile(agent, 3_000_000, "/tmp/notes.md", "/home/u/.ssh/id_rsa", 3))
	l.event(openFile(agent, 3_100_000, "/lib/libz.so.1", "/usr/lib/libz.so.1.3", 3))
	l.event(fork(agent, tool, 10_000_000))
	fileless := exec(tool, 11_000_000, "memfd:payload", "git", "status")
	fileless.Exec.ExeFile.Fileless = true
	l.event(fileless)
	deleted := exec(tool, 12_000_000, "/tmp/tool", "ls")
	deleted.Exec.ExeFile.Deleted = true
	l.event(deleted)
	l.event(exit(tool, 20_000_000, 0))
	l.event(exit(agent, 90_000_000, 0))
	l.body(100_000_000, &record.Stop{Reason: "command exited", Records: record.Counts{"exec": 3, "open": 5, "connect": 0, "fork": 1, "exit": 2}, Lost: record.Counts{}})
	l.close()

	rep := loadReport(t, path, l.vkey, Filter{})
	var out bytes.Buffer
	if err := rep.WriteText(&out, false); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"CREDENTIAL read /tmp/notes.md → /home/u/.ssh/id_rsa\n",
		"read   {target.txt → /home/u/a/target.txt, target.txt → /home/u/b/target.txt, target.txt → /home/u/c/target.txt}\n",
		"       /lib/libz.so.1\n",
		"$ [fileless memfd:payload] git status\n",
		"pid 101  [fileless memfd:payload] git status → exec [deleted /tmp/tool] ls · exit 0\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("show does not say %q:\n%s", want, text)
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"exe": "memfd:payload",`, `"fileless": true,`, `"deleted": true,`, `"opened": "/home/u/.ssh/id_rsa",`} {
		if !strings.Contains(js.String(), want) {
			t.Errorf("show --json has no %s:\n%s", want, js.String())
		}
	}
}
