package decoder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"unsafe"

	"github.com/agenttrace/agenttrace/internal/loader"
)

// TestLayout pins the generated Go types to the C layout of
// bpf/agenttrace.h. The expected offsets follow from the header by natural
// alignment (every struct is padded explicitly, never packed):
//
//	event_header: 7 x u64 (0..55), 12 x u32 (56..103), comm[16] (104..119) = 120
//	exec_event:   hdr 120, ret 120, exe_ino 128, 12 x u32 136..183      = 184
//	open_event:   hdr 120, ret/flags/mode/resolve 120..151, dirfd 152,
//	              syscall 156, path_len 160, _pad 164, path 168 + 4096    = 4264
//	connect_event: hdr 120, ret 120, fd 128, syscall 132, addrlen 136,
//	              addr_len 140, addr[128] 144..271                          = 272
//	fork_event:   hdr 120, child_start_time 120, child_pid 128, _pad 132  = 136
//	exit_event:   hdr 120, exit_code 120, _pad 124                         = 128
//	kind_counters: 3 x u64                                                 = 24
//
// If this fails, the header and the generated code have drifted: run
// go generate ./internal/loader and fix the decoder, never the numbers.
func TestLayout(t *testing.T) {
	var (
		h  loader.EventHeader
		x  loader.ExecEvent
		o  loader.OpenEvent
		c  loader.ConnectEvent
		f  loader.ForkEvent
		e  loader.ExitEvent
		kc loader.KindCounters
	)
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(event_header)", unsafe.Sizeof(h), 120},
		{"event_header.ktime", unsafe.Offsetof(h.Ktime), 0},
		{"event_header.kseq", unsafe.Offsetof(h.Kseq), 8},
		{"event_header.cgroup_id", unsafe.Offsetof(h.CgroupId), 16},
		{"event_header.start_time", unsafe.Offsetof(h.StartTime), 24},
		{"event_header.exec_seq", unsafe.Offsetof(h.ExecSeq), 32},
		{"event_header.parent_start_time", unsafe.Offsetof(h.ParentStartTime), 40},
		{"event_header.parent_exec_seq", unsafe.Offsetof(h.ParentExecSeq), 48},
		{"event_header.kind", unsafe.Offsetof(h.Kind), 56},
		{"event_header.cpu", unsafe.Offsetof(h.Cpu), 60},
		{"event_header.pid", unsafe.Offsetof(h.Pid), 64},
		{"event_header.tid", unsafe.Offsetof(h.Tid), 68},
		{"event_header.ppid", unsafe.Offsetof(h.Ppid), 72},
		{"event_header.parent_pid", unsafe.Offsetof(h.ParentPid), 76},
		{"event_header.uid", unsafe.Offsetof(h.Uid), 80},
		{"event_header.gid", unsafe.Offsetof(h.Gid), 84},
		{"event_header.euid", unsafe.Offsetof(h.Euid), 88},
		{"event_header.egid", unsafe.Offsetof(h.Egid), 92},
		{"event_header.auid", unsafe.Offsetof(h.Auid), 96},
		{"event_header.flags", unsafe.Offsetof(h.Flags), 100},
		{"event_header.comm", unsafe.Offsetof(h.Comm), 104},
		{"sizeof(comm)", unsafe.Sizeof(h.Comm), 16},

		{"sizeof(exec_event)", unsafe.Sizeof(x), 184},
		{"exec_event.ret", unsafe.Offsetof(x.Ret), 120},
		{"exec_event.exe_ino", unsafe.Offsetof(x.ExeIno), 128},
		{"exec_event.exe_dev", unsafe.Offsetof(x.ExeDev), 136},
		{"exec_event.exe_mode", unsafe.Offsetof(x.ExeMode), 140},
		{"exec_event.exe_uid", unsafe.Offsetof(x.ExeUid), 144},
		{"exec_event.exe_gid", unsafe.Offsetof(x.ExeGid), 148},
		{"exec_event.dirfd", unsafe.Offsetof(x.Dirfd), 152},
		{"exec_event.at_flags", unsafe.Offsetof(x.AtFlags), 156},
		{"exec_event.syscall", unsafe.Offsetof(x.Syscall), 160},
		{"exec_event.filename_len", unsafe.Offsetof(x.FilenameLen), 164},
		{"exec_event.exe_len", unsafe.Offsetof(x.ExeLen), 168},
		{"exec_event.argc", unsafe.Offsetof(x.Argc), 172},
		{"exec_event.args_len", unsafe.Offsetof(x.ArgsLen), 176},
		{"exec_event.args_size", unsafe.Offsetof(x.ArgsSize), 180},

		{"sizeof(open_event)", unsafe.Sizeof(o), 4264},
		{"open_event.ret", unsafe.Offsetof(o.Ret), 120},
		{"open_event.flags", unsafe.Offsetof(o.Flags), 128},
		{"open_event.mode", unsafe.Offsetof(o.Mode), 136},
		{"open_event.resolve", unsafe.Offsetof(o.Resolve), 144},
		{"open_event.dirfd", unsafe.Offsetof(o.Dirfd), 152},
		{"open_event.syscall", unsafe.Offsetof(o.Syscall), 156},
		{"open_event.path_len", unsafe.Offsetof(o.PathLen), 160},
		{"open_event.path", unsafe.Offsetof(o.Path), 168},
		{"sizeof(open_event.path)", unsafe.Sizeof(o.Path), loader.PathBytes},

		{"sizeof(connect_event)", unsafe.Sizeof(c), 272},
		{"connect_event.ret", unsafe.Offsetof(c.Ret), 120},
		{"connect_event.fd", unsafe.Offsetof(c.Fd), 128},
		{"connect_event.syscall", unsafe.Offsetof(c.Syscall), 132},
		{"connect_event.addrlen", unsafe.Offsetof(c.Addrlen), 136},
		{"connect_event.addr_len", unsafe.Offsetof(c.AddrLen), 140},
		{"connect_event.addr", unsafe.Offsetof(c.Addr), 144},
		{"sizeof(connect_event.addr)", unsafe.Sizeof(c.Addr), 128},

		{"sizeof(fork_event)", unsafe.Sizeof(f), 136},
		{"fork_event.child_start_time", unsafe.Offsetof(f.ChildStartTime), 120},
		{"fork_event.child_pid", unsafe.Offsetof(f.ChildPid), 128},

		{"sizeof(exit_event)", unsafe.Sizeof(e), 128},
		{"exit_event.exit_code", unsafe.Offsetof(e.ExitCode), 120},

		{"sizeof(kind_counters)", unsafe.Sizeof(kc), 24},
		{"kind_counters.lost_ringbuf", unsafe.Offsetof(kc.LostRingbuf), 8},
		{"kind_counters.lost_inflight", unsafe.Offsetof(kc.LostInflight), 16},

		// The decoder's own constants.
		{"HeaderSize", uintptr(HeaderSize), 120},
		{"ExecSize", uintptr(ExecSize), 184},
		{"OpenSize (offset of path)", uintptr(OpenSize), 168},
		{"ConnectSize", uintptr(ConnectSize), 272},
		{"ForkSize", uintptr(ForkSize), 136},
		{"ExitSize", uintptr(ExitSize), 128},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d (bpf/agenttrace.h)", tc.name, tc.got, tc.want)
		}
	}
	// Every member's alignment is at most 8, as in C on x86_64 and arm64.
	for name, align := range map[string]uintptr{
		"event_header": unsafe.Alignof(h), "exec_event": unsafe.Alignof(x), "open_event": unsafe.Alignof(o),
		"connect_event": unsafe.Alignof(c), "fork_event": unsafe.Alignof(f), "exit_event": unsafe.Alignof(e),
	} {
		if align != 8 {
			t.Errorf("alignof(%s) = %d, want 8", name, align)
		}
	}
}

// bytesOf copies the first n bytes of the record *v into a new slice of
// size n+extra (the regions that follow the fixed part start zeroed).
func bytesOf[T any](v *T, n, extra int) []byte {
	b := make([]byte, n+extra)
	copy(b, unsafe.Slice((*byte)(unsafe.Pointer(v)), min(n, int(unsafe.Sizeof(*v)))))
	return b
}

func header(kind uint32) loader.EventHeader {
	h := loader.EventHeader{Ktime: 11, Kseq: 22, CgroupId: 33, StartTime: 44, ExecSeq: 55, ParentStartTime: 66,
		ParentExecSeq: 77, Kind: kind, Cpu: 1, Pid: 100, Tid: 101, Ppid: 99, ParentPid: 98, Uid: 1, Gid: 2,
		Euid: 3, Egid: 4, Auid: 5, Flags: loader.FlagCompat}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&h.Comm[0])), 16), "sh")
	return h
}

// rawExec builds an exec record as emitted: fixed part, filename[4096],
// exe[4096], then argsLen bytes of argv (extra adds bytes beyond).
func rawExec(filename, exe, args string, argsLen uint32, extra int) []byte {
	r := loader.ExecEvent{Hdr: header(loader.KindExec), Ret: -2, ExeIno: 7, ExeDev: 8, ExeMode: 0o100755, ExeUid: 9, ExeGid: 10,
		Dirfd: -100, AtFlags: 0x1000, Syscall: loader.SyscallExecveat, FilenameLen: uint32(len(filename)), ExeLen: uint32(len(exe)),
		Argc: 2, ArgsLen: argsLen, ArgsSize: 99}
	b := bytesOf(&r, ExecSize, 2*pathBytes+len(args)+extra)
	copy(b[ExecSize:], filename)
	copy(b[ExecSize+pathBytes:], exe)
	copy(b[ExecSize+2*pathBytes:], args)
	return b
}

// rawOpen builds an open record as emitted: the fixed part, the path and
// its NUL; pathLen overrides the length field.
func rawOpen(path string, pathLen uint32) []byte {
	r := loader.OpenEvent{Hdr: header(loader.KindOpen), Ret: 3, Flags: 0o2000000, Mode: 0o644, Resolve: 8, Dirfd: 5,
		Syscall: loader.SyscallOpenat2, PathLen: pathLen}
	b := bytesOf(&r, OpenSize, len(path)+1)
	copy(b[OpenSize:], path)
	return b
}

func rawConnect(addr []byte, addrLen uint32) []byte {
	r := loader.ConnectEvent{Hdr: header(loader.KindConnect), Ret: -111, Fd: 3, Syscall: loader.SyscallConnect, Addrlen: 16, AddrLen: addrLen}
	copy(r.Addr[:], addr)
	return bytesOf(&r, ConnectSize, 0)
}

func rawFork() []byte {
	r := loader.ForkEvent{Hdr: header(loader.KindFork), ChildStartTime: 123, ChildPid: 456}
	return bytesOf(&r, ForkSize, 0)
}

func rawExit() []byte {
	r := loader.ExitEvent{Hdr: header(loader.KindExit), ExitCode: 0x8b}
	return bytesOf(&r, ExitSize, 0)
}

func TestDecodeValid(t *testing.T) {
	t.Run("exec", func(t *testing.T) {
		raw := rawExec("/bin/x", "/usr/bin/x", "a\x00bc\x00", 5, 0)
		var ev Event
		if err := Decode(raw, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Hdr != header(loader.KindExec) {
			t.Errorf("header = %+v", ev.Hdr)
		}
		x := ev.Exec
		if x.Ret != -2 || x.Syscall != loader.SyscallExecveat || x.Dirfd != -100 || x.AtFlags != 0x1000 ||
			string(x.Filename) != "/bin/x" || string(x.Exe) != "/usr/bin/x" || x.ExeIno != 7 || x.ExeDev != 8 ||
			x.ExeMode != 0o100755 || x.ExeUID != 9 || x.ExeGID != 10 || x.Argc != 2 || string(x.Args) != "a\x00bc\x00" || x.ArgsSize != 99 {
			t.Errorf("exec = %+v", x)
		}
		for name, s := range map[string][]byte{"Filename": x.Filename, "Exe": x.Exe, "Args": x.Args} {
			if cap(s) != len(s) {
				t.Errorf("%s: cap %d > len %d: appending would overwrite the record", name, cap(s), len(s))
			}
		}
	})
	t.Run("exec with bytes after argv", func(t *testing.T) {
		raw := rawExec("f", "", "a\x00", 2, 5)
		var ev Event
		if err := Decode(raw, &ev); err != nil || string(ev.Exec.Args) != "a\x00" || len(ev.Exec.Exe) != 0 {
			t.Errorf("Decode = %v, args %q, exe %q", err, ev.Exec.Args, ev.Exec.Exe)
		}
	})
	t.Run("exec longest names", func(t *testing.T) {
		long := string(bytes.Repeat([]byte("n"), pathBytes-1))
		var ev Event
		if err := Decode(rawExec(long, long, "", 0, 0), &ev); err != nil || len(ev.Exec.Filename) != pathBytes-1 || len(ev.Exec.Exe) != pathBytes-1 {
			t.Errorf("Decode = %v, %d, %d", err, len(ev.Exec.Filename), len(ev.Exec.Exe))
		}
	})
	t.Run("open", func(t *testing.T) {
		raw := rawOpen("/etc/hostname", 13)
		var ev Event
		if err := Decode(raw, &ev); err != nil {
			t.Fatal(err)
		}
		o := ev.Open
		if o.Ret != 3 || o.Syscall != loader.SyscallOpenat2 || o.Dirfd != 5 || o.Flags != 0o2000000 || o.Mode != 0o644 ||
			o.Resolve != 8 || string(o.Path) != "/etc/hostname" || cap(o.Path) != len(o.Path) {
			t.Errorf("open = %+v", o)
		}
		if len(raw) != 168+13+1 {
			t.Errorf("test record of %d bytes", len(raw))
		}
	})
	t.Run("open without its NUL", func(t *testing.T) {
		raw := rawOpen("/etc/hostname", 13)
		var ev Event
		if err := Decode(raw[:len(raw)-1], &ev); err != nil || string(ev.Open.Path) != "/etc/hostname" {
			t.Errorf("Decode = %v, %q", err, ev.Open.Path)
		}
	})
	t.Run("open longest path", func(t *testing.T) {
		long := string(bytes.Repeat([]byte("p"), pathBytes-1))
		var ev Event
		if err := Decode(rawOpen(long, pathBytes-1), &ev); err != nil || len(ev.Open.Path) != pathBytes-1 {
			t.Errorf("Decode = %v, %d", err, len(ev.Open.Path))
		}
	})
	t.Run("connect", func(t *testing.T) {
		addr := binary.NativeEndian.AppendUint16(nil, 2)
		addr = append(addr, 0x01, 0xbb, 10, 0, 0, 1)
		var ev Event
		if err := Decode(rawConnect(addr, 8), &ev); err != nil {
			t.Fatal(err)
		}
		c := ev.Connect
		if c.Ret != -111 || c.Syscall != loader.SyscallConnect || c.Fd != 3 || c.Addrlen != 16 || !bytes.Equal(c.Addr, addr) || cap(c.Addr) != 8 {
			t.Errorf("connect = %+v", c)
		}
		if fam, ok := Family(c.Addr); !ok || fam != 2 || Port(c.Addr) != 443 {
			t.Errorf("Family, Port = %d, %v, %d", fam, ok, Port(c.Addr))
		}
	})
	t.Run("connect full address", func(t *testing.T) {
		var ev Event
		if err := Decode(rawConnect(bytes.Repeat([]byte{1}, 128), 128), &ev); err != nil || len(ev.Connect.Addr) != 128 {
			t.Errorf("Decode = %v, %d", err, len(ev.Connect.Addr))
		}
	})
	t.Run("fork", func(t *testing.T) {
		var ev Event
		if err := Decode(rawFork(), &ev); err != nil || ev.Fork != (Fork{ChildPid: 456, ChildStartTime: 123}) || ev.Hdr.Kind != loader.KindFork {
			t.Errorf("Decode = %v, %+v", err, ev.Fork)
		}
	})
	t.Run("exit", func(t *testing.T) {
		var ev Event
		if err := Decode(rawExit(), &ev); err != nil || ev.Exit.Status != 0x8b || string(Comm(&ev.Hdr)) != "sh" {
			t.Errorf("Decode = %v, %+v, comm %q", err, ev.Exit, Comm(&ev.Hdr))
		}
	})
}

func TestDecodeMalformed(t *testing.T) {
	withKind := func(raw []byte, kind uint32) []byte {
		binary.NativeEndian.PutUint32(raw[56:], kind)
		return raw
	}
	setU32 := func(raw []byte, off int, v uint32) []byte {
		binary.NativeEndian.PutUint32(raw[off:], v)
		return raw
	}
	exec := func() []byte { return rawExec("/bin/x", "/usr/bin/x", "a\x00b\x00", 4, 0) }
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"empty", nil},
		{"shorter than a header", rawExit()[:HeaderSize-1]},
		{"header only, exit", rawExit()[:HeaderSize]},
		{"kind 0", withKind(rawExit(), 0)},
		{"kind KIND_MAX", withKind(rawExit(), loader.KindMax)},
		{"kind 2^32-1", withKind(rawExit(), 1<<32-1)},
		{"exit short by one", rawExit()[:ExitSize-1]},
		{"fork short by one", rawFork()[:ForkSize-1]},
		{"exec fixed part only", exec()[:ExecSize]},
		{"exec without the exe region", exec()[:ExecSize+pathBytes]},
		{"exec argv cut", exec()[:ExecSize+2*pathBytes+3]},
		{"exec filename_len 4096", setU32(exec(), 164, pathBytes)},
		{"exec exe_len 4096", setU32(exec(), 168, pathBytes)},
		{"exec filename_len 2^32-1", setU32(exec(), 164, 1<<32-1)},
		{"exec args_len beyond the record", setU32(exec(), 176, 5)},
		{"exec args_len 2^32-1", setU32(exec(), 176, 1<<32-1)},
		{"open short by one", rawOpen("", 0)[:OpenSize-1]},
		{"open path_len beyond the record", rawOpen("/etc", 6)},
		{"open path_len 4096", setU32(append(rawOpen("x", 1), make([]byte, pathBytes)...), 160, pathBytes)},
		{"open path_len 2^32-1", rawOpen("/etc", 1<<32-1)},
		{"connect short by one", rawConnect(nil, 0)[:ConnectSize-1]},
		{"connect addr_len 129", rawConnect(nil, 129)},
		{"connect addr_len 2^32-1", rawConnect(nil, 1<<32-1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev Event
			err := Decode(tc.raw, &ev)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode(%d bytes) = %v, want ErrMalformed", len(tc.raw), err)
			}
		})
	}
}

func TestArgv(t *testing.T) {
	type arg struct {
		s   string
		cut bool
	}
	for _, tc := range []struct {
		in   string
		want []arg
	}{
		{"", nil},
		{"\x00", []arg{{"", false}}},
		{"\x00\x00", []arg{{"", false}, {"", false}}},
		{"sh\x00-c\x00true\x00", []arg{{"sh", false}, {"-c", false}, {"true", false}}},
		{"sh\x00-c\x00tr", []arg{{"sh", false}, {"-c", false}, {"tr", true}}},
		{"abc", []arg{{"abc", true}}},
	} {
		var got []arg
		Argv([]byte(tc.in), func(a []byte, cut bool) { got = append(got, arg{string(a), cut}) })
		if len(got) != len(tc.want) {
			t.Errorf("Argv(%q) = %+v, want %+v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("Argv(%q) = %+v, want %+v", tc.in, got, tc.want)
				break
			}
		}
	}
}

func TestCommFamilyPort(t *testing.T) {
	var h loader.EventHeader
	if c := Comm(&h); len(c) != 0 {
		t.Errorf("Comm(empty) = %q", c)
	}
	full := unsafe.Slice((*byte)(unsafe.Pointer(&h.Comm[0])), 16)
	copy(full, "0123456789abcdef")
	if c := Comm(&h); string(c) != "0123456789abcdef" {
		t.Errorf("Comm(no NUL) = %q", c)
	}
	copy(full, "a\x00b")
	if c := Comm(&h); string(c) != "a" {
		t.Errorf("Comm = %q", c)
	}
	if _, ok := Family([]byte{1}); ok {
		t.Error("Family of 1 byte: ok")
	}
	if f, ok := Family(binary.NativeEndian.AppendUint16(nil, 10)); !ok || f != 10 {
		t.Errorf("Family = %d, %v", f, ok)
	}
	if p := Port([]byte{10, 0, 0x1f, 0x90}); p != 8080 {
		t.Errorf("Port = %d", p)
	}
}

// within reports whether s lies inside raw (a zero-length s may sit at its end).
func within(raw, s []byte) bool {
	if len(s) == 0 {
		return true
	}
	if len(raw) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return p >= lo && p+uintptr(cap(s)) <= lo+uintptr(len(raw))
}

func FuzzDecode(f *testing.F) {
	f.Add(rawExec("/bin/x", "/usr/bin/x", "a\x00b\x00", 4, 0))
	f.Add(rawOpen("/etc/hostname", 13))
	f.Add(rawConnect([]byte{2, 0, 1, 187, 10, 0, 0, 1}, 8))
	f.Add(rawFork())
	f.Add(rawExit())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev Event
		if err := Decode(raw, &ev); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(raw) < HeaderSize {
			t.Fatalf("Decode accepted %d bytes", len(raw))
		}
		var slices map[string][]byte
		switch ev.Hdr.Kind {
		case loader.KindExec:
			slices = map[string][]byte{"Filename": ev.Exec.Filename, "Exe": ev.Exec.Exe, "Args": ev.Exec.Args}
		case loader.KindOpen:
			slices = map[string][]byte{"Path": ev.Open.Path}
		case loader.KindConnect:
			slices = map[string][]byte{"Addr": ev.Connect.Addr}
			Family(ev.Connect.Addr)
		case loader.KindFork, loader.KindExit:
		default:
			t.Fatalf("Decode accepted kind %d", ev.Hdr.Kind)
		}
		for name, s := range slices {
			if !within(raw, s) {
				t.Fatalf("%s (len %d, cap %d) is not within the %d-byte input", name, len(s), cap(s), len(raw))
			}
		}
		if len(ev.Exec.Filename) >= pathBytes || len(ev.Exec.Exe) >= pathBytes || len(ev.Open.Path) >= pathBytes || len(ev.Connect.Addr) > 128 {
			t.Fatal("a length is out of range")
		}
		Argv(ev.Exec.Args, func([]byte, bool) {})
		Comm(&ev.Hdr)
	})
}
