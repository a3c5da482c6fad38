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
	KIND_MAX = 13,
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
 * filename[PATH_BYTES] (as passed), exe[PATH_BYTES] (as resolved), then
 * args_len bytes of argv (NUL-separated, as the new program sees them).
 */
struct exec_event {
	struct event_header hdr;
	__s64 ret;
	__u64 exe_ino;
	__u32 exe_dev;
	__u32 exe_mode;
	__u32 exe_uid;
	__u32 exe_gid;
	__s32 dirfd;
	__u32 at_flags;
	__u32 syscall;       /* enum syscall_id */
	__u32 filename_len;  /* bytes, without NUL */
	__u32 exe_len;
	__u32 argc;
	__u32 args_len;      /* bytes of argv captured */
	__u32 args_size;     /* bytes of argv in full */
};

struct open_event {
	struct event_header hdr;
	__s64 ret;
	__u64 flags;
	__u64 mode;
	__u64 resolve;       /* openat2 only */
	__s32 dirfd;
	__u32 syscall;
	__u32 path_len;      /* bytes, without NUL */
	__u32 _pad;
	char path[PATH_BYTES];
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
