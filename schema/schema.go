// Package schema owns the machine-readable contract of agenttrace's JSON
// Lines audit log: record.schema.json (JSON Schema draft 2020-12) describes
// every record type exactly as internal/record and internal/session write
// them, and Validate checks one log line against it. The prose version of the
// same contract is docs/schema.md; the schema, the document and the encoder
// change together.
package schema

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// JSON is the text of record.schema.json.
//
//go:embed record.schema.json
var JSON []byte

// ID is the $id of the schema.
const ID = "https://agenttrace.dev/schema/record.schema.json"

var (
	compileOnce sync.Once
	compiled    *jsonschema.Schema
	compileErr  error
)

// compiledSchema compiles the embedded schema on first use. The result is
// immutable and safe for concurrent use.
func compiledSchema() (*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSON))
		if err != nil {
			compileErr = fmt.Errorf("schema: parsing record.schema.json: %w", err)
			return
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		c.AssertContent()
		if err := c.AddResource(ID, doc); err != nil {
			compileErr = fmt.Errorf("schema: adding record.schema.json: %w", err)
			return
		}
		if compiled, err = c.Compile(ID); err != nil {
			compileErr = fmt.Errorf("schema: compiling record.schema.json: %w", err)
		}
	})
	return compiled, compileErr
}

// Validate checks one JSON Lines record: a single line (a trailing "\n" is
// allowed) holding one JSON object that conforms to the record schema. On
// top of the schema it enforces what the encoder guarantees about the text
// itself: the line is valid UTF-8, no object has a duplicate member, and no
// character that could break or disguise a line (controls, line and
// paragraph separators, format characters such as bidi overrides) appears
// unescaped. It is safe for concurrent use.
func Validate(line []byte) error {
	line = bytes.TrimSuffix(line, []byte("\n"))
	if err := checkText(line); err != nil {
		return err
	}
	v, err := decodeStrict(line)
	if err != nil {
		return err
	}
	sch, err := compiledSchema()
	if err != nil {
		return err
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	return nil
}

// checkText rejects what the encoder never writes raw: invalid UTF-8 and
// characters it always escapes (see docs/schema.md, "Exactness").
func checkText(line []byte) error {
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRune(line[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Errorf("schema: byte %d: invalid UTF-8", i)
		case r < 0x20 || r == 0x7f:
			return fmt.Errorf("schema: byte %d: raw control character %U", i, r)
		case r >= 0x80 && r < 0xa0, r == 0x2028, r == 0x2029, unicode.Is(unicode.Cf, r):
			return fmt.Errorf("schema: byte %d: unescaped %U", i, r)
		}
		i += size
	}
	return nil
}

// decodeStrict decodes exactly one JSON value into the representation the
// validator expects (numbers as json.Number), rejecting duplicate members.
func decodeStrict(line []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, fmt.Errorf("schema: invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("schema: invalid JSON: data after the record")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key %v is not a string", kt)
				}
				if _, dup := obj[key]; dup {
					return nil, fmt.Errorf("duplicate member %q", key)
				}
				if obj[key], err = decodeValue(dec); err != nil {
					return nil, err
				}
			}
			_, err := dec.Token() // '}'
			return obj, err
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token() // ']'
			return arr, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return t, nil
	}
}
