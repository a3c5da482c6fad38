package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// drainTimeout bounds the wait for a tracer to write what a slice made.
const drainTimeout = 2 * time.Minute

// logSize is the size of a file, 0 if it does not exist yet.
func logSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// awaitExitRecord waits until agenttrace's log at path holds, after offset
// from, the exit record of process pid. agenttrace writes its records in the
// order the kernel reserved them in the ring buffer, and the kernel reserves
// a process's exit record after the records of all its syscalls and after
// the exit records of the children it waited for. So once that record is in
// the file, every record the process made is written: the tracer has no
// leftover work of the slice that a following slice would run against.
//
// A lost exit record (a full ring) must not hang the run: then the wait ends
// once the ring has been read and the file has stopped growing for a second
// (agenttrace polls the ring every 100 ms and flushes every 200 ms), and
// found is false. It returns how long it waited.
func awaitExitRecord(ctx context.Context, path string, from int64, pid int) (waited time.Duration, found bool, err error) {
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	key := []byte(`"proc":{"pid":` + strconv.Itoa(pid) + `,"tid":` + strconv.Itoa(pid) + `,`)
	exit := []byte(`"type":"exit"`)
	buf := make([]byte, 4<<20)
	var partial []byte // a line not yet written to its end
	off, grew := from, time.Now()
	for {
		n, rerr := f.ReadAt(buf, off)
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return time.Since(start), false, rerr
		}
		if n > 0 {
			off += int64(n)
			grew = time.Now()
			data := buf[:n]
			if len(partial) > 0 {
				data = append(partial, data...)
			}
			last := bytes.LastIndexByte(data, '\n')
			if containsRecord(data[:last+1], exit, key) {
				return time.Since(start), true, nil
			}
			partial = append(partial[:0], data[last+1:]...)
			if n == len(buf) {
				continue // more to read now
			}
		}
		switch {
		case ctx.Err() != nil:
			return time.Since(start), false, ctx.Err()
		case time.Since(grew) > time.Second:
			return time.Since(start), false, nil
		case time.Since(start) > drainTimeout:
			return time.Since(start), false, fmt.Errorf("agenttrace was still writing %s after %v", path, drainTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// containsRecord reports whether one of the whole lines in data holds both
// typ and key.
func containsRecord(data, typ, key []byte) bool {
	for {
		i := bytes.Index(data, typ)
		if i < 0 {
			return false
		}
		start := bytes.LastIndexByte(data[:i], '\n') + 1
		end := bytes.IndexByte(data[i:], '\n')
		if end < 0 {
			end = len(data) - i
		}
		if bytes.Contains(data[start:i+end], key) {
			return true
		}
		data = data[i+end:]
	}
}
