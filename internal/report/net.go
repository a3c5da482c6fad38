package report

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/agenttrace/agenttrace/internal/dns"
	"github.com/agenttrace/agenttrace/internal/record"
)

// The network records of a log, as a reader wants them: each connect with
// the name it was resolved from (the DNS answers seen before it) and, for a
// non-blocking connect, its outcome (the sock_state record of its socket);
// sends to a destination, binds, listens, accepts and DNS questions with
// their answers.

// Net is one network action of a process (not a connect), with how often.
type Net struct {
	Kind   string `json:"kind"` // send, bind, listen, accept, dns
	Text   string `json:"text"`
	Result string `json:"result"`
	Count  int    `json:"count"`
	Seq    uint64 `json:"seq"`
}

// netObs is one network record of a process, resolved into a line when its
// session ends (a connect's outcome may come after it).
type netObs struct {
	kind, text, result string
	cookie             uint64 // a connect in progress: its outcome comes from this socket's sock_state
	dnsKey             string // a DNS query: its answer comes from the response with this key
	seq                uint64
}

// netState is what a session's network records tell about each other.
type netState struct {
	names    map[string][]string // IP address → the names DNS answers gave it, in order
	outcomes map[uint64]string   // socket cookie → how its connect ended
	answers  map[string]string   // dns cookie/id → the answers
}

func (s *Session) net() *netState {
	if s.netState == nil {
		s.netState = &netState{names: map[string][]string{}, outcomes: map[uint64]string{}, answers: map[string]string{}}
	}
	return s.netState
}

// named appends " (name)" when DNS answers earlier in the session named
// the address (" (name1, name2)" for several).
func (n *netState) named(text string, a *record.Sockaddr) string {
	if !a.Addr.IsValid() {
		return text
	}
	if names := n.names[a.Addr.Addr().Unmap().String()]; len(names) > 0 {
		return text + " (" + strings.Join(names, ", ") + ")"
	}
	return text
}

func result(ret int64) string {
	switch errno := record.Errno(ret); {
	case ret >= 0:
		return "ok"
	case errno != "":
		return errno
	}
	return "ret " + strconv.FormatInt(ret, 10)
}

// addrText is an address as show writes it: 1.2.3.4:80, [::1]:80, unix:/path.
func addrText(a *record.Sockaddr, unreadable bool) string {
	if unreadable && !a.HasFamily {
		return "(address unreadable)"
	}
	return a.String()
}

// network adds a network record of process p (selected by the filter).
func (b *builder) network(p *Process, r *record.Record) {
	n := b.session.net()
	obs := netObs{seq: r.Seq}
	switch x := r.Body.(type) {
	case *record.Connect:
		obs.kind = "connect"
		obs.text = n.named(addrText(&x.Addr, x.AddrUnreadable), &x.Addr)
		obs.result = connectResult(x)
		if obs.result == "in progress" && x.HasSocket && x.Socket.Cookie != 0 {
			obs.cookie = x.Socket.Cookie
		}
	case *record.Send:
		obs.kind = "send"
		obs.text = n.named(addrText(&x.Dest, x.AddrUnreadable), &x.Dest)
		if x.Fastopen {
			obs.text += " (fast open)"
		}
		obs.result = result(x.Ret)
		if x.NoResult {
			obs.result = "no result (IOSQE_CQE_SKIP_SUCCESS)"
		}
	case *record.Bind:
		obs.kind, obs.text, obs.result = "bind", addrText(&x.Addr, x.AddrUnreadable), result(x.Ret)
	case *record.Listen:
		obs.kind, obs.text, obs.result = "listen", "(socket unknown)", result(x.Ret)
		if x.HasSocket {
			obs.text = x.Socket.Local.String()
		}
	case *record.Accept:
		obs.kind, obs.text, obs.result = "accept", "(socket unknown)", result(x.Ret)
		if x.HasSocket {
			remote := "?"
			if x.Socket.Remote.HasFamily {
				remote = x.Socket.Remote.String()
			}
			obs.text = x.Socket.Local.String() + " ← " + remote
		}
	case *record.DNS:
		if x.Response {
			return
		}
		obs.kind, obs.text, obs.result = "dns", dnsQuestion(x), "no response"
		obs.dnsKey = fmt.Sprintf("%d/%d", x.Cookie, x.Message.ID)
	default:
		return
	}
	p.net = append(p.net, obs)
}

// netEvent learns what a sock_state or dns response tells about other
// records, whether or not the filter selects it.
func (b *builder) netEvent(r *record.Record) {
	n := b.session.net()
	switch x := r.Body.(type) {
	case *record.SockState:
		outcome := "ok"
		if x.To != 1 { // ESTABLISHED
			outcome = record.StateName(x.To)
			if x.Error != "" {
				outcome = x.Error
			}
		}
		n.outcomes[x.Cookie] = outcome
	case *record.DNS:
		if !x.Response {
			return
		}
		m := &x.Message
		asked := ""
		if len(m.Questions) > 0 {
			asked = m.String(m.Questions[0].Name)
		}
		var answers []string
		for _, a := range m.Answers {
			if a.Hex {
				continue
			}
			data := m.String(a.Data)
			answers = append(answers, data)
			if (a.Type == dns.TypeA || a.Type == dns.TypeAAAA) && asked != "" {
				if ip, err := netip.ParseAddr(data); err == nil {
					key := ip.Unmap().String()
					if !slices.Contains(n.names[key], asked) {
						n.names[key] = append(n.names[key], asked)
					}
				}
			}
		}
		res := strings.Join(answers, ", ")
		if x.HasHeader && m.Rcode != 0 || res == "" {
			res = strings.TrimSpace(dns.RcodeName(m.Rcode) + " " + res)
		}
		if x.Malformed != "" {
			res = "malformed response"
		}
		n.answers[fmt.Sprintf("%d/%d", x.Cookie, m.ID)] = res
	}
}

func dnsQuestion(d *record.DNS) string {
	m := &d.Message
	if d.Malformed != "" && len(m.Questions) == 0 {
		return "(malformed query)"
	}
	var qs []string
	for _, q := range m.Questions {
		qs = append(qs, m.String(q.Name)+" "+dns.TypeName(q.Type))
	}
	return strings.Join(qs, ", ")
}

// finishNet turns a process's network records into its lines, now that
// every outcome and answer of the session is known.
func (s *Session) finishNet(p *Process) {
	n := s.net()
	connects := map[string]*Connect{}
	nets := map[string]*Net{}
	for _, o := range p.net {
		res := o.result
		if o.cookie != 0 {
			if out, ok := n.outcomes[o.cookie]; ok {
				res = "in progress → " + out
			}
		}
		if o.dnsKey != "" {
			if ans, ok := n.answers[o.dnsKey]; ok {
				res = "→ " + ans
			}
		}
		key := o.kind + "\x00" + o.text + "\x00" + res
		if o.kind == "connect" {
			c, ok := connects[key]
			if !ok {
				c = &Connect{Address: o.text, Result: res, Seq: o.seq}
				connects[key] = c
				p.Connects = append(p.Connects, c)
			}
			c.Count++
			continue
		}
		x, ok := nets[key]
		if !ok {
			x = &Net{Kind: o.kind, Text: o.text, Result: res, Seq: o.seq}
			nets[key] = x
			p.Net = append(p.Net, x)
		}
		x.Count++
	}
	p.net = nil
}
