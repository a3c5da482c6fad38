package integration

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// listen opens a loopback listener of the test process (outside any
// session) and returns its port or path.
func listen(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestConnect connects over IPv4, IPv6, v4-mapped IPv6, unix path and
// abstract sockets, to a refusing port, without blocking, and with a family
// the kernel does not support on the socket, and compares each whole
// connect record (the kernel's copy of the address, the socket as the
// kernel holds it at the syscall's exit) and each connection's outcome
// (sock_state).
func TestConnect(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	port4 := listen(t, "tcp4", "127.0.0.1:0").Addr().(*net.TCPAddr).Port
	port6 := listen(t, "tcp6", "[::1]:0").Addr().(*net.TCPAddr).Port
	unixPath := filepath.Join(dir, "agent.sock")
	listen(t, "unix", unixPath)
	abstract := fmt.Sprintf("agenttrace-test-%d-%s", port4, filepath.Base(dir))
	listen(t, "unix", "@"+abstract)

	s := agent(t, dir, runOpts{helper: "connects"}, helperBin, fmt.Sprint(port4), fmt.Sprint(port6), unixPath, abstract)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid, all := ops(t, res)
	_, seen := netOps(t, res)
	closedPort := all["closed-port"].Ret

	inet := func(port int) obj {
		return obj{"addrlen": unix.SizeofSockaddrInet4, "family": "AF_INET", "family_num": unix.AF_INET, "addr": "127.0.0.1", "port": port}
	}
	inet6 := func(addr string, port int) obj {
		return obj{"addrlen": unix.SizeofSockaddrInet6, "family": "AF_INET6", "family_num": unix.AF_INET6, "addr": addr, "port": port}
	}
	mapped := inet6("::ffff:127.0.0.1", port4)
	mapped["v4_mapped"] = true
	to4 := fmt.Sprintf("127.0.0.1:%d", port4)
	cases := []struct {
		op     string
		errno  unix.Errno
		want   obj    // without syscall, fd, ret, errno, addr_source, socket
		family string // of the socket
		typ    string
		proto  string
		state  string // at the syscall's exit; "" for either SYN_SENT or ESTABLISHED
		remote string // the socket's remote address at exit
		source string
		// outcome is the sock_state record's "to" ("" for none), remote its remote address.
		outcome, outcomeRemote string
	}{
		{"inet", 0, inet(port4), "AF_INET", "SOCK_STREAM", "tcp", "ESTABLISHED", to4, "kernel", "ESTABLISHED", to4},
		// A refused blocking connect disconnects the socket before it returns.
		{"refused", unix.ECONNREFUSED, inet(closedPort), "AF_INET", "SOCK_STREAM", "tcp", "CLOSE", "", "kernel", "CLOSE", fmt.Sprintf("127.0.0.1:%d", closedPort)},
		{"nonblock", unix.EINPROGRESS, inet(port4), "AF_INET", "SOCK_STREAM", "tcp", "", to4, "kernel", "ESTABLISHED", to4},
		{"inet6", 0, inet6("::1", port6), "AF_INET6", "SOCK_STREAM", "tcp", "ESTABLISHED", fmt.Sprintf("[::1]:%d", port6), "kernel", "ESTABLISHED", fmt.Sprintf("[::1]:%d", port6)},
		{"mapped", 0, mapped, "AF_INET6", "SOCK_STREAM", "tcp", "ESTABLISHED", fmt.Sprintf("[::ffff:127.0.0.1]:%d", port4), "kernel", "ESTABLISHED", fmt.Sprintf("[::ffff:127.0.0.1]:%d", port4)},
		{"unix", 0, obj{"addrlen": 2 + len(unixPath) + 1, "family": "AF_UNIX", "family_num": unix.AF_UNIX, "unix_path": unixPath}, "AF_UNIX", "SOCK_STREAM", "", "ESTABLISHED", "unix:" + unixPath, "kernel", "", ""},
		{"abstract", 0, obj{"addrlen": 2 + 1 + len(abstract), "family": "AF_UNIX", "family_num": unix.AF_UNIX, "unix_abstract": abstract}, "AF_UNIX", "SOCK_STREAM", "", "ESTABLISHED", "unix:@" + abstract, "kernel", "", ""},
		// The cgroup hook runs before TCP checks the family: it saw the
		// address the kernel then refused.
		{"appletalk", unix.EAFNOSUPPORT, obj{"addrlen": 16, "family_num": unix.AF_APPLETALK}, "AF_INET", "SOCK_STREAM", "tcp", "CLOSE", "", "kernel", "", ""},
	}
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			op := wantOp(t, all, c.op, c.errno)
			obs := seen[c.op]
			r := s.one(t, "connect", func(r *rec) bool { return r.Proc.Pid == pid && r.Connect.Fd == op.Fd })
			want := c.want
			want["syscall"] = "connect"
			want["fd"] = op.Fd
			want["ret"] = op.Ret
			want["addr_source"] = c.source
			if op.Ret < 0 {
				want["errno"] = unix.ErrnoName(c.errno)
			}
			state := c.state
			if state == "" && r.Connect.Socket != nil && (r.Connect.Socket.State == "SYN_SENT" || r.Connect.Socket.State == "ESTABLISHED") {
				state = r.Connect.Socket.State
			}
			want["socket"] = sockObj(t, c.family, c.typ, c.proto, state, obs.Cookie, obs.Local, c.remote)
			wantBody(t, r, want)
			states := s.find("sock_state", func(r *rec) bool { return r.SockState.Cookie == obs.Cookie })
			if c.outcome == "" {
				if len(states) != 0 {
					t.Errorf("want no sock_state record, got:\n%s", s.dump(states))
				}
				return
			}
			if len(states) != 1 {
				t.Fatalf("want one sock_state record of cookie %d, got %d:\n%s", obs.Cookie, len(states), s.dump(states))
			}
			outcome := obj{"cookie": obs.Cookie, "from": "SYN_SENT", "to": c.outcome, "local": addrObj(t, obs.Local), "remote": addrObj(t, c.outcomeRemote)}
			if c.errno == unix.ECONNREFUSED {
				outcome["error"] = "ECONNREFUSED"
				// At the refusal the socket still had its address; the failed
				// connect then disconnected it (getsockname: 0.0.0.0, same port).
				outcome["local"].(obj)["addr"] = "127.0.0.1"
			}
			wantBody(t, states[0], outcome)
		})
	}
	if n := len(s.find("connect", byPid(pid))); n != len(cases) {
		t.Errorf("want %d connect records, got %d:\n%s", len(cases), n, s.dump(s.find("connect", nil)))
	}
}
