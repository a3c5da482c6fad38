package record

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ExecID names one program image of one process: the process (pid and start
// time, boot-time ns) and its exec counter (the kernel's self_exec_id). It is
// written "<pid>-<start>-<counter>".
type ExecID struct {
	Pid   uint32
	Start uint64
	Seq   uint64
}

// IsZero reports whether id names nothing (no process has pid 0).
func (id ExecID) IsZero() bool { return id.Pid == 0 && id.Start == 0 && id.Seq == 0 }

func (id ExecID) process() processID { return processID{id.Pid, id.Start} }

// AppendText appends id's text form.
func (id ExecID) AppendText(b []byte) []byte {
	b = strconv.AppendUint(b, uint64(id.Pid), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, id.Start, 10)
	b = append(b, '-')
	return strconv.AppendUint(b, id.Seq, 10)
}

func (id ExecID) String() string { return string(id.AppendText(nil)) }

var errExecID = errors.New("not <pid>-<start>-<counter>")

// ParseExecID parses the text form of an ExecID.
func ParseExecID(s string) (ExecID, error) {
	pid, rest, ok1 := strings.Cut(s, "-")
	start, seq, ok2 := strings.Cut(rest, "-")
	if !ok1 || !ok2 {
		return ExecID{}, fmt.Errorf("%q: %w", s, errExecID)
	}
	p, err1 := strconv.ParseUint(pid, 10, 32)
	st, err2 := strconv.ParseUint(start, 10, 64)
	sq, err3 := strconv.ParseUint(seq, 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return ExecID{}, fmt.Errorf("%q: %w", s, errExecID)
	}
	return ExecID{uint32(p), st, sq}, nil
}

func appendExecID(b []byte, key string, id ExecID) []byte {
	b = append(appendKey(b, key), '"')
	return append(id.AppendText(b), '"')
}

func (r *reader) execID(key string) ExecID {
	s := r.string(key)
	if s == "" {
		return ExecID{}
	}
	id, err := ParseExecID(s)
	if err != nil {
		r.fail(fmt.Errorf("%s: %w", key, err))
	}
	return id
}

// Proc is the process a kernel record is about: "proc".
type Proc struct {
	Pid, Tid, Ppid             uint32
	Uid, Gid, Euid, Egid, Auid uint32
	Comm                       string
	// Exe is the executable of the process's current image, when the log
	// recorded it (the process exec'ed, or forked from one that did).
	Exe          string
	CgroupID     uint64
	Cgroup       string // its path below the cgroup2 mount, when known
	ExecID       ExecID
	ParentExecID ExecID // the creating process's image at the creation
	// ToolCall is the tool call the process belongs to; zero for a root
	// process and for records written without attribution.
	ToolCall ExecID
	ABI      string // "i386" or "x32" for those syscall ABIs, else ""
}

func (p *Proc) append(b []byte) []byte {
	b = append(appendKey(b, "proc"), '{')
	b = appendUint(b, "pid", uint64(p.Pid))
	b = appendUint(b, "tid", uint64(p.Tid))
	b = appendUint(b, "ppid", uint64(p.Ppid))
	b = appendUint(b, "uid", uint64(p.Uid))
	b = appendUint(b, "gid", uint64(p.Gid))
	b = appendUint(b, "euid", uint64(p.Euid))
	b = appendUint(b, "egid", uint64(p.Egid))
	b = appendUint(b, "auid", uint64(p.Auid))
	b = AppendString(b, "comm", p.Comm)
	if p.Exe != "" {
		b = AppendString(b, "exe", p.Exe)
	}
	b = appendUint(b, "cgroup_id", p.CgroupID)
	if p.Cgroup != "" {
		b = AppendString(b, "cgroup", p.Cgroup)
	}
	b = appendExecID(b, "exec_id", p.ExecID)
	b = appendExecID(b, "parent_exec_id", p.ParentExecID)
	if !p.ToolCall.IsZero() {
		b = appendExecID(b, "tool_call", p.ToolCall)
	}
	if p.ABI != "" {
		b = appendASCII(b, "abi", p.ABI)
	}
	return append(b, '}')
}

func (p *Proc) decode(r *reader) {
	p.Pid, p.Tid, p.Ppid = r.uint32("pid"), r.uint32("tid"), r.uint32("ppid")
	p.Uid, p.Gid, p.Euid, p.Egid, p.Auid = r.uint32("uid"), r.uint32("gid"), r.uint32("euid"), r.uint32("egid"), r.uint32("auid")
	p.Comm, p.Exe = r.bytes("comm"), r.bytes("exe")
	p.CgroupID, p.Cgroup = r.uint("cgroup_id"), r.bytes("cgroup")
	p.ExecID, p.ParentExecID, p.ToolCall = r.execID("exec_id"), r.execID("parent_exec_id"), r.execID("tool_call")
	p.ABI = r.string("abi")
}

// Event is one kernel event as the decoder delivers it: who caused it and
// the one body Kind names. Strings may alias the ring buffer's memory: an
// Event is valid only until the next record is read.
type Event struct {
	Kind  uint32 // the kernel's record kind: Kind* above
	Ktime uint64 // CLOCK_BOOTTIME ns
	CPU   uint32
	Kseq  uint64
	Proc  Proc // without Exe, Cgroup and ToolCall, which the encoder adds

	Exec      Exec
	Open      Open
	Connect   Connect
	Send      Send
	Bind      Bind
	Listen    Listen
	Accept    Accept
	SockState SockState
	DNS       DNS
	Fork      Fork
	Exit      Exit
	Cgroup    Cgroup
	IOURing   IOURing

	CgroupMove CgroupMove
	ProcAccess ProcAccess
	FileOp     FileOp
	Mount      Mount
	Namespace  Namespace
	BPF        BPF
}

// Body is the member of e that Kind names; nil for an unknown kind.
func (e *Event) Body() Body {
	switch e.Kind {
	case KindExec:
		return &e.Exec
	case KindOpen:
		return &e.Open
	case KindConnect:
		return &e.Connect
	case KindSend:
		return &e.Send
	case KindBind:
		return &e.Bind
	case KindListen:
		return &e.Listen
	case KindAccept:
		return &e.Accept
	case KindSockState:
		return &e.SockState
	case KindDNS:
		return &e.DNS
	case KindFork:
		return &e.Fork
	case KindExit:
		return &e.Exit
	case KindCgroup:
		return &e.Cgroup
	case KindIOURing:
		return &e.IOURing
	case KindCgroupMove:
		return &e.CgroupMove
	case KindProcAccess:
		return &e.ProcAccess
	case KindFileOp:
		return &e.FileOp
	case KindMount:
		return &e.Mount
	case KindNamespace:
		return &e.Namespace
	case KindBPF:
		return &e.BPF
	}
	return nil
}

// appendResult appends "ret" and, for a failure, "errno".
func appendResult(b []byte, ret int64) []byte {
	b = appendInt(b, "ret", ret)
	if ret < 0 && ret >= -4095 {
		b = appendASCII(b, "errno", ErrnoName(-ret))
	}
	return b
}

// Errno names the error of a syscall result; "" for a success.
func Errno(ret int64) string {
	if ret < 0 && ret >= -4095 {
		return ErrnoName(-ret)
	}
	return ""
}

func appendSyscall(b []byte, name string) []byte {
	if name != "" {
		return appendASCII(b, "syscall", name)
	}
	return b
}

// Exec is an exec: a successful one (the image it committed to, argv as the
// new program sees it) or a failed one (argv as the caller passed it; none
// when it failed past the point of no return, the caller's memory gone).
type Exec struct {
	Syscall string // "execve" or "execveat"; "" if the exec was seen without its syscall entry
	Dirfd   int32  // execveat
	AtFlags uint32 // execveat
	// NoEnter: the exec was seen at its commit without its syscall entry,
	// so neither the syscall nor the file name as passed is known.
	NoEnter            bool
	Filename           string // as passed by the caller
	FilenameTruncated  bool
	FilenameUnreadable bool
	Exe                string // as resolved by the kernel; successful execs and PastNoReturn only
	ExeTruncated       bool
	ExeFile            ExeFile // with Exe
	// Args is argv, each argument terminated by a NUL except a last one
	// cut by ArgsTruncated.
	Args           string
	Argc           uint32
	ArgsTruncated  bool
	ArgsSize       uint32 // argv's full size in bytes, when truncated
	ArgsUnreadable bool
	ArgvEmpty      bool // the caller passed an empty argv
	// PastNoReturn: the exec failed after the kernel had replaced the
	// caller's memory (the point of no return; then also comm, exec_id and
	// credentials, as proc shows): the caller is gone and the kernel kills
	// the process. argv is unknown (ArgsUnreadable); Exe, when known, is the
	// file the kernel was executing.
	PastNoReturn bool
	Ret          int64
}

// ExeFile is the executed file: its inode, change time, whether it has a
// path at all, and the SHA-256 of its content (or why there is none).
type ExeFile struct {
	Ino      uint64
	Dev      uint32 // the kernel's dev_t: major << 20 | minor
	Mode     uint32
	UID      uint32
	GID      uint32
	Ctime    uint64 // ns since the epoch
	Fileless bool   // memfd: no path in any mount namespace
	Deleted  bool   // unlinked when it was executed
	// WriteDenied: the kernel refused writes to the file when it was
	// executed (not in the log: what ExeHasher may rely on).
	WriteDenied bool
	SHA256      string // hex
	SHA256Error string // why SHA256 is not known
}

// Type is "exec".
func (*Exec) Type() string { return "exec" }

// Argv returns the arguments.
func (x *Exec) Argv() []string {
	var argv []string
	forArgs(x.Args, func(arg string) { argv = append(argv, arg) })
	return argv
}

// forArgs calls fn for each NUL-terminated argument in args, and for a last
// one cut without its NUL.
func forArgs(args string, fn func(arg string)) {
	for len(args) > 0 {
		i := strings.IndexByte(args, 0)
		if i < 0 {
			fn(args)
			return
		}
		fn(args[:i])
		args = args[i+1:]
	}
}

func (x *Exec) appendBody(b []byte) []byte {
	b = appendSyscall(b, x.Syscall)
	if x.Syscall == "execveat" {
		b = appendInt(b, "dirfd", int64(x.Dirfd))
		b = appendFlagNames(appendKey(b, "flags"), atFlagNames, uint64(x.AtFlags))
		b = appendUint(b, "flags_raw", uint64(x.AtFlags))
	}
	if !x.NoEnter {
		// Not readable at entry: no filename, never a later read.
		if !x.FilenameUnreadable {
			b = AppendString(b, "filename", x.Filename)
		}
		b = appendPathFlags(b, x.FilenameTruncated, x.FilenameUnreadable)
	}
	if x.Ret == 0 || x.PastNoReturn && x.Exe != "" {
		b = AppendString(b, "exe", x.Exe)
		if x.ExeTruncated {
			b = appendBool(b, "exe_truncated", true)
		}
		b = x.ExeFile.append(b)
	}
	b = appendArgv(b, x.Args)
	b = appendUint(b, "argc", uint64(x.Argc))
	if x.ArgsTruncated {
		b = appendBool(b, "argv_truncated", true)
		b = appendUint(b, "argv_size", uint64(x.ArgsSize))
	}
	if x.ArgsUnreadable {
		b = appendBool(b, "argv_unreadable", true)
	}
	if x.ArgvEmpty {
		b = appendBool(b, "argv_empty", true)
	}
	if x.PastNoReturn {
		b = appendBool(b, "past_point_of_no_return", true)
	}
	return appendResult(b, x.Ret)
}

func (x *Exec) decode(r *reader) {
	x.Syscall = r.string("syscall")
	if x.Syscall == "execveat" {
		x.Dirfd = int32(r.int("dirfd"))
		x.AtFlags = r.uint32("flags_raw")
	}
	x.FilenameTruncated, x.FilenameUnreadable = r.bool("path_truncated"), r.bool("path_unreadable")
	x.NoEnter = !r.o.has("filename") && !x.FilenameUnreadable
	x.Filename = r.bytes("filename")
	x.Exe, x.ExeTruncated = r.bytes("exe"), r.bool("exe_truncated")
	if f := r.object("exe_file"); f != nil {
		x.ExeFile.decode(f)
		r.done(f)
	}
	x.ArgsTruncated = r.bool("argv_truncated")
	var args []byte
	argv := r.strings("argv")
	for i, arg := range argv {
		args = append(args, arg...)
		// A truncated argv may end in an argument cut without its NUL.
		if i < len(argv)-1 || !x.ArgsTruncated {
			args = append(args, 0)
		}
	}
	x.Args = string(args)
	x.Argc = r.uint32("argc")
	x.ArgsSize = r.uint32("argv_size")
	x.ArgsUnreadable, x.ArgvEmpty = r.bool("argv_unreadable"), r.bool("argv_empty")
	x.PastNoReturn = r.bool("past_point_of_no_return")
	x.Ret = r.int("ret")
}

func appendPathFlags(b []byte, truncated, unreadable bool) []byte {
	if truncated {
		b = appendBool(b, "path_truncated", true)
	}
	if unreadable {
		b = appendBool(b, "path_unreadable", true)
	}
	return b
}

// appendDev appends a dev_t (major << 20 | minor) as "major:minor".
func appendDev(b []byte, key string, dev uint32) []byte {
	b = append(appendKey(b, key), '"')
	b = strconv.AppendUint(b, uint64(dev>>20), 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(dev&0xfffff), 10)
	return append(b, '"')
}

func (r *reader) dev(key string) uint32 {
	s := r.string(key)
	if s == "" {
		return 0
	}
	major, minor, ok := strings.Cut(s, ":")
	ma, err1 := strconv.ParseUint(major, 10, 12)
	mi, err2 := strconv.ParseUint(minor, 10, 20)
	if !ok || err1 != nil || err2 != nil {
		r.fail(fmt.Errorf("%s: %q is not major:minor", key, s))
	}
	return uint32(ma<<20 | mi)
}

// appendArgv appends "argv" and, if any argument is not exact, "argv_b64"
// with every argument's exact bytes.
func appendArgv(b []byte, args string) []byte {
	exact := true
	b = append(appendKey(b, "argv"), '[')
	forArgs(args, func(arg string) {
		if b[len(b)-1] != '[' {
			b = append(b, ',')
		}
		var ok bool
		b, ok = appendQuoted(b, unsafeBytes(arg))
		exact = exact && ok
	})
	b = append(b, ']')
	if exact {
		return b
	}
	b = append(appendKey(b, "argv_b64"), '[')
	forArgs(args, func(arg string) {
		if b[len(b)-1] != '[' {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, unsafeBytes(arg))
		b = append(b, '"')
	})
	return append(b, ']')
}

// Connect is a connect of a socket (a syscall, or io_uring CONNECT).
type Connect struct {
	Syscall        string // "connect", "socketcall" or "io_uring_connect"
	Fd             int32
	FileSlot       bool   // io_uring IOSQE_FIXED_FILE: Fd is a registered file slot
	Addrlen        uint32 // as passed by the caller
	Addr           Sockaddr
	AddrSource     string // AddrKernel, AddrUser, or "" when no address was captured
	AddrUnreadable bool
	HasIOUring     bool
	IOUring        IOUring
	HasSocket      bool
	Socket         SocketInfo // at the syscall's exit
	Ret            int64
	NoResult       bool // io_uring with IOSQE_CQE_SKIP_SUCCESS: no Ret
}

// Type is "connect".
func (*Connect) Type() string { return "connect" }

func (c *Connect) appendBody(b []byte) []byte {
	b = appendNetHead(b, c.Syscall, c.Fd, c.FileSlot)
	b = appendUint(b, "addrlen", uint64(c.Addrlen))
	b = c.Addr.appendMembers(b)
	b = appendAddrSource(b, c.AddrSource, c.AddrUnreadable)
	return appendNetTail(b, ioPtr(c.HasIOUring, &c.IOUring), sockPtr(c.HasSocket, &c.Socket), c.Ret, c.NoResult)
}

func (c *Connect) decode(r *reader) {
	decodeNetHead(r, &c.Syscall, &c.Fd, &c.FileSlot)
	c.Addrlen = r.uint32("addrlen")
	c.Addr.decodeMembers(r)
	c.AddrSource, c.AddrUnreadable = r.string("addr_source"), r.bool("addr_unreadable")
	decodeNetTail(r, &c.HasIOUring, &c.IOUring, &c.HasSocket, &c.Socket, &c.Ret, &c.NoResult)
}

// UnixKind says which name a unix socket address has.
type UnixKind uint8

const (
	UnixNone     UnixKind = iota
	UnixPath              // a pathname
	UnixAbstract          // the abstract namespace: every byte after the leading NUL
	UnixUnnamed           // no name (an address of the family only)
)

// Sockaddr is a socket address as the kernel reads it: as many of its
// members as the bytes given hold.
type Sockaddr struct {
	Family    uint16
	HasFamily bool           // at least the family's two bytes were given
	Addr      netip.AddrPort // inet and inet6; invalid when too short
	Flowinfo  uint32         // inet6
	ScopeID   uint32         // inet6
	Unix      UnixKind
	UnixName  string
}

// sizeofSockaddrInet6RFC2133 is SIN6_LEN_RFC2133: the shortest sockaddr_in6
// that connect(2) accepts.
const sizeofSockaddrInet6RFC2133 = 24

// ParseSockaddr decodes a sockaddr as the kernel would read it.
func ParseSockaddr(raw []byte) Sockaddr {
	var s Sockaddr
	if len(raw) < 2 {
		return s
	}
	s.Family, s.HasFamily = binary.NativeEndian.Uint16(raw[:2]), true
	switch s.Family {
	case unix.AF_INET:
		if len(raw) >= unix.SizeofSockaddrInet4 {
			s.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[4:8])), binary.BigEndian.Uint16(raw[2:4]))
		}
	case unix.AF_INET6:
		// The kernel accepts the 24-byte sockaddr_in6 of RFC 2133, without
		// sin6_scope_id, and reads the scope only from a full one.
		if len(raw) >= sizeofSockaddrInet6RFC2133 {
			s.Addr = netip.AddrPortFrom(netip.AddrFrom16([16]byte(raw[8:24])), binary.BigEndian.Uint16(raw[2:4]))
			s.Flowinfo = binary.BigEndian.Uint32(raw[4:8])
		}
		if len(raw) >= unix.SizeofSockaddrInet6 {
			s.ScopeID = binary.NativeEndian.Uint32(raw[24:28])
		}
	case unix.AF_UNIX:
		path := raw[2:]
		switch {
		case len(path) == 0:
			s.Unix = UnixUnnamed
		case path[0] == 0:
			// Abstract: every byte after the leading NUL is the name, NULs included.
			s.Unix, s.UnixName = UnixAbstract, unsafeString(path[1:])
		default:
			// A pathname ends at the first NUL, as the kernel reads it.
			if i := bytes.IndexByte(path, 0); i >= 0 {
				path = path[:i]
			}
			s.Unix, s.UnixName = UnixPath, unsafeString(path)
		}
	}
	return s
}

// String is the address as a reader writes it: 127.0.0.1:80, [::1]:80,
// unix:/path, unix:@abstract, unix: (unnamed), or the family alone.
func (s *Sockaddr) String() string {
	switch {
	case !s.HasFamily:
		return "(no address)"
	case s.Addr.IsValid():
		return s.Addr.String()
	case s.Unix == UnixPath:
		return "unix:" + Readable(s.UnixName)
	case s.Unix == UnixAbstract:
		return "unix:@" + Readable(s.UnixName)
	case s.Unix == UnixUnnamed:
		return "unix: (unnamed)"
	}
	if name, ok := familyNames[s.Family]; ok {
		return name
	}
	return fmt.Sprintf("family %d", s.Family)
}

// FamilyName names the address family ("AF_INET"); "" when it has no name.
func (s *Sockaddr) FamilyName() string { return familyNames[s.Family] }

// appendMembers appends the address's members to the enclosing object.
func (s *Sockaddr) appendMembers(b []byte) []byte {
	if !s.HasFamily {
		return b
	}
	if name, ok := familyNames[s.Family]; ok {
		b = appendASCII(b, "family", name)
	}
	b = appendUint(b, "family_num", uint64(s.Family))
	if s.Addr.IsValid() {
		ip := s.Addr.Addr()
		b = append(appendKey(b, "addr"), '"')
		b = append(ip.AppendTo(b), '"')
		b = appendUint(b, "port", uint64(s.Addr.Port()))
		if s.Family == unix.AF_INET6 {
			if ip.Is4In6() {
				b = appendBool(b, "v4_mapped", true)
			}
			if s.Flowinfo != 0 {
				b = appendUint(b, "flowinfo", uint64(s.Flowinfo))
			}
			if s.ScopeID != 0 {
				b = appendUint(b, "scope_id", uint64(s.ScopeID))
			}
		}
	}
	switch s.Unix {
	case UnixUnnamed:
		b = appendBool(b, "unix_unnamed", true)
	case UnixAbstract:
		b = AppendString(b, "unix_abstract", s.UnixName)
	case UnixPath:
		b = AppendString(b, "unix_path", s.UnixName)
	}
	return b
}

func (s *Sockaddr) decodeMembers(r *reader) {
	*s = Sockaddr{}
	if !r.o.has("family_num") {
		return
	}
	s.HasFamily, s.Family = true, uint16(r.uint("family_num"))
	if addr := r.string("addr"); addr != "" {
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			r.fail(fmt.Errorf("addr: %w", err))
		}
		s.Addr = netip.AddrPortFrom(ip, uint16(r.uint("port")))
		s.Flowinfo, s.ScopeID = r.uint32("flowinfo"), r.uint32("scope_id")
	}
	switch {
	case r.bool("unix_unnamed"):
		s.Unix = UnixUnnamed
	case r.o.has("unix_abstract"):
		s.Unix, s.UnixName = UnixAbstract, r.bytes("unix_abstract")
	case r.o.has("unix_path"):
		s.Unix, s.UnixName = UnixPath, r.bytes("unix_path")
	}
}

// Fork is the creation of a new process (never a thread); the record's proc
// is the parent.
type Fork struct {
	ChildPid    uint32
	ChildExecID ExecID // the child's image at the fork: the parent's exec counter
	// ChildToolCall: the child starts a tool call (named by ChildExecID).
	ChildToolCall bool
	// ChildCgroupID is the cgroup the child started in when not its
	// parent's (clone3 with CLONE_INTO_CGROUP), else 0; ChildCgroup its
	// path, when resolved.
	ChildCgroupID uint64
	ChildCgroup   string
}

// Type is "fork".
func (*Fork) Type() string { return "fork" }

func (f *Fork) appendBody(b []byte) []byte {
	b = appendUint(b, "child_pid", uint64(f.ChildPid))
	b = appendExecID(b, "child_exec_id", f.ChildExecID)
	if f.ChildToolCall {
		b = appendExecID(b, "child_tool_call", f.ChildExecID)
	}
	if f.ChildCgroupID != 0 {
		b = appendUint(b, "child_cgroup_id", f.ChildCgroupID)
		if f.ChildCgroup != "" {
			b = AppendString(b, "child_cgroup", f.ChildCgroup)
		}
	}
	return b
}

func (f *Fork) decode(r *reader) {
	f.ChildPid, f.ChildExecID = r.uint32("child_pid"), r.execID("child_exec_id")
	f.ChildToolCall = r.o.has("child_tool_call")
	f.ChildCgroupID, f.ChildCgroup = r.uint("child_cgroup_id"), r.bytes("child_cgroup")
}

// Exit is the end of a process (its last thread).
type Exit struct {
	Status uint32 // wait(2) status
}

// Type is "exit".
func (*Exit) Type() string { return "exit" }

// Signal is the signal that ended the process, 0 if it exited.
func (x *Exit) Signal() int { return int(x.Status & 0x7f) }

// Code is the exit code of a process that exited (not killed by a signal).
func (x *Exit) Code() int { return int(x.Status >> 8 & 0xff) }

func (x *Exit) appendBody(b []byte) []byte {
	b = appendUint(b, "status", uint64(x.Status))
	if sig := x.Signal(); sig != 0 {
		b = appendASCII(b, "signal", SignalName(sig))
		b = appendUint(b, "signal_num", uint64(sig))
		if x.Status&0x80 != 0 {
			b = appendBool(b, "core_dumped", true)
		}
		return b
	}
	return appendUint(b, "code", uint64(x.Code()))
}

func (x *Exit) decode(r *reader) { x.Status = r.uint32("status") }

// Cgroup is a traced cgroup's creation or removal (the daemon's targets).
// The record's proc is whoever made or removed the directory.
type Cgroup struct {
	Op       string // "mkdir" or "rmdir"
	ID       uint64
	ParentID uint64
	Level    uint32
	Path     string // below the cgroup2 mount, with a leading '/'
	// Matched: the cgroup's own path matched target patterns (not only an
	// ancestor's); Targets are their texts.
	Matched bool
	Targets []string
	// Patterns are the kernel's bits of the matching patterns, which the
	// encoder turns into Targets; not part of the record.
	Patterns      uint32
	StateFull     bool // the kernel could not store the cgroup's state: it is not traced
	PathTruncated bool
}

// Type is "cgroup".
func (*Cgroup) Type() string { return "cgroup" }

func (c *Cgroup) appendBody(b []byte) []byte {
	b = appendASCII(b, "op", c.Op)
	b = appendUint(b, "id", c.ID)
	b = appendUint(b, "parent_id", c.ParentID)
	b = appendUint(b, "level", uint64(c.Level))
	b = AppendString(b, "path", c.Path)
	if c.Matched {
		b = appendBool(b, "matched", true)
		if c.Targets != nil {
			b = AppendStrings(b, "targets", c.Targets)
		}
	}
	if c.StateFull {
		b = appendBool(b, "state_full", true)
	}
	if c.PathTruncated {
		b = appendBool(b, "path_truncated", true)
	}
	return b
}

func (c *Cgroup) decode(r *reader) {
	c.Op, c.ID, c.ParentID, c.Level = r.string("op"), r.uint("id"), r.uint("parent_id"), r.uint32("level")
	c.Path, c.Matched = r.bytes("path"), r.bool("matched")
	if r.o.has("targets") {
		c.Targets = r.strings("targets")
	}
	c.StateFull, c.PathTruncated = r.bool("state_full"), r.bool("path_truncated")
}
