// SPDX-License-Identifier: GPL-2.0-only
/*
 * Network operations through io_uring, with raw syscalls (no liburing), the
 * way an agent could try to reach the network without the connect(2) and
 * sendto(2) a tracer watches.
 *
 *	uring_net TCP_PORT CLOSED_PORT UDP_PORT ACCEPT_PORT
 *
 * On 127.0.0.1: IORING_OP_CONNECT to TCP_PORT (a listener) and to
 * CLOSED_PORT (refused), IORING_OP_SEND with a destination (sqe->addr2) and
 * IORING_OP_SENDMSG with msg_name to UDP_PORT, a socket made with
 * IORING_OP_SOCKET that connects to TCP_PORT, and IORING_OP_ACCEPT on a
 * listener at ACCEPT_PORT (the test connects from outside the trace). It
 * prints what each completion returned and what the kernel then holds for
 * each socket (SO_COOKIE, getsockname, getpeername) as one line:
 * RESULT {json}.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

static int ring_fd;
static unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;

static void die(const char *what)
{
	fprintf(stderr, "uring_net: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void setup(void)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof(p));
	ring_fd = syscall(__NR_io_uring_setup, 8, &p);
	if (ring_fd < 0)
		die("io_uring_setup");
	size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (cq_size > sq_size)
		sq_size = cq_size;
	char *sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQ_RING);
	if (sq == MAP_FAILED)
		die("mmap sq");
	char *cq = sq; /* IORING_FEAT_SINGLE_MMAP */
	sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		    ring_fd, IORING_OFF_SQES);
	if (sqes == MAP_FAILED)
		die("mmap sqes");
	sq_tail = (unsigned *)(sq + p.sq_off.tail);
	sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	sq_array = (unsigned *)(sq + p.sq_off.array);
	cq_head = (unsigned *)(cq + p.cq_off.head);
	cq_tail = (unsigned *)(cq + p.cq_off.tail);
	cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
}

/* Submit one SQE and wait for its completion; returns cqe->res. */
static int run(struct io_uring_sqe *tmpl)
{
	unsigned tail = *sq_tail, idx = tail & *sq_mask;

	sqes[idx] = *tmpl;
	sq_array[idx] = idx;
	__atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, ring_fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		die("io_uring_enter");
	unsigned head = *cq_head;
	if (head == __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE)) {
		fprintf(stderr, "uring_net: no completion\n");
		exit(2);
	}
	struct io_uring_cqe *cqe = &cqes[head & *cq_mask];
	if (cqe->user_data != tmpl->user_data) {
		fprintf(stderr, "uring_net: completion of %llu, want %llu\n", (unsigned long long)cqe->user_data,
			(unsigned long long)tmpl->user_data);
		exit(2);
	}
	int res = cqe->res;
	__atomic_store_n(cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in sa;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sa;
}

static int inet_socket(int type)
{
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	return fd;
}

/* Print `"name":{"fd":N,"ret":N,"cookie":N,"local":"a:p","remote":"a:p"}`. */
static void op(const char *name, int fd, int ret, int last)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char local[64] = "", remote[64] = "", ip[INET_ADDRSTRLEN];
	uint64_t cookie = 0;

	socklen_t clen = sizeof(cookie);
	getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &clen);
	if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		snprintf(local, sizeof(local), "%s:%d", inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip)), ntohs(sa.sin_port));
	len = sizeof(sa);
	if (getpeername(fd, (struct sockaddr *)&sa, &len) == 0)
		snprintf(remote, sizeof(remote), "%s:%d", inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip)), ntohs(sa.sin_port));
	printf("\"%s\":{\"fd\":%d,\"ret\":%d,\"cookie\":%llu,\"local\":\"%s\",\"remote\":\"%s\"}%s", name, fd, ret,
	       (unsigned long long)cookie, local, remote, last ? "" : ",");
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: uring_net TCP_PORT CLOSED_PORT UDP_PORT ACCEPT_PORT\n");
		return 2;
	}
	int tcp_port = atoi(argv[1]), closed_port = atoi(argv[2]), udp_port = atoi(argv[3]), accept_port = atoi(argv[4]);
	struct io_uring_sqe sqe;
	setup();

	/* CONNECT to a listener. */
	struct sockaddr_in to_tcp = loopback(tcp_port);
	int conn = inet_socket(SOCK_STREAM);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_CONNECT;
	sqe.fd = conn;
	sqe.addr = (uintptr_t)&to_tcp;
	sqe.off = sizeof(to_tcp); /* addr2: the address length */
	sqe.user_data = 0x1001;
	int conn_ret = run(&sqe);

	/* CONNECT to a port that refuses. */
	struct sockaddr_in to_closed = loopback(closed_port);
	int refused = inet_socket(SOCK_STREAM);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_CONNECT;
	sqe.fd = refused;
	sqe.addr = (uintptr_t)&to_closed;
	sqe.off = sizeof(to_closed);
	sqe.user_data = 0x1002;
	int refused_ret = run(&sqe);

	/* SEND with a destination: sqe->addr2 and sqe->addr_len. */
	struct sockaddr_in to_udp = loopback(udp_port);
	int udp = inet_socket(SOCK_DGRAM);
	static char payload[] = "uring";
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_SEND;
	sqe.fd = udp;
	sqe.addr = (uintptr_t)payload;
	sqe.len = 5;
	sqe.addr2 = (uintptr_t)&to_udp;
	sqe.addr_len = sizeof(to_udp);
	sqe.user_data = 0x1003;
	int send_ret = run(&sqe);

	/* SENDMSG with msg_name. */
	int udp2 = inet_socket(SOCK_DGRAM);
	static char part[] = "msg!";
	struct iovec iov = {.iov_base = part, .iov_len = 4};
	struct msghdr msg = {.msg_name = &to_udp, .msg_namelen = sizeof(to_udp), .msg_iov = &iov, .msg_iovlen = 1};
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_SENDMSG;
	sqe.fd = udp2;
	sqe.addr = (uintptr_t)&msg;
	sqe.len = 1;
	sqe.user_data = 0x1004;
	int sendmsg_ret = run(&sqe);

	/* SOCKET, then CONNECT on it. */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_SOCKET;
	sqe.fd = AF_INET;
	sqe.off = SOCK_STREAM | SOCK_CLOEXEC;
	sqe.user_data = 0x1005;
	int sock = run(&sqe);
	if (sock < 0) {
		errno = -sock;
		die("IORING_OP_SOCKET");
	}
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_CONNECT;
	sqe.fd = sock;
	sqe.addr = (uintptr_t)&to_tcp;
	sqe.off = sizeof(to_tcp);
	sqe.user_data = 0x1006;
	int sock_conn_ret = run(&sqe);

	/* ACCEPT a client from outside the trace. */
	int lfd = inet_socket(SOCK_STREAM);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in at = loopback(accept_port);
	if (bind(lfd, (struct sockaddr *)&at, sizeof(at)) || listen(lfd, 4))
		die("bind/listen");
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_ACCEPT;
	sqe.fd = lfd;
	sqe.accept_flags = SOCK_CLOEXEC;
	sqe.user_data = 0x1007;
	int accepted = run(&sqe);

	printf("RESULT {\"pid\":%d,", getpid());
	op("connect", conn, conn_ret, 0);
	op("refused", refused, refused_ret, 0);
	op("send", udp, send_ret, 0);
	op("sendmsg", udp2, sendmsg_ret, 0);
	op("socket_connect", sock, sock_conn_ret, 0);
	op("listener", lfd, 0, 0);
	op("accept", accepted >= 0 ? accepted : lfd, accepted, 1);
	printf("}\n");
	fflush(stdout);
	return 0;
}
