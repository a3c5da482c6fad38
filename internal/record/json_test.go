package record

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// quoteCases are exact expectations for appendQuoted: the JSON text written
// for the bytes in, and whether it decodes back to exactly those bytes.
var quoteCases = []struct {
	name  string
	in    string
	want  string // JSON text, quotes included
	exact bool
}{
	{"empty", "", `""`, true},
	{"plain", "/etc/hostname", `"/etc/hostname"`, true},
	{"newline", "a\nb", `"a\nb"`, true},
	{"carriage return and tab", "a\rb\tc", `"a\rb\tc"`, true},
	{"quotes", `say "hi"`, `"say \"hi\""`, true},
	{"backslash", `C:\dir\x`, `"C:\\dir\\x"`, true},
	{"NUL", "a\x00b", `"a\u0000b"`, true},
	{"other C0 controls", "\x01\x08\x0b\x0c\x1b\x1f", `"\u0001\u0008\u000b\u000c\u001b\u001f"`, true},
	{"DEL", "a\x7fb", `"a\u007fb"`, true},
	{"C1 NEL", "a\u0085b", `"a\u0085b"`, true},
	{"C1 CSI", "\u009b31m", `"\u009b31m"`, true},
	{"C1 first and last", "\u0080\u009f", `"\u0080\u009f"`, true},
	{"NBSP is not C1", "a\u00a0b", "\"a\u00a0b\"", true},
	{"line separator", "a\u2028b", `"a\u2028b"`, true},
	{"paragraph separator", "a\u2029b", `"a\u2029b"`, true},
	{"right-to-left override", "invoice\u202egnp.exe", `"invoice\u202egnp.exe"`, true},
	{"bidi isolate", "\u2066x\u2069", `"\u2066x\u2069"`, true},
	{"zero-width joiner", "a\u200db", `"a\u200db"`, true},
	{"zero-width space", "a\u200bb", `"a\u200bb"`, true},
	{"byte order mark", "\ufeffx", `"\ufeffx"`, true},
	{"soft hyphen", "pass\u00adwd", `"pass\u00adwd"`, true},
	{"tag character (surrogate pair)", "x\U000E0041y", `"x\udb40\udc41y"`, true},
	{"tag cancel", "\U000E007F", `"\udb40\udc7f"`, true},
	{"two-byte UTF-8 kept", "café", `"café"`, true},
	{"three-byte UTF-8 kept", "日本語", `"日本語"`, true},
	{"four-byte UTF-8 kept", "🙂", `"🙂"`, true},
	{"encoded U+FFFD kept", "\uFFFD", "\"\uFFFD\"", true},
	{"invalid byte", "\xff", `"\\xff"`, false},
	{"invalid in the middle", "/tmp/bad\xffname", `"/tmp/bad\\xffname"`, false},
	{"latin-1 byte", "caf\xe9", `"caf\\xe9"`, false},
	{"truncated sequence", "a\xe2\x80", `"a\\xe2\\x80"`, false},
	{"encoded surrogate", "\xed\xa0\x80", `"\\xed\\xa0\\x80"`, false},
	{"overlong slash", "\xc0\xaf", `"\\xc0\\xaf"`, false},
	{"lone continuation byte", "\x80", `"\\x80"`, false},
	{"above U+10FFFF", "\xf4\x90\x80\x80", `"\\xf4\\x90\\x80\\x80"`, false},
	{"literal backslash-x text", `\xff`, `"\\xff"`, true},
	{"invalid and escaped together", "\n\xff\u202e", `"\n\\xff\u202e"`, false},
}

func TestAppendQuoted(t *testing.T) {
	for _, tc := range quoteCases {
		t.Run(tc.name, func(t *testing.T) {
			got, exact := appendQuoted([]byte("prefix:"), []byte(tc.in))
			if string(got) != "prefix:"+tc.want || exact != tc.exact {
				t.Errorf("appendQuoted(%q) = %s, %v; want %s, %v", tc.in, got[len("prefix:"):], exact, tc.want, tc.exact)
			}
			if !json.Valid(got[len("prefix:"):]) {
				t.Errorf("appendQuoted(%q) = %s: not valid JSON", tc.in, got[len("prefix:"):])
			}
			if IsExact([]byte(tc.in)) != tc.exact {
				t.Errorf("IsExact(%q) = %v, want %v", tc.in, !tc.exact, tc.exact)
			}
			if tc.exact {
				var s string
				if err := json.Unmarshal(got[len("prefix:"):], &s); err != nil || s != tc.in {
					t.Errorf("decoding %s = %q, %v; want %q", got[len("prefix:"):], s, err, tc.in)
				}
			}
		})
	}
}

func TestAppendBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		prev string // what the object already holds
		in   string
		want string
	}{
		{"first member", "{", "/etc/hostname", `{"path":"/etc/hostname"`},
		{"later member", `{"a":1`, "/etc/hostname", `{"a":1,"path":"/etc/hostname"`},
		{"escaped but exact: no _b64", "{", "a\nb\u202e", `{"path":"a\nb\u202e"`},
		{"literal backslash-x: no _b64", "{", `\xff`, `{"path":"\\xff"`},
		{"invalid byte: _b64", "{", "\xff", `{"path":"\\xff","path_b64":"/w=="`},
		{"invalid in a path", `{"a":1`, "/tmp/bad\xffname", `{"a":1,"path":"/tmp/bad\\xffname","path_b64":"L3RtcC9iYWT/bmFtZQ=="`},
		{"empty", "{", "", `{"path":""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendBytes([]byte(tc.prev), "path", []byte(tc.in))
			if string(got) != tc.want {
				t.Errorf("AppendBytes(%q, %q) = %s, want %s", tc.prev, tc.in, got, tc.want)
			}
		})
	}
}

func TestAppendStrings(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want string
	}{
		{"none", nil, `{"argv":[]`},
		{"exact", []string{"sh", "-c", "echo \"hi\"\n"}, `{"argv":["sh","-c","echo \"hi\"\n"]`},
		{"empty element", []string{"", "x"}, `{"argv":["","x"]`},
		{"one inexact: every element in _b64", []string{"ls", "caf\xe9"}, `{"argv":["ls","caf\\xe9"],"argv_b64":["bHM=","Y2Fm6Q=="]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := AppendStrings([]byte("{"), "argv", tc.in); string(got) != tc.want {
				t.Errorf("AppendStrings(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestAppendArgv(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string // NUL-separated, as captured
		want string
	}{
		{"none", "", `{"argv":[]`},
		{"terminated", "sh\x00-c\x00true\x00", `{"argv":["sh","-c","true"]`},
		{"cut last argument", "sh\x00-c\x00tr", `{"argv":["sh","-c","tr"]`},
		{"empty arguments", "\x00\x00", `{"argv":["",""]`},
		{"escaped but exact", "a\nb\x00\u202e\x00", `{"argv":["a\nb","\u202e"]`},
		{"inexact", "arg\xff\x00a\nb\x00", `{"argv":["arg\\xff","a\nb"],"argv_b64":["YXJn/w==","YQpi"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := appendArgv([]byte("{"), tc.in); string(got) != tc.want {
				t.Errorf("appendArgv(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestAppendOctal(t *testing.T) {
	for v, want := range map[uint64]string{0: `"m":"0"`, 0o644: `"m":"0644"`, 0o100755: `"m":"0100755"`, 0o7777: `"m":"07777"`} {
		if got := appendOctal(nil, "m", v); string(got) != want {
			t.Errorf("appendOctal(%o) = %s, want %s", v, got, want)
		}
	}
}

// disguisingRune mirrors the documented rule, independently of disguising.
func disguisingRune(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || unicode.Is(unicode.Cf, r)
}

// checkAppendBytes asserts the properties every string member has: valid
// JSON and UTF-8, one line, nothing that could disguise it, and a readable
// form (or a _b64 sibling, exactly when it is needed) that gives back the
// input bytes.
func checkAppendBytes(t *testing.T, in []byte) {
	t.Helper()
	out := append(AppendBytes([]byte("{"), "key", in), '}')
	if !json.Valid(out) {
		t.Fatalf("AppendBytes(%q) = %s: not valid JSON", in, out)
	}
	if !utf8.Valid(out) {
		t.Fatalf("AppendBytes(%q) = %q: not valid UTF-8", in, out)
	}
	if bytes.IndexByte(out, '\n') >= 0 {
		t.Fatalf("AppendBytes(%q) = %q: raw newline", in, out)
	}
	for _, r := range string(out) {
		if disguisingRune(r) {
			t.Fatalf("AppendBytes(%q) = %q: raw %U", in, out, r)
		}
	}
	var m map[string]string
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("AppendBytes(%q) = %s: %v", in, out, err)
	}
	b64, hasB64 := m["key_b64"]
	if hasB64 == utf8.Valid(in) {
		t.Fatalf("AppendBytes(%q) = %s: key_b64 present = %v for valid UTF-8 = %v", in, out, hasB64, utf8.Valid(in))
	}
	if len(m) != 1+map[bool]int{true: 1}[hasB64] {
		t.Fatalf("AppendBytes(%q) = %s: unexpected members", in, out)
	}
	if hasB64 {
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("AppendBytes(%q): key_b64 decodes to %q, %v", in, got, err)
		}
		return
	}
	if m["key"] != string(in) {
		t.Fatalf("AppendBytes(%q): key decodes to %q", in, m["key"])
	}
}

func FuzzAppendBytes(f *testing.F) {
	for _, tc := range quoteCases {
		f.Add([]byte(tc.in))
	}
	f.Add([]byte{0xed, 0xbf, 0xbf, 0xf0, 0x9f, 0x99})
	f.Add([]byte("\U000E0001\U000E0020\U000E007F\u061c\u180e"))
	f.Fuzz(checkAppendBytes)
}

// TestAppendBytesEveryRune covers every code point, encoded alone and
// between ASCII, plus every single byte.
func TestAppendBytesEveryRune(t *testing.T) {
	step := rune(1)
	if testing.Short() {
		step = 61
	}
	for r := rune(0); r <= unicode.MaxRune; r += step {
		if r >= 0xd800 && r <= 0xdfff {
			continue
		}
		in := utf8.AppendRune([]byte("a"), r)
		checkAppendBytes(t, append(in, 'z'))
	}
	for c := 0; c < 256; c++ {
		checkAppendBytes(t, []byte{byte(c)})
	}
}

// TestAppendTime: the cached form equals time's own formatting, across
// second boundaries and before 1970.
func TestAppendTime(t *testing.T) {
	e := NewEncoder("h", "b", 0, nil)
	for _, ns := range []int64{0, 1, 999_999_999, 1_000_000_000, 1_735_786_045_123_456_789, 1_735_786_045_999_999_999, 1_735_786_046_000_000_000, 1_735_786_045_000_000_001, -1, -1_500_000_000} {
		got := string(e.appendTime(nil, ns))
		want := time.Unix(0, ns).UTC().Format("2006-01-02T15:04:05.000000000Z")
		if got != want {
			t.Errorf("%d: %s, want %s", ns, got, want)
		}
	}
}
