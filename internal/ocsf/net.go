package ocsf

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/agenttrace/agenttrace/internal/dns"
	"github.com/agenttrace/agenttrace/internal/record"
)

// The network records: connect, send, bind, listen, accept and sock_state
// are Network Activity (4001); dns is DNS Activity (4003). The socket's
// cookie is connection_info.uid, so a SIEM links a connect, its sends, its
// outcome and the DNS traffic of its socket.

var dnsActivity = class{4003, "DNS Activity", 4, "Network Activity"}

// Network Activity and DNS Activity ids (OCSF 1.3.0 enums).
const (
	networkReset   = 3
	networkFail    = 4
	networkRefuse  = 5
	networkTraffic = 6
	networkListen  = 7

	dnsQuery    = 1
	dnsResponse = 2
)

func init() {
	activityNames[networkActivity][networkReset] = "Reset"
	activityNames[networkActivity][networkFail] = "Fail"
	activityNames[networkActivity][networkRefuse] = "Refuse"
	activityNames[networkActivity][networkTraffic] = "Traffic"
	activityNames[networkActivity][networkListen] = "Listen"
	activityNames[dnsActivity] = map[int]string{dnsQuery: "Query", dnsResponse: "Response"}
}

// addrText is how a message (and an endpoint's name, for what is not an IP
// endpoint) names an address.
func addrText(s *record.Sockaddr, unreadable bool) string {
	port := strconv.Itoa(int(s.Addr.Port()))
	switch ip, v := ipOf(s); {
	case v == 6:
		return "[" + ip.String() + "]:" + port
	case v == 4:
		return ip.String() + ":" + port
	case s.Unix == record.UnixPath:
		return s.UnixName
	case s.Unix == record.UnixAbstract:
		return "@" + s.UnixName // the usual notation of an abstract name
	case s.Unix == record.UnixUnnamed:
		return "unnamed AF_UNIX socket"
	case unreadable:
		return "unreadable address"
	case s.HasFamily && s.FamilyName() != "":
		return s.FamilyName()
	case s.HasFamily:
		return "address family " + strconv.Itoa(int(s.Family))
	}
	return "no address"
}

// classifyNet classifies send, bind, listen, accept, sock_state and dns;
// false for other records.
func (e *event) classifyNet() bool {
	r := e.r
	if r.Proc == nil {
		return false
	}
	pid := " (pid " + strconv.FormatUint(uint64(r.Proc.Pid), 10) + ")"
	switch x := r.Body.(type) {
	case *record.Send:
		e.class, e.activityID = networkActivity, networkTraffic
		e.status = statusOfRet(x.Ret)
		to := addrText(&x.Dest, x.AddrUnreadable)
		e.message = "send to " + to
		if x.Fastopen {
			e.message = "send (TCP Fast Open, a connection) to " + to
		}
		e.message += outcome(e.status) + pid
		if x.Ret >= 0 && !x.NoResult {
			e.message += ": " + plural(int(x.Ret), "byte")
		}
	case *record.Bind:
		e.class, e.activityID, e.activityName = networkActivity, activityOther, "Bind"
		e.status = statusOfRet(x.Ret)
		e.message = "bind " + addrText(&x.Addr, x.AddrUnreadable) + outcome(e.status) + pid
	case *record.Listen:
		e.class, e.activityID = networkActivity, networkListen
		e.status = statusOfRet(x.Ret)
		e.message = "listen on " + addrText(&x.Socket.Local, false) + outcome(e.status) + pid
	case *record.Accept:
		e.class, e.activityID = networkActivity, networkOpen
		e.status = statusOfRet(x.Ret)
		e.message = "accept on " + addrText(&x.Socket.Local, false)
		if x.Socket.Remote.HasFamily {
			e.message += " from " + addrText(&x.Socket.Remote, false)
		}
		e.message += outcome(e.status) + pid
	case *record.SockState:
		e.class = networkActivity
		to := addrText(&x.Remote, false)
		switch {
		case x.To == 1: // ESTABLISHED
			e.activityID = networkOpen
			e.status = status{set: true, id: statusSuccess}
			e.message = "connection to " + to + " established"
		case x.Error == "ECONNREFUSED":
			e.activityID = networkRefuse
			e.status = status{set: true, id: statusFailure, code: x.Error, detail: "connection refused"}
			e.message = "connection to " + to + " refused"
		case x.Error != "":
			e.activityID = networkFail
			e.status = status{set: true, id: statusFailure, code: x.Error}
			e.message = "connection to " + to + " failed: " + x.Error
		default:
			e.activityID = networkClose
			e.status = status{set: true, id: statusSuccess}
			e.message = "connection to " + to + " closed before it was established"
		}
		e.message += " (" + record.StateName(x.From) + " → " + record.StateName(x.To) + ", connected by pid " + strconv.FormatUint(uint64(r.Proc.Pid), 10) + ")"
	case *record.DNS:
		m := &x.Message
		e.class = dnsActivity
		e.status = status{set: true, id: statusSuccess}
		var names []string
		for _, q := range m.Questions {
			names = append(names, m.String(q.Name)+" "+dns.TypeName(q.Type))
		}
		asked := strings.Join(names, ", ")
		if asked == "" {
			asked = "(no question)"
		}
		if x.Response {
			e.activityID = dnsResponse
			rcode := dns.RcodeName(m.Rcode)
			e.message = "DNS response for " + asked + " from " + x.Server.String() + ": " + rcode
			var answers []string
			for _, a := range m.Answers {
				if !a.Hex {
					answers = append(answers, m.String(a.Data))
				}
			}
			if len(answers) > 0 {
				e.message += " " + strings.Join(answers, ", ")
			}
			if x.HasHeader && m.Rcode != 0 {
				e.status = status{set: true, id: statusFailure, code: rcode}
			}
		} else {
			e.activityID = dnsQuery
			e.message = "DNS query for " + asked + " to " + x.Server.String()
		}
		e.message += pid
		if x.Malformed != "" {
			e.status = status{set: true, id: statusFailure, code: "malformed", detail: x.Malformed}
		}
	default:
		return false
	}
	if e.activityID != activityOther {
		e.activityName = activityNames[e.class][e.activityID]
	}
	return true
}

// endpoint is one end of a network event: an address, or an ip and port.
type endpoint struct {
	addr       *record.Sockaddr
	unreadable bool
}

// appendNet appends the attributes of a network record: actor, endpoints,
// connection_info, and for dns the query and answers.
func (e *event) appendNet(b []byte) []byte {
	r := e.r
	b = appendActor(b, e.self())
	var src, dst endpoint
	var sock *record.SocketInfo
	protocol := ""
	direction := 2 // Outbound
	switch x := r.Body.(type) {
	case *record.Connect:
		dst = endpoint{&x.Addr, x.AddrUnreadable}
		if x.HasSocket {
			sock = &x.Socket
		}
	case *record.Send:
		dst = endpoint{&x.Dest, x.AddrUnreadable}
		if x.HasSocket {
			sock = &x.Socket
		}
	case *record.Bind:
		dst, direction = endpoint{&x.Addr, x.AddrUnreadable}, 0
		if x.HasSocket {
			sock = &x.Socket
		}
	case *record.Listen:
		dst, direction = endpoint{addr: &x.Socket.Local}, 1
		if x.HasSocket {
			sock = &x.Socket
		}
	case *record.Accept:
		dst, direction = endpoint{addr: &x.Socket.Local}, 1
		if x.HasSocket {
			sock = &x.Socket
			if x.Socket.Remote.HasFamily {
				src = endpoint{addr: &x.Socket.Remote}
			}
		}
	case *record.SockState:
		dst, src = endpoint{addr: &x.Remote}, endpoint{addr: &x.Local}
		sock = &record.SocketInfo{Cookie: x.Cookie}
	case *record.DNS:
		client, server := sockaddrOf(x.Client), sockaddrOf(x.Server)
		dst, src = endpoint{addr: &server}, endpoint{addr: &client}
		sock = &record.SocketInfo{Cookie: x.Cookie}
		protocol = "udp"
		if x.TCP {
			protocol = "tcp"
		}
	}
	if src.addr == nil && sock != nil && sock.Local.HasFamily && direction != 1 {
		src = endpoint{addr: &sock.Local}
	}
	if src.addr != nil {
		b = e.appendEndpoint(b, "src_endpoint", src)
	}
	b = e.appendEndpoint(b, "dst_endpoint", dst)
	b = append(appendKey(b, "connection_info"), '{')
	b = appendInt(b, "direction_id", int64(direction))
	b = appendString(b, "direction", []string{"Unknown", "Inbound", "Outbound"}[direction])
	if dst.addr != nil {
		if _, v := ipOf(dst.addr); v != 0 {
			b = appendInt(b, "protocol_ver_id", int64(v))
			b = appendString(b, "protocol_ver", ipVersionNames[v])
		}
	}
	if sock != nil && protocol == "" && (sock.Family == 2 || sock.Family == 10) {
		protocol = record.ProtocolName(sock.Protocol)
	}
	if protocol != "" {
		b = appendString(b, "protocol_name", protocol)
	}
	if sock != nil && sock.Cookie != 0 {
		b = appendString(b, "uid", strconv.FormatUint(sock.Cookie, 10))
	}
	b = append(b, '}')
	if x, ok := r.Body.(*record.DNS); ok {
		b = e.appendDNS(b, x)
	}
	return b
}

// appendEndpoint appends a network_endpoint: ip and port, or a name for
// what is not an IP endpoint.
func (e *event) appendEndpoint(b []byte, key string, ep endpoint) []byte {
	b = append(appendKey(b, key), '{')
	if ep.addr == nil {
		b = appendString(b, "name", "no address")
		return append(b, '}')
	}
	if ip, _ := ipOf(ep.addr); ip.IsValid() {
		port := strconv.Itoa(int(ep.addr.Addr.Port()))
		b = appendString(b, "ip", ip.String())
		b = appendInt(b, "port", int64(ep.addr.Addr.Port()))
		e.observe(key+".ip", observableIP, ip.String())
		e.observe(key+".port", observablePort, port)
	} else {
		b = appendString(b, "name", addrText(ep.addr, ep.unreadable))
	}
	return append(b, '}')
}

var (
	rcodeOCSF = map[int]string{0: "NoError", 1: "FormError", 2: "ServError", 3: "NXDomain", 4: "NotImp", 5: "Refused", 6: "YXDomain", 7: "YXRRSet", 8: "NXRRSet", 9: "NotAuth", 10: "NotZone", 99: "Other"}
	opcodes   = map[int]string{0: "Query", 1: "Inverse Query", 2: "Status", 4: "Notify", 5: "Update", 99: "Other"}
)

// appendDNS appends query, answers and rcode of a dns record.
func (e *event) appendDNS(b []byte, x *record.DNS) []byte {
	m := &x.Message
	// query.hostname is a hostname_t: a name that is not one (escaped
	// bytes, an underscore) stays in the message and the native record.
	if len(m.Questions) > 0 && validHostname(m.String(m.Questions[0].Name)) {
		q := m.Questions[0]
		name := m.String(q.Name)
		b = append(appendKey(b, "query"), '{')
		b = appendString(b, "hostname", name)
		b = appendString(b, "type", dns.TypeName(q.Type))
		b = appendString(b, "class", dns.ClassName(q.Class))
		if x.HasHeader {
			id := int(m.Opcode)
			if _, ok := opcodes[id]; !ok {
				id = 99
			}
			b = appendInt(b, "opcode_id", int64(id))
			b = appendString(b, "opcode", opcodes[id])
			b = appendInt(b, "packet_uid", int64(m.ID))
		}
		b = append(b, '}')
		e.observe("query.hostname", observableHostname, name)
	}
	if len(m.Answers) > 0 {
		b = append(appendKey(b, "answers"), '[')
		for i, a := range m.Answers {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			b = appendString(b, "rdata", m.String(a.Data))
			b = appendString(b, "type", dns.TypeName(a.Type))
			b = appendInt(b, "ttl", int64(a.TTL))
			if x.HasHeader {
				b = appendInt(b, "packet_uid", int64(m.ID))
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if x.Response && x.HasHeader {
		id := int(m.Rcode)
		if _, ok := rcodeOCSF[id]; !ok {
			id = 99
		}
		b = appendInt(b, "rcode_id", int64(id))
		b = appendString(b, "rcode", rcodeOCSF[id])
	}
	return b
}

// sockaddrOf is an IP endpoint as a record.Sockaddr.
func sockaddrOf(ap netip.AddrPort) record.Sockaddr {
	family := uint16(2) // AF_INET
	if ap.Addr().Is6() {
		family = 10 // AF_INET6
	}
	return record.Sockaddr{Family: family, HasFamily: true, Addr: ap}
}
