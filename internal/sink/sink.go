// Package sink owns the audit log file: it creates it (never over an existing
// file), numbers records with a contiguous seq, writes whole lines only, and
// makes them durable.
//
// It must never reorder, rewrite or truncate what it has written.
package sink

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// flushBytes is how much is buffered before a write(2); callers also Flush
// on a timer so a record reaches the file within the promised latency.
const flushBytes = 256 << 10

// Writer appends records to one log file. It is safe for concurrent use.
type Writer struct {
	path string

	mu      sync.Mutex
	f       *os.File
	buf     []byte
	seq     uint64
	records uint64
	err     error // the first write error; later appends fail with it
}

// Create creates the log at path with mode 0600. It fails if anything
// exists at path: agenttrace never overwrites a file.
func Create(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("log %s already exists: agenttrace never overwrites a file; choose another --log", path)
		}
		return nil, fmt.Errorf("creating log: %w", err)
	}
	return &Writer{path: path, f: f, buf: make([]byte, 0, 2*flushBytes)}, nil
}

// Path is the log's file name as given to Create.
func (w *Writer) Path() string { return w.path }

// Append adds one record: fn appends the record for seq (without newline) to
// b and returns it. Records are numbered 1, 2, 3... in the order appended.
func (w *Writer) Append(fn func(b []byte, seq uint64) []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.seq++
	w.buf = append(fn(w.buf, w.seq), '\n')
	w.records++
	if len(w.buf) >= flushBytes {
		return w.flushLocked()
	}
	return nil
}

// Records is the number of records appended so far.
func (w *Writer) Records() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.records
}

// Flush writes buffered records to the file (not necessarily to disk).
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *Writer) flushLocked() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.f.Write(w.buf); err != nil {
		w.err = fmt.Errorf("writing log %s: %w", w.path, err)
		return w.err
	}
	w.buf = w.buf[:0]
	return nil
}

// Close flushes, syncs to disk and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.flushLocked()
	if serr := w.f.Sync(); serr != nil && err == nil {
		err = fmt.Errorf("syncing log %s: %w", w.path, serr)
	}
	if cerr := w.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("closing log %s: %w", w.path, cerr)
	}
	return err
}
