// SPDX-License-Identifier: GPL-2.0-only
/*
 * Network: connect, sendto, sendmsg, sendmmsg, bind, listen, accept and
 * accept4 (also through i386 socketcall), paired at sys_enter/sys_exit.
 *
 * Addresses are the kernel's own copy: the cgroup sock_addr hooks (attached
 * at the cgroup2 root, with the same traced() decision) run after the kernel
 * copied the caller's address and before it uses it, and copy it into the
 * thread's in-flight record. What they do not cover (a family without a
 * hook: AF_APPLETALK, netlink, packet, a UDP send the kernel refused before
 * its hook) keeps the address read once at syscall entry, flagged as such;
 * nothing is read again at exit. The socket itself (cookie, type, local and
 * remote address) comes from the kernel's struct sock.
 *
 * A send names its destination per message: tp_btf/sock_send_length, which
 * the socket layer calls with each message's result, emits one record per
 * message that named one (sendmmsg: one per message). tp_btf/
 * inet_sock_set_state records how every recorded connect left SYN_SENT.
 */
#include "net.h"

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

/* Per-CPU room for a hook_addr (too large for the stack with the rest). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hook_addr);
} hook_scratch SEC(".maps");

enum net_hook {
	HOOK_CONNECT = 1,
	HOOK_SENDMSG = 2,
	HOOK_BIND = 3,
};

/* The 32-bit struct msghdr of the i386 and x32 ABIs. */
struct compat_msghdr32 {
	__u32 msg_name;
	__u32 msg_namelen;
	__u32 msg_iov;
	__u32 msg_iovlen;
	__u32 msg_control;
	__u32 msg_controllen;
	__u32 msg_flags;
};

/* socketcall(call, args): read n arguments; false if they cannot be read. */
static __always_inline bool socketcall_args(__u64 uargs, __u64 *a, __u32 n)
{
	__u32 call_args[6] = {};

	if (n > 6 || bpf_probe_read_user(call_args, n * sizeof(__u32), (void *)uargs))
		return false;
	for (int i = 0; i < 6; i++)
		a[i] = call_args[i];
	return true;
}

/* The call a socketcall(2) makes, and how many arguments it takes. */
static __always_inline __u32 socketcall_call(__u64 call, __u32 *nargs)
{
	switch (call) {
	case SYS_BIND: *nargs = 3; return SC_BIND;
	case SYS_CONNECT: *nargs = 3; return SC_CONNECT;
	case SYS_LISTEN: *nargs = 2; return SC_LISTEN;
	case SYS_ACCEPT: *nargs = 3; return SC_ACCEPT;
	case SYS_SENDTO: *nargs = 6; return SC_SENDTO;
	case SYS_SENDMSG: *nargs = 3; return SC_SENDMSG;
	case SYS_ACCEPT4: *nargs = 4; return SC_ACCEPT4;
	case SYS_SENDMMSG: *nargs = 4; return SC_SENDMMSG;
	}
	return SC_UNKNOWN;
}

static __always_inline __u32 net_kind(__u32 call)
{
	switch (call) {
	case SC_CONNECT: return KIND_CONNECT;
	case SC_SENDTO: case SC_SENDMSG: case SC_SENDMMSG: return KIND_SEND;
	case SC_BIND: return KIND_BIND;
	case SC_LISTEN: return KIND_LISTEN;
	}
	return KIND_ACCEPT;
}

/*
 * Read the caller's address once, at entry: the record keeps it only where
 * no kernel hook replaces it with the kernel's copy.
 */
static __always_inline void read_user_addr(struct net_event *e, __u64 addr, __u32 addrlen)
{
	__u32 n = addrlen;

	if (!addr || !addrlen)
		return;
	if (n > SOCKADDR_BYTES)
		n = SOCKADDR_BYTES;
	if (bpf_probe_read_user(e->addr, n, (void *)addr) == 0) {
		e->addr_len = n;
		e->nflags |= NF_ADDR_USER;
	} else {
		e->hdr.flags |= EF_ADDR_FAULT;
	}
}

/* sendmsg: the destination named by the caller's struct msghdr. */
static __always_inline void read_user_msg_name(struct net_event *e, __u64 umsg, bool compat)
{
	__u64 name = 0;
	__u32 namelen = 0;

	if (compat) {
		struct compat_msghdr32 m;
		if (bpf_probe_read_user(&m, sizeof(m), (void *)umsg))
			return;
		name = m.msg_name;
		namelen = m.msg_namelen;
	} else {
		struct user_msghdr m;
		if (bpf_probe_read_user(&m, sizeof(m), (void *)umsg))
			return;
		name = (__u64)m.msg_name;
		namelen = m.msg_namelen;
	}
	e->addrlen = namelen;
	read_user_addr(e, name, namelen);
}

static __always_inline void enter_net(__u32 sc, __u32 abi, struct sys_args *args)
{
	__u64 a[6];
	__u32 call = sc, nargs = 0;
	bool have_args = true;

	for (int i = 0; i < 6; i++)
		a[i] = args->a[i];
	if (sc == SC_SOCKETCALL) {
		call = socketcall_call(args->a[0], &nargs);
		if (call == SC_UNKNOWN)
			return;
		have_args = socketcall_args(args->a[1], a, nargs);
		if (!have_args) {
			for (int i = 0; i < 6; i++)
				a[i] = 0;
			a[0] = (__u64)-1;
		}
	}

	__u32 kind = net_kind(call);
	struct inflight_rec *rec = start_inflight(kind);
	if (!rec)
		return;
	struct net_event *e = &rec->net;

	fill_header_cached(rec, &e->hdr, kind);
	e->hdr.flags |= abi;
	e->syscall = sc;
	e->fd = (__s32)a[0];
	e->ret = 0;
	e->user_data = 0;
	e->size = 0;
	e->flags = 0;
	e->backlog = 0;
	e->msg_index = 0;
	e->addrlen = 0;
	e->addr_len = 0;
	e->nflags = 0;
	e->sqe_flags = 0;
	e->_pad = 0;
	__builtin_memset(e->addr, 0, sizeof(e->addr));
	rec->call = call;
	rec->msgs = 0;
	rec->emitted = 0;
	if (!have_args) {
		/* The argument array was not readable: see retry_socketcall. */
		rec->uptr2 = args->a[1];
		e->hdr.flags |= EF_ADDR_FAULT;
		return;
	}
	switch (call) {
	case SC_CONNECT:
	case SC_BIND:
		e->addrlen = (__u32)a[2];
		read_user_addr(e, a[1], (__u32)a[2]);
		break;
	case SC_SENDTO:
		e->size = a[2];
		e->nflags |= NF_SIZE;
		e->flags = (__u32)a[3];
		e->addrlen = (__u32)a[5];
		read_user_addr(e, a[4], (__u32)a[5]);
		break;
	case SC_SENDMSG:
		e->flags = (__u32)a[2];
		read_user_msg_name(e, a[1], abi != 0);
		break;
	case SC_SENDMMSG:
		e->flags = (__u32)a[3];
		break;
	case SC_LISTEN:
		e->backlog = (__s32)a[1];
		break;
	case SC_ACCEPT4:
		e->flags = (__u32)a[3];
		break;
	}
}

/*
 * socketcall's argument array was not readable at entry (a page not faulted
 * in): read the descriptor again at exit. Addresses are never read again;
 * they come from the kernel's hooks.
 */
static __always_inline void retry_socketcall(struct inflight_rec *rec)
{
	struct net_event *e = &rec->net;
	__u32 call = rec->call;
	__u64 a[6];

	if (!rec->uptr2 || !socketcall_args(rec->uptr2, a, call == SC_SENDTO ? 6 : call == SC_ACCEPT4 || call == SC_SENDMMSG ? 4 : call == SC_LISTEN ? 2 : 3))
		return;
	e->fd = (__s32)a[0];
	switch (call) {
	case SC_LISTEN:
		e->backlog = (__s32)a[1];
		break;
	case SC_SENDTO:
		e->size = a[2];
		e->nflags |= NF_SIZE;
		e->flags = (__u32)a[3];
		e->addrlen = (__u32)a[5];
		break;
	case SC_CONNECT:
	case SC_BIND:
		e->addrlen = (__u32)a[2];
		break;
	case SC_SENDMSG:
		e->flags = (__u32)a[2];
		break;
	case SC_SENDMMSG:
	case SC_ACCEPT4:
		e->flags = (__u32)a[3];
		break;
	}
	/* Only the address itself is left unread, unless a hook supplied it. */
	if (e->nflags & NF_ADDR_KERNEL || !(call == SC_CONNECT || call == SC_BIND || call == SC_SENDTO))
		e->hdr.flags &= ~EF_ADDR_FAULT;
}

/*
 * A cgroup sock_addr hook: the kernel has copied the caller's address into
 * its own memory and is about to use it. Mark the socket as a traced one
 * (and who used it); copy the address into the thread's in-flight record if
 * it is for the syscall in flight. io_uring requests take their address
 * from the request (net_iouring.bpf.c), so with no syscall in flight there
 * is nothing more to do.
 */
static __always_inline void net_hook(struct bpf_sock_addr *ctx, __u32 hook)
{
	if (!traced())
		return;
	struct sock_owner *o = bpf_sk_storage_get(&socks, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (o) {
		own_sock(o);
		if (!o->cookie)
			o->cookie = bpf_get_socket_cookie(ctx);
		if (hook == HOOK_CONNECT)
			o->track |= TRACK_CONNECT;
	}

	struct bpf_sock_addr_kern *k = bpf_cast_to_kern_ctx(ctx);
	__u32 n = BPF_CORE_READ(k, uaddrlen);
	if (n > SOCKADDR_BYTES)
		n = SOCKADDR_BYTES;
	struct inflight_rec *rec = current_inflight();
	if (!rec || !rec->kind) {
		/* No syscall in flight: an io_uring request's issue (see net_iouring.bpf.c). */
		__u32 zero = 0;
		struct hook_addr *h = bpf_map_lookup_elem(&hook_scratch, &zero);
		if (!h || bpf_probe_read_kernel(h->addr, n, BPF_CORE_READ(k, uaddr)))
			return;
		h->len = n;
		__u64 key = (__u64)BPF_CORE_READ(k, sk);
		bpf_map_update_elem(&hook_addrs, &key, h, BPF_ANY);
		return;
	}
	struct net_event *e = &rec->net;
	switch (rec->kind) {
	case KIND_CONNECT:
		if (hook != HOOK_CONNECT)
			return;
		break;
	case KIND_BIND:
		if (hook != HOOK_BIND)
			return;
		break;
	case KIND_SEND:
		if (hook == HOOK_CONNECT)
			e->nflags |= NF_FASTOPEN;
		else if (hook != HOOK_SENDMSG)
			return;
		break;
	default:
		return;
	}

	if (bpf_probe_read_kernel(e->addr, n, BPF_CORE_READ(k, uaddr)))
		return;
	e->addr_len = n;
	e->nflags = (e->nflags & ~NF_ADDR_USER) | NF_ADDR_KERNEL;
	e->hdr.flags &= ~EF_ADDR_FAULT;
}

SEC("cgroup/connect4")
int handle_connect4(struct bpf_sock_addr *ctx)
{
	net_hook(ctx, HOOK_CONNECT);
	return 1;
}

SEC("cgroup/connect6")
int handle_connect6(struct bpf_sock_addr *ctx)
{
	net_hook(ctx, HOOK_CONNECT);
	return 1;
}

SEC("cgroup/connect_unix")
int handle_connect_unix(struct bpf_sock_addr *ctx)
{
	net_hook(ctx, HOOK_CONNECT);
	return 1;
}

SEC("cgroup/sendmsg4")
int handle_sendmsg4(struct bpf_sock_addr *ctx)
{
	net_hook(ctx, HOOK_SENDMSG);
	return 1;
}

SEC("cgroup/sendmsg6")
int handle_sendmsg6(struct bpf_sock_addr *ctx)
{
	net_hook(ctx, HOOK_SENDMSG);
	return 1;
}

SEC("cgroup/sendmsg_unix")
int handle_sendmsg_unix(struct bpf_sock_addr *ctx)
{
	net_hook(ctx, HOOK_SENDMSG);
	return 1;
}

SEC("cgroup/bind4")
int handle_bind4(struct bpf_sock_addr *ctx)
{
	net_hook(ctx, HOOK_BIND);
	return 1;
}

SEC("cgroup/bind6")
int handle_bind6(struct bpf_sock_addr *ctx)
{
	net_hook(ctx, HOOK_BIND);
	return 1;
}

/*
 * Every inet socket a traced process creates is marked (and gets its
 * cookie) at birth: a listener's mark is cloned into the sockets it
 * accepts, and DNS packets of a traced socket are recognised by it.
 */
SEC("cgroup/sock_create")
int handle_sock_create(struct bpf_sock *ctx)
{
	if (!traced())
		return 1;
	struct sock_owner *o = bpf_sk_storage_get(&socks, ctx, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (o) {
		own_sock(o);
		o->cookie = bpf_get_socket_cookie(ctx);
		o->track = 0;
	}
	return 1;
}

/* Emit the in-flight send record for one message with its result. */
static __always_inline void emit_send(struct inflight_rec *rec, long ret)
{
	struct net_event *e = &rec->net;

	if (rec->call == SC_SENDMMSG) {
		e->nflags |= NF_MSG_INDEX;
		e->msg_index = rec->msgs;
	}
	e->ret = ret;
	stamp(&e->hdr);
	emit(e, sizeof(*e), KIND_SEND);
	rec->emitted++;
	/* The next message names its own destination, or none. */
	e->addr_len = 0;
	e->nflags &= ~(NF_ADDR_KERNEL | NF_ADDR_USER | NF_FASTOPEN | NF_SOCK);
	e->hdr.flags &= ~EF_ADDR_FAULT;
}

/*
 * The socket layer's result of one message (sock_sendmsg), in the sending
 * task: the message's record, if it named a destination.
 */
SEC("tp_btf/sock_send_length")
int BPF_PROG(handle_sock_send_length, struct sock *sk, int ret, int flags)
{
	if (!traced())
		return 0;
	struct inflight_rec *rec = current_inflight();
	if (!rec || rec->kind != KIND_SEND)
		return 0;
	struct net_event *e = &rec->net;
	if (e->nflags & (NF_ADDR_KERNEL | NF_ADDR_USER)) {
		bpf_get_socket_cookie(sk); /* assign one if none yet */
		fill_sock(&e->sock, sk);
		e->nflags |= NF_SOCK;
		emit_send(rec, ret);
	}
	rec->msgs++;
	return 0;
}

static __always_inline void exit_net(struct inflight_rec *rec, long ret)
{
	struct net_event *e = &rec->net;
	struct sock *sk;

	if (rec->uptr2)
		retry_socketcall(rec);
	if (rec->kind == KIND_SEND) {
		/*
		 * Every message the socket layer saw has its record. Left: a send
		 * that failed before (a bad descriptor, an address it refused),
		 * if it named a destination.
		 */
		if (rec->emitted || !(e->nflags & (NF_ADDR_KERNEL | NF_ADDR_USER) || e->hdr.flags & EF_ADDR_FAULT))
			return;
		if (rec->call == SC_SENDMMSG && ret > 0)
			return;
	}
	e->ret = ret;
	sk = fd_sock(rec->kind == KIND_ACCEPT && ret >= 0 ? (int)ret : e->fd);
	if (sk) {
		fill_sock(&e->sock, sk);
		e->nflags |= NF_SOCK;
	}
	stamp(&e->hdr);
	emit(e, sizeof(*e), rec->kind);
}

/*
 * A TCP socket whose connect was recorded left SYN_SENT: established, or
 * closed with the error (refused, timed out, reset). Runs in softirq for
 * any socket on the host; sockets no traced process touched have no
 * storage and cost a pointer test.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(handle_inet_sock_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct sock_owner *o = bpf_sk_storage_get(&socks, (struct sock *)sk, 0, 0);
	if (!o)
		return 0;
	if (oldstate == TCP_LISTEN && newstate == TCP_SYN_RECV) {
		/* A traced listener's new connection, with the listener's mark cloned. */
		o->cookie = bpf_get_socket_cookie((struct sock *)sk);
		o->track = 0;
		return 0;
	}
	if (oldstate != TCP_SYN_SENT || !(o->track & TRACK_CONNECT))
		return 0;
	o->track &= ~TRACK_CONNECT;

	struct sock_state_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_matched(KIND_SOCK_STATE);
		count_lost_ringbuf(KIND_SOCK_STATE);
		return 0;
	}
	owner_header(&e->hdr, o, KIND_SOCK_STATE);
	e->oldstate = oldstate;
	e->newstate = newstate;
	e->error = BPF_CORE_READ(sk, sk_err);
	e->_pad = 0;
	fill_sock(&e->sock, (struct sock *)sk);
	e->sock.cookie = o->cookie;
	stamp(&e->hdr);
	bpf_ringbuf_submit(e, wakeup_flags());
	return 0;
}
