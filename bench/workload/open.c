// SPDX-License-Identifier: Apache-2.0
// open: openat(AT_FDCWD, PATH, O_RDONLY|O_CLOEXEC) + close of an existing
// file, in a loop. One operation is one openat and one close.
#include "bench.h"

int main(int argc, char **argv)
{
	struct bench_opts o;
	int i = bench_parse(argc, argv, &o, "PATH");
	if (i != argc - 1)
		bench_usage(argv[0], "PATH");
	const char *path = argv[i];
	int fd = openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	close(fd);

	struct bench_loop l;
	bench_begin(&l, &o, 16);
	for (; bench_more(&l); l.ops++) {
		fd = openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			l.errors++;
		else
			close(fd);
	}
	bench_end(&l, "");
	return 0;
}
