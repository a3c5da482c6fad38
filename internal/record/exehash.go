package record

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// MaxHashBytes bounds the executables ExeHasher reads.
const MaxHashBytes = 1 << 30

// exeKey is an executable's identity and change time at the exec.
type exeKey struct {
	dev   uint32
	ino   uint64
	ctime uint64
}

// ExeHasher computes the SHA-256 of executed images for exec records, from
// the file that was executed, never from a file that merely has its name:
//
//   - /proc/PID/exe while the process runs the image: accepted when its
//     device and inode are the record's and either its change time is too,
//     or the kernel had the file write-protected at the exec (it refuses
//     writes to a file a process runs: ETXTBSY) and the process still runs
//     it once the file is read (then no write can have happened since the
//     exec, whatever changed its metadata: an unlink, a chmod);
//   - else the path the kernel recorded, if its device, inode and change
//     time are the record's.
//
// Results are cached by device, inode and change time. It belongs to the
// encoder: not safe for concurrent use.
type ExeHasher struct {
	cache map[exeKey]string
	proc  string // the proc mount
}

// NewExeHasher returns a hasher with an empty cache.
func NewExeHasher() *ExeHasher {
	return &ExeHasher{cache: map[exeKey]string{}, proc: "/proc"}
}

// Sum returns the hex SHA-256 of the image that process (pid, started at
// start, boot-time ns) executed, as its exec record has it (path and f),
// or why it could not be computed.
func (h *ExeHasher) Sum(pid uint32, start uint64, path string, f *ExeFile) (sum, why string) {
	key := exeKey{f.Dev, f.Ino, f.Ctime}
	if sum, ok := h.cache[key]; ok {
		return sum, ""
	}
	sum, err := h.fromProcess(pid, start, key, f.WriteDenied)
	if err != nil && !f.Fileless && !f.Deleted && len(path) > 0 && path[0] == '/' {
		var errPath error
		if sum, errPath = hashFile(path, key, nil); errPath == nil {
			err = nil
		} else {
			err = fmt.Errorf("%v; %v", err, errPath)
		}
	}
	if err != nil {
		return "", err.Error()
	}
	h.cache[key] = sum
	return sum, ""
}

var (
	errChanged = errors.New("is not the file that was executed (device, inode or change time differ)")
	errGone    = errors.New("the process no longer runs the image")
)

// fromProcess hashes /proc/PID/exe (see ExeHasher).
func (h *ExeHasher) fromProcess(pid uint32, start uint64, key exeKey, writeDenied bool) (string, error) {
	dir := h.proc + "/" + strconv.FormatUint(uint64(pid), 10)
	running := func() bool { return startTicks(dir) == start/1e7 }
	if !running() {
		return "", fmt.Errorf("%s: %w", dir, errGone)
	}
	var stillRunning func() bool
	if writeDenied {
		stillRunning = running
	}
	return hashFile(dir+"/exe", key, stillRunning)
}

// startTicks is field 22 of /proc/PID/stat: the start time in clock ticks
// (USER_HZ, 100 per second) since boot; 0 if unreadable.
func startTicks(dir string) uint64 {
	data, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return 0
	}
	// comm, in parentheses, may contain anything: fields follow the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	fields := bytes.Fields(data[i+1:])
	if len(fields) < 20 {
		return 0
	}
	n, _ := strconv.ParseUint(string(fields[19]), 10, 64)
	return n
}

// hashFile hashes the file at name if it is the one key identifies. With
// stillRunning, a change time that differs is accepted if stillRunning
// holds after the read (the file was write-protected all along).
func hashFile(name string, key exeKey, stillRunning func() bool) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	ctimeSame, err := sameFile(f, key)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if !ctimeSame && stillRunning == nil {
		return "", fmt.Errorf("%s %w", name, errChanged)
	}
	d := sha256.New()
	n, err := io.Copy(d, io.LimitReader(f, MaxHashBytes+1))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", name, err)
	}
	if n > MaxHashBytes {
		return "", fmt.Errorf("%s is larger than %d bytes", name, MaxHashBytes)
	}
	if ctimeSame {
		// Changed while it was read: the sum may be of neither version.
		if same, err := sameFile(f, key); err != nil || !same {
			return "", fmt.Errorf("%s changed while it was read", name)
		}
	} else if !stillRunning() {
		return "", fmt.Errorf("%s: the process exited while its image was read, and the image's change time differs from the exec's", name)
	}
	return hex.EncodeToString(d.Sum(nil)), nil
}

// sameFile checks f's device and inode against key, and reports whether
// its change time is key's too.
func sameFile(f *os.File, key exeKey) (ctimeSame bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false, err
	}
	if kernelDev(st.Dev) != key.dev || st.Ino != key.ino {
		return false, errChanged
	}
	return uint64(st.Ctim.Nano()) == key.ctime, nil
}
