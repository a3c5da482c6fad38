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
		{"unknown command", false, []string{"frobnicate"}, 2, "agenttrace: unknown command \"frobnicate\"\n"},
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
