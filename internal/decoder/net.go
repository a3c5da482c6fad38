package decoder

import (
	"net/netip"
	"unsafe"

	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/record"
)

// The network records: connect, send, bind, listen and accept share one
// wire layout (net_event); sock_state and dns have their own.

func decodeNet(raw []byte, flags uint32, ev *record.Event) error {
	if len(raw) < NetSize {
		return malformed("net record of %d bytes", len(raw))
	}
	r := (*loader.NetEvent)(unsafe.Pointer(&raw[0]))
	if r.AddrLen > uint32(len(r.Addr)) {
		return malformed("net address length %d", r.AddrLen)
	}
	var sock record.SocketInfo
	hasSock := r.Nflags&loader.NetSock != 0
	if hasSock {
		if err := decodeSock(raw, int(unsafe.Offsetof(r.Sock)), &r.Sock, &sock); err != nil {
			return err
		}
	}
	start := int(unsafe.Offsetof(r.Addr))
	addr := record.ParseSockaddr(raw[start : start+int(r.AddrLen)])
	source := ""
	switch {
	case r.Nflags&loader.NetAddrKernel != 0:
		source = record.AddrKernel
	case r.Nflags&loader.NetAddrUser != 0:
		source = record.AddrUser
	}
	io := record.IOUring{UserData: r.UserData, SQEFlags: r.SqeFlags, CQESkipped: r.Nflags&loader.NetNoResult != 0}
	hasIO := r.Nflags&loader.NetIOUring != 0
	fileSlot := r.Nflags&loader.NetFixedFile != 0
	noResult := r.Nflags&loader.NetNoResult != 0
	unreadable := flags&loader.FlagAddrFault != 0
	syscall := syscallName(r.Syscall)
	switch ev.Kind {
	case loader.KindConnect, loader.KindBind:
		c := record.Connect{Syscall: syscall, Fd: r.Fd, FileSlot: fileSlot, Addrlen: r.Addrlen, Addr: addr, AddrSource: source,
			AddrUnreadable: unreadable, HasIOUring: hasIO, IOUring: io, HasSocket: hasSock, Socket: sock, Ret: r.Ret, NoResult: noResult}
		if ev.Kind == loader.KindConnect {
			ev.Connect = c
		} else {
			ev.Bind = record.Bind{Connect: c}
		}
	case loader.KindSend:
		ev.Send = record.Send{Syscall: syscall, Fd: r.Fd, FileSlot: fileSlot,
			HasMsgIndex: r.Nflags&loader.NetMsgIndex != 0, MsgIndex: r.MsgIndex,
			HasSize: r.Nflags&loader.NetSize != 0, Size: r.Size, Flags: r.Flags,
			Dest: addr, AddrSource: source, AddrUnreadable: unreadable, Fastopen: r.Nflags&loader.NetFastOpen != 0,
			HasIOUring: hasIO, IOUring: io, HasSocket: hasSock, Socket: sock, Ret: r.Ret, NoResult: noResult}
	case loader.KindListen:
		ev.Listen = record.Listen{Syscall: syscall, Fd: r.Fd, FileSlot: fileSlot, Backlog: r.Backlog,
			HasIOUring: hasIO, IOUring: io, HasSocket: hasSock, Socket: sock, Ret: r.Ret, NoResult: noResult}
	default: // loader.KindAccept
		ev.Accept = record.Accept{Syscall: syscall, Fd: r.Fd, FileSlot: fileSlot, Flags: r.Flags, NewFileSlot: r.Nflags&loader.NetFixedNew != 0,
			HasIOUring: hasIO, IOUring: io, HasSocket: hasSock, Socket: sock, Ret: r.Ret, NoResult: noResult}
	}
	return nil
}

// decodeSock fills s from si, the sock_info at offset off of raw.
func decodeSock(raw []byte, off int, si *loader.SockInfo, s *record.SocketInfo) error {
	name := func(n *loader.SockName, at uintptr) ([]byte, error) {
		if n.Len > uint32(len(n.Name)) {
			return nil, malformed("socket name length %d", n.Len)
		}
		start := off + int(at) + int(unsafe.Offsetof(n.Name))
		return raw[start : start+int(n.Len)], nil
	}
	local, err := name(&si.Local, unsafe.Offsetof(si.Local))
	if err != nil {
		return err
	}
	remote, err := name(&si.Remote, unsafe.Offsetof(si.Remote))
	if err != nil {
		return err
	}
	*s = record.SocketInfo{Cookie: si.Cookie, Family: si.Family, SockType: si.Type, Protocol: si.Protocol, State: si.State,
		Local: record.ParseSockaddr(local), Remote: record.ParseSockaddr(remote)}
	return nil
}

func decodeSockState(raw []byte, st *record.SockState) error {
	if len(raw) < SockStateSize {
		return malformed("sock_state record of %d bytes", len(raw))
	}
	r := (*loader.SockStateEvent)(unsafe.Pointer(&raw[0]))
	var sock record.SocketInfo
	if err := decodeSock(raw, int(unsafe.Offsetof(r.Sock)), &r.Sock, &sock); err != nil {
		return err
	}
	*st = record.SockState{Cookie: sock.Cookie, From: r.Oldstate, To: r.Newstate, Local: sock.Local, Remote: sock.Remote}
	if r.Error != 0 {
		st.Error = record.ErrnoName(int64(r.Error))
	}
	return nil
}

func decodeDNS(raw []byte, d *record.DNS) error {
	if len(raw) < DNSSize {
		return malformed("dns record of %d bytes", len(raw))
	}
	r := (*loader.DNSEvent)(unsafe.Pointer(&raw[0]))
	if r.CapLen > uint32(len(r.Payload)) || r.CapLen > r.PayloadLen {
		return malformed("dns payload of %d bytes, %d captured", r.PayloadLen, r.CapLen)
	}
	var src, dst netip.Addr
	switch r.Family {
	case 2: // AF_INET
		src, dst = netip.AddrFrom4([4]byte(r.Saddr[:4])), netip.AddrFrom4([4]byte(r.Daddr[:4]))
	case 10: // AF_INET6
		src, dst = netip.AddrFrom16(r.Saddr), netip.AddrFrom16(r.Daddr)
	default:
		return malformed("dns family %d", r.Family)
	}
	start := int(unsafe.Offsetof(r.Payload))
	// Its buffers are reused: only the members are set, never the whole.
	d.Cookie = r.Cookie
	d.SetPayload(raw[start:start+int(r.CapLen)], r.PayloadLen, r.Protocol == 6 /* IPPROTO_TCP */, r.Direction == loader.DNSIngress)
	client, server := netip.AddrPortFrom(src, r.Sport), netip.AddrPortFrom(dst, r.Dport)
	if d.Response {
		client, server = server, client
	}
	d.Client, d.Server = client, server
	return nil
}
