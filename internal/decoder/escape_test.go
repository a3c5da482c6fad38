package decoder

import (
	"bytes"
	"errors"
	"testing"
	"unsafe"

	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/record"
)

// TestEscapeLayout pins the escape records to bpf/agenttrace.h, by natural
// alignment:
//
//	fork_event:         hdr 120, child_start_time 120, child_cgroup_id 128, child_pid 136 = 144
//	cgroup_move_event:  hdr, ret 120, start_time 128, exec_seq 136, from_id 144, to_id 152,
//	                    pid 160, tid 164, mflags 168, path_len 172, path 176 + 4096   = 4272
//	target_info:        start_time 0, exec_seq 8, pid 16, tid 20, tflags 24, exe_len 28, comm 32 = 48
//	proc_access_event:  hdr, ret 120, addr 128, data 136, syscall 144, request 148, pid 152,
//	                    tid 156, pidfd 160, sig 164, aflags 168, _pad 172, target 176, exe 224 = 4320
//	file_op_event:      hdr, ret 120, length 128, file_ino 136, 16 x u32 144..207, path 208,
//	                    new_path 4304, dir 8400, new_dir 12496                        = 16592
//	mount_event:        hdr, ret 120, flags 128, attr 136, attr_clr 144, 10 x u32 152..191,
//	                    source 192, target 4288, fstype 8384 + 256                   = 8640
//	namespace_event:    hdr, ret 120, flags 128, syscall 136, fd 140                  = 144
//	bpf_event:          hdr, ret 120, cmd 128, map_id 132, prog_id 136, link_id 140,
//	                    bflags 144, _pad 148                                          = 152
func TestEscapeLayout(t *testing.T) {
	var (
		f  loader.ForkEvent
		m  loader.CgroupMoveEvent
		ti loader.TargetInfo
		p  loader.ProcAccessEvent
		fo loader.FileOpEvent
		mo loader.MountEvent
		n  loader.NamespaceEvent
		b  loader.BPFEvent
		mb loader.Member
	)
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(fork_event)", unsafe.Sizeof(f), 144},
		{"fork_event.child_cgroup_id", unsafe.Offsetof(f.ChildCgroupId), 128},
		{"fork_event.child_pid", unsafe.Offsetof(f.ChildPid), 136},

		{"sizeof(cgroup_move_event)", unsafe.Sizeof(m), 4272},
		{"cgroup_move_event.ret", unsafe.Offsetof(m.Ret), 120},
		{"cgroup_move_event.to_id", unsafe.Offsetof(m.ToId), 152},
		{"cgroup_move_event.pid", unsafe.Offsetof(m.Pid), 160},
		{"cgroup_move_event.path_len", unsafe.Offsetof(m.PathLen), 172},
		{"cgroup_move_event.path", unsafe.Offsetof(m.Path), 176},

		{"sizeof(target_info)", unsafe.Sizeof(ti), 48},
		{"target_info.comm", unsafe.Offsetof(ti.Comm), 32},
		{"sizeof(proc_access_event)", unsafe.Sizeof(p), 4320},
		{"proc_access_event.syscall", unsafe.Offsetof(p.Syscall), 144},
		{"proc_access_event.aflags", unsafe.Offsetof(p.Aflags), 168},
		{"proc_access_event.target", unsafe.Offsetof(p.Target), 176},
		{"proc_access_event.exe", unsafe.Offsetof(p.Exe), 224},

		{"sizeof(file_op_event)", unsafe.Sizeof(fo), 16592},
		{"file_op_event.syscall", unsafe.Offsetof(fo.Syscall), 144},
		{"file_op_event.fflags", unsafe.Offsetof(fo.Fflags), 188},
		{"file_op_event.new_dir_len", unsafe.Offsetof(fo.NewDirLen), 204},
		{"file_op_event.path", unsafe.Offsetof(fo.Path), 208},
		{"file_op_event.new_path", unsafe.Offsetof(fo.NewPath), 4304},
		{"file_op_event.dir", unsafe.Offsetof(fo.Dir), 8400},
		{"file_op_event.new_dir", unsafe.Offsetof(fo.NewDir), 12496},

		{"sizeof(mount_event)", unsafe.Sizeof(mo), 8640},
		{"mount_event.syscall", unsafe.Offsetof(mo.Syscall), 152},
		{"mount_event.fstype_len", unsafe.Offsetof(mo.FstypeLen), 188},
		{"mount_event.source", unsafe.Offsetof(mo.Source), 192},
		{"mount_event.fstype", unsafe.Offsetof(mo.Fstype), 8384},

		{"sizeof(namespace_event)", unsafe.Sizeof(n), 144},
		{"namespace_event.fd", unsafe.Offsetof(n.Fd), 140},
		{"sizeof(bpf_event)", unsafe.Sizeof(b), 152},
		{"bpf_event.bflags", unsafe.Offsetof(b.Bflags), 144},
		{"sizeof(member)", unsafe.Sizeof(mb), 16},

		{"CgroupMoveSize", uintptr(CgroupMoveSize), 176},
		{"FileOpSize", uintptr(FileOpSize), 208},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d (bpf/agenttrace.h)", tc.name, tc.got, tc.want)
		}
	}
}

func rawMove(path string, pathLen uint32, n int) []byte {
	r := loader.CgroupMoveEvent{Hdr: header(loader.KindCgroupMove), Ret: -13, StartTime: 5, ExecSeq: 6, FromId: 7, ToId: 8,
		Pid: 9, Tid: 10, Mflags: loader.MoveThreadgroup | loader.MoveFromKnown, PathLen: pathLen}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r.Path[0])), len(r.Path)), path)
	return bytesOf(&r, n, 0)
}

func rawAccess(exe string, exeLen uint32) []byte {
	r := loader.ProcAccessEvent{Hdr: header(loader.KindProcAccess), Ret: 0, Addr: 1, Data: 2, Syscall: loader.SyscallPtrace,
		Request: 16, Pid: 42, Tid: 43, Pidfd: -1, Sig: 9, Aflags: loader.AccessTainted,
		Target: loader.TargetInfo{StartTime: 3, ExecSeq: 4, Pid: 42, Tid: 44, Tflags: loader.TargetFound, ExeLen: exeLen}}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r.Target.Comm[0])), 16), "victim")
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r.Exe[0])), len(r.Exe)), exe)
	return bytesOf(&r, ProcAccessSize, 0)
}

// rawFileOp sends the regions up to the last one with a name, as the kernel does.
func rawFileOp(path, newPath, dir, newDir string) []byte {
	r := loader.FileOpEvent{Hdr: header(loader.KindFileOp), Ret: -2, Length: 1 << 40, FileIno: 3, Syscall: loader.SyscallRenameat2,
		Dirfd: 4, NewDirfd: -100, Fd: -1, Flags: 1, Mode: 0o644, Uid: 5, Gid: 6, FileDev: 7, FileMode: 0o100600, FileMntId: 8,
		Fflags: fileOpFlags(dir, newDir), PathLen: uint32(len(path)), NewPathLen: uint32(len(newPath)), DirLen: uint32(len(dir)), NewDirLen: uint32(len(newDir))}
	n := FileOpSize
	for i, reg := range []struct {
		dst *[4096]int8
		s   string
	}{{&r.Path, path}, {&r.NewPath, newPath}, {&r.Dir, dir}, {&r.NewDir, newDir}} {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&reg.dst[0])), 4096), reg.s)
		if reg.s != "" {
			n = FileOpSize + i*pathBytes + len(reg.s) + 1
		}
	}
	return bytesOf(&r, n, 0)
}

func fileOpFlags(dir, newDir string) uint32 {
	var f uint32
	if dir != "" {
		f |= loader.FileOpDir
	}
	if newDir != "" {
		f |= loader.FileOpNewDir
	}
	return f
}

func rawMount() []byte {
	r := loader.MountEvent{Hdr: header(loader.KindMount), Ret: 0, Flags: 6, Attr: 7, AttrClr: 8, Syscall: loader.SyscallMount, Fd: -1,
		Dirfd: -100, FromDirfd: -100, Aux: 3, Cmd: 1, Mflags: loader.MountSource | loader.MountTarget | loader.MountFstype,
		SourceLen: 4, TargetLen: 4, FstypeLen: 5}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r.Source[0])), 4), "none")
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r.Target[0])), 4), "/mnt")
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r.Fstype[0])), 5), "tmpfs")
	return bytesOf(&r, MountSize, 0)
}

func rawNamespace() []byte {
	r := loader.NamespaceEvent{Hdr: header(loader.KindNamespace), Ret: -1, Flags: 0x20000, Syscall: loader.SyscallSetns, Fd: 3}
	return bytesOf(&r, NamespaceSize, 0)
}

func rawBPF() []byte {
	r := loader.BPFEvent{Hdr: header(loader.KindBPF), Ret: -1, Cmd: 2, MapId: 77, Bflags: loader.BPFMap}
	return bytesOf(&r, BPFSize, 0)
}

func TestDecodeEscape(t *testing.T) {
	var ev record.Event
	if err := Decode(rawMove("/x/y", 4, CgroupMoveSize+5), &ev); err != nil {
		t.Fatal(err)
	}
	want := record.CgroupMove{Pid: 9, Tid: 10, ExecID: record.ExecID{Pid: 9, Start: 5, Seq: 6}, Threadgroup: true, FromKnown: true,
		FromCgroupID: 7, ToCgroupID: 8, ToCgroup: "/x/y", Ret: -13}
	if ev.CgroupMove != want || ev.Kind != record.KindCgroupMove {
		t.Errorf("cgroup_move = %+v, want %+v", ev.CgroupMove, want)
	}
	// A refused clone3: the fixed part only.
	raw := rawMove("", 0, CgroupMoveSize)
	byteOrder.PutUint32(raw[unsafe.Offsetof(loader.CgroupMoveEvent{}.Mflags):], loader.MoveAttempt)
	if err := Decode(raw, &ev); err != nil || !ev.CgroupMove.Attempt || ev.CgroupMove.ToCgroup != "" || ev.CgroupMove.ToCgroupID != 8 {
		t.Errorf("cgroup_move fixed part: %v, %+v", err, ev.CgroupMove)
	}

	if err := Decode(rawAccess("/usr/bin/victim", 15), &ev); err != nil {
		t.Fatal(err)
	}
	wantAccess := record.ProcAccess{Syscall: "ptrace", Request: 16, Pid: 42, Tid: 43, Pidfd: -1, Addr: 1, Data: 2, Signal: 9, Tainted: true,
		Target: record.AccessTarget{Found: true, Pid: 42, Tid: 44, ExecID: record.ExecID{Pid: 42, Start: 3, Seq: 4}, Exe: "/usr/bin/victim", Comm: "victim"}}
	if ev.ProcAccess != wantAccess {
		t.Errorf("proc_access = %+v, want %+v", ev.ProcAccess, wantAccess)
	}

	for _, tc := range []struct{ path, newPath, dir, newDir string }{
		{"a", "", "", ""},
		{"a", "bb", "", ""},
		{"a", "bb", "/d", ""},
		{"a", "bb", "/d", "/nd"},
		{"", "", "/file", ""},
	} {
		raw := rawFileOp(tc.path, tc.newPath, tc.dir, tc.newDir)
		if err := Decode(raw, &ev); err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		f := ev.FileOp
		want := record.FileOp{Syscall: "renameat2", Dirfd: 4, NewDirfd: -100, Fd: -1, Flags: 1, Mode: 0o644, UID: 5, GID: 6, Length: 1 << 40, Ret: -2,
			Path: record.Name{Path: tc.path}, NewPath: record.Name{Path: tc.newPath}}
		if tc.dir != "" {
			want.Dir = record.Dir{Present: true, Path: tc.dir}
		}
		if tc.newDir != "" {
			want.NewDir = record.Dir{Present: true, Path: tc.newDir}
		}
		if f != want {
			t.Errorf("%+v: file_op = %+v, want %+v", tc, f, want)
		}
	}
	// fd-based: the dir region holds the file's path.
	raw = rawFileOp("", "", "/file", "")
	byteOrder.PutUint32(raw[unsafe.Offsetof(loader.FileOpEvent{}.Fflags):], loader.FileOpFile|loader.FileOpFileDeleted)
	if err := Decode(raw, &ev); err != nil || ev.FileOp.File != (record.File{Present: true, Path: "/file", Dev: 7, Ino: 3, Mode: 0o100600, MntID: 8, Deleted: true}) || ev.FileOp.Dir.Present {
		t.Errorf("file_op with a file: %v, %+v", err, ev.FileOp)
	}

	if err := Decode(rawMount(), &ev); err != nil {
		t.Fatal(err)
	}
	wantMount := record.Mount{Syscall: "mount", HasSource: true, HasTarget: true, HasFstype: true, Source: record.Name{Path: "none"},
		Target: record.Name{Path: "/mnt"}, Fstype: record.Name{Path: "tmpfs"}, Flags: 6, Attr: 7, AttrClr: 8, Fd: -1, Dirfd: -100,
		FromDirfd: -100, Aux: 3, Cmd: 1}
	if ev.Mount != wantMount {
		t.Errorf("mount = %+v, want %+v", ev.Mount, wantMount)
	}
	if err := Decode(rawNamespace(), &ev); err != nil || ev.Namespace != (record.Namespace{Syscall: "setns", Fd: 3, Flags: 0x20000, Ret: -1}) {
		t.Errorf("namespace: %v, %+v", err, ev.Namespace)
	}
	if err := Decode(rawBPF(), &ev); err != nil || ev.BPF != (record.BPF{Cmd: 2, HasMap: true, MapID: 77, Ret: -1}) {
		t.Errorf("bpf: %v, %+v", err, ev.BPF)
	}
}

func TestDecodeEscapeMalformed(t *testing.T) {
	long := string(bytes.Repeat([]byte("x"), 10))
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"cgroup_move short by one", rawMove("", 0, CgroupMoveSize-1)},
		{"cgroup_move path beyond the record", rawMove("/x", 2, CgroupMoveSize+1)},
		{"cgroup_move path_len 4096", rawMove("", uint32(pathBytes), 4272)},
		{"proc_access short by one", rawAccess("", 0)[:ProcAccessSize-1]},
		{"proc_access exe_len 4096", rawAccess("", uint32(pathBytes))},
		{"file_op short by one", rawFileOp("", "", "", "")[:FileOpSize-1]},
		{"file_op path cut", rawFileOp(long, "", "", "")[:FileOpSize+5]},
		{"file_op new_dir cut", rawFileOp("a", "b", "/c", long)[:FileOpSize+3*pathBytes+5]},
		{"mount short by one", rawMount()[:MountSize-1]},
		{"namespace short by one", rawNamespace()[:NamespaceSize-1]},
		{"bpf short by one", rawBPF()[:BPFSize-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev record.Event
			if err := Decode(tc.raw, &ev); !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode(%d bytes) = %v, want ErrMalformed", len(tc.raw), err)
			}
		})
	}
	// A file_op length field that claims more than PATH_BYTES.
	raw := rawFileOp("a", "", "", "")
	byteOrder.PutUint32(raw[unsafe.Offsetof(loader.FileOpEvent{}.PathLen):], uint32(pathBytes))
	var ev record.Event
	if err := Decode(append(raw, make([]byte, pathBytes)...), &ev); !errors.Is(err, ErrMalformed) {
		t.Errorf("file_op path_len 4096: %v", err)
	}
}

// TestDecodeEscapeAllocs: decoding the escape records allocates nothing.
func TestDecodeEscapeAllocs(t *testing.T) {
	raws := [][]byte{rawMove("/x/y", 4, CgroupMoveSize+5), rawAccess("/usr/bin/victim", 15), rawFileOp("a", "bb", "/d", "/nd"),
		rawMount(), rawNamespace(), rawBPF()}
	var ev record.Event
	for _, raw := range raws {
		if allocs := testing.AllocsPerRun(100, func() { Decode(raw, &ev) }); allocs != 0 {
			t.Errorf("Decode of kind %d: %v allocs, want 0", ev.Kind, allocs)
		}
	}
}
