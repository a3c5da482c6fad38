// Package export ships the local hash-chained audit log to SIEMs. The log is
// the single source of truth and the spool: a Runner tails its segments
// (across rotation), hands complete records to a Destination, and persists a
// cursor (segment, offset, seq) only after the destination acknowledged them.
// Delivery is at-least-once; every exported event carries its dedupe key
// (host, log id, seq).
package export

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Record is one complete line of the local log, as written (without the
// trailing newline), with where it was read from.
type Record struct {
	Line    []byte // the exact bytes of the record, newline excluded
	Seq     uint64
	Type    string // header, exec, open, ..., checkpoint
	Time    []byte // the envelope's "time" (RFC 3339, UTC, ns), within Line
	LogID   string // from the log's header: with Host and Seq, the dedupe key
	Host    string
	Segment int   // segment number (1-based, logfile.SegmentPath)
	Offset  int64 // byte offset of the line in its segment
}

// Format turns a record into the bytes a destination sends as one event.
type Format interface {
	Name() string // "native" or "ocsf"
	Append(dst []byte, r *Record) ([]byte, error)
}

// Destination delivers batches of formatted events. Send returns nil only
// when the destination acknowledged every event of the batch; any error
// makes the Runner retry the batch (with backoff) from the same cursor.
type Destination interface {
	Send(ctx context.Context, batch []Event) error
	Close() error
}

// Event is one formatted record on its way to a destination.
type Event struct {
	Record *Record
	Body   []byte // Format.Append's output
}

// Config is one exporter, as written under `exporters:` in the daemon's
// YAML (docs/config.md) and in the file `agenttrace run --export-config`
// and `agenttrace export` read.
type Config struct {
	Name   string `yaml:"name"`   // unique; names the cursor file and metrics
	Type   string `yaml:"type"`   // syslog | hec
	Format string `yaml:"format"` // native (default) | ocsf

	Syslog *SyslogConfig `yaml:"syslog,omitempty"` // syslog.go
	HEC    *HECConfig    `yaml:"hec,omitempty"`    // hec.go
}

// Confirmer is implemented by a destination that has no acknowledgement of
// its own (syslog over TCP or TLS): there, Send returning nil means only
// that the batch was written. The Runner then holds the cursor back until
// Confirmed covers the batch, and after an error from Confirmed (or Send)
// it sends everything after the cursor again.
type Confirmer interface {
	// Mark returns a token for everything sent so far; the Runner calls it
	// after each Send that returned nil.
	Mark() uint64
	// Confirmed returns the highest mark that counts as delivered, or an
	// error if the connection broke: every mark not yet confirmed is then
	// void.
	Confirmed() (uint64, error)
	// Finish ends the connection in order, confirming what the receiver's
	// own orderly close proves it read.
	Finish(ctx context.Context) (uint64, error)
}

// Native is the record exactly as the local log holds it: the line, byte
// for byte, without its newline. The exported event is the record, not a
// rendering of it, so a SIEM holds what the chain hashes.
type Native struct{}

// Name is "native".
func (Native) Name() string { return "native" }

// Append appends the record's line.
func (Native) Append(dst []byte, r *Record) ([]byte, error) { return append(dst, r.Line...), nil }

// FieldError is a configuration error of one key of an exporter.
type FieldError struct {
	Field string // the key, relative to the exporter: "type", "syslog.address", "hec.url"
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// fieldError turns a validation error of the form "key: what is wrong"
// into a FieldError, so that a configuration reader can say which key (and
// line) is at fault.
func fieldError(err error) error {
	var fe *FieldError
	if err == nil || errors.As(err, &fe) {
		return err
	}
	key, rest, ok := strings.Cut(err.Error(), ": ")
	if !ok || key == "" || strings.IndexFunc(key, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.')
	}) >= 0 {
		return err
	}
	return &FieldError{Field: key, Err: errors.New(rest)}
}

// Validate checks one exporter's configuration. Its error is a *FieldError
// naming the key at fault, relative to the exporter (syslog.address,
// format, ...), whenever one key is.
func (c *Config) Validate() error { return fieldError(c.validate()) }

func (c *Config) validate() error {
	switch {
	case c.Name == "":
		return errors.New("name: required (it names the exporter's cursor and metrics)")
	case len(c.Name) > 64 || c.Name[0] == '.' || strings.IndexFunc(c.Name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) >= 0:
		return fmt.Errorf("name: %q: use letters, digits, '-', '_' and '.' (not first), at most 64 (it names the cursor file)", c.Name)
	}
	switch c.Format {
	case "", "native", "ocsf":
	default:
		return fmt.Errorf("format: %q: want native or ocsf", c.Format)
	}
	switch c.Type {
	case "":
		return errors.New("type: required (syslog or hec)")
	case "syslog":
		if c.HEC != nil {
			return errors.New("hec: not allowed for type syslog")
		}
		if c.Syslog == nil {
			return errors.New("syslog: required for type syslog (at least syslog.address)")
		}
		return c.Syslog.validate()
	case "hec":
		if c.Syslog != nil {
			return errors.New("syslog: not allowed for type hec")
		}
		if c.HEC == nil {
			return errors.New("hec: required for type hec (at least hec.url)")
		}
		return c.HEC.validate()
	}
	return fmt.Errorf("type: %q: want syslog or hec", c.Type)
}
