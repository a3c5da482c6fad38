// Package export ships the local hash-chained audit log to SIEMs. The log is
// the single source of truth and the spool: a Runner tails its segments
// (across rotation), hands complete records to a Destination, and persists a
// cursor (segment, offset, seq) only after the destination acknowledged them.
// Delivery is at-least-once; every exported event carries its dedupe key
// (host, log id, seq).
package export

import "context"

// Record is one complete line of the local log, as written (without the
// trailing newline), with where it was read from.
type Record struct {
	Line    []byte // the exact bytes of the record, newline excluded
	Seq     uint64
	Type    string // header, exec, open, ..., checkpoint
	LogID   string // from the log's header: with Host and Seq, the dedupe key
	Host    string
	Segment int   // segment number (1-based, chain.SegmentPath)
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
