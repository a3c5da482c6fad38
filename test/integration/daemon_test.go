package integration

// Real-kernel tests of `agenttrace daemon --config FILE`: each test makes
// its own cgroups below agenttrace-test/ on the cgroup2 mount, a signing
// key and a configuration in a private directory, runs the daemon until
// SIGTERM, and then reads the whole audit log back: every line valid
// against the schema, seq contiguous and prev chained across segments, the
// records of interest compared field by field, and `agenttrace verify`
// with the public key.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/schema"
	"github.com/agenttrace/agenttrace/tools"
)

// daemonHooks is every hook the daemon attaches, in attach order.
var daemonHooks = []string{
	"tp_btf/cgroup_mkdir",
	"tp_btf/cgroup_rmdir",
	"tp_btf/cgroup_attach_task",
	"tp_btf/sched_process_fork",
	"tp_btf/sched_process_exec",
	"tp_btf/sched_process_exit",
	"tp_btf/inet_sock_set_state",
	"tp_btf/io_uring_complete",
	"tp_btf/io_uring_cqe_overflow",
	"tp_btf/io_uring_submit_req",
	"cgroup/sock_create",
	"cgroup/connect4",
	"cgroup/connect6",
	"cgroup/connect_unix",
	"cgroup/sendmsg4",
	"cgroup/sendmsg6",
	"cgroup/sendmsg_unix",
	"cgroup/bind4",
	"cgroup/bind6",
	"cgroup_skb/ingress",
	"cgroup_skb/egress",
	"tp_btf/sock_send_length",
	"tp_btf/sys_exit",
	"tp_btf/sys_enter",
}

// daemonEnv is one test's daemon setup: its cgroup base, key,
// configuration file and log directory.
type daemonEnv struct {
	mount    string // the cgroup2 mount
	base     string // below the mount, without a leading /: agenttrace-test/daemon-<test>-<ns>
	dir      string // private (0700): config, keys, log, state
	cfgPath  string
	keyPath  string
	pubPath  string
	logDir   string
	stateDir string
}

func newDaemonEnv(t *testing.T) *daemonEnv {
	t.Helper()
	requireRoot(t)
	mount, err := cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	e := &daemonEnv{
		mount: mount,
		base:  fmt.Sprintf("agenttrace-test/daemon-%s-%d", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano()),
		dir:   t.TempDir(),
	}
	if err := os.MkdirAll(e.cg(""), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroups(t, e.cg("")) })
	if err := os.Chmod(e.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	e.cfgPath = filepath.Join(e.dir, "agenttrace.yaml")
	e.logDir = filepath.Join(e.dir, "log")
	e.stateDir = filepath.Join(e.dir, "state")
	keys := filepath.Join(e.dir, "keys")
	if out, err := exec.Command(agentBin, "keygen", "--out", keys).CombinedOutput(); err != nil {
		t.Fatalf("agenttrace keygen: %v\n%s", err, out)
	}
	e.keyPath, e.pubPath = filepath.Join(keys, "signing.key"), filepath.Join(keys, "signing.pub")
	// SIGTERM leaves the daemon's kernel side pinned, recording: every
	// test ends it for good, as an operator would (after the test's own
	// daemons are gone: cleanups run last-registered first).
	t.Cleanup(func() { e.release(t) })
	return e
}

// release ends the kernel side a test's daemons left pinned, with
// `agenttrace daemon stop` (with no daemon running it adopts the kernel side,
// drains it into the log and releases it). A test that ends with a
// configuration that does not load (a rejected reload) cannot: its pins
// are removed directly. TestDaemonRestartPinned tests daemon stop itself.
func (e *daemonEnv) release(t *testing.T) {
	t.Helper()
	pinned := loader.PinDir(e.stateDir)
	if !dirExists(pinned) {
		return
	}
	out, err := exec.Command(agentBin, "daemon", "stop", "--config", e.cfgPath).CombinedOutput()
	if dirExists(pinned) {
		t.Logf("agenttrace daemon stop left %s (%v: %s): removing it", pinned, err, out)
		removePinned(t, pinned)
	}
}

// removePinned unpins everything below dir.
func removePinned(t *testing.T, dir string) {
	var paths []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			paths = append(paths, p)
		}
		return nil
	})
	for i := len(paths) - 1; i >= 0; i-- {
		if err := os.Remove(paths[i]); err != nil {
			t.Errorf("unpinning %s: %v", paths[i], err)
		}
	}
}

func dirExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// cg is the directory of the cgroup rel below the test's base.
func (e *daemonEnv) cg(rel string) string { return filepath.Join(e.mount, e.base, rel) }

// cgPath is the cgroup's path as records name it: below the mount, with a leading /.
func (e *daemonEnv) cgPath(rel string) string { return "/" + filepath.Join(e.base, rel) }

// pattern is a target pattern below the test's base.
func (e *daemonEnv) pattern(glob string) string { return e.base + "/" + glob }

func (e *daemonEnv) mkdir(t *testing.T, rel string) uint64 {
	t.Helper()
	if err := os.Mkdir(e.cg(rel), 0o755); err != nil {
		t.Fatal(err)
	}
	return cgroupIno(t, e.cg(rel))
}

// rmdir removes an empty cgroup, waiting for its last process to be gone.
func (e *daemonEnv) rmdir(t *testing.T, rel string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err = syscall.Rmdir(e.cg(rel)); !errors.Is(err, syscall.EBUSY) {
			break
		}
	}
	if err != nil {
		t.Fatalf("rmdir %s: %v", e.cg(rel), err)
	}
}

// cgroupIno is a cgroup's id: the inode number of its directory.
func cgroupIno(t *testing.T, dir string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// removeCgroups kills every process below dir (cgroup.kill) and removes
// dir and every cgroup below it.
func removeCgroups(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); err != nil {
		return
	}
	os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	for i := 0; i < 500; i++ {
		data, _ := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		if bytes.Contains(data, []byte("populated 0")) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		var err error
		for j := 0; j < 200; j++ {
			if err = syscall.Rmdir(dirs[i]); !errors.Is(err, syscall.EBUSY) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			t.Errorf("removing cgroup %s: %v", dirs[i], err)
		}
	}
}

// daemonConfig is the text of a configuration. Its first lines are
// "targets:" and one line per target (so targets[i] is on line 2+i); the
// rest follows in a fixed order. metrics "" disables the endpoint.
func (e *daemonEnv) daemonConfig(targets []string, metrics string, extra ...string) string {
	var b strings.Builder
	b.WriteString("targets:\n")
	for _, target := range targets {
		fmt.Fprintf(&b, "  - %q\n", target)
	}
	fmt.Fprintf(&b, "log:\n  dir: %s\n", e.logDir)
	fmt.Fprintf(&b, "signing_key: %s\n", e.keyPath)
	fmt.Fprintf(&b, "state_dir: %s\n", e.stateDir)
	b.WriteString("heartbeat: 1s\n")
	b.WriteString("checkpoint:\n  interval: 1s\n")
	fmt.Fprintf(&b, "metrics:\n  listen: %q\n", metrics)
	for _, line := range extra {
		b.WriteString(line + "\n")
	}
	return b.String()
}

// writeConfig (re)writes the configuration file, mode 0600.
func (e *daemonEnv) writeConfig(t *testing.T, text string) string {
	t.Helper()
	if err := os.WriteFile(e.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(e.cfgPath, 0o600); err != nil {
		t.Fatal(err)
	}
	return sha256Of([]byte(text))
}

func sha256Of(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// daemonProc is a running `agenttrace daemon` and its stderr, one zerolog JSON
// object a line.
type daemonProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited; then err is its Wait result
	err  error

	mu    sync.Mutex
	lines []string
}

// startDaemon starts `agenttrace daemon --config` and waits for "tracing".
func (e *daemonEnv) startDaemon(t *testing.T) *daemonProc {
	t.Helper()
	d := &daemonProc{cmd: exec.Command(agentBin, "daemon", "--config", e.cfgPath), done: make(chan struct{})}
	startProc(t, d)
	d.waitLog(t, 0, "tracing", 30*time.Second)
	return d
}

// stderr is everything the daemon logged so far.
func (d *daemonProc) stderr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.lines, "\n")
}

// logged returns the daemon's log lines, decoded, from index from on.
func (d *daemonProc) logged(from int) []map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []map[string]any
	for _, line := range d.lines[min(from, len(d.lines)):] {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			m = map[string]any{"message": nil, "unparsed": line}
		}
		out = append(out, m)
	}
	return out
}

// mark is the index of the next line the daemon logs.
func (d *daemonProc) mark() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.lines)
}

// waitLog waits for a log line with message msg at or after index from.
func (d *daemonProc) waitLog(t *testing.T, from int, msg string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, m := range d.logged(from) {
			if m["message"] == msg {
				return m
			}
		}
		select {
		case <-d.done:
			// It may have logged the line just before exiting.
			for _, m := range d.logged(from) {
				if m["message"] == msg {
					return m
				}
			}
			t.Fatalf("agenttrace daemon exited (%v) before logging %q; stderr:\n%s", d.err, msg, d.stderr())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agenttrace daemon did not log %q within %v; stderr:\n%s", msg, timeout, d.stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signal sends sig and returns the mark before it.
func (d *daemonProc) signal(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	at := d.mark()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling the daemon: %v", err)
	}
	return at
}

// stop sends SIGTERM and requires a clean exit within 20 s.
func (d *daemonProc) stop(t *testing.T) {
	t.Helper()
	d.signal(t, syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		t.Fatalf("agenttrace daemon did not exit within 20 s of SIGTERM; stderr:\n%s", d.stderr())
	}
	if d.err != nil {
		t.Fatalf("agenttrace daemon after SIGTERM: %v; stderr:\n%s", d.err, d.stderr())
	}
}

// runIn runs this test binary as a helper with action in the cgroup rel
// (placed there by clone3, CLONE_INTO_CGROUP: it never runs elsewhere)
// and returns its pid and op results.
func (e *daemonEnv) runIn(t *testing.T, rel, action string, args ...string) (int, []helperOp) {
	t.Helper()
	fd, err := unix.Open(e.cg(rel), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	cmd := exec.Command(helperBin, args...)
	cmd.Env = helperEnviron(action)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper %s %q in %s: %v\nstdout:\n%s\nstderr:\n%s", action, args, rel, err, &stdout, &stderr)
	}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			var r struct {
				Pid int        `json:"pid"`
				Ops []helperOp `json:"ops"`
			}
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				t.Fatalf("helper result %q: %v", rest, err)
			}
			if r.Pid != cmd.Process.Pid {
				t.Fatalf("helper result names pid %d, the helper was %d", r.Pid, cmd.Process.Pid)
			}
			return r.Pid, r.Ops
		}
	}
	t.Fatalf("helper %s printed no result:\n%s", action, &stdout)
	return 0, nil
}

// openIn opens path from a helper in the cgroup rel; the open must succeed.
func (e *daemonEnv) openIn(t *testing.T, rel, path string) (pid, fd int) {
	t.Helper()
	pid, ops := e.runIn(t, rel, "open", path)
	if len(ops) != 1 || ops[0].Ret < 0 {
		t.Fatalf("helper open %s in %s: %+v", path, rel, ops)
	}
	return pid, ops[0].Ret
}

// uniqueFile creates an empty file with a name no other test uses.
func uniqueFile(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("%s-%d", name, time.Now().UnixNano()))
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The type objects of the daemon's records, with every member the schema
// allows: with schema validation (closed objects), comparing these compares
// the whole object.

type dCgroup struct {
	Op            string   `json:"op"`
	ID            uint64   `json:"id"`
	ParentID      uint64   `json:"parent_id"`
	Level         int      `json:"level"`
	Path          string   `json:"path"`
	PathB64       string   `json:"path_b64"`
	Matched       bool     `json:"matched"`
	Targets       []string `json:"targets"`
	StateFull     bool     `json:"state_full"`
	PathTruncated bool     `json:"path_truncated"`
}

type dTarget struct {
	Op        string   `json:"op"`
	Reason    string   `json:"reason"`
	Cgroup    string   `json:"cgroup"`
	CgroupB64 string   `json:"cgroup_b64"`
	CgroupID  uint64   `json:"cgroup_id"`
	Targets   []string `json:"targets"`
	Processes *int     `json:"processes"`
}

type dReload struct {
	Status       string   `json:"status"`
	Config       string   `json:"config"`
	ConfigB64    string   `json:"config_b64"`
	ConfigSHA256 string   `json:"config_sha256"`
	Error        string   `json:"error"`
	ErrorB64     string   `json:"error_b64"`
	Changed      []string `json:"changed"`
	NeedsRestart []string `json:"needs_restart"`
	Targets      []string `json:"targets"`
}

type dHook struct {
	Hook string `json:"hook"`
	Tag  string `json:"tag"`
}

type dStart struct {
	Mode              string   `json:"mode"`
	AgenttraceVersion string   `json:"agenttrace_version"`
	Pid               int      `json:"pid"`
	UID               int      `json:"uid"`
	Config            string   `json:"config"`
	ConfigSHA256      string   `json:"config_sha256"`
	CgroupMount       string   `json:"cgroup_mount"`
	Targets           []string `json:"targets"`
	MaxArgBytes       uint64   `json:"max_arg_bytes"`
	RingSize          uint64   `json:"ring_size"`
	FailClosed        bool     `json:"fail_closed"`
	KernelState       string   `json:"kernel_state"`
	SensitivePaths    []string `json:"sensitive_paths"`
	Hooks             []dHook  `json:"hooks"`
}

type dStop struct {
	Mode     string            `json:"mode"`
	Reason   string            `json:"reason"`
	UptimeNs uint64            `json:"uptime_ns"`
	Records  map[string]uint64 `json:"records"`
	Lost     map[string]uint64 `json:"lost"`
}

type dSocket struct {
	Fd           int    `json:"fd"`
	Inode        uint64 `json:"inode"`
	Family       string `json:"family"`
	Proto        string `json:"proto"`
	State        string `json:"state"`
	SrcAddr      string `json:"src_addr"`
	SrcPort      int    `json:"src_port"`
	DstAddr      string `json:"dst_addr"`
	DstPort      int    `json:"dst_port"`
	UnixPath     string `json:"unix_path"`
	UnixAbstract string `json:"unix_abstract"`
	PeerInode    uint64 `json:"peer_inode"`
}

type dSnapshot struct {
	Pid                   int       `json:"pid"`
	Ppid                  int       `json:"ppid"`
	UID                   uint32    `json:"uid"`
	GID                   uint32    `json:"gid"`
	EUID                  uint32    `json:"euid"`
	EGID                  uint32    `json:"egid"`
	Auid                  uint32    `json:"auid"`
	Comm                  string    `json:"comm"`
	Exe                   string    `json:"exe"`
	Argv                  []string  `json:"argv"`
	Cwd                   string    `json:"cwd"`
	StartTime             uint64    `json:"start_time"`
	StartTimeResolutionNs uint64    `json:"start_time_resolution_ns"`
	Cgroup                string    `json:"cgroup"`
	Sockets               []dSocket `json:"sockets"`
	Errors                []string  `json:"errors"`
}

// dRec is one line of a daemon log.
type dRec struct {
	Seq  uint64 `json:"seq"`
	Prev string `json:"prev"`
	Type string `json:"type"`
	CPU  uint32 `json:"cpu"`
	Kseq uint64 `json:"kseq"`
	Proc proc   `json:"proc"`

	Header     *headerBody    `json:"header"`
	Start      *dStart        `json:"start"`
	Stop       *dStop         `json:"stop"`
	Open       *openObj       `json:"open"`
	Cgroup     *dCgroup       `json:"cgroup"`
	Target     *dTarget       `json:"target"`
	Reload     *dReload       `json:"reload"`
	Snapshot   *dSnapshot     `json:"snapshot"`
	Checkpoint *checkpointObj `json:"checkpoint"`

	line    []byte
	segment int
}

// daemonLog is a daemon's whole audit log, all segments.
type daemonLog struct {
	base     string
	files    []string
	segments [][]*dRec
	recs     []*dRec
}

// readDaemonLog reads and checks every segment of the log in e.logDir:
// each line valid against the schema; seq contiguous from 1 and each prev
// the SHA-256 of the line before, across segments; each segment a header
// (numbered, continuing the one before), then a daemon start record, ...,
// a daemon stop record reporting no loss and counting exactly the kernel
// records of its segment, then checkpoints, the last one final; no gap or
// recovery record; per segment, CPU and kind, kseq 1..n. Then `agenttrace
// verify --pubkey` must find the log directory intact.
func (e *daemonEnv) readDaemonLog(t *testing.T) *daemonLog {
	t.Helper()
	l := &daemonLog{base: filepath.Join(e.logDir, "audit.jsonl")}
	files, numbers := logfile.Segments(l.base)
	if len(files) == 0 {
		t.Fatalf("no log in %s", e.logDir)
	}
	l.files = files
	prev := strings.Repeat("0", 64)
	var seq uint64
	var lastLine []byte
	kseqs := map[string][]uint64{}
	defer func() { checkKseqs(t, kseqs) }()
	for i, file := range files {
		if numbers[i] != i+1 {
			t.Fatalf("segments %v: numbers %v are not 1..%d", files, numbers, len(files))
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 || data[len(data)-1] != '\n' {
			t.Fatalf("segment %s is empty or does not end with a newline", file)
		}
		var seg []*dRec
		for n, line := range bytes.Split(data[:len(data)-1], []byte("\n")) {
			if err := schema.Validate(line); err != nil {
				t.Errorf("%s:%d does not match the schema: %v\n%s", filepath.Base(file), n+1, err, line)
			}
			r := &dRec{line: line, segment: i + 1}
			if err := json.Unmarshal(line, r); err != nil {
				t.Fatalf("%s:%d is not a record: %v\n%s", filepath.Base(file), n+1, err, line)
			}
			seq++
			if r.Seq != seq {
				t.Errorf("%s:%d has seq %d, want %d", filepath.Base(file), n+1, r.Seq, seq)
			}
			if r.Prev != prev {
				t.Errorf("%s:%d has prev %s, want %s (SHA-256 of the line before)", filepath.Base(file), n+1, r.Prev, prev)
			}
			prev = sha256Of(append(line[:len(line):len(line)], '\n'))
			seg = append(seg, r)
		}
		segKseqs := checkDaemonSegment(t, file, seg)
		// kseq counts on across an adopted kernel side's daemons.
		if seg[1].Start == nil || seg[1].Start.KernelState != "adopted" {
			checkKseqs(t, kseqs)
			kseqs = map[string][]uint64{}
		}
		for k, v := range segKseqs {
			kseqs[k] = append(kseqs[k], v...)
		}
		if h := seg[0].Header; h != nil && i > 0 {
			want := &continuesBody{SegmentFile: filepath.Base(files[i-1]), LastSeq: seg[0].Seq - 1, LastHash: sha256Of(append(lastLine, '\n'))}
			if h.Continues == nil {
				t.Errorf("segment %d's header does not continue segment %d:\n%s", i+1, i, seg[0].line)
			} else if c := *h.Continues; c.SegmentFile != want.SegmentFile || c.LastSeq != want.LastSeq || c.LastHash != want.LastHash || len(c.Tree) == 0 {
				t.Errorf("segment %d's header continues %+v, want %+v (and a tree):\n%s", i+1, c, *want, seg[0].line)
			}
		}
		lastLine = seg[len(seg)-1].line
		l.segments = append(l.segments, seg)
		l.recs = append(l.recs, seg...)
	}
	out, err := exec.Command(agentBin, "verify", "--pubkey", e.pubPath, e.logDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK: intact") {
		t.Errorf("agenttrace verify --pubkey %s %s: %v\n%s", e.pubPath, e.logDir, err, out)
	}
	return l
}

// checkDaemonSegment checks one segment and returns its kernel records'
// kseq values by type and CPU.
func checkDaemonSegment(t *testing.T, file string, seg []*dRec) map[string][]uint64 {
	t.Helper()
	name := filepath.Base(file)
	if len(seg) < 4 || seg[0].Header == nil || seg[1].Start == nil || seg[1].Start.Mode != "daemon" {
		t.Fatalf("%s does not begin with a header and a daemon start record:\n%s", name, seg[0].line)
	}
	stopAt := len(seg) - 1
	for stopAt > 0 && seg[stopAt].Type == "checkpoint" {
		stopAt--
	}
	if last := seg[len(seg)-1]; stopAt == len(seg)-1 || !last.Checkpoint.Final {
		t.Errorf("%s does not end with a final checkpoint:\n%s", name, last.line)
	}
	stop := seg[stopAt].Stop
	if stop == nil || stop.Mode != "daemon" {
		t.Fatalf("%s: the last record before the closing checkpoints is not a daemon stop record:\n%s", name, seg[stopAt].line)
	}
	if stop.Lost == nil || len(stop.Lost) != 0 {
		t.Errorf("%s: the stop record reports loss: %s", name, seg[stopAt].line)
	}
	counts := map[string]uint64{}
	kseqs := map[string][]uint64{}
	for _, r := range seg {
		counts[r.Type]++
		if r.Proc.Pid != 0 {
			key := fmt.Sprintf("%s/cpu%d", r.Type, r.CPU)
			kseqs[key] = append(kseqs[key], r.Kseq)
		}
	}
	if counts["header"] != 1 || counts["start"] != 1 || counts["stop"] != 1 || counts["recovery"] != 0 || counts["gap"] != 0 || counts["freeze"] != 0 {
		t.Errorf("%s: want one header, start and stop and no recovery, gap or freeze record, got %v", name, counts)
	}
	for typ, n := range stop.Records {
		if counts[typ] != n {
			t.Errorf("%s: the stop record counts %d %s records, the segment has %d", name, n, typ, counts[typ])
		}
	}
	return kseqs
}

// checkKseqs checks that the kseq values of one kernel side's life (its
// daemons' segments) are 1, 2, 3… for every type and CPU: nothing missing,
// nothing twice.
func checkKseqs(t *testing.T, kseqs map[string][]uint64) {
	t.Helper()
	for key, ks := range kseqs {
		slices.Sort(ks)
		for i, k := range ks {
			if k != uint64(i+1) {
				t.Errorf("%s: kseq values %v are not 1..%d: a record is missing or twice", key, ks, len(ks))
				break
			}
		}
	}
}

// find returns the records of type typ that match.
func (l *daemonLog) find(typ string, match func(*dRec) bool) []*dRec {
	var out []*dRec
	for _, r := range l.recs {
		if r.Type == typ && (match == nil || match(r)) {
			out = append(out, r)
		}
	}
	return out
}

// one returns the only record of type typ that matches, failing otherwise.
func (l *daemonLog) one(t *testing.T, typ string, what string, match func(*dRec) bool) *dRec {
	t.Helper()
	found := l.find(typ, match)
	if len(found) != 1 {
		t.Fatalf("want exactly one %s record %s, got %d:\n%s", typ, what, len(found), dumpRecs(found))
	}
	return found[0]
}

// mentioning returns every line that contains s.
func (l *daemonLog) mentioning(s string) []*dRec {
	var out []*dRec
	for _, r := range l.recs {
		if bytes.Contains(r.line, []byte(s)) {
			out = append(out, r)
		}
	}
	return out
}

func dumpRecs(recs []*dRec) string {
	var b strings.Builder
	for _, r := range recs {
		b.Write(r.line)
		b.WriteByte('\n')
	}
	return b.String()
}

func dOpenOf(path string) func(*dRec) bool {
	return func(r *dRec) bool { return r.Open != nil && r.Open.Path == path }
}

func dTargetOf(op, cgroup string) func(*dRec) bool {
	return func(r *dRec) bool { return r.Target != nil && r.Target.Op == op && r.Target.Cgroup == cgroup }
}

func ptrTo(n int) *int { return &n }

// asJSON shows an expected value in the form of the records.
func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// wantOpen checks the one open record of path: made by the helper pid
// with open(2), returning fd, in the cgroup cg (records' form) with id cgID.
// (The thread is any of the helper's: the Go runtime picks it.)
func wantOpen(t *testing.T, l *daemonLog, path string, pid, fd int, cg string, cgID uint64) {
	t.Helper()
	r := l.one(t, "open", "of "+path, dOpenOf(path))
	if r.Proc.Pid != pid || r.Proc.Tid == 0 || r.Proc.Exe != helperBin || r.Open.Syscall != "open" || r.Open.Ret != fd || r.Proc.Cgroup != cg || r.Proc.CgroupID != cgID {
		t.Errorf("open of %s: want pid %d, exe %s, syscall open, ret %d, proc.cgroup %s (id %d), got:\n%s", path, pid, helperBin, fd, cg, cgID, r.line)
	}
}

// TestDaemonGlobTargets: with the target <base>/agent-*, a cgroup created
// after start that matches is traced from its creation (a cgroup record,
// then its process's open) and one that does not match is not (no record
// at all); removing the traced cgroup is recorded too.
func TestDaemonGlobTargets(t *testing.T) {
	e := newDaemonEnv(t)
	pattern := e.pattern("agent-*")
	cfgHash := e.writeConfig(t, e.daemonConfig([]string{pattern}, ""))
	dir := testDir(t)
	p1, p2 := uniqueFile(t, dir, "traced-open"), uniqueFile(t, dir, "untraced-open")
	baseID := cgroupIno(t, e.cg(""))

	d := e.startDaemon(t)
	agentID := e.mkdir(t, "agent-1")
	e.mkdir(t, "other")
	pid1, fd1 := e.openIn(t, "agent-1", p1)
	e.openIn(t, "other", p2)
	e.rmdir(t, "agent-1")
	d.stop(t)

	l := e.readDaemonLog(t)
	if len(l.segments) != 1 {
		t.Fatalf("want 1 segment, got %v", l.files)
	}

	start := l.recs[1].Start
	hooks := make([]string, len(start.Hooks))
	for i, h := range start.Hooks {
		hooks[i] = h.Hook
	}
	if start.Pid != d.cmd.Process.Pid || start.UID != 0 || start.Config != e.cfgPath || start.ConfigSHA256 != cfgHash ||
		start.CgroupMount != e.mount || !slices.Equal(start.Targets, []string{pattern}) ||
		start.MaxArgBytes != 32<<10 || start.RingSize != 16<<20 || start.FailClosed ||
		!slices.Equal(start.SensitivePaths, record.ParsePatterns(record.DefaultSensitivePaths)) {
		t.Errorf("start record: want pid %d, uid 0, config %s (sha256 %s), cgroup_mount %s, targets [%s], max_arg_bytes 32768, ring_size 16777216, fail_closed false, the default sensitive paths; got:\n%s",
			d.cmd.Process.Pid, e.cfgPath, cfgHash, e.mount, pattern, l.recs[1].line)
	}
	if !slices.Equal(hooks, daemonHooks) {
		t.Errorf("start record hooks %v, want %v", hooks, daemonHooks)
	}

	mkdirs := l.find("cgroup", func(r *dRec) bool { return r.Cgroup.Op == "mkdir" })
	wantMkdir := dCgroup{Op: "mkdir", ID: agentID, ParentID: baseID, Level: 3, Path: e.cgPath("agent-1"), Matched: true, Targets: []string{pattern}}
	if len(mkdirs) != 1 || !reflect.DeepEqual(*mkdirs[0].Cgroup, wantMkdir) {
		t.Errorf("want exactly one cgroup mkdir record, %+v; got:\n%s", wantMkdir, dumpRecs(mkdirs))
	}
	rmdirs := l.find("cgroup", func(r *dRec) bool { return r.Cgroup.Op == "rmdir" })
	wantRmdir := dCgroup{Op: "rmdir", ID: agentID, ParentID: baseID, Level: 3, Path: e.cgPath("agent-1")}
	if len(rmdirs) != 1 || !reflect.DeepEqual(*rmdirs[0].Cgroup, wantRmdir) {
		t.Errorf("want exactly one cgroup rmdir record, %+v; got:\n%s", wantRmdir, dumpRecs(rmdirs))
	}
	if other := l.mentioning(e.cgPath("other")); len(other) != 0 {
		t.Errorf("records mention the untraced cgroup %s:\n%s", e.cgPath("other"), dumpRecs(other))
	}
	// No target records: nothing matched at start, and cgroups created
	// or removed while running are cgroup records.
	if targets := l.find("target", nil); len(targets) != 0 {
		t.Errorf("want no target records, got:\n%s", dumpRecs(targets))
	}

	wantOpen(t, l, p1, pid1, fd1, e.cgPath("agent-1"), agentID)
	if open := l.find("open", dOpenOf(p1)); len(open) == 1 && len(mkdirs) == 1 && len(rmdirs) == 1 &&
		!(mkdirs[0].Seq < open[0].Seq && open[0].Seq < rmdirs[0].Seq) {
		t.Errorf("want the cgroup's mkdir record, then the open in it, then its rmdir record; seq %d, %d, %d", mkdirs[0].Seq, open[0].Seq, rmdirs[0].Seq)
	}
	if leaked := l.mentioning(p2); len(leaked) != 0 {
		t.Errorf("records mention %s, opened only in the untraced cgroup:\n%s", p2, dumpRecs(leaked))
	}

	stop := l.find("stop", nil)[0]
	if stop.Stop.Reason != "signal SIGTERM" {
		t.Errorf("stop reason %q, want \"signal SIGTERM\":\n%s", stop.Stop.Reason, stop.line)
	}
	if stop.Stop.Records["cgroup"] != 2 {
		t.Errorf("stop record counts %d cgroup records, want 2:\n%s", stop.Stop.Records["cgroup"], stop.line)
	}
	if last := l.recs[len(l.recs)-1]; last.Checkpoint == nil || !last.Checkpoint.Final {
		t.Errorf("the last line is not a final checkpoint:\n%s", last.line)
	}
}

// pythonInterpreter is the real python3 program (not a wrapper such as a
// pyenv shim, so that argv and exe are what the test executed).
func pythonInterpreter(t *testing.T) string {
	t.Helper()
	tools.Require(t, "python3")
	path, err := exec.LookPath("python3")
	if err == nil {
		var out []byte
		out, err = exec.Command(path, "-c", "import sys; print(sys.executable)").Output()
		path = strings.TrimSpace(string(out))
	}
	if err != nil || path == "" {
		t.Fatalf("python3 does not say where it is: %v", err)
	}
	return path
}

// procStartTime is a process's start time in ns since boot, as
// /proc/PID/stat gives it (clock ticks of 1/100 s).
func procStartTime(t *testing.T, pid int) uint64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the comm, which ends with the last ')': state is field 3.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	ticks, err := strconv.ParseUint(fields[22-3], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return ticks * 10_000_000
}

// socketFds lists a process's socket fds with their inodes.
func socketFds(t *testing.T, pid int) map[int]uint64 {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]uint64{}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(target, "socket:["); ok {
			fd, _ := strconv.Atoi(e.Name())
			out[fd], _ = strconv.ParseUint(strings.TrimSuffix(ino, "]"), 10, 64)
		}
	}
	return out
}

// TestDaemonSnapshot: a process already running in a matching cgroup when
// the daemon starts gets a target record (reason start, 1 process) and a
// snapshot record: identity, argv, exe, cwd, cgroup and its established
// TCP connection to the test's loopback listener.
func TestDaemonSnapshot(t *testing.T) {
	e := newDaemonEnv(t)
	python := pythonInterpreter(t)
	pattern := e.pattern("agent-*")
	e.writeConfig(t, e.daemonConfig([]string{pattern}, ""))
	snapID := e.mkdir(t, "agent-snap")
	cwd := testDir(t)

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()

	marker := fmt.Sprintf("agenttrace-snapshot-%d", time.Now().UnixNano())
	prog := `import socket,sys,time
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])))
print("ready",flush=True)
time.sleep(120)`
	argv := []string{python, "-c", prog, strconv.Itoa(port), marker}
	fd, err := unix.Open(e.cg("agent-snap"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = cwd
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var pyStderr bytes.Buffer
	cmd.Stderr = &pyStderr
	err = cmd.Start()
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if line != "ready\n" {
			t.Fatalf("python printed %q, want ready; stderr:\n%s", line, &pyStderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("python did not connect within 30 s; stderr:\n%s", &pyStderr)
	}
	conn, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer conn.Close()
	srcPort := conn.RemoteAddr().(*net.TCPAddr).Port
	pid := cmd.Process.Pid
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		t.Fatal(err)
	}
	sockets := socketFds(t, pid)
	if len(sockets) != 1 {
		t.Fatalf("python has sockets %v, want exactly its connection", sockets)
	}
	var sockFd int
	var sockIno uint64
	for fd, ino := range sockets {
		sockFd, sockIno = fd, ino
	}
	auidText, err := os.ReadFile(fmt.Sprintf("/proc/%d/loginuid", pid))
	if err != nil {
		t.Fatal(err)
	}
	auid, err := strconv.ParseUint(strings.TrimSpace(string(auidText)), 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	startTime := procStartTime(t, pid)

	d := e.startDaemon(t)
	d.stop(t)

	l := e.readDaemonLog(t)
	target := l.one(t, "target", "adding "+e.cgPath("agent-snap"), dTargetOf("add", e.cgPath("agent-snap")))
	wantTarget := dTarget{Op: "add", Reason: "start", Cgroup: e.cgPath("agent-snap"), CgroupID: snapID, Targets: []string{pattern}, Processes: ptrTo(1)}
	if !reflect.DeepEqual(*target.Target, wantTarget) {
		t.Errorf("target record: want %s, got:\n%s", asJSON(wantTarget), target.line)
	}
	if n := len(l.find("target", nil)); n != 1 {
		t.Errorf("want 1 target record, got %d:\n%s", n, dumpRecs(l.find("target", nil)))
	}

	snap := l.one(t, "snapshot", fmt.Sprintf("of pid %d", pid), func(r *dRec) bool { return r.Snapshot != nil && r.Snapshot.Pid == pid })
	want := dSnapshot{
		Pid: pid, Ppid: os.Getpid(), Auid: uint32(auid),
		Comm: filepath.Base(python)[:min(15, len(filepath.Base(python)))],
		Exe:  exe, Argv: argv, Cwd: cwd,
		StartTime: startTime, StartTimeResolutionNs: 10_000_000,
		Cgroup: e.cgPath("agent-snap"),
		Sockets: []dSocket{{
			Fd: sockFd, Inode: sockIno, Family: "AF_INET", Proto: "tcp", State: "ESTABLISHED",
			SrcAddr: "127.0.0.1", SrcPort: srcPort, DstAddr: "127.0.0.1", DstPort: port,
		}},
	}
	if !reflect.DeepEqual(*snap.Snapshot, want) {
		t.Errorf("snapshot record:\n got %s\nwant %s\nline: %s", asJSON(snap.Snapshot), asJSON(want), snap.line)
	}
	if target.Seq > snap.Seq {
		t.Errorf("the snapshot record comes before the target record that announces it")
	}
	if snaps := l.find("snapshot", nil); len(snaps) != 1 {
		t.Errorf("want 1 snapshot record, got %d:\n%s", len(snaps), dumpRecs(snaps))
	}
}

// TestDaemonReloadStopRestart: SIGHUP applies new targets (target records
// for what stops and starts matching; tracing follows); a broken file is
// rejected with its file:line and the previous targets stay; after SIGTERM
// a second daemon continues the same log in a new segment.
func TestDaemonReloadStopRestart(t *testing.T) {
	e := newDaemonEnv(t)
	agentPattern, toolPattern := e.pattern("agent-*"), e.pattern("tool-*")
	agentID, toolID := e.mkdir(t, "agent-1"), e.mkdir(t, "tool-1")
	dir := testDir(t)
	e.writeConfig(t, e.daemonConfig([]string{agentPattern}, ""))

	d := e.startDaemon(t)
	before := uniqueFile(t, dir, "agent-before-reload")
	beforePid, beforeFd := e.openIn(t, "agent-1", before)

	// (a) New targets.
	toolConfig := e.daemonConfig([]string{toolPattern}, "")
	toolHash := e.writeConfig(t, toolConfig)
	at := d.signal(t, syscall.SIGHUP)
	d.waitLog(t, at, "reloaded", 20*time.Second)
	toolOpen, agentOpen := uniqueFile(t, dir, "tool-after-reload"), uniqueFile(t, dir, "agent-after-reload")
	toolPid, toolFd := e.openIn(t, "tool-1", toolOpen)
	e.openIn(t, "agent-1", agentOpen)

	// (b) A file that does not validate: targets[0] on line 2.
	badConfig := e.daemonConfig([]string{"a/[x]"}, "")
	badHash := e.writeConfig(t, badConfig)
	at = d.signal(t, syscall.SIGHUP)
	wantErr := e.cfgPath + `:2: targets[0] "a/[x]": only * and ? are supported as wildcards (no [...] classes or \ escapes)`
	logged := d.waitLog(t, at, "reload rejected; the previous configuration stays in force", 20*time.Second)
	if logged["level"] != "error" || logged["error"] != wantErr || logged["config"] != e.cfgPath {
		t.Errorf("the daemon logged %v, want level error, error %q, config %s", logged, wantErr, e.cfgPath)
	}
	toolOpen2, agentOpen2 := uniqueFile(t, dir, "tool-after-rejected"), uniqueFile(t, dir, "agent-after-rejected")
	tool2Pid, tool2Fd := e.openIn(t, "tool-1", toolOpen2)
	e.openIn(t, "agent-1", agentOpen2)

	// (c) Stop; start again with the fixed file: the log continues.
	d.stop(t)
	first := e.readDaemonLog(t)
	e.writeConfig(t, toolConfig)
	d2 := e.startDaemon(t)
	afterRestart := uniqueFile(t, dir, "tool-after-restart")
	restartPid, restartFd := e.openIn(t, "tool-1", afterRestart)
	d2.stop(t)

	l := e.readDaemonLog(t)
	if len(l.segments) != 2 {
		t.Fatalf("want 2 segments after the restart, got %v", l.files)
	}
	if files, _ := logfile.Segments(l.base); len(files) != 2 || files[1] != filepath.Join(e.logDir, "audit.000002.jsonl") {
		t.Errorf("segments %v, want audit.jsonl and audit.000002.jsonl", files)
	}
	seg1, seg2 := l.segments[0], l.segments[1]
	if len(seg1) != len(first.recs) || !bytes.Equal(seg1[len(seg1)-1].line, first.recs[len(first.recs)-1].line) {
		t.Errorf("the first segment changed after the first daemon stopped")
	}
	lastOfFirst := sha256Of(append(slices.Clone(seg1[len(seg1)-1].line), '\n'))
	if seg2[0].Prev != lastOfFirst || seg2[0].Header.Continues == nil || seg2[0].Header.Continues.LastHash != lastOfFirst ||
		seg2[0].Header.Segment != 2 || seg2[0].Header.LogID != seg1[0].Header.LogID {
		t.Errorf("segment 2's header does not continue segment 1 (whose last line hashes to %s):\n%s", lastOfFirst, seg2[0].line)
	}

	// Segment 1: start matched agent-1 only.
	inSeg := func(seg []*dRec, typ string, match func(*dRec) bool) []*dRec {
		var out []*dRec
		for _, r := range seg {
			if r.Type == typ && match(r) {
				out = append(out, r)
			}
		}
		return out
	}
	targets1 := inSeg(seg1, "target", func(*dRec) bool { return true })
	wantTargets1 := []dTarget{
		{Op: "add", Reason: "start", Cgroup: e.cgPath("agent-1"), CgroupID: agentID, Targets: []string{agentPattern}, Processes: ptrTo(0)},
		{Op: "remove", Reason: "reload", Cgroup: e.cgPath("agent-1"), CgroupID: agentID},
		{Op: "add", Reason: "reload", Cgroup: e.cgPath("tool-1"), CgroupID: toolID, Targets: []string{toolPattern}, Processes: ptrTo(0)},
	}
	var gotTargets1 []dTarget
	for _, r := range targets1 {
		gotTargets1 = append(gotTargets1, *r.Target)
	}
	// The records of one reload come in no particular order.
	if len(gotTargets1) == len(wantTargets1) {
		slices.SortFunc(gotTargets1[1:], func(a, b dTarget) int { return strings.Compare(b.Op, a.Op) })
	}
	if !reflect.DeepEqual(gotTargets1, wantTargets1) {
		t.Errorf("segment 1 target records:\n%s\nwant (in any order after the first) %s", dumpRecs(targets1), asJSON(wantTargets1))
	}

	reloads := inSeg(seg1, "reload", func(*dRec) bool { return true })
	wantReloads := []dReload{
		{Status: "applied", Config: e.cfgPath, ConfigSHA256: toolHash, Changed: []string{"targets"}, Targets: []string{toolPattern}},
		{Status: "rejected", Config: e.cfgPath, ConfigSHA256: badHash, Error: wantErr},
	}
	var gotReloads []dReload
	for _, r := range reloads {
		gotReloads = append(gotReloads, *r.Reload)
	}
	if !reflect.DeepEqual(gotReloads, wantReloads) {
		t.Errorf("reload records:\n%s\nwant %+v", dumpRecs(reloads), wantReloads)
	}
	if len(reloads) == 2 && len(targets1) == 3 && !(targets1[0].Seq < reloads[0].Seq && reloads[0].Seq < targets1[1].Seq && targets1[2].Seq < reloads[1].Seq) {
		t.Errorf("want target add (start), reload applied, the reload's target records, reload rejected, in that order")
	}

	wantOpen(t, l, before, beforePid, beforeFd, e.cgPath("agent-1"), agentID)
	wantOpen(t, l, toolOpen, toolPid, toolFd, e.cgPath("tool-1"), toolID)
	wantOpen(t, l, toolOpen2, tool2Pid, tool2Fd, e.cgPath("tool-1"), toolID)
	wantOpen(t, l, afterRestart, restartPid, restartFd, e.cgPath("tool-1"), toolID)
	for _, p := range []string{agentOpen, agentOpen2} {
		if leaked := l.mentioning(p); len(leaked) != 0 {
			t.Errorf("records mention %s, opened in agent-1 after it stopped matching:\n%s", p, dumpRecs(leaked))
		}
	}

	// Segment 2: a new daemon on the tool-* targets.
	start2 := seg2[1].Start
	if !slices.Equal(start2.Targets, []string{toolPattern}) || start2.ConfigSHA256 != toolHash || start2.Pid != d2.cmd.Process.Pid {
		t.Errorf("segment 2 start record: want targets [%s], config_sha256 %s, pid %d:\n%s", toolPattern, toolHash, d2.cmd.Process.Pid, seg2[1].line)
	}
	targets2 := inSeg(seg2, "target", func(*dRec) bool { return true })
	wantTarget2 := dTarget{Op: "add", Reason: "start", Cgroup: e.cgPath("tool-1"), CgroupID: toolID, Targets: []string{toolPattern}, Processes: ptrTo(0)}
	if len(targets2) != 1 || !reflect.DeepEqual(*targets2[0].Target, wantTarget2) {
		t.Errorf("segment 2 target records:\n%s\nwant %s", dumpRecs(targets2), asJSON(wantTarget2))
	}
	if r := l.one(t, "open", "of "+afterRestart, dOpenOf(afterRestart)); r.segment != 2 {
		t.Errorf("the open after the restart is in segment %d", r.segment)
	}
}

// promSample is one sample line of the text exposition format.
type promSample struct {
	name   string
	labels map[string]string
	value  float64
}

// parsePromText parses the Prometheus text format: "name{k="v",...} value".
func parsePromText(t *testing.T, body string) []promSample {
	t.Helper()
	var out []promSample
	for _, line := range strings.Split(body, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			t.Fatalf("metrics line %q", line)
		}
		value, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		s := promSample{name: line[:sp], labels: map[string]string{}, value: value}
		if i := strings.IndexByte(s.name, '{'); i >= 0 {
			labels := strings.TrimSuffix(s.name[i+1:], "}")
			s.name = s.name[:i]
			for labels != "" {
				k, rest, _ := strings.Cut(labels, `="`)
				v, rest, _ := strings.Cut(rest, `"`)
				s.labels[k] = v
				labels = strings.TrimPrefix(rest, ",")
			}
		}
		out = append(out, s)
	}
	return out
}

// promValue returns the value of the one sample of name with exactly labels.
func promValue(t *testing.T, samples []promSample, name string, labels map[string]string) float64 {
	t.Helper()
	var found []float64
	for _, s := range samples {
		if s.name == name && reflect.DeepEqual(s.labels, labels) {
			found = append(found, s.value)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one sample %s%v, found %d", name, labels, len(found))
	}
	return found[0]
}

// freeLoopbackPort is a loopback TCP port that was free a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestDaemonMetrics: the metrics endpoint counts what the log holds and
// exposes no record contents.
func TestDaemonMetrics(t *testing.T) {
	e := newDaemonEnv(t)
	pattern := e.pattern("agent-*")
	listen := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	const ringSize = 1 << 20
	e.writeConfig(t, e.daemonConfig([]string{pattern}, listen, "ring_size: 1MiB"))
	agentID := e.mkdir(t, "agent-m")
	marker := uniqueFile(t, testDir(t), "metrics-repeat-open")
	const n = 25

	d := e.startDaemon(t)
	pid, ops := e.runIn(t, "agent-m", "repeat-open", marker, strconv.Itoa(n))
	if len(ops) != n {
		t.Fatalf("helper made %d opens, want %d", len(ops), n)
	}
	// A record reaches the log well within 1 s. Should the machine be
	// slower than that, scrape again until every open and exit the
	// kernel matched is written (the helper's exit is its last event).
	time.Sleep(1500 * time.Millisecond)
	client := &http.Client{Timeout: 10 * time.Second}
	var body []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := client.Get("http://" + listen + "/metrics")
		if err != nil {
			t.Fatalf("GET /metrics: %v; daemon stderr:\n%s", err, d.stderr())
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %s, %v\n%s", resp.Status, err, body)
		}
		samples := parsePromText(t, string(body))
		drained := true
		for _, kind := range []string{"open", "exit"} {
			kindLabel := map[string]string{"kind": kind}
			if promValue(t, samples, "agenttrace_records_written_total", kindLabel) != promValue(t, samples, "agenttrace_events_matched_total", kindLabel) {
				drained = false
			}
		}
		if drained || time.Now().After(deadline) {
			break
		}
	}
	d.stop(t)

	l := e.readDaemonLog(t)
	opens := l.find("open", nil)
	markerOpens := l.find("open", dOpenOf(marker))
	if len(markerOpens) != n {
		t.Errorf("want %d open records of %s, got %d", n, marker, len(markerOpens))
	}
	for i, r := range markerOpens {
		if r.Proc.Pid != pid || r.Open.Ret != ops[i].Ret || r.Proc.Cgroup != e.cgPath("agent-m") || r.Proc.CgroupID != agentID {
			t.Errorf("open %d of the marker: want pid %d, ret %d, cgroup %s:\n%s", i, pid, ops[i].Ret, e.cgPath("agent-m"), r.line)
		}
	}

	samples := parsePromText(t, string(body))
	written := promValue(t, samples, "agenttrace_records_written_total", map[string]string{"kind": "open"})
	if written != float64(len(opens)) {
		t.Errorf("agenttrace_records_written_total{kind=\"open\"} = %v, the log has %d open records", written, len(opens))
	}
	if matched := promValue(t, samples, "agenttrace_events_matched_total", map[string]string{"kind": "open"}); matched != written {
		t.Errorf("agenttrace_events_matched_total{kind=\"open\"} = %v, written %v", matched, written)
	}
	lost := 0
	for _, s := range samples {
		if s.name == "agenttrace_events_lost_total" {
			lost++
			if s.value != 0 {
				t.Errorf("agenttrace_events_lost_total%v = %v, want 0", s.labels, s.value)
			}
		}
	}
	if lost == 0 {
		t.Errorf("no agenttrace_events_lost_total samples")
	}
	if v := promValue(t, samples, "agenttrace_targets", map[string]string{}); v != 1 {
		t.Errorf("agenttrace_targets = %v, want 1", v)
	}
	if v := promValue(t, samples, "agenttrace_ring_buffer_size_bytes", map[string]string{}); v != ringSize {
		t.Errorf("agenttrace_ring_buffer_size_bytes = %v, want %d", v, ringSize)
	}
	if v := promValue(t, samples, "agenttrace_checkpoint_age_seconds", map[string]string{}); v < 0 {
		t.Errorf("agenttrace_checkpoint_age_seconds = %v", v)
	}
	if v := promValue(t, samples, "agenttrace_log_write_seconds_count", map[string]string{"op": "write"}); v <= 0 {
		t.Errorf("agenttrace_log_write_seconds_count{op=\"write\"} = %v, want > 0", v)
	}
	if start := l.recs[1].Start; start.RingSize != ringSize {
		t.Errorf("start record ring_size %d, want %d", start.RingSize, ringSize)
	}
	// Counts only: neither the path nor its file name nor the cgroup.
	for _, s := range []string{marker, filepath.Base(marker), e.base} {
		if bytes.Contains(body, []byte(s)) {
			t.Errorf("the metrics endpoint exposes %q", s)
		}
	}
}

// TestDaemonRejectsBadConfig: a configuration file others can write, or
// one with an unknown key, stops the daemon before it creates anything.
func TestDaemonRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   os.FileMode
		text   func(e *daemonEnv) string
		stderr func(e *daemonEnv) []string
	}{
		{
			name: "group-and-other-writable",
			mode: 0o666,
			text: func(e *daemonEnv) string { return e.daemonConfig([]string{e.pattern("agent-*")}, "") },
			stderr: func(e *daemonEnv) []string {
				return []string{e.cfgPath + ": writable by group or others (mode 0666): chmod go-w " + e.cfgPath}
			},
		},
		{
			name: "unknown-key",
			mode: 0o600,
			text: func(e *daemonEnv) string {
				cfg := e.daemonConfig([]string{e.pattern("agent-*")}, "")
				// Line 3, after "targets:" and its one item.
				return strings.Replace(cfg, "log:\n", "no_such_key: 1\nlog:\n", 1)
			},
			stderr: func(e *daemonEnv) []string {
				return []string{e.cfgPath + `:3: unknown key "no_such_key"`}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newDaemonEnv(t)
			if err := os.Mkdir(e.logDir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(e.cfgPath, []byte(tc.text(e)), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(e.cfgPath, tc.mode); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(agentBin, "daemon", "--config", e.cfgPath)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("the daemon did not exit within 10 s; stderr:\n%s", &stderr)
			}
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
				t.Errorf("daemon exit: %v, want exit status 1; stderr:\n%s", err, &stderr)
			}
			// The error is logged as one zerolog line: {"level":"error","error":...}.
			var logged []string
			for _, line := range strings.Split(stderr.String(), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil && m["level"] == "error" {
					if msg, ok := m["error"].(string); ok {
						logged = append(logged, msg)
					}
				}
			}
			for _, want := range tc.stderr(e) {
				if !slices.ContainsFunc(logged, func(msg string) bool { return strings.Contains(msg, want) }) {
					t.Errorf("no error logged says %q; stderr:\n%s", want, &stderr)
				}
			}
			if entries, err := os.ReadDir(e.logDir); err != nil || len(entries) != 0 {
				t.Errorf("the log directory holds %v (%v), want nothing", entries, err)
			}
			if _, err := os.Stat(e.stateDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the state directory was created (%v)", err)
			}
		})
	}
}

// TestDaemonLateCgroupTargets: a cgroup that matches after the daemon started
// is a target like one present at start: counted in agenttrace_targets,
// not re-added by a reload that still matches it, and removed (with a
// target record) by a reload that no longer matches it; one removed by rmdir
// is not "removed" again by a reload.
func TestDaemonLateCgroupTargets(t *testing.T) {
	e := newDaemonEnv(t)
	listen := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	e.writeConfig(t, e.daemonConfig([]string{e.pattern("agent-*")}, listen))
	e.mkdir(t, "agent-1")
	d := e.startDaemon(t)
	e.mkdir(t, "agent-2")

	scrape := func() float64 {
		t.Helper()
		resp, err := http.Get("http://" + listen + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return promValue(t, parsePromText(t, string(body)), "agenttrace_targets", map[string]string{})
	}
	deadline := time.Now().Add(10 * time.Second)
	for scrape() != 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := scrape(); got != 2 {
		t.Fatalf("agenttrace_targets = %v after a second matching cgroup was created, want 2", got)
	}

	e.rmdir(t, "agent-1")
	for scrape() != 1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := scrape(); got != 1 {
		t.Fatalf("agenttrace_targets = %v after rmdir of agent-1, want 1", got)
	}
	// Still matching agent-2: no target record.
	e.writeConfig(t, e.daemonConfig([]string{e.pattern("agent-*"), e.pattern("tool-*")}, listen))
	d.waitLog(t, d.signal(t, syscall.SIGHUP), "reloaded", 20*time.Second)
	// No longer matching agent-2: removed.
	e.writeConfig(t, e.daemonConfig([]string{e.pattern("tool-*")}, listen))
	d.waitLog(t, d.signal(t, syscall.SIGHUP), "reloaded", 20*time.Second)
	if got := scrape(); got != 0 {
		t.Errorf("agenttrace_targets = %v after the reload that matches nothing, want 0", got)
	}
	d.stop(t)

	l := e.readDaemonLog(t)
	start := l.find("target", func(r *dRec) bool { return r.Target.Reason == "start" })
	if len(start) != 1 || start[0].Target.Op != "add" || start[0].Target.Cgroup != e.cgPath("agent-1") {
		t.Errorf("want exactly one target record at start, add %s; got:\n%s", e.cgPath("agent-1"), dumpRecs(start))
	}
	reload := l.find("target", func(r *dRec) bool { return r.Target.Reason == "reload" })
	if len(reload) != 1 || reload[0].Target.Op != "remove" || reload[0].Target.Cgroup != e.cgPath("agent-2") {
		t.Errorf("want exactly one target record at the reloads, remove %s; got:\n%s", e.cgPath("agent-2"), dumpRecs(reload))
	}
	mk := l.find("cgroup", func(r *dRec) bool { return r.Cgroup.Op == "mkdir" && r.Cgroup.Path == e.cgPath("agent-2") })
	rm := l.find("cgroup", func(r *dRec) bool { return r.Cgroup.Op == "rmdir" && r.Cgroup.Path == e.cgPath("agent-1") })
	if len(mk) != 1 || len(rm) != 1 {
		t.Errorf("want one mkdir record of agent-2 and one rmdir record of agent-1, got %d and %d", len(mk), len(rm))
	}
}

// headerBody is a header record's object, read independently of the
// record package.
type headerBody struct {
	Schema            int            `json:"schema"`
	AgenttraceVersion string         `json:"agenttrace_version"`
	LogID             string         `json:"log_id"`
	Segment           int            `json:"segment"`
	Key               string         `json:"key"`
	Continues         *continuesBody `json:"continues"`
}

type continuesBody struct {
	SegmentFile string   `json:"segment_file"`
	LastSeq     uint64   `json:"last_seq"`
	LastHash    string   `json:"last_hash"`
	Tree        []string `json:"tree"`
}
