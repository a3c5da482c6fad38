/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the network hooks share: the per-socket storage that marks a socket
 * a traced process used (and remembers who, for the hooks that run on
 * behalf of no process), and reading a socket's identity from the kernel's
 * struct sock.
 */
#ifndef AGENTTRACE_NET_H
#define AGENTTRACE_NET_H

#include "syscalls.h"

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

enum sock_track {
	/* A connect was recorded: record the socket's way out of SYN_SENT. */
	TRACK_CONNECT = 1 << 0,
};

/*
 * A socket a traced process created or used. Stored with the socket (sk
 * storage: it goes away with the socket), cloned into the sockets a traced
 * listener accepts (BPF_F_CLONE).
 */
struct sock_owner {
	/* The process that last created, connected, bound or sent on it. */
	struct event_header hdr;
	__u64 cookie;
	__u64 cred;          /* the owner's struct cred when hdr was built */
	__u32 track;         /* enum sock_track */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct sock_owner);
} socks SEC(".maps");

/*
 * The address a cgroup sock_addr hook saw for a socket when no syscall of
 * the thread was in flight (an io_uring request): the request's completion
 * takes it from here, by socket.
 */
struct hook_addr {
	__u32 len;
	__u32 _pad;
	__u8 addr[SOCKADDR_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* struct sock * */
	__type(value, struct hook_addr);
} hook_addrs SEC(".maps");

/*
 * Make the current task the socket's owner. The header is built only when
 * the owner changed (another thread, an exec, new credentials): a process
 * sending datagram after datagram pays three reads, not a dozen.
 */
static __always_inline void own_sock(struct sock_owner *o)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 cred = (__u64)BPF_CORE_READ(task, cred);
	__u64 exec_seq = BPF_CORE_READ(task, self_exec_id);

	if (o->hdr.tid == (__u32)bpf_get_current_pid_tgid() && o->hdr.exec_seq == exec_seq && o->cred == cred)
		return;
	fill_header(&o->hdr, 0);
	o->cred = cred;
}

/* The record of a state change or a DNS packet: hdr from the owner, stamped now. */
static __always_inline void owner_header(struct event_header *hdr, struct sock_owner *o, __u32 kind)
{
	*hdr = o->hdr;
	hdr->ktime = bpf_ktime_get_boot_ns();
	hdr->kind = kind;
	hdr->flags = 0;
}

/* Copy a unix socket's bound name (struct unix_address) into n. */
static __always_inline void unix_name(struct sock_name *n, struct unix_address *a)
{
	if (!a)
		return;
	__u32 len = BPF_CORE_READ(a, len);
	if (len > sizeof(struct sockaddr_un))
		len = sizeof(struct sockaddr_un);
	if (bpf_probe_read_kernel(n->name, len, (void *)a + bpf_core_field_offset(struct unix_address, name)) == 0)
		n->len = len;
}

static __always_inline void inet_name(struct sock_name *n, __be32 addr, __be16 port)
{
	__builtin_memset(n->name, 0, 16);
	*(__u16 *)&n->name[0] = AF_INET;
	*(__be16 *)&n->name[2] = port;
	*(__be32 *)&n->name[4] = addr;
	n->len = 16; /* sizeof(struct sockaddr_in) */
}

static __always_inline void inet6_name(struct sock_name *n, struct in6_addr *addr, __be16 port)
{
	__builtin_memset(n->name, 0, 28);
	*(__u16 *)&n->name[0] = AF_INET6;
	*(__be16 *)&n->name[2] = port;
	bpf_probe_read_kernel(&n->name[8], 16, addr);
	n->len = 28; /* sizeof(struct sockaddr_in6) */
}

/*
 * The socket's identity as the kernel holds it: family, type, protocol,
 * state, cookie (0 if none was assigned yet), the local address (for inet
 * the bound or chosen one and inet_sport, which outlives the port's hash
 * entry) and the remote one (inet: when a destination port is set; unix:
 * the peer's name).
 */
static __always_inline void fill_sock(struct sock_info *si, struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	si->family = family;
	si->type = BPF_CORE_READ(sk, sk_type);
	si->protocol = BPF_CORE_READ(sk, sk_protocol);
	si->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	si->cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	si->local.len = 0;
	si->remote.len = 0;
	if (family == AF_INET || family == AF_INET6) {
		__be16 sport = BPF_CORE_READ((struct inet_sock *)sk, inet_sport);
		__be16 dport = BPF_CORE_READ(sk, __sk_common.skc_dport);
		if (family == AF_INET) {
			inet_name(&si->local, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr), sport);
			if (dport)
				inet_name(&si->remote, BPF_CORE_READ(sk, __sk_common.skc_daddr), dport);
		} else {
			inet6_name(&si->local, (void *)sk + bpf_core_field_offset(struct sock, __sk_common.skc_v6_rcv_saddr), sport);
			if (dport)
				inet6_name(&si->remote, (void *)sk + bpf_core_field_offset(struct sock, __sk_common.skc_v6_daddr), dport);
		}
	} else if (family == AF_UNIX) {
		struct unix_sock *u = (struct unix_sock *)sk;
		unix_name(&si->local, BPF_CORE_READ(u, addr));
		struct sock *peer = BPF_CORE_READ(u, peer);
		if (peer)
			unix_name(&si->remote, BPF_CORE_READ((struct unix_sock *)peer, addr));
	}
}

/* The socket of a struct file, or NULL if it is not a socket. */
static __always_inline struct sock *file_sock(struct file *file)
{
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	return BPF_CORE_READ(sock, sk);
}

/* The socket behind fd in the current task's descriptor table, or NULL. */
static __always_inline struct sock *fd_sock(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;

	if (fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	return file_sock(file);
}

#endif /* AGENTTRACE_NET_H */
