package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestI386 makes open, connect and UDP sendto through the i386 ABI (int
// $0x80) from a 64-bit process: the records say so ("abi":"i386") and carry
// the exact path and address, read with 32-bit pointers, and the file the
// kernel opened; a path in a page not yet faulted in is recorded as
// unreadable.
func TestI386(t *testing.T) {
	requireRoot(t)
	bin := requireC(t, i386Bin)
	t.Parallel()
	dir := testDir(t)
	existing, missing := filepath.Join(dir, "opened-by-int80"), filepath.Join(dir, "missing-int80")
	if err := os.WriteFile(existing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	port := listen(t, "tcp4", "127.0.0.1:0").Addr().(*net.TCPAddr).Port

	pages := filepath.Join(dir, "pages")
	if err := os.Mkdir(pages, 0o755); err != nil {
		t.Fatal(err)
	}
	s := agent(t, dir, runOpts{}, bin, existing, missing, fmt.Sprint(port), pages)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid := num(t, res, "pid")
	fd, enoent, ufd := num(t, res, "open"), num(t, res, "missing"), num(t, res, "u_open")
	if fd < 0 || ufd < 0 || enoent != -int(unix.ENOENT) {
		t.Fatalf("the i386 syscalls did not do what the test needs (is IA32 emulation on?): %v", res)
	}
	for _, k := range []string{"socketcall", "connect", "u_socketcall", "u_connect"} {
		if num(t, res, k) != 0 {
			t.Fatalf("the i386 %s failed: %v", k, res)
		}
	}

	i386 := func(r *rec) {
		t.Helper()
		if r.Proc.ABI != "i386" || r.Proc.Pid != pid {
			t.Errorf("record of pid %d abi %q, want %d i386:\n%s", r.Proc.Pid, r.Proc.ABI, pid, r.line)
		}
	}
	r := s.one(t, "open", func(r *rec) bool { return r.Open.Path == existing && r.Open.Ret == fd })
	i386(r)
	wantBody(t, r, obj{"syscall": "open", "dirfd": -100, "path": existing, "flags": []string{"O_RDONLY"}, "flags_raw": 0, "mode": "0", "fd": fd, "ret": fd,
		"file": fileOf(t, existing)})
	// A path in a page not faulted in: unreadable at entry, never read
	// again; the file the kernel opened says what was opened.
	r = s.one(t, "open", func(r *rec) bool { return r.Proc.Pid == pid && r.Open.Path == "" && r.Open.Ret == ufd })
	i386(r)
	wantBody(t, r, obj{"syscall": "open", "dirfd": -100, "path_unreadable": true, "flags": []string{"O_RDONLY"}, "flags_raw": 0, "mode": "0", "fd": ufd, "ret": ufd,
		"file": fileOf(t, existing)})
	r = s.one(t, "open", openOf(missing))
	i386(r)
	wantBody(t, r, obj{"syscall": "open", "dirfd": -100, "path": missing, "flags": []string{"O_RDONLY"}, "flags_raw": 0, "mode": "0", "ret": enoent, "errno": "ENOENT"})

	sockets, _ := res["sockets"].(map[string]any)
	observed := func(sock int) (cookie uint64, local string) {
		o, _ := sockets[fmt.Sprint(sock)].(map[string]any)
		c, _ := o["cookie"].(float64)
		p, _ := o["port"].(float64)
		return uint64(c), fmt.Sprintf("127.0.0.1:%d", int(p))
	}
	to := fmt.Sprintf("127.0.0.1:%d", port)
	for _, c := range []struct{ syscall, sock string }{{"socketcall", "sock1"}, {"connect", "sock2"}, {"socketcall", "sock3"}, {"connect", "sock4"}} {
		sock := num(t, res, c.sock)
		r := s.one(t, "connect", func(r *rec) bool { return r.Connect.Fd == sock && r.Proc.Pid == pid })
		i386(r)
		cookie, local := observed(sock)
		wantBody(t, r, obj{"syscall": c.syscall, "fd": sock, "addrlen": 16, "family": "AF_INET", "family_num": unix.AF_INET, "addr": "127.0.0.1", "port": port,
			"addr_source": "kernel", "socket": sockObj(t, "AF_INET", "SOCK_STREAM", "tcp", "ESTABLISHED", cookie, local, to), "ret": 0})
	}
	// UDP sends through socketcall(SYS_SENDTO) and i386 sendto(2).
	for _, c := range []struct{ syscall, sock, ret string }{{"socketcall", "sock5", "sc_sendto"}, {"sendto", "sock6", "sendto"}} {
		sock := num(t, res, c.sock)
		if num(t, res, c.ret) != 5 {
			t.Fatalf("the i386 %s returned %d", c.syscall, num(t, res, c.ret))
		}
		r := s.one(t, "send", func(r *rec) bool { return r.Send.Fd == sock && r.Proc.Pid == pid })
		i386(r)
		cookie, local := observed(sock)
		local = "0.0.0.0" + local[len("127.0.0.1"):]
		wantBody(t, r, obj{"syscall": c.syscall, "fd": sock, "size": 5, "flags": []string{}, "dest": dest(t, "AF_INET", unix.AF_INET, to),
			"addr_source": "kernel", "socket": sockObj(t, "AF_INET", "SOCK_DGRAM", "udp", "CLOSE", cookie, local, ""), "ret": 5})
	}
	// Its libc's own opens use the 64-bit ABI and say nothing of i386.
	for _, r := range s.find("open", byPid(pid)) {
		if r.Open.Path != existing && r.Open.Path != missing && r.Open.Ret != ufd && r.Proc.ABI != "" {
			t.Errorf("a 64-bit syscall recorded with abi %q:\n%s", r.Proc.ABI, r.line)
		}
	}
}
