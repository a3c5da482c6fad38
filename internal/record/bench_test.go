package record

import (
	"testing"
	"unsafe"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/decoder"
	"github.com/agenttrace/agenttrace/internal/loader"
)

type mapCgroups map[uint64]string

func (m mapCgroups) Path(id uint64) (string, bool) {
	p, ok := m[id]
	return p, ok
}

// rawOpen returns the bytes of an open record as the kernel emits it:
// the fixed part, the path and its NUL.
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
	r.PathLen = uint32(copy(unsafe.Slice((*byte)(unsafe.Pointer(&r.Path[0])), len(r.Path)), path))
	n := decoder.OpenSize + int(r.PathLen) + 1
	raw := make([]byte, n)
	copy(raw, unsafe.Slice((*byte)(unsafe.Pointer(&r)), n))
	return raw
}

func newBenchEncoder() *Encoder {
	return NewEncoder("build-host-1", "b78835f2-8fc3-4e6c-826a-884af615cd65", 1_735_786_045_000_000_000-1_000_000_000_000,
		mapCgroups{4242: "/agenttrace/run-1795742577425387181-7707"})
}

// BenchmarkEncodeOpen is the pipeline's hot path for the most frequent
// record: decode one raw open record and append its line to a reused buffer.
func BenchmarkEncodeOpen(b *testing.B) {
	raw := rawOpen(b, "/usr/lib/x86_64-linux-gnu/libc.so.6", 0o2000000, 3) // O_RDONLY|O_CLOEXEC
	enc := newBenchEncoder()
	var ev decoder.Event
	prev := chain.HashLine([]byte("{}\n"))
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
	var ev decoder.Event
	prev := chain.HashLine([]byte("{}\n"))
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
}
