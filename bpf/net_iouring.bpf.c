// SPDX-License-Identifier: GPL-2.0-only
/*
 * Network requests made through io_uring: CONNECT, SEND and SENDMSG (and
 * their zero-copy variants) with a destination, ACCEPT, BIND and LISTEN.
 * tp_btf/io_uring_submit_req runs after the request's prep: the record is
 * built there and kept by request until tp_btf/io_uring_complete adds the
 * result and the socket. A send's destination is the kernel's copy the prep
 * made (async_data->msg.msg_name); a connect's or bind's is the one the
 * cgroup hook saw when the request was issued (net.bpf.c, by socket). IORING_OP_SOCKET
 * is not a record, as socket(2) is not: the socket it makes appears in the
 * records of what is done with it. One program per tracepoint, in
 * iouring.bpf.c, calls these for every request that is not an open.
 */
#include "net.h"

#define IOSQE_MASK 0x7f /* req->flags' low bits are the SQE's IOSQE_* flags */
#define REQ_F_FIXED_FILE (1ULL << REQ_F_FIXED_FILE_BIT)
#define REQ_F_CQE_SKIP (1ULL << REQ_F_CQE_SKIP_BIT)

/* Requests between submission and completion, by struct io_kiocb pointer. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct net_event);
} uring_net SEC(".maps");

/*
 * How many requests uring_net holds (approximately: only ever read as
 * zero or not), so that the completion of every other io_uring request on
 * the host costs an array lookup, not a hash lookup.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} uring_net_pending SEC(".maps");

/* Per-CPU room to build a record (too large for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct net_event);
} uring_scratch SEC(".maps");

/* Copy len bytes of the kernel's copy of an address into the record. */
static __always_inline void uring_addr(struct net_event *e, void *kaddr, __u32 len)
{
	if (!kaddr || !len)
		return;
	if (len > SOCKADDR_BYTES)
		len = SOCKADDR_BYTES;
	if (bpf_probe_read_kernel(e->addr, len, kaddr) == 0) {
		e->addr_len = len;
		e->nflags |= NF_ADDR_KERNEL;
	}
}

static __always_inline void uring_pending_add(__s64 n)
{
	__u32 zero = 0;
	__s64 *p = bpf_map_lookup_elem(&uring_net_pending, &zero);
	if (p)
		__sync_fetch_and_add(p, n);
}

/* io_uring_submit_req of a request that is not an open (iouring.bpf.c's program dispatches on op). */
static __always_inline int uring_submit_net(struct io_kiocb *req, __u8 op)
{
	__u32 kind, sc;

	switch (op) {
	case IORING_OP_CONNECT: kind = KIND_CONNECT; sc = SC_IO_URING_CONNECT; break;
	case IORING_OP_SEND: kind = KIND_SEND; sc = SC_IO_URING_SEND; break;
	case IORING_OP_SEND_ZC: kind = KIND_SEND; sc = SC_IO_URING_SEND_ZC; break;
	case IORING_OP_SENDMSG: kind = KIND_SEND; sc = SC_IO_URING_SENDMSG; break;
	case IORING_OP_SENDMSG_ZC: kind = KIND_SEND; sc = SC_IO_URING_SENDMSG_ZC; break;
	case IORING_OP_ACCEPT: kind = KIND_ACCEPT; sc = SC_IO_URING_ACCEPT; break;
	case IORING_OP_BIND: kind = KIND_BIND; sc = SC_IO_URING_BIND; break;
	case IORING_OP_LISTEN: kind = KIND_LISTEN; sc = SC_IO_URING_LISTEN; break;
	default: return 0;
	}
	if (!traced())
		return 0;

	__u32 zero = 0;
	struct net_event *e = bpf_map_lookup_elem(&uring_scratch, &zero);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, kind);
	e->syscall = sc;
	e->nflags = NF_IO_URING;
	e->user_data = BPF_CORE_READ(req, cqe.user_data);
	__u64 rflags = BPF_CORE_READ(req, flags);
	e->sqe_flags = rflags & IOSQE_MASK;
	if (rflags & REQ_F_FIXED_FILE)
		e->nflags |= NF_FIXED_FILE;
	e->fd = BPF_CORE_READ(req, cqe.fd);

	struct io_async_msghdr *io = BPF_CORE_READ(req, async_data);
	void *cmd = &req->cmd;
	switch (op) {
	case IORING_OP_CONNECT:
		/* The address: from the cgroup hook when the request is issued. */
		e->addrlen = BPF_CORE_READ((struct io_connect *)cmd, addr_len);
		break;
	case IORING_OP_BIND:
		e->addrlen = BPF_CORE_READ((struct io_bind *)cmd, addr_len);
		break;
	case IORING_OP_LISTEN:
		e->backlog = BPF_CORE_READ((struct io_listen *)cmd, backlog);
		break;
	case IORING_OP_ACCEPT:
		e->flags = BPF_CORE_READ((struct io_accept *)cmd, flags);
		if (BPF_CORE_READ((struct io_accept *)cmd, file_slot))
			e->nflags |= NF_FIXED_NEW;
		break;
	default: {
		/* SEND, SENDMSG and the zero-copy ones: only those that name a destination. */
		struct io_sr_msg *sr = cmd;
		void *name = BPF_CORE_READ(io, msg.msg_name);
		__u32 namelen = BPF_CORE_READ(io, msg.msg_namelen);
		if (!name || !namelen)
			return 0;
		e->flags = BPF_CORE_READ(sr, msg_flags);
		if (op == IORING_OP_SEND || op == IORING_OP_SEND_ZC) {
			e->size = (__u32)BPF_CORE_READ(sr, len);
			e->nflags |= NF_SIZE;
		}
		e->addrlen = namelen;
		uring_addr(e, name, namelen);
		break;
	}
	}

	if (rflags & REQ_F_CQE_SKIP) {
		/*
		 * IOSQE_CQE_SKIP_SUCCESS: a success posts no completion, so the
		 * record is made now, without a result.
		 */
		e->ret = 0;
		e->nflags |= NF_NO_RESULT;
		stamp(&e->hdr);
		emit(e, sizeof(*e), kind);
		return 0;
	}
	__u64 key = (__u64)req;
	if (bpf_map_update_elem(&uring_net, &key, e, BPF_ANY)) {
		count_lost_inflight(kind);
		return 0;
	}
	uring_pending_add(1);
	return 0;
}

/* io_uring_complete of a request that is not an open (iouring.bpf.c's program dispatches). */
static __always_inline int uring_complete_net(void *req, struct io_uring_cqe *cqe)
{
	__u32 zero = 0;
	__s64 *pending = bpf_map_lookup_elem(&uring_net_pending, &zero);
	if (!pending || *pending <= 0 || !req)
		return 0;
	__u64 key = (__u64)req;
	struct net_event *e = bpf_map_lookup_elem(&uring_net, &key);
	if (!e)
		return 0;

	e->ret = BPF_CORE_READ(cqe, res);
	struct sock *sk = NULL;
	if (e->hdr.kind == KIND_ACCEPT) {
		/* The new descriptor is in the submitter's table (its own thread, or an io worker of it). */
		if (e->ret >= 0 && !(e->nflags & NF_FIXED_NEW) && bpf_get_current_pid_tgid() >> 32 == e->hdr.pid)
			sk = fd_sock((int)e->ret);
	} else {
		struct file *file = BPF_CORE_READ((struct io_kiocb *)req, file);
		if (file)
			sk = file_sock(file);
		if (sk && (e->hdr.kind == KIND_CONNECT || e->hdr.kind == KIND_BIND)) {
			/* The address the cgroup hook saw when the request was issued. */
			__u64 skey = (__u64)sk;
			struct hook_addr *h = bpf_map_lookup_elem(&hook_addrs, &skey);
			if (h) {
				__u32 n = h->len;
				if (n > SOCKADDR_BYTES)
					n = SOCKADDR_BYTES;
				bpf_probe_read_kernel(e->addr, n, h->addr);
				e->addr_len = n;
				e->nflags |= NF_ADDR_KERNEL;
				bpf_map_delete_elem(&hook_addrs, &skey);
			}
		}
	}
	if (sk) {
		fill_sock(&e->sock, sk);
		e->nflags |= NF_SOCK;
	}
	stamp(&e->hdr);
	emit(e, sizeof(*e), e->hdr.kind);
	bpf_map_delete_elem(&uring_net, &key);
	uring_pending_add(-1);
	return 0;
}
