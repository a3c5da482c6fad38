// SPDX-License-Identifier: GPL-2.0-only
/*
 * A double fork with setsid, the way a daemon detaches:
 *
 *	forktree CHILD_PATH GRANDCHILD_PATH
 *
 * The child calls setsid, forks the grandchild, opens CHILD_PATH and exits
 * with 5. The grandchild waits until it has been reparented (its creator is
 * gone), then opens GRANDCHILD_PATH and exits with 0. Nothing execs, so
 * every record of the child and grandchild belongs to the image they were
 * forked with. Each process prints one line: RESULT {json}.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: forktree CHILD_PATH GRANDCHILD_PATH\n");
		return 2;
	}
	pid_t child = fork();
	if (child < 0)
		return 3;
	if (child == 0) {
		pid_t self = getpid();
		if (setsid() < 0)
			_exit(10);
		pid_t grandchild = fork();
		if (grandchild < 0)
			_exit(11);
		if (grandchild == 0) {
			for (int i = 0; i < 10000 && getppid() == self; i++)
				usleep(1000);
			pid_t ppid = getppid();
			if (ppid == self)
				_exit(12);
			int fd = open(argv[2], O_RDONLY);
			printf("RESULT {\"role\":\"grandchild\",\"pid\":%d,\"ppid\":%d,\"fd\":%d}\n", getpid(), ppid, fd);
			fflush(stdout);
			_exit(fd >= 0 ? 0 : 13);
		}
		int fd = open(argv[1], O_RDONLY);
		printf("RESULT {\"role\":\"child\",\"pid\":%d,\"grandchild\":%d,\"fd\":%d}\n", self, grandchild, fd);
		fflush(stdout);
		_exit(fd >= 0 ? 5 : 14);
	}
	int status = 0;
	if (waitpid(child, &status, 0) != child)
		return 4;
	printf("RESULT {\"role\":\"parent\",\"pid\":%d,\"child\":%d,\"child_status\":%d}\n", getpid(), child, status);
	return 0;
}
