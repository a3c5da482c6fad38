// SPDX-License-Identifier: Apache-2.0
// flood: a load generator for the loss-accounting tests. It makes exactly
// the syscalls it is told to and prints how many of each it made, so the
// test can check records + gap counts == generated, per kind.
//
//   flood OPENS EXECS CONNECTS PORT [PAUSE_MS UNLINK OPENS2]
//   flood noop                         (what each exec runs: nothing)
//
// With the optional arguments it then sleeps PAUSE_MS, unlinks UNLINK (the
// disk-full test frees space this way) and makes OPENS2 more opens. It is
// linked statically so that no dynamic loader adds opens of its own.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "noop") == 0)
		return 0;
	if (argc != 5 && argc != 8) {
		fprintf(stderr, "usage: flood OPENS EXECS CONNECTS PORT [PAUSE_MS UNLINK OPENS2]\n");
		return 2;
	}
	long opens = atol(argv[1]), execs = atol(argv[2]), connects = atol(argv[3]);
	int port = atoi(argv[4]);
	long done_open = 0, done_exec = 0, done_connect = 0;

	for (long i = 0; i < opens; i++) {
		int fd = open("/proc/self/stat", O_RDONLY);
		if (fd >= 0)
			close(fd);
		done_open++;
	}
	for (long i = 0; i < execs; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			char *args[] = {argv[0], "noop", NULL};
			execv("/proc/self/exe", args);
			_exit(127);
		}
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		waitpid(pid, NULL, 0);
		done_exec++;
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (long i = 0; i < connects; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		done_connect++;
	}
	if (argc == 8) {
		usleep(atol(argv[5]) * 1000);
		if (unlink(argv[6]))
			perror("unlink");
		for (long i = 0; i < atol(argv[7]); i++) {
			int fd = open("/proc/self/stat", O_RDONLY);
			if (fd >= 0)
				close(fd);
			done_open++;
		}
	}
	printf("open %ld exec %ld connect %ld\n", done_open, done_exec, done_connect);
	return 0;
}
