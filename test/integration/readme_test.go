package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/tools"
)

// readmeInner marks the `make test` that TestReadme runs, so that its own
// TestReadme does not run the README's commands again.
const readmeInner = "AGENTTRACE_README_INNER"

// readmeCommands returns the commands of the README's first shell block
// under "## The two commands" (the root form), and the block after it (the
// sudo form).
func readmeCommands(t *testing.T, readme string) (root, sudo []string) {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## The two commands\n")
	if !ok {
		t.Fatal("README.md has no section \"## The two commands\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) < 2 {
		t.Fatalf("the section has %d shell blocks, want the root form and the sudo form", len(blocks))
	}
	commands := func(block string) []string {
		var cmds []string
		for _, line := range strings.Split(block, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				cmds = append(cmds, line)
			}
		}
		return cmds
	}
	return commands(blocks[0][1]), commands(blocks[1][1])
}

// TestReadme runs the README's two commands as written, as root, on a
// fresh clone of this repository (its committed HEAD), in a minimal
// environment: `env -i` with HOME (where Go keeps its caches, as in a
// root shell) and a PATH of Go's bin directory and
// /usr/sbin:/usr/bin:/sbin:/bin; no sudo. make demo must show the tree of
// the demo's log and a verify command that finds it intact; make test must
// pass (its own TestReadme skips: readmeInner). It logs the wall time of
// each command.
func TestReadme(t *testing.T) {
	if os.Getenv(readmeInner) != "" {
		t.Skip("this is the make test that TestReadme runs")
	}
	requireRoot(t)
	tools.Require(t, "git")
	tools.Require(t, "make")
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	commands, sudo := readmeCommands(t, string(readme))
	if strings.Join(commands, "\n") != "make demo\nmake test" {
		t.Fatalf("the README's root form is %q, want make demo, make test", commands)
	}
	for i, c := range sudo {
		if want := `sudo env "PATH=$PATH" ` + commands[i]; c != want {
			t.Errorf("the README's sudo form line %d is %q, want %q", i+1, c, want)
		}
	}

	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	goBin, _ = filepath.EvalSymlinks(goBin)
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=" + filepath.Dir(goBin) + ":/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + home,
		readmeInner + "=1",
	}

	dir := testDir(t)
	clone := filepath.Join(dir, "agenttrace")
	if out, err := exec.Command("git", "clone", "--quiet", root, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone %s: %v\n%s", root, err, out)
	}

	for _, command := range commands {
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
		cmd := exec.CommandContext(ctx, "env", append(append([]string{"-i"}, env...), "sh", "-c", command)...)
		cmd.Dir = clone
		cmd.WaitDelay = 10 * time.Second
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		took := time.Since(start)
		cancel()
		t.Logf("%s on a fresh clone: %.1f s", command, took.Seconds())
		if err != nil {
			t.Fatalf("%s: %v after %.1f s; its output ends:\n%s", command, err, took.Seconds(), tail(out.String(), 60))
		}
		switch command {
		case "make demo":
			checkDemoOutput(t, clone, env, out.String())
		case "make test":
			for _, want := range []string{"ok  \tgithub.com/agenttrace/agenttrace/test/integration", "ok  \tgithub.com/agenttrace/agenttrace/cmd/agenttrace"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("make test printed no %q; its output ends:\n%s", want, tail(out.String(), 60))
				}
			}
		}
	}
}

// checkDemoOutput: make demo printed the agent's narration, the show tree
// (verified, with tool calls, a credential access and connects) and, last,
// the log's path and a verify command that, run as printed, finds it intact.
func checkDemoOutput(t *testing.T, clone string, env []string, out string) {
	t.Helper()
	for _, want := range []string{
		"agent: tool call: uname -sr", ": INTACT: ", "\n  tool call ", "$ sh -c 'ls / | head -n 3'",
		"CREDENTIAL read ", "connect  127.0.0.1:", " ECONNREFUSED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("make demo printed no %q:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	_, verify, ok := strings.Cut(last, "Verify it: ")
	if !strings.HasPrefix(last, "The log: demo-") || !ok {
		t.Fatalf("make demo's last line is %q, want the log and its verify command", last)
	}
	cmd := exec.Command("env", append(append([]string{"-i"}, env...), "sh", "-c", verify)...)
	cmd.Dir = clone
	res, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(string(res), "  OK: intact\n") {
		t.Errorf("%s: %v\n%s", verify, err, res)
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
