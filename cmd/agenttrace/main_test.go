package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/sink"
)

var update = flag.Bool("update", false, "rewrite docs/cli.md from the command tree")

// cli runs the command line and returns its output and exit status.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = execute(args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// commands is every command of the tree but the root, by path without
// "agenttrace ".
func commands(t *testing.T) map[string]*cobra.Command {
	t.Helper()
	all := map[string]*cobra.Command{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden {
				continue
			}
			all[commandName(sub)] = sub
			walk(sub)
		}
	}
	walk(newRootCommand(nil, nil, nil))
	for _, want := range []string{"run", "show", "verify", "daemon", "daemon stop", "export", "keygen", "check", "version", "help", "completion", "completion bash", "completion zsh", "completion fish"} {
		if all[want] == nil {
			t.Fatalf("the command tree has no %q", want)
		}
	}
	return all
}

// TestHelpEveryCommand: -h, --help and `help CMD` print the same help for
// every command, on stdout, with exit status 0: the one-line summary
// first, then the description, usage, examples and flags; the command
// itself does not run.
func TestHelpEveryCommand(t *testing.T) {
	for name, c := range commands(t) {
		t.Run(name, func(t *testing.T) {
			words := strings.Fields(name)
			if c.Short == "" || c.Long == "" || c.Example == "" {
				t.Errorf("summary %q, description %d bytes, examples %d bytes: want all three", c.Short, len(c.Long), len(c.Example))
			}
			if strings.Contains(c.Short, "\n") {
				t.Errorf("the summary is more than one line: %q", c.Short)
			}
			var first string
			for _, args := range [][]string{append(words, "-h"), append(words, "--help"), append([]string{"help"}, words...)} {
				stdout, stderr, code := cli(t, args...)
				if code != 0 || stderr != "" {
					t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
				}
				if !strings.HasPrefix(stdout, c.Short+"\n\n") {
					t.Errorf("%q does not start with the summary %q:\n%s", args, c.Short, stdout)
				}
				for _, want := range []string{"Usage:\n  agenttrace " + name, "Examples:\n" + c.Example, "-h, --help"} {
					if !strings.Contains(stdout, want) {
						t.Errorf("%q has no %q:\n%s", args, want, stdout)
					}
				}
				if first == "" {
					first = stdout
				} else if stdout != first {
					t.Errorf("%q differs from %q -h", args, name)
				}
			}
		})
	}
}

// TestUnknownFlag: an unknown flag is an error with exit status 2 on every
// command, says where the usage is, and the command does not run (check
// prints nothing, version no version). A long flag with one dash is named
// with its two.
func TestUnknownFlag(t *testing.T) {
	for name := range commands(t) {
		if name == "help" {
			continue // help takes command names, not flags
		}
		t.Run(name, func(t *testing.T) {
			args := append(strings.Fields(name), "--bogus")
			stdout, stderr, code := cli(t, args...)
			want := "agenttrace: unknown flag: --bogus\nRun 'agenttrace " + name + " --help' for usage.\n"
			if name == "run" {
				// run's flags end at CMD; with none, --bogus is a flag of run.
				want = "agenttrace: unknown flag: --bogus\nRun 'agenttrace run --help' for usage.\n"
			}
			if code != 2 || stdout != "" || stderr != want {
				t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2, stderr %q", args, code, stdout, stderr, want)
			}
		})
	}
	_, stderr, code := cli(t, "verify", "-pubkey", "k.pub", "audit.jsonl")
	if want := "agenttrace: unknown flag -pubkey: long flags take two dashes: --pubkey\nRun 'agenttrace verify --help' for usage.\n"; code != 2 || stderr != want {
		t.Errorf("verify -pubkey: exit %d, stderr %q, want %q", code, stderr, want)
	}
	_, stderr, code = cli(t, "bogus")
	if want := "agenttrace: unknown command \"bogus\" for \"agenttrace\"\nRun 'agenttrace --help' for usage.\n"; code != 2 || stderr != want {
		t.Errorf("bogus: exit %d, stderr %q, want %q", code, stderr, want)
	}
	_, stderr, code = cli(t, "keygen", "x")
	if want := "agenttrace: keygen takes no arguments, got \"x\"\nRun 'agenttrace keygen --help' for usage.\n"; code != 2 || stderr != want {
		t.Errorf("keygen x: exit %d, stderr %q, want %q", code, stderr, want)
	}
}

// TestRunArgs: run's flags come before CMD, with or without "--"; from CMD
// on, every word is CMD's, flags included.
func TestRunArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		log  string
		argv []string
	}{
		{[]string{"--log", "x.jsonl", "--", "python3", "agent.py", "--flag"}, "x.jsonl", []string{"python3", "agent.py", "--flag"}},
		{[]string{"--log", "x.jsonl", "python3", "agent.py", "--log", "y"}, "x.jsonl", []string{"python3", "agent.py", "--log", "y"}},
		{[]string{"--log=x.jsonl", "--grace", "1s", "--", "--weird-cmd"}, "x.jsonl", []string{"--weird-cmd"}},
		{[]string{"ls", "-l"}, "", []string{"ls", "-l"}},
	} {
		root := newRootCommand(nil, nil, nil)
		run, args, err := root.Find(append([]string{"run"}, tc.args...))
		if err != nil {
			t.Fatal(err)
		}
		if err := run.ParseFlags(args); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		log, _ := run.Flags().GetString("log")
		if got := run.Flags().Args(); log != tc.log || strings.Join(got, " ") != strings.Join(tc.argv, " ") {
			t.Errorf("run %q: --log %q, CMD %q; want %q, %q", tc.args, log, got, tc.log, tc.argv)
		}
	}
	_, stderr, code := cli(t, "run", "--log", "x.jsonl")
	if want := "agenttrace: no command given: agenttrace run [flags] -- CMD [ARGS...]\n"; code != 2 || stderr != want {
		t.Errorf("run without CMD: exit %d, stderr %q", code, stderr)
	}
}

// TestCompletion: the scripts for bash, zsh and fish, and the completion
// of a command's flags.
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "__start_agenttrace", "zsh": "#compdef agenttrace", "fish": "complete -c agenttrace",
	} {
		stdout, stderr, code := cli(t, "completion", shell)
		if code != 0 || stderr != "" || !strings.Contains(stdout, want) {
			t.Errorf("completion %s: exit %d, stderr %q, no %q in %d bytes", shell, code, stderr, want, len(stdout))
		}
	}
	stdout, _, code := cli(t, "__complete", "verify", "--")
	for _, want := range []string{"--pubkey\t", "--head\t", "--open\t"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("completing verify --: exit %d, no %q:\n%s", code, want, stdout)
		}
	}
	stdout, _, _ = cli(t, "__complete", "sh")
	if !strings.Contains(stdout, "show\t") {
		t.Errorf("completing sh: no show:\n%s", stdout)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		stdout, stderr, code := cli(t, args...)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "agenttrace ") || strings.Count(stdout, "\n") != 1 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

// TestCLIDocs: docs/cli.md is what the command tree makes. Run
// `make docs` (go test ./cmd/agenttrace -run TestCLIDocs -update) after
// changing a command.
func TestCLIDocs(t *testing.T) {
	want := cliMarkdown(newRootCommand(nil, nil, nil))
	path := filepath.Join("..", "..", "docs", "cli.md")
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("docs/cli.md is stale: run make docs")
	}
	for name := range commands(t) {
		if !strings.Contains(want, "\n## agenttrace "+name+"\n") {
			t.Errorf("docs/cli.md has no section for %s", name)
		}
	}
}

type testKey struct {
	signer note.Signer
	vkey   string
}

func newTestKey(t *testing.T) testKey {
	t.Helper()
	skey, vkey, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{signer, vkey}
}

// writeRun appends one run's records to the log at base, signed with k,
// and writes k's public half beside the run's first segment, as agenttrace
// run does with an ephemeral key.
func writeRun(t *testing.T, base string, k testKey, n int) {
	t.Helper()
	enc := record.NewEncoder("testhost", "00000000-0000-0000-0000-000000000000", 0, nil)
	w, err := sink.Open(sink.Options{Base: base, Signer: k.signer, VerifierKey: k.vkey, Encoder: enc, Version: "test", CheckpointRecords: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.Path()+".pub", []byte(k.vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ev := &record.Event{Kind: record.KindOpen, Ktime: uint64(1000 + i),
			Proc: record.Proc{Pid: 42, Tid: 42, ExecID: record.ExecID{Pid: 42, Start: 1, Seq: 1}, ParentExecID: record.ExecID{Pid: 1, Start: 1, Seq: 1}},
			Open: record.Open{Syscall: "openat", Dirfd: -100, Path: "/work/file-" + strconv.Itoa(i), Ret: 3}}
		if err := w.AppendEvent(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestVerifySeveralKeys: a log continued by a second run with its own
// ephemeral key verifies with --pubkey repeated (flags before or after the
// log) or with one file of both keys, and with the command the run's
// summary prints; one key alone names the other run's segment.
func TestVerifySeveralKeys(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "audit.jsonl")
	writeRun(t, base, newTestKey(t), 20)
	writeRun(t, base, newTestKey(t), 20)
	seg2 := logfile.SegmentPath(base, 2)
	pub1, pub2 := base+".pub", seg2+".pub"

	both := filepath.Join(dir, "keys.pub")
	k1, _ := os.ReadFile(pub1)
	k2, _ := os.ReadFile(pub2)
	if err := os.WriteFile(both, append(k1, k2...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"verify", "--pubkey", pub1, "--pubkey", pub2, base},
		{"verify", base, "--pubkey", pub1, "--pubkey", pub2},
		{"verify", "--pubkey", pub1, base, "--pubkey=" + pub2},
		{"verify", "--pubkey", both, base},
		{"show", base, "--pubkey", pub1, "--pubkey", pub2},
	} {
		stdout, stderr, code := cli(t, args...)
		if code != 0 || !strings.Contains(stdout, "OK: intact") && !strings.Contains(stdout, ": INTACT: 48 records verified") {
			t.Errorf("%q: exit %d\n%s%s", args, code, stdout, stderr)
		}
	}
	stdout, _, code := cli(t, "verify", "--pubkey", pub1, base)
	if want := "DAMAGED:     wrong key at " + seg2 + " line 1 (seq 25)"; code != 1 || !strings.Contains(stdout, want) {
		t.Errorf("one key: exit %d, want 1 and %q:\n%s", code, want, stdout)
	}

	command := verifyCommand(base, "")
	if want := "agenttrace verify --pubkey " + pub1 + " --pubkey " + pub2 + " " + base; command != want {
		t.Fatalf("verify command %q, want %q", command, want)
	}
	stdout, stderr, code := cli(t, strings.Fields(command)[1:]...)
	if code != 0 || !strings.Contains(stdout, "OK: intact") {
		t.Errorf("%s: exit %d\n%s%s", command, code, stdout, stderr)
	}

	// A key with no file beside the log is named for the reader to fill in.
	os.Remove(pub2)
	if command := verifyCommand(base, ""); !strings.Contains(command, "--pubkey "+pub1+" --pubkey <the public key agenttrace+") {
		t.Errorf("verify command without the second .pub: %q", command)
	}
}

// TestShowInterspersedHTML: flags after the log are flags; --html says
// where it wrote.
func TestShowInterspersedHTML(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "audit.jsonl")
	writeRun(t, base, newTestKey(t), 5)
	page := filepath.Join(dir, "report.html")
	stdout, stderr, code := cli(t, "show", base, "--html", page, "--pubkey", base+".pub")
	if code != 0 || !strings.Contains(stdout, ": INTACT: ") || stderr != "agenttrace: wrote the HTML report to "+page+"\n" {
		t.Fatalf("show LOG --html: exit %d\n%s%s", code, stdout, stderr)
	}
	if info, err := os.Stat(page); err != nil || info.Size() == 0 {
		t.Fatalf("the HTML report: %v", err)
	}
	_, stderr, code = cli(t, "show", base, "--follow", "--json")
	if code != 2 || !strings.Contains(stderr, "--follow prints a live view") {
		t.Errorf("show --follow --json: exit %d, %q", code, stderr)
	}
}

// TestDaemonLogger: readable lines on a terminal (a pseudo-terminal here),
// JSON lines otherwise; configuration errors joined by errors.Join are
// one line each.
func TestDaemonLogger(t *testing.T) {
	errs := errorLines(fmt.Errorf("wrapped: %w", errors.Join(errors.New("a.yaml:3: unknown key \"x\""), errors.New("a.yaml:7: bad size"))))
	if len(errs) != 2 || errs[0].Error() != "wrapped: a.yaml:3: unknown key \"x\"" || errs[1].Error() != "a.yaml:7: bad size" {
		t.Errorf("errorLines of a wrapped join: %q", errs) // split by its text
	}
	errs = errorLines(errors.Join(errors.New("a.yaml:3: unknown key \"x\""), errors.New("a.yaml:7: bad size")))
	if len(errs) != 2 || errs[1].Error() != "a.yaml:7: bad size" {
		t.Errorf("errorLines: %q", errs)
	}

	var buf bytes.Buffer
	logger := daemonLogger(&buf, false)
	for _, e := range errs {
		logger.Error().Err(e).Msg("agenttrace daemon")
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("JSON: %d lines, want 2:\n%s", len(lines), buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil || m["error"] != "a.yaml:7: bad size" || m["level"] != "error" {
		t.Errorf("JSON line %s: %v", lines[1], err)
	}

	ptmx, tty := openPty(t)
	if !isTerminal(tty) {
		t.Fatal("the pseudo-terminal is not a terminal")
	}
	logger = daemonLogger(tty, isTerminal(tty))
	logger.Error().Err(errs[1]).Msg("agenttrace daemon")
	tty.Close()
	got := make([]byte, 4096)
	ptmx.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _ := ptmx.Read(got)
	line := string(got[:n])
	if strings.HasPrefix(line, "{") || !strings.Contains(line, "agenttrace daemon") || !strings.Contains(line, "a.yaml:7: bad size") {
		t.Errorf("on a terminal: %q, want a readable line", line)
	}
}

// openPty opens a pseudo-terminal pair.
func openPty(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return ptmx, tty
}
