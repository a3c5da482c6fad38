package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// auditKey tags the harness's audit rules, so that they can be found and
// removed even after a crash of the harness.
const auditKey = "agenttrace-bench"

// auditBacklog is the backlog limit Debian's default audit.rules sets; the
// kernel's own default (64) would lose events at once.
const auditBacklog = 8192

// auditDaemon is condition 4: an auditd the harness started, with its own
// configuration and log, and the kernel's audit settings as found, to be
// restored.
type auditDaemon struct {
	auditctl string
	dir      string
	LogPath  string
	cmd      *exec.Cmd
	found    auditStatus
	Version  string
	Config   string // the auditd.conf it runs with
	nextAUID int64
	kauditd  int // the kernel thread's pid, once found
}

// auditStatus is `auditctl -s`: enabled, pid, backlog_limit, lost, backlog...
type auditStatus map[string]int64

func (a *auditDaemon) status(ctx context.Context) (auditStatus, error) {
	out, err := exec.CommandContext(ctx, a.auditctl, "-s").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("auditctl -s: %w: %s", err, bytes.TrimSpace(out))
	}
	st := auditStatus{}
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				st[f[0]] = v
			}
		}
	}
	if _, ok := st["enabled"]; !ok {
		return nil, fmt.Errorf("auditctl -s printed no status: %s", out)
	}
	return st, nil
}

// auditdConf is Debian's default auditd.conf with the log moved into the
// harness's directory, rotation off (the harness counts one file), no
// plugins and no network.
const auditdConf = `local_events = yes
write_logs = yes
log_file = %s
log_format = ENRICHED
flush = INCREMENTAL_ASYNC
freq = 50
max_log_file = 8
num_logs = 5
priority_boost = 4
name_format = NONE
max_log_file_action = IGNORE
space_left = 75
space_left_action = SYSLOG
admin_space_left = 50
admin_space_left_action = SUSPEND
disk_full_action = SUSPEND
disk_error_action = SUSPEND
use_libwrap = no
distribute_network = no
q_depth = 2000
overflow_action = SYSLOG
max_restarts = 10
plugin_dir = %s
end_of_event_timeout = 2
`

// startAudit starts auditd for condition 4. It refuses, with the reason, when
// the audit subsystem is in use already: a running daemon, loaded rules or a
// locked configuration belong to someone else and would not be left as found.
func startAudit(ctx context.Context, dir string) (a *auditDaemon, err error) {
	auditctl, err := findProgram("auditctl")
	if err != nil {
		return nil, err
	}
	auditd, err := findProgram("auditd")
	if err != nil {
		return nil, err
	}
	a = &auditDaemon{auditctl: auditctl, dir: dir, LogPath: filepath.Join(dir, "audit.log"), nextAUID: 1_000_000}
	if v, err := exec.CommandContext(ctx, auditctl, "-v").CombinedOutput(); err == nil {
		a.Version = strings.TrimSpace(string(v))
	}
	a.found, err = a.status(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case a.found["pid"] != 0:
		return nil, fmt.Errorf("an audit daemon (pid %d) is already running; the harness does not touch it", a.found["pid"])
	case a.found["enabled"] == 2:
		return nil, errors.New("the audit configuration is locked (enabled 2) until reboot")
	}
	rules, err := exec.CommandContext(ctx, auditctl, "-l").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("auditctl -l: %w: %s", err, bytes.TrimSpace(rules))
	}
	if strings.TrimSpace(string(rules)) != "No rules" {
		return nil, fmt.Errorf("audit rules are already loaded; the harness does not touch them:\n%s", rules)
	}

	plugins := filepath.Join(dir, "plugins.d")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		return nil, err
	}
	a.Config = fmt.Sprintf(auditdConf, a.LogPath, plugins)
	// auditd refuses a configuration others can write.
	if err := os.WriteFile(filepath.Join(dir, "auditd.conf"), []byte(a.Config), 0o640); err != nil {
		return nil, err
	}
	// -n: stay a child of the harness; -s nochange: auditing stays off
	// outside condition 4's slices (see rulesOn).
	a.cmd = exec.Command(auditd, "-n", "-s", "nochange", "-c", dir)
	var stderr bytes.Buffer
	a.cmd.Stdout, a.cmd.Stderr = &stderr, &stderr
	// Its own process group: a ^C on the terminal reaches the harness, which
	// stops it in order (rules first).
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting auditd: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := a.status(ctx)
		if err == nil && st["pid"] == int64(a.cmd.Process.Pid) {
			return a, nil
		}
		if processGone(a.cmd.Process.Pid) != nil || time.Now().After(deadline) || ctx.Err() != nil {
			a.stop(context.Background())
			return nil, fmt.Errorf("auditd did not register with the kernel: %s", strings.TrimSpace(stderr.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// findProgram looks in PATH and in the sbin directories a non-login root
// shell may lack.
func findProgram(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed", name)
}

// newAUID is a login uid no other process has: the rules select the
// workload of one slice, and its children, by it.
func (a *auditDaemon) newAUID() int64 {
	a.nextAUID++
	return a.nextAUID
}

// auditRules are the rules for the syscalls agenttrace records, both ABIs.
func auditRules(auid int64) []string {
	sel := fmt.Sprintf(" -F auid=%d -k %s", auid, auditKey)
	return []string{
		"-a always,exit -F arch=b64 -S open,openat,creat,openat2,connect,execve,execveat,bind,listen,accept,accept4,sendto,sendmsg,sendmmsg" + sel,
		"-a always,exit -F arch=b32 -S open,openat,creat,openat2,connect,execve,execveat,bind,listen,accept4,sendto,sendmsg,sendmmsg" + sel,
		// i386's socketcall multiplexes the socket calls: all of them.
		"-a always,exit -F arch=b32 -S socketcall" + sel,
	}
}

// auditctlFile runs auditctl -R on lines.
func (a *auditDaemon) auditctlFile(ctx context.Context, lines []string) error {
	path := filepath.Join(a.dir, "rules")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, a.auditctl, "-R", path).CombinedOutput(); err != nil {
		return fmt.Errorf("auditctl -R: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// rulesOn loads the rules for auid and enables auditing. Outside condition
// 4's slices auditing stays as found (off): with it on, every process on the
// host pays for audit contexts even without rules.
func (a *auditDaemon) rulesOn(ctx context.Context, auid int64) error {
	lines := append([]string{fmt.Sprintf("-b %d", auditBacklog)}, auditRules(auid)...)
	if err := a.auditctlFile(ctx, append(lines, "-e 1")); err != nil {
		a.rulesOff(context.Background())
		return err
	}
	return nil
}

// rulesOff removes every rule of the harness, by its key (also rules a
// failed step left), and restores the settings found.
func (a *auditDaemon) rulesOff(ctx context.Context) error {
	return a.auditctlFile(ctx, []string{"-D -k " + auditKey,
		fmt.Sprintf("-e %d", a.found["enabled"]), fmt.Sprintf("-b %d", a.found["backlog_limit"])})
}

// logSize is where the next slice's records will start.
func (a *auditDaemon) logSize() int64 {
	st, err := os.Stat(a.LogPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// drain waits until the kernel's backlog is empty and auditd has stopped
// writing.
func (a *auditDaemon) drain(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	size, stable := a.logSize(), time.Now()
	for {
		st, err := a.status(ctx)
		if err != nil {
			return err
		}
		if s := a.logSize(); s != size {
			size, stable = s, time.Now()
		}
		if st["backlog"] == 0 && time.Since(stable) > 200*time.Millisecond {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("auditd still writing after 60 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countAudit counts, in the log from offset on, the events of auid (SYSCALL
// records) and all their lines (every record with the same serial).
func (a *auditDaemon) count(offset, auid int64) (events, lines int64, err error) {
	f, err := os.Open(a.LogPath)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return 0, 0, err
	}
	mark := []byte(fmt.Sprintf(" auid=%d ", auid))
	serials := map[string]bool{}
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 16<<20)
	for s.Scan() {
		line := s.Bytes()
		serial := auditSerial(line)
		if bytes.HasPrefix(line, []byte("type=SYSCALL ")) && bytes.Contains(line, mark) {
			serials[serial] = true
			events++
		}
		if serials[serial] {
			lines++
		}
	}
	return events, lines, s.Err()
}

// auditSerial is the serial of msg=audit(TIME:SERIAL).
func auditSerial(line []byte) string {
	i := bytes.Index(line, []byte("msg=audit("))
	if i < 0 {
		return ""
	}
	rest := line[i+len("msg=audit("):]
	j := bytes.IndexByte(rest, ':')
	k := bytes.IndexByte(rest, ')')
	if j < 0 || k < j {
		return ""
	}
	return string(rest[j+1 : k])
}

// stop removes the harness's rules, stops the daemon and restores the
// settings found.
func (a *auditDaemon) stop(ctx context.Context) error {
	var errs []error
	if err := a.rulesOff(ctx); err != nil {
		errs = append(errs, err)
	}
	if a.cmd != nil && a.cmd.Process != nil {
		stopProcess(a.cmd, syscall.SIGTERM)
	}
	// auditd may change the settings as it exits: restore them once more.
	if err := a.rulesOff(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// pids are the audit processes whose CPU time counts as auditd's: the
// daemon and the kernel thread that sends it the records.
func (a *auditDaemon) pids() []int {
	pids := []int{a.cmd.Process.Pid}
	if a.kauditd == 0 {
		dirs, _ := os.ReadDir("/proc")
		for _, d := range dirs {
			if pid, err := strconv.Atoi(d.Name()); err == nil {
				if comm, err := os.ReadFile(filepath.Join("/proc", d.Name(), "comm")); err == nil && strings.TrimSpace(string(comm)) == "kauditd" {
					a.kauditd = pid
				}
			}
		}
	}
	if a.kauditd != 0 {
		pids = append(pids, a.kauditd)
	}
	return pids
}
