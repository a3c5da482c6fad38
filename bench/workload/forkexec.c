// SPDX-License-Identifier: Apache-2.0
// forkexec: fork, execve PROGRAM (default /bin/true) in the child with an
// empty environment, wait for it. One operation is one child run to its exit.
#include "bench.h" // first: it defines _GNU_SOURCE

#include <sys/wait.h>

int main(int argc, char **argv)
{
	struct bench_opts o;
	int i = bench_parse(argc, argv, &o, "[PROGRAM]");
	if (i < argc - 1)
		bench_usage(argv[0], "[PROGRAM]");
	char *prog = i == argc - 1 ? argv[i] : "/bin/true";
	char *args[] = {prog, NULL}, *env[] = {NULL};

	struct bench_loop l;
	bench_begin(&l, &o, 1);
	for (; bench_more(&l); l.ops++) {
		pid_t pid = fork();
		if (pid == 0) {
			execve(prog, args, env);
			_exit(127);
		}
		int status;
		if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			l.errors++;
	}
	bench_end(&l, "");
	return 0;
}
