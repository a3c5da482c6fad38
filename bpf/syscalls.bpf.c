// SPDX-License-Identifier: GPL-2.0-only
/*
 * tp_btf/sys_enter and tp_btf/sys_exit: one program pair for every syscall
 * of interest. They need no tracefs and, unlike the per-syscall tracepoints,
 * they also fire for i386-ABI syscalls (int 0x80), which an agent could
 * otherwise use to hide an open or a connect. The first statements reject
 * numbers of no interest (on any ABI, then on the task's); the next rejects
 * untraced tasks. Each family's enter_* and exit_* do the rest.
 */
#include "syscalls.h"

SEC("tp_btf/sys_enter")
int BPF_PROG(handle_sys_enter, struct pt_regs *regs, long id)
{
	if (!interesting_nr(id))
		return 0;
	/* The bitmap holds every ABI's numbers: is it one of interest on this one? */
	bool compat = is_compat();
	if (!interesting_on(id, compat))
		return 0;
	if (!traced())
		return 0;
	__u32 sc = syscall_id(id, compat);
	if (sc == SC_UNKNOWN && (id & ~X32_BIT) != NR_CLONE3)
		return 0;

	/* Which ABI: the record says so, and argv holds 32-bit pointers in both. */
	__u32 abi = compat ? EF_COMPAT : (id & X32_BIT) ? EF_X32 : 0;
	struct sys_args args;
	syscall_args(regs, compat, &args);
	if (sc == SC_UNKNOWN || escape_sc(sc)) {
		enter_escape((__u32)bpf_get_current_pid_tgid(), id, compat, sc, abi, &args);
		return 0;
	}
	switch (sc) {
	case SC_OPEN:
	case SC_CREAT:
	case SC_OPENAT:
	case SC_OPENAT2:
	case SC_OPEN_TREE:
	case SC_OPEN_TREE_ATTR:
	case SC_OPEN_BY_HANDLE_AT:
	case SC_PIDFD_GETFD:
	case SC_MEMFD_CREATE:
		enter_open(sc, abi, &args);
		break;
	case SC_IO_URING_SETUP:
		enter_uring_setup(sc, abi, &args);
		break;
	case SC_CONNECT:
	case SC_SOCKETCALL:
	case SC_SENDTO:
	case SC_SENDMSG:
	case SC_SENDMMSG:
	case SC_BIND:
	case SC_LISTEN:
	case SC_ACCEPT:
	case SC_ACCEPT4:
		enter_net(sc, abi, &args);
		break;
	default:
		enter_exec(sc, abi, &args);
		break;
	}
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(handle_sys_exit, struct pt_regs *regs, long ret)
{
	long id = regs->orig_ax;

	if (!interesting_nr(id))
		return 0;
	bool compat = is_compat();
	if (!interesting_on(id, compat))
		return 0;
	enum pairing pairing = pairing_of(id, compat);
	if (pairing != PAIR_INFLIGHT && exit_escape((__u32)bpf_get_current_pid_tgid(), ret))
		return 0;
	if (pairing == PAIR_ESCAPES)
		return 0;

	struct inflight_rec *rec = current_inflight();
	if (!rec || !rec->kind)
		return 0;

	switch (rec->kind) {
	case KIND_OPEN:
		exit_open(rec, ret);
		break;
	case KIND_CONNECT:
	case KIND_SEND:
	case KIND_BIND:
	case KIND_LISTEN:
	case KIND_ACCEPT:
		exit_net(rec, ret);
		break;
	case KIND_IO_URING:
		exit_uring_setup(rec, ret);
		break;
	case KIND_EXEC:
		/* Still in flight after the syscall: the exec failed. */
		exit_exec(rec, ret);
		return 0;
	}
	end_inflight(rec);
	return 0;
}

