package record

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

type flagName struct {
	bits uint64
	name string
}

// Open flags on x86_64, multi-bit flags first so they win over their parts.
var openFlagNames = []flagName{
	{unix.O_SYNC, "O_SYNC"},
	{unix.O_TMPFILE, "O_TMPFILE"},
	{unix.O_CREAT, "O_CREAT"},
	{unix.O_EXCL, "O_EXCL"},
	{unix.O_NOCTTY, "O_NOCTTY"},
	{unix.O_TRUNC, "O_TRUNC"},
	{unix.O_APPEND, "O_APPEND"},
	{unix.O_NONBLOCK, "O_NONBLOCK"},
	{unix.O_DSYNC, "O_DSYNC"},
	{unix.O_ASYNC, "O_ASYNC"},
	{unix.O_DIRECT, "O_DIRECT"},
	{0o100000, "O_LARGEFILE"}, // unix.O_LARGEFILE is 0 on amd64; the kernel's bit is not
	{unix.O_DIRECTORY, "O_DIRECTORY"},
	{unix.O_NOFOLLOW, "O_NOFOLLOW"},
	{unix.O_NOATIME, "O_NOATIME"},
	{unix.O_CLOEXEC, "O_CLOEXEC"},
	{unix.O_PATH, "O_PATH"},
}

var resolveFlagNames = []flagName{
	{unix.RESOLVE_NO_XDEV, "RESOLVE_NO_XDEV"},
	{unix.RESOLVE_NO_MAGICLINKS, "RESOLVE_NO_MAGICLINKS"},
	{unix.RESOLVE_NO_SYMLINKS, "RESOLVE_NO_SYMLINKS"},
	{unix.RESOLVE_BENEATH, "RESOLVE_BENEATH"},
	{unix.RESOLVE_IN_ROOT, "RESOLVE_IN_ROOT"},
	{0x20, "RESOLVE_CACHED"}, // not in x/sys yet,
}

var atFlagNames = []flagName{
	{unix.AT_SYMLINK_NOFOLLOW, "AT_SYMLINK_NOFOLLOW"},
	{unix.AT_EMPTY_PATH, "AT_EMPTY_PATH"},
}

var openTreeFlagNames = []flagName{
	{unix.OPEN_TREE_CLONE, "OPEN_TREE_CLONE"},
	{unix.OPEN_TREE_CLOEXEC, "OPEN_TREE_CLOEXEC"},
	{unix.AT_SYMLINK_NOFOLLOW, "AT_SYMLINK_NOFOLLOW"},
	{unix.AT_NO_AUTOMOUNT, "AT_NO_AUTOMOUNT"},
	{unix.AT_EMPTY_PATH, "AT_EMPTY_PATH"},
	{unix.AT_RECURSIVE, "AT_RECURSIVE"},
}

var memfdFlagNames = []flagName{
	{unix.MFD_CLOEXEC, "MFD_CLOEXEC"},
	{unix.MFD_ALLOW_SEALING, "MFD_ALLOW_SEALING"},
	{unix.MFD_HUGETLB, "MFD_HUGETLB"},
	{0x8, "MFD_NOEXEC_SEAL"},
	{0x10, "MFD_EXEC"},
}

const ioringSetupCqsize = 1 << 3

// IORING_SETUP_* of io_uring_setup.
var uringSetupFlagNames = []flagName{
	{1 << 0, "IORING_SETUP_IOPOLL"},
	{1 << 1, "IORING_SETUP_SQPOLL"},
	{1 << 2, "IORING_SETUP_SQ_AFF"},
	{ioringSetupCqsize, "IORING_SETUP_CQSIZE"},
	{1 << 4, "IORING_SETUP_CLAMP"},
	{1 << 5, "IORING_SETUP_ATTACH_WQ"},
	{1 << 6, "IORING_SETUP_R_DISABLED"},
	{1 << 7, "IORING_SETUP_SUBMIT_ALL"},
	{1 << 8, "IORING_SETUP_COOP_TASKRUN"},
	{1 << 9, "IORING_SETUP_TASKRUN_FLAG"},
	{1 << 10, "IORING_SETUP_SQE128"},
	{1 << 11, "IORING_SETUP_CQE32"},
	{1 << 12, "IORING_SETUP_SINGLE_ISSUER"},
	{1 << 13, "IORING_SETUP_DEFER_TASKRUN"},
	{1 << 14, "IORING_SETUP_NO_MMAP"},
	{1 << 15, "IORING_SETUP_REGISTERED_FD_ONLY"},
	{1 << 16, "IORING_SETUP_NO_SQARRAY"},
	{1 << 17, "IORING_SETUP_HYBRID_IOPOLL"},
}

// appendFlagNames appends the names of the bits in v as a JSON array.
func appendFlagNames(b []byte, names []flagName, v uint64) []byte {
	return append(appendFlagList(append(b, '['), names, v), ']')
}

// appendFlagList appends names of the bits in v as array elements; bits
// without a name are kept as one hex string so the list never hides a bit.
func appendFlagList(b []byte, names []flagName, v uint64) []byte {
	elem := func(b []byte) []byte {
		if b[len(b)-1] != '[' {
			b = append(b, ',')
		}
		return append(b, '"')
	}
	for _, f := range names {
		if v&f.bits == f.bits {
			b = append(append(elem(b), f.name...), '"')
			v &^= f.bits
		}
	}
	if v != 0 {
		b = append(elem(b), '0', 'x')
		b = append(strconv.AppendUint(b, v, 16), '"')
	}
	return b
}

// flagBits is the inverse of appendFlagNames: the bits of the names, and of
// a "0x…" element holding bits without a name.
func flagBits(names []flagName, list []string) uint64 {
	var v uint64
	for _, s := range list {
		if hex, ok := strings.CutPrefix(s, "0x"); ok {
			n, _ := strconv.ParseUint(hex, 16, 64)
			v |= n
			continue
		}
		for _, f := range names {
			if f.name == s {
				v |= f.bits
				break
			}
		}
	}
	return v
}

// appendOpenFlags appends the access mode followed by the other flags.
func appendOpenFlags(b []byte, v uint64) []byte {
	access := "O_ACCMODE" // both bits: only valid for some ioctls, kept visible
	switch v & unix.O_ACCMODE {
	case unix.O_RDONLY:
		access = "O_RDONLY"
	case unix.O_WRONLY:
		access = "O_WRONLY"
	case unix.O_RDWR:
		access = "O_RDWR"
	}
	b = append(b, '[', '"')
	b = append(append(b, access...), '"')
	return append(appendFlagList(b, openFlagNames, v&^unix.O_ACCMODE), ']')
}

// Kernel-internal errnos a syscall returns when a signal or the freezer
// interrupted it; the kernel then restarts it, which is the next record.
var restartNames = map[int64]string{
	512: "ERESTARTSYS",
	513: "ERESTARTNOINTR",
	514: "ERESTARTNOHAND",
	515: "ENOIOCTLCMD",
	516: "ERESTART_RESTARTBLOCK",
}

// ErrnoName names an errno value ("ENOENT"), or "E<number>" if unknown.
func ErrnoName(errno int64) string {
	if name := unix.ErrnoName(unix.Errno(errno)); name != "" {
		return name
	}
	if name, ok := restartNames[errno]; ok {
		return name
	}
	return "E" + strconv.FormatInt(errno, 10)
}

// SignalName names a signal ("SIGKILL"), or "SIG<number>" if unknown.
func SignalName(sig int) string {
	if name := unix.SignalName(unix.Signal(sig)); name != "" {
		return name
	}
	return "SIG" + strconv.Itoa(sig)
}

var familyNames = map[uint16]string{
	unix.AF_UNSPEC:    "AF_UNSPEC",
	unix.AF_UNIX:      "AF_UNIX",
	unix.AF_INET:      "AF_INET",
	unix.AF_INET6:     "AF_INET6",
	unix.AF_NETLINK:   "AF_NETLINK",
	unix.AF_PACKET:    "AF_PACKET",
	unix.AF_VSOCK:     "AF_VSOCK",
	unix.AF_BLUETOOTH: "AF_BLUETOOTH",
	unix.AF_ALG:       "AF_ALG",
	unix.AF_XDP:       "AF_XDP",
}
