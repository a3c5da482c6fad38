package integration

// Helper actions for the network tests (net_truth_test.go). Each makes raw
// socket syscalls and reports, per operation, what the kernel returned and
// what the kernel then holds for the socket: its cookie (SO_COOKIE), its
// local and remote address (getsockname, getpeername), so the test can
// compare the records with the kernel's own view.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// netOp is one socket operation of a network helper.
type netOp struct {
	Op     string `json:"op"`
	Fd     int    `json:"fd"`
	Ret    int    `json:"ret"`              // result, or -errno
	NewFd  int    `json:"new_fd,omitempty"` // accept
	Cookie uint64 `json:"cookie"`           // SO_COOKIE of fd (of new_fd for accept)
	Local  string `json:"local"`            // getsockname, as addrString
	Remote string `json:"remote"`           // getpeername; "" when it fails
	Error  int    `json:"error,omitempty"`  // SO_ERROR after the outcome of a non-blocking connect
	Port   int    `json:"port,omitempty"`   // action-specific (the race: the port the kernel used)
}

// addrString is a sockaddr as the tests write it: "127.0.0.1:80", "[::1]:80",
// "unix:/path", "unix:@abstract", "unix:" (unnamed).
func addrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrUnix:
		if a.Name == "@" {
			return "unix:" // unnamed: Go reports it as an empty abstract name
		}
		if len(a.Name) > 0 && a.Name[0] == '@' {
			return "unix:@" + a.Name[1:]
		}
		return "unix:" + a.Name
	}
	return ""
}

// observe fills the kernel's view of fd into op.
func observe(op *netOp, fd int) {
	if c, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE); err == nil {
		op.Cookie = c
	}
	if sa, err := unix.Getsockname(fd); err == nil {
		op.Local = addrString(sa)
	}
	if sa, err := unix.Getpeername(fd); err == nil {
		op.Remote = addrString(sa)
	}
}

func mustSocket(family, typ int) int {
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		panic(fmt.Sprintf("socket(%d, %d): %v", family, typ, err))
	}
	return fd
}

func sysSendto(fd int, buf []byte, flags int, sa []byte) int {
	var p, n uintptr
	if len(sa) > 0 {
		p, n = uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa))
	}
	r, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), uintptr(flags), p, n)
	runtime.KeepAlive(sa)
	runtime.KeepAlive(buf)
	return ret(r, e)
}

// msghdr builds a struct msghdr naming sa (if any) with one iovec per buffer.
func msghdr(sa []byte, bufs ...[]byte) (*unix.Msghdr, []unix.Iovec) {
	iov := make([]unix.Iovec, len(bufs))
	for i, b := range bufs {
		iov[i].Base = &b[0]
		iov[i].SetLen(len(b))
	}
	m := &unix.Msghdr{Iov: &iov[0]}
	m.SetIovlen(len(iov))
	if len(sa) > 0 {
		m.Name = &sa[0]
		m.Namelen = uint32(len(sa))
	}
	return m, iov
}

func sysSendmsg(fd int, sa []byte, bufs ...[]byte) int {
	m, iov := msghdr(sa, bufs...)
	r, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(m)), 0)
	runtime.KeepAlive(iov)
	runtime.KeepAlive(sa)
	runtime.KeepAlive(bufs)
	return ret(r, e)
}

// mmsghdr is struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// sysSendmmsg sends one message per destination, each carrying payloads[i].
func sysSendmmsg(fd int, dests [][]byte, payloads [][]byte) int {
	msgs := make([]mmsghdr, len(dests))
	var keep [][]unix.Iovec
	for i := range dests {
		m, iov := msghdr(dests[i], payloads[i])
		msgs[i].hdr = *m
		keep = append(keep, iov)
	}
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), 0, 0, 0)
	runtime.KeepAlive(keep)
	runtime.KeepAlive(dests)
	runtime.KeepAlive(payloads)
	return ret(r, e)
}

func netResult(ops []netOp, extra map[string]any) {
	extra["net"] = ops
}

// helperNetSends: UDP sendto and sendmsg over IPv4 and IPv6, sendmmsg
// (three messages, two destinations), unix datagram sendto to a path and
// an abstract name, a send on a connected UDP socket (no destination: no
// send record), and a datagram too large for UDP (EMSGSIZE before the
// kernel's hook). args: UDP port on 127.0.0.1, second UDP port on
// 127.0.0.1, UDP port on ::1, unix datagram path, abstract name.
func helperNetSends(args []string, extra map[string]any) error {
	port4, _ := strconv.Atoi(args[0])
	port4b, _ := strconv.Atoi(args[1])
	port6, _ := strconv.Atoi(args[2])
	unixPath, abstract := args[3], args[4]
	loop4 := [4]byte{127, 0, 0, 1}
	loop6 := [16]byte{15: 1}
	var ops []netOp
	add := func(op string, fd, r int) {
		o := netOp{Op: op, Fd: fd, Ret: r}
		observe(&o, fd)
		ops = append(ops, o)
	}

	fd := mustSocket(unix.AF_INET, unix.SOCK_DGRAM)
	add("sendto4", fd, sysSendto(fd, []byte("hello"), 0, sockaddrInet4(loop4, port4)))
	fd = mustSocket(unix.AF_INET, unix.SOCK_DGRAM)
	add("sendmsg4", fd, sysSendmsg(fd, sockaddrInet4(loop4, port4), []byte("abc"), []byte("defg")))
	fd = mustSocket(unix.AF_INET6, unix.SOCK_DGRAM)
	add("sendto6", fd, sysSendto(fd, []byte("hello6"), 0, sockaddrInet6(loop6, port6)))
	fd = mustSocket(unix.AF_INET6, unix.SOCK_DGRAM)
	add("sendmsg6", fd, sysSendmsg(fd, sockaddrInet6(loop6, port6), []byte("v6msg")))
	fd = mustSocket(unix.AF_INET, unix.SOCK_DGRAM)
	add("sendmmsg", fd, sysSendmmsg(fd,
		[][]byte{sockaddrInet4(loop4, port4), sockaddrInet4(loop4, port4b), sockaddrInet4(loop4, port4)},
		[][]byte{[]byte("one"), []byte("second"), []byte("3")}))
	fd = mustSocket(unix.AF_UNIX, unix.SOCK_DGRAM)
	add("sendto-unix", fd, sysSendto(fd, []byte("unix"), 0, sockaddrUnix(unixPath, false)))
	fd = mustSocket(unix.AF_UNIX, unix.SOCK_DGRAM)
	add("sendto-abstract", fd, sysSendto(fd, []byte("abstract"), 0, sockaddrUnix(abstract, true)))
	fd = mustSocket(unix.AF_INET, unix.SOCK_DGRAM)
	add("connect-udp", fd, sysConnect(fd, sockaddrInet4(loop4, port4)))
	add("send-connected", fd, sysSendto(fd, []byte("conn"), 0, nil))
	fd = mustSocket(unix.AF_INET, unix.SOCK_DGRAM)
	add("sendto-emsgsize", fd, sysSendto(fd, make([]byte, 70000), 0, sockaddrInet4(loop4, port4)))
	netResult(ops, extra)
	return nil
}

// helperNetFastOpen sends data with the SYN: sendto(MSG_FASTOPEN) on a TCP
// socket, a connection without connect(2). args: the TCP port on 127.0.0.1.
func helperNetFastOpen(args []string, extra map[string]any) error {
	port, _ := strconv.Atoi(args[0])
	fd := mustSocket(unix.AF_INET, unix.SOCK_STREAM)
	o := netOp{Op: "fastopen", Fd: fd, Ret: sysSendto(fd, []byte("tfo!"), unix.MSG_FASTOPEN, sockaddrInet4([4]byte{127, 0, 0, 1}, port))}
	observe(&o, fd)
	netResult([]netOp{o}, extra)
	return nil
}

// waitConnected waits for a non-blocking connect's outcome and returns SO_ERROR.
func waitConnected(fd int) int {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for {
		if _, err := unix.Poll(pfd, 10000); !errors.Is(err, unix.EINTR) {
			break
		}
	}
	e, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	return e
}

// helperNetNonblock connects without blocking to a listener and to a port
// that refuses, and waits for each outcome. args: listening port, closed
// port, both on 127.0.0.1.
func helperNetNonblock(args []string, extra map[string]any) error {
	port, _ := strconv.Atoi(args[0])
	closed, _ := strconv.Atoi(args[1])
	var ops []netOp
	for _, c := range []struct {
		op   string
		port int
	}{{"nonblock-ok", port}, {"nonblock-refused", closed}} {
		fd := mustSocket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK)
		o := netOp{Op: c.op, Fd: fd, Ret: sysConnect(fd, sockaddrInet4([4]byte{127, 0, 0, 1}, c.port))}
		// The local address before the outcome: a refused socket loses it.
		observe(&o, fd)
		o.Error = waitConnected(fd)
		ops = append(ops, o)
	}
	netResult(ops, extra)
	return nil
}

// helperNetRace connects again and again to 127.0.0.1 with an address
// buffer whose port another thread keeps rewriting between two listening
// ports, and reports the port each connection reached (getpeername): the
// record must name that one. args: the two ports, the number of connects.
func helperNetRace(args []string, extra map[string]any) error {
	portA, _ := strconv.Atoi(args[0])
	portB, _ := strconv.Atoi(args[1])
	n, _ := strconv.Atoi(args[2])
	sa := sockaddrInet4([4]byte{127, 0, 0, 1}, portA)
	be := func(p int) uint16 {
		var b [2]byte
		binary.BigEndian.PutUint16(b[:], uint16(p))
		return *(*uint16)(unsafe.Pointer(&b[0]))
	}
	a, b := be(portA), be(portB)
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(done)
		for !stop.Load() {
			atomic.StoreUint32((*uint32)(unsafe.Pointer(&sa[0])), uint32(unix.AF_INET)|uint32(a)<<16)
			atomic.StoreUint32((*uint32)(unsafe.Pointer(&sa[0])), uint32(unix.AF_INET)|uint32(b)<<16)
		}
	}()
	var ops []netOp
	for i := 0; i < n; i++ {
		fd := mustSocket(unix.AF_INET, unix.SOCK_STREAM)
		r, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa)))
		o := netOp{Op: "race", Fd: fd, Ret: ret(r, e)}
		if peer, err := unix.Getpeername(fd); err == nil {
			o.Port = peer.(*unix.SockaddrInet4).Port
		}
		ops = append(ops, o)
		unix.Close(fd)
	}
	stop.Store(true)
	<-done
	runtime.KeepAlive(sa)
	netResult(ops, extra)
	return nil
}

// helperNetInbound listens and accepts one connection from a client outside
// the trace, over IPv4, IPv6, a unix path and an abstract unix name. args:
// the IPv4 port, the IPv6 port, the path, the abstract name.
func helperNetInbound(args []string, extra map[string]any) error {
	port4, _ := strconv.Atoi(args[0])
	port6, _ := strconv.Atoi(args[1])
	var ops []netOp
	for _, c := range []struct {
		name   string
		family int
		sa     []byte
	}{
		{"inet", unix.AF_INET, sockaddrInet4([4]byte{127, 0, 0, 1}, port4)},
		{"inet6", unix.AF_INET6, sockaddrInet6([16]byte{15: 1}, port6)},
		{"unix", unix.AF_UNIX, sockaddrUnix(args[2], false)},
		{"abstract", unix.AF_UNIX, sockaddrUnix(args[3], true)},
	} {
		fd := mustSocket(c.family, unix.SOCK_STREAM)
		if c.family != unix.AF_UNIX {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		}
		r, _, e := unix.Syscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&c.sa[0])), uintptr(len(c.sa)))
		o := netOp{Op: "bind-" + c.name, Fd: fd, Ret: ret(r, e)}
		observe(&o, fd)
		ops = append(ops, o)
		r, _, e = unix.Syscall(unix.SYS_LISTEN, uintptr(fd), 7, 0)
		o = netOp{Op: "listen-" + c.name, Fd: fd, Ret: ret(r, e)}
		observe(&o, fd)
		ops = append(ops, o)
		r, _, e = unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), 0, 0, unix.SOCK_CLOEXEC, 0, 0)
		o = netOp{Op: "accept-" + c.name, Fd: fd, Ret: ret(r, e)}
		if o.Ret >= 0 {
			o.NewFd = o.Ret
			observe(&o, o.NewFd)
		}
		ops = append(ops, o)
		runtime.KeepAlive(c.sa)
	}
	netResult(ops, extra)
	return nil
}

// dnsQuery is a DNS query for one name (given as its labels, any bytes).
func dnsQuery(id uint16, qtype uint16, labels [][]byte) []byte {
	q := binary.BigEndian.AppendUint16(nil, id)
	q = append(q, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0) // RD; QDCOUNT 1
	for _, l := range labels {
		q = append(append(q, byte(len(l))), l...)
	}
	q = append(q, 0)
	q = binary.BigEndian.AppendUint16(q, qtype)
	return binary.BigEndian.AppendUint16(q, 1) // IN
}

// dnsAnswerA returns the first A record of a response, or an error.
func dnsAnswerA(resp []byte) (netip.Addr, error) {
	if len(resp) < 12 {
		return netip.Addr{}, fmt.Errorf("response of %d bytes", len(resp))
	}
	off := 12
	skipName := func() {
		for off < len(resp) {
			l := int(resp[off])
			if l&0xc0 == 0xc0 {
				off += 2
				return
			}
			off += 1 + l
			if l == 0 {
				return
			}
		}
	}
	for range binary.BigEndian.Uint16(resp[4:]) {
		skipName()
		off += 4
	}
	for range binary.BigEndian.Uint16(resp[6:]) {
		skipName()
		if off+10 > len(resp) {
			break
		}
		typ, rdlen := binary.BigEndian.Uint16(resp[off:]), int(binary.BigEndian.Uint16(resp[off+8:]))
		off += 10
		if typ == 1 && rdlen == 4 && off+4 <= len(resp) {
			return netip.AddrFrom4([4]byte(resp[off : off+4])), nil
		}
		off += rdlen
	}
	return netip.Addr{}, fmt.Errorf("no A record in %x", resp)
}

// helperNetDNS joins the network namespace at args[0], asks the resolver at
// args[1] (port 53) for the A record of each name in args[3:] (labels
// separated by '/', each hex-encoded), then connects to the answer of the
// first at TCP port args[2].
func helperNetDNS(args []string, extra map[string]any) error {
	ns, err := os.Open(args[0])
	if err != nil {
		return err
	}
	// Every thread: the Go runtime may run the sockets' syscalls on any.
	runtime.LockOSThread()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns: %w", err)
	}
	server, err := netip.ParseAddr(args[1])
	if err != nil {
		return err
	}
	port, _ := strconv.Atoi(args[2])
	var ops []netOp
	var answer netip.Addr
	for i, name := range args[3:] {
		labels, err := splitHexLabels(name)
		if err != nil {
			return err
		}
		fd := mustSocket(unix.AF_INET, unix.SOCK_DGRAM)
		id := uint16(0x4100 + i)
		o := netOp{Op: "dns-" + strconv.Itoa(i), Fd: fd, Port: int(id),
			Ret: sysSendto(fd, dnsQuery(id, 1, labels), 0, sockaddrInet4(server.As4(), 53))}
		observe(&o, fd)
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10})
		buf := make([]byte, 1500)
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("no DNS response: %w", err)
		}
		a, err := dnsAnswerA(buf[:n])
		if err != nil {
			return err
		}
		if i == 0 {
			answer = a
		}
		ops = append(ops, o)
	}
	fd := mustSocket(unix.AF_INET, unix.SOCK_STREAM)
	o := netOp{Op: "connect", Fd: fd, Ret: sysConnect(fd, sockaddrInet4(answer.As4(), port))}
	observe(&o, fd)
	ops = append(ops, o)
	netResult(ops, extra)
	extra["answer"] = answer.String()
	return nil
}

// splitHexLabels turns "6578616d706c65/74657374" into the labels' bytes.
func splitHexLabels(s string) ([][]byte, error) {
	var labels [][]byte
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '/' {
			var l []byte
			for j := start; j+1 < i; j += 2 {
				v, err := strconv.ParseUint(s[j:j+2], 16, 8)
				if err != nil {
					return nil, err
				}
				l = append(l, byte(v))
			}
			labels = append(labels, l)
			start = i + 1
		}
	}
	return labels, nil
}

// helperNetDaemon makes a UDP sendto and a TCP connect to the test's
// listeners on 127.0.0.1. args: the UDP port, the TCP port.
func helperNetDaemon(args []string) []helperOp {
	udp, _ := strconv.Atoi(args[0])
	tcp, _ := strconv.Atoi(args[1])
	fd := mustSocket(unix.AF_INET, unix.SOCK_DGRAM)
	ops := []helperOp{{Op: "sendto", Fd: fd, Ret: sysSendto(fd, []byte("daemon"), 0, sockaddrInet4([4]byte{127, 0, 0, 1}, udp))}}
	fd = mustSocket(unix.AF_INET, unix.SOCK_STREAM)
	ops = append(ops, helperOp{Op: "connect", Fd: fd, Ret: sysConnect(fd, sockaddrInet4([4]byte{127, 0, 0, 1}, tcp))})
	// Let the handshake's state changes happen while the process lives.
	time.Sleep(50 * time.Millisecond)
	return ops
}
