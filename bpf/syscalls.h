/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Pairing a syscall's entry with its exit: the syscall numbers agenttrace
 * hooks on every ABI, their arguments, and the per-thread in-flight entry
 * that carries a record from sys_enter to sys_exit.
 */
#ifndef AGENTTRACE_SYSCALLS_H
#define AGENTTRACE_SYSCALLS_H

#include "common.h"

/* x86_64 syscall numbers. */
#define NR_OPEN 2
#define NR_CONNECT 42
#define NR_ACCEPT 43
#define NR_SENDTO 44
#define NR_SENDMSG 46
#define NR_BIND 49
#define NR_LISTEN 50
#define NR_ACCEPT4 288
#define NR_SENDMMSG 307
#define NR_EXECVE 59
#define NR_CREAT 85
#define NR_OPENAT 257
#define NR_EXECVEAT 322
#define NR_OPENAT2 437
#define NR_OPEN_BY_HANDLE_AT 304
#define NR_MEMFD_CREATE 319
/* i386 syscall numbers, seen when TS_COMPAT is set. */
#define NR32_OPEN 5
#define NR32_CREAT 8
#define NR32_EXECVE 11
#define NR32_SOCKETCALL 102
#define NR32_OPENAT 295
#define NR32_OPEN_BY_HANDLE_AT 342
#define NR32_MEMFD_CREATE 356
#define NR32_EXECVEAT 358
#define NR32_CONNECT 362
#define NR32_OPENAT2 437
#define NR32_SENDMMSG 345
#define NR32_BIND 361
#define NR32_LISTEN 363
#define NR32_ACCEPT4 364
#define NR32_SENDTO 369
#define NR32_SENDMSG 370

/* Escapes (escape.bpf.c), x86_64. */
#define NR_KILL 62
#define NR_TRUNCATE 76
#define NR_FTRUNCATE 77
#define NR_RENAME 82
#define NR_RMDIR 84
#define NR_LINK 86
#define NR_UNLINK 87
#define NR_SYMLINK 88
#define NR_CHMOD 90
#define NR_FCHMOD 91
#define NR_CHOWN 92
#define NR_FCHOWN 93
#define NR_LCHOWN 94
#define NR_PTRACE 101
#define NR_RT_SIGQUEUEINFO 129
#define NR_PIVOT_ROOT 155
#define NR_MOUNT 165
#define NR_UMOUNT2 166
#define NR_TKILL 200
#define NR_TGKILL 234
#define NR_FCHOWNAT 260
#define NR_UNLINKAT 263
#define NR_RENAMEAT 264
#define NR_LINKAT 265
#define NR_SYMLINKAT 266
#define NR_FCHMODAT 268
#define NR_UNSHARE 272
#define NR_RT_TGSIGQUEUEINFO 297
#define NR_SETNS 308
#define NR_PROCESS_VM_READV 310
#define NR_PROCESS_VM_WRITEV 311
#define NR_RENAMEAT2 316
#define NR_BPF 321
/* The same number on every ABI. */
#define NR_PIDFD_SEND_SIGNAL 424
#define NR_IO_URING_SETUP 425
#define NR_OPEN_TREE 428
#define NR_PIDFD_GETFD 438
#define NR_OPEN_TREE_ATTR 467
#define NR_MOVE_MOUNT 429
#define NR_FSOPEN 430
#define NR_FSCONFIG 431
#define NR_FSMOUNT 432
#define NR_PIDFD_OPEN 434
#define NR_CLONE3 435
#define NR_MOUNT_SETATTR 442
#define NR_FCHMODAT2 452
/* Escapes, i386. */
#define NR32_LINK 9
#define NR32_UNLINK 10
#define NR32_CHMOD 15
#define NR32_LCHOWN16 16
#define NR32_MOUNT 21
#define NR32_UMOUNT 22
#define NR32_PTRACE 26
#define NR32_KILL 37
#define NR32_RENAME 38
#define NR32_RMDIR 40
#define NR32_UMOUNT2 52
#define NR32_SYMLINK 83
#define NR32_TRUNCATE 92
#define NR32_FTRUNCATE 93
#define NR32_FCHMOD 94
#define NR32_FCHOWN16 95
#define NR32_RT_SIGQUEUEINFO 178
#define NR32_CHOWN16 182
#define NR32_TRUNCATE64 193
#define NR32_FTRUNCATE64 194
#define NR32_LCHOWN 198
#define NR32_FCHOWN 207
#define NR32_CHOWN 212
#define NR32_PIVOT_ROOT 217
#define NR32_TKILL 238
#define NR32_TGKILL 270
#define NR32_FCHOWNAT 298
#define NR32_UNLINKAT 301
#define NR32_RENAMEAT 302
#define NR32_LINKAT 303
#define NR32_SYMLINKAT 304
#define NR32_FCHMODAT 306
#define NR32_UNSHARE 310
#define NR32_RT_TGSIGQUEUEINFO 335
#define NR32_SETNS 346
#define NR32_PROCESS_VM_READV 347
#define NR32_PROCESS_VM_WRITEV 348
#define NR32_RENAMEAT2 353
#define NR32_BPF 357

/*
 * x32 ABI (kernels with CONFIG_X86_X32_ABI): x86_64 numbers with this bit
 * set, except for execve and execveat, which have their own.
 */
#define X32_BIT 0x40000000
#define NRX32_EXECVE (X32_BIT | 520)
#define NRX32_EXECVEAT (X32_BIT | 545)
#define NRX32_SENDMSG (X32_BIT | 518)
#define NRX32_SENDMMSG (X32_BIT | 538)
#define NRX32_PTRACE (X32_BIT | 521)
#define NRX32_RT_SIGQUEUEINFO (X32_BIT | 524)
#define NRX32_RT_TGSIGQUEUEINFO (X32_BIT | 536)
#define NRX32_PROCESS_VM_READV (X32_BIT | 539)
#define NRX32_PROCESS_VM_WRITEV (X32_BIT | 540)

/* socketcall(2) call numbers. */
#define SYS_BIND 2
#define SYS_CONNECT 3
#define SYS_LISTEN 4
#define SYS_ACCEPT 5
#define SYS_SENDTO 11
#define SYS_SENDMSG 16
#define SYS_ACCEPT4 18
#define SYS_SENDMMSG 20
#define TS_COMPAT 0x0002

/* What an exec's syscall entry passed; the record is built at commit or failure. */
struct exec_enter {
	__u64 argv;
	__u64 mm; /* the caller's memory: at exit, another one means the point of no return was passed */
	__u32 syscall;
	__s32 dirfd;
	__u32 at_flags;
	__u32 filename_len;
	__u32 flags;
	__u32 _pad;
	char filename[PATH_BYTES];
};

/*
 * Syscall arguments between enter and exit. For open and connect the value
 * is the record itself, so exit only adds the result and emits it.
 *
 * A user page that is not faulted in yet cannot be read at entry (these
 * programs cannot fault), and an agent can place a path in one on purpose.
 * What the kernel then reads is not what agenttrace could read, and by exit
 * the agent may have changed it: a path or file name that cannot be read at
 * entry is recorded as unreadable, never read again (the file the kernel
 * opened is in the record). Only socketcall's argument array (the
 * descriptor and lengths, not an address) is read again at exit (uptr2, see
 * retry_socketcall in net.bpf.c).
 */
struct inflight_rec {
	__u32 kind;      /* enum record_kind: which member is live; 0 when idle */
	__u32 call;      /* network: the call (enum syscall_id), also under socketcall */
	__u64 uptr2;     /* socketcall's unread argument array */
	__u32 msgs;      /* send: messages the socket layer has seen in this syscall */
	__u32 emitted;   /* send: records emitted in this syscall */
	/*
	 * What the header left in open/connect's hdr by this thread's previous
	 * syscall depends on: while these are unchanged, only the fields that
	 * can change without them are read again (see fill_header_cached).
	 */
	__u64 hdr_cred;
	__u64 hdr_parent;
	__u64 hdr_exec_seq;
	__u64 hdr_valid;
	union {
		struct open_event open;
		struct net_event net;
		struct exec_enter exec;
		struct io_uring_event uring;
	};
};

/*
 * Task storage: the entry hangs off the thread's task_struct, so finding it
 * is a pointer chase, not a hash of the tid and a bucket walk (at both
 * entry and exit of every traced syscall), and it goes with the thread:
 * nothing to delete at exit, no tid to reuse, and an exec by a thread other
 * than the leader (which takes over the leader's tid) keeps its own.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inflight_rec);
} inflight SEC(".maps");

/* The current thread's pairing entry, or NULL if it has none. */
static __always_inline struct inflight_rec *current_inflight(void)
{
	return bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0);
}

/*
 * fill_header for open and connect, whose header lives in the thread's
 * persistent pairing entry. Credentials are replaced, never changed in
 * place, and the process identity changes only with exec (self_exec_id) or
 * reparenting (real_parent): while the three are the same, the header of the
 * thread's previous syscall still holds the right ids, and a syscall costs
 * three reads instead of a dozen.
 */
static __always_inline void fill_header_cached(struct inflight_rec *rec, struct event_header *hdr, __u32 kind)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 cred = (__u64)t->cred;
	__u64 parent = (__u64)t->real_parent;
	__u64 exec_seq = t->self_exec_id;

	if (rec->hdr_valid && rec->hdr_cred == cred && rec->hdr_parent == parent && rec->hdr_exec_seq == exec_seq) {
		hdr->ktime = bpf_ktime_get_boot_ns();
		hdr->kind = kind;
		hdr->auid = t->loginuid.val; /* settable once, outside cred */
		hdr->flags = 0;
		/*
		 * The cgroup and the name (prctl, /proc/PID/comm, exec) change
		 * without telling: read at every syscall, with loads instead of
		 * two helper calls. The kernel keeps comm NUL-padded
		 * (strscpy_pad), so its 16 bytes are what bpf_get_current_comm
		 * would copy.
		 */
		__u64 *comm = (__u64 *)t->comm;
		hdr->cgroup_id = t->cgroups->dfl_cgrp->kn->id;
		((__u64 *)hdr->comm)[0] = comm[0];
		((__u64 *)hdr->comm)[1] = comm[1];
		return;
	}
	fill_header(hdr, kind);
	rec->hdr_cred = cred;
	rec->hdr_parent = parent;
	rec->hdr_exec_seq = exec_seq;
	rec->hdr_valid = 1;
}

static __always_inline bool is_compat(void)
{
	return bpf_get_current_task_btf()->thread_info.status & TS_COMPAT;
}

struct sys_args {
	__u64 a[6];
};

static __always_inline void syscall_args(struct pt_regs *regs, bool compat, struct sys_args *args)
{
	if (compat) {
		args->a[0] = (__u32)regs->bx;
		args->a[1] = (__u32)regs->cx;
		args->a[2] = (__u32)regs->dx;
		args->a[3] = (__u32)regs->si;
		args->a[4] = (__u32)regs->di;
		args->a[5] = (__u32)regs->bp;
	} else {
		args->a[0] = regs->di;
		args->a[1] = regs->si;
		args->a[2] = regs->dx;
		args->a[3] = regs->r10;
		args->a[4] = regs->r8;
		args->a[5] = regs->r9;
	}
}

/*
 * The variant of a syscall that shares a wire id with its siblings
 * (syscall_variant): how to read its arguments.
 */
enum sc_variant {
	SV_NONE = 0,
	SV_UID16 = 1,      /* i386 chown, lchown, fchown: 16-bit ids */
	SV_LENGTH64 = 2,   /* i386 truncate64, ftruncate64: length in two registers */
	SV_OLD_UMOUNT = 3, /* i386 umount: no flags */
	SV_TG = 4,         /* rt_tgsigqueueinfo */
};

/* Map a raw syscall number to the wire id; SC_UNKNOWN for everything else. */
static __always_inline __u32 syscall_id(long nr, bool compat)
{
	if (compat) {
		switch (nr) {
		case NR32_OPEN: return SC_OPEN;
		case NR32_CREAT: return SC_CREAT;
		case NR32_OPENAT: return SC_OPENAT;
		case NR32_OPENAT2: return SC_OPENAT2;
		case NR32_EXECVE: return SC_EXECVE;
		case NR32_EXECVEAT: return SC_EXECVEAT;
		case NR32_CONNECT: return SC_CONNECT;
		case NR32_SOCKETCALL: return SC_SOCKETCALL;
		case NR32_SENDTO: return SC_SENDTO;
		case NR32_SENDMSG: return SC_SENDMSG;
		case NR32_SENDMMSG: return SC_SENDMMSG;
		case NR32_BIND: return SC_BIND;
		case NR32_LISTEN: return SC_LISTEN;
		case NR32_ACCEPT4: return SC_ACCEPT4;
		case NR32_OPEN_BY_HANDLE_AT: return SC_OPEN_BY_HANDLE_AT;
		case NR32_MEMFD_CREATE: return SC_MEMFD_CREATE;
		case NR32_RENAME: return SC_RENAME;
		case NR32_RENAMEAT: return SC_RENAMEAT;
		case NR32_RENAMEAT2: return SC_RENAMEAT2;
		case NR32_UNLINK: return SC_UNLINK;
		case NR32_UNLINKAT: return SC_UNLINKAT;
		case NR32_RMDIR: return SC_RMDIR;
		case NR32_LINK: return SC_LINK;
		case NR32_LINKAT: return SC_LINKAT;
		case NR32_SYMLINK: return SC_SYMLINK;
		case NR32_SYMLINKAT: return SC_SYMLINKAT;
		case NR32_CHMOD: return SC_CHMOD;
		case NR32_FCHMOD: return SC_FCHMOD;
		case NR32_FCHMODAT: return SC_FCHMODAT;
		case NR_FCHMODAT2: return SC_FCHMODAT2;
		case NR32_CHOWN16: case NR32_CHOWN: return SC_CHOWN;
		case NR32_FCHOWN16: case NR32_FCHOWN: return SC_FCHOWN;
		case NR32_LCHOWN16: case NR32_LCHOWN: return SC_LCHOWN;
		case NR32_FCHOWNAT: return SC_FCHOWNAT;
		case NR32_TRUNCATE: case NR32_TRUNCATE64: return SC_TRUNCATE;
		case NR32_FTRUNCATE: case NR32_FTRUNCATE64: return SC_FTRUNCATE;
		case NR32_MOUNT: return SC_MOUNT;
		case NR32_UMOUNT: case NR32_UMOUNT2: return SC_UMOUNT2;
		case NR32_PIVOT_ROOT: return SC_PIVOT_ROOT;
		case NR32_UNSHARE: return SC_UNSHARE;
		case NR32_SETNS: return SC_SETNS;
		case NR32_BPF: return SC_BPF;
		case NR32_PTRACE: return SC_PTRACE;
		case NR32_PROCESS_VM_READV: return SC_PROCESS_VM_READV;
		case NR32_PROCESS_VM_WRITEV: return SC_PROCESS_VM_WRITEV;
		case NR32_KILL: return SC_KILL;
		case NR32_TKILL: return SC_TKILL;
		case NR32_TGKILL: return SC_TGKILL;
		case NR32_RT_SIGQUEUEINFO: case NR32_RT_TGSIGQUEUEINFO: return SC_RT_SIGQUEUEINFO;
		}
	} else {
		switch (nr) {
		case NRX32_EXECVE: return SC_EXECVE;
		case NRX32_EXECVEAT: return SC_EXECVEAT;
		case NRX32_SENDMSG: return SC_SENDMSG;
		case NRX32_SENDMMSG: return SC_SENDMMSG;
		case NRX32_PTRACE: return SC_PTRACE;
		case NRX32_PROCESS_VM_READV: return SC_PROCESS_VM_READV;
		case NRX32_PROCESS_VM_WRITEV: return SC_PROCESS_VM_WRITEV;
		case NRX32_RT_SIGQUEUEINFO: case NRX32_RT_TGSIGQUEUEINFO: return SC_RT_SIGQUEUEINFO;
		}
		/* x32 shares these numbers with x86_64, bit 30 set. */
		switch (nr & ~X32_BIT) {
		case NR_OPEN: return SC_OPEN;
		case NR_CREAT: return SC_CREAT;
		case NR_OPENAT: return SC_OPENAT;
		case NR_OPENAT2: return SC_OPENAT2;
		case NR_CONNECT: return SC_CONNECT;
		case NR_SENDTO: return SC_SENDTO;
		case NR_BIND: return SC_BIND;
		case NR_LISTEN: return SC_LISTEN;
		case NR_ACCEPT: return SC_ACCEPT;
		case NR_ACCEPT4: return SC_ACCEPT4;
		case NR_OPEN_BY_HANDLE_AT: return SC_OPEN_BY_HANDLE_AT;
		case NR_MEMFD_CREATE: return SC_MEMFD_CREATE;
		case NR_RENAME: return SC_RENAME;
		case NR_RENAMEAT: return SC_RENAMEAT;
		case NR_RENAMEAT2: return SC_RENAMEAT2;
		case NR_UNLINK: return SC_UNLINK;
		case NR_UNLINKAT: return SC_UNLINKAT;
		case NR_RMDIR: return SC_RMDIR;
		case NR_LINK: return SC_LINK;
		case NR_LINKAT: return SC_LINKAT;
		case NR_SYMLINK: return SC_SYMLINK;
		case NR_SYMLINKAT: return SC_SYMLINKAT;
		case NR_CHMOD: return SC_CHMOD;
		case NR_FCHMOD: return SC_FCHMOD;
		case NR_FCHMODAT: return SC_FCHMODAT;
		case NR_FCHMODAT2: return SC_FCHMODAT2;
		case NR_CHOWN: return SC_CHOWN;
		case NR_FCHOWN: return SC_FCHOWN;
		case NR_LCHOWN: return SC_LCHOWN;
		case NR_FCHOWNAT: return SC_FCHOWNAT;
		case NR_TRUNCATE: return SC_TRUNCATE;
		case NR_FTRUNCATE: return SC_FTRUNCATE;
		case NR_MOUNT: return SC_MOUNT;
		case NR_UMOUNT2: return SC_UMOUNT2;
		case NR_PIVOT_ROOT: return SC_PIVOT_ROOT;
		case NR_UNSHARE: return SC_UNSHARE;
		case NR_SETNS: return SC_SETNS;
		case NR_BPF: return SC_BPF;
		case NR_KILL: return SC_KILL;
		case NR_TKILL: return SC_TKILL;
		case NR_TGKILL: return SC_TGKILL;
		}
		/* x86_64 only: x32 has its own numbers for these (above). */
		if (!(nr & X32_BIT)) {
			switch (nr) {
			case NR_EXECVE: return SC_EXECVE;
			case NR_EXECVEAT: return SC_EXECVEAT;
			case NR_SENDMSG: return SC_SENDMSG;
			case NR_SENDMMSG: return SC_SENDMMSG;
			case NR_PTRACE: return SC_PTRACE;
			case NR_PROCESS_VM_READV: return SC_PROCESS_VM_READV;
			case NR_PROCESS_VM_WRITEV: return SC_PROCESS_VM_WRITEV;
			case NR_RT_SIGQUEUEINFO: case NR_RT_TGSIGQUEUEINFO: return SC_RT_SIGQUEUEINFO;
			}
		}
	}
	/* The same number on every ABI. */
	switch (nr & ~X32_BIT) {
	case NR_MOVE_MOUNT: return SC_MOVE_MOUNT;
	case NR_FSOPEN: return SC_FSOPEN;
	case NR_FSCONFIG: return SC_FSCONFIG;
	case NR_FSMOUNT: return SC_FSMOUNT;
	case NR_MOUNT_SETATTR: return SC_MOUNT_SETATTR;
	case NR_PIDFD_OPEN: return SC_PIDFD_OPEN;
	case NR_PIDFD_SEND_SIGNAL: return SC_PIDFD_SEND_SIGNAL;
	case NR_IO_URING_SETUP: return SC_IO_URING_SETUP;
	case NR_OPEN_TREE: return SC_OPEN_TREE;
	case NR_PIDFD_GETFD: return SC_PIDFD_GETFD;
	case NR_OPEN_TREE_ATTR: return SC_OPEN_TREE_ATTR;
	}
	return SC_UNKNOWN;
}

/* How to read the arguments of a syscall whose wire id has several variants. */
static __always_inline __u32 syscall_variant(long nr, bool compat)
{
	if (compat) {
		switch (nr) {
		case NR32_CHOWN16: case NR32_FCHOWN16: case NR32_LCHOWN16: return SV_UID16;
		case NR32_TRUNCATE64: case NR32_FTRUNCATE64: return SV_LENGTH64;
		case NR32_UMOUNT: return SV_OLD_UMOUNT;
		case NR32_RT_TGSIGQUEUEINFO: return SV_TG;
		}
		return SV_NONE;
	}
	return nr == NR_RT_TGSIGQUEUEINFO || nr == NRX32_RT_TGSIGQUEUEINFO ? SV_TG : SV_NONE;
}

/*
 * Every raw number below 512 that some ABI maps to a syscall of interest,
 * as a bitmap: the first statement of sys_enter and sys_exit tests one bit,
 * whatever the number of syscalls hooked. Then a bitmap of the task's own
 * ABI (many x86_64 numbers, mmap's among them, are i386 ones of interest).
 */
#define LOW_NRS(X) LOW_NRS64(X) LOW_NRS32(X)
/* The ones paired through inflight (open, network, exec); the others pair through escapes. */
#define PAIR_NRS64(X) \
	X(NR_OPEN) X(NR_CONNECT) X(NR_EXECVE) X(NR_CREAT) X(NR_OPENAT) X(NR_EXECVEAT) X(NR_OPENAT2) \
	X(NR_ACCEPT) X(NR_SENDTO) X(NR_SENDMSG) X(NR_BIND) X(NR_LISTEN) X(NR_ACCEPT4) X(NR_SENDMMSG) \
	X(NR_OPEN_BY_HANDLE_AT) X(NR_MEMFD_CREATE) FILES_SHARED_NRS(X)
#define PAIR_NRS32(X) \
	X(NR32_OPEN) X(NR32_CREAT) X(NR32_EXECVE) X(NR32_SOCKETCALL) X(NR32_OPENAT) X(NR32_EXECVEAT) X(NR32_CONNECT) \
	X(NR32_SENDMMSG) X(NR32_BIND) X(NR32_LISTEN) X(NR32_ACCEPT4) X(NR32_SENDTO) X(NR32_SENDMSG) \
	X(NR_OPENAT2) X(NR32_OPEN_BY_HANDLE_AT) X(NR32_MEMFD_CREATE) FILES_SHARED_NRS(X)
/* Files' syscalls with the same number on every ABI (paired through inflight too). */
#define FILES_SHARED_NRS(X) X(NR_IO_URING_SETUP) X(NR_OPEN_TREE) X(NR_PIDFD_GETFD) X(NR_OPEN_TREE_ATTR)
#define SHARED_NRS(X) \
	X(NR_PIDFD_SEND_SIGNAL) X(NR_MOVE_MOUNT) X(NR_FSOPEN) X(NR_FSCONFIG) X(NR_FSMOUNT) \
	X(NR_PIDFD_OPEN) X(NR_CLONE3) X(NR_MOUNT_SETATTR) X(NR_FCHMODAT2)
#define LOW_NRS64(X) PAIR_NRS64(X) \
	X(NR_KILL) X(NR_TRUNCATE) X(NR_FTRUNCATE) X(NR_RENAME) X(NR_RMDIR) X(NR_LINK) X(NR_UNLINK) X(NR_SYMLINK) \
	X(NR_CHMOD) X(NR_FCHMOD) X(NR_CHOWN) X(NR_FCHOWN) X(NR_LCHOWN) X(NR_PTRACE) X(NR_RT_SIGQUEUEINFO) \
	X(NR_PIVOT_ROOT) X(NR_MOUNT) X(NR_UMOUNT2) X(NR_TKILL) X(NR_TGKILL) X(NR_FCHOWNAT) X(NR_UNLINKAT) \
	X(NR_RENAMEAT) X(NR_LINKAT) X(NR_SYMLINKAT) X(NR_FCHMODAT) X(NR_UNSHARE) X(NR_RT_TGSIGQUEUEINFO) \
	X(NR_SETNS) X(NR_PROCESS_VM_READV) X(NR_PROCESS_VM_WRITEV) X(NR_RENAMEAT2) X(NR_BPF) \
	X(NR_PIDFD_SEND_SIGNAL) X(NR_MOVE_MOUNT) X(NR_FSOPEN) X(NR_FSCONFIG) X(NR_FSMOUNT) X(NR_PIDFD_OPEN) \
	X(NR_CLONE3) X(NR_MOUNT_SETATTR) X(NR_FCHMODAT2)
#define LOW_NRS32(X) PAIR_NRS32(X) SHARED_NRS(X) \
	X(NR32_LINK) X(NR32_UNLINK) X(NR32_CHMOD) X(NR32_LCHOWN16) X(NR32_MOUNT) X(NR32_UMOUNT) X(NR32_PTRACE) \
	X(NR32_KILL) X(NR32_RENAME) X(NR32_RMDIR) X(NR32_UMOUNT2) X(NR32_SYMLINK) X(NR32_TRUNCATE) X(NR32_FTRUNCATE) \
	X(NR32_FCHMOD) X(NR32_FCHOWN16) X(NR32_RT_SIGQUEUEINFO) X(NR32_CHOWN16) X(NR32_TRUNCATE64) \
	X(NR32_FTRUNCATE64) X(NR32_LCHOWN) X(NR32_FCHOWN) X(NR32_CHOWN) X(NR32_PIVOT_ROOT) X(NR32_TKILL) \
	X(NR32_TGKILL) X(NR32_FCHOWNAT) X(NR32_UNLINKAT) X(NR32_RENAMEAT) X(NR32_LINKAT) X(NR32_SYMLINKAT) \
	X(NR32_FCHMODAT) X(NR32_UNSHARE) X(NR32_RT_TGSIGQUEUEINFO) X(NR32_SETNS) X(NR32_PROCESS_VM_READV) \
	X(NR32_PROCESS_VM_WRITEV) X(NR32_RENAMEAT2) X(NR32_BPF)

#define NR_BIT(nr, word) ((((nr) >> 6) == (word)) ? (1ULL << ((nr) & 63)) : 0ULL) |
#define NR_WORD0(nr) NR_BIT(nr, 0)
#define NR_WORD1(nr) NR_BIT(nr, 1)
#define NR_WORD2(nr) NR_BIT(nr, 2)
#define NR_WORD3(nr) NR_BIT(nr, 3)
#define NR_WORD4(nr) NR_BIT(nr, 4)
#define NR_WORD5(nr) NR_BIT(nr, 5)
#define NR_WORD6(nr) NR_BIT(nr, 6)
#define NR_WORD7(nr) NR_BIT(nr, 7)

#define NR_BITMAP(LIST) { \
	LIST(NR_WORD0) 0, LIST(NR_WORD1) 0, LIST(NR_WORD2) 0, LIST(NR_WORD3) 0, \
	LIST(NR_WORD4) 0, LIST(NR_WORD5) 0, LIST(NR_WORD6) 0, LIST(NR_WORD7) 0, \
}

static const volatile __u64 interesting_low[8] = NR_BITMAP(LOW_NRS);
static const volatile __u64 interesting_64[8] = NR_BITMAP(LOW_NRS64);
static const volatile __u64 interesting_32[8] = NR_BITMAP(LOW_NRS32);
static const volatile __u64 pairs_64[8] = NR_BITMAP(PAIR_NRS64);
static const volatile __u64 pairs_32[8] = NR_BITMAP(PAIR_NRS32);

/*
 * The second filter, once the ABI is known: true for a number of interest
 * on this ABI (x32 numbers, 512 and up, interesting_nr has decided).
 */
static __always_inline bool interesting_on(long nr, bool compat)
{
	if ((unsigned long)nr >= 512)
		return true;
	if (compat)
		return (interesting_32[(nr >> 6) & 7] >> (nr & 63)) & 1;
	return (interesting_64[(nr >> 6) & 7] >> (nr & 63)) & 1;
}

/* Cheap pre-filter on the raw number: true for any number we might pair. */
static __always_inline bool interesting_nr(long nr)
{
	if ((unsigned long)nr < 512)
		return (interesting_low[(nr >> 6) & 7] >> (nr & 63)) & 1;
	if (!(nr & X32_BIT))
		return false;
	/* x32: bit 30 and an x86_64 number, or one of its own. */
	switch (nr) {
	case NRX32_EXECVE: case NRX32_EXECVEAT: case NRX32_PTRACE: case NRX32_RT_SIGQUEUEINFO:
	case NRX32_RT_TGSIGQUEUEINFO: case NRX32_PROCESS_VM_READV: case NRX32_PROCESS_VM_WRITEV:
	case NRX32_SENDMSG: case NRX32_SENDMMSG:
		return true;
	}
	return syscall_id(nr, false) != SC_UNKNOWN || (nr & ~X32_BIT) == NR_CLONE3;
}

/*
 * How a syscall of interest pairs its entry and exit: through inflight
 * (open, connect, exec) or escapes, or either (x32: not known without
 * syscall_id, which the exit of an untraced task should not pay for).
 */
enum pairing {
	PAIR_ESCAPES = 0,
	PAIR_INFLIGHT = 1,
	PAIR_EITHER = 2,
};

static __always_inline enum pairing pairing_of(long nr, bool compat)
{
	if ((unsigned long)nr >= 512)
		return PAIR_EITHER;
	const volatile __u64 *m = compat ? pairs_32 : pairs_64;
	return (m[(nr >> 6) & 7] >> (nr & 63)) & 1 ? PAIR_INFLIGHT : PAIR_ESCAPES;
}

/* Whether the wire id is an escape syscall (escape.bpf.c pairs it, not inflight). */
static __always_inline bool escape_sc(__u32 sc)
{
	return sc >= SC_RENAME && sc <= SC_RT_SIGQUEUEINFO;
}

/*
 * This thread's pairing entry, marked in flight for kind, or NULL (counted)
 * when it could not be created (no memory). An entry lives as long as its
 * thread: creating, zeroing and freeing a 9 KiB entry at every syscall cost
 * more than the rest of the record. So every field a syscall does not set
 * must be reset by its enter_* function.
 */
static __always_inline struct inflight_rec *start_inflight(__u32 kind)
{
	/* Created zeroed. */
	struct inflight_rec *rec =
		bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!rec) {
		count_lost_inflight(kind);
		return NULL;
	}
	rec->kind = kind;
	rec->uptr2 = 0;
	return rec;
}

/* The syscall is done: the entry stays for the thread's next one. */
static __always_inline void end_inflight(struct inflight_rec *rec)
{
	rec->kind = 0;
}

#endif /* AGENTTRACE_SYSCALLS_H */
