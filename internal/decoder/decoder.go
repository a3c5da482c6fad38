// Package decoder turns the raw bytes of one ring buffer record into a typed
// Event. It is pure: bytes in, event out, an error for anything malformed,
// never a panic and never an allocation in steady state.
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
)

// Sizes of the fixed parts of each record, from the generated types.
const (
	HeaderSize  = int(unsafe.Sizeof(loader.EventHeader{}))
	ExecSize    = int(unsafe.Sizeof(loader.ExecEvent{}))
	OpenSize    = int(unsafe.Offsetof(loader.OpenEvent{}.Path))
	ConnectSize = int(unsafe.Sizeof(loader.ConnectEvent{}))
	ForkSize    = int(unsafe.Sizeof(loader.ForkEvent{}))
	ExitSize    = int(unsafe.Sizeof(loader.ExitEvent{}))
	CgroupSize  = int(unsafe.Offsetof(loader.CgroupEvent{}.Path))
	pathBytes   = loader.PathBytes
)

// ErrMalformed wraps every decoding error.
var ErrMalformed = errors.New("malformed record")

// Exec is an exec record. Byte slices alias the raw record.
type Exec struct {
	Ret      int64
	Syscall  uint32
	Dirfd    int32
	AtFlags  uint32
	Filename []byte // as passed by the caller
	Exe      []byte // as resolved by the kernel; empty for a failed exec
	ExeIno   uint64
	ExeDev   uint32
	ExeMode  uint32
	ExeUID   uint32
	ExeGID   uint32
	Argc     uint32
	Args     []byte // NUL-separated argv, possibly truncated
	ArgsSize uint32 // full size of argv in bytes
}

// Open is an open record.
type Open struct {
	Ret     int64
	Syscall uint32
	Dirfd   int32
	Flags   uint64
	Mode    uint64
	Resolve uint64
	Path    []byte
}

// Connect is a connect record.
type Connect struct {
	Ret     int64
	Syscall uint32
	Fd      int32
	Addrlen uint32 // as passed
	Addr    []byte // the sockaddr bytes captured
}

// Fork is a fork record; the header is the parent.
type Fork struct {
	ChildPid       uint32
	ChildStartTime uint64
}

// Exit is an exit record.
type Exit struct {
	Status uint32 // wait(2) status
}

// Cgroup is a cgroup record: a traced cgroup appeared or went away.
type Cgroup struct {
	ID       uint64
	ParentID uint64
	Op       uint32 // loader.CgroupMkdir or loader.CgroupRmdir
	Level    uint32
	Patterns uint32 // bit i: target pattern i matched the cgroup itself
	Flags    uint32 // loader.Cgroup* flags
	Path     []byte // relative to the cgroup2 root, with a leading '/'
}

// Event is one decoded record. Only the member named by Hdr.Kind is valid.
type Event struct {
	Hdr     loader.EventHeader
	Exec    Exec
	Open    Open
	Connect Connect
	Fork    Fork
	Exit    Exit
	Cgroup  Cgroup
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Decode fills ev from raw. Byte slices in ev alias raw, so they are valid
// only as long as raw is.
func Decode(raw []byte, ev *Event) error {
	if len(raw) < HeaderSize {
		return malformed("%d bytes, shorter than a header", len(raw))
	}
	ev.Hdr = *(*loader.EventHeader)(unsafe.Pointer(&raw[0]))
	switch ev.Hdr.Kind {
	case loader.KindExec:
		return decodeExec(raw, &ev.Exec)
	case loader.KindOpen:
		return decodeOpen(raw, &ev.Open)
	case loader.KindConnect:
		return decodeConnect(raw, &ev.Connect)
	case loader.KindFork:
		if len(raw) < ForkSize {
			return malformed("fork record of %d bytes", len(raw))
		}
		r := (*loader.ForkEvent)(unsafe.Pointer(&raw[0]))
		ev.Fork = Fork{ChildPid: r.ChildPid, ChildStartTime: r.ChildStartTime}
	case loader.KindExit:
		if len(raw) < ExitSize {
			return malformed("exit record of %d bytes", len(raw))
		}
		r := (*loader.ExitEvent)(unsafe.Pointer(&raw[0]))
		ev.Exit = Exit{Status: r.ExitCode}
	case loader.KindCgroup:
		if len(raw) < CgroupSize {
			return malformed("cgroup record of %d bytes", len(raw))
		}
		r := (*loader.CgroupEvent)(unsafe.Pointer(&raw[0]))
		if r.PathLen >= pathBytes || CgroupSize+int(r.PathLen) > len(raw) {
			return malformed("cgroup path length %d", r.PathLen)
		}
		ev.Cgroup = Cgroup{ID: r.Id, ParentID: r.ParentId, Op: r.Op, Level: r.Level, Patterns: r.Patterns, Flags: r.Cflags,
			Path: raw[CgroupSize : CgroupSize+int(r.PathLen)]}
	default:
		return malformed("unknown kind %d", ev.Hdr.Kind)
	}
	return nil
}

func decodeExec(raw []byte, e *Exec) error {
	if len(raw) < ExecSize+2*pathBytes {
		return malformed("exec record of %d bytes", len(raw))
	}
	r := (*loader.ExecEvent)(unsafe.Pointer(&raw[0]))
	if r.FilenameLen >= pathBytes || r.ExeLen >= pathBytes {
		return malformed("exec name lengths %d, %d", r.FilenameLen, r.ExeLen)
	}
	args := raw[ExecSize+2*pathBytes:]
	if uint64(r.ArgsLen) > uint64(len(args)) {
		return malformed("exec argv length %d, record holds %d", r.ArgsLen, len(args))
	}
	names := raw[ExecSize:]
	*e = Exec{
		Ret:      r.Ret,
		Syscall:  r.Syscall,
		Dirfd:    r.Dirfd,
		AtFlags:  r.AtFlags,
		Filename: names[:r.FilenameLen:r.FilenameLen],
		Exe:      names[pathBytes : pathBytes+r.ExeLen : pathBytes+r.ExeLen],
		ExeIno:   r.ExeIno,
		ExeDev:   r.ExeDev,
		ExeMode:  r.ExeMode,
		ExeUID:   r.ExeUid,
		ExeGID:   r.ExeGid,
		Argc:     r.Argc,
		Args:     args[:r.ArgsLen:r.ArgsLen],
		ArgsSize: r.ArgsSize,
	}
	return nil
}

// Offsets of the fixed members of an open record. An open record is shorter
// than loader.OpenEvent (the path is sent without its unused tail), so it
// must not be converted to *loader.OpenEvent: its members are read at the
// generated offsets instead.
var openEv loader.OpenEvent

const (
	openRet     = unsafe.Offsetof(openEv.Ret)
	openFlags   = unsafe.Offsetof(openEv.Flags)
	openMode    = unsafe.Offsetof(openEv.Mode)
	openResolve = unsafe.Offsetof(openEv.Resolve)
	openDirfd   = unsafe.Offsetof(openEv.Dirfd)
	openSyscall = unsafe.Offsetof(openEv.Syscall)
	openPathLen = unsafe.Offsetof(openEv.PathLen)
)

func decodeOpen(raw []byte, o *Open) error {
	if len(raw) < OpenSize {
		return malformed("open record of %d bytes", len(raw))
	}
	pathLen := byteOrder.Uint32(raw[openPathLen:])
	if pathLen >= pathBytes || OpenSize+int(pathLen) > len(raw) {
		return malformed("open path length %d in a record of %d bytes", pathLen, len(raw))
	}
	end := OpenSize + int(pathLen)
	*o = Open{
		Ret:     int64(byteOrder.Uint64(raw[openRet:])),
		Syscall: byteOrder.Uint32(raw[openSyscall:]),
		Dirfd:   int32(byteOrder.Uint32(raw[openDirfd:])),
		Flags:   byteOrder.Uint64(raw[openFlags:]),
		Mode:    byteOrder.Uint64(raw[openMode:]),
		Resolve: byteOrder.Uint64(raw[openResolve:]),
		Path:    raw[OpenSize:end:end],
	}
	return nil
}

func decodeConnect(raw []byte, c *Connect) error {
	if len(raw) < ConnectSize {
		return malformed("connect record of %d bytes", len(raw))
	}
	r := (*loader.ConnectEvent)(unsafe.Pointer(&raw[0]))
	if r.AddrLen > uint32(len(r.Addr)) {
		return malformed("connect address length %d", r.AddrLen)
	}
	start := int(unsafe.Offsetof(r.Addr))
	end := start + int(r.AddrLen)
	*c = Connect{
		Ret:     r.Ret,
		Syscall: r.Syscall,
		Fd:      r.Fd,
		Addrlen: r.Addrlen,
		Addr:    raw[start:end:end],
	}
	return nil
}

// Argv calls fn for each argument in the NUL-separated args, in order.
// Every argument is terminated by a NUL except a last one cut off by
// truncation, which is passed with cut set.
func Argv(args []byte, fn func(arg []byte, cut bool)) {
	for len(args) > 0 {
		i := bytes.IndexByte(args, 0)
		if i < 0 {
			fn(args, true)
			return
		}
		fn(args[:i], false)
		args = args[i+1:]
	}
}

// Comm returns the task name without its NUL padding.
func Comm(h *loader.EventHeader) []byte {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&h.Comm[0])), len(h.Comm))
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// Native byte order of the records (the kernel's).
var byteOrder = binary.NativeEndian

// Port returns the big-endian port at b[2:4] of a sockaddr_in/in6.
func Port(addr []byte) uint16 {
	return binary.BigEndian.Uint16(addr[2:4])
}

// Family returns sa_family, or false if the address is too short.
func Family(addr []byte) (uint16, bool) {
	if len(addr) < 2 {
		return 0, false
	}
	return byteOrder.Uint16(addr[:2]), true
}
