package dns

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// msg builds a message: header fields, then the raw sections.
func msg(id, flags, qd, an uint16, sections ...[]byte) []byte {
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

// wireName encodes labels (any bytes) as an uncompressed name.
func wireName(labels ...string) []byte {
	var b []byte
	for _, l := range labels {
		b = append(append(b, byte(len(l))), l...)
	}
	return append(b, 0)
}

func question(name []byte, typ, class uint16) []byte {
	b := append([]byte(nil), name...)
	b = binary.BigEndian.AppendUint16(b, typ)
	return binary.BigEndian.AppendUint16(b, class)
}

func answer(name []byte, typ uint16, ttl uint32, rdata []byte) []byte {
	b := append([]byte(nil), name...)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint32(b, ttl)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rdata)))
	return append(b, rdata...)
}

var ptr12 = []byte{0xc0, 12} // the first question's name

func TestParseResponse(t *testing.T) {
	q := question(wireName("www", "example", "com"), TypeA, 1)
	raw := msg(0xbeef, 0x8180, 1, 4, q,
		answer(ptr12, TypeCNAME, 300, wireName("edge", "example", "net")),
		answer(wireName("edge", "example", "net"), TypeA, 60, []byte{93, 184, 216, 34}),
		answer(ptr12, TypeAAAA, 60, []byte{0x26, 0x06, 0x28, 0, 0x2, 0x20, 0, 1, 0x2, 0x48, 0x18, 0x93, 0x25, 0xc8, 0x19, 0x46}),
		answer(ptr12, TypeMX, 60, []byte{0, 10, 0xc0, 16}))
	var m Message
	if err := Parse(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.ID != 0xbeef || !m.Response || m.Opcode != 0 || m.Rcode != 0 || m.TC || len(m.Questions) != 1 || len(m.Answers) != 4 {
		t.Fatalf("message = %+v", m)
	}
	if qq := m.Questions[0]; m.String(qq.Name) != "www.example.com" || qq.Type != TypeA || qq.Class != 1 {
		t.Errorf("question = %s %+v", m.String(qq.Name), qq)
	}
	for i, want := range []struct {
		name, typ, data string
		ttl             uint32
		hex             bool
	}{
		{"www.example.com", "CNAME", "edge.example.net", 300, false},
		{"edge.example.net", "A", "93.184.216.34", 60, false},
		{"www.example.com", "AAAA", "2606:2800:220:1:248:1893:25c8:1946", 60, false},
		{"www.example.com", "MX", "000ac010", 60, true},
	} {
		a := m.Answers[i]
		if m.String(a.Name) != want.name || TypeName(a.Type) != want.typ || m.String(a.Data) != want.data || a.TTL != want.ttl || a.Hex != want.hex || ClassName(a.Class) != "IN" {
			t.Errorf("answer %d = %s %s %s %d hex %v, want %+v", i, m.String(a.Name), TypeName(a.Type), m.String(a.Data), a.TTL, a.Hex, want)
		}
	}
}

func TestHostileNames(t *testing.T) {
	for _, tc := range []struct {
		labels []string
		want   string
	}{
		{[]string{"a.b", "c"}, `a\.b.c`},
		{[]string{"\x00nul"}, `\000nul`},
		{[]string{"new\nline"}, `new\010line`},
		{[]string{"\xff\xfe"}, `\255\254`},
		{[]string{"rtl\u202eexe", "test"}, `rtl\226\128\174exe.test`},
		{[]string{`back\slash`, "sp ace"}, `back\\slash.sp\032ace`},
		{[]string{"\"quote\"", "~"}, `"quote".~`},
		{nil, "."},
	} {
		var m Message
		if err := Parse(msg(1, 0x0100, 1, 0, question(wireName(tc.labels...), TypeA, 1)), &m); err != nil {
			t.Fatalf("%q: %v", tc.labels, err)
		}
		got := m.String(m.Questions[0].Name)
		if got != tc.want {
			t.Errorf("%q = %s, want %s", tc.labels, got, tc.want)
		}
		for _, c := range []byte(got) {
			if c < 0x21 || c > 0x7e {
				t.Errorf("%q: presentation holds byte %#x", tc.labels, c)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	q := question(wireName("example", "test"), TypeA, 1)
	for _, tc := range []struct {
		name string
		raw  []byte
		want error
		qs   int // questions kept
	}{
		{"short header", []byte{1, 2, 3}, ErrTruncated, 0},
		{"question cut", msg(1, 0, 1, 0, q[:len(q)-2]), ErrTruncated, 0},
		{"second question missing", msg(1, 0, 2, 0, q), ErrTruncated, 1},
		{"answer cut", msg(1, 0x8000, 1, 1, q, answer(ptr12, TypeA, 1, []byte{1, 2, 3, 4})[:8]), ErrTruncated, 1},
		{"rdata beyond the end", msg(1, 0x8000, 1, 1, q, answer(ptr12, TypeA, 1, []byte{1, 2, 3, 4})[:13]), ErrTruncated, 1},
		{"pointer loop", msg(1, 0, 1, 0, []byte{0xc0, 12, 0, 1, 0, 1}), ErrMalformed, 0},
		{"pointer forward", msg(1, 0, 1, 0, []byte{0xc0, 40, 0, 1, 0, 1}), ErrMalformed, 0},
		{"label type 0x40", msg(1, 0, 1, 0, []byte{0x41, 'a', 0, 0, 1, 0, 1}), ErrMalformed, 0},
		{"name too long", msg(1, 0, 1, 0, question(wireName(string(bytes.Repeat([]byte("a"), 63)), string(bytes.Repeat([]byte("b"), 63)),
			string(bytes.Repeat([]byte("c"), 63)), string(bytes.Repeat([]byte("d"), 63))), 1, 1)), ErrMalformed, 0},
		{"cname data longer than its name", msg(1, 0x8000, 1, 1, q, answer(ptr12, TypeCNAME, 1, append(wireName("x"), 0))), ErrMalformed, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			err := Parse(tc.raw, &m)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse = %v, want %v", err, tc.want)
			}
			if len(m.Questions) != tc.qs {
				t.Errorf("%d questions kept, want %d", len(m.Questions), tc.qs)
			}
		})
	}
}

func TestNames(t *testing.T) {
	if TypeName(65) != "HTTPS" || TypeName(999) != "TYPE999" || ClassName(1) != "IN" || ClassName(9) != "CLASS9" ||
		RcodeName(3) != "NXDOMAIN" || RcodeName(15) != "RCODE15" || OpcodeName(0) != "QUERY" || OpcodeName(9) != "OPCODE9" {
		t.Error("names")
	}
}

func TestParseAllocs(t *testing.T) {
	raw := msg(7, 0x8180, 1, 2, question(wireName("example", "test"), TypeA, 1),
		answer(ptr12, TypeA, 60, []byte{10, 0, 0, 1}), answer(ptr12, TypeAAAA, 60, make([]byte, 16)))
	var m Message
	Parse(raw, &m)
	if n := testing.AllocsPerRun(100, func() { Parse(raw, &m) }); n != 0 {
		t.Errorf("Parse allocates %v times per message", n)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(msg(1, 0x0100, 1, 0, question(wireName("example", "test"), TypeA, 1)))
	f.Add(msg(1, 0x8180, 1, 1, question(wireName("a.b", "\xff"), TypeA, 1), answer(ptr12, TypeCNAME, 1, wireName("c"))))
	f.Add(msg(1, 0, 1, 0, []byte{0xc0, 12, 0, 1, 0, 1}))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var m Message
		err := Parse(raw, &m)
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTruncated) {
			t.Fatalf("error %v is neither ErrMalformed nor ErrTruncated", err)
		}
		for _, c := range m.Text {
			if c < 0x21 || c > 0x7e {
				t.Fatalf("presentation holds byte %#x: %q", c, m.Text)
			}
		}
		check := func(s Span) {
			if uint64(s.Off)+uint64(s.Len) > uint64(len(m.Text)) {
				t.Fatalf("span %+v outside text of %d", s, len(m.Text))
			}
		}
		for _, q := range m.Questions {
			check(q.Name)
		}
		for _, a := range m.Answers {
			check(a.Name)
			check(a.Data)
		}
		if len(m.Questions) > maxQs || len(m.Answers) > maxQs {
			t.Fatal("kept more than maxQs")
		}
	})
}
