package record

import (
	"fmt"
	"strings"
)

// The escape records (docs/schema.md): a traced process leaving its cgroup
// (cgroup_move), acting on another process (proc_access), changing names
// and file metadata (file_op), mounts (mount), namespaces (namespace), and
// calling bpf(2) (bpf).

// CgroupMove is a cgroup move of a traced process, or one a traced process
// made; the record's proc is the mover. With Attempt it is a clone3 into a
// cgroup (CLONE_INTO_CGROUP) that the kernel refused: nothing was created
// or moved.
type CgroupMove struct {
	Attempt     bool // a refused clone3: only ToCgroupID, ToCgroup and Ret
	Pid         uint32
	Tid         uint32 // the moved task; equal to Pid for a process
	ExecID      ExecID
	Threadgroup bool // the whole process moved (cgroup.procs), not one thread
	// FromKnown: the kernel knew where the process came from (it was
	// traced before the move); FromCgroup is its path when resolved.
	FromKnown         bool
	FromCgroupID      uint64
	FromCgroup        string
	ToCgroupID        uint64
	ToCgroup          string // as the kernel wrote it (for an attempt: as resolved)
	ToCgroupTruncated bool
	Traced            bool // the moved process is traced after the move
	Ret               int64
}

// Type is "cgroup_move".
func (*CgroupMove) Type() string { return "cgroup_move" }

func (m *CgroupMove) appendBody(b []byte) []byte {
	if m.Attempt {
		b = appendASCII(b, "syscall", "clone3")
		b = appendUint(b, "to_cgroup_id", m.ToCgroupID)
		if m.ToCgroup != "" {
			b = AppendString(b, "to_cgroup", m.ToCgroup)
		}
		return appendResult(b, m.Ret)
	}
	b = appendUint(b, "pid", uint64(m.Pid))
	if m.Tid != m.Pid {
		b = appendUint(b, "tid", uint64(m.Tid))
	}
	b = appendExecID(b, "exec_id", m.ExecID)
	b = appendBool(b, "threadgroup", m.Threadgroup)
	if m.FromKnown {
		b = appendUint(b, "from_cgroup_id", m.FromCgroupID)
		if m.FromCgroup != "" {
			b = AppendString(b, "from_cgroup", m.FromCgroup)
		}
	}
	b = appendUint(b, "to_cgroup_id", m.ToCgroupID)
	if m.ToCgroup != "" {
		b = AppendString(b, "to_cgroup", m.ToCgroup)
	}
	if m.ToCgroupTruncated {
		b = appendBool(b, "to_cgroup_truncated", true)
	}
	return appendBool(b, "traced", m.Traced)
}

func (m *CgroupMove) decode(r *reader) {
	m.Attempt = r.string("syscall") == "clone3"
	m.Pid, m.ExecID, m.Threadgroup = r.uint32("pid"), r.execID("exec_id"), r.bool("threadgroup")
	m.Tid = m.Pid
	if r.o.has("tid") {
		m.Tid = r.uint32("tid")
	}
	m.FromKnown = r.o.has("from_cgroup_id")
	m.FromCgroupID, m.FromCgroup = r.uint("from_cgroup_id"), r.bytes("from_cgroup")
	m.ToCgroupID, m.ToCgroup, m.ToCgroupTruncated = r.uint("to_cgroup_id"), r.bytes("to_cgroup"), r.bool("to_cgroup_truncated")
	m.Traced, m.Ret = r.bool("traced"), r.int("ret")
}

// AccessTarget is the process a proc_access record acts on, as the kernel
// read it at the syscall's entry.
type AccessTarget struct {
	Found        bool // the kernel found the process; the rest is valid only then
	Pid          uint32
	Tid          uint32 // equal to Pid unless a thread other than the first was named
	ExecID       ExecID
	NoExe        bool // it has no executable (a kernel thread)
	Exe          string
	ExeTruncated bool
	Comm         string
	Traced       bool // it was traced before this access
}

// ProcAccess is a traced process acting on another one: a ptrace request
// that changes the target, process_vm_readv/writev, pidfd_open, or a
// signal (kill, tkill, tgkill, rt_(tg)sigqueueinfo, pidfd_send_signal) to
// a process outside the trace.
type ProcAccess struct {
	Syscall string // "ptrace", "kill", …, "rt_tgsigqueueinfo"
	Request uint32 // ptrace: the request
	Pid     int32  // as passed, in the caller's pid namespace
	Tid     int32  // tgkill, rt_tgsigqueueinfo
	Pidfd   int32  // pidfd_send_signal
	Addr    uint64 // ptrace
	Data    uint64 // ptrace
	Flags   uint32 // pidfd_open
	Signal  uint32 // the signals
	Target  AccessTarget
	Tainted bool // the target was not traced, and is from now on
	Ret     int64
}

// Type is "proc_access".
func (*ProcAccess) Type() string { return "proc_access" }

func isSignal(syscall string) bool {
	switch syscall {
	case "kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal":
		return true
	}
	return false
}

func (p *ProcAccess) appendBody(b []byte) []byte {
	b = appendASCII(b, "syscall", p.Syscall)
	switch p.Syscall {
	case "ptrace":
		if name, ok := ptraceRequestNames[p.Request]; ok {
			b = appendASCII(b, "request", name)
		} else {
			b = appendUint(b, "request_num", uint64(p.Request))
		}
		b = appendInt(b, "pid", int64(p.Pid))
		b = appendUint(b, "addr", p.Addr)
		b = appendUint(b, "data", p.Data)
	case "pidfd_open":
		b = appendInt(b, "pid", int64(p.Pid))
		b = appendFlagNames(appendKey(b, "flags"), pidfdFlagNames, uint64(p.Flags))
	case "pidfd_send_signal":
		b = appendInt(b, "pidfd", int64(p.Pidfd))
	case "tgkill", "rt_tgsigqueueinfo":
		b = appendInt(b, "pid", int64(p.Pid))
		b = appendInt(b, "tid", int64(p.Tid))
	default:
		b = appendInt(b, "pid", int64(p.Pid))
	}
	if isSignal(p.Syscall) {
		if p.Signal != 0 {
			b = appendASCII(b, "signal", SignalName(int(p.Signal)))
		}
		b = appendUint(b, "signal_num", uint64(p.Signal))
	}
	if t := &p.Target; t.Found {
		b = append(appendKey(b, "target"), '{')
		b = appendUint(b, "pid", uint64(t.Pid))
		if t.Tid != t.Pid {
			b = appendUint(b, "tid", uint64(t.Tid))
		}
		b = appendExecID(b, "exec_id", t.ExecID)
		if !t.NoExe {
			b = AppendString(b, "exe", t.Exe)
			if t.ExeTruncated {
				b = appendBool(b, "exe_truncated", true)
			}
		}
		b = AppendString(b, "comm", t.Comm)
		b = appendBool(b, "traced", t.Traced)
		b = append(b, '}')
	}
	if p.Tainted {
		b = appendBool(b, "tainted", true)
	}
	return appendResult(b, p.Ret)
}

func (p *ProcAccess) decode(r *reader) {
	p.Syscall = r.string("syscall")
	if name := r.string("request"); name != "" {
		for num, n := range ptraceRequestNames {
			if n == name {
				p.Request = num
			}
		}
	} else {
		p.Request = r.uint32("request_num")
	}
	p.Pid, p.Tid, p.Pidfd = int32(r.int("pid")), int32(r.int("tid")), int32(r.int("pidfd"))
	p.Addr, p.Data = r.uint("addr"), r.uint("data")
	var flags []string
	r.into("flags", &flags)
	p.Flags = uint32(flagBits(pidfdFlagNames, flags))
	p.Signal = r.uint32("signal_num")
	if t := r.object("target"); t != nil {
		p.Target = AccessTarget{Found: true, Pid: t.uint32("pid"), ExecID: t.execID("exec_id"), NoExe: !t.o.has("exe"),
			Exe: t.bytes("exe"), ExeTruncated: t.bool("exe_truncated"), Comm: t.bytes("comm"), Traced: t.bool("traced")}
		p.Target.Tid = p.Target.Pid
		if t.o.has("tid") {
			p.Target.Tid = t.uint32("tid")
		}
		r.done(t)
	}
	p.Tainted, p.Ret = r.bool("tainted"), r.int("ret")
}

// Name is a path as the caller passed it to a syscall: read once at entry.
type Name struct {
	Path       string
	Truncated  bool // longer than PATH_BYTES - 1: Path is its first part
	Unreadable bool // not readable from the caller's memory: no Path
}

func (n *Name) append(b []byte, key string) []byte {
	if n.Unreadable {
		return appendBool(b, key+"_unreadable", true)
	}
	b = AppendString(b, key, n.Path)
	if n.Truncated {
		b = appendBool(b, key+"_truncated", true)
	}
	return b
}

func (n *Name) decode(r *reader, key string) {
	*n = Name{Path: r.bytes(key), Truncated: r.bool(key + "_truncated"), Unreadable: r.bool(key + "_unreadable")}
}

// Dir is a directory the kernel resolved (the one a relative name was
// resolved against): its path walked from its dentry and mount.
type Dir struct {
	Present   bool
	Path      string
	Truncated bool // the walk hit its bound: the path's last components only
}

func (d *Dir) append(b []byte, key string) []byte {
	if !d.Present {
		return b
	}
	b = append(appendKey(b, key), '{')
	b = AppendString(b, "path", d.Path)
	if d.Truncated {
		b = appendBool(b, "path_truncated", true)
	}
	return append(b, '}')
}

func (d *Dir) decode(r *reader, key string) {
	*d = Dir{}
	if o := r.object(key); o != nil {
		*d = Dir{Present: true, Path: o.bytes("path"), Truncated: o.bool("path_truncated")}
		r.done(o)
	}
}

// FileOp is a change to a name or to a file's metadata: rename, link,
// symlink, unlink, rmdir, chmod, chown, truncate in all their forms.
type FileOp struct {
	Syscall  string
	Dirfd    int32 // *at syscalls
	Path     Name  // symlink(at): the link's contents, never resolved
	Dir      Dir   // Path was relative: the directory it was resolved against
	NewDirfd int32
	NewPath  Name
	NewDir   Dir
	Flags    uint32 // the syscall's flags (renameat2, unlinkat, linkat, fchmodat2, fchownat)
	Mode     uint32
	UID      uint32
	GID      uint32
	Length   int64
	Fd       int32
	File     File // fd-based: the file the fd refers to, at entry
	Ret      int64
}

// Type is "file_op".
func (*FileOp) Type() string { return "file_op" }

// fileOpMembers says which members a file_op syscall has.
type fileOpMembers struct {
	dirfd, path, newDirfd, newPath, fd bool
	flags                              []flagName
	mode, owner, length                bool
}

var fileOpSyscalls = map[string]fileOpMembers{
	"rename":    {path: true, newPath: true},
	"renameat":  {dirfd: true, path: true, newDirfd: true, newPath: true},
	"renameat2": {dirfd: true, path: true, newDirfd: true, newPath: true, flags: renameFlagNames},
	"unlink":    {path: true},
	"unlinkat":  {dirfd: true, path: true, flags: unlinkatFlagNames},
	"rmdir":     {path: true},
	"link":      {path: true, newPath: true},
	"linkat":    {dirfd: true, path: true, newDirfd: true, newPath: true, flags: linkatFlagNames},
	"symlink":   {path: true, newPath: true},
	"symlinkat": {path: true, newDirfd: true, newPath: true},
	"chmod":     {path: true, mode: true},
	"fchmod":    {fd: true, mode: true},
	"fchmodat":  {dirfd: true, path: true, mode: true},
	"fchmodat2": {dirfd: true, path: true, mode: true, flags: atPathFlagNames},
	"chown":     {path: true, owner: true},
	"fchown":    {fd: true, owner: true},
	"lchown":    {path: true, owner: true},
	"fchownat":  {dirfd: true, path: true, owner: true, flags: atPathFlagNames},
	"truncate":  {path: true, length: true},
	"ftruncate": {fd: true, length: true},
}

func (f *FileOp) appendBody(b []byte) []byte {
	m := fileOpSyscalls[f.Syscall]
	b = appendASCII(b, "syscall", f.Syscall)
	if m.dirfd {
		b = appendInt(b, "dirfd", int64(f.Dirfd))
	}
	if m.path {
		b = f.Path.append(b, "path")
		b = f.Dir.append(b, "dir")
	}
	if m.newDirfd {
		b = appendInt(b, "new_dirfd", int64(f.NewDirfd))
	}
	if m.newPath {
		b = f.NewPath.append(b, "new_path")
		b = f.NewDir.append(b, "new_dir")
	}
	if m.flags != nil {
		b = appendFlagNames(appendKey(b, "flags"), m.flags, uint64(f.Flags))
	}
	if m.mode {
		b = appendOctal(b, "mode", uint64(f.Mode))
	}
	if m.owner {
		b = appendUint(b, "uid", uint64(f.UID))
		b = appendUint(b, "gid", uint64(f.GID))
	}
	if m.length {
		b = appendInt(b, "length", f.Length)
	}
	if m.fd {
		b = appendInt(b, "fd", int64(f.Fd))
		if f.File.Present {
			b = f.File.append(b, "file")
		}
	}
	return appendResult(b, f.Ret)
}

func (f *FileOp) decode(r *reader) {
	f.Syscall = r.string("syscall")
	m := fileOpSyscalls[f.Syscall]
	f.Dirfd, f.NewDirfd, f.Fd = int32(r.int("dirfd")), int32(r.int("new_dirfd")), int32(r.int("fd"))
	f.Path.decode(r, "path")
	f.Dir.decode(r, "dir")
	f.NewPath.decode(r, "new_path")
	f.NewDir.decode(r, "new_dir")
	var flags []string
	r.into("flags", &flags)
	f.Flags = uint32(flagBits(m.flags, flags))
	f.Mode, f.UID, f.GID = uint32(r.octal("mode")), r.uint32("uid"), r.uint32("gid")
	f.Length = r.int("length")
	f.File = File{}
	if o := r.object("file"); o != nil {
		f.File.decode(o)
		r.done(o)
	}
	f.Ret = r.int("ret")
}

// Mount is a mount, unmount or change of a mount: mount, umount (i386),
// umount2, pivot_root, and the mount API (move_mount, fsopen, fsconfig,
// fsmount, mount_setattr). mount(2)'s data is never recorded: it may hold
// credentials.
type Mount struct {
	Syscall string
	// The strings the syscall has, by the names they have in it: mount's
	// source, target and fstype; pivot_root's new_root (Target) and put_old
	// (Source); move_mount's from_path (Source) and to_path (Target);
	// fsconfig's key (Fstype) and value (Source); mount_setattr's path
	// (Target). Has* says which were passed (not NULL).
	HasSource, HasTarget, HasFstype bool
	Source, Target, Fstype          Name
	// ValueRedacted: fsconfig set a value under a key that may hold a
	// secret; it is not recorded.
	ValueRedacted  bool
	Flags          uint64 // the syscall's flags
	Attr           uint64 // fsmount attr_flags; mount_setattr attr_set
	AttrClr        uint64 // mount_setattr
	AttrUnreadable bool   // mount_setattr's struct mount_attr could not be read
	Fd             int32  // fsconfig, fsmount
	Dirfd          int32  // move_mount to_dfd, mount_setattr dfd
	FromDirfd      int32  // move_mount from_dfd
	Aux            int32  // fsconfig
	Cmd            uint32 // fsconfig
	Truncated      bool   // a string did not fit
	Ret            int64
}

// Type is "mount".
func (*Mount) Type() string { return "mount" }

// mountStrings names the strings a mount syscall has: source, target, fstype.
var mountStrings = map[string][3]string{
	"mount":         {"source", "target", "fstype"},
	"umount":        {"", "target", ""},
	"umount2":       {"", "target", ""},
	"pivot_root":    {"put_old", "new_root", ""},
	"move_mount":    {"source", "target", ""},
	"fsopen":        {"", "", "fstype"},
	"fsconfig":      {"value", "", "key"},
	"mount_setattr": {"", "target", ""},
}

var mountFlags = map[string][]flagName{
	"mount": mountFlagNames, "umount2": umountFlagNames, "move_mount": moveMountFlagNames,
	"fsopen": fsopenFlagNames, "fsmount": fsmountFlagNames, "mount_setattr": atPathFlagNames,
}

// sensitiveFsconfigKey: an fsconfig value under such a key may be a secret
// (a password for a network file system): the log says it was set, not what.
func sensitiveFsconfigKey(key string) bool {
	k := strings.ToLower(key)
	for _, s := range []string{"pass", "secret", "cred", "token", "key", "auth"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

func (m *Mount) appendBody(b []byte) []byte {
	b = appendASCII(b, "syscall", m.Syscall)
	names := mountStrings[m.Syscall]
	switch m.Syscall {
	case "fsconfig", "fsmount":
		b = appendInt(b, "fd", int64(m.Fd))
	case "move_mount":
		b = appendInt(b, "from_dirfd", int64(m.FromDirfd))
	}
	if m.Syscall == "fsconfig" {
		if int(m.Cmd) < len(fsconfigCmdNames) {
			b = appendASCII(b, "cmd", fsconfigCmdNames[m.Cmd])
		} else {
			b = appendUint(b, "cmd_num", uint64(m.Cmd))
		}
		if m.HasFstype {
			b = m.Fstype.append(b, "key")
		}
		switch {
		case m.ValueRedacted || m.HasSource && sensitiveFsconfigKey(m.Fstype.Path):
			b = appendBool(b, "value_redacted", true)
		case m.HasSource:
			b = m.Source.append(b, "value")
		}
		if m.Cmd >= 3 && m.Cmd <= 5 { // SET_PATH, SET_PATH_EMPTY (a dirfd), SET_FD
			b = appendInt(b, "aux", int64(m.Aux))
		}
	} else {
		if m.HasSource && names[0] != "" {
			b = m.Source.append(b, names[0])
		}
		if m.Syscall == "move_mount" || m.Syscall == "mount_setattr" {
			b = appendInt(b, "dirfd", int64(m.Dirfd))
		}
		if m.HasTarget && names[1] != "" {
			b = m.Target.append(b, names[1])
		}
		if m.HasFstype && names[2] != "" {
			b = m.Fstype.append(b, names[2])
		}
	}
	if m.Syscall == "mount" {
		flags := m.Flags
		b = append(appendKey(b, "flags"), '[')
		if flags&0xffff0000 == mountMagic {
			b = append(b, `"MS_MGC_VAL"`...)
			flags &^= 0xffff0000
		}
		b = append(appendFlagList(b, mountFlagNames, flags), ']')
	} else if names, ok := mountFlags[m.Syscall]; ok {
		b = appendFlagNames(appendKey(b, "flags"), names, m.Flags)
	}
	switch m.Syscall {
	case "fsmount":
		b = appendFlagNames(appendKey(b, "attr"), mountAttrFlagNames, m.Attr)
	case "mount_setattr":
		if m.AttrUnreadable {
			b = appendBool(b, "attr_unreadable", true)
		} else {
			b = appendFlagNames(appendKey(b, "attr_set"), mountAttrFlagNames, m.Attr)
			b = appendFlagNames(appendKey(b, "attr_clr"), mountAttrFlagNames, m.AttrClr)
		}
	}
	if m.Truncated {
		b = appendBool(b, "truncated", true)
	}
	return appendResult(b, m.Ret)
}

func (m *Mount) decode(r *reader) {
	m.Syscall = r.string("syscall")
	names := mountStrings[m.Syscall]
	if m.Syscall == "fsconfig" {
		names = [3]string{"value", "", "key"}
	}
	str := func(n *Name, has *bool, key string) {
		if key != "" && (r.o.has(key) || r.o.has(key+"_unreadable")) {
			*has = true
			n.decode(r, key)
		}
	}
	str(&m.Source, &m.HasSource, names[0])
	str(&m.Target, &m.HasTarget, names[1])
	str(&m.Fstype, &m.HasFstype, names[2])
	m.ValueRedacted = r.bool("value_redacted")
	var flags, attr, set, clr []string
	r.into("flags", &flags)
	r.into("attr", &attr)
	r.into("attr_set", &set)
	r.into("attr_clr", &clr)
	if m.Syscall == "mount" {
		for _, f := range flags {
			if f == "MS_MGC_VAL" {
				m.Flags |= mountMagic
			}
		}
		m.Flags |= flagBits(mountFlagNames, flags)
	} else {
		m.Flags = flagBits(mountFlags[m.Syscall], flags)
	}
	m.Attr = flagBits(mountAttrFlagNames, attr) | flagBits(mountAttrFlagNames, set)
	m.AttrClr = flagBits(mountAttrFlagNames, clr)
	m.AttrUnreadable = r.bool("attr_unreadable")
	m.Fd, m.Dirfd, m.FromDirfd, m.Aux = int32(r.int("fd")), int32(r.int("dirfd")), int32(r.int("from_dirfd")), int32(r.int("aux"))
	if name := r.string("cmd"); name != "" {
		for i, n := range fsconfigCmdNames {
			if n == name {
				m.Cmd = uint32(i)
			}
		}
	} else {
		m.Cmd = r.uint32("cmd_num")
	}
	m.Truncated, m.Ret = r.bool("truncated"), r.int("ret")
}

// Namespace is an unshare or a setns.
type Namespace struct {
	Syscall string // "unshare" or "setns"
	Fd      int32  // setns
	Flags   uint64 // unshare's flags; setns's nstype
	Ret     int64
}

// Type is "namespace".
func (*Namespace) Type() string { return "namespace" }

func (n *Namespace) appendBody(b []byte) []byte {
	b = appendASCII(b, "syscall", n.Syscall)
	if n.Syscall == "setns" {
		b = appendInt(b, "fd", int64(n.Fd))
	}
	b = appendFlagNames(appendKey(b, "flags"), cloneNSFlagNames, n.Flags)
	return appendResult(b, n.Ret)
}

func (n *Namespace) decode(r *reader) {
	n.Syscall, n.Fd = r.string("syscall"), int32(r.int("fd"))
	var flags []string
	r.into("flags", &flags)
	n.Flags = flagBits(cloneNSFlagNames, flags)
	n.Ret = r.int("ret")
}

// BPF is a bpf(2) call and the objects it named, by id.
type BPF struct {
	Cmd                      uint32
	HasMap, HasProg, HasLink bool
	MapID, ProgID, LinkID    uint32
	Ret                      int64
}

// Type is "bpf".
func (*BPF) Type() string { return "bpf" }

func (x *BPF) appendBody(b []byte) []byte {
	if int(x.Cmd) < len(bpfCmdNames) {
		b = appendASCII(b, "cmd", bpfCmdNames[x.Cmd])
	} else {
		b = appendUint(b, "cmd_num", uint64(x.Cmd))
	}
	if x.HasMap {
		b = appendUint(b, "map_id", uint64(x.MapID))
	}
	if x.HasProg {
		b = appendUint(b, "prog_id", uint64(x.ProgID))
	}
	if x.HasLink {
		b = appendUint(b, "link_id", uint64(x.LinkID))
	}
	return appendResult(b, x.Ret)
}

func (x *BPF) decode(r *reader) {
	if name := r.string("cmd"); name != "" {
		x.Cmd = ^uint32(0)
		for i, n := range bpfCmdNames {
			if n == name {
				x.Cmd = uint32(i)
			}
		}
		if x.Cmd == ^uint32(0) {
			r.fail(fmt.Errorf("cmd: unknown bpf command %q", name))
		}
	} else {
		x.Cmd = r.uint32("cmd_num")
	}
	x.HasMap, x.HasProg, x.HasLink = r.o.has("map_id"), r.o.has("prog_id"), r.o.has("link_id")
	x.MapID, x.ProgID, x.LinkID = r.uint32("map_id"), r.uint32("prog_id"), r.uint32("link_id")
	x.Ret = r.int("ret")
}

var ptraceRequestNames = map[uint32]string{
	4: "PTRACE_POKETEXT", 5: "PTRACE_POKEDATA", 6: "PTRACE_POKEUSR", 13: "PTRACE_SETREGS", 15: "PTRACE_SETFPREGS",
	16: "PTRACE_ATTACH", 19: "PTRACE_SETFPXREGS", 26: "PTRACE_SET_THREAD_AREA", 30: "PTRACE_ARCH_PRCTL",
	0x4203: "PTRACE_SETSIGINFO", 0x4205: "PTRACE_SETREGSET", 0x4206: "PTRACE_SEIZE", 0x420b: "PTRACE_SETSIGMASK",
	0x4210: "PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG", 0x4212: "PTRACE_SET_SYSCALL_INFO",
}

var bpfCmdNames = [...]string{
	"BPF_MAP_CREATE", "BPF_MAP_LOOKUP_ELEM", "BPF_MAP_UPDATE_ELEM", "BPF_MAP_DELETE_ELEM", "BPF_MAP_GET_NEXT_KEY",
	"BPF_PROG_LOAD", "BPF_OBJ_PIN", "BPF_OBJ_GET", "BPF_PROG_ATTACH", "BPF_PROG_DETACH", "BPF_PROG_TEST_RUN",
	"BPF_PROG_GET_NEXT_ID", "BPF_MAP_GET_NEXT_ID", "BPF_PROG_GET_FD_BY_ID", "BPF_MAP_GET_FD_BY_ID",
	"BPF_OBJ_GET_INFO_BY_FD", "BPF_PROG_QUERY", "BPF_RAW_TRACEPOINT_OPEN", "BPF_BTF_LOAD", "BPF_BTF_GET_FD_BY_ID",
	"BPF_TASK_FD_QUERY", "BPF_MAP_LOOKUP_AND_DELETE_ELEM", "BPF_MAP_FREEZE", "BPF_BTF_GET_NEXT_ID",
	"BPF_MAP_LOOKUP_BATCH", "BPF_MAP_LOOKUP_AND_DELETE_BATCH", "BPF_MAP_UPDATE_BATCH", "BPF_MAP_DELETE_BATCH",
	"BPF_LINK_CREATE", "BPF_LINK_UPDATE", "BPF_LINK_GET_FD_BY_ID", "BPF_LINK_GET_NEXT_ID", "BPF_ENABLE_STATS",
	"BPF_ITER_CREATE", "BPF_LINK_DETACH", "BPF_PROG_BIND_MAP", "BPF_TOKEN_CREATE", "BPF_PROG_STREAM_READ_BY_FD",
}

var fsconfigCmdNames = [...]string{
	"FSCONFIG_SET_FLAG", "FSCONFIG_SET_STRING", "FSCONFIG_SET_BINARY", "FSCONFIG_SET_PATH", "FSCONFIG_SET_PATH_EMPTY",
	"FSCONFIG_SET_FD", "FSCONFIG_CMD_CREATE", "FSCONFIG_CMD_RECONFIGURE", "FSCONFIG_CMD_CREATE_EXCL",
}

// Flag names, in increasing bit order as the kernel's headers list them.
var (
	cloneNSFlagNames = []flagName{
		{0x80, "CLONE_NEWTIME"}, {0x100, "CLONE_VM"}, {0x200, "CLONE_FS"}, {0x400, "CLONE_FILES"}, {0x800, "CLONE_SIGHAND"},
		{0x10000, "CLONE_THREAD"}, {0x20000, "CLONE_NEWNS"}, {0x40000, "CLONE_SYSVSEM"}, {0x02000000, "CLONE_NEWCGROUP"},
		{0x04000000, "CLONE_NEWUTS"}, {0x08000000, "CLONE_NEWIPC"}, {0x10000000, "CLONE_NEWUSER"},
		{0x20000000, "CLONE_NEWPID"}, {0x40000000, "CLONE_NEWNET"},
	}
	renameFlagNames   = []flagName{{1, "RENAME_NOREPLACE"}, {2, "RENAME_EXCHANGE"}, {4, "RENAME_WHITEOUT"}}
	unlinkatFlagNames = []flagName{{0x200, "AT_REMOVEDIR"}}
	linkatFlagNames   = []flagName{{0x400, "AT_SYMLINK_FOLLOW"}, {0x1000, "AT_EMPTY_PATH"}}
	atPathFlagNames   = []flagName{{0x100, "AT_SYMLINK_NOFOLLOW"}, {0x800, "AT_NO_AUTOMOUNT"}, {0x1000, "AT_EMPTY_PATH"}, {0x8000, "AT_RECURSIVE"}}
	mountFlagNames    = []flagName{
		{1, "MS_RDONLY"}, {2, "MS_NOSUID"}, {4, "MS_NODEV"}, {8, "MS_NOEXEC"}, {16, "MS_SYNCHRONOUS"}, {32, "MS_REMOUNT"},
		{64, "MS_MANDLOCK"}, {128, "MS_DIRSYNC"}, {256, "MS_NOSYMFOLLOW"}, {1024, "MS_NOATIME"}, {2048, "MS_NODIRATIME"},
		{4096, "MS_BIND"}, {8192, "MS_MOVE"}, {16384, "MS_REC"}, {32768, "MS_SILENT"}, {1 << 16, "MS_POSIXACL"},
		{1 << 17, "MS_UNBINDABLE"}, {1 << 18, "MS_PRIVATE"}, {1 << 19, "MS_SLAVE"}, {1 << 20, "MS_SHARED"},
		{1 << 21, "MS_RELATIME"}, {1 << 22, "MS_KERNMOUNT"}, {1 << 23, "MS_I_VERSION"}, {1 << 24, "MS_STRICTATIME"},
		{1 << 25, "MS_LAZYTIME"},
	}
	umountFlagNames    = []flagName{{1, "MNT_FORCE"}, {2, "MNT_DETACH"}, {4, "MNT_EXPIRE"}, {8, "UMOUNT_NOFOLLOW"}}
	moveMountFlagNames = []flagName{
		{1, "MOVE_MOUNT_F_SYMLINKS"}, {2, "MOVE_MOUNT_F_AUTOMOUNTS"}, {4, "MOVE_MOUNT_F_EMPTY_PATH"},
		{0x10, "MOVE_MOUNT_T_SYMLINKS"}, {0x20, "MOVE_MOUNT_T_AUTOMOUNTS"}, {0x40, "MOVE_MOUNT_T_EMPTY_PATH"},
		{0x100, "MOVE_MOUNT_SET_GROUP"}, {0x200, "MOVE_MOUNT_BENEATH"},
	}
	fsopenFlagNames    = []flagName{{1, "FSOPEN_CLOEXEC"}}
	fsmountFlagNames   = []flagName{{1, "FSMOUNT_CLOEXEC"}}
	mountAttrFlagNames = []flagName{
		{1, "MOUNT_ATTR_RDONLY"}, {2, "MOUNT_ATTR_NOSUID"}, {4, "MOUNT_ATTR_NODEV"}, {8, "MOUNT_ATTR_NOEXEC"},
		{0x10, "MOUNT_ATTR_NOATIME"}, {0x20, "MOUNT_ATTR_STRICTATIME"}, {0x80, "MOUNT_ATTR_NODIRATIME"},
		{0x100000, "MOUNT_ATTR_IDMAP"}, {0x200000, "MOUNT_ATTR_NOSYMFOLLOW"},
	}
	pidfdFlagNames = []flagName{{0x80, "PIDFD_THREAD"}, {0x800, "PIDFD_NONBLOCK"}}
)

// mountMagic is MS_MGC_VAL: old programs put it in the upper 16 bits of
// mount's flags, and the kernel ignores it.
const mountMagic = 0xc0ed0000

// Tamper is a difference between the kernel state agenttrace set (the maps
// it still writes after start: the daemon's target patterns and cgroup
// states) and what the kernel holds: someone with bpf(2) access changed it.
type Tamper struct {
	What     string // "cgroup_states", "patterns" or "states_gen"
	CgroupID uint64 // cgroup_states
	Cgroup   string // its path, when known
	Slot     uint32 // patterns
	Expected TamperValue
	Found    TamperValue
	Restored bool // what agenttrace set was written back
}

// TamperValue is one side of a Tamper, by What.
type TamperValue struct {
	Absent  bool   // cgroup_states: no entry
	Partial uint32 // cgroup_states
	Traced  bool   // cgroup_states
	Pattern string // patterns: the glob's components joined by "/"
	Gen     uint64 // states_gen
}

// Type is "tamper".
func (*Tamper) Type() string { return "tamper" }

func (t *Tamper) appendValue(b []byte, key string, v *TamperValue) []byte {
	switch t.What {
	case "cgroup_states":
		if v.Absent {
			return appendASCII(b, key, "absent")
		}
		b = append(appendKey(b, key), '{')
		b = appendUint(b, "partial", uint64(v.Partial))
		b = appendBool(b, "traced", v.Traced)
		return append(b, '}')
	case "patterns":
		return AppendString(b, key, v.Pattern)
	}
	return appendUint(b, key, v.Gen)
}

func (t *Tamper) appendBody(b []byte) []byte {
	b = appendASCII(b, "what", t.What)
	switch t.What {
	case "cgroup_states":
		b = appendUint(b, "cgroup_id", t.CgroupID)
		if t.Cgroup != "" {
			b = AppendString(b, "cgroup", t.Cgroup)
		}
	case "patterns":
		b = appendUint(b, "pattern", uint64(t.Slot))
	}
	b = t.appendValue(b, "expected", &t.Expected)
	b = t.appendValue(b, "found", &t.Found)
	return appendBool(b, "restored", t.Restored)
}

func (t *Tamper) decodeValue(r *reader, key string) TamperValue {
	switch t.What {
	case "cgroup_states":
		if raw := r.o.raw(key); len(raw) > 0 && raw[0] != '{' {
			return TamperValue{Absent: r.string(key) == "absent"}
		}
		var v TamperValue
		if o := r.object(key); o != nil {
			v.Partial, v.Traced = o.uint32("partial"), o.bool("traced")
			r.done(o)
		}
		return v
	case "patterns":
		return TamperValue{Pattern: r.bytes(key)}
	}
	return TamperValue{Gen: r.uint(key)}
}

func (t *Tamper) decode(r *reader) {
	t.What, t.CgroupID, t.Cgroup, t.Slot = r.string("what"), r.uint("cgroup_id"), r.bytes("cgroup"), r.uint32("pattern")
	t.Expected, t.Found = t.decodeValue(r, "expected"), t.decodeValue(r, "found")
	t.Restored = r.bool("restored")
}

// PtraceRequestName names a ptrace request ("PTRACE_ATTACH"), or gives its
// number.
func PtraceRequestName(req uint32) string {
	if name, ok := ptraceRequestNames[req]; ok {
		return name
	}
	return fmt.Sprintf("request %d", req)
}

// BPFCmdName names a bpf(2) command ("BPF_MAP_UPDATE_ELEM"), or gives its
// number.
func BPFCmdName(cmd uint32) string {
	if int(cmd) < len(bpfCmdNames) {
		return bpfCmdNames[cmd]
	}
	return fmt.Sprintf("cmd %d", cmd)
}

// CloneFlagNames names the CLONE_* bits of an unshare or setns.
func CloneFlagNames(flags uint64) []string {
	var names []string
	for _, f := range cloneNSFlagNames {
		if flags&f.bits != 0 {
			names = append(names, f.name)
			flags &^= f.bits
		}
	}
	if flags != 0 {
		names = append(names, fmt.Sprintf("0x%x", flags))
	}
	return names
}
