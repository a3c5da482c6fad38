package record

import (
	"encoding/base64"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The one JSON writer of the audit log. Every record is written by these
// functions, member by member, in a fixed order, so a line is a function of
// the record's value: byte-exact, with the escaping docs/schema.md
// ("Exactness") specifies.

const hexDigits = "0123456789abcdef"

// appendKey appends `,"key":` (the comma only if the object already has a member).
func appendKey(b []byte, key string) []byte {
	if n := len(b); n > 0 && b[n-1] != '{' && b[n-1] != '[' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

func appendUint(b []byte, key string, v uint64) []byte {
	return strconv.AppendUint(appendKey(b, key), v, 10)
}

func appendInt(b []byte, key string, v int64) []byte {
	return strconv.AppendInt(appendKey(b, key), v, 10)
}

func appendBool(b []byte, key string, v bool) []byte {
	return strconv.AppendBool(appendKey(b, key), v)
}

// appendOctal appends v as a JSON string of octal digits with a leading 0 ("0644").
func appendOctal(b []byte, key string, v uint64) []byte {
	b = append(appendKey(b, key), '"', '0')
	if v != 0 {
		b = strconv.AppendUint(b, v, 8)
	}
	return append(b, '"')
}

// appendASCII appends a string known to need no escaping (names, numbers).
func appendASCII(b []byte, key, v string) []byte {
	b = append(appendKey(b, key), '"')
	b = append(b, v...)
	return append(b, '"')
}

// AppendBytes appends "key": the readable form of v and, when that form is
// not exactly v (v is not valid UTF-8), "key_b64": the exact bytes.
func AppendBytes(b []byte, key string, v []byte) []byte {
	b = appendKey(b, key)
	b, exact := appendQuoted(b, v)
	if !exact {
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, "_b64\":\""...)
		b = base64.StdEncoding.AppendEncode(b, v)
		b = append(b, '"')
	}
	return b
}

// AppendString is AppendBytes of a string's bytes, without copying them.
func AppendString(b []byte, key, v string) []byte {
	return AppendBytes(b, key, unsafeBytes(v))
}

// Readable is the readable form of s as AppendString writes it (before JSON
// quoting): bytes that are not UTF-8 become the text \xNN.
func Readable(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b []byte
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, '\\', 'x', hexDigits[s[i]>>4], hexDigits[s[i]&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}

// unsafeBytes views s as bytes without copying; the result must not be modified.
func unsafeBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// unsafeString views b as a string without copying; b must not change
// while the string is in use.
func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// IsExact reports whether the readable form of v decodes back to v.
func IsExact(v []byte) bool {
	return utf8.Valid(v)
}

// appendQuoted appends v as a JSON string in a form that cannot break or
// disguise a line: control characters, line and paragraph separators, bidi
// overrides and other invisible format characters are written as \u
// escapes (which decode back exactly); bytes that are not UTF-8 are written
// as the text \xNN, and exact is false.
func appendQuoted(b []byte, v []byte) (out []byte, exact bool) {
	exact = true
	b = append(b, '"')
	start := 0
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
				i++
				continue
			}
			b = append(b, v[start:i]...)
			switch c {
			case '"':
				b = append(b, '\\', '"')
			case '\\':
				b = append(b, '\\', '\\')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(v[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, v[start:i]...)
			b = append(b, '\\', '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			exact = false
			i++
			start = i
			continue
		}
		if disguising(r) {
			b = append(b, v[start:i]...)
			if r > 0xffff {
				hi, lo := utf16.EncodeRune(r)
				b = appendU4(appendU4(b, hi), lo)
			} else {
				b = appendU4(b, r)
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, v[start:]...)
	return append(b, '"'), exact
}

func appendU4(b []byte, r rune) []byte {
	return append(b, '\\', 'u', hexDigits[(r>>12)&0xf], hexDigits[(r>>8)&0xf], hexDigits[(r>>4)&0xf], hexDigits[r&0xf])
}

// disguising reports runes that could hide or reorder what a reader sees:
// C1 controls, line/paragraph separators and format characters: bidi
// overrides and isolates, zero-width characters, and the invisible tag
// characters (U+E0000 block) used to smuggle text past human readers.
func disguising(r rune) bool {
	if r >= 0x80 && r < 0xa0 {
		return true
	}
	return r == 0x2028 || r == 0x2029 || unicode.Is(unicode.Cf, r)
}

// appendASCIIs appends an array of strings known to need no escaping.
func appendASCIIs(b []byte, key string, vs []string) []byte {
	b = append(appendKey(b, key), '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(append(b, '"'), v...), '"')
	}
	return append(b, ']')
}

// AppendStrings appends "key": an array of the readable forms and, if any is
// not exact, "key_b64": an array of every element's exact bytes.
func AppendStrings(b []byte, key string, vs []string) []byte {
	exact := true
	b = append(appendKey(b, key), '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		b, ok = appendQuoted(b, unsafeBytes(v))
		exact = exact && ok
	}
	b = append(b, ']')
	if exact {
		return b
	}
	b = append(appendKey(b, key+"_b64"), '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, unsafeBytes(v))
		b = append(b, '"')
	}
	return append(b, ']')
}
