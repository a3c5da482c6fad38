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
// connect record.
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
	pid, all := ops(t, s.result(t))
	closedPort := all["closed-port"].Ret

	inet := func(port int) obj {
		return obj{"addrlen": unix.SizeofSockaddrInet4, "family": "AF_INET", "family_num": unix.AF_INET, "addr": "127.0.0.1", "port": port}
	}
	inet6 := func(addr string, port int) obj {
		return obj{"addrlen": unix.SizeofSockaddrInet6, "family": "AF_INET6", "family_num": unix.AF_INET6, "addr": addr, "port": port}
	}
	mapped := inet6("::ffff:127.0.0.1", port4)
	mapped["v4_mapped"] = true
	cases := []struct {
		op    string
		errno unix.Errno
		want  obj // without syscall, fd, ret, errno
	}{
		{"inet", 0, inet(port4)},
		{"refused", unix.ECONNREFUSED, inet(closedPort)},
		{"nonblock", unix.EINPROGRESS, inet(port4)},
		{"inet6", 0, inet6("::1", port6)},
		{"mapped", 0, mapped},
		{"unix", 0, obj{"addrlen": 2 + len(unixPath) + 1, "family": "AF_UNIX", "family_num": unix.AF_UNIX, "unix_path": unixPath}},
		{"abstract", 0, obj{"addrlen": 2 + 1 + len(abstract), "family": "AF_UNIX", "family_num": unix.AF_UNIX, "unix_abstract": abstract}},
		{"appletalk", unix.EAFNOSUPPORT, obj{"addrlen": 16, "family_num": unix.AF_APPLETALK}},
	}
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			op := wantOp(t, all, c.op, c.errno)
			r := s.one(t, "connect", func(r *rec) bool { return r.Proc.Pid == pid && r.Connect.Fd == op.Fd })
			want := c.want
			want["syscall"] = "connect"
			want["fd"] = op.Fd
			want["ret"] = op.Ret
			if op.Ret < 0 {
				want["errno"] = unix.ErrnoName(c.errno)
			}
			wantBody(t, r, want)
		})
	}
	if n := len(s.find("connect", byPid(pid))); n != len(cases) {
		t.Errorf("want %d connect records, got %d:\n%s", len(cases), n, s.dump(s.find("connect", nil)))
	}
}
