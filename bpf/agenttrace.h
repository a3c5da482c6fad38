/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The records that cross the ring buffer from the kernel to agenttrace.
 *
 * This header is the single definition of the wire format: the Go types in
 * internal/loader are generated from it by bpf2go (-type), and a Go test
 * asserts their sizes. Every struct is naturally aligned with explicit
 * padding (compiled with -Wpadded), never packed.
 */
#ifndef AGENTTRACE_H
#define AGENTTRACE_H

#define TASK_COMM_LEN 16

/*
 * Limits that user space must agree on. An enum, not #defines, so that
 * bpf2go generates them for Go (-type limit): internal/loader uses the
 * generated values, and TestLimitsMatchHeader checks the copies that
 * packages which must not link the eBPF object keep (internal/cgroup).
 */
enum limit {
	/* PATH_MAX including the terminating NUL, as the kernel uses it. */
	PATH_BYTES = 4096,
	/* NAME_MAX + 1: the longest path component and a NUL. */
	NAME_BYTES = 256,
	/* sizeof(struct sockaddr_storage). */
	SOCKADDR_BYTES = 128,
	/* Number of slots in the targets cgroup array. */
	MAX_TARGETS = 8,
	/*
	 * Target patterns (the daemon): globs matched against cgroup names at
	 * mkdir. At most MAX_PATTERNS patterns of at most MAX_PATTERN_DEPTH
	 * components, each a NUL-terminated glob of at most GLOB_BYTES - 1
	 * bytes.
	 */
	MAX_PATTERNS = 16,
	MAX_PATTERN_DEPTH = 8,
	GLOB_BYTES = 64,
	/* A socket's name as the kernel holds it: up to sizeof(struct sockaddr_un) = 110, padded. */
	SOCK_NAME_BYTES = 112,
	/* DNS payload bytes copied from a packet. */
	DNS_BYTES = 512,
	/* A file system type name (mount, fsopen) or an fsconfig key, with its NUL. */
	FSTYPE_BYTES = 256,
	/* MAX_HANDLE_SZ: the largest file handle open_by_handle_at accepts. */
	HANDLE_BYTES = 128,
};

enum record_kind {
	KIND_EXEC = 1,
	KIND_OPEN = 2,
	KIND_CONNECT = 3,
	KIND_FORK = 4,
	KIND_EXIT = 5,
	KIND_CGROUP = 6,
	KIND_SEND = 7,
	KIND_BIND = 8,
	KIND_LISTEN = 9,
	KIND_ACCEPT = 10,
	KIND_SOCK_STATE = 11,
	KIND_DNS = 12,
	KIND_IO_URING = 13,
	KIND_CGROUP_MOVE = 14,
	KIND_PROC_ACCESS = 15,
	KIND_FILE_OP = 16,
	KIND_MOUNT = 17,
	KIND_NAMESPACE = 18,
	KIND_BPF = 19,
	KIND_MAX = 20,
};

/*
 * Syscalls as numbered on the wire: stable across architectures and ABIs
 * (the raw syscall number differs between x86_64 and i386).
 */
enum syscall_id {
	SC_UNKNOWN = 0,
	SC_EXECVE = 1,
	SC_EXECVEAT = 2,
	SC_OPEN = 3,
	SC_CREAT = 4,
	SC_OPENAT = 5,
	SC_OPENAT2 = 6,
	SC_CONNECT = 7,
	SC_SOCKETCALL = 8,
	SC_SENDTO = 40,
	SC_SENDMSG = 41,
	SC_SENDMMSG = 42,
	SC_BIND = 43,
	SC_LISTEN = 44,
	SC_ACCEPT = 45,
	SC_ACCEPT4 = 46,
	SC_IO_URING_CONNECT = 47,
	SC_IO_URING_SEND = 48,
	SC_IO_URING_SENDMSG = 49,
	SC_IO_URING_SEND_ZC = 50,
	SC_IO_URING_SENDMSG_ZC = 51,
	SC_IO_URING_ACCEPT = 52,
	SC_IO_URING_BIND = 53,
	SC_IO_URING_LISTEN = 54,
	SC_OPEN_BY_HANDLE_AT = 20,
	SC_OPEN_TREE = 21,
	SC_PIDFD_GETFD = 22,
	SC_MEMFD_CREATE = 23,
	SC_IO_URING_SETUP = 24,
	SC_IO_URING_OPENAT = 25,
	SC_IO_URING_OPENAT2 = 26,
	SC_OPEN_TREE_ATTR = 27,
	/* file_op */
	SC_RENAME = 60,
	SC_RENAMEAT = 61,
	SC_RENAMEAT2 = 62,
	SC_UNLINK = 63,
	SC_UNLINKAT = 64,
	SC_RMDIR = 65,
	SC_LINK = 66,
	SC_LINKAT = 67,
	SC_SYMLINK = 68,
	SC_SYMLINKAT = 69,
	SC_CHMOD = 70,
	SC_FCHMOD = 71,
	SC_FCHMODAT = 72,
	SC_FCHMODAT2 = 73,
	SC_CHOWN = 74,
	SC_FCHOWN = 75,
	SC_LCHOWN = 76,
	SC_FCHOWNAT = 77,
	SC_TRUNCATE = 78,
	SC_FTRUNCATE = 79,
	/* mount */
	SC_MOUNT = 80,
	SC_UMOUNT2 = 81,
	SC_MOVE_MOUNT = 82,
	SC_FSOPEN = 83,
	SC_FSCONFIG = 84,
	SC_FSMOUNT = 85,
	SC_MOUNT_SETATTR = 86,
	SC_PIVOT_ROOT = 87,
	/* namespace, bpf */
	SC_UNSHARE = 88,
	SC_SETNS = 89,
	SC_BPF = 90,
	/* proc_access */
	SC_PTRACE = 91,
	SC_PROCESS_VM_READV = 92,
	SC_PROCESS_VM_WRITEV = 93,
	SC_PIDFD_OPEN = 94,
	SC_PIDFD_SEND_SIGNAL = 95,
	SC_KILL = 96,
	SC_TKILL = 97,
	SC_TGKILL = 98,
	/* also rt_tgsigqueueinfo, with PA_THREAD_GROUP */
	SC_RT_SIGQUEUEINFO = 99,
};

enum event_flag {
	/* The syscall was made through the i386 ABI (int 0x80, sysenter). */
	EF_COMPAT = 1 << 0,
	/* The path did not fit PATH_BYTES; the kernel saw a longer name. */
	EF_PATH_TRUNCATED = 1 << 1,
	/* The path could not be read from the caller's memory. */
	EF_PATH_FAULT = 1 << 2,
	/* The executable's path has more components than the walk follows. */
	EF_EXE_TRUNCATED = 1 << 3,
	/* argv was larger than max_arg_bytes; args_size has the full size. */
	EF_ARGS_TRUNCATED = 1 << 4,
	/* argv could not be read. */
	EF_ARGS_FAULT = 1 << 5,
	/* The caller passed an empty argv (the kernel substitutes {""}). */
	EF_ARGV_EMPTY = 1 << 6,
	/* The socket address could not be read from the caller's memory. */
	EF_ADDR_FAULT = 1 << 7,
	/* An exec seen at sched_process_exec without its syscall entry. */
	EF_NO_ENTER = 1 << 8,
	/* The syscall was made through the x32 ABI (CONFIG_X86_X32_ABI). */
	EF_X32 = 1 << 9,
	/*
	 * An argument other than the path could not be read at entry:
	 * openat2's open_how, open_by_handle_at's file_handle, io_uring_setup's
	 * io_uring_params. It is never read again later.
	 */
	EF_ARG_FAULT = 1 << 10,
	/*
	 * A failed exec that had passed the point of no return: the kernel had
	 * already replaced the caller's memory (and, further on, its comm,
	 * exec_id and credentials) when the exec failed, e.g. a fatal signal
	 * that arrived while the new image was being loaded, or an ELF file
	 * the kernel rejects only then. The program that called exec is gone,
	 * the kernel kills the process, and its argv is not recorded: it was in
	 * the memory that is gone (EF_ARGS_FAULT is set too). The record's exe
	 * is the file the kernel was executing.
	 */
	EF_PAST_NO_RETURN = 1 << 11,
};

enum file_flag {
	/* The record carries this file. */
	FF_PRESENT = 1 << 0,
	/* The path walk stopped before the root; the path is its last components. */
	FF_PATH_TRUNCATED = 1 << 1,
	/* Unlinked: the dentry is unhashed or the inode has no links left. */
	FF_DELETED = 1 << 2,
	/*
	 * On a kernel-internal mount (memfd, pipe, socket, anon inode, pidfd):
	 * no path in any mount namespace; the path is the file's own name.
	 */
	FF_FILELESS = 1 << 3,
	/*
	 * The task's root is not the root of the host's mount namespace (chroot,
	 * another mount namespace): ns_len says where the path as the task sees
	 * it starts.
	 */
	FF_IN_NS = 1 << 4,
	/*
	 * exec: the file was protected from writes (i_writecount < 0) when it
	 * was executed: its content cannot change while a process runs it.
	 */
	FF_WRITE_DENIED = 1 << 5,
};

/*
 * A file the kernel resolved from a struct file (or a struct path: the
 * working directory, the root), never from user memory. Its path, walked
 * through dentries and mounts, follows the record's fixed part.
 */
struct file_info {
	__u64 ino;
	__u64 ctime;         /* the inode's change time, ns since the epoch */
	__u32 dev;           /* the super block's dev_t: major << 20 | minor */
	__u32 mode;          /* i_mode: type and permission bits */
	__u32 uid;
	__u32 gid;
	__u32 mnt_id;        /* the mount's id, as in /proc/PID/mountinfo */
	__u32 magic;         /* the file system's magic (statfs f_type) */
	__u32 flags;         /* enum file_flag */
	__u32 path_len;      /* bytes, without NUL */
	/*
	 * FF_IN_NS: the path as the task sees it is the last ns_len bytes of
	 * the path ("/" when 0); absent when the walk never met the task's root.
	 */
	__u32 ns_len;
	__u32 ns_seen;       /* nonzero: the walk met the task's root */
};

/* Who did it, and when: the first member of every record. */
struct event_header {
	__u64 ktime;             /* CLOCK_BOOTTIME ns at the syscall entry or event */
	__u64 kseq;              /* per CPU and kind: 1, 2, 3... gaps mean loss */
	__u64 cgroup_id;         /* cgroup v2 id of the task */
	__u64 start_time;        /* process start, boot-time ns (group leader) */
	__u64 exec_seq;          /* task->self_exec_id: bumps at every exec */
	__u64 parent_start_time; /* the creating process, as at fork */
	__u64 parent_exec_seq;
	__u32 kind;              /* enum record_kind */
	__u32 cpu;
	__u32 pid;               /* tgid */
	__u32 tid;
	__u32 ppid;              /* current real parent */
	__u32 parent_pid;        /* the creating process, as at fork */
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 egid;
	__u32 auid;              /* loginuid; 4294967295 when unset */
	__u32 flags;             /* enum event_flag */
	char comm[TASK_COMM_LEN];
};

/*
 * exec: followed by three regions at fixed offsets:
 * filename[PATH_BYTES] (as passed), exe[PATH_BYTES] (the executed file's
 * path, exe.path_len bytes), then args_len bytes of argv (NUL-separated, as
 * the new program sees them).
 */
struct exec_event {
	struct event_header hdr;
	__s64 ret;
	struct file_info exe; /* success: the file the kernel executed */
	__s32 dirfd;
	__u32 at_flags;
	__u32 syscall;       /* enum syscall_id */
	__u32 filename_len;  /* bytes, without NUL */
	__u32 argc;
	__u32 args_len;      /* bytes of argv captured */
	__u32 args_size;     /* bytes of argv in full */
	__u32 _pad;
};

enum open_flag {
	/* file is the directory a failed relative open was resolved against. */
	OF_DIR = 1 << 0,
	/* io_uring: opened into the fixed-file slot in arg, not a descriptor. */
	OF_FILE_SLOT = 1 << 1,
	/*
	 * io_uring with IOSQE_CQE_SKIP_SUCCESS: recorded at submission, as the
	 * kernel posts no completion for a success; there is no result.
	 */
	OF_NO_COMPLETION = 1 << 2,
	/* pidfd_getfd: src_* and the source's exe (in names) are known. */
	OF_SOURCE = 1 << 3,
	/* pidfd_getfd: the source's exe path is its last components. */
	OF_SOURCE_EXE_TRUNCATED = 1 << 4,
	/*
	 * io_uring: the completion overflowed the ring and another pending open
	 * of the same ring had the same user_data: the request, and so path and
	 * flags, may be the other one's (file and ret are this completion's).
	 */
	OF_USER_DATA_SHARED = 1 << 5,
	/*
	 * pidfd_getfd of a socket: a struct sock_info follows the file's path
	 * and its NUL in names, at the next multiple of 8.
	 */
	OF_SOCKET = 1 << 6,
};

/*
 * open and every other way to get a file: names holds path_len bytes of the
 * syscall's argument and a NUL (the path as passed; open_by_handle_at: the
 * handle's bytes; memfd_create: the name; pidfd_getfd: the source's exe),
 * then file.path_len bytes of the file's path and a NUL (and, with
 * OF_SOCKET, a struct sock_info at the next multiple of 8). Only that much
 * is sent; the last NAME_BYTES are room the path walk may write past a
 * path's end into, never sent.
 */
struct open_event {
	struct event_header hdr;
	__s64 ret;
	__u64 flags;         /* open flags; open_tree, memfd_create: theirs */
	__u64 mode;
	__u64 resolve;       /* openat2 only */
	__u64 user_data;     /* io_uring */
	__u64 src_start_time; /* pidfd_getfd: the source process */
	__u64 src_exec_seq;
	struct file_info file; /* the opened file, or (OF_DIR) the directory */
	__s32 dirfd;         /* open_by_handle_at: mount_fd; pidfd_getfd: pidfd */
	__u32 syscall;
	__u32 path_len;      /* bytes of the argument in names, without NUL */
	__s32 arg;           /* pidfd_getfd: target fd; open_by_handle_at: handle type; io_uring: fixed slot */
	__u32 src_pid;
	__u32 oflags;        /* enum open_flag */
	__u32 sqe_flags;     /* io_uring: IOSQE_* */
	__u32 _pad;
	char names[2 * PATH_BYTES + NAME_BYTES];
};

/* io_uring_setup: a ring was created (its opens are open records). */
struct io_uring_event {
	struct event_header hdr;
	__s64 ret;
	__u32 syscall;
	__u32 entries;
	__u32 setup_flags;   /* io_uring_params.flags as passed (IORING_SETUP_*) */
	__u32 cq_entries;    /* io_uring_params.cq_entries as passed (IORING_SETUP_CQSIZE) */
};

/* A socket address as the kernel holds it: a sockaddr_in, sockaddr_in6 or sockaddr_un. */
struct sock_name {
	__u32 len;           /* bytes of name; 0: none */
	__u8 name[SOCK_NAME_BYTES];
};

/* A socket, read from the kernel's struct sock (never from user memory). */
struct sock_info {
	__u64 cookie;        /* 0: the kernel has not assigned one yet */
	__u16 family;
	__u16 type;
	__u16 protocol;
	__u16 state;         /* sk_state: TCP_* numbers, also for UDP and unix */
	struct sock_name local;
	struct sock_name remote;
};

enum net_flag {
	/* addr is the kernel's own copy (a cgroup sock_addr hook, or io_uring's request). */
	NF_ADDR_KERNEL = 1 << 0,
	/* addr was read once from the caller's memory at syscall entry. */
	NF_ADDR_USER = 1 << 1,
	/* A send that connected the socket (TCP Fast Open). */
	NF_FASTOPEN = 1 << 2,
	/* Made through io_uring: user_data and sqe_flags are set. */
	NF_IO_URING = 1 << 3,
	/* fd is a registered (fixed) file slot of the ring, not a descriptor. */
	NF_FIXED_FILE = 1 << 4,
	/* size is the length the caller passed (sendto, io_uring send). */
	NF_SIZE = 1 << 5,
	/* msg_index is set (sendmmsg). */
	NF_MSG_INDEX = 1 << 6,
	/* sock holds the socket (the fd resolved to one). */
	NF_SOCK = 1 << 7,
	/* The accepted socket went into a fixed file slot (ret is the slot). */
	NF_FIXED_NEW = 1 << 8,
	/*
	 * io_uring with IOSQE_CQE_SKIP_SUCCESS: recorded at submission, since a
	 * success posts no completion; there is no result.
	 */
	NF_NO_RESULT = 1 << 9,
};

/*
 * The socket records: connect, send (one per message that names a
 * destination), bind, listen and accept, from a syscall or io_uring. hdr.kind
 * says which; members a kind does not use are zero.
 */
struct net_event {
	struct event_header hdr;
	__s64 ret;
	__u64 user_data;     /* io_uring */
	__u64 size;          /* send: bytes passed (NF_SIZE) */
	__s32 fd;
	__u32 syscall;
	__u32 flags;         /* send: MSG_*; accept4: SOCK_* */
	__s32 backlog;       /* listen */
	__u32 msg_index;     /* sendmmsg (NF_MSG_INDEX) */
	__u32 addrlen;       /* as passed by the caller */
	__u32 addr_len;      /* bytes of addr captured */
	__u32 nflags;        /* enum net_flag */
	__u32 sqe_flags;     /* io_uring: IOSQE_* */
	__u32 _pad;
	__u8 addr[SOCKADDR_BYTES]; /* connect, bind: the address; send: the destination */
	struct sock_info sock;     /* accept: the new socket */
};

/*
 * sock_state: a TCP socket whose connect was recorded left SYN_SENT
 * (tp_btf/inet_sock_set_state). hdr is the process that connected, as of
 * the connect: the state change runs in softirq, on behalf of no process.
 */
struct sock_state_event {
	struct event_header hdr;
	__u32 oldstate;
	__u32 newstate;
	__s32 error;         /* sk_err at the change (ECONNREFUSED...), 0 for none */
	__u32 _pad;
	struct sock_info sock;
};

enum dns_direction {
	DNS_EGRESS = 1,
	DNS_INGRESS = 2,
};

/*
 * dns: a DNS packet of a traced socket (cgroup_skb egress/ingress), its
 * payload after the UDP or TCP header copied from the kernel's buffer.
 * hdr is the process that owns the socket, as of its last recorded use.
 */
struct dns_event {
	struct event_header hdr;
	__u64 cookie;
	__u32 direction;     /* enum dns_direction */
	__u32 protocol;      /* IPPROTO_UDP or IPPROTO_TCP */
	__u32 payload_len;   /* payload bytes in the packet */
	__u32 cap_len;       /* bytes of payload captured */
	__u16 family;        /* AF_INET or AF_INET6 */
	__u16 sport;         /* host order */
	__u16 dport;
	__u16 _pad;
	__u8 saddr[16];      /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u8 payload[DNS_BYTES];
};

/* fork: hdr is the parent; a new process, never a thread. */
struct fork_event {
	struct event_header hdr;
	__u64 child_start_time;
	__u64 child_cgroup_id; /* the child's cgroup when not the parent's (clone3 CLONE_INTO_CGROUP); else 0 */
	__u32 child_pid;
	__u32 _pad;
};

/* exit: the last thread of a process is gone. */
struct exit_event {
	struct event_header hdr;
	__u32 exit_code;     /* wait(2) status: code << 8 | signal */
	__u32 _pad;
};

enum cgroup_op {
	CGROUP_MKDIR = 1,
	CGROUP_RMDIR = 2,
};

enum cgroup_flag {
	/* The new cgroup's own path matched a pattern (not only its parent). */
	CF_MATCHED = 1 << 0,
	/* The state map was full: the cgroup could not be tracked. */
	CF_STATE_FULL = 1 << 1,
	/* The path did not fit PATH_BYTES. */
	CF_PATH_TRUNCATED = 1 << 2,
};

/*
 * cgroup: a traced cgroup was created or removed (the daemon's targets).
 * hdr is the task that made the mkdir/rmdir, which may be untraced.
 */
struct cgroup_event {
	struct event_header hdr;
	__u64 id;            /* the cgroup's id (its directory's inode number) */
	__u64 parent_id;
	__u32 op;            /* enum cgroup_op */
	__u32 level;         /* depth below the root: 1 for a child of the root */
	__u32 patterns;      /* bit i: pattern i matches the cgroup itself */
	__u32 cflags;        /* enum cgroup_flag */
	__u32 path_len;      /* bytes, without NUL */
	__u32 _pad;
	char path[PATH_BYTES]; /* relative to the cgroup2 root, with a leading '/' */
};

/* One target pattern: components[0] names a child of the cgroup2 root. */
struct glob_pattern {
	__u32 depth;         /* components in use; 0: the slot is empty */
	__u32 _pad;
	__u8 lengths[MAX_PATTERN_DEPTH]; /* of each component, without NUL */
	char components[MAX_PATTERN_DEPTH][GLOB_BYTES];
};

/*
 * What the kernel knows of a cgroup below the cgroup2 root. Only cgroups
 * that are traced or could still lead to a match have an entry.
 */
struct cgroup_state {
	__u32 partial;       /* bit i: the path so far matches pattern i's first `level` components */
	__u32 traced;        /* nonzero: this cgroup and its descendants are traced */
};

enum move_flag {
	/* The whole process moved (cgroup.procs), not one thread (cgroup.threads). */
	MF_THREADGROUP = 1 << 0,
	/* The moved process is traced after the move. */
	MF_TRACED = 1 << 1,
	/* from_id is known: the process was traced before the move. */
	MF_FROM_KNOWN = 1 << 2,
	/* Not a move: a clone3(CLONE_INTO_CGROUP) the kernel refused (ret). */
	MF_ATTEMPT = 1 << 3,
	/* The destination's path did not fit PATH_BYTES. */
	MF_PATH_TRUNCATED = 1 << 4,
};

/*
 * cgroup_move: a traced process was moved to another cgroup, or a traced
 * process moved one (tp_btf/cgroup_attach_task, after the move). hdr is the
 * mover. With MF_ATTEMPT: a traced process's clone3 into the cgroup to_id
 * failed with ret (no process was created, nothing moved).
 */
struct cgroup_move_event {
	struct event_header hdr;
	__s64 ret;
	__u64 start_time;    /* the moved process: its group leader's start */
	__u64 exec_seq;
	__u64 from_id;       /* with MF_FROM_KNOWN */
	__u64 to_id;
	__u32 pid;           /* tgid of the moved task */
	__u32 tid;
	__u32 mflags;        /* enum move_flag */
	__u32 path_len;      /* bytes, without NUL */
	char path[PATH_BYTES]; /* to_id's path below the cgroup2 root, as the kernel wrote it */
};

enum target_flag {
	/* The kernel found the target: the other members are valid. */
	TF_FOUND = 1 << 0,
	/* The target was traced (cgroup or inherited) before this access. */
	TF_TRACED = 1 << 1,
	/* The target's executable path has more components than the walk follows. */
	TF_EXE_TRUNCATED = 1 << 2,
	/* The target has no executable (a kernel thread, or its mm is gone). */
	TF_NO_EXE = 1 << 3,
};

/* A process another one acts on, read in the kernel at syscall entry. */
struct target_info {
	__u64 start_time;    /* its group leader's start, boot-time ns */
	__u64 exec_seq;      /* its self_exec_id */
	__u32 pid;           /* tgid, as the host sees it */
	__u32 tid;
	__u32 tflags;        /* enum target_flag */
	__u32 exe_len;       /* bytes of exe, without NUL */
	char comm[TASK_COMM_LEN];
};

enum access_flag {
	/* The target was not traced and is from now on (ptrace, process_vm_writev). */
	PA_TAINTED = 1 << 0,
	/* SC_RT_SIGQUEUEINFO: it was rt_tgsigqueueinfo (tid is set). */
	PA_THREAD_GROUP = 1 << 1,
	/* The pidfd of pidfd_send_signal is not a pidfd (or /proc/PID directory). */
	PA_BAD_PIDFD = 1 << 2,
};

/*
 * proc_access: a traced process acted on another one: ptrace requests that
 * change the target, process_vm_readv/writev, pidfd_open; and signals
 * (kill, tkill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo,
 * pidfd_send_signal) to a process outside the trace.
 */
struct proc_access_event {
	struct event_header hdr;
	__s64 ret;
	__u64 addr;          /* ptrace */
	__u64 data;          /* ptrace */
	__u32 syscall;       /* enum syscall_id */
	__u32 request;       /* ptrace request; pidfd_open flags */
	__s32 pid;           /* as passed (the caller's pid namespace) */
	__s32 tid;           /* tgkill, rt_tgsigqueueinfo: as passed */
	__s32 pidfd;         /* pidfd_send_signal */
	__u32 sig;           /* signals */
	__u32 aflags;        /* enum access_flag */
	__u32 _pad;
	struct target_info target;
	char exe[PATH_BYTES]; /* the target's executable */
};

enum file_op_flag {
	FO_PATH_FAULT = 1 << 0,         /* path could not be read */
	FO_PATH_TRUNCATED = 1 << 1,
	FO_NEW_PATH_FAULT = 1 << 2,
	FO_NEW_PATH_TRUNCATED = 1 << 3,
	FO_DIR = 1 << 4,                /* dir holds the directory path was resolved against */
	FO_DIR_TRUNCATED = 1 << 5,
	FO_NEW_DIR = 1 << 6,            /* new_dir holds new_path's directory */
	FO_NEW_DIR_TRUNCATED = 1 << 7,
	FO_FILE = 1 << 8,               /* fd-based: the file_* members and dir (its path) describe fd's file */
	FO_FILE_DELETED = 1 << 9,       /* it has no name left (nlink 0) */
};

/*
 * file_op: a traced process changed a name or a file's metadata. Four
 * regions follow the fixed part at fixed offsets; only the ones a syscall
 * has are sent (the record ends after the last one used).
 */
struct file_op_event {
	struct event_header hdr;
	__s64 ret;
	__u64 length;        /* truncate, ftruncate */
	__u64 file_ino;      /* FO_FILE */
	__u32 syscall;       /* enum syscall_id */
	__s32 dirfd;
	__s32 new_dirfd;
	__s32 fd;
	__u32 flags;         /* renameat2, unlinkat, linkat, fchmodat2, fchownat */
	__u32 mode;
	__u32 uid;
	__u32 gid;
	__u32 file_dev;      /* FO_FILE: kernel dev_t (major << 20 | minor) */
	__u32 file_mode;
	__u32 file_mnt_id;
	__u32 fflags;        /* enum file_op_flag */
	__u32 path_len;      /* bytes, without NUL, of each region */
	__u32 new_path_len;
	__u32 dir_len;
	__u32 new_dir_len;
	char path[PATH_BYTES];     /* as passed; symlink: the link's contents */
	char new_path[PATH_BYTES]; /* as passed */
	char dir[PATH_BYTES];      /* FO_DIR: path's directory; FO_FILE: the file */
	char new_dir[PATH_BYTES];  /* FO_NEW_DIR */
};

enum mount_flag {
	MO_SOURCE = 1 << 0,          /* source was passed (not NULL) */
	MO_TARGET = 1 << 1,
	MO_FSTYPE = 1 << 2,
	MO_SOURCE_FAULT = 1 << 3,    /* passed, but could not be read */
	MO_TARGET_FAULT = 1 << 4,
	MO_FSTYPE_FAULT = 1 << 5,
	MO_TRUNCATED = 1 << 6,       /* a string did not fit its region */
	MO_OLD_UMOUNT = 1 << 7,      /* SC_UMOUNT2: it was i386 umount(2) (no flags argument) */
	MO_ATTR_FAULT = 1 << 8,      /* mount_setattr: struct mount_attr could not be read */
};

/*
 * mount: mount, umount2, pivot_root and the mount API (move_mount, fsopen,
 * fsconfig, fsmount, mount_setattr). The three strings are, by syscall:
 * mount source/target/fstype; umount2 target; pivot_root target (new_root)
 * and source (put_old); move_mount source (from_path) and target (to_path);
 * fsopen fstype; fsconfig fstype = key and source = value (string values
 * only); mount_setattr target.
 */
struct mount_event {
	struct event_header hdr;
	__s64 ret;
	__u64 flags;         /* MS_*, MNT_*, MOVE_MOUNT_*, FSOPEN_*, FSMOUNT_*, AT_* by syscall */
	__u64 attr;          /* fsmount attr_flags; mount_setattr attr_set */
	__u64 attr_clr;      /* mount_setattr */
	__u32 syscall;
	__s32 fd;            /* fsconfig, fsmount */
	__s32 dirfd;         /* move_mount to_dfd, mount_setattr dfd */
	__s32 from_dirfd;    /* move_mount from_dfd */
	__s32 aux;           /* fsconfig */
	__u32 cmd;           /* fsconfig */
	__u32 mflags;        /* enum mount_flag */
	__u32 source_len;
	__u32 target_len;
	__u32 fstype_len;
	char source[PATH_BYTES];
	char target[PATH_BYTES];
	char fstype[FSTYPE_BYTES];
};

/* namespace: unshare (flags) or setns (fd, nstype in flags). */
struct namespace_event {
	struct event_header hdr;
	__s64 ret;
	__u64 flags;         /* CLONE_NEW* */
	__u32 syscall;
	__s32 fd;
};

enum bpf_flag {
	BF_MAP = 1 << 0,     /* map_id is set */
	BF_PROG = 1 << 1,    /* prog_id is set */
	BF_LINK = 1 << 2,    /* link_id is set */
};

/* bpf: a traced process called bpf(2); the objects it names, by id. */
struct bpf_event {
	struct event_header hdr;
	__s64 ret;
	__u32 cmd;
	__u32 map_id;
	__u32 prog_id;
	__u32 link_id;
	__u32 bflags;        /* enum bpf_flag */
	__u32 _pad;
};

enum mark_flag {
	/* Taken over (ptrace, process_vm_writev), not created, by a traced process. */
	MARK_TAINTED = 1 << 0,
};

/*
 * A traced process (the members map, by tgid): created by a traced process
 * or taken over by one, wherever it is now. User space reads them at the
 * end of a session.
 */
struct member {
	__u64 start_time;    /* group leader's start, boot-time ns: tells a reused pid apart */
	__u32 mflags;        /* enum mark_flag */
	__u32 _pad;
};

/*
 * Per CPU, per record kind. matched counts events the filters accepted;
 * every one is either emitted (and carries kseq == matched at that point)
 * or counted in one of the lost_* fields.
 */
struct kind_counters {
	__u64 matched;
	__u64 lost_ringbuf;  /* ring buffer full */
	__u64 lost_inflight; /* syscall pairing map full */
};

#endif /* AGENTTRACE_H */
