package record

// Files and executables as the kernel resolved them (issue 12): the open
// record of every way to get a file (open, creat, openat, openat2,
// open_tree, open_by_handle_at, pidfd_getfd, memfd_create, io_uring's
// openat and openat2) with the file the kernel opened or the directory a
// failed relative open was resolved against, the io_uring_setup record, and
// what an exec's exe_file says of the image.

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// File system magics (statfs f_type) whose files are named by their kind
// rather than a path.
const (
	pipefsMagic    = 0x50495045
	sockfsMagic    = 0x534f434b
	anonInodeMagic = 0x09041934
	pidfsMagic     = 0x50494446
)

// File is a file the kernel resolved from a struct file (or the working
// directory's struct path), never from the caller's memory.
type File struct {
	Present bool
	// Path is the absolute path walked through dentries and mounts to the
	// root of the mount namespace; for a fileless file its own name
	// (memfd:NAME).
	Path          string
	PathTruncated bool // the walk stopped before the root: Path is its last components
	Dev           uint32
	Ino           uint64
	Mode          uint32 // i_mode: type and permission bits
	MntID         uint32
	Deleted       bool // unlinked
	Fileless      bool // on a kernel-internal mount: no path in any namespace
	// PathInNS is the path as the process sees it, when its root or mount
	// namespace is not the host's (HasPathInNS).
	PathInNS    string
	HasPathInNS bool
	// Magic is the file system's magic: not in the log, it names a
	// fileless file of a pipe, socket or anonymous inode.
	Magic uint32
	// Socket is the socket of a socket file taken with pidfd_getfd
	// (HasSocket): "socket", as the network records have it.
	HasSocket bool
	Socket    SocketInfo
}

// fileTypeName names the file type bits of an i_mode.
func fileTypeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "char"
	case unix.S_IFBLK:
		return "block"
	}
	return "anon"
}

// appendPath appends "path": for a fileless file of a pipe, socket or
// anonymous inode the name /proc/PID/fd shows for it.
func (f *File) appendPath(b []byte) []byte {
	if !f.Fileless {
		return AppendString(b, "path", f.Path)
	}
	switch f.Magic {
	case pipefsMagic, sockfsMagic:
		kind := "pipe:["
		if f.Magic == sockfsMagic {
			kind = "socket:["
		}
		b = append(appendKey(b, "path"), '"')
		b = append(b, kind...)
		b = strconv.AppendUint(b, f.Ino, 10)
		return append(b, ']', '"')
	case pidfsMagic:
		return appendASCII(b, "path", "anon_inode:[pidfd]")
	case anonInodeMagic:
		// Rare (an eventfd taken with pidfd_getfd): allocating is fine.
		return AppendString(b, "path", "anon_inode:"+f.Path)
	}
	return AppendString(b, "path", f.Path)
}

// append appends the file object.
func (f *File) append(b []byte, key string) []byte {
	b = append(appendKey(b, key), '{')
	b = f.appendPath(b)
	b = appendDev(b, "dev", f.Dev)
	b = appendUint(b, "ino", f.Ino)
	b = appendOctal(b, "mode", uint64(f.Mode))
	b = appendASCII(b, "type", fileTypeName(f.Mode))
	b = appendUint(b, "mnt_id", uint64(f.MntID))
	if f.PathTruncated {
		b = appendBool(b, "path_truncated", true)
	}
	if f.Deleted {
		b = appendBool(b, "deleted", true)
	}
	if f.Fileless {
		b = appendBool(b, "fileless", true)
	}
	if f.HasPathInNS {
		b = AppendString(b, "path_in_ns", f.PathInNS)
	}
	if f.HasSocket {
		b = f.Socket.append(b)
	}
	return append(b, '}')
}

func (f *File) decode(r *reader) {
	f.Present = true
	f.Path, f.PathTruncated = r.bytes("path"), r.bool("path_truncated")
	f.Dev, f.Ino, f.Mode, f.MntID = r.dev("dev"), r.uint("ino"), uint32(r.octal("mode")), r.uint32("mnt_id")
	f.Deleted, f.Fileless = r.bool("deleted"), r.bool("fileless")
	f.HasPathInNS = r.o.has("path_in_ns")
	f.PathInNS = r.bytes("path_in_ns")
	if s := r.object("socket"); s != nil {
		f.HasSocket = true
		f.Socket.decode(s)
		r.done(s)
	}
}

// appendDir appends the dir object: the directory's path only.
func (f *File) appendDir(b []byte) []byte {
	b = append(appendKey(b, "dir"), '{')
	b = AppendString(b, "path", f.Path)
	if f.PathTruncated {
		b = appendBool(b, "path_truncated", true)
	}
	if f.HasPathInNS {
		b = AppendString(b, "path_in_ns", f.PathInNS)
	}
	return append(b, '}')
}

func (f *File) decodeDir(r *reader) {
	f.Present = true
	f.Path, f.PathTruncated = r.bytes("path"), r.bool("path_truncated")
	f.HasPathInNS = r.o.has("path_in_ns")
	f.PathInNS = r.bytes("path_in_ns")
}

// Source is the process pidfd_getfd took a descriptor from.
type Source struct {
	Known        bool
	ExecID       ExecID // its pid is the source's pid
	Exe          string
	ExeTruncated bool
}

// Open is an open of a file, or another way to get a file descriptor (or
// an io_uring fixed-file slot) for a file the caller names or reaches.
type Open struct {
	// Syscall: "open", "creat", "openat", "openat2", "open_tree",
	// "open_tree_attr", "open_by_handle_at", "pidfd_getfd", "memfd_create",
	// "io_uring_openat", "io_uring_openat2".
	Syscall string
	// Dirfd: AT_FDCWD (-100) for open and creat; open_by_handle_at's
	// mount_fd; pidfd_getfd's pidfd.
	Dirfd int32
	// Path is the argument as read at entry: the path as passed; memfd_create's name.
	Path           string
	PathTruncated  bool
	PathUnreadable bool // not readable at entry (never read again): no Path
	// ArgUnreadable: openat2's open_how or open_by_handle_at's handle could
	// not be read at entry.
	ArgUnreadable bool
	Flags         uint64 // creat: the effective O_CREAT|O_WRONLY|O_TRUNC
	Mode          uint64
	Resolve       uint64 // openat2
	HandleType    int32  // open_by_handle_at
	Handle        string // open_by_handle_at: the handle's bytes
	TargetFd      int32  // pidfd_getfd
	Source        Source // pidfd_getfd, success
	// io_uring: the submission.
	UserData       uint64
	SqeFlags       uint32
	CQESkipped     bool // IOSQE_CQE_SKIP_SUCCESS: recorded at submission, no result
	UserDataShared bool
	FileSlot       int32 // io_uring: the fixed-file slot (InSlot)
	InSlot         bool
	Ret            int64 // the fd, or -errno (a fixed slot's open: 0)
	File           File  // success: the file opened
	Dir            File  // failure of a relative or unreadable path: the directory
}

// Type is "open".
func (*Open) Type() string { return "open" }

// IsIOURing reports whether the open was made through io_uring.
func (o *Open) IsIOURing() bool { return strings.HasPrefix(o.Syscall, "io_uring_") }

// HasPath reports whether Path is a path as passed (not a memfd's name).
func (o *Open) HasPath() bool {
	switch o.Syscall {
	case "open_by_handle_at", "pidfd_getfd", "memfd_create":
		return false
	}
	return !o.PathUnreadable
}

func (o *Open) appendBody(b []byte) []byte {
	b = appendSyscall(b, o.Syscall)
	switch o.Syscall {
	case "open_by_handle_at":
		b = appendInt(b, "mount_fd", int64(o.Dirfd))
		if o.ArgUnreadable {
			b = appendBool(b, "handle_unreadable", true)
		} else {
			b = append(appendKey(b, "handle"), '{')
			b = appendInt(b, "type", int64(o.HandleType))
			b = append(appendKey(b, "bytes_hex"), '"')
			b = hex.AppendEncode(b, unsafeBytes(o.Handle))
			b = append(b, '"', '}')
		}
		b = appendOpenFlags(appendKey(b, "flags"), o.Flags)
		b = appendUint(b, "flags_raw", o.Flags)
	case "pidfd_getfd":
		b = appendInt(b, "pidfd", int64(o.Dirfd))
		b = appendInt(b, "target_fd", int64(o.TargetFd))
		if o.Flags != 0 {
			b = appendUint(b, "flags_raw", o.Flags)
		}
		if o.Source.Known {
			b = append(appendKey(b, "source"), '{')
			b = appendUint(b, "pid", uint64(o.Source.ExecID.Pid))
			b = appendExecID(b, "exec_id", o.Source.ExecID)
			if o.Source.Exe != "" {
				b = AppendString(b, "exe", o.Source.Exe)
			}
			if o.Source.ExeTruncated {
				b = appendBool(b, "exe_truncated", true)
			}
			b = append(b, '}')
		}
	case "memfd_create":
		if o.PathUnreadable {
			b = appendBool(b, "name_unreadable", true)
		} else {
			b = AppendString(b, "name", o.Path)
		}
		b = appendFlagNames(appendKey(b, "flags"), memfdFlagNames, o.Flags)
		b = appendUint(b, "flags_raw", o.Flags)
	case "open_tree", "open_tree_attr":
		b = appendInt(b, "dirfd", int64(o.Dirfd))
		b = o.appendPath(b)
		b = appendFlagNames(appendKey(b, "flags"), openTreeFlagNames, o.Flags)
		b = appendUint(b, "flags_raw", o.Flags)
	default:
		b = appendInt(b, "dirfd", int64(o.Dirfd))
		b = o.appendPath(b)
		if o.ArgUnreadable {
			b = appendBool(b, "how_unreadable", true)
			break
		}
		b = appendOpenFlags(appendKey(b, "flags"), o.Flags)
		b = appendUint(b, "flags_raw", o.Flags)
		b = appendOctal(b, "mode", o.Mode)
		if o.Syscall == "openat2" || o.Syscall == "io_uring_openat2" {
			b = appendFlagNames(appendKey(b, "resolve"), resolveFlagNames, o.Resolve)
		}
	}
	if o.IsIOURing() {
		b = append(appendKey(b, "io_uring"), '{')
		b = appendUint(b, "user_data", o.UserData)
		b = appendFlagNames(appendKey(b, "sqe_flags"), sqeFlagNames, uint64(o.SqeFlags))
		if o.CQESkipped {
			b = appendBool(b, "cqe_skipped", true)
		}
		if o.UserDataShared {
			b = appendBool(b, "user_data_shared", true)
		}
		b = append(b, '}')
		if o.CQESkipped {
			return b // recorded at submission: there is no result
		}
	}
	if o.Ret >= 0 {
		if o.InSlot {
			b = appendInt(b, "file_slot", int64(o.FileSlot))
		} else {
			b = appendInt(b, "fd", o.Ret)
		}
	}
	b = appendResult(b, o.Ret)
	if o.File.Present {
		b = o.File.append(b, "file")
	}
	if o.Dir.Present {
		b = o.Dir.appendDir(b)
	}
	return b
}

// appendPath appends the path as passed, or path_unreadable (then no path:
// it is never read again later).
func (o *Open) appendPath(b []byte) []byte {
	if o.PathUnreadable {
		return appendBool(b, "path_unreadable", true)
	}
	b = AppendString(b, "path", o.Path)
	if o.PathTruncated {
		b = appendBool(b, "path_truncated", true)
	}
	return b
}

func (o *Open) decode(r *reader) {
	o.Syscall = r.string("syscall")
	o.Flags, o.Mode = r.uint("flags_raw"), r.octal("mode")
	switch o.Syscall {
	case "open_by_handle_at":
		o.Dirfd = int32(r.int("mount_fd"))
		o.ArgUnreadable = r.bool("handle_unreadable")
		if h := r.object("handle"); h != nil {
			o.HandleType = int32(h.int("type"))
			raw, err := hex.DecodeString(h.string("bytes_hex"))
			if err != nil {
				h.fail(fmt.Errorf("bytes_hex: %w", err))
			}
			o.Handle = string(raw)
			r.done(h)
		}
	case "pidfd_getfd":
		o.Dirfd, o.TargetFd = int32(r.int("pidfd")), int32(r.int("target_fd"))
		if src := r.object("source"); src != nil {
			o.Source = Source{Known: true, ExecID: src.execID("exec_id"), Exe: src.bytes("exe"), ExeTruncated: src.bool("exe_truncated")}
			r.done(src)
		}
	case "memfd_create":
		o.Path, o.PathUnreadable = r.bytes("name"), r.bool("name_unreadable")
	default:
		o.Dirfd = int32(r.int("dirfd"))
		o.Path, o.PathTruncated, o.PathUnreadable = r.bytes("path"), r.bool("path_truncated"), r.bool("path_unreadable")
		o.ArgUnreadable = r.bool("how_unreadable")
		var resolve []string
		r.into("resolve", &resolve)
		o.Resolve = flagBits(resolveFlagNames, resolve)
	}
	if u := r.object("io_uring"); u != nil {
		o.UserData = u.uint("user_data")
		var flags []string
		u.into("sqe_flags", &flags)
		o.SqeFlags = uint32(flagBits(sqeFlagNames, flags))
		o.CQESkipped, o.UserDataShared = u.bool("cqe_skipped"), u.bool("user_data_shared")
		r.done(u)
	}
	o.InSlot = r.o.has("file_slot")
	o.FileSlot = int32(r.int("file_slot"))
	o.Ret = r.int("ret")
	if f := r.object("file"); f != nil {
		o.File.decode(f)
		r.done(f)
	}
	if d := r.object("dir"); d != nil {
		o.Dir.decodeDir(d)
		r.done(d)
	}
}

// IOURing is an io_uring_setup: a ring was created (its opens are open
// records).
type IOURing struct {
	Syscall          string // "io_uring_setup"
	Entries          uint32
	Flags            uint32 // IORING_SETUP_* as passed
	CqEntries        uint32 // as passed, with IORING_SETUP_CQSIZE
	ParamsUnreadable bool   // io_uring_params could not be read at entry
	Ret              int64  // the ring's fd, or -errno
}

// Type is "io_uring".
func (*IOURing) Type() string { return "io_uring" }

func (u *IOURing) appendBody(b []byte) []byte {
	b = appendSyscall(b, u.Syscall)
	b = appendUint(b, "entries", uint64(u.Entries))
	if u.ParamsUnreadable {
		b = appendBool(b, "params_unreadable", true)
	} else {
		b = appendFlagNames(appendKey(b, "flags"), uringSetupFlagNames, uint64(u.Flags))
		if u.Flags&ioringSetupCqsize != 0 {
			b = appendUint(b, "cq_entries", uint64(u.CqEntries))
		}
	}
	if u.Ret >= 0 {
		b = appendInt(b, "fd", u.Ret)
	}
	return appendResult(b, u.Ret)
}

func (u *IOURing) decode(r *reader) {
	u.Syscall, u.Entries = r.string("syscall"), r.uint32("entries")
	u.ParamsUnreadable = r.bool("params_unreadable")
	var flags []string
	r.into("flags", &flags)
	u.Flags = uint32(flagBits(uringSetupFlagNames, flags))
	u.CqEntries = r.uint32("cq_entries")
	u.Ret = r.int("ret")
}

// append appends exe_file.
func (f *ExeFile) append(b []byte) []byte {
	b = append(appendKey(b, "exe_file"), '{')
	b = appendUint(b, "ino", f.Ino)
	b = appendDev(b, "dev", f.Dev)
	b = appendOctal(b, "mode", uint64(f.Mode))
	b = appendUint(b, "uid", uint64(f.UID))
	b = appendUint(b, "gid", uint64(f.GID))
	b = appendUint(b, "ctime", f.Ctime)
	if f.Fileless {
		b = appendBool(b, "fileless", true)
	}
	if f.Deleted {
		b = appendBool(b, "deleted", true)
	}
	switch {
	case f.SHA256 != "":
		b = appendASCII(b, "sha256", f.SHA256)
	case f.SHA256Error != "":
		b = AppendString(b, "sha256_error", f.SHA256Error)
	}
	return append(b, '}')
}

func (f *ExeFile) decode(r *reader) {
	*f = ExeFile{Ino: r.uint("ino"), Dev: r.dev("dev"), Mode: uint32(r.octal("mode")), UID: r.uint32("uid"), GID: r.uint32("gid"),
		Ctime: r.uint("ctime"), Fileless: r.bool("fileless"), Deleted: r.bool("deleted"),
		SHA256: r.string("sha256"), SHA256Error: r.bytes("sha256_error")}
}
