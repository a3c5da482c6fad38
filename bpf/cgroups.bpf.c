// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgroups: the daemon's target patterns, matched against a new cgroup's
 * name at mkdir, before the directory becomes visible.
 */
#include "common.h"

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

