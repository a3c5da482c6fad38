package record

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/agenttrace/agenttrace/internal/loader"
)

// testSock is a TCP socket 127.0.0.1:40000 -> 93.184.216.34:443.
func testSock(state uint16) SocketInfo {
	return SocketInfo{Cookie: 4096, Family: 2, SockType: 1, Protocol: 6, State: state,
		Local: ParseSockaddr(sockaddr4([4]byte{127, 0, 0, 1}, 40000)), Remote: ParseSockaddr(sockaddr4([4]byte{93, 184, 216, 34}, 443))}
}

// dnsMsg is a DNS message: header, then the sections' bytes.
func dnsMsg(id, flags, qd, an uint16, sections ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, qd)
	b = binary.BigEndian.AppendUint16(b, an)
	b = append(b, 0, 0, 0, 0)
	for _, s := range sections {
		b = append(b, s...)
	}
	return b
}

// dnsEv is a dns event of a packet holding payload (payloadLen 0: just it)
// between 10.0.0.2:40000 and 10.0.0.1:53.
func dnsEv(response, tcp bool, payload []byte, payloadLen uint32) Event {
	if payloadLen == 0 {
		payloadLen = uint32(len(payload))
	}
	e := ev(KindDNS, agent, 0)
	e.DNS.Cookie = 77
	e.DNS.Client = netipAddrPort("10.0.0.2:40000")
	e.DNS.Server = netipAddrPort("10.0.0.1:53")
	e.DNS.SetPayload(payload, payloadLen, tcp, response)
	return e
}

var (
	// example.com A IN, and a name with a dot, a NUL and U+202E in labels.
	qExample = []byte("\x07example\x03com\x00\x00\x01\x00\x01")
	qHostile = []byte("\x03a.b\x04\x00nul\x06rtl\xe2\x80\xae\x00\x00\x10\x00\x01")
	aExample = []byte("\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x5d\xb8\xd8\x22")
)

func sendEv(flags uint32, s Send) Event {
	e := ev(KindSend, agent, flags)
	e.Send = s
	return e
}

func init() {
	recordCases = append(recordCases, []struct {
		name   string
		events []Event
		want   []string
	}{
		{
			name: "net_connect_kernel_socket",
			events: []Event{
				connectEv(0, Connect{Ret: -115, Syscall: "connect", Fd: 3, Addrlen: 16, Addr: ParseSockaddr(sockaddr4([4]byte{93, 184, 216, 34}, 443)),
					AddrSource: AddrKernel, HasSocket: true, Socket: testSock(2)}),
				connectEv(0, Connect{Ret: 0, Syscall: "io_uring_connect", Fd: 2, FileSlot: true, Addrlen: 16, Addr: ParseSockaddr(sockaddr4([4]byte{10, 0, 0, 1}, 80)),
					AddrSource: AddrKernel, HasIOUring: true, IOUring: IOUring{UserData: 7, SQEFlags: 1 | 1<<4}}),
			},
			want: []string{
				`"connect":{"syscall":"connect","fd":3,"addrlen":16,"family":"AF_INET","family_num":2,"addr":"93.184.216.34","port":443,"addr_source":"kernel","socket":{"cookie":4096,"family":"AF_INET","type":"SOCK_STREAM","protocol":"tcp","state":"SYN_SENT","local":{"addr":"127.0.0.1","port":40000},"remote":{"addr":"93.184.216.34","port":443}},"ret":-115,"errno":"EINPROGRESS"}}`,
				`"connect":{"syscall":"io_uring_connect","file_slot":2,"addrlen":16,"family":"AF_INET","family_num":2,"addr":"10.0.0.1","port":80,"addr_source":"kernel","io_uring":{"user_data":7,"sqe_flags":["IOSQE_FIXED_FILE","IOSQE_ASYNC"]},"ret":0}}`,
			},
		},
		{
			name: "net_send",
			events: []Event{
				sendEv(0, Send{Ret: 5, Syscall: "sendmmsg", Fd: 4, HasMsgIndex: true, MsgIndex: 2, Flags: 0x40, Dest: ParseSockaddr(sockaddr4([4]byte{10, 0, 0, 1}, 53)),
					AddrSource: AddrKernel}),
				sendEv(loader.FlagCompat, Send{Ret: 4, Syscall: "socketcall", Fd: 5, HasSize: true, Size: 4, Flags: 0x20000000,
					Dest: ParseSockaddr(sockaddr4([4]byte{127, 0, 0, 1}, 8080)), AddrSource: AddrKernel, Fastopen: true}),
				sendEv(0, Send{Ret: -14, Syscall: "sendto", Fd: 6, HasSize: true, Size: 1, AddrUnreadable: true}),
				sendEv(0, Send{Syscall: "io_uring_send", Fd: 7, HasSize: true, Size: 3, Flags: 0x4000, Dest: ParseSockaddr(sockaddrFamily(1, "\x00abs")),
					AddrSource: AddrKernel, HasIOUring: true, IOUring: IOUring{SQEFlags: 1 << 6, CQESkipped: true}, NoResult: true}),
			},
			want: []string{
				`"send":{"syscall":"sendmmsg","fd":4,"msg_index":2,"flags":["MSG_DONTWAIT"],"dest":{"family":"AF_INET","family_num":2,"addr":"10.0.0.1","port":53},"addr_source":"kernel","ret":5}}`,
				`"send":{"syscall":"socketcall","fd":5,"size":4,"flags":["MSG_FASTOPEN"],"dest":{"family":"AF_INET","family_num":2,"addr":"127.0.0.1","port":8080},"addr_source":"kernel","fastopen":true,"ret":4}}`,
				`"send":{"syscall":"sendto","fd":6,"size":1,"flags":[],"addr_unreadable":true,"ret":-14,"errno":"EFAULT"}}`,
				`"send":{"syscall":"io_uring_send","fd":7,"size":3,"flags":["MSG_NOSIGNAL"],"dest":{"family":"AF_UNIX","family_num":1,"unix_abstract":"abs"},"addr_source":"kernel","io_uring":{"user_data":0,"sqe_flags":["IOSQE_CQE_SKIP_SUCCESS"],"cqe_skipped":true}}}`,
			},
		},
		{
			name: "net_bind_listen_accept",
			events: []Event{
				func() Event {
					e := ev(KindBind, agent, 0)
					e.Bind = Bind{Connect{Ret: 0, Syscall: "bind", Fd: 3, Addrlen: 16, Addr: ParseSockaddr(sockaddr4([4]byte{0, 0, 0, 0}, 0)), AddrSource: AddrKernel,
						HasSocket: true, Socket: SocketInfo{Cookie: 9, Family: 2, SockType: 1, Protocol: 6, State: 7, Local: ParseSockaddr(sockaddr4([4]byte{0, 0, 0, 0}, 41000))}}}
					return e
				}(),
				func() Event {
					e := ev(KindListen, agent, 0)
					e.Listen = Listen{Ret: 0, Syscall: "listen", Fd: 3, Backlog: 128,
						HasSocket: true, Socket: SocketInfo{Cookie: 9, Family: 2, SockType: 1, Protocol: 6, State: 10, Local: ParseSockaddr(sockaddr4([4]byte{0, 0, 0, 0}, 41000))}}
					return e
				}(),
				func() Event {
					e := ev(KindAccept, agent, 0)
					e.Accept = Accept{Ret: 4, Syscall: "accept4", Fd: 3, Flags: 0x80000,
						HasSocket: true, Socket: SocketInfo{Family: 1, SockType: 1, State: 1, Local: ParseSockaddr(sockaddrFamily(1, "/run/x.sock\x00")), Remote: ParseSockaddr(sockaddrFamily(1, ""))}}
					return e
				}(),
				func() Event {
					e := ev(KindAccept, agent, 0)
					e.Accept = Accept{Ret: -11, Syscall: "accept", Fd: 3}
					return e
				}(),
			},
			want: []string{
				`"bind":{"syscall":"bind","fd":3,"addrlen":16,"family":"AF_INET","family_num":2,"addr":"0.0.0.0","port":0,"addr_source":"kernel","socket":{"cookie":9,"family":"AF_INET","type":"SOCK_STREAM","protocol":"tcp","state":"CLOSE","local":{"addr":"0.0.0.0","port":41000}},"ret":0}}`,
				`"listen":{"syscall":"listen","fd":3,"backlog":128,"socket":{"cookie":9,"family":"AF_INET","type":"SOCK_STREAM","protocol":"tcp","state":"LISTEN","local":{"addr":"0.0.0.0","port":41000}},"ret":0}}`,
				`"accept":{"syscall":"accept4","fd":3,"flags":["SOCK_CLOEXEC"],"new_fd":4,"socket":{"family":"AF_UNIX","type":"SOCK_STREAM","state":"ESTABLISHED","local":{"unix_path":"/run/x.sock"},"remote":{"unix_unnamed":true}},"ret":4}}`,
				`"accept":{"syscall":"accept","fd":3,"flags":[],"ret":-11,"errno":"EAGAIN"}}`,
			},
		},
		{
			name: "net_sock_state",
			events: []Event{
				sockStateEv(SockState{Cookie: 4096, From: 2, To: 1, Local: testSock(1).Local, Remote: testSock(1).Remote}),
				sockStateEv(SockState{Cookie: 4096, From: 2, To: 7, Error: "ECONNREFUSED", Local: testSock(7).Local, Remote: testSock(7).Remote}),
			},
			want: []string{
				`"sock_state":{"cookie":4096,"from":"SYN_SENT","to":"ESTABLISHED","local":{"addr":"127.0.0.1","port":40000},"remote":{"addr":"93.184.216.34","port":443}}}`,
				`"sock_state":{"cookie":4096,"from":"SYN_SENT","to":"CLOSE","local":{"addr":"127.0.0.1","port":40000},"remote":{"addr":"93.184.216.34","port":443},"error":"ECONNREFUSED"}}`,
			},
		},
		{
			name: "net_dns",
			events: []Event{
				dnsEv(false, false, dnsMsg(0x4100, 0x0100, 1, 0, qExample), 0),
				dnsEv(true, false, dnsMsg(0x4100, 0x8180, 1, 1, qExample, aExample), 0),
				dnsEv(false, false, dnsMsg(7, 0x0100, 1, 0, qHostile), 0),
				// TCP: a length prefix; the capture cut the message.
				dnsEv(false, true, append([]byte{0, 200}, dnsMsg(8, 0x0100, 1, 0, qExample)...), 600),
				dnsEv(true, false, dnsMsg(9, 0x8183, 1, 0, []byte{0xc0, 0x0c, 0, 1, 0, 1}), 0),
				dnsEv(true, false, []byte{1, 2}, 0),
			},
			want: []string{
				`"dns":{"direction":"query","transport":"udp","cookie":77,"client":{"addr":"10.0.0.2","port":40000},"server":{"addr":"10.0.0.1","port":53},"id":16640,"opcode":"QUERY","questions":[{"name":"example.com","type":"A","class":"IN"}]}}`,
				`"dns":{"direction":"response","transport":"udp","cookie":77,"client":{"addr":"10.0.0.2","port":40000},"server":{"addr":"10.0.0.1","port":53},"id":16640,"opcode":"QUERY","rcode":"NOERROR","questions":[{"name":"example.com","type":"A","class":"IN"}],"answers":[{"name":"example.com","type":"A","ttl":60,"data":"93.184.216.34"}]}}`,
				`"questions":[{"name":"a\\.b.\\000nul.rtl\\226\\128\\174","type":"TXT","class":"IN"}]}}`,
				`"dns":{"direction":"query","transport":"tcp","cookie":77,"client":{"addr":"10.0.0.2","port":40000},"server":{"addr":"10.0.0.1","port":53},"id":8,"opcode":"QUERY","questions":[{"name":"example.com","type":"A","class":"IN"}],"truncated":true}}`,
				`"rcode":"NXDOMAIN","malformed":"malformed DNS message: name pointer 12 at 12 does not point back"}}`,
				`"dns":{"direction":"response","transport":"udp","cookie":77,"client":{"addr":"10.0.0.2","port":40000},"server":{"addr":"10.0.0.1","port":53},"truncated":true}}`,
			},
		},
	}...)
}

func sockStateEv(st SockState) Event {
	e := ev(KindSockState, agent, 0)
	e.SockState = st
	return e
}

func netipAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// TestEncodeNetAllocs keeps the network records on the allocation-free hot
// path: a send with its socket, a DNS response parsed in full, an outcome.
func TestEncodeNetAllocs(t *testing.T) {
	enc := newTestEncoder()
	prev := sha256.Sum256([]byte("{}\n"))
	buf := make([]byte, 0, 4096)
	resp := dnsMsg(0x4100, 0x8180, 1, 1, qExample, aExample)
	for _, e := range []Event{
		sendEv(0, Send{Ret: 5, Syscall: "sendto", Fd: 4, HasSize: true, Size: 5, Dest: ParseSockaddr(sockaddr4([4]byte{10, 0, 0, 1}, 53)),
			AddrSource: AddrKernel, HasSocket: true, Socket: testSock(7)}),
		dnsEv(true, false, resp, 0),
		sockStateEv(SockState{Cookie: 4096, From: 2, To: 7, Error: "ECONNREFUSED", Local: testSock(7).Local, Remote: testSock(7).Remote}),
	} {
		buf = enc.AppendEvent(buf[:0], 1, &prev, &e)
		if n := testing.AllocsPerRun(200, func() {
			if e.Kind == KindDNS {
				e.DNS.SetPayload(resp, uint32(len(resp)), false, true)
			}
			buf = enc.AppendEvent(buf[:0], 1, &prev, &e)
		}); n != 0 {
			t.Errorf("AppendEvent of a %s record: %v allocs/op, want 0", KindName(e.Kind), n)
		}
	}
}
