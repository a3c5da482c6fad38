// SPDX-License-Identifier: Apache-2.0
// run: runs a command (a real-work job: a build, a test suite, a search) to
// its end, in a loop. One operation is one run of the command; its CPU time
// and its descendants' (each waited for by its parent) count as the
// program's children's. A run that fails counts as an error.
//
//   run [-n RUNS] [-d MS] [-w] [-a AUID] -- CMD [ARG...]
#include "bench.h" // first: it defines _GNU_SOURCE

#include <sys/wait.h>

int main(int argc, char **argv)
{
	struct bench_opts o;
	int i = bench_parse(argc, argv, &o, "-- CMD [ARG...]");
	if (i >= argc)
		bench_usage(argv[0], "-- CMD [ARG...]");
	char **cmd = argv + i;

	struct bench_loop l;
	bench_begin(&l, &o, 1);
	for (; bench_more(&l); l.ops++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			// The command's output is not the harness's result line.
			dup2(2, 1);
			execvp(cmd[0], cmd);
			perror(cmd[0]);
			_exit(127);
		}
		int status;
		if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			l.errors++;
	}
	bench_end(&l, "");
	return 0;
}
