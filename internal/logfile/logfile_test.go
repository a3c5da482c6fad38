package logfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSegmentPath(t *testing.T) {
	for _, tc := range []struct {
		base string
		k    int
		want string
	}{
		{"/var/log/agenttrace/audit.jsonl", 1, "/var/log/agenttrace/audit.jsonl"},
		{"/var/log/agenttrace/audit.jsonl", 0, "/var/log/agenttrace/audit.jsonl"},
		{"/var/log/agenttrace/audit.jsonl", 2, "/var/log/agenttrace/audit.000002.jsonl"},
		{"/var/log/agenttrace/audit.jsonl", 123456, "/var/log/agenttrace/audit.123456.jsonl"},
		{"audit", 3, "audit.000003"},
		{"dir.d/audit", 3, "dir.d/audit.000003"},
	} {
		if got := SegmentPath(tc.base, tc.k); got != tc.want {
			t.Errorf("SegmentPath(%q, %d) = %q, want %q", tc.base, tc.k, got, tc.want)
		}
	}
}

func touch(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSegments(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "audit.jsonl")
	if files, numbers := Segments(base); len(files) != 0 || len(numbers) != 0 {
		t.Fatalf("Segments of no log = %v, %v", files, numbers)
	}
	for _, name := range []string{
		"audit.000004.jsonl", "audit.000002.jsonl", "audit.jsonl",
		"audit.000001.jsonl",     // segment 1 is the base itself
		"audit.00003.jsonl",      // not six digits
		"audit.000003.jsonl.tmp", // another extension
		"other.000003.jsonl",
		"audit.000010.jsonl",
	} {
		touch(t, filepath.Join(dir, name), "")
	}
	files, numbers := Segments(base)
	want := []string{base, SegmentPath(base, 2), SegmentPath(base, 4), SegmentPath(base, 10)}
	if !slices.Equal(files, want) || !slices.Equal(numbers, []int{1, 2, 4, 10}) {
		t.Errorf("Segments = %v, %v\nwant %v, [1 2 4 10]", files, numbers, want)
	}
	// A gap before segment 1 stays visible too.
	os.Remove(base)
	if files, numbers := Segments(base); len(files) != 3 || numbers[0] != 2 {
		t.Errorf("Segments without segment 1 = %v, %v", files, numbers)
	}
}

func open(t *testing.T, path string) *Reader {
	t.Helper()
	rd, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	return rd
}

// next reads the next line, which must be want.
func next(t *testing.T, rd *Reader, want string, offsetAfter int64) {
	t.Helper()
	line, err := rd.Next()
	if err != nil || string(line) != want {
		t.Fatalf("Next = %q, %v, want %q", line, err, want)
	}
	if rd.Offset() != offsetAfter {
		t.Fatalf("Offset after %q = %d, want %d", want, rd.Offset(), offsetAfter)
	}
}

func eof(t *testing.T, rd *Reader, pending string) {
	t.Helper()
	if line, err := rd.Next(); err != io.EOF {
		t.Fatalf("Next = %q, %v, want io.EOF", line, err)
	}
	if got := string(rd.Pending()); got != pending {
		t.Fatalf("Pending = %q, want %q", got, pending)
	}
}

func TestReaderLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	touch(t, path, "{\"a\":1}\n\n{\"b\":2}\n{\"torn")
	rd := open(t, path)
	if rd.Path() != path || rd.Offset() != 0 {
		t.Fatalf("Path, Offset = %q, %d", rd.Path(), rd.Offset())
	}
	next(t, rd, "{\"a\":1}\n", 8)
	next(t, rd, "\n", 9) // an empty line is a line: verification decides what it is
	next(t, rd, "{\"b\":2}\n", 17)
	eof(t, rd, `{"torn`)
	eof(t, rd, `{"torn`) // still at the end, still pending
	if size, err := rd.Size(); err != nil || size != 23 {
		t.Errorf("Size = %d, %v", size, err)
	}

	// The writer completes the line and goes on: the reader follows.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("\":3}\n{\"c\":4}\n")
	f.Close()
	next(t, rd, "{\"torn\":3}\n", 28)
	next(t, rd, "{\"c\":4}\n", 36)
	eof(t, rd, "")
}

func TestReaderEmptyAndNoNewline(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.jsonl")
	touch(t, empty, "")
	eof(t, open(t, empty), "")

	torn := filepath.Join(dir, "torn.jsonl")
	touch(t, torn, `{"v":1,"seq":18,"prev":"0123`)
	rd := open(t, torn)
	eof(t, rd, `{"v":1,"seq":18,"prev":"0123`)
	if rd.Offset() != 0 {
		t.Errorf("Offset = %d, want 0 (the torn line starts the file)", rd.Offset())
	}

	if line, size, err := FirstLine(torn); err != nil || line != nil || size != 28 {
		t.Errorf("FirstLine(torn only) = %q, %d, %v", line, size, err)
	}
	touch(t, torn, "{\"a\":1}\n{\"b\"")
	if line, size, err := FirstLine(torn); err != nil || string(line) != "{\"a\":1}\n" || size != 12 {
		t.Errorf("FirstLine = %q, %d, %v", line, size, err)
	}
}

// TestReaderLongLines: lines longer than the read size are returned whole;
// a run of bytes without a newline longer than MaxLine is not a log.
func TestReaderLongLines(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", 3*readSize+17) + "\n"
	atMax := strings.Repeat("y", MaxLine-1) + "\n"
	path := filepath.Join(dir, "long.jsonl")
	touch(t, path, "a\n"+long+atMax+"b\n")
	rd := open(t, path)
	next(t, rd, "a\n", 2)
	next(t, rd, long, int64(2+len(long)))
	line, err := rd.Next()
	if err != nil || len(line) != MaxLine || !bytes.Equal(line, []byte(atMax)) {
		t.Fatalf("Next of a line of MaxLine bytes = %d bytes, %v", len(line), err)
	}
	next(t, rd, "b\n", int64(2+len(long)+MaxLine+2))
	eof(t, rd, "")

	tooLong := filepath.Join(dir, "binary")
	touch(t, tooLong, "a\n"+strings.Repeat("z", 2*MaxLine))
	rd = open(t, tooLong)
	next(t, rd, "a\n", 2)
	if line, err := rd.Next(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("Next of %d bytes without a newline = %d bytes, %v, want ErrLineTooLong", 2*MaxLine, len(line), err)
	}
}

func TestReaderSeekLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	touch(t, path, "{\"a\":1}\n{\"b\":2}\n{\"c\"")
	rd := open(t, path)
	next(t, rd, "{\"a\":1}\n", 8)
	if err := rd.SeekLine(16); err != nil {
		t.Fatal(err)
	}
	if rd.Offset() != 16 {
		t.Errorf("Offset after SeekLine(16) = %d", rd.Offset())
	}
	eof(t, rd, `{"c"`)
	if err := rd.SeekLine(8); err != nil {
		t.Fatal(err)
	}
	next(t, rd, "{\"b\":2}\n", 16)
	for _, off := range []int64{1, 7, 9, 15, 17, 20, 21, 1000} {
		if err := rd.SeekLine(off); err == nil {
			t.Errorf("SeekLine(%d) (not the start of a line) accepted it", off)
		}
	}
	// A refused SeekLine leaves the reader where it was.
	eof(t, rd, `{"c"`)
	if err := rd.SeekLine(0); err != nil {
		t.Fatal(err)
	}
	next(t, rd, "{\"a\":1}\n", 8)
}

// TestOpenRefuses: only regular files are read; a FIFO must not block the
// reader (waiting for a writer) nor a device feed it forever.
func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "audit.jsonl")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		rd, err := Open(fifo)
		if err == nil {
			rd.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotRegular) {
			t.Errorf("Open(FIFO) = %v, want ErrNotRegular", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Open(FIFO) blocks")
	}
	if _, _, err := FirstLine(fifo); !errors.Is(err, ErrNotRegular) {
		t.Errorf("FirstLine(FIFO) = %v, want ErrNotRegular", err)
	}
	for _, path := range []string{"/dev/zero", "/dev/null", dir} {
		if rd, err := Open(path); !errors.Is(err, ErrNotRegular) {
			if err == nil {
				rd.Close()
			}
			t.Errorf("Open(%s) = %v, want ErrNotRegular", path, err)
		}
	}
	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want ErrNotExist", err)
	}
	// A symbolic link to a regular file is read.
	target := filepath.Join(dir, "target")
	touch(t, target, "x\n")
	link := filepath.Join(dir, "link")
	os.Symlink(target, link)
	next(t, open(t, link), "x\n", 2)
}
