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

/*
 * Nonzero while the reader sleeps in epoll, waiting for a wakeup; user
 * space writes it through a shared mapping around the wait (ring.go). A
 * wakeup is an interrupt the emitting CPU sends itself (irq_work): on a
 * virtual machine a trap to the hypervisor, the costliest step of an
 * emit. While the reader is awake (reading, or holding records it has not
 * committed yet, which the kernel counts as available data) none is sent.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u32);
} reader SEC(".maps");

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

/*
 * Per-CPU scratch for a path walk: the components found going up from the
 * file (dentry and name length), then written out root first.
 */
struct path_scratch {
	__u64 from_dentry; /* what resolve_path resolves */
	__u64 from_mnt;
	__u32 n;        /* components found */
	__u32 len;      /* bytes of the path so far, '/'s included */
	__u32 pos;      /* writing: bytes written */
	__u32 pseudo;   /* the top component is a pseudo file's own name: no '/' */
	__u64 dentry[MAX_PATH_COMPONENTS];
	__u32 name_len[MAX_PATH_COMPONENTS];
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

/*
 * Batch wakeups, but never let a large backlog wait for the reader's poll:
 * a reader asleep (reader) is woken once wakeup_bytes are pending; one that
 * is awake will find the record without. The reader sleeps only when it
 * has read and committed everything, so the available data is then exactly
 * what it has not read.
 */
static __always_inline __u64 wakeup_flags(void)
{
	__u32 zero = 0;
	__u32 *waiting = bpf_map_lookup_elem(&reader, &zero);

	if (waiting && !*waiting)
		return BPF_RB_NO_WAKEUP;
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
 * bpf_rdonly_cast (6.2+) turns a kernel pointer into a typed one that the
 * verifier lets the program load from directly (a fault-safe load), where
 * bpf_probe_read_kernel costs a helper call per field. KREAD uses it when
 * the kernel has it; on older kernels the other branch is the one that
 * verifies, and the weak kfunc's call is never reached.
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
#define HAVE_RDONLY_CAST (!!bpf_rdonly_cast)
#define KCAST(type, ptr) ((type *)bpf_rdonly_cast((const void *)(ptr), bpf_core_type_id_kernel(type)))
/* One member (a.b.c allowed, no pointer chasing) of the kernel object of type at ptr. */
#define KREAD(type, ptr, member) \
	(HAVE_RDONLY_CAST ? KCAST(type, ptr)->member : BPF_CORE_READ((type *)(ptr), member))

#define MNT_INTERNAL 0x4000
#define PIDFS_MAGIC 0x50494446

/* The mount namespace of the host (its inode number), set from user space. */
const volatile __u32 host_mnt_ns = 0;

/* Where the current task's paths start: its root, and whether it is the host's. */
struct task_root {
	__u64 dentry;      /* struct dentry * */
	__u64 mnt;         /* struct vfsmount * */
	__u32 use;         /* zero: not of interest (no path_in_ns) */
	__u32 other_ns;    /* the task's mount namespace is not the host's */
};

static __always_inline void current_root(struct task_root *r)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fs_struct *fs = KREAD(struct task_struct, task, fs);
	struct nsproxy *ns = KREAD(struct task_struct, task, nsproxy);
	struct mnt_namespace *mnt_ns = KREAD(struct nsproxy, ns, mnt_ns);

	r->dentry = (__u64)KREAD(struct fs_struct, fs, root.dentry);
	r->mnt = (__u64)KREAD(struct fs_struct, fs, root.mnt);
	r->use = 1;
	r->other_ns = KREAD(struct mnt_namespace, mnt_ns, ns.inum) != host_mnt_ns;
}

/*
 * A name stored in the dentry itself (d_shortname) is copied a machine word
 * at a time, past its end: a path's destination must have NAME_BYTES more
 * than PATH_BYTES - 1 (written next, or never sent).
 */
#define SHORT_NAME_BYTES 40
/* In path_scratch.name_len: the name is in the dentry (d_shortname). */
#define SHORT_NAME 0x10000

/*
 * Write the path of (dentry, vfsmount) to dst (at most PATH_BYTES - 1 bytes,
 * no NUL; dst must have NAME_BYTES more), walking up through mounts to the
 * root of the mount namespace, and set fi->path_len.
 *
 * The walk goes up from the file and notes each component; the path is then
 * written root first, straight into the record: a name stored in the dentry
 * itself (the short ones, most of them) is copied with direct loads, a
 * longer one with one helper call. When the components do not fit, the
 * path is its last components (FF_PATH_TRUNCATED). The loop state lives in
 * map memory on purpose: the verifier then sees every iteration alike and
 * the loops verify in linear time.
 *
 * Also sets FF_FILELESS for a file on a kernel-internal mount, whose "path"
 * is then its own name (memfd:NAME); and, when root is given, ns_len and
 * ns_seen where the walk met the task's root, and FF_IN_NS when that root is
 * not the namespace's or the namespace is not the host's.
 */
static __always_inline void walk_path(struct path_scratch *s, struct file_info *fi, struct dentry *dentry,
				      struct vfsmount *vfsmnt, struct task_root *root, char *dst)
{
	struct mount *mnt = container_of(vfsmnt, struct mount, mnt);
	struct dentry *mnt_root = KREAD(struct vfsmount, vfsmnt, mnt_root);
	bool complete = false;

	s->n = 0;
	s->len = 0;
	s->pseudo = 0;
	fi->ns_len = 0;
	fi->ns_seen = 0;
	if (KREAD(struct vfsmount, vfsmnt, mnt_flags) & MNT_INTERNAL)
		fi->flags |= FF_FILELESS;
	for (int i = 0; i < MAX_PATH_COMPONENTS; i++) {
		struct dentry *parent = KREAD(struct dentry, dentry, d_parent);

		if (root->use && !fi->ns_seen && (__u64)dentry == root->dentry && (__u64)&mnt->mnt == root->mnt) {
			fi->ns_seen = 1;
			fi->ns_len = s->len;
		}
		if (dentry == mnt_root) {
			struct mount *mnt_parent = KREAD(struct mount, mnt, mnt_parent);
			if (mnt == mnt_parent) {
				complete = true;
				break;
			}
			/* Cross to the mount point in the parent mount. */
			dentry = KREAD(struct mount, mnt, mnt_mountpoint);
			mnt = mnt_parent;
			mnt_root = KREAD(struct mount, mnt, mnt.mnt_root);
			continue;
		}
		/*
		 * A root that is not its mount's: a pseudo file's own dentry
		 * (memfd, pipe, socket: no parent at all) or a disconnected one.
		 * Its name is all there is: no leading '/'.
		 */
		bool last = dentry == parent;
		__u32 len = KREAD(struct dentry, dentry, d_name.len);
		__u32 total = s->len + len + (last ? 0 : 1);
		__u32 n = s->n;
		if (len > NAME_BYTES - 1 || total > PATH_BYTES - 1 || n >= MAX_PATH_COMPONENTS)
			break;
		s->dentry[n & (MAX_PATH_COMPONENTS - 1)] = (__u64)dentry;
		/*
		 * Decided here, and kept in map memory, so that the writing loop
		 * does not split the verifier's state on len.
		 */
		if (HAVE_RDONLY_CAST && bpf_core_field_exists(struct dentry, d_shortname) && len <= SHORT_NAME_BYTES &&
		    (__u64)KREAD(struct dentry, dentry, d_name.name) ==
			    (__u64)dentry + bpf_core_field_offset(struct dentry, d_shortname))
			len |= SHORT_NAME;
		s->name_len[n & (MAX_PATH_COMPONENTS - 1)] = len;
		s->n = n + 1;
		s->len = total;
		if (last) {
			s->pseudo = 1;
			complete = true;
			break;
		}
		dentry = parent;
	}

	/* Root first. */
	s->pos = 0;
	for (int j = 0; j < MAX_PATH_COMPONENTS; j++) {
		if (j >= s->n)
			break;
		__u32 k = (s->n - 1 - j) & (MAX_PATH_COMPONENTS - 1);
		struct dentry *d = (struct dentry *)s->dentry[k];
		__u32 v = s->name_len[k];
		__u32 len = v & (NAME_BYTES - 1);
		__u32 pos = s->pos;
		if (!(j == 0 && s->pseudo)) {
			dst[pos & PATH_MASK] = '/';
			pos++;
		}
		if (HAVE_RDONLY_CAST && bpf_core_field_exists(struct dentry, d_shortname) && (v & SHORT_NAME)) {
			struct dentry *dd = KCAST(struct dentry, d);
			char *at = &dst[pos & PATH_MASK];
			((__u64 *)at)[0] = dd->d_shortname.words[0];
			((__u64 *)at)[1] = dd->d_shortname.words[1];
			((__u64 *)at)[2] = dd->d_shortname.words[2];
			((__u64 *)at)[3] = dd->d_shortname.words[3];
			((__u64 *)at)[4] = dd->d_shortname.words[4];
		} else {
			bpf_probe_read_kernel(&dst[pos & PATH_MASK], len, KREAD(struct dentry, d, d_name.name));
		}
		s->pos = pos + len;
	}
	fi->path_len = s->pos & PATH_MASK;
	__u32 written = fi->path_len;
	if (s->n == 0 && !(fi->flags & FF_FILELESS)) {
		/* The root itself. */
		dst[0] = '/';
		fi->path_len = 1;
	}
	if (!complete)
		fi->flags |= FF_PATH_TRUNCATED;
	if (root->use && !(fi->flags & FF_FILELESS) && (root->other_ns || !fi->ns_seen || fi->ns_len != written))
		fi->flags |= FF_IN_NS;
}

/* The inode's change time before 6.11 (6.6-6.10, and older). */
struct inode___ctime_6_6 {
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

struct inode___ctime_old {
	struct timespec64 i_ctime;
} __attribute__((preserve_access_index));

/* The inode's identity, type and change time. */
static __always_inline void read_inode(struct file_info *fi, struct inode *inode)
{
	struct super_block *sb = KREAD(struct inode, inode, i_sb);

	fi->ino = KREAD(struct inode, inode, i_ino);
	fi->mode = KREAD(struct inode, inode, i_mode);
	fi->uid = KREAD(struct inode, inode, i_uid.val);
	fi->gid = KREAD(struct inode, inode, i_gid.val);
	fi->dev = KREAD(struct super_block, sb, s_dev);
	fi->magic = KREAD(struct super_block, sb, s_magic);
	if (bpf_core_field_exists(struct inode, i_ctime_sec)) {
		/* Bit 31 of the ns is I_CTIME_QUERIED (multigrain timestamps, 6.13+). */
		fi->ctime = (__u64)KREAD(struct inode, inode, i_ctime_sec) * 1000000000 +
			    (KREAD(struct inode, inode, i_ctime_nsec) & 0x7fffffff);
	} else if (bpf_core_field_exists(struct inode___ctime_6_6, __i_ctime)) {
		fi->ctime = (__u64)BPF_CORE_READ((struct inode___ctime_6_6 *)inode, __i_ctime.tv_sec) * 1000000000 +
			    BPF_CORE_READ((struct inode___ctime_6_6 *)inode, __i_ctime.tv_nsec);
	} else {
		fi->ctime = (__u64)BPF_CORE_READ((struct inode___ctime_old *)inode, i_ctime.tv_sec) * 1000000000 +
			    BPF_CORE_READ((struct inode___ctime_old *)inode, i_ctime.tv_nsec);
	}
	if (KREAD(struct inode, inode, __i_nlink) == 0)
		fi->flags |= FF_DELETED;
}

/* Where a path walk writes: PATH_BYTES - 1 bytes and the room walk_path needs. */
struct path_out {
	char buf[PATH_BYTES - 1 + NAME_BYTES];
};

/*
 * Resolve (dentry, vfsmount) into fi and its path into dst (see walk_path):
 * the file of a struct file or path, never anything from user memory.
 *
 * A global function: the verifier checks it once, on its own, instead of
 * once for every way each caller can reach each call (its loops would
 * otherwise cost most of the million instructions a program may take to
 * verify).
 */
__noinline int resolve_path(struct path_scratch *s, struct file_info *fi, struct task_root *root, struct path_out *dst)
{
	if (!s || !fi || !root || !dst)
		return 0;
	struct dentry *dentry = (struct dentry *)s->from_dentry;
	struct vfsmount *mnt = (struct vfsmount *)s->from_mnt;
	struct mount *m = container_of(mnt, struct mount, mnt);

	fi->flags = FF_PRESENT;
	read_inode(fi, KREAD(struct dentry, dentry, d_inode));
	fi->mnt_id = KREAD(struct mount, m, mnt_id);
	/* d_unhashed(): unlinked, or never in the dcache (pseudo files). */
	if (!KREAD(struct dentry, dentry, d_hash.pprev) && dentry != KREAD(struct dentry, dentry, d_parent))
		fi->flags |= FF_DELETED;
	walk_path(s, fi, dentry, mnt, root, dst->buf);
	if (fi->flags & FF_FILELESS)
		fi->flags &= ~FF_DELETED;
	return 0;
}

static __always_inline void resolve_file(struct path_scratch *s, struct file_info *fi, struct file *file,
					 struct task_root *root, char *dst)
{
	s->from_dentry = (__u64)KREAD(struct file, file, f_path.dentry);
	s->from_mnt = (__u64)KREAD(struct file, file, f_path.mnt);
	resolve_path(s, fi, root, (struct path_out *)dst);
}

/* The struct file behind the current task's descriptor fd, or NULL. */
static __always_inline struct file *current_fd(long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct files_struct *files = KREAD(struct task_struct, task, files);
	struct fdtable *fdt = KREAD(struct files_struct, files, fdt);
	struct file **fds = KREAD(struct fdtable, fdt, fd);
	struct file *file = NULL;

	if (fd < 0 || fd >= KREAD(struct fdtable, fdt, max_fds))
		return NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

static __always_inline struct path_scratch *path_scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&pathbuf, &zero);
}

#endif /* AGENTTRACE_COMMON_H */
