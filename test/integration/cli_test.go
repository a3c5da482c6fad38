package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// runAgent runs the agenttrace binary; as nobody when unprivileged is set.
func runAgent(t *testing.T, unprivileged bool, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(agentBin, args...)
	cmd.Dir = baseDir
	if unprivileged {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestCheck: as root every requirement and every hook is OK; as nobody the
// missing privileges are named with what to do, and check fails.
func TestCheck(t *testing.T) {
	requireRoot(t)
	out, _, code := runAgent(t, false, "check")
	if code != 0 {
		t.Fatalf("check as root: exit %d\n%s", code, out)
	}
	for _, hook := range []string{"tp_btf/sys_enter", "tp_btf/sys_exit", "tp_btf/sched_process_exec", "tp_btf/sched_process_fork", "tp_btf/sched_process_exit"} {
		if !strings.Contains(out, "OK       hook "+hook) {
			t.Errorf("check does not report hook %s as OK:\n%s", hook, out)
		}
	}
	for _, item := range []string{"OK       BTF", "OK       cgroup2 ", "OK       ring buffer", "OK       tracefs"} {
		if !strings.Contains(out, item) {
			t.Errorf("check does not report %q:\n%s", item, out)
		}
	}

	out, _, code = runAgent(t, true, "check")
	if code != 1 {
		t.Fatalf("check as nobody: exit %d, want 1\n%s", code, out)
	}
	if !strings.Contains(out, "MISSING  privileges") || !strings.Contains(out, "run as root (sudo) or grant CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN") {
		t.Fatalf("check as nobody does not say what to do about privileges:\n%s", out)
	}
}

// TestRunErrors: bad input gets a clear one-line error, the right exit
// code, no stack trace, and leaves nothing behind.
func TestRunErrors(t *testing.T) {
	requireRoot(t)
	dir := testDir(t)
	cases := []struct {
		name         string
		unprivileged bool
		args         []string
		code         int
		message      string
	}{
		{"not privileged", true, []string{"run", "--log", filepath.Join(dir, "a.jsonl"), "--", "true"}, 1,
			"agenttrace: not privileged: run as root or grant CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN; missing CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN\n"},
		{"log directory missing", false, []string{"run", "--log", filepath.Join(dir, "no", "such", "dir", "a.jsonl"), "--", "true"}, 1,
			"agenttrace: cannot create log " + filepath.Join(dir, "no", "such", "dir", "a.jsonl") + ": no such file or directory\n"},
		{"max arg bytes", false, []string{"run", "--max-arg-bytes", "2000000", "--", "true"}, 2,
			"agenttrace: --max-arg-bytes must be between 1 and 1048576\n"},
		{"no command", false, []string{"run", "--log", filepath.Join(dir, "b.jsonl")}, 2,
			"agenttrace: no command given: agenttrace run [flags] -- CMD [ARGS...]\n"},
		{"bad fsync", false, []string{"run", "--fsync", "sometimes", "--", "true"}, 2,
			"agenttrace: --fsync: unknown fsync policy \"sometimes\" (want checkpoint or always)\n"},
		{"unknown command", false, []string{"frobnicate"}, 2, "agenttrace: unknown command \"frobnicate\" for \"agenttrace\"\nRun 'agenttrace --help' for usage.\n"},
		{"unknown flag", false, []string{"run", "--bogus", "--", "true"}, 2, "agenttrace: unknown flag: --bogus\nRun 'agenttrace run --help' for usage.\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runAgent(t, tc.unprivileged, tc.args...)
			if code != tc.code || !strings.HasPrefix(stderr, tc.message) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, tc.code, tc.message)
			}
			if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
				t.Fatalf("a stack trace:\n%s", stderr)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("failed runs left files behind: %v", entries)
	}
}

// TestSignalForwarded: SIGTERM sent to agenttrace reaches the command, and
// agenttrace exits with the command's status.
func TestSignalForwarded(t *testing.T) {
	requireRoot(t)
	log := filepath.Join(testDir(t), "sig.jsonl")
	cmd := exec.Command(agentBin, "run", "--log", log, "--", "sh", "-c", `trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done`)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := stdout.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("command did not start: %q %v", buf, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 42 {
		t.Fatalf("agenttrace exited with %v, want 42 (the command's trap)", err)
	}
}

// TestLeftRunning: processes the command leaves behind run on, traced, for
// the grace period, then are killed; the log says so.
func TestLeftRunning(t *testing.T) {
	requireRoot(t)
	log := filepath.Join(testDir(t), "left.jsonl")
	cmd := exec.Command(agentBin, "run", "--log", log, "--grace", "300ms", "--", "sh", "-c", "sleep 100 & exit 0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "agenttrace: 1 processes were still running after the grace period and were killed") {
		t.Fatalf("summary does not report the leftover process:\n%s", out)
	}
	data, _ := os.ReadFile(log)
	if !bytes.Contains(data, []byte(`"left_running":1,"left_running_action":"killed with SIGKILL after the grace period"`)) {
		t.Fatalf("stop record does not report the leftover process")
	}
	if !bytes.Contains(data, []byte(`"comm":"sleep"`)) || !bytes.Contains(data, []byte(`"signal":"SIGKILL","signal_num":9`)) {
		t.Fatalf("no exit record of sleep killed by SIGKILL")
	}
}
