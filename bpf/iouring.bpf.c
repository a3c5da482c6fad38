// SPDX-License-Identifier: GPL-2.0-only
/*
 * io_uring: io_uring_setup (a kind of its own, so that a ring's creation is
 * visible), and the open operations IORING_OP_OPENAT and IORING_OP_OPENAT2,
 * which make no syscall of their own. At io_uring_submit_req the request
 * has been prepared: its path is the kernel's own copy (struct filename),
 * read there, with the flags, mode and dirfd the kernel will use. The
 * record is finished at io_uring_complete with the result and the file
 * installed, like any open; a completion that does not fit the completion
 * ring reaches io_uring_cqe_overflow instead, with the ring and user_data
 * but not the request, hence the second map. The network requests
 * (net_iouring.bpf.c) share these programs: one run per request.
 */
#include "syscalls.h"

#define IOSQE_CQE_SKIP_SUCCESS (1 << IOSQE_CQE_SKIP_SUCCESS_BIT)
#define IORING_SETUP_CQSIZE (1U << 3)
#define IORING_FILE_INDEX_ALLOC (~0U)
#define FFS_MASK 3UL /* flag bits in io_rsrc_node.file_ptr */

/* io_uring opens between submission and completion, by request. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64); /* struct io_kiocb * */
	__type(value, struct open_event);
} uring_opens SEC(".maps");

struct uring_key {
	__u64 ctx;
	__u64 user_data;
};

/* The same requests by (ring, user_data), for io_uring_cqe_overflow. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct uring_key);
	__type(value, __u64);
} uring_by_user_data SEC(".maps");

static __always_inline void enter_uring_setup(__u32 sc, __u32 abi, struct sys_args *args)
{
	struct {
		__u32 sq_entries;
		__u32 cq_entries;
		__u32 flags;
	} p;

	struct inflight_rec *rec = start_inflight(KIND_IO_URING);
	if (!rec)
		return;
	struct io_uring_event *e = &rec->uring;

	rec->hdr_valid = 0; /* io_uring_event overlays the cached header */
	fill_header(&e->hdr, KIND_IO_URING);
	e->hdr.flags |= abi;
	e->syscall = sc;
	e->entries = (__u32)args->a[0];
	e->setup_flags = 0;
	e->cq_entries = 0;
	if (bpf_probe_read_user(&p, sizeof(p), (void *)args->a[1])) {
		e->hdr.flags |= EF_ARG_FAULT;
		return;
	}
	e->setup_flags = p.flags;
	e->cq_entries = p.cq_entries;
}

static __always_inline void exit_uring_setup(struct inflight_rec *rec, long ret)
{
	struct io_uring_event *e = &rec->uring;

	e->ret = ret;
	stamp(&e->hdr);
	emit(e, sizeof(*e), KIND_IO_URING);
}

SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(handle_io_uring_submit_req, struct io_kiocb *req)
{
	__u8 opcode = KREAD(struct io_kiocb, req, opcode);
	if (opcode != IORING_OP_OPENAT && opcode != IORING_OP_OPENAT2)
		return uring_submit_net(req, opcode);
	if (!traced())
		return 0;

	static const struct open_event zero;
	__u64 key = (__u64)req;
	if (bpf_map_update_elem(&uring_opens, &key, &zero, BPF_ANY)) {
		count_lost_inflight(KIND_OPEN);
		return 0;
	}
	struct open_event *e = bpf_map_lookup_elem(&uring_opens, &key);
	if (!e)
		return 0;

	struct io_open *open = (void *)req + bpf_core_field_offset(struct io_kiocb, cmd);
	struct filename *name = KREAD(struct io_open, open, filename);

	fill_header(&e->hdr, KIND_OPEN);
	e->syscall = opcode == IORING_OP_OPENAT ? SC_IO_URING_OPENAT : SC_IO_URING_OPENAT2;
	e->dirfd = KREAD(struct io_open, open, dfd);
	e->flags = KREAD(struct io_open, open, how.flags);
	e->mode = KREAD(struct io_open, open, how.mode);
	e->resolve = KREAD(struct io_open, open, how.resolve);
	e->arg = KREAD(struct io_open, open, file_slot);
	e->user_data = KREAD(struct io_kiocb, req, cqe.user_data);
	/* The low bits of req->flags are the SQE's flags as submitted. */
	e->sqe_flags = KREAD(struct io_kiocb, req, flags) & 0xff;
	long n = bpf_probe_read_kernel_str(e->names, PATH_BYTES, KREAD(struct filename, name, name));
	e->path_len = n > 0 ? n - 1 : 0;

	if (e->sqe_flags & IOSQE_CQE_SKIP_SUCCESS) {
		/* No completion will come for a success: record it now, without one. */
		e->oflags |= OF_NO_COMPLETION;
		stamp(&e->hdr);
		emit(e, offsetof(struct open_event, names) + (e->path_len & PATH_MASK) + 1, KIND_OPEN);
		bpf_map_delete_elem(&uring_opens, &key);
		return 0;
	}
	struct uring_key uk = {.ctx = (__u64)KREAD(struct io_kiocb, req, ctx), .user_data = e->user_data};
	if (bpf_map_update_elem(&uring_by_user_data, &uk, &key, BPF_NOEXIST)) {
		/* Another pending open of this ring has the same user_data. */
		e->oflags |= OF_USER_DATA_SHARED;
		__u64 *other = bpf_map_lookup_elem(&uring_by_user_data, &uk);
		struct open_event *o = other ? bpf_map_lookup_elem(&uring_opens, other) : NULL;
		if (o)
			o->oflags |= OF_USER_DATA_SHARED;
	}
	return 0;
}

/* The file a fixed-slot open installed: the ring's file table at slot. */
static __always_inline struct file *uring_slot_file(struct io_ring_ctx *ctx, __u32 slot)
{
	struct io_rsrc_node **nodes, *node = NULL;

	if (!bpf_core_field_exists(struct io_file_table, data))
		return NULL;
	if (slot >= KREAD(struct io_ring_ctx, ctx, file_table.data.nr))
		return NULL;
	nodes = KREAD(struct io_ring_ctx, ctx, file_table.data.nodes);
	bpf_probe_read_kernel(&node, sizeof(node), &nodes[slot]);
	if (!node)
		return NULL;
	return (struct file *)(KREAD(struct io_rsrc_node, node, file_ptr) & ~FFS_MASK);
}

/* Emit a pending io_uring open with its result, and forget it. */
static __always_inline void complete_uring_open(struct open_event *e, __u64 key, __u64 ctx, __s32 res)
{
	struct file *file = NULL;

	if (res >= 0) {
		__u32 slot = e->arg;
		if (slot) {
			/* file_slot is the slot + 1, or "allocate one": then res is the slot. */
			slot = slot == IORING_FILE_INDEX_ALLOC ? (__u32)res : slot - 1;
			e->arg = slot;
			e->oflags |= OF_FILE_SLOT;
			file = uring_slot_file((struct io_ring_ctx *)ctx, slot);
		} else {
			file = current_fd(res);
		}
	}
	finish_open(e, res, file, KIND_OPEN);

	struct uring_key uk = {.ctx = ctx, .user_data = e->user_data};
	__u64 *indexed = bpf_map_lookup_elem(&uring_by_user_data, &uk);
	if (indexed && *indexed == key)
		bpf_map_delete_elem(&uring_by_user_data, &uk);
	bpf_map_delete_elem(&uring_opens, &key);
}

SEC("tp_btf/io_uring_complete")
int BPF_PROG(handle_io_uring_complete, void *ring, void *req, struct io_uring_cqe *cqe)
{
	if (!req)
		return 0; /* an auxiliary completion, of no request */
	__u8 opcode = KREAD(struct io_kiocb, req, opcode);
	if (opcode != IORING_OP_OPENAT && opcode != IORING_OP_OPENAT2)
		return uring_complete_net(req, cqe);
	__u64 key = (__u64)req;
	struct open_event *e = bpf_map_lookup_elem(&uring_opens, &key);
	if (!e)
		return 0;
	complete_uring_open(e, key, (__u64)ring, KREAD(struct io_kiocb, req, cqe.res));
	return 0;
}

SEC("tp_btf/io_uring_cqe_overflow")
int BPF_PROG(handle_io_uring_cqe_overflow, void *ring, __u64 user_data, __s32 res, __u32 cflags, void *ocqe)
{
	struct uring_key uk = {.ctx = (__u64)ring, .user_data = user_data};
	__u64 *req = bpf_map_lookup_elem(&uring_by_user_data, &uk);
	if (!req)
		return 0;
	__u64 key = *req;
	struct open_event *e = bpf_map_lookup_elem(&uring_opens, &key);
	if (!e)
		return 0;
	complete_uring_open(e, key, (__u64)ring, res);
	return 0;
}
