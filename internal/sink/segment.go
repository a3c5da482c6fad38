package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
)

// ErrLocked: another process holds the lock (writes the log, runs the
// daemon on the state directory). Its message names the holder.
var ErrLocked = errors.New("in use by another agenttrace")

// LockPath is the lock file of the log at base: one writer per log.
func LockPath(base string) string { return base + ".lock" }

// lock takes the log's lock, or fails with ErrLocked naming the pid that
// holds it, having changed nothing (the lock file of a log in use exists).
// created says the lock file did not exist before.
func lock(base string) (f *os.File, created bool, err error) {
	_, statErr := os.Lstat(LockPath(base))
	f, err = LockFile(LockPath(base), "the log "+base)
	return f, err == nil && os.IsNotExist(statErr), err
}

// LockFile takes an exclusive lock on path (created if need be), held until
// the file is closed, for what: a second process gets ErrLocked with the
// holder's pid. The lock goes with the process, even killed.
func LockFile(path, what string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", what, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := "another process"
		if data, rerr := io.ReadAll(io.LimitReader(f, 64)); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(data))); perr == nil {
				holder = "pid " + strconv.Itoa(pid)
			}
		}
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s of %s is held by %s (%s): stop that agenttrace first", ErrLocked, "the lock", what, holder, path)
		}
		return nil, fmt.Errorf("locking %s: %w", what, err)
	}
	// Who holds it, for the next one who tries.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// newSegmentName is where a segment is written before it exists: in the
// log's directory (so the rename is atomic), hidden, and ours alone while
// we hold the log's lock.
func newSegmentName(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".new")
}

// startSegment begins segment w.segNum: its header continuing prev (nil
// for a new log) and then bodies (recoveries, a gap carried over) are
// written to a file beside it, made durable, and only then moved into
// place, never over an existing file. A segment thus exists only once its
// header is on disk; a crash or a full disk leaves at most the hidden file,
// which the next start removes. On failure the chain is as it was.
func (w *Writer) startSegment(prev *chain.Tail, bodies []record.Body) error {
	path := logfile.SegmentPath(w.opts.Base, w.segNum)
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("log segment %s already exists: agenttrace never overwrites a file", path)
	}
	mode := w.opts.Mode
	if mode == 0 {
		mode = 0o600
	}
	tmp := newSegmentName(path)
	os.Remove(tmp) // a crash's leftover: never a segment
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND|unix.O_CLOEXEC, mode)
	if err != nil {
		return fmt.Errorf("creating log segment %s: %w", path, err)
	}
	saved := w.chainState()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		w.restoreChain(saved)
		return err
	}

	hdr := record.Header{
		Schema: record.SchemaVersion, AgenttraceVersion: w.opts.Version, LogID: w.logID,
		Segment: w.segNum, Key: w.opts.VerifierKey,
	}
	if w.segNum > 1 {
		prevFile := logfile.SegmentPath(w.opts.Base, w.segNum-1)
		if prev != nil {
			prevFile = prev.Path
		}
		hdr.Continues = &record.Continues{
			SegmentFile: filepath.Base(prevFile), LastSeq: w.seq, LastHash: w.prev.String(), Tree: w.tree.State(),
		}
	}
	w.appendLocked(record.BootTime(), &hdr)
	for _, b := range bodies {
		w.appendLocked(record.BootTime(), b)
	}
	if _, err := f.Write(w.buf); err != nil {
		return fail(fmt.Errorf("writing log segment %s: %w", path, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("syncing log segment %s: %w", path, err))
	}
	if err := renameNoReplace(tmp, path); err != nil {
		return fail(err)
	}
	syncDir(filepath.Dir(path))

	if w.f != nil {
		w.f.Close()
	}
	w.f, w.segPath, w.segBytes, w.segOpened = f, path, int64(len(w.buf)), time.Now()
	w.buf = w.buf[:0]
	w.paths = append(w.paths, path)
	w.counts.Headers++
	for _, b := range bodies {
		if _, ok := b.(*record.Recovery); ok {
			w.counts.Recoveries++
		}
	}
	w.lastCP = time.Now()
	return nil
}

// renameNoReplace moves from to to, failing if to exists.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A file system without RENAME_NOREPLACE: link fails if to exists.
		if err = unix.Link(from, to); err == nil {
			err = unix.Unlink(from)
		}
	}
	switch {
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("log segment %s already exists: agenttrace never overwrites a file", to)
	case err != nil:
		return fmt.Errorf("creating log segment %s: %w", to, err)
	}
	return nil
}

// syncDir makes a directory's entries durable (a new segment's name).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// chain is the writer's chain state, saved to undo a segment start that failed.
type chainState struct {
	seq   uint64
	prev  chain.Hash
	tree  chain.Tree
	since uint64
	buf   int
}

func (w *Writer) chainState() chainState {
	return chainState{w.seq, w.prev, w.tree.Clone(), w.since, len(w.buf)}
}

func (w *Writer) restoreChain(s chainState) {
	w.seq, w.prev, w.tree, w.since, w.buf = s.seq, s.prev, s.tree, s.since, w.buf[:s.buf]
}

// leftover is a segment with no complete record: the start of a segment
// that a crash or a full disk cut before its header was whole (written by a
// version that created segments in place). It is never a reason to refuse
// the log: the next segment's recovery record describes its bytes.
type leftover struct {
	path string
	data []byte
}

// findLeftovers splits the trailing segments that hold no complete line
// off files (and numbers).
func findLeftovers(files []string, numbers []int) ([]string, []int, []leftover, error) {
	var lefts []leftover
	for len(files) > 0 {
		last := len(files) - 1
		line, size, err := logfile.FirstLine(files[last])
		if err != nil || line != nil {
			break
		}
		if size > logfile.MaxLine {
			break // not a cut header: let ReadTail say what it is
		}
		data, err := os.ReadFile(files[last])
		if err != nil {
			return nil, nil, nil, fmt.Errorf("reading log segment: %w", err)
		}
		lefts = append([]leftover{{files[last], data}}, lefts...)
		files, numbers = files[:last], numbers[:last]
	}
	return files, numbers, lefts, nil
}

// The records a writer could not write when it stopped (the log refused
// writes to the end) are counted in a small file beside the log, so the next
// writer puts them in a gap record: a loss is never silent, even across a
// stop on a full disk. Its space is allocated when the log opens, so that
// writing the counts later needs no free space.
const unwrittenSize = 4096

// UnwrittenPath is the file of the counts of the log at base.
func UnwrittenPath(base string) string { return base + ".unwritten" }

// unwrittenCounts is the file's content.
type unwrittenCounts struct {
	Lost  record.Counts `json:"lost"`
	From  time.Time     `json:"from"`
	To    time.Time     `json:"to"`
	Stage string        `json:"stage"`
}

// readUnwritten returns the counts a previous writer left for the log at
// base, if any.
func readUnwritten(base string) (*unwrittenCounts, error) {
	buf, err := os.ReadFile(UnwrittenPath(base))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", UnwrittenPath(base), err)
	}
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	if len(bytes.TrimSpace(buf)) == 0 {
		return nil, nil
	}
	left := new(unwrittenCounts)
	if err := json.Unmarshal(buf, left); err != nil || len(left.Lost) == 0 {
		return nil, fmt.Errorf("%s does not hold the counts agenttrace writes there (%v): move it away to continue the log", UnwrittenPath(base), err)
	}
	return left, nil
}

// openUnwritten opens the counts file, creating it, and gives it its
// space, so that a stop on a full disk can still write the counts.
func openUnwritten(base string, mode os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(UnwrittenPath(base), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, mode)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", UnwrittenPath(base), err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, unwrittenSize); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		f.Close()
		return nil, fmt.Errorf("allocating %s: %w", UnwrittenPath(base), err)
	}
	return f, nil
}

// writeUnwritten stores c in the allocated file and syncs it.
func writeUnwritten(f *os.File, c *unwrittenCounts) error {
	buf := make([]byte, unwrittenSize)
	if c != nil {
		data, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if len(data) >= unwrittenSize {
			return fmt.Errorf("the counts of unwritten records take %d bytes, more than %d", len(data), unwrittenSize)
		}
		copy(buf, data)
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		return err
	}
	return f.Sync()
}

// countLines counts the complete lines in b by record type.
func countLines(b []byte, into record.Counts, kernel bool) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			i = len(b) - 1
		}
		if env, err := record.ParseEnvelope(b[:i+1]); err == nil && (kernel || !record.IsKernel(env.Type)) {
			into[env.Type]++
		}
		b = b[i+1:]
	}
}
