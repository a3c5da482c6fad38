// Package record owns the audit record: the JSON Lines schema documented in
// docs/schema.md and schema/record.schema.json. It turns decoded events into
// exactly one line each, adding what the kernel record refers to by id (the
// cgroup path, the process's executable, the tool call the process belongs
// to) and the credential_access tag of opens of sensitive paths.
//
// It must never drop, merge or reorder events, and never alter a byte of what
// the kernel saw: text that is not exact in JSON is carried in a _b64 sibling.
// What it derives, it derives from the records it wrote before (the ids they
// carry), so a reader can recompute it from the log alone (Attributor).
package record

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/decoder"
	"github.com/agenttrace/agenttrace/internal/loader"
)

// SchemaVersion is the "v" of every record.
const SchemaVersion = 1

// CgroupPaths resolves a cgroup id to its path below the cgroup2 mount.
type CgroupPaths interface {
	Path(id uint64) (string, bool)
}

// procKey identifies one program image of one process: the parts of exec_id.
type procKey struct {
	pid   uint32
	start uint64
	seq   uint64
}

// Encoder appends records. It is not safe for concurrent use: one pipeline
// goroutine owns it, which is also what keeps seq order equal to log order.
type Encoder struct {
	Host   string
	BootID string
	// WallOffset converts kernel boot-time ns to Unix ns (wall = ktime + WallOffset).
	WallOffset int64
	Cgroups    CgroupPaths
	// Sensitive tags the open records of matching paths credential_access;
	// nil tags nothing. A session sets the default list (DefaultSensitive)
	// or the one given with --sensitive-paths.
	Sensitive *PathSet

	// PatternNames are the daemon's target patterns, in the kernel's order,
	// so a cgroup record can name the ones that matched. Replaced whole at
	// a reload, from another goroutine.
	PatternNames atomic.Pointer[[]string]
	// OnCgroup, if set, learns of every cgroup record as it is written
	// (the daemon keeps its target list with it). It runs with the log's
	// lock held and must not append. It gets copies, not the event: a
	// callee that kept a pointer would make every event escape to the heap.
	OnCgroup func(op uint32, id uint64, path string, flags uint32)

	exes map[procKey][]byte
	attr attribution

	// The formatted date and time up to the second, for the second it is
	// of: records arrive in bursts within one second, and formatting a
	// time in full costs more than the rest of the envelope.
	timeSec    int64
	timePrefix []byte
}

// NewEncoder returns an encoder for this host.
func NewEncoder(host, bootID string, wallOffset int64, cgroups CgroupPaths) *Encoder {
	return &Encoder{Host: host, BootID: bootID, WallOffset: wallOffset, Cgroups: cgroups, exes: make(map[procKey][]byte)}
}

// BeginSession starts tool-call attribution for a session whose command
// was created by the process creator (agenttrace's pid, start.pid): from now
// on every kernel record of a process that is not one of the session's root
// processes carries proc.tool_call. Call it as part of appending the start
// record (under the log's lock, like every append), so that the kernel
// records that follow the start record in the log are exactly the ones
// attributed.
func (e *Encoder) BeginSession(creator uint32) {
	e.attr.begin(creator, false)
}

// BeginDaemon starts attribution for the daemon, whose root processes are
// the ones the log has not seen created: those in a target when tracing
// began or that entered one from outside (docs/schema.md, "Tool calls").
// Call it while appending the daemon's start record.
func (e *Encoder) BeginDaemon() {
	e.attr.begin(0, true)
}

// WallOffset measures the offset between CLOCK_REALTIME and CLOCK_BOOTTIME.
func WallOffset() int64 {
	var boot, real1, real2 unix.Timespec
	// Bracket the boot-time read so the offset error is at most half the gap.
	unix.ClockGettime(unix.CLOCK_REALTIME, &real1)
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot)
	unix.ClockGettime(unix.CLOCK_REALTIME, &real2)
	return (real1.Nano()+real2.Nano())/2 - boot.Nano()
}

var kindNames = [...]string{
	loader.KindExec:    "exec",
	loader.KindOpen:    "open",
	loader.KindConnect: "connect",
	loader.KindFork:    "fork",
	loader.KindExit:    "exit",
	loader.KindCgroup:  "cgroup",
}

// KindName is the record type of a kernel record kind.
func KindName(kind uint32) string {
	if kind < uint32(len(kindNames)) {
		return kindNames[kind]
	}
	return ""
}

// AppendEnvelope starts a record: `{"v":..,"seq":..,"prev":..,"time":..,"ktime":..,"host":..,"boot_id":..,"type":..`.
// prev is the SHA-256 of the previous line (all zeros for the first).
// The caller appends members and the closing brace.
func (e *Encoder) AppendEnvelope(b []byte, seq uint64, prev *chain.Hash, ktime uint64, typ string) []byte {
	b = append(b, '{')
	b = appendUint(b, "v", SchemaVersion)
	b = appendUint(b, "seq", seq)
	b = append(appendKey(b, "prev"), '"')
	b = append(prev.AppendHex(b), '"')
	b = appendKey(b, "time")
	b = append(b, '"')
	b = e.appendTime(b, int64(ktime)+e.WallOffset)
	b = append(b, '"')
	b = appendUint(b, "ktime", ktime)
	b = AppendBytes(b, "host", unsafeBytes(e.Host))
	b = appendASCII(b, "boot_id", e.BootID)
	return appendASCII(b, "type", typ)
}

// appendTime appends unixNano as RFC 3339 UTC with nanoseconds
// (2006-01-02T15:04:05.000000000Z).
func (e *Encoder) appendTime(b []byte, unixNano int64) []byte {
	sec, nsec := unixNano/1e9, unixNano%1e9
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	if sec != e.timeSec || e.timePrefix == nil {
		e.timePrefix = time.Unix(sec, 0).UTC().AppendFormat(e.timePrefix[:0], "2006-01-02T15:04:05.")
		e.timeSec = sec
	}
	b = append(b, e.timePrefix...)
	var digits [9]byte
	for i := 8; i >= 0; i-- {
		digits[i] = byte('0' + nsec%10)
		nsec /= 10
	}
	return append(append(b, digits[:]...), 'Z')
}

// BootTime returns the current CLOCK_BOOTTIME in ns, for records that are
// not kernel events (start, stop).
func BootTime() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return uint64(ts.Nano())
}

// AppendEvent appends the record of one kernel event, without newline.
func (e *Encoder) AppendEvent(b []byte, seq uint64, prev *chain.Hash, ev *decoder.Event) []byte {
	h := &ev.Hdr
	typ := KindName(h.Kind)
	self := procKey{h.Pid, h.StartTime, h.ExecSeq}
	process := processID{h.Pid, h.StartTime}
	var member membership
	// A cgroup record's process is whoever made the directory (often
	// outside the targets): it takes no part in attribution.
	if h.Kind == loader.KindCgroup {
		member.root = true
	} else if e.attr.active {
		member = e.attr.of(process, processID{h.ParentPid, h.ParentStartTime}, h.ParentExecSeq)
	}

	// Learn executables before the proc object so an exec names its new image.
	switch h.Kind {
	case loader.KindExec:
		if ev.Exec.Ret == 0 && len(ev.Exec.Exe) > 0 {
			// The exec bumped self_exec_id by one: the image it replaced
			// is gone, and no later record can name it.
			replaced := procKey{h.Pid, h.StartTime, h.ExecSeq - 1}
			exe := append(e.exes[replaced][:0], ev.Exec.Exe...)
			delete(e.exes, replaced)
			e.exes[self] = exe
		}
	case loader.KindFork:
		// The child runs the parent's image until it execs; it inherits
		// self_exec_id, so its exec_id differs from the parent's by pid and start.
		if exe, ok := e.exes[self]; ok {
			e.exes[procKey{ev.Fork.ChildPid, ev.Fork.ChildStartTime, h.ExecSeq}] = append([]byte(nil), exe...)
		}
	}

	b = e.AppendEnvelope(b, seq, prev, h.Ktime, typ)
	b = appendUint(b, "cpu", uint64(h.Cpu))
	b = appendUint(b, "kseq", h.Kseq)
	b = e.appendProc(b, h, self, member)

	b = appendKey(b, typ)
	b = append(b, '{')
	tag := ""
	switch h.Kind {
	case loader.KindExec:
		b = appendExec(b, h, &ev.Exec)
		if e.attr.active && ev.Exec.Ret == 0 && e.attr.exec(process, member) {
			tag = TagToolCallCommand
		}
	case loader.KindOpen:
		b = appendOpen(b, h, &ev.Open)
		if e.Sensitive.Match(ev.Open.Path) {
			tag = TagCredentialAccess
		}
	case loader.KindConnect:
		b = appendConnect(b, h, &ev.Connect)
	case loader.KindFork:
		b = appendUint(b, "child_pid", uint64(ev.Fork.ChildPid))
		b = appendExecID(b, "child_exec_id", ev.Fork.ChildPid, ev.Fork.ChildStartTime, h.ExecSeq)
		if e.attr.active && e.attr.fork(member, processID{ev.Fork.ChildPid, ev.Fork.ChildStartTime}, h.ExecSeq) {
			b = appendExecID(b, "child_tool_call", ev.Fork.ChildPid, ev.Fork.ChildStartTime, h.ExecSeq)
		}
	case loader.KindCgroup:
		b = e.appendCgroup(b, &ev.Cgroup)
	case loader.KindExit:
		b = appendExit(b, ev.Exit.Status)
		delete(e.exes, self)
		if e.attr.active {
			e.attr.exit(process)
		}
	}
	b = append(b, '}')
	if tag != "" {
		b = append(appendKey(b, "tags"), '[', '"')
		b = append(append(b, tag...), '"', ']')
	}
	return append(b, '}')
}

// appendCgroup appends a cgroup record's members and teaches the resolver
// the new cgroup's path.
func (e *Encoder) appendCgroup(b []byte, c *decoder.Cgroup) []byte {
	op := "mkdir"
	if c.Op == loader.CgroupRmdir {
		op = "rmdir"
	}
	b = appendASCII(b, "op", op)
	b = appendUint(b, "id", c.ID)
	b = appendUint(b, "parent_id", c.ParentID)
	b = appendUint(b, "level", uint64(c.Level))
	b = AppendBytes(b, "path", c.Path)
	if c.Flags&loader.CgroupMatched != 0 {
		b = append(appendKey(b, "matched"), `true`...)
		if names := e.PatternNames.Load(); names != nil {
			var matched []string
			for i, n := range *names {
				if c.Patterns&(1<<i) != 0 {
					matched = append(matched, n)
				}
			}
			b = AppendStrings(b, "targets", matched)
		}
	}
	if c.Flags&loader.CgroupStateFull != 0 {
		// The kernel could not store the cgroup's state: it is not traced.
		b = append(appendKey(b, "state_full"), `true`...)
	}
	if c.Flags&loader.CgroupPathTruncated != 0 {
		b = append(appendKey(b, "path_truncated"), `true`...)
	}
	if e.OnCgroup != nil {
		e.OnCgroup(c.Op, c.ID, string(c.Path), c.Flags)
	}
	if l, ok := e.Cgroups.(interface{ Learn(uint64, string) }); ok && c.Op == loader.CgroupMkdir && c.Flags&loader.CgroupPathTruncated == 0 {
		l.Learn(c.ID, string(c.Path))
	}
	return b
}

// Tags: what agenttrace derives about a record, after its type object.
const (
	// TagCredentialAccess: an open of a path in the sensitive list.
	TagCredentialAccess = "credential_access"
	// TagToolCallCommand: the first successful exec of a tool call's
	// top-most process; its argv is what the tool call ran.
	TagToolCallCommand = "tool_call_command"
)

func appendExecID(b []byte, key string, pid uint32, start, seq uint64) []byte {
	b = append(appendKey(b, key), '"')
	return append(appendID(b, pid, start, seq), '"')
}

// appendID appends an exec_id: <pid>-<start>-<self_exec_id>.
func appendID(b []byte, pid uint32, start, seq uint64) []byte {
	b = strconv.AppendUint(b, uint64(pid), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, start, 10)
	b = append(b, '-')
	return strconv.AppendUint(b, seq, 10)
}

func (e *Encoder) appendProc(b []byte, h *loader.EventHeader, self procKey, member membership) []byte {
	b = appendKey(b, "proc")
	b = append(b, '{')
	b = appendUint(b, "pid", uint64(h.Pid))
	b = appendUint(b, "tid", uint64(h.Tid))
	b = appendUint(b, "ppid", uint64(h.Ppid))
	b = appendUint(b, "uid", uint64(h.Uid))
	b = appendUint(b, "gid", uint64(h.Gid))
	b = appendUint(b, "euid", uint64(h.Euid))
	b = appendUint(b, "egid", uint64(h.Egid))
	b = appendUint(b, "auid", uint64(h.Auid))
	b = AppendBytes(b, "comm", decoder.Comm(h))
	if exe, ok := e.exes[self]; ok {
		b = AppendBytes(b, "exe", exe)
	}
	b = appendUint(b, "cgroup_id", h.CgroupId)
	if e.Cgroups != nil {
		if path, ok := e.Cgroups.Path(h.CgroupId); ok {
			b = AppendBytes(b, "cgroup", unsafeBytes(path))
		}
	}
	b = appendExecID(b, "exec_id", h.Pid, h.StartTime, h.ExecSeq)
	b = appendExecID(b, "parent_exec_id", h.ParentPid, h.ParentStartTime, h.ParentExecSeq)
	if e.attr.active && !member.root {
		t := member.toolCall
		b = appendExecID(b, "tool_call", t.pid, t.start, t.seq)
	}
	switch {
	case h.Flags&loader.FlagCompat != 0:
		b = appendASCII(b, "abi", "i386")
	case h.Flags&loader.FlagX32 != 0:
		b = appendASCII(b, "abi", "x32")
	}
	return append(b, '}')
}

// appendResult appends "ret" and, for a failure, "errno".
func appendResult(b []byte, ret int64) []byte {
	b = appendInt(b, "ret", ret)
	if ret < 0 && ret >= -4095 {
		b = appendASCII(b, "errno", ErrnoName(-ret))
	}
	return b
}

func appendSyscall(b []byte, id uint32) []byte {
	if name := SyscallName(id); name != "" {
		return appendASCII(b, "syscall", name)
	}
	return b
}

func appendPathFlags(b []byte, flags uint32) []byte {
	if flags&loader.FlagPathTruncated != 0 {
		b = appendBool(b, "path_truncated", true)
	}
	if flags&loader.FlagPathFault != 0 {
		b = appendBool(b, "path_unreadable", true)
	}
	return b
}

func appendExec(b []byte, h *loader.EventHeader, x *decoder.Exec) []byte {
	b = appendSyscall(b, x.Syscall)
	if x.Syscall == loader.SyscallExecveat {
		b = appendInt(b, "dirfd", int64(x.Dirfd))
		b = appendFlagNames(appendKey(b, "flags"), atFlagNames, uint64(x.AtFlags))
		b = appendUint(b, "flags_raw", uint64(x.AtFlags))
	}
	if h.Flags&loader.FlagNoEnter == 0 {
		b = AppendBytes(b, "filename", x.Filename)
		b = appendPathFlags(b, h.Flags)
	}
	if x.Ret == 0 {
		b = AppendBytes(b, "exe", x.Exe)
		if h.Flags&loader.FlagExeTruncated != 0 {
			b = appendBool(b, "exe_truncated", true)
		}
		b = appendKey(b, "exe_file")
		b = append(b, '{')
		b = appendUint(b, "ino", x.ExeIno)
		b = append(appendKey(b, "dev"), '"')
		b = strconv.AppendUint(b, uint64(x.ExeDev>>20), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(x.ExeDev&0xfffff), 10)
		b = append(b, '"')
		b = appendOctal(b, "mode", uint64(x.ExeMode))
		b = appendUint(b, "uid", uint64(x.ExeUID))
		b = appendUint(b, "gid", uint64(x.ExeGID))
		b = append(b, '}')
	}
	b = appendArgv(b, x.Args)
	b = appendUint(b, "argc", uint64(x.Argc))
	if h.Flags&loader.FlagArgsTruncated != 0 {
		b = appendBool(b, "argv_truncated", true)
		b = appendUint(b, "argv_size", uint64(x.ArgsSize))
	}
	if h.Flags&loader.FlagArgsFault != 0 {
		b = appendBool(b, "argv_unreadable", true)
	}
	if h.Flags&loader.FlagArgvEmpty != 0 {
		b = appendBool(b, "argv_empty", true)
	}
	return appendResult(b, x.Ret)
}

// appendArgv appends "argv" and, if any argument is not exact, "argv_b64"
// with every argument's exact bytes.
func appendArgv(b []byte, args []byte) []byte {
	exact := true
	b = append(appendKey(b, "argv"), '[')
	decoder.Argv(args, func(arg []byte, _ bool) {
		if b[len(b)-1] != '[' {
			b = append(b, ',')
		}
		var ok bool
		b, ok = appendQuoted(b, arg)
		exact = exact && ok
	})
	b = append(b, ']')
	if exact {
		return b
	}
	b = append(appendKey(b, "argv_b64"), '[')
	decoder.Argv(args, func(arg []byte, _ bool) {
		if b[len(b)-1] != '[' {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, arg)
		b = append(b, '"')
	})
	return append(b, ']')
}

func appendOpen(b []byte, h *loader.EventHeader, o *decoder.Open) []byte {
	b = appendSyscall(b, o.Syscall)
	b = appendInt(b, "dirfd", int64(o.Dirfd))
	b = AppendBytes(b, "path", o.Path)
	b = appendPathFlags(b, h.Flags)
	b = appendOpenFlags(appendKey(b, "flags"), o.Flags)
	b = appendUint(b, "flags_raw", o.Flags)
	b = appendOctal(b, "mode", o.Mode)
	if o.Syscall == loader.SyscallOpenat2 {
		b = appendFlagNames(appendKey(b, "resolve"), resolveFlagNames, o.Resolve)
	}
	if o.Ret >= 0 {
		b = appendInt(b, "fd", o.Ret)
	}
	return appendResult(b, o.Ret)
}

func appendConnect(b []byte, h *loader.EventHeader, c *decoder.Connect) []byte {
	b = appendSyscall(b, c.Syscall)
	b = appendInt(b, "fd", int64(c.Fd))
	b = appendUint(b, "addrlen", uint64(c.Addrlen))
	b = appendAddress(b, c.Addr)
	if h.Flags&loader.FlagAddrFault != 0 {
		b = appendBool(b, "addr_unreadable", true)
	}
	return appendResult(b, c.Ret)
}

// sizeofSockaddrInet6RFC2133 is SIN6_LEN_RFC2133: the shortest sockaddr_in6
// that connect(2) accepts.
const sizeofSockaddrInet6RFC2133 = 24

// appendAddress decodes a sockaddr as the kernel would read it.
func appendAddress(b []byte, addr []byte) []byte {
	family, ok := decoder.Family(addr)
	if !ok {
		return b
	}
	if name, ok := familyNames[family]; ok {
		b = appendASCII(b, "family", name)
	}
	b = appendUint(b, "family_num", uint64(family))
	switch family {
	case unix.AF_INET:
		if len(addr) < unix.SizeofSockaddrInet4 {
			return b
		}
		ip := netip.AddrFrom4([4]byte(addr[4:8]))
		b = append(appendKey(b, "addr"), '"')
		b = append(ip.AppendTo(b), '"')
		b = appendUint(b, "port", uint64(decoder.Port(addr)))
	case unix.AF_INET6:
		// The kernel accepts the 24-byte sockaddr_in6 of RFC 2133, without
		// sin6_scope_id, and reads the scope only from a full one.
		if len(addr) < sizeofSockaddrInet6RFC2133 {
			return b
		}
		ip := netip.AddrFrom16([16]byte(addr[8:24]))
		b = append(appendKey(b, "addr"), '"')
		b = append(ip.AppendTo(b), '"')
		b = appendUint(b, "port", uint64(decoder.Port(addr)))
		if ip.Is4In6() {
			b = appendBool(b, "v4_mapped", true)
		}
		if flow := binary.BigEndian.Uint32(addr[4:8]); flow != 0 {
			b = appendUint(b, "flowinfo", uint64(flow))
		}
		if len(addr) >= unix.SizeofSockaddrInet6 {
			if scope := binary.NativeEndian.Uint32(addr[24:28]); scope != 0 {
				b = appendUint(b, "scope_id", uint64(scope))
			}
		}
	case unix.AF_UNIX:
		path := addr[2:]
		switch {
		case len(path) == 0:
			b = appendBool(b, "unix_unnamed", true)
		case path[0] == 0:
			// Abstract: every byte after the leading NUL is the name, NULs included.
			b = AppendBytes(b, "unix_abstract", path[1:])
		default:
			// A pathname ends at the first NUL, as the kernel reads it.
			if i := bytes.IndexByte(path, 0); i >= 0 {
				path = path[:i]
			}
			b = AppendBytes(b, "unix_path", path)
		}
	}
	return b
}

// unsafeBytes views s as bytes without copying; the result must not be modified.
func unsafeBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

func appendExit(b []byte, status uint32) []byte {
	b = appendUint(b, "status", uint64(status))
	if sig := status & 0x7f; sig != 0 {
		b = appendASCII(b, "signal", SignalName(int(sig)))
		b = appendUint(b, "signal_num", uint64(sig))
		if status&0x80 != 0 {
			b = appendBool(b, "core_dumped", true)
		}
		return b
	}
	return appendUint(b, "code", uint64(status>>8&0xff))
}
