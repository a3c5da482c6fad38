// Package logfile owns the files of an audit log: how segments are named and
// found, and reading a segment's complete lines in order with bounded memory.
// Every reader of logs (verify, show, export, the writer continuing a log
// after a crash) reads through it.
//
// A line is a record only once its newline is written: bytes after a
// segment's last newline are a torn line (a crash) or one still being
// written, never a record. It never writes.
package logfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxLine bounds one line of a log, newline included. The largest record
// agenttrace writes, an exec with 1 MiB of argv with every byte escaped
// (six bytes each) and its base64 copy, is well below it; a longer run of
// bytes without a newline is not an agenttrace log.
const MaxLine = 16 << 20

// ErrLineTooLong: a line is longer than MaxLine.
var ErrLineTooLong = fmt.Errorf("a line longer than %d bytes: not an agenttrace log", MaxLine)

// ErrNotRegular: the path is not a regular file (a FIFO, a device, a
// directory): reading it could block or never end.
var ErrNotRegular = errors.New("not a regular file")

// SegmentPath is the file of segment k (1-based) of the log at base:
// segment 1 is base itself, later ones insert the number before the
// extension (audit.jsonl, audit.000002.jsonl, ...).
func SegmentPath(base string, k int) string {
	if k <= 1 {
		return base
	}
	ext := filepath.Ext(base)
	return fmt.Sprintf("%s.%06d%s", strings.TrimSuffix(base, ext), k, ext)
}

// Segments lists the existing segment files of the log at base, ordered by
// segment number. Gaps are kept visible: numbers[i] is the number of files[i].
func Segments(base string) (files []string, numbers []int) {
	if _, err := os.Lstat(base); err == nil {
		files, numbers = append(files, base), append(numbers, 1)
	}
	ext := filepath.Ext(base)
	pattern := strings.TrimSuffix(base, ext) + ".[0-9][0-9][0-9][0-9][0-9][0-9]" + ext
	matches, _ := filepath.Glob(pattern)
	sort.Strings(matches) // fixed-width numbers sort numerically
	for _, m := range matches {
		num := strings.TrimSuffix(strings.TrimPrefix(m, strings.TrimSuffix(base, ext)+"."), ext)
		k, err := strconv.Atoi(num)
		if err != nil || k < 2 {
			continue
		}
		files, numbers = append(files, m), append(numbers, k)
	}
	return files, numbers
}

// laterSegment matches the file name of a segment after the first
// (audit.000002.jsonl).
var laterSegment = regexp.MustCompile(`\.[0-9]{6}(\.[^./]*)?$`)

// Logs lists the logs in dir: the first segment of each, every *.jsonl file
// that is not a later segment of another.
func Logs(dir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	var bases []string
	for _, m := range matches {
		if !laterSegment.MatchString(m) {
			bases = append(bases, m)
		}
	}
	return bases, nil
}

// Reader reads the complete lines of one segment file, in order.
type Reader struct {
	f     *os.File
	path  string
	buf   []byte
	start int   // buf[start:end] is read and not yet returned
	end   int   //
	off   int64 // file offset of buf[start]
}

const readSize = 256 << 10

// Open opens the segment at path for reading. It refuses anything but a
// regular file, without blocking on a FIFO.
func Open(path string) (*Reader, error) {
	// O_NONBLOCK: opening a FIFO for reading would wait for a writer.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &os.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	return &Reader{f: os.NewFile(uintptr(fd), path), path: path, buf: make([]byte, readSize)}, nil
}

// Path is the segment's file.
func (r *Reader) Path() string { return r.path }

// Offset is the file offset of the next line Next returns.
func (r *Reader) Offset() int64 { return r.off }

// Next returns the next complete line, newline included; the slice is valid
// until the next call. At the end of the complete lines it returns io.EOF;
// bytes after the last newline stay pending (Pending), and a later call
// reads on from them, so a Reader can follow a segment that is still being
// written.
func (r *Reader) Next() ([]byte, error) {
	scanned := 0 // buf[start:start+scanned] holds no newline
	for {
		if i := bytes.IndexByte(r.buf[r.start+scanned:r.end], '\n'); i >= 0 {
			n := scanned + i + 1
			line := r.buf[r.start : r.start+n]
			r.start += n
			r.off += int64(n)
			return line, nil
		}
		scanned = r.end - r.start
		if scanned >= MaxLine {
			return nil, ErrLineTooLong
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// fill reads more of the file after buf[start:end], making room first.
func (r *Reader) fill() error {
	if r.start > 0 {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	if r.end == len(r.buf) {
		grown := make([]byte, min(2*len(r.buf), MaxLine+readSize))
		copy(grown, r.buf[:r.end])
		r.buf = grown
	}
	n, err := r.f.Read(r.buf[r.end:])
	r.end += n
	if n > 0 {
		return nil
	}
	if err == nil || err == io.EOF {
		return io.EOF
	}
	return fmt.Errorf("reading %s: %w", r.path, err)
}

// SeekLine moves to off, which must be the start of a line (0, or just after
// a newline): reading from elsewhere would return a fragment as a line.
func (r *Reader) SeekLine(off int64) error {
	if off > 0 {
		var before [1]byte
		if _, err := r.f.ReadAt(before[:], off-1); err != nil || before[0] != '\n' {
			return fmt.Errorf("%s offset %d is not the start of a line", r.path, off)
		}
	}
	if _, err := r.f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("seeking %s: %w", r.path, err)
	}
	r.start, r.end, r.off = 0, 0, off
	return nil
}

// Size is the file's size now.
func (r *Reader) Size() (int64, error) {
	info, err := r.f.Stat()
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

// FirstLine returns the first complete line of the segment at path
// (newline included), or nil if it has none yet, and the file's size.
func FirstLine(path string) ([]byte, int64, error) {
	rd, err := Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer rd.Close()
	size, err := rd.Size()
	if err != nil {
		return nil, 0, err
	}
	line, err := rd.Next()
	if err == io.EOF {
		return nil, size, nil
	}
	if err != nil {
		return nil, size, err
	}
	return append([]byte(nil), line...), size, nil
}

// EndOfLines is the offset just after the last complete line of the
// segment at path (0 if it has none): where a reader that follows the
// segment from now on starts. It reads the file backwards from its end.
func EndOfLines(path string) (int64, error) {
	rd, err := Open(path)
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	size, err := rd.Size()
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 64<<10)
	for end := size; end > 0 && size-end <= MaxLine; {
		start := max(0, end-int64(len(buf)))
		n, err := rd.f.ReadAt(buf[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("reading %s: %w", path, err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// Pending returns the bytes after the last complete line (at most MaxLine
// of them), once Next has returned io.EOF: a torn line, or one still being
// written.
func (r *Reader) Pending() []byte { return r.buf[r.start:r.end] }

// Close closes the file.
func (r *Reader) Close() error { return r.f.Close() }
