// Package pipeline moves records from the ring buffer to the log: read,
// decode, encode, append, in one goroutine so that log order is ring order.
//
// It must not filter: every record the kernel emitted is written or counted
// as a decode error.
package pipeline

import (
	"errors"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/decoder"
	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/sink"
)

// flushInterval bounds how long a record may sit in the writer's buffer
// while the ring keeps it busy.
const flushInterval = 200 * time.Millisecond

// Source is the ring buffer side (a *loader.Tracer).
type Source interface {
	ReadInto(rec *ringbuf.Record, deadline time.Time) error
}

// Stats are the pipeline's own counts.
type Stats struct {
	Written      [loader.KindMax]uint64 // records written, by kind
	DecodeErrors uint64
	WriteErrors  uint64 // records that could not be written
}

// Pipeline is one read-decode-encode-append loop.
type Pipeline struct {
	src   Source
	enc   *record.Encoder
	log   *sink.Writer
	stats Stats
}

// New returns a pipeline from src to log through enc.
func New(src Source, enc *record.Encoder, log *sink.Writer) *Pipeline {
	return &Pipeline{src: src, enc: enc, log: log}
}

// Stats returns the counts; call it after Run has returned.
func (p *Pipeline) Stats() Stats { return p.stats }

// Run reads until the source is flushed (ringbuf.ErrFlushed) or closed, and
// returns nil in both cases; any other read error is returned. Write errors
// do not stop it: the records are counted in Stats.WriteErrors and the first
// error is returned at the end.
func (p *Pipeline) Run() error {
	var (
		rec       ringbuf.Record
		ev        decoder.Event
		lastFlush = time.Now()
		writeErr  error
	)
	for {
		err := p.src.ReadInto(&rec, time.Now().Add(loader.PollInterval))
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The ring is idle: push out what is buffered.
			p.flush(&writeErr)
			lastFlush = time.Now()
			continue
		case errors.Is(err, ringbuf.ErrFlushed), errors.Is(err, ringbuf.ErrClosed):
			p.flush(&writeErr)
			return writeErr
		default:
			p.flush(&writeErr)
			return err
		}

		if err := decoder.Decode(rec.RawSample, &ev); err != nil {
			p.stats.DecodeErrors++
			continue
		}
		err = p.log.Append(func(b []byte, seq uint64, prev *chain.Hash) []byte {
			return p.enc.AppendEvent(b, seq, prev, &ev)
		})
		if err != nil {
			p.stats.WriteErrors++
			if writeErr == nil {
				writeErr = err
			}
			continue
		}
		p.stats.Written[ev.Hdr.Kind]++
		if time.Since(lastFlush) >= flushInterval {
			p.flush(&writeErr)
			lastFlush = time.Now()
		}
	}
}

func (p *Pipeline) flush(first *error) {
	if err := p.log.Flush(); err != nil && *first == nil {
		*first = err
	}
}
