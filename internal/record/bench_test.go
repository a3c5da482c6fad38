package record_test

// The hot path as the pipeline runs it needs the decoder, which imports
// record: these tests are in the external test package.

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"unsafe"

	"github.com/agenttrace/agenttrace/internal/decoder"
	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/record"
)

type mapCgroups map[uint64]string

func (m mapCgroups) Path(id uint64) (string, bool) {
	p, ok := m[id]
	return p, ok
}

// rawOpen returns the bytes of an open record as the kernel emits it:
// the fixed part, the path and its NUL, the resolved path and its NUL.
func rawOpen(tb testing.TB, path string, flags uint64, ret int64) []byte {
	tb.Helper()
	var r loader.OpenEvent
	r.Hdr = loader.EventHeader{
		Ktime: 1_000_123_456_789, Kseq: 42, CgroupId: 4242, StartTime: 999_000_000_000, ExecSeq: 5,
		ParentStartTime: 998_000_000_000, ParentExecSeq: 4, Kind: loader.KindOpen, Cpu: 1,
		Pid: 4321, Tid: 4321, Ppid: 4320, ParentPid: 4320, Uid: 1000, Gid: 1000, Euid: 1000, Egid: 1000,
		Auid: 4294967295,
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r.Hdr.Comm[0])), len(r.Hdr.Comm)), "python3")
	r.Ret, r.Flags, r.Dirfd, r.Syscall = ret, flags, -100, loader.SyscallOpenat
	names := unsafe.Slice((*byte)(unsafe.Pointer(&r.Names[0])), len(r.Names))
	r.PathLen = uint32(copy(names, path))
	// The file the kernel opened: the same path, resolved.
	r.File = loader.FileInfo{Ino: 1234567, Ctime: 1_700_000_000_123_456_789, Dev: 254 << 20, Mode: 0o100644, MntId: 27,
		Flags: loader.FilePresent, PathLen: uint32(copy(names[r.PathLen+1:], path))}
	n := decoder.OpenSize + int(r.PathLen) + 1 + int(r.File.PathLen) + 1
	raw := make([]byte, n)
	copy(raw, unsafe.Slice((*byte)(unsafe.Pointer(&r)), n))
	return raw
}

func newBenchEncoder() *record.Encoder {
	return record.NewEncoder("build-host-1", "b78835f2-8fc3-4e6c-826a-884af615cd65", 1_735_786_045_000_000_000-1_000_000_000_000,
		mapCgroups{4242: "/agenttrace/run-1795742577425387181-7707"})
}

// BenchmarkEncodeOpen is the pipeline's hot path for the most frequent
// record: decode one raw open record and append its line to a reused buffer.
func BenchmarkEncodeOpen(b *testing.B) {
	raw := rawOpen(b, "/usr/lib/x86_64-linux-gnu/libc.so.6", 0o2000000, 3) // O_RDONLY|O_CLOEXEC
	enc := newBenchEncoder()
	var ev record.Event
	prev := sha256.Sum256([]byte("{}\n"))
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for i := 0; b.Loop(); i++ {
		if err := decoder.Decode(raw, &ev); err != nil {
			b.Fatal(err)
		}
		buf = enc.AppendEvent(buf[:0], uint64(i+1), &prev, &ev)
	}
}

// TestEncodeOpenAllocs keeps the steady state of the hot path free of
// allocations.
func TestEncodeOpenAllocs(t *testing.T) {
	raw := rawOpen(t, "/usr/lib/x86_64-linux-gnu/libc.so.6", 0o2000000, 3)
	enc := newBenchEncoder()
	var ev record.Event
	prev := sha256.Sum256([]byte("{}\n"))
	buf := make([]byte, 0, 4096)
	seq := uint64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		if err := decoder.Decode(raw, &ev); err != nil {
			t.Fatal(err)
		}
		buf = enc.AppendEvent(buf[:0], seq, &prev, &ev)
	})
	if allocs != 0 {
		t.Errorf("decode + AppendEvent of an open record: %v allocs/op, want 0", allocs)
	}
	if !bytes.Contains(buf, []byte(`"path":"/usr/lib/x86_64-linux-gnu/libc.so.6"`)) {
		t.Errorf("the record is not the open: %s", buf)
	}
}

// attributedEncoder is the hot path as a session runs it: attribution on,
// the default sensitive list, and the open's process inside a tool call.
func attributedEncoder(tb testing.TB) (*record.Encoder, []byte) {
	tb.Helper()
	raw := rawOpen(tb, "/usr/lib/x86_64-linux-gnu/libc.so.6", 0o2000000, 3)
	enc := newBenchEncoder()
	enc.SetSensitive(record.DefaultSensitive())
	// rawOpen's process 4321 was created by 4320: a tool call.
	enc.Append(nil, 1, &[32]byte{}, 1, &record.Start{Pid: 4000})
	return enc, raw
}

// BenchmarkEncodeOpenAttributed is BenchmarkEncodeOpen with tool-call
// attribution and sensitive-path tagging on.
func BenchmarkEncodeOpenAttributed(b *testing.B) {
	enc, raw := attributedEncoder(b)
	var ev record.Event
	prev := sha256.Sum256([]byte("{}\n"))
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for i := 0; b.Loop(); i++ {
		if err := decoder.Decode(raw, &ev); err != nil {
			b.Fatal(err)
		}
		buf = enc.AppendEvent(buf[:0], uint64(i+1), &prev, &ev)
	}
}

// TestEncodeAttributedAllocs keeps the attributed hot path free of
// allocations in steady state: opens, and processes that come and go (fork,
// exec, exit).
func TestEncodeAttributedAllocs(t *testing.T) {
	enc, raw := attributedEncoder(t)
	var ev record.Event
	prev := sha256.Sum256([]byte("{}\n"))
	buf := make([]byte, 0, 4096)
	seq := uint64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		if err := decoder.Decode(raw, &ev); err != nil {
			t.Fatal(err)
		}
		buf = enc.AppendEvent(buf[:0], seq, &prev, &ev)
	})
	if allocs != 0 {
		t.Errorf("decode + AppendEvent of an attributed, tagged open record: %v allocs/op, want 0", allocs)
	}
	if !bytes.Contains(buf, []byte(`"tool_call":"4321-999000000000-4"`)) {
		t.Errorf("the record is not attributed: %s", buf)
	}

	// A root process (created by agenttrace, pid 50) whose children start
	// tool calls and exit.
	const agenttracePid = 50
	enc.Append(nil, 1, &prev, 1, &record.Start{Pid: agenttracePid})
	agent := record.Proc{Pid: 100, Tid: 100, Ppid: agenttracePid, Comm: "sh",
		ExecID: record.ExecID{Pid: 100, Start: 1000, Seq: 4}, ParentExecID: record.ExecID{Pid: agenttracePid, Start: 500, Seq: 4}}
	// The events are reused, as the pipeline reuses its one Event:
	// AppendEvent's event escapes (an Event built on the caller's stack
	// would be moved to the heap), the encoder itself must not allocate.
	var fork, exit record.Event
	n := uint32(0)
	allocs = testing.AllocsPerRun(1000, func() {
		n++
		pid, start := 200+n%7, uint64(2000+n)
		tool := record.Proc{Pid: pid, Tid: pid, Ppid: agent.Pid, Comm: "sh",
			ExecID: record.ExecID{Pid: pid, Start: start, Seq: 4}, ParentExecID: agent.ExecID}
		fork = record.Event{Kind: record.KindFork, Proc: agent, Fork: record.Fork{ChildPid: pid, ChildExecID: tool.ExecID}}
		exit = record.Event{Kind: record.KindExit, Proc: tool}
		buf = enc.AppendEvent(buf[:0], 1, &prev, &fork)
		if !bytes.Contains(buf, []byte(`"child_tool_call":"`)) {
			t.Fatalf("the fork does not start a tool call: %s", buf)
		}
		buf = enc.AppendEvent(buf[:0], 1, &prev, &exit)
	})
	if allocs != 0 {
		t.Errorf("fork + exit of a tool call: %v allocs/op, want 0", allocs)
	}
}
