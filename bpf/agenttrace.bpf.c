// SPDX-License-Identifier: GPL-2.0-only
/*
 * agenttrace kernel side: record exec, open, connect, fork and exit of the
 * tasks inside the target cgroups (and all their descendants).
 *
 * Hooks: tp_btf/sys_enter and tp_btf/sys_exit pair every syscall of interest
 * in one program each. They need no tracefs and, unlike the per-syscall
 * tracepoints, they also fire for i386-ABI syscalls (int 0x80), which an
 * agent could otherwise use to hide an open or a connect. sched_process_exec
 * records what an exec committed to, from the new image, so no racing thread
 * can change it. sched_process_fork and sched_process_exit give the tree.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "agenttrace.h"

char LICENSE[] SEC("license") = "GPL";

/* x86_64 syscall numbers. */
#define NR_OPEN 2
#define NR_CONNECT 42
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

/*
 * x32 ABI (kernels with CONFIG_X86_X32_ABI): x86_64 numbers with this bit
 * set, except for execve and execveat, which have their own.
 */
#define X32_BIT 0x40000000
#define NRX32_EXECVE (X32_BIT | 520)
#define NRX32_EXECVEAT (X32_BIT | 545)

/*
 * Kernels with bpf_get_current_task_btf (5.11+) let the hot paths read the
 * task with plain loads instead of one bpf_probe_read_kernel call per field;
 * on older kernels the branch is dead code the verifier never visits.
 */
#define HAVE_TASK_BTF bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf)

#define SYS_CONNECT 3 /* socketcall(2) call number */
#define TS_COMPAT 0x0002
#define O_CREAT 0100
#define O_WRONLY 01
#define O_TRUNC 01000
#define NAME_BYTES 256
#define PATH_MASK (PATH_BYTES - 1)
#define MAX_PATH_COMPONENTS 64
#define MAX_FAILED_ARGS 256

/* Set from user space before load. */
const volatile __u32 target_slots = 1;
/* Cap on captured argv bytes; the heap map is sized to fit it. */
const volatile __u32 max_arg_bytes = 32768;
/*
 * Targets are the patterns and cgroup_states below (the daemon) instead of
 * the targets cgroup array (run).
 */
const volatile __u32 glob_targets = 0;
/* Wake the reader only when this much is pending; it also polls. */
const volatile __u64 wakeup_bytes = 65536;

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u32);
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PATTERNS);
	__type(key, __u32);
	__type(value, struct glob_pattern);
} patterns SEC(".maps");

/*
 * By cgroup id. User space fills it for the cgroups that exist when the
 * patterns are set (top-down, each parent before it lists the parent's
 * children); handle_cgroup_mkdir derives every later cgroup's entry from its
 * parent's before the new directory becomes visible, so no process can be
 * in a matching cgroup before the cgroup is known to be traced.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct cgroup_state);
} cgroup_states SEC(".maps");

/*
 * The last traced() decision on this CPU in glob mode, valid while the
 * task is in the same cgroup and user space has not changed any state
 * since (states_gen): a syscall-heavy process then pays an array lookup,
 * not a hash lookup, per syscall of interest. New cgroups need no
 * invalidation: their ids are new.
 */
struct traced_cache {
	__u64 id;
	__u64 gen;
	__u32 traced;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct traced_cache);
} tcache SEC(".maps");

/* Bumped by user space after every change it makes to cgroup_states. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} states_gen SEC(".maps");

/* Per-CPU state of one glob match (see glob_step). */
struct glob_scratch {
	char glob[GLOB_BYTES];
	char name[NAME_BYTES];
	__u32 glen;
	__u32 nlen;
	__u32 p;
	__u32 n;
	__u32 star;
	__u32 mark;
	__s32 result;
	/*
	 * handle_cgroup_mkdir's result bits live here, not in registers: bits
	 * the verifier tracks as constants would make it explore every
	 * combination of the sixteen patterns.
	 */
	__u32 matched;
	__u32 partial;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct glob_scratch);
} globbuf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

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
		struct connect_event connect;
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

/* The creating process of each traced process, recorded at fork. */
struct parent_id {
	__u64 start_time;
	__u64 exec_seq;
	__u32 pid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32); /* tgid */
	__type(value, struct parent_id);
} parents SEC(".maps");

/*
 * The start time of the last process reported exited under each tgid.
 * Threads that exit together can each see signal->live at zero by the time
 * their tracepoint runs (every thread decrements it before); the first to
 * claim the process here reports its exit, once.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} exited SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KIND_MAX);
	__type(key, __u32);
	__type(value, struct kind_counters);
} counters SEC(".maps");

/*
 * Per-CPU scratch for exec records, which are too large for the stack or a
 * fixed-size reservation. value_size is set from user space to
 * sizeof(struct exec_event) + 2 * PATH_BYTES + max_arg_bytes + PATH_BYTES.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct exec_event) + 3 * PATH_BYTES + 32768);
	__uint(max_entries, 1); /* set to the number of possible CPUs */
} heap SEC(".maps");

/* Per-CPU scratch for building a path backwards from its last component. */
struct path_scratch {
	__u32 off;
	__u32 _pad;
	char buf[2 * PATH_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_scratch);
} pathbuf SEC(".maps");

static __always_inline bool traced(void)
{
	if (glob_targets) {
		__u64 id = bpf_get_current_cgroup_id();
		__u32 zero = 0;
		__u64 *gen = bpf_map_lookup_elem(&states_gen, &zero);
		struct traced_cache *c = bpf_map_lookup_elem(&tcache, &zero);
		if (!gen || !c)
			return false;
		if (c->id == id && c->gen == *gen)
			return c->traced;
		struct cgroup_state *st = bpf_map_lookup_elem(&cgroup_states, &id);
		c->id = id;
		c->gen = *gen;
		c->traced = st && st->traced;
		return c->traced;
	}
	for (__u32 i = 0; i < MAX_TARGETS; i++) {
		if (i >= target_slots)
			break;
		if (bpf_current_task_under_cgroup(&targets, i) == 1)
			return true;
	}
	return false;
}

/* Count a matched event on this CPU and return its kseq (0 if no counters). */
static __always_inline __u64 count_matched(__u32 kind)
{
	struct kind_counters *c = bpf_map_lookup_elem(&counters, &kind);
	if (!c)
		return 0;
	return ++c->matched;
}

static __always_inline void count_lost_ringbuf(__u32 kind)
{
	struct kind_counters *c = bpf_map_lookup_elem(&counters, &kind);
	if (c)
		c->lost_ringbuf++;
}

static __always_inline void count_lost_inflight(__u32 kind)
{
	struct kind_counters *c = bpf_map_lookup_elem(&counters, &kind);
	if (c) {
		c->matched++;
		c->lost_inflight++;
	}
}

/* Batch wakeups, but never let a large backlog wait for the reader's poll. */
static __always_inline __u64 wakeup_flags(void)
{
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void fill_parent(struct event_header *hdr, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct parent_id *p = bpf_map_lookup_elem(&parents, &tgid);

	if (p) {
		hdr->parent_pid = p->pid;
		hdr->parent_start_time = p->start_time;
		hdr->parent_exec_seq = p->exec_seq;
		return;
	}
	/*
	 * Not forked under trace (the session's first process): the real
	 * parent has not been replaced by a reaper yet, so it is the creator.
	 */
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);
	hdr->parent_pid = BPF_CORE_READ(parent, tgid);
	hdr->parent_start_time = BPF_CORE_READ(parent, group_leader, start_boottime);
	hdr->parent_exec_seq = BPF_CORE_READ(task, group_leader, parent_exec_id);
}

static __always_inline void fill_header(struct event_header *hdr, __u32 kind)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	const struct cred *cred = BPF_CORE_READ(task, cred);

	hdr->ktime = bpf_ktime_get_boot_ns();
	hdr->kind = kind;
	hdr->pid = pid_tgid >> 32;
	hdr->tid = (__u32)pid_tgid;
	hdr->uid = (__u32)uid_gid;
	hdr->gid = uid_gid >> 32;
	hdr->euid = BPF_CORE_READ(cred, euid.val);
	hdr->egid = BPF_CORE_READ(cred, egid.val);
	hdr->auid = BPF_CORE_READ(task, loginuid.val);
	hdr->cgroup_id = bpf_get_current_cgroup_id();
	hdr->start_time = BPF_CORE_READ(task, group_leader, start_boottime);
	hdr->exec_seq = BPF_CORE_READ(task, self_exec_id);
	hdr->ppid = BPF_CORE_READ(task, real_parent, tgid);
	hdr->flags = 0;
	bpf_get_current_comm(hdr->comm, sizeof(hdr->comm));
	fill_parent(hdr, task);
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

/* Stamp kseq and cpu at the moment of emitting, so they are per emitting CPU. */
static __always_inline void stamp(struct event_header *hdr)
{
	hdr->kseq = count_matched(hdr->kind);
	hdr->cpu = bpf_get_smp_processor_id();
}

static __always_inline void emit(void *rec, __u64 size, __u32 kind)
{
	if (bpf_ringbuf_output(&events, rec, size, wakeup_flags()))
		count_lost_ringbuf(kind);
}

/*
 * Read a user string of up to PATH_BYTES into dst; returns its length without
 * the NUL and sets EF_PATH_* in *flags.
 */
static __always_inline __u32 read_user_path(char *dst, const char *src, __u32 *flags)
{
	long n = bpf_probe_read_user_str(dst, PATH_BYTES, src);
	if (n <= 0) {
		*flags |= EF_PATH_FAULT;
		return 0;
	}
	if (n == PATH_BYTES) {
		char next = 0;
		/* A full buffer: the name is longer if the next byte is not NUL. */
		if (bpf_probe_read_user(&next, 1, src + PATH_BYTES - 1) == 0 && next)
			*flags |= EF_PATH_TRUNCATED;
	}
	return (__u32)(n - 1);
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
		}
		return SC_UNKNOWN;
	}
	switch (nr) {
	case NRX32_EXECVE: return SC_EXECVE;
	case NRX32_EXECVEAT: return SC_EXECVEAT;
	}
	switch (nr & ~X32_BIT) {
	case NR_OPEN: return SC_OPEN;
	case NR_CREAT: return SC_CREAT;
	case NR_OPENAT: return SC_OPENAT;
	case NR_OPENAT2: return SC_OPENAT2;
	case NR_EXECVE: return nr & X32_BIT ? SC_UNKNOWN : SC_EXECVE;
	case NR_EXECVEAT: return nr & X32_BIT ? SC_UNKNOWN : SC_EXECVEAT;
	case NR_CONNECT: return SC_CONNECT;
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

/* openat2's struct open_how; false if it cannot be read. */
static __always_inline bool read_open_how(struct open_event *e, __u64 uhow)
{
	struct open_how how = {};

	if (bpf_probe_read_user(&how, sizeof(how), (void *)uhow))
		return false;
	e->flags = how.flags;
	e->mode = how.mode;
	e->resolve = how.resolve;
	return true;
}

static __always_inline void enter_open(__u32 tid, __u32 sc, __u32 abi, struct sys_args *args)
{
	const char *path;

	struct inflight_rec *rec = start_inflight(tid, KIND_OPEN);
	if (!rec)
		return;
	struct open_event *e = &rec->open;

	fill_header_cached(rec, &e->hdr, KIND_OPEN);
	e->syscall = sc;
	e->dirfd = -100; /* AT_FDCWD: open and creat resolve from the cwd */
	e->resolve = 0;
	switch (sc) {
	case SC_OPEN:
		path = (const char *)args->a[0];
		e->flags = args->a[1];
		e->mode = args->a[2];
		break;
	case SC_CREAT:
		path = (const char *)args->a[0];
		e->flags = O_CREAT | O_WRONLY | O_TRUNC;
		e->mode = args->a[1];
		break;
	case SC_OPENAT:
		e->dirfd = (__s32)args->a[0];
		path = (const char *)args->a[1];
		e->flags = (__u32)args->a[2];
		e->mode = (__u32)args->a[3];
		break;
	default: /* SC_OPENAT2 */
		e->dirfd = (__s32)args->a[0];
		path = (const char *)args->a[1];
		e->flags = 0;
		e->mode = 0;
		rec->uptr2 = args->a[2];
		rec->how_fault = !read_open_how(e, rec->uptr2);
		break;
	}
	e->hdr.flags |= abi;
	rec->uptr = (__u64)path;
	e->path_len = read_user_path(e->path, path, &e->hdr.flags);
}

/* At exit, read again what could not be read at entry. */
static __always_inline void retry_open(struct inflight_rec *rec)
{
	struct open_event *e = &rec->open;

	if (e->hdr.flags & EF_PATH_FAULT) {
		e->hdr.flags &= ~EF_PATH_FAULT;
		e->path_len = read_user_path(e->path, (const char *)rec->uptr, &e->hdr.flags);
	}
	if (rec->how_fault)
		read_open_how(e, rec->uptr2);
}

/* socketcall(SYS_CONNECT, args): read args; false if it cannot be read. */
static __always_inline bool socketcall_args(__u64 uargs, __u64 *fd, __u64 *addr, __u64 *addrlen)
{
	__u32 call_args[3];

	if (bpf_probe_read_user(call_args, sizeof(call_args), (void *)uargs))
		return false;
	*fd = call_args[0];
	*addr = call_args[1];
	*addrlen = call_args[2];
	return true;
}

/* Read the socket address (e->addrlen bytes, capped) and set EF_ADDR_FAULT. */
static __always_inline void read_addr(struct connect_event *e, __u64 addr)
{
	__u32 n = e->addrlen;

	if (n > SOCKADDR_BYTES)
		n = SOCKADDR_BYTES;
	e->hdr.flags &= ~EF_ADDR_FAULT;
	if (n && bpf_probe_read_user(e->addr, n, (void *)addr) == 0)
		e->addr_len = n;
	else if (n)
		e->hdr.flags |= EF_ADDR_FAULT;
}

static __always_inline void enter_connect(__u32 tid, __u32 sc, __u32 abi, struct sys_args *args)
{
	__u64 fd = args->a[0], addr = args->a[1], addrlen = args->a[2];
	bool have_args = true;

	if (sc == SC_SOCKETCALL) {
		if (args->a[0] != SYS_CONNECT)
			return;
		have_args = socketcall_args(args->a[1], &fd, &addr, &addrlen);
		if (!have_args) {
			fd = -1;
			addr = 0;
			addrlen = 0;
		}
	}

	struct inflight_rec *rec = start_inflight(tid, KIND_CONNECT);
	if (!rec)
		return;
	struct connect_event *e = &rec->connect;

	fill_header_cached(rec, &e->hdr, KIND_CONNECT);
	e->hdr.flags |= abi;
	e->syscall = sc;
	e->fd = (__s32)fd;
	e->addrlen = (__u32)addrlen;
	e->addr_len = 0;
	__builtin_memset(e->addr, 0, sizeof(e->addr));
	rec->uptr = addr;
	if (have_args) {
		read_addr(e, addr);
	} else {
		rec->uptr2 = args->a[1];
		e->hdr.flags |= EF_ADDR_FAULT;
	}
}

/* At exit, read again what could not be read at entry. */
static __always_inline void retry_connect(struct inflight_rec *rec)
{
	struct connect_event *e = &rec->connect;
	__u64 fd, addr, addrlen;

	if (!(e->hdr.flags & EF_ADDR_FAULT))
		return;
	if (rec->uptr2) {
		if (!socketcall_args(rec->uptr2, &fd, &addr, &addrlen))
			return;
		e->fd = (__s32)fd;
		e->addrlen = (__u32)addrlen;
		rec->uptr = addr;
	}
	read_addr(e, rec->uptr);
}

static __always_inline void enter_exec(__u32 tid, __u32 sc, __u32 abi, struct sys_args *args)
{
	const char *filename;

	struct inflight_rec *rec = start_inflight(tid, KIND_EXEC);
	if (!rec)
		return;
	struct exec_enter *e = &rec->exec;

	rec->hdr_valid = 0; /* exec_enter overlays the cached header */
	e->syscall = sc;
	e->flags = 0;
	e->at_flags = 0;
	if (sc == SC_EXECVEAT) {
		e->dirfd = (__s32)args->a[0];
		filename = (const char *)args->a[1];
		e->argv = args->a[2];
		e->at_flags = (__u32)args->a[4];
	} else {
		e->dirfd = -100;
		filename = (const char *)args->a[0];
		e->argv = args->a[1];
	}
	e->flags |= abi;
	rec->uptr = (__u64)filename;
	e->filename_len = read_user_path(e->filename, filename, &e->flags);

	/* An empty argv is replaced by {""} in the kernel: remember it was empty. */
	__u64 argv0 = 0;
	if (e->argv && abi) { /* i386 and x32: 32-bit pointers */
		__u32 p32 = 0;
		bpf_probe_read_user(&p32, sizeof(p32), (void *)e->argv);
		argv0 = p32;
	} else if (e->argv) {
		bpf_probe_read_user(&argv0, sizeof(argv0), (void *)e->argv);
	}
	if (!argv0)
		e->flags |= EF_ARGV_EMPTY;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(handle_sys_enter, struct pt_regs *regs, long id)
{
	if (!interesting_nr(id))
		return 0;
	if (!traced())
		return 0;

	bool compat = is_compat();
	__u32 sc = syscall_id(id, compat);
	/* Which ABI: the record says so, and argv holds 32-bit pointers in both. */
	__u32 abi = compat ? EF_COMPAT : (id & X32_BIT) ? EF_X32 : 0;
	if (sc == SC_UNKNOWN)
		return 0;

	struct sys_args args;
	syscall_args(regs, compat, &args);
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	switch (sc) {
	case SC_OPEN:
	case SC_CREAT:
	case SC_OPENAT:
	case SC_OPENAT2:
		enter_open(tid, sc, abi, &args);
		break;
	case SC_CONNECT:
	case SC_SOCKETCALL:
		enter_connect(tid, sc, abi, &args);
		break;
	default:
		enter_exec(tid, sc, abi, &args);
		break;
	}
	return 0;
}

static __always_inline void *exec_scratch(void)
{
	__u32 cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&heap, &cpu);
}

#define EXEC_FILENAME(e) ((char *)(e) + sizeof(struct exec_event))
#define EXEC_EXE(e) (EXEC_FILENAME(e) + PATH_BYTES)
#define EXEC_ARGS(e) (EXEC_EXE(e) + PATH_BYTES)

/* Copy the syscall-entry part of an exec into the record. */
static __always_inline void exec_from_enter(struct exec_event *e, struct exec_enter *in)
{
	e->syscall = in->syscall;
	e->dirfd = in->dirfd;
	e->at_flags = in->at_flags;
	e->hdr.flags |= in->flags;
	e->filename_len = in->filename_len & PATH_MASK;
	bpf_probe_read_kernel(EXEC_FILENAME(e), e->filename_len, in->filename);
}

/*
 * A failed exec: argv is still the caller's, so read it through the
 * pointer array. Each argument is capped at PATH_BYTES here.
 */
static __always_inline void read_failed_argv(struct exec_event *e, __u64 argv, bool ptr32)
{
	char *args = EXEC_ARGS(e);
	__u32 off = 0;

	for (__u32 i = 0; i < MAX_FAILED_ARGS; i++) {
		__u64 p = 0;
		if (ptr32) {
			__u32 p32 = 0;
			if (bpf_probe_read_user(&p32, sizeof(p32), (void *)(argv + i * 4)))
				break;
			p = p32;
		} else if (bpf_probe_read_user(&p, sizeof(p), (void *)(argv + i * 8))) {
			break;
		}
		if (!p)
			break;
		if (off >= max_arg_bytes) {
			e->hdr.flags |= EF_ARGS_TRUNCATED;
			break;
		}
		long n = bpf_probe_read_user_str(args + off, PATH_BYTES, (void *)p);
		if (n <= 0) {
			e->hdr.flags |= EF_ARGS_FAULT;
			break;
		}
		e->argc++;
		off += n;
		if (n == PATH_BYTES) {
			char next = 0;
			/* Cut at PATH_BYTES: record it as the last, partial argument. */
			if (bpf_probe_read_user(&next, 1, (void *)(p + PATH_BYTES - 1)) == 0 && next) {
				e->hdr.flags |= EF_ARGS_TRUNCATED;
				break;
			}
		}
	}
	/* The loop's bound, not the caller's NULL, ended argv: say it is cut. */
	if (e->argc == MAX_FAILED_ARGS && !(e->hdr.flags & (EF_ARGS_TRUNCATED | EF_ARGS_FAULT))) {
		__u64 p = 0;
		if (ptr32) {
			__u32 p32 = 0;
			bpf_probe_read_user(&p32, sizeof(p32), (void *)(argv + MAX_FAILED_ARGS * 4));
			p = p32;
		} else {
			bpf_probe_read_user(&p, sizeof(p), (void *)(argv + MAX_FAILED_ARGS * 8));
		}
		if (p)
			e->hdr.flags |= EF_ARGS_TRUNCATED;
	}
	if (off > max_arg_bytes) {
		off = max_arg_bytes;
		e->hdr.flags |= EF_ARGS_TRUNCATED;
	}
	e->args_len = off;
	e->args_size = off;
}

static __always_inline void exit_exec(__u32 tid, struct inflight_rec *rec, long ret)
{
	struct exec_event *e = exec_scratch();
	if (!e)
		goto out;

	struct exec_enter *in = &rec->exec;
	if (in->flags & EF_PATH_FAULT) {
		/* Not readable at entry: read it again (see struct inflight_rec). */
		in->flags &= ~EF_PATH_FAULT;
		in->filename_len = read_user_path(in->filename, (const char *)rec->uptr, &in->flags);
	}

	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, KIND_EXEC);
	exec_from_enter(e, in);
	e->ret = ret;
	read_failed_argv(e, rec->exec.argv, rec->exec.flags & (EF_COMPAT | EF_X32));
	stamp(&e->hdr);
	__u32 len = e->args_len;
	if (len > max_arg_bytes)
		len = max_arg_bytes;
	emit(e, sizeof(*e) + 2 * PATH_BYTES + len, KIND_EXEC);
out:
	end_inflight(rec);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(handle_sys_exit, struct pt_regs *regs, long ret)
{
	long id = regs->orig_ax;

	if (!interesting_nr(id))
		return 0;

	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight_rec *rec = bpf_map_lookup_elem(&inflight, &tid);
	if (!rec || !rec->kind)
		return 0;

	switch (rec->kind) {
	case KIND_OPEN: {
		struct open_event *e = &rec->open;
		retry_open(rec);
		e->ret = ret;
		stamp(&e->hdr);
		__u32 n = e->path_len + 1; /* with the NUL */
		if (n > PATH_BYTES)
			n = PATH_BYTES;
		emit(e, offsetof(struct open_event, path) + n, KIND_OPEN);
		break;
	}
	case KIND_CONNECT: {
		struct connect_event *e = &rec->connect;
		retry_connect(rec);
		e->ret = ret;
		stamp(&e->hdr);
		emit(e, sizeof(*e), KIND_CONNECT);
		break;
	}
	case KIND_EXEC:
		/* Still in flight after the syscall: the exec failed. */
		exit_exec(tid, rec, ret);
		return 0;
	}
	end_inflight(rec);
	return 0;
}

/*
 * Write the path of (dentry, vfsmount) into s->buf, right-aligned at
 * PATH_BYTES, walking up through mounts to the global root, and leave the
 * offset of its first byte in s->off. Returns true if the walk reached the
 * root. The offset lives in map memory on purpose: the verifier then sees
 * every iteration alike and the loop verifies in linear time.
 */
static __always_inline bool walk_path(struct path_scratch *s, struct dentry *dentry, struct vfsmount *vfsmnt)
{
	struct mount *mnt = container_of(vfsmnt, struct mount, mnt);
	struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	bool complete = false;

	s->off = PATH_BYTES;
	for (int i = 0; i < MAX_PATH_COMPONENTS; i++) {
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);

		if (dentry == mnt_root) {
			struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
			if (mnt == mnt_parent) {
				complete = true;
				break;
			}
			/* Cross to the mount point in the parent mount. */
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mnt_parent;
			mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
			continue;
		}
		if (dentry == parent) {
			complete = true;
			break;
		}

		const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
		__u32 len = BPF_CORE_READ(dentry, d_name.len);
		__u32 off = s->off;
		if (len > NAME_BYTES - 1 || len + 1 > off)
			break;
		off -= len + 1;
		s->buf[off & PATH_MASK] = '/';
		bpf_probe_read_kernel(&s->buf[(off + 1) & PATH_MASK], len & (NAME_BYTES - 1), name);
		s->off = off;
		dentry = parent;
	}
	if (s->off == PATH_BYTES) {
		/* The root itself. */
		s->off = PATH_BYTES - 1;
		s->buf[PATH_BYTES - 1] = '/';
	}
	return complete;
}

static __always_inline void read_exe(struct exec_event *e, struct linux_binprm *bprm)
{
	__u32 zero = 0;
	struct path_scratch *s = bpf_map_lookup_elem(&pathbuf, &zero);
	struct file *file = BPF_CORE_READ(bprm, file);
	struct inode *inode = BPF_CORE_READ(file, f_inode);

	e->exe_ino = BPF_CORE_READ(inode, i_ino);
	e->exe_dev = BPF_CORE_READ(inode, i_sb, s_dev);
	e->exe_mode = BPF_CORE_READ(inode, i_mode);
	e->exe_uid = BPF_CORE_READ(inode, i_uid.val);
	e->exe_gid = BPF_CORE_READ(inode, i_gid.val);
	if (!s)
		return;

	if (!walk_path(s, BPF_CORE_READ(file, f_path.dentry), BPF_CORE_READ(file, f_path.mnt)))
		e->hdr.flags |= EF_EXE_TRUNCATED;
	__u32 off = s->off & PATH_MASK;
	__u32 len = (PATH_BYTES - off) & PATH_MASK;
	bpf_probe_read_kernel(EXEC_EXE(e), len, &s->buf[off]);
	e->exe_len = len;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_sched_process_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	if (!traced())
		return 0;

	struct exec_event *e = exec_scratch();
	if (!e)
		return 0;

	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, KIND_EXEC);

	__u32 tid = old_pid;
	struct inflight_rec *rec = bpf_map_lookup_elem(&inflight, &tid);
	if (rec && rec->kind == KIND_EXEC) {
		struct exec_enter *in = &rec->exec;
		/*
		 * Not readable at entry, and the caller's memory is gone: take the
		 * kernel's copy, which is the name as passed when it is resolved
		 * from the cwd (execveat from a dirfd gets "/dev/fd/N/...").
		 */
		if ((in->flags & EF_PATH_FAULT) && in->dirfd == -100) {
			long n = bpf_probe_read_kernel_str(in->filename, PATH_BYTES, BPF_CORE_READ(bprm, filename));
			if (n > 0) {
				in->flags &= ~EF_PATH_FAULT;
				in->filename_len = n - 1;
			}
		}
		exec_from_enter(e, in);
		/* A thread other than the leader took over the leader's pid: its old id is gone. */
		if (old_pid != BPF_CORE_READ(task, pid))
			bpf_map_delete_elem(&inflight, &tid);
		else
			end_inflight(rec);
	} else {
		e->hdr.flags |= EF_NO_ENTER;
	}
	read_exe(e, bprm);

	/* argv as the new program sees it: its own stack, after the exec committed. */
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	__u64 arg_start = BPF_CORE_READ(mm, arg_start);
	__u64 arg_end = BPF_CORE_READ(mm, arg_end);
	__u64 size = arg_end - arg_start;
	__u32 len = size;

	e->argc = BPF_CORE_READ(bprm, argc);
	e->args_size = size;
	if (size > max_arg_bytes) {
		len = max_arg_bytes;
		e->hdr.flags |= EF_ARGS_TRUNCATED;
	}
	if (len > max_arg_bytes)
		len = max_arg_bytes;
	if (bpf_probe_read_user(EXEC_ARGS(e), len, (void *)arg_start)) {
		e->hdr.flags |= EF_ARGS_FAULT;
		len = 0;
	}
	e->args_len = len;
	stamp(&e->hdr);
	emit(e, sizeof(*e) + 2 * PATH_BYTES + len, KIND_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
	if (!traced())
		return 0;
	/* Threads share their process's identity; only new processes count. */
	__u32 child_pid = BPF_CORE_READ(child, pid);
	if (child_pid != BPF_CORE_READ(child, tgid))
		return 0;

	struct fork_event e = {};
	fill_header(&e.hdr, KIND_FORK);
	e.child_pid = child_pid;
	e.child_start_time = BPF_CORE_READ(child, start_boottime);

	struct parent_id p = {
		.pid = e.hdr.pid,
		.start_time = e.hdr.start_time,
		.exec_seq = e.hdr.exec_seq,
	};
	/* When full, later records fall back to the real parent (see fill_parent). */
	bpf_map_update_elem(&parents, &child_pid, &p, BPF_ANY);
	stamp(&e.hdr);
	emit(&e, sizeof(e), KIND_FORK);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_sched_process_exit, struct task_struct *task)
{
	/*
	 * Before the filter: a thread whose process left the targets must not
	 * leave its pairing entry behind. Thread exits are rare enough.
	 */
	__u32 tid = BPF_CORE_READ(task, pid);
	bpf_map_delete_elem(&inflight, &tid);

	if (!traced())
		return 0;

	/* Only the last thread of the process reports its exit. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;

	__u32 tgid = BPF_CORE_READ(task, tgid);
	__u64 start = BPF_CORE_READ(task, group_leader, start_boottime);
	if (bpf_map_update_elem(&exited, &tgid, &start, BPF_NOEXIST)) {
		__u64 *seen = bpf_map_lookup_elem(&exited, &tgid);
		if (seen && *seen == start)
			return 0; /* another thread of this process reported it */
		/* An earlier process with this pid: claim it anew. */
		bpf_map_delete_elem(&exited, &tgid);
		if (bpf_map_update_elem(&exited, &tgid, &start, BPF_NOEXIST))
			return 0;
	}

	struct exit_event e = {};
	fill_header(&e.hdr, KIND_EXIT);
	e.exit_code = BPF_CORE_READ(task, exit_code);
	if (BPF_CORE_READ(task, signal, flags) & 0x00000004 /* SIGNAL_GROUP_EXIT */)
		e.exit_code = BPF_CORE_READ(task, signal, group_exit_code);
	stamp(&e.hdr);
	emit(&e, sizeof(e), KIND_EXIT);

	bpf_map_delete_elem(&parents, &tgid);
	return 0;
}

#define GLOB_MASK (GLOB_BYTES - 1)
#define NAME_MASK (NAME_BYTES - 1)
#define NO_STAR 0xffffffff

/*
 * One step of matching globbuf's name against its glob: * matches any run
 * of characters, ? any one. Iterative with a single backtrack point (the
 * last *), the same algorithm as cgroup.GlobMatch in Go, so both sides agree;
 * at most (nlen + 1) * (glen + 1) steps.
 */
static long glob_step(__u32 i, void *ctx)
{
	__u32 zero = 0;
	struct glob_scratch *g = bpf_map_lookup_elem(&globbuf, &zero);
	if (!g)
		return 1;
	__u32 p = g->p, n = g->n;
	char pc = p < g->glen ? g->glob[p & GLOB_MASK] : 0;
	if (n >= g->nlen) {
		/* Name used up: only trailing stars may remain. */
		if (p < g->glen && pc == '*') {
			g->p = p + 1;
			return 0;
		}
		g->result = p == g->glen;
		return 1;
	}
	if (p < g->glen && (pc == '?' || pc == g->name[n & NAME_MASK])) {
		g->p = p + 1;
		g->n = n + 1;
	} else if (p < g->glen && pc == '*') {
		g->star = p;
		g->mark = n;
		g->p = p + 1;
	} else if (g->star != NO_STAR) {
		g->p = g->star + 1;
		g->mark++;
		g->n = g->mark;
	} else {
		g->result = 0;
		return 1;
	}
	return 0;
}

/* Whether component `level - 1` of pattern pat matches globbuf's name. */
static __always_inline bool glob_match(struct glob_scratch *g, struct glob_pattern *pat, __u32 level)
{
	__u32 c = (level - 1) & (MAX_PATTERN_DEPTH - 1);
	__builtin_memcpy(g->glob, pat->components[c], GLOB_BYTES);
	g->glen = pat->lengths[c] & GLOB_MASK;
	g->p = 0;
	g->n = 0;
	g->star = NO_STAR;
	g->mark = 0;
	g->result = -1;
	bpf_loop((NAME_BYTES + 1) * (GLOB_BYTES + 1), glob_step, NULL, 0);
	return g->result == 1;
}

/*
 * A cgroup is being created; it becomes visible (and can receive processes)
 * only after this tracepoint. Its state follows from its parent's: traced if
 * the parent is, or if its path now matches a whole pattern.
 */
SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(handle_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	if (!glob_targets)
		return 0;
	struct cgroup *parent = BPF_CORE_READ(cgrp, self.parent, cgroup);
	__u64 parent_id = BPF_CORE_READ(parent, kn, id);
	struct cgroup_state *ps = bpf_map_lookup_elem(&cgroup_states, &parent_id);
	if (!ps)
		return 0;

	__u32 zero = 0;
	struct glob_scratch *g = bpf_map_lookup_elem(&globbuf, &zero);
	if (!g)
		return 0;
	__u32 level = BPF_CORE_READ(cgrp, level);
	__u32 parent_partial = ps->partial;
	struct cgroup_state st = {.traced = ps->traced};

	g->matched = 0;
	g->partial = 0;
	if (parent_partial && level >= 1 && level <= MAX_PATTERN_DEPTH) {
		long n = bpf_probe_read_kernel_str(g->name, NAME_BYTES, BPF_CORE_READ(cgrp, kn, name));
		g->nlen = n > 0 ? n - 1 : 0;
		for (__u32 i = 0; i < MAX_PATTERNS; i++) {
			if (!(parent_partial & (1u << i)))
				continue;
			struct glob_pattern *pat = bpf_map_lookup_elem(&patterns, &i);
			if (!pat || level > pat->depth || !glob_match(g, pat, level))
				continue;
			if (level == pat->depth)
				g->matched |= 1u << i;
			else
				g->partial |= 1u << i;
		}
	}
	__u32 matched = g->matched;
	st.partial = g->partial;
	if (matched)
		st.traced = 1;
	if (!st.traced && !st.partial)
		return 0;

	__u64 id = BPF_CORE_READ(cgrp, kn, id);
	__u32 cflags = matched ? CF_MATCHED : 0;
	if (bpf_map_update_elem(&cgroup_states, &id, &st, BPF_ANY))
		cflags |= CF_STATE_FULL;
	/* A cgroup that only leads towards a match is not a target yet. */
	if (!st.traced && !(cflags & CF_STATE_FULL))
		return 0;

	struct cgroup_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_matched(KIND_CGROUP);
		count_lost_ringbuf(KIND_CGROUP);
		return 0;
	}
	fill_header(&e->hdr, KIND_CGROUP);
	e->id = id;
	e->parent_id = parent_id;
	e->op = CGROUP_MKDIR;
	e->level = level;
	e->patterns = matched;
	e->_pad = 0;
	long n = bpf_probe_read_kernel_str(e->path, PATH_BYTES, path);
	e->path_len = n > 0 ? n - 1 : 0;
	if (n == PATH_BYTES)
		cflags |= CF_PATH_TRUNCATED;
	e->cflags = cflags;
	stamp(&e->hdr);
	bpf_ringbuf_submit(e, wakeup_flags());
	return 0;
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(handle_cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	if (!glob_targets)
		return 0;
	__u64 id = BPF_CORE_READ(cgrp, kn, id);
	struct cgroup_state *st = bpf_map_lookup_elem(&cgroup_states, &id);
	if (!st)
		return 0;
	__u32 was_traced = st->traced;
	bpf_map_delete_elem(&cgroup_states, &id);
	if (!was_traced)
		return 0;

	struct cgroup_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_matched(KIND_CGROUP);
		count_lost_ringbuf(KIND_CGROUP);
		return 0;
	}
	fill_header(&e->hdr, KIND_CGROUP);
	e->id = id;
	e->parent_id = BPF_CORE_READ(cgrp, self.parent, cgroup, kn, id);
	e->op = CGROUP_RMDIR;
	e->level = BPF_CORE_READ(cgrp, level);
	e->patterns = 0;
	e->_pad = 0;
	long n = bpf_probe_read_kernel_str(e->path, PATH_BYTES, path);
	e->path_len = n > 0 ? n - 1 : 0;
	e->cflags = n == PATH_BYTES ? CF_PATH_TRUNCATED : 0;
	stamp(&e->hdr);
	bpf_ringbuf_submit(e, wakeup_flags());
	return 0;
}

/* Referenced so that clang emits their BTF for bpf2go -type. */
const enum record_kind *unused_record_kind __attribute__((unused));
const enum syscall_id *unused_syscall_id __attribute__((unused));
const enum event_flag *unused_event_flag __attribute__((unused));
const struct exec_event *unused_exec_event __attribute__((unused));
const struct open_event *unused_open_event __attribute__((unused));
const struct connect_event *unused_connect_event __attribute__((unused));
const struct fork_event *unused_fork_event __attribute__((unused));
const struct exit_event *unused_exit_event __attribute__((unused));
const struct kind_counters *unused_kind_counters __attribute__((unused));
const struct cgroup_event *unused_cgroup_event __attribute__((unused));
const struct glob_pattern *unused_glob_pattern __attribute__((unused));
const struct cgroup_state *unused_cgroup_state __attribute__((unused));
const enum cgroup_op *unused_cgroup_op __attribute__((unused));
const enum cgroup_flag *unused_cgroup_flag __attribute__((unused));
