package snapshot

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/cgroup"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/schema"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the encoder's output")

// helperEnv selects a helper mode when the test binary runs as a helper
// process: it opens sockets, reports them on stdout and holds them open
// until its stdin is closed.
const helperEnv = "AGENTTRACE_SNAPSHOT_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		runHelper(mode)
	}
	os.Exit(m.Run())
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root (it reads other processes' descriptors and namespaces and creates a cgroup); CI=true: not skipping")
	}
	t.Skip("needs root: it reads other processes' descriptors and namespaces and creates a cgroup (with CI=true it fails instead of skipping)")
}

// helperSocket is a socket a helper opened: the descriptor, its inode as
// fstat gives it, and its local port for an inet socket.
type helperSocket struct {
	Name  string
	Fd    int
	Inode uint64
	Port  uint16
}

type helperReport struct {
	Sockets []helperSocket
	Auid    uint32
}

func (r *helperReport) socket(t *testing.T, name string) helperSocket {
	t.Helper()
	for _, s := range r.Sockets {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("the helper has no %q socket", name)
	return helperSocket{}
}

// The helper's credentials after it set them, all different, so that real
// and effective ids cannot be confused.
const (
	helperUid, helperEuid = 1234, 4321
	helperGid, helperEgid = 2345, 5432
	helperAuid            = 3456
)

// helperComm is the task name the helper gives itself: not UTF-8.
const helperComm = "snap\xffhelper"

func runHelper(mode string) {
	var rep helperReport
	var err error
	switch mode {
	case "sockets":
		err = helperSockets(&rep)
	case "netns":
		err = helperNetns(&rep)
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err == nil {
		err = json.NewEncoder(os.Stdout).Encode(&rep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

var loopback4 = [4]byte{127, 0, 0, 1}

// open creates a socket, sets it up and adds it to the report.
func (r *helperReport) open(name string, domain, typ, proto int, setup func(fd int) error) error {
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if setup != nil {
		if err := setup(fd); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return r.add(name, fd)
}

func (r *helperReport) add(name string, fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	s := helperSocket{Name: name, Fd: fd, Inode: st.Ino}
	switch sa, _ := unix.Getsockname(fd); sa := sa.(type) {
	case *unix.SockaddrInet4:
		s.Port = uint16(sa.Port)
	case *unix.SockaddrInet6:
		s.Port = uint16(sa.Port)
	}
	r.Sockets = append(r.Sockets, s)
	return nil
}

func listen(sa unix.Sockaddr) func(fd int) error {
	return func(fd int) error {
		if err := unix.Bind(fd, sa); err != nil {
			return err
		}
		return unix.Listen(fd, 4)
	}
}

func bind(sa unix.Sockaddr) func(fd int) error {
	return func(fd int) error { return unix.Bind(fd, sa) }
}

func connect(sa unix.Sockaddr) func(fd int) error {
	return func(fd int) error { return unix.Connect(fd, sa) }
}

func helperSockets(r *helperReport) error {
	serverPort, err := strconv.Atoi(os.Getenv("AGENTTRACE_SNAPSHOT_SERVER_PORT"))
	if err != nil {
		return err
	}
	server := &unix.SockaddrInet4{Port: serverPort, Addr: loopback4}
	mapped := &unix.SockaddrInet6{Port: serverPort, Addr: netip.AddrFrom4(loopback4).As16()} // ::ffff:127.0.0.1
	for _, s := range []struct {
		name               string
		domain, typ, proto int
		setup              func(fd int) error
	}{
		{"tcp connected", unix.AF_INET, unix.SOCK_STREAM, 0, connect(server)},
		{"tcp listening", unix.AF_INET, unix.SOCK_STREAM, 0, listen(&unix.SockaddrInet4{Addr: loopback4})},
		{"udp bound", unix.AF_INET, unix.SOCK_DGRAM, 0, bind(&unix.SockaddrInet4{Addr: loopback4})},
		{"unix listening", unix.AF_UNIX, unix.SOCK_STREAM, 0, listen(&unix.SockaddrUnix{Name: os.Getenv("AGENTTRACE_SNAPSHOT_UNIX_PATH")})},
		{"unix abstract", unix.AF_UNIX, unix.SOCK_DGRAM, 0, bind(&unix.SockaddrUnix{Name: "@" + abstractName(os.Getpid())})},
		{"tcp6 listening", unix.AF_INET6, unix.SOCK_STREAM, 0, listen(&unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()})},
		{"udp6 connected to a v4-mapped address", unix.AF_INET6, unix.SOCK_DGRAM, 0, connect(mapped)},
		{"tcp bound", unix.AF_INET, unix.SOCK_STREAM, 0, bind(&unix.SockaddrInet4{Addr: loopback4})},
		{"tcp unbound", unix.AF_INET, unix.SOCK_STREAM, 0, nil},
		{"netlink", unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE, nil},
	} {
		if err := r.open(s.name, s.domain, s.typ, s.proto, s.setup); err != nil {
			return err
		}
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := r.add("pair 0", pair[0]); err != nil {
		return err
	}
	if err := r.add("pair 1", pair[1]); err != nil {
		return err
	}

	// /proc/self is the thread group leader, whatever thread this is.
	if err := os.WriteFile("/proc/self/comm", []byte(helperComm), 0); err != nil {
		return err
	}
	r.Auid = helperAuid
	if err := os.WriteFile("/proc/self/loginuid", []byte(strconv.Itoa(helperAuid)), 0); err != nil {
		// Set and immutable for this login session: inherited.
		data, err := os.ReadFile("/proc/self/loginuid")
		if err != nil {
			return err
		}
		auid, err := strconv.ParseUint(string(data), 10, 32)
		if err != nil {
			return err
		}
		r.Auid = uint32(auid)
	}
	// syscall's set*id change every thread of the process.
	if err := syscall.Setresgid(helperGid, helperEgid, 0); err != nil {
		return err
	}
	return syscall.Setresuid(helperUid, helperEuid, 0)
}

// abstractName is an abstract unix socket name with a byte that is not
// UTF-8 and a NUL inside.
func abstractName(pid int) string {
	return fmt.Sprintf("agenttrace-snapshot\xff\x00%d", pid)
}

// helperNetns runs in a network namespace of its own (Unshareflags), where
// lo is down: it brings lo up and listens on the port the test listens on
// in its own namespace.
func helperNetns(r *helperReport) error {
	port, err := strconv.Atoi(os.Getenv("AGENTTRACE_SNAPSHOT_PORT"))
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading the flags of lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	return r.open("tcp listening", unix.AF_INET, unix.SOCK_STREAM, 0, listen(&unix.SockaddrInet4{Port: port, Addr: loopback4}))
}

type helperProc struct {
	cmd           *exec.Cmd
	report        helperReport
	before, after uint64 // boot time around its start
}

func (h *helperProc) pid() int { return h.cmd.Process.Pid }

// startHelper runs the test binary as a helper and waits for its report.
// The helper ends when the test does.
func startHelper(t *testing.T, mode string, argv []string, dir string, env []string, attr *syscall.SysProcAttr) *helperProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Args = argv
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), helperEnv+"="+mode), env...)
	cmd.SysProcAttr = attr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	h := &helperProc{cmd: cmd, before: record.BootTime()}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the %s helper: %v", mode, err)
	}
	h.after = record.BootTime()
	stop := func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	}
	t.Cleanup(stop)
	if err := json.NewDecoder(stdout).Decode(&h.report); err != nil {
		stop()
		t.Fatalf("the %s helper did not report: %v; stderr: %s", mode, err, stderr.Bytes())
	}
	return h
}

// testCgroup creates a cgroup for the test's processes below the cgroup2
// mount, removed at the end of the test.
func testCgroup(t *testing.T) *cgroup.Cgroup {
	t.Helper()
	mount, err := cgroup.Mount()
	if err != nil {
		t.Fatal(err)
	}
	cg, err := cgroup.Create(mount, fmt.Sprintf("agenttrace-test/snapshot-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cg.Kill()
		cg.WaitEmpty(5 * time.Second)
		if err := cg.Remove(); err != nil {
			t.Error(err)
		}
	})
	return cg
}

func addrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

func compareSockets(t *testing.T, got, want []Socket) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	for i := range max(len(got), len(want)) {
		var g, w any = "(none)", "(none)"
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("socket %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// TestTake starts a helper that holds sockets of every kind in a cgroup of
// its own, and another in a network namespace of its own, and reads both.
func TestTake(t *testing.T) {
	requireRoot(t)
	cg := testCgroup(t)
	server, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	serverAddr := addrPort(t, server.Addr().String())

	tmp, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cwd := filepath.Join(tmp, "cwd\xff\nnext")
	if err := os.Mkdir(cwd, 0o755); err != nil {
		t.Fatal(err)
	}
	unixPath := filepath.Join(tmp, "s.sock")
	argv := []string{"snapshot-helper", "arg\xffbyte", "two\nlines", "", "last"}
	h := startHelper(t, "sockets", argv, cwd, []string{
		"AGENTTRACE_SNAPSHOT_SERVER_PORT=" + strconv.Itoa(int(serverAddr.Port())),
		"AGENTTRACE_SNAPSHOT_UNIX_PATH=" + unixPath,
	}, &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.FD()})
	accepted, err := server.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()

	// The same port as a listener of this test: only in the helper's own
	// network namespace can it listen there too.
	nsListener, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer nsListener.Close()
	nsPort := addrPort(t, nsListener.Addr().String()).Port()
	nsHelper := startHelper(t, "netns", []string{"snapshot-netns-helper"}, "/", []string{
		"AGENTTRACE_SNAPSHOT_PORT=" + strconv.Itoa(int(nsPort)),
	}, &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNET, UseCgroupFD: true, CgroupFD: cg.FD()})

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Take(h.pid())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("process", func(t *testing.T) {
		want := &Process{
			Pid:  h.pid(),
			Ppid: os.Getpid(),
			Uid:  helperUid, Gid: helperGid, Euid: helperEuid, Egid: helperEgid, Auid: h.report.Auid,
			Comm:                helperComm,
			Exe:                 []byte(exe),
			Cwd:                 []byte(cwd),
			StartTime:           p.StartTime, // checked below: /proc has it to 10 ms
			StartTimeResolution: 10_000_000,
			CgroupPath:          cg.Rel,
			Sockets:             p.Sockets, // checked in "sockets"
		}
		for _, a := range argv {
			want.Argv = append(want.Argv, []byte(a))
		}
		got := *p
		if !reflect.DeepEqual(&got, want) {
			t.Errorf("Take =\n%+v\nwant\n%+v", got, *want)
		}
		if p.StartTime+p.StartTimeResolution <= h.before || p.StartTime > h.after {
			t.Errorf("StartTime %d: the helper started between %d and %d (boot time ns)", p.StartTime, h.before, h.after)
		}
	})

	t.Run("sockets", func(t *testing.T) {
		r := &h.report
		s := func(name string) helperSocket { return r.socket(t, name) }
		loopback := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.AddrFrom4(loopback4), port) }
		unspec4 := addrPort(t, "0.0.0.0:0")
		mappedServer := netip.AddrPortFrom(netip.AddrFrom16(serverAddr.Addr().As16()), serverAddr.Port())
		pair0, pair1 := s("pair 0"), s("pair 1")
		want := []Socket{
			{Fd: s("tcp connected").Fd, Inode: s("tcp connected").Inode, Family: "AF_INET", Proto: "tcp", State: "ESTABLISHED",
				Src: addrPort(t, accepted.RemoteAddr().String()), Dst: serverAddr},
			{Fd: s("tcp listening").Fd, Inode: s("tcp listening").Inode, Family: "AF_INET", Proto: "tcp", State: "LISTEN",
				Src: loopback(s("tcp listening").Port), Dst: unspec4},
			{Fd: s("udp bound").Fd, Inode: s("udp bound").Inode, Family: "AF_INET", Proto: "udp", State: "CLOSE",
				Src: loopback(s("udp bound").Port), Dst: unspec4},
			{Fd: s("unix listening").Fd, Inode: s("unix listening").Inode, Family: "AF_UNIX", Proto: "unix_stream", State: "LISTEN",
				Path: []byte(unixPath)},
			{Fd: s("unix abstract").Fd, Inode: s("unix abstract").Inode, Family: "AF_UNIX", Proto: "unix_dgram", State: "CLOSE",
				Path: []byte("\x00" + abstractName(h.pid()))},
			{Fd: s("tcp6 listening").Fd, Inode: s("tcp6 listening").Inode, Family: "AF_INET6", Proto: "tcp", State: "LISTEN",
				Src: netip.AddrPortFrom(netip.IPv6Loopback(), s("tcp6 listening").Port), Dst: addrPort(t, "[::]:0")},
			{Fd: s("udp6 connected to a v4-mapped address").Fd, Inode: s("udp6 connected to a v4-mapped address").Inode, Family: "AF_INET6", Proto: "udp", State: "ESTABLISHED",
				Src: netip.AddrPortFrom(mappedServer.Addr(), s("udp6 connected to a v4-mapped address").Port), Dst: mappedServer},
			// Bound, neither listening nor connected: only the pseudo-state
			// TCP_BOUND_INACTIVE makes sock_diag list it.
			{Fd: s("tcp bound").Fd, Inode: s("tcp bound").Inode, Family: "AF_INET", Proto: "tcp", State: "CLOSE",
				Src: loopback(s("tcp bound").Port), Dst: unspec4},
			// In no table of sock_diag.
			{Fd: s("tcp unbound").Fd, Inode: s("tcp unbound").Inode, Proto: "unknown"},
			{Fd: s("netlink").Fd, Inode: s("netlink").Inode, Proto: "unknown"},
			{Fd: pair0.Fd, Inode: pair0.Inode, Family: "AF_UNIX", Proto: "unix_seqpacket", State: "ESTABLISHED", Peer: pair1.Inode},
			{Fd: pair1.Fd, Inode: pair1.Inode, Family: "AF_UNIX", Proto: "unix_seqpacket", State: "ESTABLISHED", Peer: pair0.Inode},
		}
		compareSockets(t, p.Sockets, want)
	})

	t.Run("other network namespace", func(t *testing.T) {
		p, err := Take(nsHelper.pid())
		if err != nil {
			t.Fatal(err)
		}
		l := nsHelper.report.socket(t, "tcp listening")
		compareSockets(t, p.Sockets, []Socket{{Fd: l.Fd, Inode: l.Inode, Family: "AF_INET", Proto: "tcp", State: "LISTEN",
			Src: netip.AddrPortFrom(netip.AddrFrom4(loopback4), nsPort), Dst: addrPort(t, "0.0.0.0:0")}})
		if len(p.Errors) != 0 {
			t.Errorf("Errors = %q", p.Errors)
		}
		// This test's listener on the same address is another socket, in
		// another namespace.
		self, err := Take(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, s := range self.Sockets {
			if s.Src == netip.AddrPortFrom(netip.AddrFrom4(loopback4), nsPort) && s.State == "LISTEN" {
				found = true
				if s.Inode == l.Inode {
					t.Errorf("the test's listener and the helper's have the same inode %d", s.Inode)
				}
			}
		}
		if !found {
			t.Errorf("the test's own listener on port %d is not in its snapshot: %+v", nsPort, self.Sockets)
		}
	})

	t.Run("one dump per network namespace", func(t *testing.T) {
		nets := newNetnsTables()
		for _, pid := range []int{h.pid(), nsHelper.pid(), os.Getpid(), h.pid()} {
			if _, err := take(pid, nets); err != nil {
				t.Fatal(err)
			}
		}
		if nets.dumps != 2 {
			t.Errorf("%d dumps for processes of 2 network namespaces", nets.dumps)
		}
		all := TakeAll([]int{h.pid(), goneProcess(t), nsHelper.pid()})
		if len(all) != 2 || all[0].Pid != h.pid() || all[1].Pid != nsHelper.pid() {
			t.Errorf("TakeAll gave %d processes, want the two helpers", len(all))
		}
		for _, p := range all {
			if len(p.Sockets) == 0 || p.Sockets[0].Proto == "unknown" {
				t.Errorf("TakeAll: pid %d: sockets %+v", p.Pid, p.Sockets)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		line := encode(p)
		if err := schema.Validate(line); err != nil {
			t.Fatalf("%v\n%s", err, line)
		}
		var rec struct {
			Type     string
			Snapshot struct {
				Pid     int
				Comm    string
				CommB64 []byte   `json:"comm_b64"`
				Exe     string   // exact: no exe_b64
				Argv    []string // readable forms
				ArgvB64 [][]byte `json:"argv_b64"`
				Cwd     string
				CwdB64  []byte `json:"cwd_b64"`
				Cgroup  string
				Sockets []map[string]any
				Errors  []string
			}
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		s := rec.Snapshot
		if rec.Type != "snapshot" || s.Pid != h.pid() || s.Exe != exe || s.Cgroup != cg.Rel || s.Errors != nil {
			t.Errorf("type %q pid %d exe %q cgroup %q errors %q", rec.Type, s.Pid, s.Exe, s.Cgroup, s.Errors)
		}
		if string(s.CommB64) != helperComm || s.Comm != `snap\xffhelper` {
			t.Errorf("comm %q, comm_b64 %q", s.Comm, s.CommB64)
		}
		if string(s.CwdB64) != cwd {
			t.Errorf("cwd_b64 %q, want %q", s.CwdB64, cwd)
		}
		if len(s.ArgvB64) != len(argv) {
			t.Fatalf("argv_b64 %q, want %q", s.ArgvB64, argv)
		}
		for i, a := range argv {
			if string(s.ArgvB64[i]) != a {
				t.Errorf("argv_b64[%d] = %q, want %q", i, s.ArgvB64[i], a)
			}
		}
		if want := []string{"snapshot-helper", `arg\xffbyte`, "two\nlines", "", "last"}; !reflect.DeepEqual(s.Argv, want) {
			t.Errorf("argv %q, want %q", s.Argv, want)
		}
		if len(s.Sockets) != len(p.Sockets) {
			t.Fatalf("%d sockets in JSON, %d taken", len(s.Sockets), len(p.Sockets))
		}
		for i, js := range s.Sockets {
			want := p.Sockets[i]
			if js["fd"] != float64(want.Fd) || js["inode"] != float64(want.Inode) {
				t.Errorf("socket %d: %v, want fd %d inode %d", i, js, want.Fd, want.Inode)
			}
			if len(want.Path) > 0 && want.Path[0] == 0 {
				exact, _ := base64.StdEncoding.DecodeString(js["unix_abstract_b64"].(string))
				if string(exact) != abstractName(h.pid()) || js["unix_path"] != nil {
					t.Errorf("socket %d: abstract name %q, want %q", i, exact, abstractName(h.pid()))
				}
			}
		}
	})
}

// encode writes a whole snapshot record as the daemon does.
func encode(p *Process) []byte {
	enc := record.NewEncoder("vm", "b78835f2-8fc3-4e6c-826a-884af615cd65", 1_735_787_045_000_000_000-1_000_000_000_000, nil)
	return enc.Append(nil, 2, &[32]byte{}, 1_000_000_000_001, p.Record())
}

// goneProcess returns the pid of a process that has exited and been reaped.
func goneProcess(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestTakeGone(t *testing.T) {
	requireRoot(t)
	for _, pid := range []int{goneProcess(t), 0, -1} {
		if p, err := Take(pid); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Take(%d) = %+v, %v; want os.ErrNotExist", pid, p, err)
		}
	}
}

// TestTakeZombie: an exited process not yet reaped is still a process; what
// it no longer has is named in Errors.
func TestTakeZombie(t *testing.T) {
	requireRoot(t)
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	var info unix.Siginfo
	// WNOWAIT: wait for the exit but leave the zombie.
	if err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	p, err := Take(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if p.Comm != "true" || p.Ppid != os.Getpid() || p.Exe != nil || p.Cwd != nil || p.Argv != nil || p.Sockets != nil {
		t.Errorf("zombie: %+v", p)
	}
	if want := []string{"exe: no such file or directory", "cwd: no such file or directory"}; !reflect.DeepEqual(p.Errors, want) {
		t.Errorf("zombie: Errors = %q, want %q", p.Errors, want)
	}
	if err := schema.Validate(encode(p)); err != nil {
		t.Errorf("zombie: %v\n%s", err, encode(p))
	}
}

func TestParseStat(t *testing.T) {
	// Fields 3 to 52 of a real line, after comm.
	const rest = " S 1 1 1 0 -1 4194560 5437 1134829 99 1378 38 167 6431 3035 20 0 1 0 4242 23588864 2894 18446744073709551615 1 1 0 0 0 0 671173123 4096 1260 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	for _, tc := range []struct {
		name  string
		line  string
		comm  string
		ppid  int
		ticks uint64
		err   bool
	}{
		{"plain", "1 (systemd)" + rest, "systemd", 1, 4242, false},
		{"spaces and parentheses in comm", "77 (a) b (c) )" + rest, "a) b (c) ", 1, 4242, false},
		{"empty comm", "77 ()" + rest, "", 1, 4242, false},
		{"not UTF-8, newline", "77 (x\xff\ny)" + rest, "x\xff\ny", 1, 4242, false},
		{"no parentheses", "77 systemd" + rest, "", 0, 0, true},
		{"too short", "77 (x) S 1 1", "", 0, 0, true},
		{"ppid not a number", "77 (x) S x" + rest[4:], "", 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			comm, ppid, ticks, err := parseStat([]byte(tc.line))
			if string(comm) != tc.comm || ppid != tc.ppid || ticks != tc.ticks || (err != nil) != tc.err {
				t.Errorf("parseStat = %q, %d, %d, %v; want %q, %d, %d, error %v", comm, ppid, ticks, err, tc.comm, tc.ppid, tc.ticks, tc.err)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	var p Process
	status := "Name:\tx\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nFDSize:\t64\n"
	if err := p.parseStatus([]byte(status)); err != nil || p.Uid != 1 || p.Euid != 2 || p.Gid != 5 || p.Egid != 6 {
		t.Errorf("parseStatus = %v: uid %d euid %d gid %d egid %d", err, p.Uid, p.Euid, p.Gid, p.Egid)
	}
	for _, bad := range []string{"Name:\tx\n", "Uid:\t1\t2\t3\t4\n", "Uid:\t1\nGid:\t5\t6\n", "Uid:\t1\t-2\nGid:\t5\t6\n"} {
		if err := new(Process).parseStatus([]byte(bad)); err == nil {
			t.Errorf("parseStatus(%q) succeeded", bad)
		}
	}
}

func TestSplitArgv(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		want    []string
	}{
		{"", nil},
		{"a\x00", []string{"a"}},
		{"a\x00\x00b\x00", []string{"a", "", "b"}},
		{"a\x00\x00", []string{"a", ""}},
		{"\x00", []string{""}},
		{"title without NUL", []string{"title without NUL"}},
		{"x\xff\ny\x00z\x00", []string{"x\xff\ny", "z"}},
	} {
		var got []string
		for _, a := range splitArgv([]byte(tc.cmdline)) {
			got = append(got, string(a))
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitArgv(%q) = %q, want %q", tc.cmdline, got, tc.want)
		}
	}
}

func TestUnifiedCgroup(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"0::/agenttrace/run-1\n", "/agenttrace/run-1", true},
		{"9:name=systemd:/\n4:memory:/x\n0::/a b\n", "/a b", true},
		{"0::/with\nnewline\n", "/with\nnewline", true},
		{"0::/\n", "/", true},
		{"4:memory:/x\n", "", false},
		{"10::/not-v2\n", "", false},
	} {
		got, ok := cgroup.ParseProcCgroup([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseProcCgroup(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSocketInode(t *testing.T) {
	for _, tc := range []struct {
		link  string
		inode uint64
		ok    bool
	}{
		{"socket:[12345]", 12345, true},
		{"socket:[4294967296]", 4294967296, true},
		{"pipe:[12345]", 0, false},
		{"anon_inode:[eventpoll]", 0, false},
		{"/tmp/socket:[1]", 0, false},
		{"socket:[]", 0, false},
		{"socket:[12", 0, false},
	} {
		if inode, ok := socketInode([]byte(tc.link)); inode != tc.inode || ok != tc.ok {
			t.Errorf("socketInode(%q) = %d, %v; want %d, %v", tc.link, inode, ok, tc.inode, tc.ok)
		}
	}
}

func TestUnixName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/run/x.sock\x00", "/run/x.sock"},
		{"/run/x.sock", "/run/x.sock"},
		{"\x00abstract\x00with NULs\x00", "\x00abstract\x00with NULs\x00"},
		{"\x00", "\x00"},
		{"", ""},
	} {
		if got := unixName([]byte(tc.in)); string(got) != tc.want {
			t.Errorf("unixName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStateName(t *testing.T) {
	for state, want := range map[uint8]string{1: "ESTABLISHED", 7: "CLOSE", 10: "LISTEN", 13: "BOUND_INACTIVE", 0: "STATE_0", 14: "STATE_14", 255: "STATE_255"} {
		if got := stateName(state); got != want {
			t.Errorf("stateName(%d) = %q, want %q", state, got, want)
		}
	}
}

// goldenProcesses are snapshots as Take makes them: an agent with sockets
// of every kind and inexact bytes, and a zombie.
var goldenProcesses = []*Process{
	{
		Pid: 4242, Ppid: 4200, Uid: 1000, Gid: 1000, Euid: 1000, Egid: 1000, Auid: 1000,
		Comm:                "python3",
		Exe:                 []byte("/usr/bin/python3.12"),
		Argv:                [][]byte{[]byte("python3"), []byte("agent.py"), []byte("--task=caf\xe9\n\u202e")},
		Cwd:                 []byte("/home/dev/proj\xff"),
		StartTime:           1059710000000,
		StartTimeResolution: 10_000_000,
		CgroupPath:          "/agents/claude",
		Sockets: []Socket{
			{Fd: 3, Inode: 81234, Family: "AF_INET", Proto: "tcp", State: "ESTABLISHED",
				Src: netip.MustParseAddrPort("10.0.2.15:53012"), Dst: netip.MustParseAddrPort("160.79.104.10:443")},
			{Fd: 4, Inode: 81240, Family: "AF_INET6", Proto: "tcp", State: "LISTEN",
				Src: netip.MustParseAddrPort("[::]:8080"), Dst: netip.MustParseAddrPort("[::]:0")},
			{Fd: 5, Inode: 81241, Family: "AF_INET6", Proto: "udp", State: "ESTABLISHED",
				Src: netip.MustParseAddrPort("[::ffff:127.0.0.1]:40000"), Dst: netip.MustParseAddrPort("[::ffff:127.0.0.53]:53")},
			{Fd: 6, Inode: 81250, Family: "AF_UNIX", Proto: "unix_stream", State: "ESTABLISHED", Path: []byte("/run/dbus/system_bus_socket"), Peer: 81251},
			{Fd: 7, Inode: 81260, Family: "AF_UNIX", Proto: "unix_dgram", State: "CLOSE", Path: []byte("\x00agent\x00\xff")},
			{Fd: 8, Inode: 81270, Family: "AF_UNIX", Proto: "unix_seqpacket", State: "ESTABLISHED", Peer: 81271},
			{Fd: 9, Inode: 81280, Proto: "unknown"},
		},
	},
	{
		Pid: 4243, Ppid: 4242, Auid: AuidUnset,
		Comm:                "sh",
		StartTime:           1059720000000,
		StartTimeResolution: 10_000_000,
		CgroupPath:          "/agents/claude",
		Errors:              []string{"exe: no such file or directory", "cwd: no such file or directory"},
	},
}

func TestRecordGolden(t *testing.T) {
	var got []byte
	for _, p := range goldenProcesses {
		line := encode(p)
		if err := schema.Validate(line); err != nil {
			t.Errorf("does not validate: %v\n%s", err, line)
		}
		got = append(append(got, line...), '\n')
	}
	golden := filepath.Join("testdata", "snapshot.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n got %s\nwant %s", golden, got, want)
	}
}

// TestRecordAppends: the record follows what the buffer holds.
func TestRecordAppends(t *testing.T) {
	enc := record.NewEncoder("vm", "b78835f2-8fc3-4e6c-826a-884af615cd65", 0, nil)
	got := string(enc.Append([]byte("{}\n"), 2, &[32]byte{}, 1, goldenProcesses[1].Record()))
	if !strings.HasPrefix(got, "{}\n{\"v\":1,\"seq\":2,") || !strings.Contains(got, `"type":"snapshot","snapshot":{"pid":4243,"ppid":4242,`) || !strings.HasSuffix(got, `]}}`) {
		t.Errorf("Append = %s", got)
	}
}

// TestRecordDecodes: a snapshot record decodes to the value it was written
// from, exact bytes included (argv, cwd, abstract socket names).
func TestRecordDecodes(t *testing.T) {
	for _, p := range goldenProcesses {
		want := p.Record()
		r, err := record.Decode(encode(p))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := r.Body.(*record.Snapshot)
		if !ok {
			t.Fatalf("Decode: a %T", r.Body)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Decode(encode(p)).Body =\n%+v\nwant\n%+v", got, want)
		}
	}
	rec := goldenProcesses[0].Record()
	if rec.Cwd != "/home/dev/proj\xff" || rec.Argv[2] != "--task=caf\xe9\n\u202e" {
		t.Errorf("Record: cwd %q, argv %q", rec.Cwd, rec.Argv)
	}
	if s := rec.Sockets[4]; s.Unix != record.UnixAbstract || s.UnixName != "agent\x00\xff" {
		t.Errorf("Record: abstract socket %+v", s)
	}
	if s := rec.Sockets[3]; s.Unix != record.UnixPath || s.UnixName != "/run/dbus/system_bus_socket" || s.Peer != 81251 {
		t.Errorf("Record: unix socket %+v", s)
	}
	if s := rec.Sockets[5]; s.Unix != record.UnixNone || s.UnixName != "" {
		t.Errorf("Record: unnamed socket %+v", s)
	}
}

// TestSchemaRejects checks that the schema of the snapshot record is
// closed and strict: each change of a valid line makes it invalid.
func TestSchemaRejects(t *testing.T) {
	agent, zombie := string(encode(goldenProcesses[0])), string(encode(goldenProcesses[1]))
	for _, tc := range []struct {
		name     string
		line     string
		old, new string
	}{
		{"unknown member", agent, `"pid":4242,`, `"pid":4242,"tokens":12,`},
		{"argv missing", zombie, `"argv":[],`, ``},
		{"empty sockets", zombie, `"argv":[],`, `"argv":[],"sockets":[],`},
		{"empty errors", agent, `"cgroup":"/agents/claude",`, `"cgroup":"/agents/claude","errors":[],`},
		{"cwd_b64 of an exact cwd", zombie, `"argv":[],`, `"argv":[],"cwd":"/","cwd_b64":"Lw==",`},
		{"socket: unknown member", agent, `{"fd":9,"inode":81280,`, `{"fd":9,"inode":81280,"pid":1,`},
		{"socket: no inode", agent, `{"fd":9,"inode":81280,`, `{"fd":9,`},
		{"socket: unknown proto", agent, `"proto":"unknown"`, `"proto":"sctp"`},
		{"socket: unknown with a family", agent, `"inode":81280,"proto":"unknown"`, `"inode":81280,"family":"AF_INET","proto":"unknown"`},
		{"socket: state not a kernel name", agent, `"state":"LISTEN"`, `"state":"listening"`},
		{"tcp: no dst_addr", agent, `"dst_addr":"160.79.104.10",`, ``},
		{"tcp: unix_path", agent, `"dst_port":443}`, `"dst_port":443,"unix_path":"/x"}`},
		{"tcp: family AF_UNIX", agent, `"family":"AF_INET","proto":"tcp","state":"ESTABLISHED"`, `"family":"AF_UNIX","proto":"tcp","state":"ESTABLISHED"`},
		{"unix: src_addr", agent, `"unix_path":"/run/dbus/system_bus_socket"`, `"src_addr":"::","src_port":1,"unix_path":"/run/dbus/system_bus_socket"`},
		{"unix: path and abstract", agent, `"unix_path":"/run/dbus/system_bus_socket"`, `"unix_path":"/run/dbus/system_bus_socket","unix_abstract":"x"`},
		{"unix: no state", agent, `"proto":"unix_seqpacket","state":"ESTABLISHED"`, `"proto":"unix_seqpacket"`},
		{"unix: peer_inode 0", agent, `"peer_inode":81271`, `"peer_inode":0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(tc.line, tc.old) {
				t.Fatalf("the line has no %s", tc.old)
			}
			line := strings.Replace(tc.line, tc.old, tc.new, 1)
			if err := schema.Validate([]byte(line)); err == nil {
				t.Errorf("validates:\n%s", line)
			}
		})
	}
}
