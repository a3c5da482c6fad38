// Package loader owns the kernel side of agenttrace at run time: it loads the
// eBPF object generated from bpf/, sets its knobs, fills the target cgroups,
// attaches the hooks and reads the ring buffer.
//
// It never interprets a record beyond handing its bytes on; decoding belongs
// to package decoder.
package loader

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/agenttrace/agenttrace/internal/cgroup"
)

// The record layouts, generated from bpf/agenttrace.h.
type (
	EventHeader    = bpfEventHeader
	ExecEvent      = bpfExecEvent
	OpenEvent      = bpfOpenEvent
	NetEvent       = bpfNetEvent
	SockStateEvent = bpfSockStateEvent
	DNSEvent       = bpfDnsEvent
	SockInfo       = bpfSockInfo
	SockName       = bpfSockName
	ForkEvent      = bpfForkEvent
	ExitEvent      = bpfExitEvent
	CgroupEvent    = bpfCgroupEvent
	CgroupState    = bpfCgroupState
	KindCounters   = bpfKindCounters

	CgroupMoveEvent = bpfCgroupMoveEvent
	ProcAccessEvent = bpfProcAccessEvent
	TargetInfo      = bpfTargetInfo
	FileOpEvent     = bpfFileOpEvent
	MountEvent      = bpfMountEvent
	NamespaceEvent  = bpfNamespaceEvent
	BPFEvent        = bpfBpfEvent
	GlobPattern     = bpfGlobPattern
	Member          = bpfMember
	FileInfo        = bpfFileInfo
	IOURingEvent    = bpfIoUringEvent
)

// Record kinds, as in enum record_kind.
const (
	KindExec    = uint32(bpfRecordKindKIND_EXEC)
	KindOpen    = uint32(bpfRecordKindKIND_OPEN)
	KindConnect = uint32(bpfRecordKindKIND_CONNECT)
	KindFork    = uint32(bpfRecordKindKIND_FORK)
	KindExit    = uint32(bpfRecordKindKIND_EXIT)
	KindCgroup  = uint32(bpfRecordKindKIND_CGROUP)
	KindSend    = uint32(bpfRecordKindKIND_SEND)
	KindBind    = uint32(bpfRecordKindKIND_BIND)
	KindListen  = uint32(bpfRecordKindKIND_LISTEN)
	KindAccept  = uint32(bpfRecordKindKIND_ACCEPT)
	// KindSockState: how a recorded connect left SYN_SENT.
	KindSockState = uint32(bpfRecordKindKIND_SOCK_STATE)
	KindDNS       = uint32(bpfRecordKindKIND_DNS)
	KindIOURing   = uint32(bpfRecordKindKIND_IO_URING)

	KindCgroupMove = uint32(bpfRecordKindKIND_CGROUP_MOVE)
	KindProcAccess = uint32(bpfRecordKindKIND_PROC_ACCESS)
	KindFileOp     = uint32(bpfRecordKindKIND_FILE_OP)
	KindMount      = uint32(bpfRecordKindKIND_MOUNT)
	KindNamespace  = uint32(bpfRecordKindKIND_NAMESPACE)
	KindBPF        = uint32(bpfRecordKindKIND_BPF)

	KindMax = uint32(bpfRecordKindKIND_MAX)
)

// Syscall ids on the wire, as in enum syscall_id.
const (
	SyscallUnknown    = uint32(bpfSyscallIdSC_UNKNOWN)
	SyscallExecve     = uint32(bpfSyscallIdSC_EXECVE)
	SyscallExecveat   = uint32(bpfSyscallIdSC_EXECVEAT)
	SyscallOpen       = uint32(bpfSyscallIdSC_OPEN)
	SyscallCreat      = uint32(bpfSyscallIdSC_CREAT)
	SyscallOpenat     = uint32(bpfSyscallIdSC_OPENAT)
	SyscallOpenat2    = uint32(bpfSyscallIdSC_OPENAT2)
	SyscallConnect    = uint32(bpfSyscallIdSC_CONNECT)
	SyscallSocketcall = uint32(bpfSyscallIdSC_SOCKETCALL)
	SyscallSendto     = uint32(bpfSyscallIdSC_SENDTO)
	SyscallSendmsg    = uint32(bpfSyscallIdSC_SENDMSG)
	SyscallSendmmsg   = uint32(bpfSyscallIdSC_SENDMMSG)
	SyscallBind       = uint32(bpfSyscallIdSC_BIND)
	SyscallListen     = uint32(bpfSyscallIdSC_LISTEN)
	SyscallAccept     = uint32(bpfSyscallIdSC_ACCEPT)
	SyscallAccept4    = uint32(bpfSyscallIdSC_ACCEPT4)

	SyscallIOUringConnect   = uint32(bpfSyscallIdSC_IO_URING_CONNECT)
	SyscallIOUringSend      = uint32(bpfSyscallIdSC_IO_URING_SEND)
	SyscallIOUringSendmsg   = uint32(bpfSyscallIdSC_IO_URING_SENDMSG)
	SyscallIOUringSendZC    = uint32(bpfSyscallIdSC_IO_URING_SEND_ZC)
	SyscallIOUringSendmsgZC = uint32(bpfSyscallIdSC_IO_URING_SENDMSG_ZC)
	SyscallIOUringAccept    = uint32(bpfSyscallIdSC_IO_URING_ACCEPT)
	SyscallIOUringBind      = uint32(bpfSyscallIdSC_IO_URING_BIND)
	SyscallIOUringListen    = uint32(bpfSyscallIdSC_IO_URING_LISTEN)

	SyscallOpenByHandleAt = uint32(bpfSyscallIdSC_OPEN_BY_HANDLE_AT)
	SyscallOpenTree       = uint32(bpfSyscallIdSC_OPEN_TREE)
	SyscallPidfdGetfd     = uint32(bpfSyscallIdSC_PIDFD_GETFD)
	SyscallMemfdCreate    = uint32(bpfSyscallIdSC_MEMFD_CREATE)
	SyscallIOURingSetup   = uint32(bpfSyscallIdSC_IO_URING_SETUP)
	SyscallIOURingOpenat  = uint32(bpfSyscallIdSC_IO_URING_OPENAT)
	SyscallIOURingOpenat2 = uint32(bpfSyscallIdSC_IO_URING_OPENAT2)
	SyscallOpenTreeAttr   = uint32(bpfSyscallIdSC_OPEN_TREE_ATTR)

	SyscallRename          = uint32(bpfSyscallIdSC_RENAME)
	SyscallRenameat        = uint32(bpfSyscallIdSC_RENAMEAT)
	SyscallRenameat2       = uint32(bpfSyscallIdSC_RENAMEAT2)
	SyscallUnlink          = uint32(bpfSyscallIdSC_UNLINK)
	SyscallUnlinkat        = uint32(bpfSyscallIdSC_UNLINKAT)
	SyscallRmdir           = uint32(bpfSyscallIdSC_RMDIR)
	SyscallLink            = uint32(bpfSyscallIdSC_LINK)
	SyscallLinkat          = uint32(bpfSyscallIdSC_LINKAT)
	SyscallSymlink         = uint32(bpfSyscallIdSC_SYMLINK)
	SyscallSymlinkat       = uint32(bpfSyscallIdSC_SYMLINKAT)
	SyscallChmod           = uint32(bpfSyscallIdSC_CHMOD)
	SyscallFchmod          = uint32(bpfSyscallIdSC_FCHMOD)
	SyscallFchmodat        = uint32(bpfSyscallIdSC_FCHMODAT)
	SyscallFchmodat2       = uint32(bpfSyscallIdSC_FCHMODAT2)
	SyscallChown           = uint32(bpfSyscallIdSC_CHOWN)
	SyscallFchown          = uint32(bpfSyscallIdSC_FCHOWN)
	SyscallLchown          = uint32(bpfSyscallIdSC_LCHOWN)
	SyscallFchownat        = uint32(bpfSyscallIdSC_FCHOWNAT)
	SyscallTruncate        = uint32(bpfSyscallIdSC_TRUNCATE)
	SyscallFtruncate       = uint32(bpfSyscallIdSC_FTRUNCATE)
	SyscallMount           = uint32(bpfSyscallIdSC_MOUNT)
	SyscallUmount2         = uint32(bpfSyscallIdSC_UMOUNT2)
	SyscallMoveMount       = uint32(bpfSyscallIdSC_MOVE_MOUNT)
	SyscallFsopen          = uint32(bpfSyscallIdSC_FSOPEN)
	SyscallFsconfig        = uint32(bpfSyscallIdSC_FSCONFIG)
	SyscallFsmount         = uint32(bpfSyscallIdSC_FSMOUNT)
	SyscallMountSetattr    = uint32(bpfSyscallIdSC_MOUNT_SETATTR)
	SyscallPivotRoot       = uint32(bpfSyscallIdSC_PIVOT_ROOT)
	SyscallUnshare         = uint32(bpfSyscallIdSC_UNSHARE)
	SyscallSetns           = uint32(bpfSyscallIdSC_SETNS)
	SyscallBPF             = uint32(bpfSyscallIdSC_BPF)
	SyscallPtrace          = uint32(bpfSyscallIdSC_PTRACE)
	SyscallProcessVMReadv  = uint32(bpfSyscallIdSC_PROCESS_VM_READV)
	SyscallProcessVMWritev = uint32(bpfSyscallIdSC_PROCESS_VM_WRITEV)
	SyscallPidfdOpen       = uint32(bpfSyscallIdSC_PIDFD_OPEN)
	SyscallPidfdSendSignal = uint32(bpfSyscallIdSC_PIDFD_SEND_SIGNAL)
	SyscallKill            = uint32(bpfSyscallIdSC_KILL)
	SyscallTkill           = uint32(bpfSyscallIdSC_TKILL)
	SyscallTgkill          = uint32(bpfSyscallIdSC_TGKILL)
	SyscallRtSigqueueinfo  = uint32(bpfSyscallIdSC_RT_SIGQUEUEINFO)
)

// Network records, as in enum net_flag and enum dns_direction.
const (
	NetAddrKernel = uint32(bpfNetFlagNF_ADDR_KERNEL)
	NetAddrUser   = uint32(bpfNetFlagNF_ADDR_USER)
	NetFastOpen   = uint32(bpfNetFlagNF_FASTOPEN)
	NetIOUring    = uint32(bpfNetFlagNF_IO_URING)
	NetFixedFile  = uint32(bpfNetFlagNF_FIXED_FILE)
	NetSize       = uint32(bpfNetFlagNF_SIZE)
	NetMsgIndex   = uint32(bpfNetFlagNF_MSG_INDEX)
	NetSock       = uint32(bpfNetFlagNF_SOCK)
	NetFixedNew   = uint32(bpfNetFlagNF_FIXED_NEW)
	NetNoResult   = uint32(bpfNetFlagNF_NO_RESULT)
	DNSEgress     = uint32(bpfDnsDirectionDNS_EGRESS)
	DNSIngress    = uint32(bpfDnsDirectionDNS_INGRESS)
	DNSBytes      = int(bpfLimitDNS_BYTES)
)

// Flags of the escape records, as in the enums of bpf/agenttrace.h.
const (
	MoveThreadgroup    = uint32(bpfMoveFlagMF_THREADGROUP)
	MoveTraced         = uint32(bpfMoveFlagMF_TRACED)
	MoveFromKnown      = uint32(bpfMoveFlagMF_FROM_KNOWN)
	MoveAttempt        = uint32(bpfMoveFlagMF_ATTEMPT)
	MovePathTruncated  = uint32(bpfMoveFlagMF_PATH_TRUNCATED)
	TargetFound        = uint32(bpfTargetFlagTF_FOUND)
	TargetTraced       = uint32(bpfTargetFlagTF_TRACED)
	TargetExeTruncated = uint32(bpfTargetFlagTF_EXE_TRUNCATED)
	TargetNoExe        = uint32(bpfTargetFlagTF_NO_EXE)
	AccessTainted      = uint32(bpfAccessFlagPA_TAINTED)
	AccessThreadGroup  = uint32(bpfAccessFlagPA_THREAD_GROUP)
	AccessBadPidfd     = uint32(bpfAccessFlagPA_BAD_PIDFD)

	FileOpPathFault        = uint32(bpfFileOpFlagFO_PATH_FAULT)
	FileOpPathTruncated    = uint32(bpfFileOpFlagFO_PATH_TRUNCATED)
	FileOpNewPathFault     = uint32(bpfFileOpFlagFO_NEW_PATH_FAULT)
	FileOpNewPathTruncated = uint32(bpfFileOpFlagFO_NEW_PATH_TRUNCATED)
	FileOpDir              = uint32(bpfFileOpFlagFO_DIR)
	FileOpDirTruncated     = uint32(bpfFileOpFlagFO_DIR_TRUNCATED)
	FileOpNewDir           = uint32(bpfFileOpFlagFO_NEW_DIR)
	FileOpNewDirTruncated  = uint32(bpfFileOpFlagFO_NEW_DIR_TRUNCATED)
	FileOpFile             = uint32(bpfFileOpFlagFO_FILE)
	FileOpFileDeleted      = uint32(bpfFileOpFlagFO_FILE_DELETED)
	MountSource            = uint32(bpfMountFlagMO_SOURCE)
	MountTarget            = uint32(bpfMountFlagMO_TARGET)
	MountFstype            = uint32(bpfMountFlagMO_FSTYPE)
	MountSourceFault       = uint32(bpfMountFlagMO_SOURCE_FAULT)
	MountTargetFault       = uint32(bpfMountFlagMO_TARGET_FAULT)
	MountFstypeFault       = uint32(bpfMountFlagMO_FSTYPE_FAULT)
	MountTruncated         = uint32(bpfMountFlagMO_TRUNCATED)
	MountOldUmount         = uint32(bpfMountFlagMO_OLD_UMOUNT)
	MountAttrFault         = uint32(bpfMountFlagMO_ATTR_FAULT)
	BPFMap                 = uint32(bpfBpfFlagBF_MAP)
	BPFProg                = uint32(bpfBpfFlagBF_PROG)
	BPFLink                = uint32(bpfBpfFlagBF_LINK)
)

// A resolved file's flags (file_info.flags), as in enum file_flag.
const (
	FilePresent       = uint32(bpfFileFlagFF_PRESENT)
	FilePathTruncated = uint32(bpfFileFlagFF_PATH_TRUNCATED)
	FileDeleted       = uint32(bpfFileFlagFF_DELETED)
	FileFileless      = uint32(bpfFileFlagFF_FILELESS)
	FileInNamespace   = uint32(bpfFileFlagFF_IN_NS)
	FileWriteDenied   = uint32(bpfFileFlagFF_WRITE_DENIED)
)

// An open record's own flags (open_event.oflags), as in enum open_flag.
const (
	OpenDir                = uint32(bpfOpenFlagOF_DIR)
	OpenFileSlot           = uint32(bpfOpenFlagOF_FILE_SLOT)
	OpenNoCompletion       = uint32(bpfOpenFlagOF_NO_COMPLETION)
	OpenSource             = uint32(bpfOpenFlagOF_SOURCE)
	OpenSourceExeTruncated = uint32(bpfOpenFlagOF_SOURCE_EXE_TRUNCATED)
	OpenUserDataShared     = uint32(bpfOpenFlagOF_USER_DATA_SHARED)
	OpenSocket             = uint32(bpfOpenFlagOF_SOCKET)
)

// cgroup records, as in enum cgroup_op and enum cgroup_flag.
const (
	CgroupMkdir         = uint32(bpfCgroupOpCGROUP_MKDIR)
	CgroupRmdir         = uint32(bpfCgroupOpCGROUP_RMDIR)
	CgroupMatched       = uint32(bpfCgroupFlagCF_MATCHED)
	CgroupStateFull     = uint32(bpfCgroupFlagCF_STATE_FULL)
	CgroupPathTruncated = uint32(bpfCgroupFlagCF_PATH_TRUNCATED)
)

// Event flags, as in enum event_flag.
const (
	FlagCompat        = uint32(bpfEventFlagEF_COMPAT)
	FlagPathTruncated = uint32(bpfEventFlagEF_PATH_TRUNCATED)
	FlagPathFault     = uint32(bpfEventFlagEF_PATH_FAULT)
	FlagExeTruncated  = uint32(bpfEventFlagEF_EXE_TRUNCATED)
	FlagArgsTruncated = uint32(bpfEventFlagEF_ARGS_TRUNCATED)
	FlagArgsFault     = uint32(bpfEventFlagEF_ARGS_FAULT)
	FlagArgvEmpty     = uint32(bpfEventFlagEF_ARGV_EMPTY)
	FlagAddrFault     = uint32(bpfEventFlagEF_ADDR_FAULT)
	FlagNoEnter       = uint32(bpfEventFlagEF_NO_ENTER)
	FlagX32           = uint32(bpfEventFlagEF_X32)
	FlagArgFault      = uint32(bpfEventFlagEF_ARG_FAULT)
	FlagPastNoReturn  = uint32(bpfEventFlagEF_PAST_NO_RETURN)
)

// Limits, as in enum limit of bpf/agenttrace.h.
const (
	PathBytes       = int(bpfLimitPATH_BYTES)
	MaxTargets      = uint32(bpfLimitMAX_TARGETS)
	MaxPatterns     = int(bpfLimitMAX_PATTERNS)
	MaxPatternDepth = int(bpfLimitMAX_PATTERN_DEPTH)
	GlobBytes       = int(bpfLimitGLOB_BYTES)
	FstypeBytes     = int(bpfLimitFSTYPE_BYTES)
	HandleBytes     = int(bpfLimitHANDLE_BYTES)
)

// Defaults and bounds of the knobs.
const (
	DefaultMaxArgBytes = 32 << 10
	MaxMaxArgBytes     = 1 << 20
	DefaultRingBytes   = 16 << 20
)

// ErrNotPrivileged means the kernel refused to load or attach for lack of
// privileges.
var ErrNotPrivileged = errors.New("not privileged: run as root or grant CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN")

// Config holds the knobs fixed at load time.
type Config struct {
	// MaxArgBytes caps the argv bytes captured per exec (default 32 KiB, at most 1 MiB).
	MaxArgBytes uint32
	// RingBytes is the ring buffer size: a power of two, at least a page.
	RingBytes uint32
	// WakeupBytes: the kernel wakes the reader when this much is pending;
	// below it the reader finds records by polling (see PollInterval).
	WakeupBytes uint64
	// TargetSlots is how many target cgroups can be set (1..MaxTargets,
	// default 1). Every matched syscall of an untraced process checks each
	// slot, so it is kept to what is used.
	TargetSlots uint32
	// Globs selects pattern targets (SetPatterns, PutCgroupState: the
	// daemon) instead of the target slots (SetTarget: run).
	Globs bool
	// PinDir, if set, pins the kernel side there (PinDir(state dir)), or
	// adopts the one pinned there by an earlier daemon: it outlives this
	// process unless Release is called (see pin.go).
	PinDir string
}

// PollInterval bounds how long a record can wait in the ring buffer when
// wakeups are batched: well under the 1 s latency promised for the log.
const PollInterval = 100 * time.Millisecond

// Hook names one attached program, for `agenttrace check` and the start record.
type Hook struct {
	Name    string // e.g. "tp_btf/sys_enter"
	Program string // program name in the object
	// Cgroup: the program is attached to the cgroup2 root as Attach (in
	// both modes: it decides with traced() like the tracepoints); otherwise
	// it is a tracing program.
	Cgroup bool
	Attach ebpf.AttachType
	// Optional hooks are left out on kernels without their tracepoint
	// (io_uring's, before 5.19, or without CONFIG_IO_URING): then nothing
	// can be done through io_uring either.
	Optional bool
}

// Hooks lists every hook agenttrace attaches, in attach order. The network
// hooks that fill in-flight syscall records (cgroup sock_addr, the send
// results) come before sys_exit and sys_enter: a syscall entered after
// sys_enter is attached then always finds them. Likewise io_uring's
// completion before its submission.
var Hooks = []Hook{
	{Name: "tp_btf/cgroup_mkdir", Program: "handle_cgroup_mkdir"},
	{Name: "tp_btf/cgroup_rmdir", Program: "handle_cgroup_rmdir"},
	{Name: "tp_btf/cgroup_attach_task", Program: "handle_cgroup_attach_task"},
	{Name: "tp_btf/sched_process_fork", Program: "handle_sched_process_fork"},
	{Name: "tp_btf/sched_process_exec", Program: "handle_sched_process_exec"},
	{Name: "tp_btf/sched_process_exit", Program: "handle_sched_process_exit"},
	{Name: "tp_btf/inet_sock_set_state", Program: "handle_inet_sock_set_state"},
	{Name: "tp_btf/io_uring_complete", Program: "handle_io_uring_complete", Optional: true},
	{Name: "tp_btf/io_uring_cqe_overflow", Program: "handle_io_uring_cqe_overflow", Optional: true},
	{Name: "tp_btf/io_uring_submit_req", Program: "handle_io_uring_submit_req", Optional: true},
	{Name: "cgroup/sock_create", Program: "handle_sock_create", Cgroup: true, Attach: ebpf.AttachCGroupInetSockCreate},
	{Name: "cgroup/connect4", Program: "handle_connect4", Cgroup: true, Attach: ebpf.AttachCGroupInet4Connect},
	{Name: "cgroup/connect6", Program: "handle_connect6", Cgroup: true, Attach: ebpf.AttachCGroupInet6Connect},
	{Name: "cgroup/connect_unix", Program: "handle_connect_unix", Cgroup: true, Attach: ebpf.AttachCgroupUnixConnect},
	{Name: "cgroup/sendmsg4", Program: "handle_sendmsg4", Cgroup: true, Attach: ebpf.AttachCGroupUDP4Sendmsg},
	{Name: "cgroup/sendmsg6", Program: "handle_sendmsg6", Cgroup: true, Attach: ebpf.AttachCGroupUDP6Sendmsg},
	{Name: "cgroup/sendmsg_unix", Program: "handle_sendmsg_unix", Cgroup: true, Attach: ebpf.AttachCgroupUnixSendmsg},
	{Name: "cgroup/bind4", Program: "handle_bind4", Cgroup: true, Attach: ebpf.AttachCGroupInet4Bind},
	{Name: "cgroup/bind6", Program: "handle_bind6", Cgroup: true, Attach: ebpf.AttachCGroupInet6Bind},
	{Name: "cgroup_skb/ingress", Program: "handle_dns_ingress", Cgroup: true, Attach: ebpf.AttachCGroupInetIngress},
	{Name: "cgroup_skb/egress", Program: "handle_dns_egress", Cgroup: true, Attach: ebpf.AttachCGroupInetEgress},
	{Name: "tp_btf/sock_send_length", Program: "handle_sock_send_length"},
	{Name: "tp_btf/sys_exit", Program: "handle_sys_exit"},
	{Name: "tp_btf/sys_enter", Program: "handle_sys_enter"},
}

// Tracer is the loaded and attached kernel side.
type Tracer struct {
	objs  bpfObjects
	links []link.Link
	ring  *ring
	cfg   Config
	cpus  int

	// Pinned kernel side (Config.PinDir).
	identity      [32]byte
	pinDir        string // this build's directory
	others        []string
	state         KernelState
	custody       *ebpf.Map
	custodyPinned bool
	progress      *Progress // adopted: the custody record found
	adoptFailure  string
	released      bool

	expect expectedState // what user space set in the maps it still writes; see CheckState
	// absent names the optional hooks this kernel has no tracepoint for.
	absent map[string]bool
}

func (c *Config) normalize() error {
	if c.MaxArgBytes == 0 {
		c.MaxArgBytes = DefaultMaxArgBytes
	}
	if c.MaxArgBytes > MaxMaxArgBytes {
		return fmt.Errorf("max arg bytes %d is over the limit of %d", c.MaxArgBytes, MaxMaxArgBytes)
	}
	if c.RingBytes == 0 {
		c.RingBytes = DefaultRingBytes
	}
	if bits.OnesCount32(c.RingBytes) != 1 || c.RingBytes < uint32(os.Getpagesize()) {
		return fmt.Errorf("ring size %d must be a power of two and at least a page", c.RingBytes)
	}
	// The largest record, an exec, must fit with room to spare.
	if uint64(c.RingBytes) < 4*(uint64(c.MaxArgBytes)+3*uint64(PathBytes)+1024) {
		return fmt.Errorf("ring size %d is too small for max arg bytes %d", c.RingBytes, c.MaxArgBytes)
	}
	if c.WakeupBytes == 0 {
		c.WakeupBytes = uint64(c.RingBytes / 8)
	}
	if c.TargetSlots == 0 {
		c.TargetSlots = 1
	}
	if c.TargetSlots > MaxTargets {
		return fmt.Errorf("%d target slots, at most %d", c.TargetSlots, MaxTargets)
	}
	return nil
}

// Load loads the eBPF object into the kernel with cfg; nothing is attached yet.
func Load(cfg Config) (*Tracer, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, classify(fmt.Errorf("removing memlock limit: %w", err))
	}
	spec, err := loadBpf()
	if err != nil {
		return nil, fmt.Errorf("parsing eBPF object: %w", err)
	}
	settings := map[string]any{
		"max_arg_bytes": cfg.MaxArgBytes,
		"wakeup_bytes":  cfg.WakeupBytes,
		"target_slots":  cfg.TargetSlots,
		"glob_targets":  boolU32(cfg.Globs),
		"host_mnt_ns":   hostMountNamespace(),
	}
	for name, value := range settings {
		if err := spec.Variables[name].Set(value); err != nil {
			return nil, fmt.Errorf("setting %s: %w", name, err)
		}
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("counting CPUs: %w", err)
	}
	t := &Tracer{cfg: cfg, cpus: cpus, absent: absentHooks(spec)}
	if cfg.PinDir != "" {
		t.identity = identityOf(settings, &cfg, cpus)
		if t.others, err = t.preparePins(cfg.PinDir); err != nil {
			return nil, err
		}
		adopted, err := t.adopt()
		if err != nil {
			return nil, err
		}
		if adopted {
			t.state = StateAdopted
			if t.ring, err = newRing(t.objs.Events, t.objs.Reader); err != nil {
				t.closeAdopted()
				return nil, err
			}
			if err := t.ring.skipTo(t.progress.RingPos); err != nil {
				t.Close()
				return nil, err
			}
			t.custodyPinned = true
			return t, nil
		}
		t.state = StateCreated
		if len(t.others) > 0 {
			t.state = StateReplaced
		}
	}
	heap := spec.Maps["heap"]
	heap.MaxEntries = uint32(cpus)
	// Fixed part, filename and exe, argv, and a path's worth of slack for
	// the per-argument reads of a failed exec.
	heap.ValueSize = uint32(unsafe.Sizeof(ExecEvent{})) + 3*uint32(PathBytes) + cfg.MaxArgBytes
	spec.Maps["events"].MaxEntries = cfg.RingBytes

	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("loading eBPF programs: %+v", verr)
		}
		return nil, classify(fmt.Errorf("loading eBPF programs: %w", err))
	}
	if t.ring, err = newRing(t.objs.Events, t.objs.Reader); err != nil {
		t.objs.Close()
		return nil, err
	}
	if t.pinDir != "" {
		if err := t.pinMaps(); err != nil {
			t.Close()
			removePins(t.pinDir)
			return nil, err
		}
	}
	return t, nil
}

// Adopted reports whether the kernel side is one an earlier daemon left
// pinned, already attached and recording.
func (t *Tracer) Adopted() bool { return t.state == StateAdopted }

// hostMountNamespace is the inode number of the host's mount namespace
// (init's, or agenttrace's own if init's cannot be read): a task in another
// has its files' paths as it sees them recorded too (path_in_ns).
func hostMountNamespace() uint32 {
	for _, p := range []string{"/proc/1/ns/mnt", "/proc/self/ns/mnt"} {
		if fi, err := os.Stat(p); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				return uint32(st.Ino)
			}
		}
	}
	return 0
}

// absentHooks finds the optional hooks whose tracepoint this kernel does
// not have, and turns their programs into ones that load (and are never
// attached), so that the rest of the object loads.
func absentHooks(spec *ebpf.CollectionSpec) map[string]bool {
	absent := map[string]bool{}
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		return absent // loading will say what is wrong
	}
	for _, h := range Hooks {
		if !h.Optional {
			continue
		}
		if _, err := kernel.AnyTypeByName("btf_trace_" + strings.TrimPrefix(h.Name, "tp_btf/")); err == nil {
			continue
		}
		absent[h.Name] = true
		p := spec.Programs[h.Program]
		p.AttachTo = "sched_process_fork"
		p.Instructions = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
	}
	return absent
}

// Absent names the optional hooks this kernel has no tracepoint for (not attached).
func (t *Tracer) Absent() []string {
	var out []string
	for _, h := range Hooks {
		if t.absent[h.Name] {
			out = append(out, h.Name)
		}
	}
	return out
}

// SetTarget makes the cgroup open at cgroupFD, whose id is cgroupID (and all
// its descendants, now and later) traced, in slot 0..MaxTargets-1.
func (t *Tracer) SetTarget(slot uint32, cgroupFD int, cgroupID uint64) error {
	if slot >= t.cfg.TargetSlots {
		return fmt.Errorf("target slot %d out of range", slot)
	}
	if err := t.objs.Targets.Put(slot, uint32(cgroupFD)); err != nil {
		return fmt.Errorf("setting target cgroup: %w", err)
	}
	if err := t.objs.TargetIds.Put(cgroupID, slot); err != nil {
		return fmt.Errorf("setting target cgroup id: %w", err)
	}
	return nil
}

// Freeze makes every map that user space does not change after start
// read-only from user space (bpf_map_freeze): the programs still write
// them, but no process, root included, can change them through bpf(2)
// any more. In run mode that is every map, once SetTarget has been called;
// the daemon keeps writing its target patterns and cgroup states (see
// Tamper for how they are watched). The ring buffer has no update to refuse.
func (t *Tracer) Freeze() error {
	if t.Adopted() {
		return nil // frozen by the daemon that created it
	}
	// The reader map is the reader's to write (see ring.wait); at worst a
	// write costs the hooks a wakeup, or the reader one (it also polls).
	writable := map[*ebpf.Map]bool{t.objs.Events: true, t.objs.Reader: true}
	if t.cfg.Globs {
		writable[t.objs.Patterns] = true
		writable[t.objs.CgroupStates] = true
		writable[t.objs.StatesGen] = true
	}
	// Every map of the object, so that a new one is frozen too.
	maps := reflect.ValueOf(&t.objs.bpfMaps).Elem()
	for i := range maps.NumField() {
		mp, _ := maps.Field(i).Interface().(*ebpf.Map)
		if mp == nil || writable[mp] {
			continue
		}
		if err := mp.Freeze(); err != nil {
			return fmt.Errorf("freezing map %s: %w", mp, err)
		}
	}
	return nil
}

// Members returns the processes the kernel knows as traced by tgid,
// wherever they are: created by a traced process, or taken over by one.
func (t *Tracer) Members() (map[uint32]Member, error) {
	out := map[uint32]Member{}
	var tgid uint32
	var m Member
	it := t.objs.Members.Iterate()
	for it.Next(&tgid, &m) {
		out[tgid] = m
	}
	return out, it.Err()
}

// MemberTainted marks a member taken over by a traced process (ptrace,
// process_vm_writev), as opposed to created by one.
const MemberTainted = uint32(bpfMarkFlagMARK_TAINTED)

func boolU32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// SetPatterns replaces the target patterns (Config.Globs): patterns[i] is
// pattern i's components, the first naming a child of the cgroup2 root.
// Unused slots are cleared. The kernel applies them to cgroups created from
// now on; existing cgroups get their state from PutCgroupState.
func (t *Tracer) SetPatterns(patterns [][]string) error {
	if len(patterns) > MaxPatterns {
		return fmt.Errorf("%d patterns, at most %d", len(patterns), MaxPatterns)
	}
	for i := range uint32(MaxPatterns) {
		var p bpfGlobPattern
		if int(i) < len(patterns) {
			comps := patterns[i]
			if len(comps) == 0 || len(comps) > MaxPatternDepth {
				return fmt.Errorf("pattern %d has %d components, 1 to %d are supported", i, len(comps), MaxPatternDepth)
			}
			p.Depth = uint32(len(comps))
			for j, c := range comps {
				if len(c) >= GlobBytes {
					return fmt.Errorf("pattern component %q is longer than %d bytes", c, GlobBytes-1)
				}
				p.Lengths[j] = uint8(len(c))
				for k := 0; k < len(c); k++ {
					p.Components[j][k] = int8(c[k])
				}
			}
		}
		t.expect.mu.Lock()
		err := t.objs.Patterns.Put(i, &p)
		if err == nil {
			t.expect.patterns[i] = p
		}
		t.expect.mu.Unlock()
		if err != nil {
			return fmt.Errorf("setting target pattern: %w", err)
		}
	}
	return nil
}

// PutCgroupState stores what the kernel needs to know of the cgroup id.
func (t *Tracer) PutCgroupState(id uint64, partial uint32, traced bool) error {
	st := bpfCgroupState{Partial: partial, Traced: boolU32(traced)}
	t.expect.mu.Lock()
	defer t.expect.mu.Unlock()
	if !traced {
		if err := t.untracingLocked(id); err != nil {
			return err
		}
	}
	if err := t.objs.CgroupStates.Put(id, &st); err != nil {
		return fmt.Errorf("storing cgroup %d state: %w", id, err)
	}
	t.expect.put(id, st)
	return t.bumpStatesLocked()
}

// DeleteCgroupState forgets the cgroup id; a missing entry is not an error.
func (t *Tracer) DeleteCgroupState(id uint64) error {
	t.expect.mu.Lock()
	defer t.expect.mu.Unlock()
	if err := t.untracingLocked(id); err != nil {
		return err
	}
	err := t.objs.CgroupStates.Delete(id)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("deleting cgroup %d state: %w", id, err)
	}
	delete(t.expect.states, id)
	return t.bumpStatesLocked()
}

// statesUntraced is bit 63 of states_gen (STATES_UNTRACED in common.h): set
// for good once a cgroup agenttrace traced is untraced. Its tasks carry
// marks (task storage) that keep them traced; until then the kernel skips
// the marks lookup for tasks in untraced cgroups.
const statesUntraced = 1 << 63

// untracingLocked sets statesUntraced before cgroup id stops being traced,
// if the kernel has it traced now. t.expect.mu is held.
func (t *Tracer) untracingLocked(id uint64) error {
	var old bpfCgroupState
	if t.expect.gen&statesUntraced != 0 || t.objs.CgroupStates.Lookup(id, &old) != nil || old.Traced == 0 {
		return nil
	}
	t.expect.gen |= statesUntraced
	return t.bumpStatesLocked()
}

// bumpStatesLocked invalidates the kernel's per-CPU cache of traced()
// decisions (tcache) after a change to cgroup_states. t.expect.mu is held.
func (t *Tracer) bumpStatesLocked() error {
	t.expect.gen++
	if err := t.objs.StatesGen.Put(uint32(0), t.expect.gen); err != nil {
		return fmt.Errorf("updating the cgroup state generation: %w", err)
	}
	return nil
}

// CgroupStates returns the kernel's cgroup states by cgroup id.
func (t *Tracer) CgroupStates() (map[uint64]CgroupState, error) {
	out := map[uint64]CgroupState{}
	var id uint64
	var st CgroupState
	it := t.objs.CgroupStates.Iterate()
	for it.Next(&id, &st) {
		out[id] = st
	}
	return out, it.Err()
}

// Attach attaches every hook (pinning each link if the kernel side is
// pinned). On error everything attached so far is detached. An adopted
// kernel side is attached already.
func (t *Tracer) Attach() error {
	if t.Adopted() {
		return nil
	}
	progs := t.programs()
	root, err := cgroup.Mount()
	if err != nil {
		return err
	}
	// Exit before enter: a syscall entered after sys_enter is attached
	// then always finds its exit hook.
	for _, h := range Hooks {
		if t.absent[h.Name] {
			continue
		}
		l, err := attach(h, progs[h.Program], root)
		if err != nil {
			t.detach()
			return classify(fmt.Errorf("attaching %s: %w", h.Name, err))
		}
		t.links = append(t.links, l)
		if t.pinDir != "" {
			if err := l.Pin(filepath.Join(t.pinDir, "link_"+h.Program)); err != nil {
				t.detach()
				return fmt.Errorf("pinning %s: %w", h.Name, err)
			}
		}
	}
	return nil
}

// attach attaches one hook: a tracing program, or a cgroup program at the
// cgroup2 root (a link, so it adds to whatever else is attached there and
// goes away with agenttrace).
func attach(h Hook, prog *ebpf.Program, root string) (link.Link, error) {
	if !h.Cgroup {
		return link.AttachTracing(link.TracingOptions{Program: prog})
	}
	return link.AttachCgroup(link.CgroupOptions{Path: root, Attach: h.Attach, Program: prog})
}

func (t *Tracer) programs() map[string]*ebpf.Program {
	return map[string]*ebpf.Program{
		"handle_cgroup_mkdir":          t.objs.HandleCgroupMkdir,
		"handle_cgroup_rmdir":          t.objs.HandleCgroupRmdir,
		"handle_cgroup_attach_task":    t.objs.HandleCgroupAttachTask,
		"handle_sched_process_fork":    t.objs.HandleSchedProcessFork,
		"handle_sched_process_exec":    t.objs.HandleSchedProcessExec,
		"handle_sched_process_exit":    t.objs.HandleSchedProcessExit,
		"handle_inet_sock_set_state":   t.objs.HandleInetSockSetState,
		"handle_io_uring_complete":     t.objs.HandleIoUringComplete,
		"handle_io_uring_cqe_overflow": t.objs.HandleIoUringCqeOverflow,
		"handle_io_uring_submit_req":   t.objs.HandleIoUringSubmitReq,
		"handle_sock_create":           t.objs.HandleSockCreate,
		"handle_connect4":              t.objs.HandleConnect4,
		"handle_connect6":              t.objs.HandleConnect6,
		"handle_connect_unix":          t.objs.HandleConnectUnix,
		"handle_sendmsg4":              t.objs.HandleSendmsg4,
		"handle_sendmsg6":              t.objs.HandleSendmsg6,
		"handle_sendmsg_unix":          t.objs.HandleSendmsgUnix,
		"handle_bind4":                 t.objs.HandleBind4,
		"handle_bind6":                 t.objs.HandleBind6,
		"handle_dns_ingress":           t.objs.HandleDnsIngress,
		"handle_dns_egress":            t.objs.HandleDnsEgress,
		"handle_sock_send_length":      t.objs.HandleSockSendLength,
		"handle_sys_exit":              t.objs.HandleSysExit,
		"handle_sys_enter":             t.objs.HandleSysEnter,
	}
}

// ProgramTags returns the kernel tag of each loaded program by hook name,
// so a record can say exactly which code produced the log.
func (t *Tracer) ProgramTags() map[string]string {
	tags := make(map[string]string, len(Hooks))
	progs := t.programs()
	for _, h := range Hooks {
		if t.absent[h.Name] {
			continue
		}
		if info, err := progs[h.Program].Info(); err == nil {
			tags[h.Name] = info.Tag
		}
	}
	return tags
}

// ProgramStats returns each program's run count and total run time by hook
// name. The kernel keeps them only while statistics are enabled
// (ebpf.EnableStats, or the kernel.bpf_stats_enabled sysctl).
func (t *Tracer) ProgramStats() map[string]ebpf.ProgramStats {
	stats := make(map[string]ebpf.ProgramStats, len(Hooks))
	progs := t.programs()
	for _, h := range Hooks {
		if t.absent[h.Name] {
			continue
		}
		if st, err := progs[h.Program].Stats(); err == nil {
			stats[h.Name] = *st
		}
	}
	return stats
}

// ReadInto reads the next record, waiting at most until the deadline set
// with SetDeadline. It returns os.ErrDeadlineExceeded when the ring is empty
// at the deadline and ringbuf.ErrFlushed after Flush once the ring is drained.
//
// What it reads stays the kernel's until Commit: see ring.
func (t *Tracer) ReadInto(rec *ringbuf.Record) error {
	return t.ring.readInto(rec)
}

// SetDeadline bounds how long ReadInto waits for a record (zero: forever).
// Only ReadInto's goroutine may call it.
func (t *Tracer) SetDeadline(deadline time.Time) {
	t.ring.setDeadline(deadline)
}

// Flush makes a blocked or later ReadInto return everything already in the
// ring, then ringbuf.ErrFlushed.
func (t *Tracer) Flush() {
	t.ring.flush()
}

// Pending reports the bytes in the ring buffer not read yet.
func (t *Tracer) Pending() int {
	return t.ring.pending()
}

// Used reports the bytes of the ring buffer the kernel cannot write: not
// read, or read and not committed.
func (t *Tracer) Used() int {
	return t.ring.used()
}

// PerCPUCounters returns the kernel's counters by CPU, then by record kind.
// dst is reused when it has the right length.
func (t *Tracer) PerCPUCounters(dst [][KindMax]KindCounters) ([][KindMax]KindCounters, error) {
	var perCPU []KindCounters
	for kind := uint32(1); kind < KindMax; kind++ {
		if err := t.objs.Counters.Lookup(kind, &perCPU); err != nil {
			return dst, fmt.Errorf("reading counters: %w", err)
		}
		if len(dst) != len(perCPU) {
			dst = make([][KindMax]KindCounters, len(perCPU))
		}
		for cpu, c := range perCPU {
			dst[cpu][kind] = c
		}
	}
	return dst, nil
}

// Counters returns the kernel's per-kind counters summed over CPUs.
func (t *Tracer) Counters() ([KindMax]KindCounters, error) {
	var out [KindMax]KindCounters
	perCPU, err := t.PerCPUCounters(nil)
	for _, cpu := range perCPU {
		for kind, c := range cpu {
			out[kind].Matched += c.Matched
			out[kind].LostRingbuf += c.LostRingbuf
			out[kind].LostInflight += c.LostInflight
		}
	}
	return out, err
}

// RingSize is the ring buffer's size in bytes.
func (t *Tracer) RingSize() int {
	return int(t.cfg.RingBytes)
}

// Detach removes the hooks, unless they are pinned (Release first);
// records already in the ring stay readable.
func (t *Tracer) Detach() {
	t.detach()
}

func (t *Tracer) detach() {
	for i := len(t.links) - 1; i >= 0; i-- {
		t.links[i].Close()
	}
	t.links = nil
}

// Close detaches (unless pinned), closes the reader and unloads, in
// reverse order of setup. A pinned kernel side stays, recording.
func (t *Tracer) Close() error {
	t.detach()
	if t.ring != nil {
		t.ring.close()
	}
	if t.custody != nil {
		t.custody.Close()
	}
	return t.objs.Close()
}

// classify turns permission failures into ErrNotPrivileged so the CLI can
// say what to do.
func classify(err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w (%v)", ErrNotPrivileged, err)
	}
	return err
}
