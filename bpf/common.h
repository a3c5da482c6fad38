/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What every hook family shares: the run-time knobs, the targeting maps and
 * traced(), the ring buffer and the loss counters, the record header, and the
 * walk from a (dentry, vfsmount) to its path.
 */
#ifndef AGENTTRACE_COMMON_H
#define AGENTTRACE_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "agenttrace.h"

/*
 * Kernels with bpf_get_current_task_btf (5.11+) let the hot paths read the
 * task with plain loads instead of one bpf_probe_read_kernel call per field;
 * on older kernels the branch is dead code the verifier never visits.
 */
#define HAVE_TASK_BTF bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf)

#define NAME_BYTES 256
#define PATH_MASK (PATH_BYTES - 1)
#define MAX_PATH_COMPONENTS 64

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

/*
 * Bumped by user space after every change it makes to cgroup_states. Bit 63
 * (STATES_UNTRACED) is set for good once user space made a traced cgroup
 * untraced: marked tasks may then be in an untraced cgroup (see marked()).
 */
#define STATES_UNTRACED (1ULL << 63)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} states_gen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

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

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KIND_MAX);
	__type(key, __u32);
	__type(value, struct kind_counters);
} counters SEC(".maps");

/*
 * Traced is inherited, not only a cgroup membership: every task (thread)
 * created by a traced task, and every process a traced one took over with
 * ptrace or process_vm_writev, carries a mark for life, wherever it moves.
 */
struct task_mark {
	__u64 cgroup_id; /* the cgroup it was last seen in: the "from" of its next move */
	__u32 mflags;    /* enum mark_flag */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_mark);
} marks SEC(".maps");

/*
 * The traced processes by tgid, so user space can find every member of a
 * session at its end, wherever it moved (task storage cannot be listed).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32); /* tgid */
	__type(value, struct member);
} members SEC(".maps");

/*
 * The ids of the target cgroups (run), for deciding whether a task other
 * than the current one is traced: bpf_current_task_under_cgroup only
 * answers for the current task.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TARGETS);
	__type(key, __u64);   /* cgroup id */
	__type(value, __u32); /* slot */
} target_ids SEC(".maps");

/*
 * What lets an untraced task skip the lookups it would find nothing in.
 * Written by the programs only (frozen for user space).
 */
struct escape_state {
	/*
	 * Nonzero once a marked task may be outside the traced cgroups: it
	 * moved, started in another cgroup, or was taken over from outside.
	 * Until then the cgroup decision is the whole answer.
	 */
	__u32 outside;
	__u32 _pad;
	__u64 live; /* entries in escapes (never fewer than there are) */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct escape_state);
} escape_state SEC(".maps");

static __always_inline struct escape_state *escape_state_get(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&escape_state, &zero);
}

/* A marked task may be outside the traced cgroups from now on. */
static __always_inline void set_outside(void)
{
	struct escape_state *s = escape_state_get();
	if (s && !s->outside)
		s->outside = 1;
}

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

/* Whether the current task is in a traced cgroup (or below one). */
static __always_inline bool traced_cgroup(void)
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

/*
 * Whether a task outside the traced cgroups can be marked: one did leave
 * (escape_state.outside), or user space untraced a cgroup it had traced
 * (STATES_UNTRACED). Two array loads.
 */
static __always_inline bool marks_outside(void)
{
	struct escape_state *s = escape_state_get();
	if (!s || s->outside)
		return true;
	if (glob_targets) {
		__u32 zero = 0;
		__u64 *gen = bpf_map_lookup_elem(&states_gen, &zero);
		return !gen || (*gen & STATES_UNTRACED);
	}
	return false;
}

/*
 * Whether the current task is traced: in a traced cgroup, or marked
 * (created by a traced task, or taken over by one). The cgroup decision
 * comes first; an untraced task then pays the task-storage lookup only
 * once a marked task may be outside the traced cgroups.
 */
static __always_inline bool traced(void)
{
	if (traced_cgroup())
		return true;
	if (!marks_outside())
		return false;
	return bpf_task_storage_get(&marks, bpf_get_current_task_btf(), 0, 0) != NULL;
}

/* Cgroups deeper than this below the root are judged by their first ancestors. */
#define MAX_CGROUP_DEPTH 32

/* Whether the cgroup id is traced, or below one that is (any task's). */
static __always_inline bool traced_cgroup_of(struct task_struct *task)
{
	struct cgroup *cg = BPF_CORE_READ(task, cgroups, dfl_cgrp);

	if (glob_targets) {
		__u64 id = BPF_CORE_READ(cg, kn, id);
		struct cgroup_state *st = bpf_map_lookup_elem(&cgroup_states, &id);
		return st && st->traced;
	}
	for (int i = 0; i < MAX_CGROUP_DEPTH && cg; i++) {
		__u64 id = BPF_CORE_READ(cg, kn, id);
		if (bpf_map_lookup_elem(&target_ids, &id))
			return true;
		cg = BPF_CORE_READ(cg, self.parent, cgroup);
	}
	return false;
}

/* Whether any task (not only the current one) is traced. */
static __always_inline bool task_traced(struct task_struct *task)
{
	return bpf_task_storage_get(&marks, task, 0, 0) || traced_cgroup_of(task);
}

static __always_inline __u64 task_cgroup_id(struct task_struct *task)
{
	return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
}

/*
 * Mark task traced for the rest of its life (see marks), and if it leads
 * its process, list the process in members. Returns the mark (NULL if the
 * kernel could not allocate it).
 */
static __always_inline struct task_mark *mark_task(struct task_struct *task, __u32 flags)
{
	struct task_mark *m = bpf_task_storage_get(&marks, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!m)
		return NULL;
	m->cgroup_id = task_cgroup_id(task);
	m->mflags |= flags;
	if (BPF_CORE_READ(task, pid) == BPF_CORE_READ(task, tgid)) {
		__u32 tgid = BPF_CORE_READ(task, tgid);
		struct member mb = {.start_time = BPF_CORE_READ(task, start_boottime), .mflags = flags};
		bpf_map_update_elem(&members, &tgid, &mb, BPF_ANY);
	}
	return m;
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

#endif /* AGENTTRACE_COMMON_H */
