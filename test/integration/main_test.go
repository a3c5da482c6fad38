// Package integration runs the real agenttrace binary against the real
// kernel: real cgroups, real eBPF programs, real processes making real
// syscalls. Each test starts `agenttrace run --log <tmp>/x.jsonl -- <helper>`,
// parses the log, validates every line against the JSON Schema, and compares
// the records of interest, found by unique markers, field by field.
//
// The helper is this test binary itself, re-executed with AGENTTRACE_HELPER
// naming an action (see helpers_test.go and files_helpers_test.go), plus
// small C programs built from testdata/ for what Go cannot do: i386-ABI
// syscalls, fork without exec, and glibc's fexecve.
//
// The tests need root (eBPF, cgroups). Without it they skip, unless
// CI=true, where nothing skips.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/tools"
)

// helperEnv names the helper action when this binary runs as a helper.
const helperEnv = "AGENTTRACE_HELPER"

var (
	// agentBin is the agenttrace binary built by TestMain.
	agentBin string
	// helperBin is this test binary, with symlinks resolved: the exe the kernel reports.
	helperBin string
	// i386Bin, forkBin and fexecveBin are the C helpers; empty if they
	// could not be built (cBuildErr says why).
	i386Bin, forkBin, fexecveBin string
	cBuildErr                    error
	// victimBin, injectBin and nsopsBin are the escape tests' C helpers
	// (escape_test.go); empty if they could not be built (escapeBuildErr).
	victimBin, injectBin, nsopsBin string
	escapeBuildErr                 error
	// baseDir holds every test's directory. It is world-searchable so a
	// helper that dropped root can still reach its files.
	baseDir string
)

func TestMain(m *testing.M) {
	if action := os.Getenv(helperEnv); action != "" {
		os.Exit(runHelper(action, os.Args[1:]))
	}
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	var err error
	baseDir, err = os.MkdirTemp("", "agenttrace-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(baseDir)
	if err := os.Chmod(baseDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	binDir := filepath.Join(baseDir, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	if agentBin, err = buildAgent(binDir); err != nil {
		fmt.Fprintln(os.Stderr, "integration: building agenttrace:", err)
		return 1
	}
	exe, err := os.Executable()
	if err == nil {
		helperBin, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: locating the test binary:", err)
		return 1
	}
	i386Bin, forkBin, fexecveBin, cBuildErr = buildCHelpers(binDir)
	uringNetBin, uringNetErr = buildNetHelpers(binDir)
	victimBin, injectBin, nsopsBin, escapeBuildErr = buildEscapeHelpers(binDir)
	return m.Run()
}

// buildAgent builds cmd/agenttrace of the module this package belongs to.
func buildAgent(dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is needed to build agenttrace: %w", err)
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(dir, "agenttrace")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/agenttrace")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/agenttrace: %w\n%s", err, out)
	}
	return bin, nil
}

// buildCHelpers compiles testdata/*.c. The i386 helper must keep its static
// data below 4 GiB (int $0x80 takes 32-bit pointers): -no-pie, and -static
// when the static libc is installed.
func buildCHelpers(dir string) (i386, fork, fexecve string, err error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", "", "", fmt.Errorf("gcc is needed to build the C test helpers (apt-get install gcc libc6-dev): %w", err)
	}
	build := func(out, src string, variants ...[]string) (string, error) {
		bin := filepath.Join(dir, out)
		var msgs []string
		for _, flags := range variants {
			args := append([]string{"-O2", "-Wall", "-Werror", "-o", bin, filepath.Join("testdata", src)}, flags...)
			msg, err := exec.Command(gcc, args...).CombinedOutput()
			if err == nil {
				return bin, nil
			}
			msgs = append(msgs, fmt.Sprintf("gcc %s: %v\n%s", strings.Join(args, " "), err, msg))
		}
		return "", errors.New(strings.Join(msgs, "\n"))
	}
	if i386, err = build("i386", "i386.c", []string{"-no-pie", "-static"}, []string{"-no-pie"}); err != nil {
		return "", "", "", err
	}
	if fork, err = build("forktree", "forktree.c", nil); err != nil {
		return "", "", "", err
	}
	if fexecve, err = build("fexecve", "fexecve.c", nil); err != nil {
		return "", "", "", err
	}
	return i386, fork, fexecve, nil
}

// buildEscapeHelpers compiles the escape tests' C helpers.
func buildEscapeHelpers(dir string) (victim, inject, nsops string, err error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", "", "", fmt.Errorf("gcc is needed to build the C test helpers (apt-get install gcc libc6-dev): %w", err)
	}
	var out [3]string
	for i, name := range []string{"victim", "inject", "nsops"} {
		out[i] = filepath.Join(dir, name)
		args := []string{"-O2", "-Wall", "-Werror", "-o", out[i], filepath.Join("testdata", name+".c")}
		if msg, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			return "", "", "", fmt.Errorf("gcc %s: %w\n%s", strings.Join(args, " "), err, msg)
		}
	}
	return out[0], out[1], out[2], nil
}

func inCI() bool { return os.Getenv("CI") == "true" }

// requireRoot skips a test that needs root when not root, except in CI,
// where it fails.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if inCI() {
		t.Fatal("integration tests must run as root (they load eBPF programs and create cgroups); CI=true: not skipping")
	}
	t.Skip("integration tests load eBPF programs and create cgroups: run them as root (with CI=true they fail instead of skipping)")
}

// requireC returns a C helper, failing if it could not be built (with the
// command that installs the compiler, when that is what is missing).
func requireC(t *testing.T, bin string) string {
	t.Helper()
	if bin != "" {
		return bin
	}
	tools.Require(t, "gcc")
	tools.Require(t, "libc6-dev")
	t.Fatalf("C test helper not built: %v", cBuildErr)
	return ""
}

// testDir makes a directory for one test, reachable by an unprivileged helper.
func testDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp(baseDir, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// runOpts are the knobs of one agenttrace run.
type runOpts struct {
	helper string   // AGENTTRACE_HELPER for the command; "" for none
	flags  []string // extra flags for `agenttrace run`
	log    string   // --log; default <dir>/x.jsonl
	noLog  bool     // do not read the log (the run fails, or continues a log elsewhere)
	// setsid runs agenttrace in a new session, with no controlling terminal
	// (bash opens /dev/tty at start: the same result, ENXIO, whether or not
	// the tests run on a terminal).
	setsid bool
	// env, when set, is the command's whole environment instead of the
	// test's own (plus AGENTTRACE_HELPER): for runs whose records depend on
	// it, e.g. bash reads /etc/passwd at start when SHELL or HOME is unset.
	env []string
}

// session is one finished agenttrace run and its log.
type session struct {
	logPath string
	exit    int
	stdout  string
	stderr  string
	results []map[string]any // the helpers' RESULT lines, in output order
	lines   [][]byte
	recs    []*rec
}

// agent runs `agenttrace run --log ... -- argv...`, collects the helpers'
// RESULT lines, and (unless o.noLog) parses and checks the log (see
// checkSegment) and has `agenttrace verify` check it with the run's key.
func agent(t *testing.T, dir string, o runOpts, argv ...string) *session {
	t.Helper()
	s := &session{logPath: o.log}
	if s.logPath == "" {
		s.logPath = filepath.Join(dir, "x.jsonl")
	}
	args := append([]string{"run", "--log", s.logPath}, o.flags...)
	args = append(append(args, "--"), argv...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, agentBin, args...)
	cmd.Env = helperEnviron(o.helper)
	if o.env != nil {
		cmd.Env = o.env
		if o.helper != "" {
			cmd.Env = append(cmd.Env[:len(o.env):len(o.env)], helperEnv+"="+o.helper)
		}
	}
	if o.setsid {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	// Left-over processes of a killed session may hold stdout open.
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	s.stdout, s.stderr = stdout.String(), stderr.String()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.Exited():
		s.exit = exitErr.ExitCode()
	default:
		t.Fatalf("agenttrace %q: %v\nstderr:\n%s", args, err, s.stderr)
	}
	for _, line := range strings.Split(s.stdout, "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			var r map[string]any
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				t.Fatalf("helper result %q: %v", rest, err)
			}
			s.results = append(s.results, r)
		}
	}
	if o.noLog {
		return s
	}
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		t.Fatalf("reading the log of agenttrace %q (exit %d): %v\nstderr:\n%s", args, s.exit, err, s.stderr)
	}
	s.lines, s.recs = checkLog(t, data)
	verifyLog(t, "--pubkey", s.logPath+".pub", s.logPath)
	return s
}

// verifyLog runs `agenttrace verify args...`, which must find the log intact.
func verifyLog(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(agentBin, append([]string{"verify"}, args...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK: intact") {
		t.Errorf("agenttrace verify %q: %v\n%s", args, err, out)
	}
}

// helperEnviron is this process's environment with AGENTTRACE_HELPER set to action.
func helperEnviron(action string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, helperEnv+"=") {
			env = append(env, kv)
		}
	}
	if action != "" {
		env = append(env, helperEnv+"="+action)
	}
	return env
}

// result returns the only helper result line, failing otherwise.
func (s *session) result(t *testing.T) map[string]any {
	t.Helper()
	if len(s.results) != 1 {
		t.Fatalf("want 1 helper result, got %d: stdout:\n%s\nstderr:\n%s", len(s.results), s.stdout, s.stderr)
	}
	return s.results[0]
}

// num reads an integer member of a helper result.
func num(t *testing.T, r map[string]any, key string) int {
	t.Helper()
	v, ok := r[key].(float64)
	if !ok {
		t.Fatalf("helper result has no number %q: %v", key, r)
	}
	return int(v)
}
