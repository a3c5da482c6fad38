package record

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/dns"
)

// The network records: connect (kernel.go), send, bind, listen, accept,
// sock_state and dns, with the socket object they share (docs/schema.md).

// SocketInfo is a socket as the kernel holds it (its struct sock, read in the
// kernel): "socket".
type SocketInfo struct {
	Cookie   uint64 // 0: none assigned yet
	Family   uint16
	SockType uint16 // SOCK_STREAM, SOCK_DGRAM…
	Protocol uint16 // inet: IPPROTO_*
	State    uint16 // sk_state: TCP_* numbers, also for UDP and unix
	Local    Sockaddr
	Remote   Sockaddr
}

func (s *SocketInfo) append(b []byte) []byte {
	b = append(appendKey(b, "socket"), '{')
	if s.Cookie != 0 {
		b = appendUint(b, "cookie", s.Cookie)
	}
	if name, ok := familyNames[s.Family]; ok {
		b = appendASCII(b, "family", name)
	} else {
		b = appendUint(b, "family_num", uint64(s.Family))
	}
	b = appendASCII(b, "type", SockTypeName(s.SockType))
	if s.Family == unix.AF_INET || s.Family == unix.AF_INET6 {
		b = appendASCII(b, "protocol", ProtocolName(s.Protocol))
	}
	b = appendASCII(b, "state", StateName(uint32(s.State)))
	if s.Local.HasFamily {
		b = s.Local.appendAddr(b, "local")
	}
	if s.Remote.HasFamily {
		b = s.Remote.appendAddr(b, "remote")
	}
	return append(b, '}')
}

func (s *SocketInfo) decode(r *reader) {
	s.Cookie = r.uint("cookie")
	if name := r.string("family"); name != "" {
		s.Family = familyNumber(name)
	} else {
		s.Family = uint16(r.uint("family_num"))
	}
	s.SockType = uint16(nameNumber(sockTypeNames[:], "SOCK_", r.string("type")))
	if p := r.string("protocol"); p != "" {
		s.Protocol = protocolNumber(p)
	}
	s.State = uint16(nameNumber(stateNames[:], "STATE_", r.string("state")))
	s.Local.decodeAddr(r.object("local"), s.Family)
	s.Remote.decodeAddr(r.object("remote"), s.Family)
}

// appendAddr appends "key": the address as an ADDR object: {"addr","port"}
// for inet, {"unix_path"}, {"unix_abstract"} or {"unix_unnamed":true} for
// unix, {"family_num"} otherwise.
func (s *Sockaddr) appendAddr(b []byte, key string) []byte {
	b = append(appendKey(b, key), '{')
	switch {
	case s.Addr.IsValid():
		b = append(appendKey(b, "addr"), '"')
		b = append(s.Addr.Addr().AppendTo(b), '"')
		b = appendUint(b, "port", uint64(s.Addr.Port()))
	case s.Unix == UnixPath:
		b = AppendString(b, "unix_path", s.UnixName)
	case s.Unix == UnixAbstract:
		b = AppendString(b, "unix_abstract", s.UnixName)
	case s.Unix == UnixUnnamed:
		b = appendBool(b, "unix_unnamed", true)
	default:
		b = appendUint(b, "family_num", uint64(s.Family))
	}
	return append(b, '}')
}

// decodeAddr reads an ADDR object of a socket of family; r nil: none.
func (s *Sockaddr) decodeAddr(r *reader, family uint16) {
	*s = Sockaddr{}
	if r == nil {
		return
	}
	s.HasFamily, s.Family = true, family
	switch {
	case r.o.has("addr"):
		ip, err := netip.ParseAddr(r.string("addr"))
		if err != nil {
			r.fail(fmt.Errorf("addr: %w", err))
		}
		s.Addr = netip.AddrPortFrom(ip, uint16(r.uint("port")))
	case r.o.has("unix_path"):
		s.Unix, s.UnixName = UnixPath, r.bytes("unix_path")
	case r.o.has("unix_abstract"):
		s.Unix, s.UnixName = UnixAbstract, r.bytes("unix_abstract")
	case r.bool("unix_unnamed"):
		s.Unix = UnixUnnamed
	default:
		s.Family = uint16(r.uint("family_num"))
	}
}

// IOUring is the io_uring request a record was made through: "io_uring".
type IOUring struct {
	UserData uint64
	SQEFlags uint32 // IOSQE_*
	// CQESkipped: IOSQE_CQE_SKIP_SUCCESS; the record was made at submission,
	// since a success posts no completion, and has no result.
	CQESkipped bool
}

func (u *IOUring) append(b []byte) []byte {
	b = append(appendKey(b, "io_uring"), '{')
	b = appendUint(b, "user_data", u.UserData)
	b = appendFlagNames(appendKey(b, "sqe_flags"), sqeFlagNames, uint64(u.SQEFlags))
	if u.CQESkipped {
		b = appendBool(b, "cqe_skipped", true)
	}
	return append(b, '}')
}

func (u *IOUring) decode(r *reader) {
	u.UserData = r.uint("user_data")
	var flags []string
	r.into("sqe_flags", &flags)
	u.SQEFlags = uint32(flagBits(sqeFlagNames, flags))
	u.CQESkipped = r.bool("cqe_skipped")
}

// Where an address came from (AddrSource).
const (
	AddrKernel = "kernel" // the kernel's own copy (a cgroup sock_addr hook, or io_uring's request)
	AddrUser   = "user"   // read once from the caller's memory at syscall entry
)

// The members every socket record has around its own: syscall and fd
// first; io_uring, socket and the result last.

func appendNetHead(b []byte, syscall string, fd int32, fileSlot bool) []byte {
	b = appendSyscall(b, syscall)
	if fileSlot {
		return appendInt(b, "file_slot", int64(fd))
	}
	return appendInt(b, "fd", int64(fd))
}

func appendNetTail(b []byte, io *IOUring, sock *SocketInfo, ret int64, noResult bool) []byte {
	if io != nil {
		b = io.append(b)
	}
	if sock != nil {
		b = sock.append(b)
	}
	if noResult {
		return b
	}
	return appendResult(b, ret)
}

func decodeNetHead(r *reader, syscall *string, fd *int32, fileSlot *bool) {
	*syscall = r.string("syscall")
	if r.o.has("file_slot") {
		*fileSlot, *fd = true, int32(r.int("file_slot"))
	} else {
		*fd = int32(r.int("fd"))
	}
}

func decodeNetTail(r *reader, hasIO *bool, io *IOUring, hasSock *bool, sock *SocketInfo, ret *int64, noResult *bool) {
	if u := r.object("io_uring"); u != nil {
		*hasIO = true
		io.decode(u)
		r.done(u)
		*noResult = io.CQESkipped
	}
	if s := r.object("socket"); s != nil {
		*hasSock = true
		sock.decode(s)
		r.done(s)
	}
	*ret = r.int("ret")
}

// ioPtr and sockPtr are the optional members, nil when absent.
func ioPtr(has bool, io *IOUring) *IOUring {
	if has {
		return io
	}
	return nil
}

func sockPtr(has bool, s *SocketInfo) *SocketInfo {
	if has {
		return s
	}
	return nil
}

func appendAddrSource(b []byte, source string, unreadable bool) []byte {
	if source != "" {
		b = appendASCII(b, "addr_source", source)
	}
	if unreadable {
		b = appendBool(b, "addr_unreadable", true)
	}
	return b
}

// Send is one message that named a destination (sendto, sendmsg, each
// message of sendmmsg, io_uring SEND/SENDMSG), or a TCP Fast Open.
type Send struct {
	Syscall        string
	Fd             int32
	FileSlot       bool // io_uring IOSQE_FIXED_FILE: Fd is a registered file slot
	HasMsgIndex    bool // sendmmsg
	MsgIndex       uint32
	HasSize        bool // sendto, io_uring send: the length passed
	Size           uint64
	Flags          uint32 // MSG_*
	Dest           Sockaddr
	AddrSource     string
	AddrUnreadable bool
	Fastopen       bool
	HasIOUring     bool
	IOUring        IOUring
	HasSocket      bool
	Socket         SocketInfo
	Ret            int64 // bytes sent, or -errno
	NoResult       bool  // io_uring with IOSQE_CQE_SKIP_SUCCESS: no Ret
}

// Type is "send".
func (*Send) Type() string { return "send" }

func (s *Send) appendBody(b []byte) []byte {
	b = appendNetHead(b, s.Syscall, s.Fd, s.FileSlot)
	if s.HasMsgIndex {
		b = appendUint(b, "msg_index", uint64(s.MsgIndex))
	}
	if s.HasSize {
		b = appendUint(b, "size", s.Size)
	}
	b = appendFlagNames(appendKey(b, "flags"), msgFlagNames, uint64(s.Flags))
	if s.Dest.HasFamily {
		b = append(appendKey(b, "dest"), '{')
		b = append(s.Dest.appendMembers(b), '}')
	}
	b = appendAddrSource(b, s.AddrSource, s.AddrUnreadable)
	if s.Fastopen {
		b = appendBool(b, "fastopen", true)
	}
	return appendNetTail(b, ioPtr(s.HasIOUring, &s.IOUring), sockPtr(s.HasSocket, &s.Socket), s.Ret, s.NoResult)
}

func (s *Send) decode(r *reader) {
	decodeNetHead(r, &s.Syscall, &s.Fd, &s.FileSlot)
	s.HasMsgIndex, s.MsgIndex = r.o.has("msg_index"), r.uint32("msg_index")
	s.HasSize, s.Size = r.o.has("size"), r.uint("size")
	var flags []string
	r.into("flags", &flags)
	s.Flags = uint32(flagBits(msgFlagNames, flags))
	if d := r.object("dest"); d != nil {
		s.Dest.decodeMembers(d)
		r.done(d)
	}
	s.AddrSource, s.AddrUnreadable = r.string("addr_source"), r.bool("addr_unreadable")
	s.Fastopen = r.bool("fastopen")
	decodeNetTail(r, &s.HasIOUring, &s.IOUring, &s.HasSocket, &s.Socket, &s.Ret, &s.NoResult)
}

// Bind is a bind: the members of a connect record (the address requested;
// the socket has the address the kernel bound).
type Bind struct{ Connect }

// Type is "bind".
func (*Bind) Type() string { return "bind" }

// Listen is a listen.
type Listen struct {
	Syscall    string
	Fd         int32
	FileSlot   bool
	Backlog    int32
	HasIOUring bool
	IOUring    IOUring
	HasSocket  bool
	Socket     SocketInfo
	Ret        int64
	NoResult   bool
}

// Type is "listen".
func (*Listen) Type() string { return "listen" }

func (l *Listen) appendBody(b []byte) []byte {
	b = appendNetHead(b, l.Syscall, l.Fd, l.FileSlot)
	b = appendInt(b, "backlog", int64(l.Backlog))
	return appendNetTail(b, ioPtr(l.HasIOUring, &l.IOUring), sockPtr(l.HasSocket, &l.Socket), l.Ret, l.NoResult)
}

func (l *Listen) decode(r *reader) {
	decodeNetHead(r, &l.Syscall, &l.Fd, &l.FileSlot)
	l.Backlog = int32(r.int("backlog"))
	decodeNetTail(r, &l.HasIOUring, &l.IOUring, &l.HasSocket, &l.Socket, &l.Ret, &l.NoResult)
}

// Accept is an accept: the socket is the new connection.
type Accept struct {
	Syscall     string
	Fd          int32 // the listening socket
	FileSlot    bool
	Flags       uint32 // accept4: SOCK_*
	NewFileSlot bool   // io_uring: the new connection went into a registered file slot (Ret)
	HasIOUring  bool
	IOUring     IOUring
	HasSocket   bool
	Socket      SocketInfo // the new connection
	Ret         int64      // the new fd (or slot), or -errno
	NoResult    bool
}

// Type is "accept".
func (*Accept) Type() string { return "accept" }

func (a *Accept) appendBody(b []byte) []byte {
	b = appendNetHead(b, a.Syscall, a.Fd, a.FileSlot)
	b = appendFlagNames(appendKey(b, "flags"), sockFlagNames, uint64(a.Flags))
	if a.Ret >= 0 && !a.NoResult {
		if a.NewFileSlot {
			b = appendInt(b, "new_file_slot", a.Ret)
		} else {
			b = appendInt(b, "new_fd", a.Ret)
		}
	}
	return appendNetTail(b, ioPtr(a.HasIOUring, &a.IOUring), sockPtr(a.HasSocket, &a.Socket), a.Ret, a.NoResult)
}

func (a *Accept) decode(r *reader) {
	decodeNetHead(r, &a.Syscall, &a.Fd, &a.FileSlot)
	var flags []string
	r.into("flags", &flags)
	a.Flags = uint32(flagBits(sockFlagNames, flags))
	a.NewFileSlot = r.o.has("new_file_slot")
	decodeNetTail(r, &a.HasIOUring, &a.IOUring, &a.HasSocket, &a.Socket, &a.Ret, &a.NoResult)
}

// SockState is how a TCP socket whose connect was recorded left SYN_SENT.
// The record's proc is the process that connected.
type SockState struct {
	Cookie   uint64
	From, To uint32 // TCP states
	Local    Sockaddr
	Remote   Sockaddr
	Error    string // the socket's error at the change (ECONNREFUSED…); "" for none
}

// Type is "sock_state".
func (*SockState) Type() string { return "sock_state" }

func (s *SockState) appendBody(b []byte) []byte {
	b = appendUint(b, "cookie", s.Cookie)
	b = appendASCII(b, "from", StateName(s.From))
	b = appendASCII(b, "to", StateName(s.To))
	if s.Local.HasFamily {
		b = s.Local.appendAddr(b, "local")
	}
	if s.Remote.HasFamily {
		b = s.Remote.appendAddr(b, "remote")
	}
	if s.Error != "" {
		b = appendASCII(b, "error", s.Error)
	}
	return b
}

func (s *SockState) decode(r *reader) {
	s.Cookie = r.uint("cookie")
	s.From = nameNumber(stateNames[:], "STATE_", r.string("from"))
	s.To = nameNumber(stateNames[:], "STATE_", r.string("to"))
	family := uint16(unix.AF_INET)
	if l := r.object("local"); l != nil {
		if ip, err := netip.ParseAddr(l.string("addr")); err == nil && ip.Is6() {
			family = unix.AF_INET6
		}
		s.Local.decodeAddr(l, family)
		r.done(l)
	}
	if rm := r.object("remote"); rm != nil {
		s.Remote.decodeAddr(rm, family)
		r.done(rm)
	}
	s.Error = r.string("error")
}

// DNS is a DNS message of a traced socket, from the kernel's copy of the
// packet: the message's header, questions and answers (in Message, names
// in presentation form). The record's proc is the socket's owner.
type DNS struct {
	Response  bool // the QR bit (the packet's direction when too short to tell)
	TCP       bool
	Cookie    uint64
	Client    netip.AddrPort
	Server    netip.AddrPort
	HasHeader bool // the message had its id, opcode and rcode
	Message   dns.Message
	Truncated bool   // longer than captured or than the packet holds
	Malformed string // why parsing stopped
}

// Type is "dns".
func (*DNS) Type() string { return "dns" }

// SetPayload parses the DNS payload of a packet: payload is what was
// captured of the payloadLen bytes the packet held (after the UDP or TCP
// header; TCP starts with the two-byte length). response is the packet's
// direction (ingress), for a message too short to say.
func (d *DNS) SetPayload(payload []byte, payloadLen uint32, tcp, response bool) {
	d.TCP, d.Response = tcp, response
	d.Truncated = uint32(len(payload)) < payloadLen
	d.Malformed = ""
	if tcp {
		// A TCP segment that does not start a message is malformed here.
		if len(payload) < 2 {
			dns.Parse(nil, &d.Message)
			d.HasHeader, d.Truncated = false, true
			return
		}
		n := int(payload[0])<<8 | int(payload[1])
		payload = payload[2:]
		if n < len(payload) {
			payload = payload[:n]
		} else if n > len(payload) {
			d.Truncated = true
		}
	}
	err := dns.Parse(payload, &d.Message)
	d.HasHeader = len(payload) >= 4
	if d.HasHeader {
		d.Response = d.Message.Response
	}
	switch {
	case errors.Is(err, dns.ErrTruncated):
		d.Truncated = true
	case err != nil:
		d.Malformed = err.Error()
	}
}

func (d *DNS) appendBody(b []byte) []byte {
	m := &d.Message
	if d.Response {
		b = appendASCII(b, "direction", "response")
	} else {
		b = appendASCII(b, "direction", "query")
	}
	if d.TCP {
		b = appendASCII(b, "transport", "tcp")
	} else {
		b = appendASCII(b, "transport", "udp")
	}
	b = appendUint(b, "cookie", d.Cookie)
	b = appendEndpoint(b, "client", d.Client)
	b = appendEndpoint(b, "server", d.Server)
	if d.HasHeader {
		b = appendUint(b, "id", uint64(m.ID))
		b = appendASCII(b, "opcode", dns.OpcodeName(m.Opcode))
		if d.Response {
			b = appendASCII(b, "rcode", dns.RcodeName(m.Rcode))
		}
	}
	if len(m.Questions) > 0 {
		b = append(appendKey(b, "questions"), '[')
		for i, q := range m.Questions {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			b = AppendBytes(b, "name", m.Bytes(q.Name))
			b = appendASCII(b, "type", dns.TypeName(q.Type))
			b = appendASCII(b, "class", dns.ClassName(q.Class))
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(m.Answers) > 0 {
		b = append(appendKey(b, "answers"), '[')
		for i, a := range m.Answers {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			b = AppendBytes(b, "name", m.Bytes(a.Name))
			b = appendASCII(b, "type", dns.TypeName(a.Type))
			b = appendUint(b, "ttl", uint64(a.TTL))
			if a.Hex {
				b = AppendBytes(b, "data_hex", m.Bytes(a.Data))
			} else {
				b = AppendBytes(b, "data", m.Bytes(a.Data))
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if d.Truncated {
		b = appendBool(b, "truncated", true)
	} else if d.Malformed != "" {
		b = AppendString(b, "malformed", d.Malformed)
	}
	return b
}

func (d *DNS) decode(r *reader) {
	d.Response, d.TCP = r.string("direction") == "response", r.string("transport") == "tcp"
	d.Cookie = r.uint("cookie")
	d.Client, d.Server = decodeEndpoint(r, "client"), decodeEndpoint(r, "server")
	m := &d.Message
	*m = dns.Message{}
	d.HasHeader = r.o.has("id")
	m.ID = uint16(r.uint("id"))
	m.Response = d.Response
	m.Opcode = uint8(nameNumber(opcodeNames, "OPCODE", r.string("opcode")))
	m.Rcode = uint8(nameNumber(rcodeNames, "RCODE", r.string("rcode")))
	var qs []struct {
		Name  string `json:"name"`
		Type  string `json:"type"`
		Class string `json:"class"`
	}
	r.into("questions", &qs)
	for _, q := range qs {
		m.Questions = append(m.Questions, dns.Question{Name: m.AddText(q.Name), Type: dns.TypeNumber(q.Type), Class: dns.ClassNumber(q.Class)})
	}
	var as []struct {
		Name    string `json:"name"`
		Type    string `json:"type"`
		TTL     uint32 `json:"ttl"`
		Data    string `json:"data"`
		DataHex string `json:"data_hex"`
	}
	r.into("answers", &as)
	for _, a := range as {
		ans := dns.Answer{Name: m.AddText(a.Name), Type: dns.TypeNumber(a.Type), Class: 1, TTL: a.TTL}
		if a.DataHex != "" || a.Data == "" {
			ans.Data, ans.Hex = m.AddText(a.DataHex), true
		} else {
			ans.Data = m.AddText(a.Data)
		}
		m.Answers = append(m.Answers, ans)
	}
	m.QDCount, m.ANCount = uint16(len(m.Questions)), uint16(len(m.Answers))
	d.Truncated, d.Malformed = r.bool("truncated"), r.string("malformed")
}

func appendEndpoint(b []byte, key string, ap netip.AddrPort) []byte {
	b = append(appendKey(b, key), '{')
	b = append(appendKey(b, "addr"), '"')
	b = append(ap.Addr().AppendTo(b), '"')
	b = appendUint(b, "port", uint64(ap.Port()))
	return append(b, '}')
}

func decodeEndpoint(r *reader, key string) netip.AddrPort {
	o := r.object(key)
	if o == nil {
		return netip.AddrPort{}
	}
	ip, err := netip.ParseAddr(o.string("addr"))
	if err != nil {
		r.fail(fmt.Errorf("%s.addr: %w", key, err))
	}
	ap := netip.AddrPortFrom(ip, uint16(o.uint("port")))
	r.done(o)
	return ap
}

var stateNames = [...]string{"", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
	"CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV", "BOUND_INACTIVE"}

// StateName names a kernel socket state (TCP_* without the prefix), or STATE_<n>.
func StateName(s uint32) string {
	if s > 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "STATE_" + strconv.FormatUint(uint64(s), 10)
}

var sockTypeNames = [...]string{"", "SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW", "SOCK_RDM", "SOCK_SEQPACKET", "SOCK_DCCP",
	"", "", "", "SOCK_PACKET"}

// SockTypeName names a socket type (SOCK_STREAM…), or SOCK_<n>.
func SockTypeName(t uint16) string {
	if int(t) < len(sockTypeNames) && sockTypeNames[t] != "" {
		return sockTypeNames[t]
	}
	return "SOCK_" + strconv.Itoa(int(t))
}

var protocolNames = map[uint16]string{
	0: "ip", unix.IPPROTO_ICMP: "icmp", unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp", unix.IPPROTO_ICMPV6: "icmpv6",
	unix.IPPROTO_SCTP: "sctp", unix.IPPROTO_UDPLITE: "udplite", unix.IPPROTO_RAW: "raw", unix.IPPROTO_MPTCP: "mptcp",
}

// ProtocolName names an inet socket's protocol (tcp, udp…), or IPPROTO_<n>.
func ProtocolName(p uint16) string {
	if name, ok := protocolNames[p]; ok {
		return name
	}
	return "IPPROTO_" + strconv.Itoa(int(p))
}

func protocolNumber(name string) uint16 {
	for n, s := range protocolNames {
		if s == name {
			return n
		}
	}
	v, _ := strconv.Atoi(strings.TrimPrefix(name, "IPPROTO_"))
	return uint16(v)
}

func familyNumber(name string) uint16 {
	for n, s := range familyNames {
		if s == name {
			return n
		}
	}
	return 0
}

// nameNumber is the index of name in names, or the number after prefix.
func nameNumber(names []string, prefix, name string) uint32 {
	for i, s := range names {
		if s != "" && s == name {
			return uint32(i)
		}
	}
	v, _ := strconv.ParseUint(strings.TrimPrefix(name, prefix), 10, 32)
	return uint32(v)
}

var (
	opcodeNames = []string{"QUERY", "IQUERY", "STATUS", "", "NOTIFY", "UPDATE"}
	rcodeNames  = []string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"}
)

// MSG_* flags of send(2).
var msgFlagNames = []flagName{
	{unix.MSG_OOB, "MSG_OOB"},
	{unix.MSG_DONTROUTE, "MSG_DONTROUTE"},
	{unix.MSG_DONTWAIT, "MSG_DONTWAIT"},
	{unix.MSG_EOR, "MSG_EOR"},
	{unix.MSG_CONFIRM, "MSG_CONFIRM"},
	{unix.MSG_NOSIGNAL, "MSG_NOSIGNAL"},
	{unix.MSG_MORE, "MSG_MORE"},
	{unix.MSG_BATCH, "MSG_BATCH"},
	{unix.MSG_ZEROCOPY, "MSG_ZEROCOPY"},
	{unix.MSG_FASTOPEN, "MSG_FASTOPEN"},
	{unix.MSG_CMSG_CLOEXEC, "MSG_CMSG_CLOEXEC"},
	{0x80000000, "MSG_CMSG_COMPAT"},
}

// SOCK_* flags of accept4(2).
var sockFlagNames = []flagName{
	{unix.SOCK_NONBLOCK, "SOCK_NONBLOCK"},
	{unix.SOCK_CLOEXEC, "SOCK_CLOEXEC"},
}

// IOSQE_* flags of an io_uring submission.
var sqeFlagNames = []flagName{
	{1 << 0, "IOSQE_FIXED_FILE"},
	{1 << 1, "IOSQE_IO_DRAIN"},
	{1 << 2, "IOSQE_IO_LINK"},
	{1 << 3, "IOSQE_IO_HARDLINK"},
	{1 << 4, "IOSQE_ASYNC"},
	{1 << 5, "IOSQE_BUFFER_SELECT"},
	{1 << 6, "IOSQE_CQE_SKIP_SUCCESS"},
}
