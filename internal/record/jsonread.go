package record

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// object is one JSON object of a record, parsed one level deep: its members'
// raw values by key. It is how every body type decodes itself: the same
// members its append method writes, read back by the same names.
//
// A key that appears twice is an error: readers of the same line must never
// disagree on which value counts (encoding/json would keep the last one,
// another parser the first).
type object struct {
	keys []string
	vals [][]byte
}

// errDuplicateKey is wrapped by decoding errors caused by a repeated key.
var errDuplicateKey = errors.New("duplicate key")

func parseObject(data []byte) (*object, error) {
	s := scanner{data: data}
	s.space()
	if !s.eat('{') {
		return nil, errors.New("not a JSON object")
	}
	o := &object{}
	s.space()
	if s.eat('}') {
		return o, s.end()
	}
	for {
		s.space()
		start := s.i
		if err := s.skipString(); err != nil {
			return nil, err
		}
		var key string
		if err := json.Unmarshal(data[start:s.i], &key); err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		for _, k := range o.keys {
			if k == key {
				return nil, fmt.Errorf("%w %q", errDuplicateKey, key)
			}
		}
		s.space()
		if !s.eat(':') {
			return nil, errors.New("expected ':' after a key")
		}
		s.space()
		vstart := s.i
		if err := s.skipValue(0); err != nil {
			return nil, err
		}
		o.keys = append(o.keys, key)
		o.vals = append(o.vals, data[vstart:s.i])
		s.space()
		if s.eat('}') {
			return o, s.end()
		}
		if !s.eat(',') {
			return nil, errors.New("expected ',' or '}' in an object")
		}
	}
}

// scanner skips over JSON values without decoding them.
type scanner struct {
	data []byte
	i    int
}

const maxDepth = 64

func (s *scanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.data) && s.data[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) end() error {
	s.space()
	if s.i != len(s.data) {
		return errors.New("data after the object")
	}
	return nil
}

func (s *scanner) skipString() error {
	if !s.eat('"') {
		return errors.New("expected a string")
	}
	for s.i < len(s.data) {
		switch c := s.data[s.i]; {
		case c == '"':
			s.i++
			return nil
		case c == '\\':
			if err := s.skipEscape(); err != nil {
				return err
			}
		case c < 0x20:
			return errors.New("control character in a string")
		default:
			s.i++
		}
	}
	return errors.New("unterminated string")
}

// skipEscape skips a backslash escape: one of \" \\ \/ \b \f \n \r \t, or
// \u and four hex digits.
func (s *scanner) skipEscape() error {
	if s.i+1 >= len(s.data) {
		return errors.New("unterminated string")
	}
	switch s.data[s.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i += 2
		return nil
	case 'u':
		if s.i+6 > len(s.data) {
			return errors.New("short \\u escape")
		}
		for _, c := range s.data[s.i+2 : s.i+6] {
			if _, ok := unhexAny(c); !ok {
				return errors.New("bad \\u escape")
			}
		}
		s.i += 6
		return nil
	}
	return fmt.Errorf("bad escape \\%c", s.data[s.i+1])
}

func unhexAny(c byte) (byte, bool) {
	switch {
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return unhex(c)
}

// skipValue skips one value; objects nested in it are checked for repeated
// keys too, so a duplicate anywhere in a line is found by parsing the line.
func (s *scanner) skipValue(depth int) error {
	if depth > maxDepth {
		return errors.New("nested too deeply")
	}
	if s.i >= len(s.data) {
		return errors.New("expected a value")
	}
	switch c := s.data[s.i]; c {
	case '"':
		return s.skipString()
	case '{':
		start := s.i
		if err := s.skipComposite('}', depth); err != nil {
			return err
		}
		_, err := parseObject(s.data[start:s.i])
		return err
	case '[':
		return s.skipComposite(']', depth)
	default:
		start := s.i
		for s.i < len(s.data) && !strings.ContainsRune(",}] \t\n\r", rune(s.data[s.i])) {
			s.i++
		}
		if !json.Valid(s.data[start:s.i]) {
			return fmt.Errorf("invalid value %q", s.data[start:s.i])
		}
		return nil
	}
}

func (s *scanner) skipComposite(closer byte, depth int) error {
	s.i++ // the opener
	s.space()
	if s.eat(closer) {
		return nil
	}
	for {
		s.space()
		if closer == '}' {
			if err := s.skipString(); err != nil {
				return err
			}
			s.space()
			if !s.eat(':') {
				return errors.New("expected ':' after a key")
			}
			s.space()
		}
		if err := s.skipValue(depth + 1); err != nil {
			return err
		}
		s.space()
		if s.eat(closer) {
			return nil
		}
		if !s.eat(',') {
			return errors.New("expected ',' between members")
		}
	}
}

// ValidLine reports whether line (without its newline) is one JSON object
// with no key repeated in it or in any object nested in it.
func ValidLine(line []byte) error {
	_, err := parseObject(line)
	return err
}

func (o *object) raw(key string) []byte {
	for i, k := range o.keys {
		if k == key {
			return o.vals[i]
		}
	}
	return nil
}

func (o *object) has(key string) bool { return o.raw(key) != nil }

// decodeInto decodes member key into v (a pointer); a missing member leaves v.
func (o *object) decodeInto(key string, v any) error {
	raw := o.raw(key)
	if raw == nil {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// reader collects the first error of a run of member reads, so a body's
// decode reads like its append: one line a member.
type reader struct {
	o   *object
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) into(key string, v any) {
	r.fail(r.o.decodeInto(key, v))
}

func (r *reader) uint(key string) uint64 {
	var v uint64
	r.into(key, &v)
	return v
}

func (r *reader) uint32(key string) uint32 {
	raw := r.o.raw(key)
	if raw == nil {
		return 0
	}
	v, err := strconv.ParseUint(string(raw), 10, 32)
	if err != nil {
		r.fail(fmt.Errorf("%s: %w", key, err))
	}
	return uint32(v)
}

func (r *reader) int(key string) int64 {
	var v int64
	r.into(key, &v)
	return v
}

func (r *reader) bool(key string) bool {
	var v bool
	r.into(key, &v)
	return v
}

func (r *reader) string(key string) string {
	var v string
	r.into(key, &v)
	return v
}

// bytes reads a member written by AppendBytes: the exact bytes from
// key_b64 when present, else the readable form (then exact).
func (r *reader) bytes(key string) string {
	if b64 := r.o.raw(key + "_b64"); b64 != nil {
		var enc string
		if err := json.Unmarshal(b64, &enc); err != nil {
			r.fail(fmt.Errorf("%s_b64: %w", key, err))
			return ""
		}
		exact, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			r.fail(fmt.Errorf("%s_b64: %w", key, err))
		}
		return string(exact)
	}
	return r.string(key)
}

// strings reads an array written by AppendStrings (exact from key_b64).
func (r *reader) strings(key string) []string {
	var vs []string
	if b64 := r.o.raw(key + "_b64"); b64 != nil {
		if err := json.Unmarshal(b64, &vs); err != nil {
			r.fail(fmt.Errorf("%s_b64: %w", key, err))
			return nil
		}
		for i, v := range vs {
			exact, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				r.fail(fmt.Errorf("%s_b64: %w", key, err))
			}
			vs[i] = string(exact)
		}
		return vs
	}
	r.into(key, &vs)
	return vs
}

// octal reads a string of octal digits ("0644").
func (r *reader) octal(key string) uint64 {
	s := r.string(key)
	if s == "" {
		return 0
	}
	v, err := strconv.ParseUint(s, 8, 64)
	if err != nil {
		r.fail(fmt.Errorf("%s: %w", key, err))
	}
	return v
}

// object reads a nested object; nil if the member is missing.
func (r *reader) object(key string) *reader {
	raw := r.o.raw(key)
	if raw == nil {
		return nil
	}
	o, err := parseObject(raw)
	if err != nil {
		r.fail(fmt.Errorf("%s: %w", key, err))
		return nil
	}
	return &reader{o: o}
}

// done hands a nested reader's error to its parent.
func (r *reader) done(nested *reader) {
	if nested != nil && nested.err != nil {
		r.fail(nested.err)
	}
}
