// Package decoder turns the raw bytes of one ring buffer record into a
// record.Event: the wire layout of bpf/agenttrace.h (its generated Go
// types) in, the record package's values out. It is pure: bytes in, event
// out, an error for anything malformed, never a panic and never an
// allocation in steady state.
//
// It must not enrich (paths of cgroups, executables of processes) or format;
// that belongs to package record.
package decoder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/record"
)

// Sizes of the fixed parts of each record, from the generated types.
const (
	HeaderSize    = int(unsafe.Sizeof(loader.EventHeader{}))
	ExecSize      = int(unsafe.Sizeof(loader.ExecEvent{}))
	OpenSize      = int(unsafe.Offsetof(loader.OpenEvent{}.Names))
	NetSize       = int(unsafe.Sizeof(loader.NetEvent{}))
	SockStateSize = int(unsafe.Sizeof(loader.SockStateEvent{}))
	DNSSize       = int(unsafe.Sizeof(loader.DNSEvent{}))
	ForkSize      = int(unsafe.Sizeof(loader.ForkEvent{}))
	ExitSize      = int(unsafe.Sizeof(loader.ExitEvent{}))
	CgroupSize    = int(unsafe.Offsetof(loader.CgroupEvent{}.Path))
	IOURingSize   = int(unsafe.Sizeof(loader.IOURingEvent{}))
	pathBytes     = loader.PathBytes
)

// ErrMalformed wraps every decoding error.
var ErrMalformed = errors.New("malformed record")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// syscallNames names the wire's syscall ids (enum syscall_id); "" for
// SC_UNKNOWN and ids this build does not know.
var syscallNames = [...]string{
	loader.SyscallUnknown:    "",
	loader.SyscallExecve:     "execve",
	loader.SyscallExecveat:   "execveat",
	loader.SyscallOpen:       "open",
	loader.SyscallCreat:      "creat",
	loader.SyscallOpenat:     "openat",
	loader.SyscallOpenat2:    "openat2",
	loader.SyscallConnect:    "connect",
	loader.SyscallSocketcall: "socketcall",
	loader.SyscallSendto:     "sendto",
	loader.SyscallSendmsg:    "sendmsg",
	loader.SyscallSendmmsg:   "sendmmsg",
	loader.SyscallBind:       "bind",
	loader.SyscallListen:     "listen",
	loader.SyscallAccept:     "accept",
	loader.SyscallAccept4:    "accept4",

	loader.SyscallIOUringConnect:   "io_uring_connect",
	loader.SyscallIOUringSend:      "io_uring_send",
	loader.SyscallIOUringSendmsg:   "io_uring_sendmsg",
	loader.SyscallIOUringSendZC:    "io_uring_send_zc",
	loader.SyscallIOUringSendmsgZC: "io_uring_sendmsg_zc",
	loader.SyscallIOUringAccept:    "io_uring_accept",
	loader.SyscallIOUringBind:      "io_uring_bind",
	loader.SyscallIOUringListen:    "io_uring_listen",

	loader.SyscallOpenByHandleAt: "open_by_handle_at",
	loader.SyscallOpenTree:       "open_tree",
	loader.SyscallPidfdGetfd:     "pidfd_getfd",
	loader.SyscallMemfdCreate:    "memfd_create",
	loader.SyscallIOURingSetup:   "io_uring_setup",
	loader.SyscallIOURingOpenat:  "io_uring_openat",
	loader.SyscallIOURingOpenat2: "io_uring_openat2",
	loader.SyscallOpenTreeAttr:   "open_tree_attr",
}

func syscallName(id uint32) string {
	if int(id) < len(syscallNames) {
		return syscallNames[id]
	}
	return ""
}

var commOffset = unsafe.Offsetof(loader.EventHeader{}.Comm)

// Decode fills ev from raw. Strings in ev alias raw, so they are valid only
// as long as raw is.
func Decode(raw []byte, ev *record.Event) error {
	if len(raw) < HeaderSize {
		return malformed("%d bytes, shorter than a header", len(raw))
	}
	h := (*loader.EventHeader)(unsafe.Pointer(&raw[0]))
	flags := h.Flags
	ev.Kind, ev.Ktime, ev.CPU, ev.Kseq = h.Kind, h.Ktime, h.Cpu, h.Kseq
	comm := raw[commOffset : commOffset+uintptr(len(h.Comm))]
	if i := bytes.IndexByte(comm, 0); i >= 0 {
		comm = comm[:i]
	}
	ev.Proc = record.Proc{
		Pid: h.Pid, Tid: h.Tid, Ppid: h.Ppid,
		Uid: h.Uid, Gid: h.Gid, Euid: h.Euid, Egid: h.Egid, Auid: h.Auid,
		Comm:         unsafeString(comm),
		CgroupID:     h.CgroupId,
		ExecID:       record.ExecID{Pid: h.Pid, Start: h.StartTime, Seq: h.ExecSeq},
		ParentExecID: record.ExecID{Pid: h.ParentPid, Start: h.ParentStartTime, Seq: h.ParentExecSeq},
	}
	switch {
	case flags&loader.FlagCompat != 0:
		ev.Proc.ABI = "i386"
	case flags&loader.FlagX32 != 0:
		ev.Proc.ABI = "x32"
	}
	switch ev.Kind {
	case loader.KindExec:
		return decodeExec(raw, flags, &ev.Exec)
	case loader.KindOpen:
		return decodeOpen(raw, flags, &ev.Open)
	case loader.KindConnect, loader.KindSend, loader.KindBind, loader.KindListen, loader.KindAccept:
		return decodeNet(raw, flags, ev)
	case loader.KindSockState:
		return decodeSockState(raw, &ev.SockState)
	case loader.KindDNS:
		return decodeDNS(raw, &ev.DNS)
	case loader.KindFork:
		if len(raw) < ForkSize {
			return malformed("fork record of %d bytes", len(raw))
		}
		r := (*loader.ForkEvent)(unsafe.Pointer(&raw[0]))
		// The child runs the parent's image: it inherits self_exec_id.
		ev.Fork = record.Fork{ChildPid: r.ChildPid, ChildExecID: record.ExecID{Pid: r.ChildPid, Start: r.ChildStartTime, Seq: h.ExecSeq},
			ChildCgroupID: r.ChildCgroupId}
	case loader.KindExit:
		if len(raw) < ExitSize {
			return malformed("exit record of %d bytes", len(raw))
		}
		r := (*loader.ExitEvent)(unsafe.Pointer(&raw[0]))
		ev.Exit = record.Exit{Status: r.ExitCode}
	case loader.KindCgroup:
		return decodeCgroup(raw, &ev.Cgroup)
	case loader.KindIOURing:
		if len(raw) < IOURingSize {
			return malformed("io_uring record of %d bytes", len(raw))
		}
		r := (*loader.IOURingEvent)(unsafe.Pointer(&raw[0]))
		ev.IOURing = record.IOURing{Syscall: syscallName(r.Syscall), Entries: r.Entries, Flags: r.SetupFlags, CqEntries: r.CqEntries,
			ParamsUnreadable: flags&loader.FlagArgFault != 0, Ret: r.Ret}
	case loader.KindCgroupMove:
		return decodeCgroupMove(raw, &ev.CgroupMove)
	case loader.KindProcAccess:
		return decodeProcAccess(raw, &ev.ProcAccess)
	case loader.KindFileOp:
		return decodeFileOp(raw, &ev.FileOp)
	case loader.KindMount:
		return decodeMount(raw, &ev.Mount)
	case loader.KindNamespace:
		return decodeNamespace(raw, &ev.Namespace)
	case loader.KindBPF:
		return decodeBPF(raw, &ev.BPF)
	default:
		return malformed("unknown kind %d", ev.Kind)
	}
	return nil
}

func decodeExec(raw []byte, flags uint32, e *record.Exec) error {
	if len(raw) < ExecSize+2*pathBytes {
		return malformed("exec record of %d bytes", len(raw))
	}
	r := (*loader.ExecEvent)(unsafe.Pointer(&raw[0]))
	if int(r.FilenameLen) >= pathBytes || int(r.Exe.PathLen) >= pathBytes {
		return malformed("exec name lengths %d, %d", r.FilenameLen, r.Exe.PathLen)
	}
	if err := checkFile(&r.Exe, raw[ExecSize+pathBytes:ExecSize+pathBytes+int(r.Exe.PathLen)]); err != nil {
		return err
	}
	args := raw[ExecSize+2*pathBytes:]
	if uint64(r.ArgsLen) > uint64(len(args)) {
		return malformed("exec argv length %d, record holds %d", r.ArgsLen, len(args))
	}
	if flags&loader.FlagPastNoReturn != 0 && r.Ret >= 0 {
		return malformed("exec past the point of no return with result %d", r.Ret)
	}
	names := raw[ExecSize:]
	noEnter := flags&loader.FlagNoEnter != 0
	*e = record.Exec{
		Syscall:            syscallName(r.Syscall),
		Dirfd:              r.Dirfd,
		AtFlags:            r.AtFlags,
		NoEnter:            noEnter,
		Filename:           unsafeString(names[:r.FilenameLen]),
		FilenameTruncated:  flags&loader.FlagPathTruncated != 0,
		FilenameUnreadable: flags&loader.FlagPathFault != 0,
		Exe:                unsafeString(names[pathBytes : pathBytes+int(r.Exe.PathLen)]),
		ExeTruncated:       flags&loader.FlagExeTruncated != 0,
		ExeFile: record.ExeFile{Ino: r.Exe.Ino, Dev: r.Exe.Dev, Mode: r.Exe.Mode, UID: r.Exe.Uid, GID: r.Exe.Gid, Ctime: r.Exe.Ctime,
			Fileless: r.Exe.Flags&loader.FileFileless != 0, Deleted: r.Exe.Flags&loader.FileDeleted != 0,
			WriteDenied: r.Exe.Flags&loader.FileWriteDenied != 0},
		Args:           unsafeString(args[:r.ArgsLen]),
		Argc:           r.Argc,
		ArgsTruncated:  flags&loader.FlagArgsTruncated != 0,
		ArgsSize:       r.ArgsSize,
		ArgsUnreadable: flags&loader.FlagArgsFault != 0,
		ArgvEmpty:      flags&loader.FlagArgvEmpty != 0,
		PastNoReturn:   flags&loader.FlagPastNoReturn != 0,
		Ret:            r.Ret,
	}
	return nil
}

// Offsets of the fixed members of an open record. An open record is shorter
// than loader.OpenEvent (names is sent without its unused tail), so it must
// not be converted to *loader.OpenEvent: its members are read at the
// generated offsets instead.
var openEv loader.OpenEvent

const (
	openRet          = unsafe.Offsetof(openEv.Ret)
	openFlags        = unsafe.Offsetof(openEv.Flags)
	openMode         = unsafe.Offsetof(openEv.Mode)
	openResolve      = unsafe.Offsetof(openEv.Resolve)
	openUserData     = unsafe.Offsetof(openEv.UserData)
	openSrcStartTime = unsafe.Offsetof(openEv.SrcStartTime)
	openSrcExecSeq   = unsafe.Offsetof(openEv.SrcExecSeq)
	openFile         = unsafe.Offsetof(openEv.File)
	openDirfd        = unsafe.Offsetof(openEv.Dirfd)
	openSyscall      = unsafe.Offsetof(openEv.Syscall)
	openPathLen      = unsafe.Offsetof(openEv.PathLen)
	openArg          = unsafe.Offsetof(openEv.Arg)
	openSrcPid       = unsafe.Offsetof(openEv.SrcPid)
	openOFlags       = unsafe.Offsetof(openEv.Oflags)
	openSqeFlags     = unsafe.Offsetof(openEv.SqeFlags)
)

// checkFile rejects a file_info whose lengths do not fit its path.
func checkFile(f *loader.FileInfo, path []byte) error {
	if f.Flags&loader.FileInNamespace == 0 || f.NsSeen == 0 {
		return nil
	}
	if f.NsLen > f.PathLen {
		return malformed("path_in_ns of %d bytes in a path of %d", f.NsLen, f.PathLen)
	}
	if f.NsLen == 0 && (len(path) == 0 || path[0] != '/') {
		return malformed("path_in_ns \"/\" of a path not from the root")
	}
	return nil
}

// file is the record's file for a file_info and its path (checked).
func file(f *loader.FileInfo, path []byte) record.File {
	out := record.File{
		Present: true, Path: unsafeString(path), PathTruncated: f.Flags&loader.FilePathTruncated != 0,
		Dev: f.Dev, Ino: f.Ino, Mode: f.Mode, MntID: f.MntId,
		Deleted: f.Flags&loader.FileDeleted != 0, Fileless: f.Flags&loader.FileFileless != 0, Magic: f.Magic,
	}
	// The path as the task sees it: the end of the path where the walk
	// met the task's root ("/" when it met it at the file itself).
	if f.Flags&loader.FileInNamespace != 0 && f.NsSeen != 0 {
		out.HasPathInNS = true
		out.PathInNS = unsafeString(path[:1]) // "/" (checked)
		if f.NsLen > 0 {
			out.PathInNS = unsafeString(path[len(path)-int(f.NsLen):])
		}
	}
	return out
}

func decodeOpen(raw []byte, flags uint32, o *record.Open) error {
	if len(raw) < OpenSize {
		return malformed("open record of %d bytes", len(raw))
	}
	pathLen := byteOrder.Uint32(raw[openPathLen:])
	if int(pathLen) >= pathBytes || OpenSize+int(pathLen) > len(raw) {
		return malformed("open path length %d in a record of %d bytes", pathLen, len(raw))
	}
	end := OpenSize + int(pathLen)
	oflags := byteOrder.Uint32(raw[openOFlags:])
	arg := int32(byteOrder.Uint32(raw[openArg:]))
	*o = record.Open{
		Ret:            int64(byteOrder.Uint64(raw[openRet:])),
		Syscall:        syscallName(byteOrder.Uint32(raw[openSyscall:])),
		Dirfd:          int32(byteOrder.Uint32(raw[openDirfd:])),
		Flags:          byteOrder.Uint64(raw[openFlags:]),
		Mode:           byteOrder.Uint64(raw[openMode:]),
		Resolve:        byteOrder.Uint64(raw[openResolve:]),
		Path:           unsafeString(raw[OpenSize:end]),
		PathTruncated:  flags&loader.FlagPathTruncated != 0,
		PathUnreadable: flags&loader.FlagPathFault != 0,
		ArgUnreadable:  flags&loader.FlagArgFault != 0,
		UserData:       byteOrder.Uint64(raw[openUserData:]),
		SqeFlags:       byteOrder.Uint32(raw[openSqeFlags:]),
		CQESkipped:     oflags&loader.OpenNoCompletion != 0,
		UserDataShared: oflags&loader.OpenUserDataShared != 0,
	}
	switch o.Syscall {
	case "open_by_handle_at":
		o.HandleType, o.Handle, o.Path = arg, o.Path, ""
	case "pidfd_getfd":
		o.TargetFd = arg
		if oflags&loader.OpenSource != 0 {
			pid := byteOrder.Uint32(raw[openSrcPid:])
			o.Source = record.Source{Known: true, Exe: o.Path, ExeTruncated: oflags&loader.OpenSourceExeTruncated != 0,
				ExecID: record.ExecID{Pid: pid, Start: byteOrder.Uint64(raw[openSrcStartTime:]), Seq: byteOrder.Uint64(raw[openSrcExecSeq:])}}
		}
		o.Path = ""
	}
	if oflags&loader.OpenFileSlot != 0 {
		o.FileSlot, o.InSlot = arg, true
	}
	fi := (*loader.FileInfo)(unsafe.Pointer(&raw[openFile]))
	if fi.Flags&loader.FilePresent == 0 {
		return nil
	}
	// The file's path follows the argument's NUL.
	start := end + 1
	if int(fi.PathLen) >= pathBytes || start+int(fi.PathLen) > len(raw) {
		return malformed("open file path length %d after %d argument bytes in a record of %d bytes", fi.PathLen, pathLen, len(raw))
	}
	if err := checkFile(fi, raw[start:start+int(fi.PathLen)]); err != nil {
		return err
	}
	f := file(fi, raw[start:start+int(fi.PathLen)])
	if oflags&loader.OpenDir != 0 {
		o.Dir = f
		return nil
	}
	o.File = f
	if oflags&loader.OpenSocket != 0 {
		// pidfd_getfd of a socket: its sock_info follows the path's NUL, 8-aligned.
		off := OpenSize + (end+1-OpenSize+int(fi.PathLen)+1+7)&^7
		if off+int(unsafe.Sizeof(loader.SockInfo{})) > len(raw) {
			return malformed("open socket at %d in a record of %d bytes", off, len(raw))
		}
		if err := decodeSock(raw, off, (*loader.SockInfo)(unsafe.Pointer(&raw[off])), &o.File.Socket); err != nil {
			return err
		}
		o.File.HasSocket = true
	}
	return nil
}

// Offsets of the fixed members of a cgroup record, which, like an open
// record, is sent without the unused tail of its path.
var cgroupEv loader.CgroupEvent

const (
	cgroupID       = unsafe.Offsetof(cgroupEv.Id)
	cgroupParentID = unsafe.Offsetof(cgroupEv.ParentId)
	cgroupOp       = unsafe.Offsetof(cgroupEv.Op)
	cgroupLevel    = unsafe.Offsetof(cgroupEv.Level)
	cgroupPatterns = unsafe.Offsetof(cgroupEv.Patterns)
	cgroupFlags    = unsafe.Offsetof(cgroupEv.Cflags)
	cgroupPathLen  = unsafe.Offsetof(cgroupEv.PathLen)
)

func decodeCgroup(raw []byte, c *record.Cgroup) error {
	if len(raw) < CgroupSize {
		return malformed("cgroup record of %d bytes", len(raw))
	}
	pathLen := byteOrder.Uint32(raw[cgroupPathLen:])
	if int(pathLen) >= pathBytes || CgroupSize+int(pathLen) > len(raw) {
		return malformed("cgroup path length %d", pathLen)
	}
	op := "mkdir"
	if byteOrder.Uint32(raw[cgroupOp:]) == loader.CgroupRmdir {
		op = "rmdir"
	}
	flags := byteOrder.Uint32(raw[cgroupFlags:])
	*c = record.Cgroup{Op: op, ID: byteOrder.Uint64(raw[cgroupID:]), ParentID: byteOrder.Uint64(raw[cgroupParentID:]),
		Level:         byteOrder.Uint32(raw[cgroupLevel:]),
		Path:          unsafeString(raw[CgroupSize : CgroupSize+int(pathLen)]),
		Matched:       flags&loader.CgroupMatched != 0,
		Patterns:      byteOrder.Uint32(raw[cgroupPatterns:]),
		StateFull:     flags&loader.CgroupStateFull != 0,
		PathTruncated: flags&loader.CgroupPathTruncated != 0,
	}
	return nil
}

// unsafeString views b as a string without copying: the event's strings
// alias the record, as its byte slices did.
func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// Native byte order of the records (the kernel's).
var byteOrder = binary.NativeEndian
