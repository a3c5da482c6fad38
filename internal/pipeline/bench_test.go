package pipeline

import (
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/mod/sumdb/note"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/decoder"
	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/sink"
)

type oneCgroup struct{}

func (oneCgroup) Path(uint64) (string, bool) { return "/agenttrace/run-1795742577425387181-7707", true }

// rawOpenRecord is an open record as the ring buffer delivers it.
func rawOpenRecord(path string) []byte {
	var r loader.OpenEvent
	r.Hdr = loader.EventHeader{Ktime: 1_000_123_456_789, Kseq: 42, CgroupId: 4242, StartTime: 999_000_000_000,
		ExecSeq: 5, ParentStartTime: 998_000_000_000, ParentExecSeq: 4, Kind: loader.KindOpen, Cpu: 1,
		Pid: 4321, Tid: 4321, Ppid: 4320, ParentPid: 4320, Uid: 1000, Gid: 1000, Euid: 1000, Egid: 1000, Auid: 4294967295}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r.Hdr.Comm[0])), len(r.Hdr.Comm)), "python3")
	r.Ret, r.Flags, r.Dirfd, r.Syscall = 3, 0o2000000, -100, loader.SyscallOpenat
	names := unsafe.Slice((*byte)(unsafe.Pointer(&r.Names[0])), len(r.Names))
	r.PathLen = uint32(copy(names, path))
	// The file the kernel opened: the same path, resolved.
	r.File = loader.FileInfo{Ino: 1234567, Ctime: 1_700_000_000_123_456_789, Dev: 254 << 20, Mode: 0o100644, MntId: 27,
		Flags: loader.FilePresent, PathLen: uint32(copy(names[r.PathLen+1:], path))}
	n := decoder.OpenSize + int(r.PathLen) + 1 + int(r.File.PathLen) + 1
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&r)), n)...)
}

// BenchmarkHotPath is the user-space pipeline for one event, end to end:
// decode the raw record, encode its JSON line, chain it (SHA-256, Merkle
// leaf), and write it to the log file, with checkpoints signed as in
// production. ns/op is per event; 1e9 / ns/op is events per second on one core.
func BenchmarkHotPath(b *testing.B) {
	skey, vkey, err := chain.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	enc := record.NewEncoder("build-host-1", "b78835f2-8fc3-4e6c-826a-884af615cd65", 0, oneCgroup{})
	log, err := sink.Open(sink.Options{Base: filepath.Join(b.TempDir(), "bench.jsonl"), Signer: signer,
		VerifierKey: vkey, Encoder: enc, Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	raw := rawOpenRecord("/usr/lib/x86_64-linux-gnu/libc.so.6")
	var ev record.Event
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := decoder.Decode(raw, &ev); err != nil {
			b.Fatal(err)
		}
		if err := log.AppendEvent(&ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
}
