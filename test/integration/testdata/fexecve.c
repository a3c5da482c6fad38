// SPDX-License-Identifier: GPL-2.0-only
/*
 * A fileless loader: copy a program into a memfd and run it with fexecve(3):
 *
 *	fexecve PROGRAM NAME ARGV0 [ARG...]
 *
 * NAME is the memfd's name, ARGV0... the new program's argv. Prints the
 * memfd's identity first, as one line: RESULT {json}.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: fexecve PROGRAM NAME ARGV0 [ARG...]\n");
		return 2;
	}
	int src = open(argv[1], O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (src < 0 || fstat(src, &st) != 0) {
		perror("fexecve: program");
		return 1;
	}
	int fd = memfd_create(argv[2], 0);
	if (fd < 0) {
		perror("fexecve: memfd_create");
		return 1;
	}
	off_t off = 0;
	while (off < st.st_size) {
		ssize_t n = sendfile(fd, src, &off, st.st_size - off);
		if (n <= 0) {
			perror("fexecve: sendfile");
			return 1;
		}
	}
	struct stat m;
	if (fstat(fd, &m) != 0) {
		perror("fexecve: fstat");
		return 1;
	}
	printf("RESULT {\"pid\":%d,\"fd\":%d,\"ino\":%lu,\"dev\":\"%u:%u\"}\n", getpid(), fd, (unsigned long)m.st_ino,
	       major(m.st_dev), minor(m.st_dev));
	fflush(stdout);
	fexecve(fd, argv + 3, environ);
	perror("fexecve");
	return 1;
}
