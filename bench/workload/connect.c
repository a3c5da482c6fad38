// SPDX-License-Identifier: Apache-2.0
// connect: TCP connects on loopback, in a loop.
//
//   connect listener   socket + connect to a listener this program owns +
//                      accept + close of both ends
//   connect refused    socket + connect to a closed port (ECONNREFUSED) + close
//
// The listener is in this process, so the accept runs in step with the
// connect and no connection waits in a backlog. It has SO_LINGER 0, which
// accepted sockets inherit: closing the accepted end first resets the
// connection, so no TIME_WAIT is left to exhaust the ports.
#include "bench.h" // first: it defines _GNU_SOURCE

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static int bound_socket(struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	*sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof(*sa)) || getsockname(fd, (struct sockaddr *)sa, &len)) {
		perror("binding a loopback socket");
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	int i = bench_parse(argc, argv, &o, "listener|refused");
	if (i != argc - 1)
		bench_usage(argv[0], "listener|refused");
	int listener = strcmp(argv[i], "listener") == 0;
	if (!listener && strcmp(argv[i], "refused") != 0)
		bench_usage(argv[0], "listener|refused");

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
