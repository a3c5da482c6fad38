// Package dns parses the DNS messages the kernel copied from a traced
// socket's packets into what a record says of them: header, questions and
// answers, names in RFC 1035 presentation form.
//
// It is pure and lossless: a name is bytes, and its presentation escapes
// every byte that could be misread (a '.' or '\' inside a label, and every
// byte outside 0x21..0x7e as \DDD), so a name is always printable ASCII and
// names two different byte strings differently. It never panics on any
// input and does not allocate once a Message has grown to the sizes it
// sees.
package dns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrMalformed wraps every parse error.
var ErrMalformed = errors.New("malformed DNS message")

// ErrTruncated means the message ends before what its header announces:
// what was parsed up to there is kept.
var ErrTruncated = errors.New("truncated DNS message")

// Limits of RFC 1035 that a parser must enforce to stay bounded.
const (
	headerLen = 12
	maxName   = 255 // octets of a name on the wire
	maxLabels = 127
	maxQs     = 16 // questions and answers kept; more are counted, not kept
)

// Span is a string in Message.Text.
type Span struct{ Off, Len uint32 }

// Question is one entry of the question section.
type Question struct {
	Name  Span
	Type  uint16
	Class uint16
}

// Answer is one resource record of the answer section. Data is its
// presentation for A, AAAA, CNAME, NS and PTR; for other types Hex is set
// and Data is the RDATA in hex.
type Answer struct {
	Name  Span
	Type  uint16
	Class uint16
	TTL   uint32
	Data  Span
	Hex   bool
}

// Message is a parsed message. Reuse one to avoid allocation.
type Message struct {
	ID        uint16
	Response  bool
	Opcode    uint8
	Rcode     uint8
	TC        bool // the server truncated its answer (retry over TCP)
	QDCount   uint16
	ANCount   uint16
	Questions []Question
	Answers   []Answer
	// Text holds every name and answer datum; Spans index it.
	Text []byte
}

// AddText appends text to m.Text and returns its span: for a reader that
// builds a Message from a record's names.
func (m *Message) AddText(text string) Span {
	start := uint32(len(m.Text))
	m.Text = append(m.Text, text...)
	return Span{start, uint32(len(text))}
}

// String returns s's text (a copy).
func (m *Message) String(s Span) string { return string(m.Bytes(s)) }

// Bytes returns s's text, aliasing m.Text.
func (m *Message) Bytes(s Span) []byte { return m.Text[s.Off : s.Off+s.Len] }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Parse parses msg into m. On ErrTruncated, m holds the header and every
// question and answer that ended before msg did; on ErrMalformed, m holds
// what was parsed before the fault.
func Parse(msg []byte, m *Message) error {
	m.Questions = m.Questions[:0]
	m.Answers = m.Answers[:0]
	m.Text = m.Text[:0]
	if len(msg) < headerLen {
		return fmt.Errorf("%w: %d bytes, shorter than a header", ErrTruncated, len(msg))
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	m.ID = binary.BigEndian.Uint16(msg)
	m.Response = flags&0x8000 != 0
	m.Opcode = uint8(flags >> 11 & 0xf)
	m.TC = flags&0x0200 != 0
	m.Rcode = uint8(flags & 0xf)
	m.QDCount = binary.BigEndian.Uint16(msg[4:])
	m.ANCount = binary.BigEndian.Uint16(msg[6:])

	off := headerLen
	for i := 0; i < int(m.QDCount); i++ {
		var q Question
		var err error
		q.Name, off, err = m.name(msg, off)
		if err != nil {
			return err
		}
		if off+4 > len(msg) {
			return fmt.Errorf("%w: question %d", ErrTruncated, i)
		}
		q.Type = binary.BigEndian.Uint16(msg[off:])
		q.Class = binary.BigEndian.Uint16(msg[off+2:])
		off += 4
		if len(m.Questions) < maxQs {
			m.Questions = append(m.Questions, q)
		}
	}
	for i := 0; i < int(m.ANCount); i++ {
		var a Answer
		var err error
		a.Name, off, err = m.name(msg, off)
		if err != nil {
			return err
		}
		if off+10 > len(msg) {
			return fmt.Errorf("%w: answer %d", ErrTruncated, i)
		}
		a.Type = binary.BigEndian.Uint16(msg[off:])
		a.Class = binary.BigEndian.Uint16(msg[off+2:])
		a.TTL = binary.BigEndian.Uint32(msg[off+4:])
		rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
		off += 10
		if off+rdlen > len(msg) {
			return fmt.Errorf("%w: answer %d's data", ErrTruncated, i)
		}
		if err := m.data(msg, off, rdlen, &a); err != nil {
			return err
		}
		off += rdlen
		if len(m.Answers) < maxQs {
			m.Answers = append(m.Answers, a)
		}
	}
	return nil
}

// data sets a.Data from the rdlen bytes of RDATA at off.
func (m *Message) data(msg []byte, off, rdlen int, a *Answer) error {
	rdata := msg[off : off+rdlen]
	start := uint32(len(m.Text))
	switch {
	case a.Type == TypeA && rdlen == 4:
		m.Text = netip.AddrFrom4([4]byte(rdata)).AppendTo(m.Text)
	case a.Type == TypeAAAA && rdlen == 16:
		m.Text = netip.AddrFrom16([16]byte(rdata)).AppendTo(m.Text)
	case a.Type == TypeCNAME || a.Type == TypeNS || a.Type == TypePTR:
		span, end, err := m.name(msg, off)
		if err != nil {
			return err
		}
		if end != off+rdlen {
			return malformed("%s data of %d bytes holds a name of %d", TypeName(a.Type), rdlen, end-off)
		}
		a.Data = span
		return nil
	default:
		const hex = "0123456789abcdef"
		for _, c := range rdata {
			m.Text = append(m.Text, hex[c>>4], hex[c&0xf])
		}
		a.Hex = true
	}
	a.Data = Span{start, uint32(len(m.Text)) - start}
	return nil
}

// name reads the (possibly compressed) name at off into m.Text in
// presentation form and returns it with the offset after it in msg.
func (m *Message) name(msg []byte, off int) (Span, int, error) {
	start := uint32(len(m.Text))
	end := -1 // after the name where it started, once a pointer was followed
	wire, labels := 0, 0
	limit := off // pointers must go strictly backwards: no loops
	for {
		if off >= len(msg) {
			m.Text = m.Text[:start]
			return Span{}, 0, fmt.Errorf("%w: name at %d", ErrTruncated, off)
		}
		l := int(msg[off])
		switch l & 0xc0 {
		case 0xc0:
			if off+1 >= len(msg) {
				m.Text = m.Text[:start]
				return Span{}, 0, fmt.Errorf("%w: pointer at %d", ErrTruncated, off)
			}
			ptr := int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
			if ptr >= limit {
				m.Text = m.Text[:start]
				return Span{}, 0, malformed("name pointer %d at %d does not point back", ptr, off)
			}
			if end < 0 {
				end = off + 2
			}
			off, limit = ptr, ptr
			continue
		case 0x40, 0x80:
			m.Text = m.Text[:start]
			return Span{}, 0, malformed("label type %#x at %d", l&0xc0, off)
		}
		off++
		if l == 0 {
			break
		}
		if off+l > len(msg) {
			m.Text = m.Text[:start]
			return Span{}, 0, fmt.Errorf("%w: label at %d", ErrTruncated, off-1)
		}
		wire += l + 1
		labels++
		if wire+1 > maxName || labels > maxLabels {
			m.Text = m.Text[:start]
			return Span{}, 0, malformed("name longer than %d octets", maxName)
		}
		if uint32(len(m.Text)) > start {
			m.Text = append(m.Text, '.')
		}
		m.Text = AppendLabel(m.Text, msg[off:off+l])
		off += l
	}
	if end < 0 {
		end = off
	}
	if uint32(len(m.Text)) == start {
		m.Text = append(m.Text, '.') // the root
	}
	return Span{start, uint32(len(m.Text)) - start}, end, nil
}

// AppendLabel appends one label in presentation form: '.' and '\' escaped
// with a backslash, every byte outside 0x21..0x7e as \DDD (decimal).
func AppendLabel(b, label []byte) []byte {
	for _, c := range label {
		switch {
		case c == '.' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x21 || c > 0x7e:
			b = append(b, '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
		default:
			b = append(b, c)
		}
	}
	return b
}

// Record types with a name here; others are TYPE<n> (RFC 3597).
const (
	TypeA     = 1
	TypeNS    = 2
	TypeCNAME = 5
	TypeSOA   = 6
	TypePTR   = 12
	TypeMX    = 15
	TypeTXT   = 16
	TypeAAAA  = 28
	TypeSRV   = 33
	TypeOPT   = 41
	TypeSVCB  = 64
	TypeHTTPS = 65
	TypeANY   = 255
	TypeCAA   = 257
)

var typeNames = map[uint16]string{
	TypeA: "A", TypeNS: "NS", TypeCNAME: "CNAME", TypeSOA: "SOA", TypePTR: "PTR", TypeMX: "MX", TypeTXT: "TXT",
	TypeAAAA: "AAAA", TypeSRV: "SRV", TypeOPT: "OPT", TypeSVCB: "SVCB", TypeHTTPS: "HTTPS", TypeANY: "ANY", TypeCAA: "CAA",
}

// TypeName names a record type: "A", or "TYPE<n>".
func TypeName(t uint16) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// TypeNumber is the record type TypeName names.
func TypeNumber(name string) uint16 {
	for t, n := range typeNames {
		if n == name {
			return t
		}
	}
	v, _ := strconv.ParseUint(strings.TrimPrefix(name, "TYPE"), 10, 16)
	return uint16(v)
}

// ClassNumber is the class ClassName names.
func ClassNumber(name string) uint16 {
	switch name {
	case "IN":
		return 1
	case "CH":
		return 3
	case "HS":
		return 4
	case "ANY":
		return 255
	}
	v, _ := strconv.ParseUint(strings.TrimPrefix(name, "CLASS"), 10, 16)
	return uint16(v)
}

// ClassName names a class: "IN", "CH", "HS", "ANY", or "CLASS<n>".
func ClassName(c uint16) string {
	switch c {
	case 1:
		return "IN"
	case 3:
		return "CH"
	case 4:
		return "HS"
	case 255:
		return "ANY"
	}
	return "CLASS" + strconv.Itoa(int(c))
}

var rcodeNames = [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"}

// RcodeName names a response code: "NOERROR", "NXDOMAIN", or "RCODE<n>".
func RcodeName(r uint8) string {
	if int(r) < len(rcodeNames) {
		return rcodeNames[r]
	}
	return "RCODE" + strconv.Itoa(int(r))
}

// OpcodeName names an opcode: "QUERY", "IQUERY", "STATUS", "NOTIFY", "UPDATE", or "OPCODE<n>".
func OpcodeName(o uint8) string {
	switch o {
	case 0:
		return "QUERY"
	case 1:
		return "IQUERY"
	case 2:
		return "STATUS"
	case 4:
		return "NOTIFY"
	case 5:
		return "UPDATE"
	}
	return "OPCODE" + strconv.Itoa(int(o))
}
