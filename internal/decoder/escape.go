package decoder

import (
	"bytes"
	"unsafe"

	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/record"
)

// Sizes of the escape records' fixed parts. A cgroup_move record may end
// after its fixed part (a refused clone3) and a file_op record after any of
// its regions, so neither is converted to its loader type (which would
// extend past the record): their members are read at the generated offsets.
const (
	CgroupMoveSize = int(unsafe.Offsetof(loader.CgroupMoveEvent{}.Path))
	ProcAccessSize = int(unsafe.Sizeof(loader.ProcAccessEvent{}))
	FileOpSize     = int(unsafe.Offsetof(loader.FileOpEvent{}.Path))
	MountSize      = int(unsafe.Sizeof(loader.MountEvent{}))
	NamespaceSize  = int(unsafe.Sizeof(loader.NamespaceEvent{}))
	BPFSize        = int(unsafe.Sizeof(loader.BPFEvent{}))
)

// escapeSyscallNames names the escape syscalls' wire ids.
var escapeSyscallNames = map[uint32]string{
	loader.SyscallRename: "rename", loader.SyscallRenameat: "renameat", loader.SyscallRenameat2: "renameat2",
	loader.SyscallUnlink: "unlink", loader.SyscallUnlinkat: "unlinkat", loader.SyscallRmdir: "rmdir",
	loader.SyscallLink: "link", loader.SyscallLinkat: "linkat", loader.SyscallSymlink: "symlink",
	loader.SyscallSymlinkat: "symlinkat", loader.SyscallChmod: "chmod", loader.SyscallFchmod: "fchmod",
	loader.SyscallFchmodat: "fchmodat", loader.SyscallFchmodat2: "fchmodat2", loader.SyscallChown: "chown",
	loader.SyscallFchown: "fchown", loader.SyscallLchown: "lchown", loader.SyscallFchownat: "fchownat",
	loader.SyscallTruncate: "truncate", loader.SyscallFtruncate: "ftruncate",
	loader.SyscallMount: "mount", loader.SyscallUmount2: "umount2", loader.SyscallMoveMount: "move_mount",
	loader.SyscallFsopen: "fsopen", loader.SyscallFsconfig: "fsconfig", loader.SyscallFsmount: "fsmount",
	loader.SyscallMountSetattr: "mount_setattr", loader.SyscallPivotRoot: "pivot_root",
	loader.SyscallUnshare: "unshare", loader.SyscallSetns: "setns",
	loader.SyscallPtrace: "ptrace", loader.SyscallProcessVMReadv: "process_vm_readv",
	loader.SyscallProcessVMWritev: "process_vm_writev", loader.SyscallPidfdOpen: "pidfd_open",
	loader.SyscallPidfdSendSignal: "pidfd_send_signal", loader.SyscallKill: "kill", loader.SyscallTkill: "tkill",
	loader.SyscallTgkill: "tgkill", loader.SyscallRtSigqueueinfo: "rt_sigqueueinfo",
}

var (
	moveEv   loader.CgroupMoveEvent
	fileOpEv loader.FileOpEvent
)

func u32(raw []byte, off uintptr) uint32 { return byteOrder.Uint32(raw[off:]) }
func u64(raw []byte, off uintptr) uint64 { return byteOrder.Uint64(raw[off:]) }

// region returns raw[off:off+n] as a string when it lies within raw and n < limit.
func region(raw []byte, off int, n uint32, limit int, what string) (string, error) {
	if n >= uint32(limit) || off+int(n) > len(raw) {
		return "", malformed("%s length %d in a record of %d bytes", what, n, len(raw))
	}
	return unsafeString(raw[off : off+int(n)]), nil
}

// optRegion is the region at off whose length is the u32 at lenOff: "" when
// that length is 0 (the region may then lie past the record's end).
func optRegion(raw []byte, off, lenOff uintptr, what string) (string, error) {
	n := u32(raw, lenOff)
	if n == 0 {
		return "", nil
	}
	return region(raw, int(off), n, pathBytes, what)
}

func decodeCgroupMove(raw []byte, m *record.CgroupMove) error {
	if len(raw) < CgroupMoveSize {
		return malformed("cgroup_move record of %d bytes", len(raw))
	}
	path, err := region(raw, CgroupMoveSize, u32(raw, unsafe.Offsetof(moveEv.PathLen)), pathBytes, "cgroup_move path")
	if err != nil {
		return err
	}
	flags := u32(raw, unsafe.Offsetof(moveEv.Mflags))
	pid := u32(raw, unsafe.Offsetof(moveEv.Pid))
	*m = record.CgroupMove{
		Attempt:           flags&loader.MoveAttempt != 0,
		Pid:               pid,
		Tid:               u32(raw, unsafe.Offsetof(moveEv.Tid)),
		ExecID:            record.ExecID{Pid: pid, Start: u64(raw, unsafe.Offsetof(moveEv.StartTime)), Seq: u64(raw, unsafe.Offsetof(moveEv.ExecSeq))},
		Threadgroup:       flags&loader.MoveThreadgroup != 0,
		FromKnown:         flags&loader.MoveFromKnown != 0,
		FromCgroupID:      u64(raw, unsafe.Offsetof(moveEv.FromId)),
		ToCgroupID:        u64(raw, unsafe.Offsetof(moveEv.ToId)),
		ToCgroup:          path,
		ToCgroupTruncated: flags&loader.MovePathTruncated != 0,
		Traced:            flags&loader.MoveTraced != 0,
		Ret:               int64(u64(raw, unsafe.Offsetof(moveEv.Ret))),
	}
	return nil
}

func decodeProcAccess(raw []byte, p *record.ProcAccess) error {
	if len(raw) < ProcAccessSize {
		return malformed("proc_access record of %d bytes", len(raw))
	}
	r := (*loader.ProcAccessEvent)(unsafe.Pointer(&raw[0]))
	t := &r.Target
	exe, err := region(raw, int(unsafe.Offsetof(r.Exe)), t.ExeLen, pathBytes, "proc_access exe")
	if err != nil {
		return err
	}
	commOff := int(unsafe.Offsetof(r.Target) + unsafe.Offsetof(t.Comm))
	comm := raw[commOff : commOff+len(t.Comm)]
	if i := bytes.IndexByte(comm, 0); i >= 0 {
		comm = comm[:i]
	}
	name := escapeSyscallNames[r.Syscall]
	if r.Syscall == loader.SyscallRtSigqueueinfo && r.Aflags&loader.AccessThreadGroup != 0 {
		name = "rt_tgsigqueueinfo"
	}
	*p = record.ProcAccess{Syscall: name, Request: r.Request, Pid: r.Pid, Tid: r.Tid, Pidfd: r.Pidfd, Addr: r.Addr, Data: r.Data,
		Signal: r.Sig, Tainted: r.Aflags&loader.AccessTainted != 0, Ret: r.Ret}
	if r.Syscall == loader.SyscallPidfdOpen {
		p.Flags = r.Request
	}
	if t.Tflags&loader.TargetFound != 0 {
		p.Target = record.AccessTarget{Found: true, Pid: t.Pid, Tid: t.Tid,
			ExecID: record.ExecID{Pid: t.Pid, Start: t.StartTime, Seq: t.ExecSeq},
			NoExe:  t.Tflags&loader.TargetNoExe != 0, Exe: exe, ExeTruncated: t.Tflags&loader.TargetExeTruncated != 0,
			Comm: unsafeString(comm), Traced: t.Tflags&loader.TargetTraced != 0}
	}
	return nil
}

func decodeFileOp(raw []byte, f *record.FileOp) error {
	if len(raw) < FileOpSize {
		return malformed("file_op record of %d bytes", len(raw))
	}
	e := &fileOpEv
	flags := u32(raw, unsafe.Offsetof(e.Fflags))
	*f = record.FileOp{
		Syscall:  escapeSyscallNames[u32(raw, unsafe.Offsetof(e.Syscall))],
		Dirfd:    int32(u32(raw, unsafe.Offsetof(e.Dirfd))),
		NewDirfd: int32(u32(raw, unsafe.Offsetof(e.NewDirfd))),
		Fd:       int32(u32(raw, unsafe.Offsetof(e.Fd))),
		Flags:    u32(raw, unsafe.Offsetof(e.Flags)),
		Mode:     u32(raw, unsafe.Offsetof(e.Mode)),
		UID:      u32(raw, unsafe.Offsetof(e.Uid)),
		GID:      u32(raw, unsafe.Offsetof(e.Gid)),
		Length:   int64(u64(raw, unsafe.Offsetof(e.Length))),
		Ret:      int64(u64(raw, unsafe.Offsetof(e.Ret))),
	}
	// Each region the record has must fit what was sent; an empty one
	// may lie past its end.
	path, err := optRegion(raw, unsafe.Offsetof(e.Path), unsafe.Offsetof(e.PathLen), "file_op path")
	if err != nil {
		return err
	}
	newPath, err := optRegion(raw, unsafe.Offsetof(e.NewPath), unsafe.Offsetof(e.NewPathLen), "file_op new_path")
	if err != nil {
		return err
	}
	dir, err := optRegion(raw, unsafe.Offsetof(e.Dir), unsafe.Offsetof(e.DirLen), "file_op dir")
	if err != nil {
		return err
	}
	newDir, err := optRegion(raw, unsafe.Offsetof(e.NewDir), unsafe.Offsetof(e.NewDirLen), "file_op new_dir")
	if err != nil {
		return err
	}
	f.Path = record.Name{Path: path, Truncated: flags&loader.FileOpPathTruncated != 0, Unreadable: flags&loader.FileOpPathFault != 0}
	f.NewPath = record.Name{Path: newPath, Truncated: flags&loader.FileOpNewPathTruncated != 0, Unreadable: flags&loader.FileOpNewPathFault != 0}
	switch {
	case flags&loader.FileOpFile != 0:
		f.File = record.File{Present: true, Path: dir, PathTruncated: flags&loader.FileOpDirTruncated != 0,
			Dev: u32(raw, unsafe.Offsetof(e.FileDev)), Ino: u64(raw, unsafe.Offsetof(e.FileIno)), Mode: u32(raw, unsafe.Offsetof(e.FileMode)),
			MntID: u32(raw, unsafe.Offsetof(e.FileMntId)), Deleted: flags&loader.FileOpFileDeleted != 0}
	case flags&loader.FileOpDir != 0:
		f.Dir = record.Dir{Present: true, Path: dir, Truncated: flags&loader.FileOpDirTruncated != 0}
	}
	if flags&loader.FileOpNewDir != 0 {
		f.NewDir = record.Dir{Present: true, Path: newDir, Truncated: flags&loader.FileOpNewDirTruncated != 0}
	}
	return nil
}

func decodeMount(raw []byte, m *record.Mount) error {
	if len(raw) < MountSize {
		return malformed("mount record of %d bytes", len(raw))
	}
	r := (*loader.MountEvent)(unsafe.Pointer(&raw[0]))
	source, err := region(raw, int(unsafe.Offsetof(r.Source)), r.SourceLen, pathBytes, "mount source")
	if err != nil {
		return err
	}
	target, err := region(raw, int(unsafe.Offsetof(r.Target)), r.TargetLen, pathBytes, "mount target")
	if err != nil {
		return err
	}
	fstype, err := region(raw, int(unsafe.Offsetof(r.Fstype)), r.FstypeLen, loader.FstypeBytes, "mount fstype")
	if err != nil {
		return err
	}
	f := r.Mflags
	name := escapeSyscallNames[r.Syscall]
	if r.Syscall == loader.SyscallUmount2 && f&loader.MountOldUmount != 0 {
		name = "umount"
	}
	trunc := f&loader.MountTruncated != 0
	*m = record.Mount{Syscall: name,
		HasSource: f&loader.MountSource != 0, HasTarget: f&loader.MountTarget != 0, HasFstype: f&loader.MountFstype != 0,
		Source: record.Name{Path: source, Unreadable: f&loader.MountSourceFault != 0},
		Target: record.Name{Path: target, Unreadable: f&loader.MountTargetFault != 0},
		Fstype: record.Name{Path: fstype, Unreadable: f&loader.MountFstypeFault != 0},
		Flags:  r.Flags, Attr: r.Attr, AttrClr: r.AttrClr, AttrUnreadable: f&loader.MountAttrFault != 0,
		Fd: r.Fd, Dirfd: r.Dirfd, FromDirfd: r.FromDirfd, Aux: r.Aux, Cmd: r.Cmd, Truncated: trunc, Ret: r.Ret}
	return nil
}

func decodeNamespace(raw []byte, n *record.Namespace) error {
	if len(raw) < NamespaceSize {
		return malformed("namespace record of %d bytes", len(raw))
	}
	r := (*loader.NamespaceEvent)(unsafe.Pointer(&raw[0]))
	*n = record.Namespace{Syscall: escapeSyscallNames[r.Syscall], Fd: r.Fd, Flags: r.Flags, Ret: r.Ret}
	return nil
}

func decodeBPF(raw []byte, x *record.BPF) error {
	if len(raw) < BPFSize {
		return malformed("bpf record of %d bytes", len(raw))
	}
	r := (*loader.BPFEvent)(unsafe.Pointer(&raw[0]))
	*x = record.BPF{Cmd: r.Cmd, HasMap: r.Bflags&loader.BPFMap != 0, HasProg: r.Bflags&loader.BPFProg != 0, HasLink: r.Bflags&loader.BPFLink != 0,
		MapID: r.MapId, ProgID: r.ProgId, LinkID: r.LinkId, Ret: r.Ret}
	return nil
}
