package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The requests and replies of sock_diag(7) are read here rather than with
// netlink's SocketDiag*/UnixSocketDiag* helpers: v1.3.1 reads unix_diag_msg
// with family and type swapped (so its unix dumps drop, or stop at, every
// socket that is not a stream socket), returns each unix name with four
// bytes too many, and its inet requests leave out TCP's bound-only
// pseudo-state. The netlink package still opens the socket in the process's
// network namespace and runs the dumps.

// Sizes and layouts from linux/inet_diag.h and linux/unix_diag.h.
const (
	sizeofInetDiagReqV2 = 56 // family, protocol, ext, pad, states, inet_diag_sockid
	sizeofInetDiagMsg   = 72 // family, state, timer, retrans, inet_diag_sockid, expires, rqueue, wqueue, uid, inode
	sizeofUnixDiagReq   = 24 // family, protocol, pad, states, ino, show, cookie
	sizeofUnixDiagMsg   = 16 // family, type, state, pad, ino, cookie

	udiagShowName = 0x01
	udiagShowPeer = 0x04
	unixDiagName  = 0
	unixDiagPeer  = 2

	// allStates asks for sockets in every state, TCP_BOUND_INACTIVE (13,
	// a TCP socket bound but neither listening nor connected) included.
	allStates = ^uint32(0)

	// dumpAttempts bounds the retries of a dump that the kernel marks as
	// interrupted (sockets came or went during it); the last one is kept.
	dumpAttempts = 3
)

// tcpStates are the kernel's names of the TCP states (include/net/tcp_states.h),
// which inet_diag and unix_diag report for every socket.
var tcpStates = [...]string{
	1:  "ESTABLISHED",
	2:  "SYN_SENT",
	3:  "SYN_RECV",
	4:  "FIN_WAIT1",
	5:  "FIN_WAIT2",
	6:  "TIME_WAIT",
	7:  "CLOSE",
	8:  "CLOSE_WAIT",
	9:  "LAST_ACK",
	10: "LISTEN",
	11: "CLOSING",
	12: "NEW_SYN_RECV",
	13: "BOUND_INACTIVE",
}

func stateName(state uint8) string {
	if int(state) < len(tcpStates) && tcpStates[state] != "" {
		return tcpStates[state]
	}
	return "STATE_" + strconv.Itoa(int(state))
}

// socketTable is every socket of one network namespace, by inode.
type socketTable map[uint64]Socket

type netnsKey struct{ dev, ino uint64 }

type dumped struct {
	table socketTable
	err   error
}

// netnsTables holds the socket table of each network namespace met so far,
// dumped the first time a process of that namespace has a socket.
type netnsTables struct {
	byNetns map[netnsKey]dumped
	dumps   int
}

func newNetnsTables() *netnsTables {
	return &netnsTables{byNetns: make(map[netnsKey]dumped)}
}

// lookup returns the socket table of the network namespace of the process
// whose /proc directory is dir. A table may be partial: err says what is
// missing.
func (n *netnsTables) lookup(dir int) (socketTable, error) {
	fd, err := unix.Openat(dir, "ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening its network namespace: %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat of its network namespace: %w", err)
	}
	key := netnsKey{st.Dev, st.Ino}
	if d, ok := n.byNetns[key]; ok {
		return d.table, d.err
	}
	n.dumps++
	table, err := dumpSockets(netns.NsHandle(fd))
	n.byNetns[key] = dumped{table, err}
	return table, err
}

// dumpSockets dumps the TCP, UDP and unix sockets of the network namespace
// ns. What one dump could not give is in the error; the others are kept.
func dumpSockets(ns netns.NsHandle) (socketTable, error) {
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("opening sock_diag in its network namespace: %w", err)
	}
	defer s.Close()
	handles := map[int]*nl.SocketHandle{unix.NETLINK_SOCK_DIAG: {Socket: s}}
	table := make(socketTable)
	var errs []error
	for _, q := range []struct {
		name     string
		family   uint8
		protocol uint8
	}{
		{"tcp", unix.AF_INET, unix.IPPROTO_TCP},
		{"tcp6", unix.AF_INET6, unix.IPPROTO_TCP},
		{"udp", unix.AF_INET, unix.IPPROTO_UDP},
		{"udp6", unix.AF_INET6, unix.IPPROTO_UDP},
	} {
		err := dump(handles, inetRequest{q.family, q.protocol}, func(msg []byte) {
			if s, ok := parseInet(msg, q.protocol); ok {
				table[s.Inode] = s
			}
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("dumping %s sockets: %w", q.name, err))
		}
	}
	err = dump(handles, unixRequest{}, func(msg []byte) {
		if s, ok := parseUnix(msg); ok {
			table[s.Inode] = s
		}
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("dumping unix sockets: %w", err))
	}
	return table, errors.Join(errs...)
}

func dump(handles map[int]*nl.SocketHandle, data nl.NetlinkRequestData, add func(msg []byte)) error {
	for range dumpAttempts {
		req := nl.NewNetlinkRequest(nl.SOCK_DIAG_BY_FAMILY, unix.NLM_F_DUMP)
		req.Sockets = handles
		req.AddData(data)
		err := req.ExecuteIter(unix.NETLINK_SOCK_DIAG, nl.SOCK_DIAG_BY_FAMILY, func(msg []byte) bool {
			add(msg)
			return true
		})
		if !errors.Is(err, nl.ErrDumpInterrupted) {
			return err
		}
	}
	return nil
}

// inetRequest is an inet_diag_req_v2 for every socket of one family and protocol.
type inetRequest struct{ family, protocol uint8 }

func (r inetRequest) Len() int { return sizeofInetDiagReqV2 }

func (r inetRequest) Serialize() []byte {
	b := make([]byte, sizeofInetDiagReqV2)
	b[0], b[1] = r.family, r.protocol
	binary.NativeEndian.PutUint32(b[4:], allStates)
	return b
}

// unixRequest is a unix_diag_req for every unix socket, with its name and peer.
type unixRequest struct{}

func (unixRequest) Len() int { return sizeofUnixDiagReq }

func (unixRequest) Serialize() []byte {
	b := make([]byte, sizeofUnixDiagReq)
	b[0] = unix.AF_UNIX
	binary.NativeEndian.PutUint32(b[4:], allStates)
	binary.NativeEndian.PutUint32(b[12:], udiagShowName|udiagShowPeer)
	return b
}

// parseInet reads an inet_diag_msg. Ports and addresses are in network
// order; an AF_INET address is the first 4 of its 16 bytes.
func parseInet(msg []byte, protocol uint8) (Socket, bool) {
	if len(msg) < sizeofInetDiagMsg {
		return Socket{}, false
	}
	inode := binary.NativeEndian.Uint32(msg[68:])
	if inode == 0 {
		return Socket{}, false // a TIME_WAIT or request socket: no descriptor has it
	}
	s := Socket{Inode: uint64(inode), State: stateName(msg[1]), Proto: "udp"}
	if protocol == unix.IPPROTO_TCP {
		s.Proto = "tcp"
	}
	var src, dst netip.Addr
	switch msg[0] {
	case unix.AF_INET:
		s.Family = "AF_INET"
		src, dst = netip.AddrFrom4([4]byte(msg[8:12])), netip.AddrFrom4([4]byte(msg[24:28]))
	case unix.AF_INET6:
		s.Family = "AF_INET6"
		src, dst = netip.AddrFrom16([16]byte(msg[8:24])), netip.AddrFrom16([16]byte(msg[24:40]))
	default:
		return Socket{}, false
	}
	s.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(msg[4:]))
	s.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(msg[6:]))
	return s, true
}

var unixProtos = map[uint8]string{
	unix.SOCK_STREAM:    "unix_stream",
	unix.SOCK_DGRAM:     "unix_dgram",
	unix.SOCK_SEQPACKET: "unix_seqpacket",
}

// parseUnix reads a unix_diag_msg and its name and peer attributes.
func parseUnix(msg []byte) (Socket, bool) {
	if len(msg) < sizeofUnixDiagMsg || msg[0] != unix.AF_UNIX {
		return Socket{}, false
	}
	proto, ok := unixProtos[msg[1]]
	if !ok {
		return Socket{}, false
	}
	s := Socket{
		Inode:  uint64(binary.NativeEndian.Uint32(msg[4:])),
		Family: "AF_UNIX",
		Proto:  proto,
		State:  stateName(msg[2]),
	}
	attrs, err := nl.ParseRouteAttr(msg[sizeofUnixDiagMsg:])
	if err != nil {
		return s, true
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unixDiagName:
			s.Path = unixName(a.Value)
		case unixDiagPeer:
			if len(a.Value) >= 4 {
				s.Peer = uint64(binary.NativeEndian.Uint32(a.Value))
			}
		}
	}
	return s, true
}

// unixName copies a UNIX_DIAG_NAME: the sun_path bytes the socket was bound
// with. An abstract name (leading NUL) is every byte; a path is stored with
// its terminating NUL and ends at the first NUL, as connect records read it.
func unixName(v []byte) []byte {
	if len(v) > 0 && v[0] != 0 {
		if i := bytes.IndexByte(v, 0); i >= 0 {
			v = v[:i]
		}
	}
	if len(v) == 0 {
		return nil
	}
	return bytes.Clone(v)
}
