package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
	for _, item := range []string{"OK       BTF", "OK       cgroup2 ", "OK       ring buffer", "OK       tracefs", "OK       bpf_loop ",
		"agenttrace run can run here.\n", "agenttrace daemon can run here.\n"} {
		if !strings.Contains(out, item) {
			t.Errorf("check does not report %q:\n%s", item, out)
		}
	}

	out, _, code = runAgent(t, true, "check")
	if code != 1 {
		t.Fatalf("check as nobody: exit %d, want 1\n%s", code, out)
	}
	if !strings.Contains(out, "MISSING  privileges") || !strings.Contains(out, "run as root (sudo) or grant CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN") ||
		!strings.Contains(out, "agenttrace run cannot run here: fix privileges") {
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

// TestVerifyContinuedLog: two runs with ephemeral keys on one --log. The
// second run's summary prints a verify command naming both runs' keys, and
// that command, as printed, finds the whole log intact; one key alone names
// the other run's segment as signed by the wrong key.
func TestVerifyContinuedLog(t *testing.T) {
	requireRoot(t)
	dir := testDir(t)
	log := filepath.Join(dir, "audit.jsonl")
	seg2 := filepath.Join(dir, "audit.000002.jsonl")
	var printed []string
	for run, want := range []string{
		"agenttrace: verify: agenttrace verify --pubkey " + log + ".pub " + log + "\n",
		"agenttrace: verify: agenttrace verify --pubkey " + log + ".pub --pubkey " + seg2 + ".pub " + log + "\n",
	} {
		_, stderr, code := runAgent(t, false, "run", "--log", log, "--", "true")
		if code != 0 || !strings.HasSuffix(stderr, want) {
			t.Fatalf("run %d: exit %d, stderr:\n%s\nwant it to end with %q", run+1, code, stderr, want)
		}
		printed = strings.Fields(strings.TrimPrefix(strings.TrimSpace(want), "agenttrace: verify: "))
	}
	stdout, stderr, code := runAgent(t, false, printed[1:]...)
	if code != 0 || !strings.Contains(stdout, "  segments:    2 (") || !strings.HasSuffix(stdout, "  OK: intact\n") {
		t.Fatalf("%q: exit %d\n%s%s", printed, code, stdout, stderr)
	}
	stdout, _, code = runAgent(t, false, "verify", log, "--pubkey", log+".pub")
	if code != 1 || !strings.Contains(stdout, "DAMAGED:     wrong key at "+seg2+" line 1 ") {
		t.Fatalf("verify with the first run's key only: exit %d\n%s", code, stdout)
	}
	stdout, _, code = runAgent(t, false, "show", log, "--pubkey", log+".pub", "--pubkey", seg2+".pub")
	if code != 0 || !strings.HasPrefix(stdout, log+": INTACT: ") || !strings.Contains(stdout, "2 segments") {
		t.Fatalf("show with both keys: exit %d\n%s", code, stdout)
	}
}

// TestShowFollow: `agenttrace show --follow DIR` started before a session
// prints its records of note while the log grows (rotating every few KiB):
// each within a second of the syscall; Ctrl-C (SIGINT) ends it with exit 0.
func TestShowFollow(t *testing.T) {
	requireRoot(t)
	dir := testDir(t)
	follow := exec.Command(agentBin, "show", "--follow", dir)
	followOut, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var followErr bytes.Buffer
	follow.Stderr = &followErr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer follow.Process.Kill()
	type stamped struct {
		at   time.Time
		text string
	}
	lines := make(chan stamped, 1000)
	go func() {
		s := bufio.NewScanner(followOut)
		for s.Scan() {
			lines <- stamped{time.Now(), s.Text()}
		}
		close(lines)
	}()
	// waitFor returns when a line containing want arrives, and when.
	waitFor := func(want string, within time.Duration) time.Time {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("show --follow ended before printing %q; stderr:\n%s", want, &followErr)
				}
				if strings.Contains(l.text, want) {
					return l.at
				}
			case <-deadline:
				t.Fatalf("show --follow did not print %q within %s; stderr:\n%s", want, within, &followErr)
			}
		}
	}

	// The session: a shell that cats the paths the test sends it, one by one.
	secret := filepath.Join(dir, "project", ".env")
	if err := os.MkdirAll(filepath.Dir(secret), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte("KEY=x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "session.jsonl")
	run := exec.Command(agentBin, "run", "--log", log, "--rotate-size", "8192", "--",
		"/bin/sh", "-c", `while read -r p; do /bin/cat "$p" >/dev/null 2>&1; echo "$p"; done`)
	stdin, err := run.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	runOut, err := run.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var runErr bytes.Buffer
	run.Stderr = &runErr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	echoed := bufio.NewScanner(runOut)
	waitFor("start   session: /bin/sh -c", 10*time.Second)
	for i, path := range []string{filepath.Join(dir, "missing-1"), secret, filepath.Join(dir, "missing-2"), filepath.Join(dir, "missing-3")} {
		fmt.Fprintln(stdin, path)
		if !echoed.Scan() { // cat has run: its open is done
			t.Fatalf("the session ended: %s", &runErr)
		}
		done := time.Now()
		want := "failed ENOENT read " + path
		if path == secret {
			want = "CRED    pid "
		}
		at := waitFor(want, 2*time.Second)
		if lag := at.Sub(done); lag > time.Second {
			t.Errorf("open %d (%s) printed %s after it happened, want within 1s", i, path, lag)
		} else {
			t.Logf("open of %s printed %.0f ms after cat exited", filepath.Base(path), float64(lag.Microseconds())/1000)
		}
	}
	stdin.Close()
	if err := run.Wait(); err != nil {
		t.Fatalf("agenttrace run: %v\n%s", err, &runErr)
	}
	waitFor("stop    session: exit 0", 2*time.Second)
	if files, _ := filepath.Glob(filepath.Join(dir, "session.0000*.jsonl")); len(files) == 0 {
		t.Errorf("the log did not rotate: the test does not show that --follow follows segments")
	}

	if err := follow.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() {
		for range lines {
		}
		exited <- follow.Wait()
	}()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("show --follow after SIGINT: %v, want exit 0; stderr:\n%s", err, &followErr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("show --follow did not exit within 5s of SIGINT")
	}
}
