// SPDX-License-Identifier: Apache-2.0
// connect: network operations on loopback, in a loop.
//
//   connect listener   socket + connect to a listener this program owns +
//                      accept + close of both ends
//   connect refused    socket + connect to a closed port (ECONNREFUSED) + close
//   connect udp        sendto of a 64-byte datagram to a UDP socket this
//                      program owns + its recv: the send names its
//                      destination, as a DNS query or any UDP exfiltration does
//
// The listener is in this process, so the accept runs in step with the
// connect and no connection waits in a backlog. It has SO_LINGER 0, which
// accepted sockets inherit: closing the accepted end first resets the
// connection, so no TIME_WAIT is left to exhaust the ports.
#include "bench.h" // first: it defines _GNU_SOURCE

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static int bound_socket_type(struct sockaddr_in *sa, int type)
{
	socklen_t len = sizeof(*sa);
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	*sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof(*sa)) || getsockname(fd, (struct sockaddr *)sa, &len)) {
		perror("binding a loopback socket");
		exit(1);
	}
	return fd;
}

static int bound_socket(struct sockaddr_in *sa)
{
	return bound_socket_type(sa, SOCK_STREAM);
}

// udp sends datagrams from an unconnected socket to a bound one and reads
// each back, so the receive queue never fills and drops.
static int udp(struct bench_opts *o)
{
	struct sockaddr_in sa;
	int rfd = bound_socket_type(&sa, SOCK_DGRAM);
	int sfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sfd < 0) {
		perror("socket");
		return 1;
	}
	char msg[64] = "agenttrace benchmark datagram";
	long received = 0;
	struct bench_loop l;
	bench_begin(&l, o, 16);
	for (; bench_more(&l); l.ops++) {
		if (sendto(sfd, msg, sizeof(msg), 0, (struct sockaddr *)&sa, sizeof(sa)) != sizeof(msg)) {
			l.errors++;
			continue;
		}
		if (recv(rfd, msg, sizeof(msg), 0) == sizeof(msg))
			received++;
		else
			l.errors++;
	}
	char extra[64];
	snprintf(extra, sizeof(extra), "received=%ld", received);
	bench_end(&l, extra);
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	int i = bench_parse(argc, argv, &o, "listener|refused|udp");
	if (i != argc - 1)
		bench_usage(argv[0], "listener|refused|udp");
	if (strcmp(argv[i], "udp") == 0)
		return udp(&o);
	int listener = strcmp(argv[i], "listener") == 0;
	if (!listener && strcmp(argv[i], "refused") != 0)
		bench_usage(argv[0], "listener|refused|udp");

	struct sockaddr_in sa;
	int lfd = bound_socket(&sa);
	if (listener) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		if (setsockopt(lfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) || listen(lfd, 128)) {
			perror("listening");
			return 1;
		}
	} else {
		// A port just released by this process: nothing listens on it.
		close(lfd);
	}

	long refused = 0, connected = 0;
	struct bench_loop l;
	bench_begin(&l, &o, 16);
	for (; bench_more(&l); l.ops++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			l.errors++;
			continue;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			connected++;
			if (listener) {
				int afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
				if (afd >= 0)
					close(afd);
				else
					l.errors++;
			}
		} else if (errno == ECONNREFUSED) {
			refused++;
		} else {
			l.errors++;
		}
		close(fd);
	}
	char extra[64];
	snprintf(extra, sizeof(extra), "connected=%ld refused=%ld", connected, refused);
	bench_end(&l, extra);
	return 0;
}
