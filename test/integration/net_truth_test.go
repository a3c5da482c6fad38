package integration

// Kernel truth for the network (issue 13): every way a traced process
// reaches or is reached by the network is a record whose addresses are the
// kernel's own copy, with the socket as the kernel holds it and the final
// outcome of every connect. Each test compares whole records with what the
// helper saw the kernel answer (its results, SO_COOKIE, getsockname,
// getpeername).

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/tools"

	"golang.org/x/sys/unix"
)

var (
	// uringNetBin is the io_uring helper built from testdata/uring_net.c.
	uringNetBin string
	uringNetErr error
)

// buildNetHelpers compiles testdata/uring_net.c.
func buildNetHelpers(dir string) (string, error) {
	bin := filepath.Join(dir, "uring_net")
	out, err := exec.Command("gcc", "-O2", "-Wall", "-Werror", "-o", bin, filepath.Join("testdata", "uring_net.c")).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("gcc testdata/uring_net.c: %w\n%s", err, out)
	}
	return bin, nil
}

// Typed views of the network records, for finding them; the whole object
// is compared with wantBody.
type socketObj struct {
	Cookie uint64 `json:"cookie"`
	State  string `json:"state"`
}

type netObj struct {
	Syscall  string     `json:"syscall"`
	Fd       int        `json:"fd"`
	MsgIndex *int       `json:"msg_index"`
	Ret      int        `json:"ret"`
	Socket   *socketObj `json:"socket"`
}

type sockStateObj struct {
	Cookie uint64 `json:"cookie"`
	From   string `json:"from"`
	To     string `json:"to"`
}

type dnsObj struct {
	Direction string `json:"direction"`
	Cookie    uint64 `json:"cookie"`
	ID        int    `json:"id"`
}

// netOps returns a network helper's operations, in order and by name.
func netOps(t *testing.T, r map[string]any) ([]netOp, map[string]netOp) {
	t.Helper()
	b, err := json.Marshal(r["net"])
	if err != nil {
		t.Fatal(err)
	}
	var list []netOp
	if err := json.Unmarshal(b, &list); err != nil || len(list) == 0 {
		t.Fatalf("helper result has no net operations (%v): %v", err, r)
	}
	byName := map[string]netOp{}
	for _, op := range list {
		byName[op.Op] = op
	}
	return list, byName
}

func netOpOf(t *testing.T, all map[string]netOp, name string, wantRet int) netOp {
	t.Helper()
	op, ok := all[name]
	if !ok {
		t.Fatalf("helper did not report %q: %v", name, all)
	}
	if op.Ret != wantRet {
		t.Fatalf("%s returned %d, the test needs %d: %+v", name, op.Ret, wantRet, op)
	}
	return op
}

// addrObj is an address as records write it (ADDR in docs/schema.md), from
// the helpers' "127.0.0.1:80", "[::1]:80", "unix:/path", "unix:@name" form;
// nil for "" and for an unnamed unix socket.
func addrObj(t *testing.T, s string) obj {
	t.Helper()
	switch {
	case s == "" || s == "unix:":
		return nil
	case strings.HasPrefix(s, "unix:@"):
		return obj{"unix_abstract": s[len("unix:@"):]}
	case strings.HasPrefix(s, "unix:"):
		return obj{"unix_path": s[len("unix:"):]}
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatalf("address %q: %v", s, err)
	}
	return obj{"addr": ap.Addr().String(), "port": int(ap.Port())}
}

// sockObj is the socket object of a record.
func sockObj(t *testing.T, family, typ, protocol, state string, cookie uint64, local, remote string) obj {
	t.Helper()
	o := obj{"family": family, "type": typ, "state": state}
	if protocol != "" {
		o["protocol"] = protocol
	}
	if cookie != 0 {
		o["cookie"] = cookie
	}
	if a := addrObj(t, local); a != nil {
		o["local"] = a
	}
	if a := addrObj(t, remote); a != nil {
		o["remote"] = a
	}
	return o
}

// dest is a destination as send records write it: family and address.
func dest(t *testing.T, family string, familyNum int, addr string) obj {
	t.Helper()
	o := addrObj(t, addr)
	o["family"], o["family_num"] = family, familyNum
	return o
}

func withResult(o obj, r int) obj {
	o["ret"] = r
	if r < 0 {
		o["errno"] = unix.ErrnoName(unix.Errno(-r))
	}
	return o
}

// listenUDP opens a UDP socket of the test (outside any session) that
// drains what it receives.
func listenUDP(t *testing.T, network, addr string) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1<<16)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return c
}

// acceptAll accepts and closes every connection to l until the test ends.
func acceptAll(l net.Listener) {
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// closedPort returns a loopback TCP port that refuses connections: bound
// by the test, never listening.
func closedPort(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*unix.SockaddrInet4).Port
}

// TestNetSends: UDP sendto and sendmsg over IPv4 and IPv6, sendmmsg (one
// record per message), unix datagram sendto to a path and an abstract
// name, each a send record with the kernel's copy of the destination and
// the socket; a send on a connected UDP socket is no send record (its
// destination is the connect record); a datagram too large for UDP fails
// before the kernel's hook and names the destination as passed.
func TestNetSends(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	udp4 := listenUDP(t, "udp4", "127.0.0.1:0").LocalAddr().(*net.UDPAddr).Port
	udp4b := listenUDP(t, "udp4", "127.0.0.1:0").LocalAddr().(*net.UDPAddr).Port
	udp6 := listenUDP(t, "udp6", "[::1]:0").LocalAddr().(*net.UDPAddr).Port
	unixPath := filepath.Join(dir, "dgram.sock")
	listenUDP(t, "unixgram", unixPath)
	abstract := fmt.Sprintf("agenttrace-test-dgram-%d-%s", udp4, filepath.Base(dir))
	listenUDP(t, "unixgram", "@"+abstract)

	s := agent(t, dir, runOpts{helper: "net-sends"}, helperBin, fmt.Sprint(udp4), fmt.Sprint(udp4b), fmt.Sprint(udp6), unixPath, abstract)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid := num(t, res, "pid")
	_, all := netOps(t, res)

	to4 := fmt.Sprintf("127.0.0.1:%d", udp4)
	to6 := fmt.Sprintf("[::1]:%d", udp6)
	sendOf := func(fd int, index int) func(*rec) bool {
		return func(r *rec) bool {
			return r.Proc.Pid == pid && r.Send.Fd == fd && (r.Send.MsgIndex == nil && index < 0 || r.Send.MsgIndex != nil && *r.Send.MsgIndex == index)
		}
	}
	udpSock := func(family string, op netOp) obj {
		return sockObj(t, family, "SOCK_DGRAM", "udp", "CLOSE", op.Cookie, op.Local, "")
	}
	cases := []struct {
		op   string
		want obj
	}{
		{"sendto4", obj{"syscall": "sendto", "size": 5, "flags": []string{}, "dest": dest(t, "AF_INET", unix.AF_INET, to4), "addr_source": "kernel"}},
		{"sendmsg4", obj{"syscall": "sendmsg", "flags": []string{}, "dest": dest(t, "AF_INET", unix.AF_INET, to4), "addr_source": "kernel"}},
		{"sendto6", obj{"syscall": "sendto", "size": 6, "flags": []string{}, "dest": dest(t, "AF_INET6", unix.AF_INET6, to6), "addr_source": "kernel"}},
		{"sendmsg6", obj{"syscall": "sendmsg", "flags": []string{}, "dest": dest(t, "AF_INET6", unix.AF_INET6, to6), "addr_source": "kernel"}},
		{"sendto-unix", obj{"syscall": "sendto", "size": 4, "flags": []string{}, "dest": dest(t, "AF_UNIX", unix.AF_UNIX, "unix:"+unixPath), "addr_source": "kernel"}},
		{"sendto-abstract", obj{"syscall": "sendto", "size": 8, "flags": []string{}, "dest": dest(t, "AF_UNIX", unix.AF_UNIX, "unix:@"+abstract), "addr_source": "kernel"}},
		{"sendto-emsgsize", obj{"syscall": "sendto", "size": 70000, "flags": []string{}, "dest": dest(t, "AF_INET", unix.AF_INET, to4), "addr_source": "user"}},
	}
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			wantRet := map[string]int{"sendto4": 5, "sendmsg4": 7, "sendto6": 6, "sendmsg6": 5, "sendto-unix": 4, "sendto-abstract": 8, "sendto-emsgsize": -int(unix.EMSGSIZE)}[c.op]
			op := netOpOf(t, all, c.op, wantRet)
			want := c.want
			want["fd"] = op.Fd
			switch {
			case strings.HasPrefix(c.op, "sendto-unix"), strings.HasPrefix(c.op, "sendto-abstract"):
				want["socket"] = sockObj(t, "AF_UNIX", "SOCK_DGRAM", "", "CLOSE", op.Cookie, "", "")
			case strings.HasSuffix(c.op, "6"):
				want["socket"] = udpSock("AF_INET6", op)
			default:
				want["socket"] = udpSock("AF_INET", op)
			}
			wantBody(t, s.one(t, "send", sendOf(op.Fd, -1)), withResult(want, op.Ret))
		})
	}

	// sendmmsg: a record per message, with its index, destination and result.
	op := netOpOf(t, all, "sendmmsg", 3)
	for i, m := range []struct {
		to   string
		size int
	}{{to4, 3}, {fmt.Sprintf("127.0.0.1:%d", udp4b), 6}, {to4, 1}} {
		wantBody(t, s.one(t, "send", sendOf(op.Fd, i)), obj{"syscall": "sendmmsg", "fd": op.Fd, "msg_index": i, "flags": []string{},
			"dest": dest(t, "AF_INET", unix.AF_INET, m.to), "addr_source": "kernel", "socket": udpSock("AF_INET", op), "ret": m.size})
	}

	// A connected UDP socket: the connect record names the destination.
	op = netOpOf(t, all, "connect-udp", 0)
	wantBody(t, s.one(t, "connect", func(r *rec) bool { return r.Proc.Pid == pid && r.Connect.Fd == op.Fd }),
		obj{"syscall": "connect", "fd": op.Fd, "addrlen": 16, "family": "AF_INET", "family_num": unix.AF_INET, "addr": "127.0.0.1", "port": udp4,
			"addr_source": "kernel", "socket": sockObj(t, "AF_INET", "SOCK_DGRAM", "udp", "ESTABLISHED", op.Cookie, op.Local, op.Remote), "ret": 0})
	netOpOf(t, all, "send-connected", 4)
	if n := len(s.find("send", sendOf(op.Fd, -1))); n != 0 {
		t.Errorf("a send without a destination on a connected UDP socket was recorded %d times", n)
	}
	if n := len(s.find("send", byPid(pid))); n != len(cases)+3 {
		t.Errorf("want %d send records, got %d:\n%s", len(cases)+3, n, s.dump(s.find("send", byPid(pid))))
	}
	// No TCP socket, no state change.
	if n := len(s.find("sock_state", byPid(pid))); n != 0 {
		t.Errorf("want no sock_state records, got %d:\n%s", n, s.dump(s.find("sock_state", byPid(pid))))
	}
}

// TestNetFastOpen: sendto(MSG_FASTOPEN) connects a TCP socket without
// connect(2): a send record with fastopen, the kernel's destination and
// the data's size, and the connection's outcome as a sock_state record.
func TestNetFastOpen(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	if data, err := os.ReadFile("/proc/sys/net/ipv4/tcp_fastopen"); err != nil || !strings.HasPrefix(string(data), "1") && !strings.HasPrefix(string(data), "3") {
		t.Fatalf("net.ipv4.tcp_fastopen is %q (%v): the client bit (1) is needed", data, err)
	}
	dir := testDir(t)
	l := listen(t, "tcp4", "127.0.0.1:0")
	acceptAll(l)
	port := l.Addr().(*net.TCPAddr).Port
	s := agent(t, dir, runOpts{helper: "net-fastopen"}, helperBin, fmt.Sprint(port))
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid := num(t, res, "pid")
	_, all := netOps(t, res)
	op := netOpOf(t, all, "fastopen", 4)
	to := fmt.Sprintf("127.0.0.1:%d", port)
	wantBody(t, s.one(t, "send", byPid(pid)), obj{"syscall": "sendto", "fd": op.Fd, "size": 4, "flags": []string{"MSG_FASTOPEN"},
		"dest": dest(t, "AF_INET", unix.AF_INET, to), "addr_source": "kernel", "fastopen": true,
		"socket": sockObj(t, "AF_INET", "SOCK_STREAM", "tcp", "ESTABLISHED", op.Cookie, op.Local, to), "ret": 4})
	wantBody(t, s.one(t, "sock_state", byPid(pid)), obj{"cookie": op.Cookie, "from": "SYN_SENT", "to": "ESTABLISHED",
		"local": addrObj(t, op.Local), "remote": addrObj(t, to)})
	if n := len(s.find("connect", byPid(pid))); n != 0 {
		t.Errorf("want no connect record for a fast open, got %d", n)
	}
}

// TestNetNonblockOutcome: a non-blocking connect returns EINPROGRESS; its
// outcome (established, or refused) is a sock_state record with the same
// cookie, made by the same process.
func TestNetNonblockOutcome(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	l := listen(t, "tcp4", "127.0.0.1:0")
	acceptAll(l)
	port, closed := l.Addr().(*net.TCPAddr).Port, closedPort(t)
	s := agent(t, dir, runOpts{helper: "net-nonblock"}, helperBin, fmt.Sprint(port), fmt.Sprint(closed))
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid := num(t, res, "pid")
	_, all := netOps(t, res)
	for _, c := range []struct {
		op, to, state, errno string
		port                 int
		outcome              unix.Errno
	}{
		{"nonblock-ok", "ESTABLISHED", "", "", port, 0},
		{"nonblock-refused", "CLOSE", "", "ECONNREFUSED", closed, unix.ECONNREFUSED},
	} {
		t.Run(c.op, func(t *testing.T) {
			op := netOpOf(t, all, c.op, -int(unix.EINPROGRESS))
			if op.Error != int(c.outcome) {
				t.Fatalf("SO_ERROR after the outcome is %d, want %d", op.Error, c.outcome)
			}
			to := fmt.Sprintf("127.0.0.1:%d", c.port)
			conn := s.one(t, "connect", func(r *rec) bool { return r.Proc.Pid == pid && r.Connect.Fd == op.Fd })
			st := s.one(t, "sock_state", func(r *rec) bool { return r.SockState.Cookie == op.Cookie })
			if st.Proc.Pid != pid || st.Proc.ExecID != conn.Proc.ExecID {
				t.Errorf("sock_state of pid %d (%s), want the connecting process %d (%s)", st.Proc.Pid, st.Proc.ExecID, pid, conn.Proc.ExecID)
			}
			want := obj{"cookie": op.Cookie, "from": "SYN_SENT", "to": c.to, "local": addrObj(t, op.Local), "remote": addrObj(t, to)}
			if c.errno != "" {
				want["error"] = c.errno
			}
			wantBody(t, st, want)
			// At the syscall's exit the handshake may or may not be over
			// (loopback runs it in the softirq of the connect itself):
			// the state the record names says which, and agrees with the
			// log's order.
			state := conn.Connect.Socket.State
			if st.Seq < conn.Seq {
				if state != c.to {
					t.Errorf("the outcome precedes the connect record, whose socket state is %s, want %s", state, c.to)
				}
			} else if state != "SYN_SENT" {
				t.Errorf("the outcome follows the connect record, whose socket state is %s, want SYN_SENT", state)
			}
			remote := to
			wantBody(t, conn, obj{"syscall": "connect", "fd": op.Fd, "addrlen": 16, "family": "AF_INET", "family_num": unix.AF_INET,
				"addr": "127.0.0.1", "port": c.port, "addr_source": "kernel",
				"socket": sockObj(t, "AF_INET", "SOCK_STREAM", "tcp", state, op.Cookie, op.Local, remote), "ret": -int(unix.EINPROGRESS), "errno": "EINPROGRESS"})
		})
	}
}

// TestNetConnectRace: another thread rewrites the port in the address
// buffer while connect runs. The record names the port the kernel used
// (the one getpeername reports), every time.
func TestNetConnectRace(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	la, lb := listen(t, "tcp4", "127.0.0.1:0"), listen(t, "tcp4", "127.0.0.1:0")
	acceptAll(la)
	acceptAll(lb)
	pa, pb := la.Addr().(*net.TCPAddr).Port, lb.Addr().(*net.TCPAddr).Port
	const n = 400
	s := agent(t, dir, runOpts{helper: "net-race"}, helperBin, fmt.Sprint(pa), fmt.Sprint(pb), fmt.Sprint(n))
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid := num(t, res, "pid")
	list, _ := netOps(t, res)
	// A connect a signal interrupted (the Go runtime preempts with SIGURG)
	// is recorded with the kernel's restart errno, then again when the
	// kernel redoes it: the socket is already connecting then, so no hook
	// sees an address and the redo names the address as passed; its socket
	// names where it connects.
	var recs []*rec
	restarts := 0
	redo := map[int]bool{} // index in recs of a redone connect
	for _, r := range s.find("connect", byPid(pid)) {
		if restarted(r.line) {
			restarts++
			redo[len(recs)] = true
			continue
		}
		recs = append(recs, r)
	}
	if len(recs) != n || len(list) != n {
		t.Fatalf("want %d connects and records, got %d and %d", n, len(list), len(recs))
	}
	seen := map[int]int{}
	for i, op := range list {
		r := recs[i]
		var body struct {
			Port       int    `json:"port"`
			AddrSource string `json:"addr_source"`
			Socket     struct {
				Remote struct {
					Port int `json:"port"`
				} `json:"remote"`
			} `json:"socket"`
		}
		json.Unmarshal(mustJSON(t, r.body), &body)
		kernelOK := body.AddrSource == "kernel" && body.Port == op.Port
		redone := body.AddrSource == "user" && redo[i]
		if op.Ret != 0 || r.Connect.Fd != op.Fd || body.Socket.Remote.Port != op.Port || !kernelOK && !redone {
			t.Errorf("connect %d reached port %d (ret %d, fd %d); its record says:\n%s", i, op.Port, op.Ret, op.Fd, r.line)
		}
		seen[op.Port]++
	}
	t.Logf("ports reached %v; %d connects interrupted and redone", seen, restarts)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dialLoop connects to addr from the test process (outside the trace)
// until it succeeds or the test ends, and returns the connection's local
// address as the records write it.
func dialLoop(t *testing.T, network, addr string) <-chan string {
	t.Helper()
	out := make(chan string, 1)
	go func() {
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			c, err := net.Dial(network, addr)
			if err == nil {
				local := c.LocalAddr().String()
				if network == "unix" {
					local = "unix:"
				}
				out <- local
				time.Sleep(200 * time.Millisecond)
				c.Close()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		out <- ""
	}()
	return out
}

func freeTCPPort(t *testing.T, network, addr string) int {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestNetInbound: bind, listen and accept4 over IPv4, IPv6, a unix path and
// an abstract name, with the client outside the trace: the bind record
// has the kernel's address, listen its backlog, accept the new fd and the
// peer, each with the socket as the kernel holds it.
func TestNetInbound(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	port4, port6 := freeTCPPort(t, "tcp4", "127.0.0.1:0"), freeTCPPort(t, "tcp6", "[::1]:0")
	unixPath := filepath.Join(dir, "listener.sock")
	abstract := fmt.Sprintf("agenttrace-test-listen-%d-%s", port4, filepath.Base(dir))
	clients := map[string]<-chan string{
		"inet":     dialLoop(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", port4)),
		"inet6":    dialLoop(t, "tcp6", fmt.Sprintf("[::1]:%d", port6)),
		"unix":     dialLoop(t, "unix", unixPath),
		"abstract": dialLoop(t, "unix", "@"+abstract),
	}
	s := agent(t, dir, runOpts{helper: "net-inbound"}, helperBin, fmt.Sprint(port4), fmt.Sprint(port6), unixPath, abstract)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid := num(t, res, "pid")
	_, all := netOps(t, res)
	for _, c := range []struct {
		name, family, proto string
		familyNum           int
		at                  string
		addrlen             int
	}{
		{"inet", "AF_INET", "tcp", unix.AF_INET, fmt.Sprintf("127.0.0.1:%d", port4), unix.SizeofSockaddrInet4},
		{"inet6", "AF_INET6", "tcp", unix.AF_INET6, fmt.Sprintf("[::1]:%d", port6), unix.SizeofSockaddrInet6},
		{"unix", "AF_UNIX", "", unix.AF_UNIX, "unix:" + unixPath, 2 + len(unixPath) + 1},
		{"abstract", "AF_UNIX", "", unix.AF_UNIX, "unix:@" + abstract, 2 + 1 + len(abstract)},
	} {
		t.Run(c.name, func(t *testing.T) {
			client := <-clients[c.name]
			bind := netOpOf(t, all, "bind-"+c.name, 0)
			fd := bind.Fd
			byFd := func(r *rec) bool {
				return r.Proc.Pid == pid && (r.Bind != nil && r.Bind.Fd == fd || r.Listen != nil && r.Listen.Fd == fd || r.Accept != nil && r.Accept.Fd == fd)
			}
			source, cookie := "kernel", bind.Cookie
			if c.family == "AF_UNIX" {
				// No cgroup hook sees a unix bind: the address as passed,
				// and no cookie until something asks for one.
				source, cookie = "user", 0
			}
			want := obj{"syscall": "bind", "fd": fd, "addrlen": c.addrlen, "family": c.family, "family_num": c.familyNum, "addr_source": source,
				"socket": sockObj(t, c.family, "SOCK_STREAM", c.proto, "CLOSE", cookie, c.at, ""), "ret": 0}
			for k, v := range addrObj(t, c.at) {
				want[k] = v
			}
			wantBody(t, s.one(t, "bind", byFd), want)
			// The helper's SO_COOKIE after the bind assigned one: the listen has it.
			listen := netOpOf(t, all, "listen-"+c.name, 0)
			wantBody(t, s.one(t, "listen", byFd), obj{"syscall": "listen", "fd": fd, "backlog": 7,
				"socket": sockObj(t, c.family, "SOCK_STREAM", c.proto, "LISTEN", listen.Cookie, c.at, ""), "ret": 0})
			acc := all["accept-"+c.name]
			if acc.Ret < 0 {
				t.Fatalf("accept4 failed: %+v", acc)
			}
			cookie = acc.Cookie
			if c.family == "AF_UNIX" {
				cookie = 0 // nothing asked the kernel for one before the syscall's exit
			}
			wantBody(t, s.one(t, "accept", byFd), obj{"syscall": "accept4", "fd": fd, "flags": []string{"SOCK_CLOEXEC"}, "new_fd": acc.NewFd,
				"socket": sockObj(t, c.family, "SOCK_STREAM", c.proto, "ESTABLISHED", cookie, c.at, client), "ret": acc.NewFd})
			if c.family != "AF_UNIX" && acc.Remote != client {
				t.Errorf("the helper's peer is %s, the client's address %s", acc.Remote, client)
			}
		})
	}
}

// TestNetIOUring: IORING_OP_CONNECT (established and refused), SEND with a
// destination, SENDMSG with msg_name, a socket made by IORING_OP_SOCKET
// that connects, and IORING_OP_ACCEPT of a client outside the trace: each
// a record like its syscall's, at completion, with the kernel's copy of
// the address, the request's user_data and the result; the connects'
// outcomes are sock_state records.
func TestNetIOUring(t *testing.T) {
	requireRoot(t)
	if uringNetBin == "" {
		t.Fatalf("the io_uring helper was not built: %v", uringNetErr)
	}
	t.Parallel()
	dir := testDir(t)
	l := listen(t, "tcp4", "127.0.0.1:0")
	acceptAll(l)
	port, closed := l.Addr().(*net.TCPAddr).Port, closedPort(t)
	udp := listenUDP(t, "udp4", "127.0.0.1:0").LocalAddr().(*net.UDPAddr).Port
	acceptPort := freeTCPPort(t, "tcp4", "127.0.0.1:0")
	client := dialLoop(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", acceptPort))
	s := agent(t, dir, runOpts{}, uringNetBin, fmt.Sprint(port), fmt.Sprint(closed), fmt.Sprint(udp), fmt.Sprint(acceptPort))
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s\n%s", s.exit, s.stdout, s.stderr)
	}
	res := s.result(t)
	pid := num(t, res, "pid")
	op := func(name string) netOp {
		t.Helper()
		var o netOp
		json.Unmarshal(mustJSON(t, res[name]), &o)
		return o
	}
	uring := func(userData uint64) obj { return obj{"user_data": userData, "sqe_flags": []string{}} }
	byUserData := func(typ string, ud uint64) *rec {
		t.Helper()
		return s.one(t, typ, func(r *rec) bool {
			var b struct {
				IOUring struct {
					UserData uint64 `json:"user_data"`
				} `json:"io_uring"`
			}
			json.Unmarshal(mustJSON(t, r.body), &b)
			return r.Proc.Pid == pid && b.IOUring.UserData == ud
		})
	}
	for _, c := range []struct {
		name     string
		userData uint64
		port     int
		ret      int
		state    string
	}{
		{"connect", 0x1001, port, 0, "ESTABLISHED"},
		{"refused", 0x1002, closed, -int(unix.ECONNREFUSED), "CLOSE"},
		{"socket_connect", 0x1006, port, 0, "ESTABLISHED"},
	} {
		o := op(c.name)
		if o.Ret != c.ret {
			t.Fatalf("%s: io_uring returned %d, want %d", c.name, o.Ret, c.ret)
		}
		// A refused io_uring connect (non-blocking inside) is not disconnected: it keeps its destination.
		dst := fmt.Sprintf("127.0.0.1:%d", c.port)
		remote := dst
		wantBody(t, byUserData("connect", c.userData), withResult(obj{"syscall": "io_uring_connect", "fd": o.Fd, "addrlen": 16, "family": "AF_INET",
			"family_num": unix.AF_INET, "addr": "127.0.0.1", "port": c.port, "addr_source": "kernel", "io_uring": uring(c.userData),
			"socket": sockObj(t, "AF_INET", "SOCK_STREAM", "tcp", c.state, o.Cookie, o.Local, remote)}, c.ret))
		want := obj{"cookie": o.Cookie, "from": "SYN_SENT", "to": c.state, "local": addrObj(t, o.Local), "remote": addrObj(t, dst)}
		if c.ret < 0 {
			want["error"] = "ECONNREFUSED"
		}
		wantBody(t, s.one(t, "sock_state", func(r *rec) bool { return r.SockState.Cookie == o.Cookie }), want)
	}
	toUDP := fmt.Sprintf("127.0.0.1:%d", udp)
	o := op("send")
	wantBody(t, byUserData("send", 0x1003), obj{"syscall": "io_uring_send", "fd": o.Fd, "size": 5, "flags": []string{"MSG_NOSIGNAL"},
		"dest": dest(t, "AF_INET", unix.AF_INET, toUDP), "addr_source": "kernel", "io_uring": uring(0x1003),
		"socket": sockObj(t, "AF_INET", "SOCK_DGRAM", "udp", "CLOSE", o.Cookie, o.Local, ""), "ret": 5})
	o = op("sendmsg")
	wantBody(t, byUserData("send", 0x1004), obj{"syscall": "io_uring_sendmsg", "fd": o.Fd, "flags": []string{"MSG_NOSIGNAL"},
		"dest": dest(t, "AF_INET", unix.AF_INET, toUDP), "addr_source": "kernel", "io_uring": uring(0x1004),
		"socket": sockObj(t, "AF_INET", "SOCK_DGRAM", "udp", "CLOSE", o.Cookie, o.Local, ""), "ret": 4})
	o, lis := op("accept"), op("listener")
	peer := <-client
	if o.Ret < 0 || o.Remote != peer {
		t.Fatalf("accept: %+v, client %s", o, peer)
	}
	wantBody(t, byUserData("accept", 0x1007), obj{"syscall": "io_uring_accept", "fd": lis.Fd, "flags": []string{"SOCK_CLOEXEC"}, "new_fd": o.Ret,
		"io_uring": uring(0x1007), "socket": sockObj(t, "AF_INET", "SOCK_STREAM", "tcp", "ESTABLISHED", o.Cookie, o.Local, peer), "ret": o.Ret})
}

// dnsNetns is a network namespace with a DNS server at 10.53.0.1:53 and a
// TCP listener at 10.53.0.2, both on its loopback device. The server
// answers an A query for example.test with 10.53.0.2 and any other with
// 10.53.0.3, TTL 60, echoing the question's name byte for byte.
type dnsNetns struct {
	name, path string
	port       int
}

func startDNSNetns(t *testing.T) *dnsNetns {
	t.Helper()
	tools.Require(t, "iproute2")
	name := fmt.Sprintf("agenttrace-dns-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ip("-n", name, "link", "set", "lo", "up")
	ip("-n", name, "addr", "add", "10.53.0.1/32", "dev", "lo")
	ip("-n", name, "addr", "add", "10.53.0.2/32", "dev", "lo")
	ip("-n", name, "addr", "add", "10.53.0.3/32", "dev", "lo")
	n := &dnsNetns{name: name, path: "/run/netns/" + name}

	type sockets struct {
		udp, tcp int
		err      error
	}
	made := make(chan sockets, 1)
	go func() {
		// The thread that joins the namespace never leaves it; it exits
		// with the goroutine (locked).
		runtime.LockOSThread()
		var s sockets
		defer func() { made <- s }()
		f, err := os.Open(n.path)
		if err != nil {
			s.err = err
			return
		}
		defer f.Close()
		if s.err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); s.err != nil {
			return
		}
		if s.udp, s.err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); s.err != nil {
			return
		}
		if s.err = unix.Bind(s.udp, &unix.SockaddrInet4{Addr: [4]byte{10, 53, 0, 1}, Port: 53}); s.err != nil {
			return
		}
		if s.tcp, s.err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); s.err != nil {
			return
		}
		if s.err = unix.Bind(s.tcp, &unix.SockaddrInet4{Addr: [4]byte{10, 53, 0, 2}}); s.err != nil {
			return
		}
		s.err = unix.Listen(s.tcp, 16)
	}()
	s := <-made
	if s.err != nil {
		t.Fatalf("DNS server in %s: %v", name, s.err)
	}
	t.Cleanup(func() { unix.Shutdown(s.udp, unix.SHUT_RDWR); unix.Close(s.udp); unix.Close(s.tcp) })
	sa, err := unix.Getsockname(s.tcp)
	if err != nil {
		t.Fatal(err)
	}
	n.port = sa.(*unix.SockaddrInet4).Port
	go func() {
		for {
			c, _, err := unix.Accept4(s.tcp, unix.SOCK_CLOEXEC)
			if err != nil {
				return
			}
			unix.Close(c)
		}
	}()
	go func() {
		buf := make([]byte, 1500)
		for {
			m, from, err := unix.Recvfrom(s.udp, buf, 0)
			if err != nil || m == 0 {
				return
			}
			if resp := dnsAnswer(buf[:m]); resp != nil {
				unix.Sendto(s.udp, resp, 0, from)
			}
		}
	}()
	return n
}

// dnsAnswer answers an A query (TTL 60), the question echoed: 10.53.0.2
// for example.test, 10.53.0.3 for any other name.
func dnsAnswer(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	end := 12
	for end < len(q) && q[end] != 0 {
		end += 1 + int(q[end])
	}
	end += 5 // the root label, QTYPE, QCLASS
	if end > len(q) {
		return nil
	}
	r := append([]byte(nil), q[:2]...)
	r = append(r, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0) // QR RD RA, NOERROR; 1 question, 1 answer
	r = append(r, q[12:end]...)
	r = append(r, 0xc0, 12, 0, 1, 0, 1)      // the question's name; A, IN
	r = binary.BigEndian.AppendUint32(r, 60) // TTL
	host := byte(3)
	if string(q[12:end-4]) == "\x07example\x04test\x00" {
		host = 2
	}
	return append(r, 0, 4, 10, 53, 0, host) // RDLENGTH 4, the address
}

func hexLabels(labels ...string) string {
	var parts []string
	for _, l := range labels {
		parts = append(parts, hex.EncodeToString([]byte(l)))
	}
	return strings.Join(parts, "/")
}

// TestNetDNS: a query to a resolver in a network namespace, its response
// and the connect to the answer: dns records with the kernel's copy of the
// packets (names, types, answers), tied by cookie to the socket, and
// `agenttrace show` prints the connect with the name it was resolved
// from. A hostile name (labels with a dot, a NUL, a newline, bytes that are
// not UTF-8, U+202E) is written in escaped presentation form: ASCII only.
func TestNetDNS(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	ns := startDNSNetns(t)
	hostileLabels := []string{"a.b", "\x00nul", "new\nline", "\xff\xfe", "rtl\u202eexe", "test"}
	hostileName := `a\.b.\000nul.new\010line.\255\254.rtl\226\128\174exe.test`
	s := agent(t, dir, runOpts{helper: "net-dns"}, helperBin, ns.path, "10.53.0.1", fmt.Sprint(ns.port),
		hexLabels("example", "test"), hexLabels(hostileLabels...))
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid := num(t, res, "pid")
	_, all := netOps(t, res)
	server := obj{"addr": "10.53.0.1", "port": 53}
	for i, name := range []string{"example.test", hostileName} {
		op := all["dns-"+strconv.Itoa(i)]
		answer := []string{"10.53.0.2", "10.53.0.3"}[i]
		if op.Ret <= 0 {
			t.Fatalf("the query for %s failed: %+v", name, op)
		}
		_, port, _ := strings.Cut(op.Local, ":")
		p, _ := strconv.Atoi(port)
		client := obj{"addr": "10.53.0.1", "port": p}
		question := []obj{{"name": name, "type": "A", "class": "IN"}}
		find := func(dir string) *rec {
			return s.one(t, "dns", func(r *rec) bool { return r.DNS.Direction == dir && r.DNS.Cookie == op.Cookie })
		}
		q := find("query")
		if q.Proc.Pid != pid {
			t.Errorf("dns query of pid %d, want %d", q.Proc.Pid, pid)
		}
		wantBody(t, q, obj{"direction": "query", "transport": "udp", "cookie": op.Cookie, "client": client, "server": server,
			"id": op.Port, "opcode": "QUERY", "questions": question})
		r := find("response")
		if r.Proc.Pid != pid {
			t.Errorf("dns response of pid %d, want %d", r.Proc.Pid, pid)
		}
		wantBody(t, r, obj{"direction": "response", "transport": "udp", "cookie": op.Cookie, "client": client, "server": server,
			"id": op.Port, "opcode": "QUERY", "rcode": "NOERROR", "questions": question,
			"answers": []obj{{"name": name, "type": "A", "ttl": 60, "data": answer}}})
		for _, line := range [][]byte{q.line, r.line} {
			for _, b := range line {
				if b < 0x20 || b > 0x7e {
					t.Errorf("a dns record holds byte %#x:\n%q", b, line)
					break
				}
			}
		}
	}
	conn := netOpOf(t, all, "connect", 0)
	to := fmt.Sprintf("10.53.0.2:%d", ns.port)
	wantBody(t, s.one(t, "connect", func(r *rec) bool { return r.Proc.Pid == pid && r.Connect.Fd == conn.Fd }),
		obj{"syscall": "connect", "fd": conn.Fd, "addrlen": 16, "family": "AF_INET", "family_num": unix.AF_INET, "addr": "10.53.0.2", "port": ns.port,
			"addr_source": "kernel", "socket": sockObj(t, "AF_INET", "SOCK_STREAM", "tcp", "ESTABLISHED", conn.Cookie, conn.Local, to), "ret": 0})

	out, err := exec.Command(agentBin, "show", "--pubkey", s.logPath+".pub", s.logPath).CombinedOutput()
	if err != nil {
		t.Fatalf("agenttrace show: %v\n%s", err, out)
	}
	want := fmt.Sprintf("connect  10.53.0.2:%d (example.test) ok", ns.port)
	if !strings.Contains(string(out), want) {
		t.Errorf("agenttrace show does not print %q:\n%s", want, out)
	}
	if want := "dns      " + hostileName + " A → 10.53.0.3"; !strings.Contains(string(out), want) || strings.ContainsAny(string(out), "\u202e\x00") {
		t.Errorf("agenttrace show does not print %q:\n%q", want, out)
	}
}

// TestDaemonNetLateCgroup: the daemon's network hooks (attached at the
// cgroup2 root) cover a target cgroup created after the daemon started, and
// nothing of a sibling that is not a target.
func TestDaemonNetLateCgroup(t *testing.T) {
	e := newDaemonEnv(t)
	e.writeConfig(t, e.daemonConfig([]string{e.pattern("agent-*")}, ""))
	d := e.startDaemon(t)
	agentID := e.mkdir(t, "agent-late")
	e.mkdir(t, "other")
	udp := listenUDP(t, "udp4", "127.0.0.1:0").LocalAddr().(*net.UDPAddr).Port
	l := listen(t, "tcp4", "127.0.0.1:0")
	acceptAll(l)
	tcp := l.Addr().(*net.TCPAddr).Port
	pid, ops := e.runIn(t, "agent-late", "net-daemon", fmt.Sprint(udp), fmt.Sprint(tcp))
	otherPid, otherOps := e.runIn(t, "other", "net-daemon", fmt.Sprint(udp), fmt.Sprint(tcp))
	if len(ops) != 2 || ops[0].Ret != 6 || ops[1].Ret != 0 || len(otherOps) != 2 {
		t.Fatalf("helper ops %+v, %+v", ops, otherOps)
	}
	time.Sleep(300 * time.Millisecond)
	d.stop(t)
	lg := e.readDaemonLog(t)
	var mine []*dRec
	for _, r := range lg.recs {
		if r.Proc.Pid == otherPid {
			t.Errorf("a record of the untraced cgroup's process:\n%s", r.line)
		}
		if r.Proc.Pid == pid && slices.Contains([]string{"send", "connect", "sock_state"}, r.Type) {
			mine = append(mine, r)
		}
	}
	var types []string
	for _, r := range mine {
		var body map[string]any
		var all map[string]any
		json.Unmarshal(r.line, &all)
		body, _ = all[r.Type].(map[string]any)
		types = append(types, r.Type)
		if r.Proc.CgroupID != agentID {
			t.Errorf("record in cgroup %d, want %d:\n%s", r.Proc.CgroupID, agentID, r.line)
		}
		switch r.Type {
		case "send":
			if d, _ := body["dest"].(map[string]any); body["addr_source"] != "kernel" || d["port"] != float64(udp) || body["fd"] != float64(ops[0].Fd) {
				t.Errorf("send record:\n%s", r.line)
			}
		case "connect":
			if body["addr_source"] != "kernel" || body["port"] != float64(tcp) || body["fd"] != float64(ops[1].Fd) || body["ret"] != float64(0) {
				t.Errorf("connect record:\n%s", r.line)
			}
		case "sock_state":
			if body["to"] != "ESTABLISHED" {
				t.Errorf("sock_state record:\n%s", r.line)
			}
		}
	}
	slices.Sort(types)
	if !slices.Equal(types, []string{"connect", "send", "sock_state"}) {
		t.Errorf("want one send, connect and sock_state record of the late cgroup's helper, got %v:\n%s", types, dumpRecs(mine))
	}
}
