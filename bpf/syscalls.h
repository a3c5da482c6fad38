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
/* i386 syscall numbers, seen when TS_COMPAT is set. */
#define NR32_OPEN 5
#define NR32_CREAT 8
#define NR32_EXECVE 11
#define NR32_SOCKETCALL 102
#define NR32_OPENAT 295
#define NR32_EXECVEAT 358
#define NR32_CONNECT 362
#define NR32_OPENAT2 437
#define NR32_SENDMMSG 345
#define NR32_BIND 361
#define NR32_LISTEN 363
#define NR32_ACCEPT4 364
#define NR32_SENDTO 369
#define NR32_SENDMSG 370

/*
 * x32 ABI (kernels with CONFIG_X86_X32_ABI): x86_64 numbers with this bit
 * set, except for execve and execveat, which have their own.
 */
#define X32_BIT 0x40000000
#define NRX32_EXECVE (X32_BIT | 520)
#define NRX32_EXECVEAT (X32_BIT | 545)
#define NRX32_SENDMSG (X32_BIT | 518)
#define NRX32_SENDMMSG (X32_BIT | 538)

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
 * programs cannot fault), and an agent can place a path or an address in
 * one on purpose. By exit the kernel has faulted it in to read it itself,
 * so whatever failed at entry is read again at exit from the saved pointers.
 */
struct inflight_rec {
	__u32 kind;      /* enum record_kind: which member is live; 0 when idle */
	__u32 how_fault; /* openat2: open_how could not be read at entry */
	__u64 uptr;      /* the path, file name or socket address */
	__u64 uptr2;     /* openat2's open_how; socketcall's unread argument array */
	__u32 call;      /* network: the call (enum syscall_id), also under socketcall */
	__u32 msgs;      /* send: messages the socket layer has seen in this syscall */
	__u32 emitted;   /* send: records emitted in this syscall */
	__u32 _pad;
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
	};
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32); /* tid */
	__type(value, struct inflight_rec);
} inflight SEC(".maps");

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
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 cred, parent, exec_seq;
	__u32 auid;

	if (HAVE_TASK_BTF) {
		struct task_struct *t = bpf_get_current_task_btf();
		cred = (__u64)t->cred;
		parent = (__u64)t->real_parent;
		exec_seq = t->self_exec_id;
		auid = t->loginuid.val;
	} else {
		cred = (__u64)BPF_CORE_READ(task, cred);
		parent = (__u64)BPF_CORE_READ(task, real_parent);
		exec_seq = BPF_CORE_READ(task, self_exec_id);
		auid = BPF_CORE_READ(task, loginuid.val);
	}

	if (rec->hdr_valid && rec->hdr_cred == cred && rec->hdr_parent == parent && rec->hdr_exec_seq == exec_seq) {
		hdr->ktime = bpf_ktime_get_boot_ns();
		hdr->kind = kind;
		hdr->auid = auid; /* settable once, outside cred */
		hdr->cgroup_id = bpf_get_current_cgroup_id();
		hdr->flags = 0;
		bpf_get_current_comm(hdr->comm, sizeof(hdr->comm));
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
	if (HAVE_TASK_BTF)
		return bpf_get_current_task_btf()->thread_info.status & TS_COMPAT;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(task, thread_info.status) & TS_COMPAT;
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
		}
		return SC_UNKNOWN;
	}
	switch (nr) {
	case NRX32_EXECVE: return SC_EXECVE;
	case NRX32_EXECVEAT: return SC_EXECVEAT;
	case NRX32_SENDMSG: return SC_SENDMSG;
	case NRX32_SENDMMSG: return SC_SENDMMSG;
	}
	switch (nr & ~X32_BIT) {
	case NR_OPEN: return SC_OPEN;
	case NR_CREAT: return SC_CREAT;
	case NR_OPENAT: return SC_OPENAT;
	case NR_OPENAT2: return SC_OPENAT2;
	case NR_EXECVE: return nr & X32_BIT ? SC_UNKNOWN : SC_EXECVE;
	case NR_EXECVEAT: return nr & X32_BIT ? SC_UNKNOWN : SC_EXECVEAT;
	case NR_CONNECT: return SC_CONNECT;
	case NR_SENDTO: return SC_SENDTO;
	case NR_SENDMSG: return nr & X32_BIT ? SC_UNKNOWN : SC_SENDMSG;
	case NR_SENDMMSG: return nr & X32_BIT ? SC_UNKNOWN : SC_SENDMMSG;
	case NR_BIND: return SC_BIND;
	case NR_LISTEN: return SC_LISTEN;
	case NR_ACCEPT: return SC_ACCEPT;
	case NR_ACCEPT4: return SC_ACCEPT4;
	}
	return SC_UNKNOWN;
}

/* Cheap pre-filter on the raw number: true for any number we might pair. */
static __always_inline bool interesting_nr(long nr)
{
	switch (nr) {
	case NR_OPEN: case NR_CONNECT: case NR_EXECVE: case NR_CREAT:
	case NR_OPENAT: case NR_EXECVEAT: case NR_OPENAT2:
	case NR32_OPEN: case NR32_CREAT: case NR32_EXECVE: case NR32_SOCKETCALL:
	case NR32_OPENAT: case NR32_EXECVEAT: case NR32_CONNECT:
	case X32_BIT | NR_OPEN: case X32_BIT | NR_CONNECT: case X32_BIT | NR_CREAT:
	case X32_BIT | NR_OPENAT: case X32_BIT | NR_OPENAT2:
	case NRX32_EXECVE: case NRX32_EXECVEAT:
	case NR_ACCEPT: case NR_SENDTO: case NR_SENDMSG: case NR_BIND: case NR_LISTEN:
	case NR_ACCEPT4: case NR_SENDMMSG:
	case NR32_SENDMMSG: case NR32_BIND: case NR32_LISTEN: case NR32_ACCEPT4:
	case NR32_SENDTO: case NR32_SENDMSG:
	case X32_BIT | NR_ACCEPT: case X32_BIT | NR_SENDTO: case X32_BIT | NR_BIND:
	case X32_BIT | NR_LISTEN: case X32_BIT | NR_ACCEPT4:
	case NRX32_SENDMSG: case NRX32_SENDMMSG:
		return true;
	}
	return false;
}

/*
 * This thread's pairing entry, marked in flight for kind, or NULL (counted)
 * when the map is full. An entry lives as long as its thread: creating,
 * zeroing and freeing a 4 KiB entry at every syscall cost more than the rest
 * of the record. So every field a syscall does not set must be reset by
 * its enter_* function.
 */
static __always_inline struct inflight_rec *start_inflight(__u32 tid, __u32 kind)
{
	static const struct inflight_rec zero;
	struct inflight_rec *rec = bpf_map_lookup_elem(&inflight, &tid);

	if (!rec) {
		bpf_map_update_elem(&inflight, &tid, &zero, BPF_NOEXIST);
		rec = bpf_map_lookup_elem(&inflight, &tid);
		if (!rec) {
			count_lost_inflight(kind);
			return NULL;
		}
	}
	rec->kind = kind;
	rec->how_fault = 0;
	rec->uptr = 0;
	rec->uptr2 = 0;
	return rec;
}

/* The syscall is done: the entry stays for the thread's next one. */
static __always_inline void end_inflight(struct inflight_rec *rec)
{
	rec->kind = 0;
}

#endif /* AGENTTRACE_SYSCALLS_H */
