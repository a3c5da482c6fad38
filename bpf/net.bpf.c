// SPDX-License-Identifier: GPL-2.0-only
/*
 * Network: connect (and i386 socketcall(SYS_CONNECT)), paired at
 * sys_enter/sys_exit.
 */
#include "syscalls.h"

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

static __always_inline void exit_connect(struct inflight_rec *rec, long ret)
{
	struct connect_event *e = &rec->connect;

	retry_connect(rec);
	e->ret = ret;
	stamp(&e->hdr);
	emit(e, sizeof(*e), KIND_CONNECT);
}
