// SPDX-License-Identifier: Apache-2.0
// bench.h: what the workload programs share: the options, the start signal,
// pacing to a target rate, and the result line the harness parses.
//
// Every workload takes [-n OPS] [-d MS] [-r OPS_PER_S] [-w] [-a AUID] and
// runs its operation until OPS operations or MS milliseconds, whichever
// comes first, then prints one line on stdout:
//
//   ops=N ns=ELAPSED ns_per_op=X cpu_ns=CPU errors=E [mode-specific fields]
//
// CPU is the CPU time the loop used, the program's and its waited-for
// children's, user and system: unlike ELAPSED it leaves out the time the
// program waited for a CPU that others held.
//
// Only the loop is timed: setup (sockets, listeners, the loginuid) happens
// before it, and with -w the program waits for one byte on stdin first, so
// the harness can attach a tracer to a running, idle process.
#ifndef BENCH_H
#define BENCH_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct bench_opts {
	long max_ops;	  // 0: no limit
	long duration_ms; // 0: no limit
	double rate;	  // target operations per second; 0: as fast as possible
	int wait;	  // wait for a byte on stdin before the loop
	long auid;	  // >= 0: write it to /proc/self/loginuid (audit rules select on it)
};

struct bench_loop {
	struct bench_opts o;
	long long start, deadline, now, cpu_start;
	long ops, errors;
	int check_every; // read the clock every this many operations (a power of two)
};

// bench_cpu is the CPU time of the process and its waited-for children.
static long long bench_cpu(void)
{
	long long ns = 0;
	int who[] = {RUSAGE_SELF, RUSAGE_CHILDREN};
	for (int i = 0; i < 2; i++) {
		struct rusage ru;
		getrusage(who[i], &ru);
		ns += (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
		      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
	}
	return ns;
}

static inline long long bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void bench_usage(const char *prog, const char *args)
{
	fprintf(stderr, "usage: %s [-n OPS] [-d MS] [-r OPS_PER_S] [-w] [-a AUID] %s\n", prog, args);
	exit(2);
}

// bench_parse parses the common options; it returns the index of the first
// operand.
static int bench_parse(int argc, char **argv, struct bench_opts *o, const char *args)
{
	int c;
	*o = (struct bench_opts){.auid = -1};
	while ((c = getopt(argc, argv, "n:d:r:wa:")) != -1) {
		switch (c) {
		case 'n': o->max_ops = atol(optarg); break;
		case 'd': o->duration_ms = atol(optarg); break;
		case 'r': o->rate = atof(optarg); break;
		case 'w': o->wait = 1; break;
		case 'a': o->auid = atol(optarg); break;
		default: bench_usage(argv[0], args);
		}
	}
	if (o->max_ops <= 0 && o->duration_ms <= 0)
		bench_usage(argv[0], args);
	return optind;
}

// bench_begin does the last setup step and starts the clock.
static void bench_begin(struct bench_loop *l, const struct bench_opts *o, int check_every)
{
	*l = (struct bench_loop){.o = *o, .check_every = check_every};
	if (o->auid >= 0) {
		char buf[32];
		int fd = open("/proc/self/loginuid", O_WRONLY);
		int n = snprintf(buf, sizeof(buf), "%ld", o->auid);
		if (fd < 0 || write(fd, buf, n) != n) {
			perror("setting /proc/self/loginuid");
			exit(1);
		}
		close(fd);
	}
	if (o->wait) {
		char c;
		if (read(0, &c, 1) != 1)
			exit(3); // the harness went away: run nothing
	}
	l->cpu_start = bench_cpu();
	l->start = l->now = bench_now();
	l->deadline = o->duration_ms > 0 ? l->start + o->duration_ms * 1000000LL : 0;
	if (l->o.rate > 0)
		l->check_every = 1;
}

// bench_more says whether to run another operation; with a target rate it
// sleeps until the operation is due.
static inline int bench_more(struct bench_loop *l)
{
	if (l->o.max_ops > 0 && l->ops >= l->o.max_ops)
		return 0;
	if ((l->ops & (l->check_every - 1)) != 0)
		return 1;
	l->now = bench_now();
	if (l->deadline && l->now >= l->deadline)
		return 0;
	if (l->o.rate > 0) {
		long long due = l->start + (long long)(l->ops * (1e9 / l->o.rate));
		// Sleep only when well ahead: the loop runs in short bursts at
		// full speed, averaging the target rate over any 100 us or more.
		if (due - l->now > 100000) {
			struct timespec ts = {.tv_sec = due / 1000000000LL, .tv_nsec = due % 1000000000LL};
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		}
	}
	return 1;
}

// bench_end stops the clock and prints the result line, extra appended.
static void bench_end(struct bench_loop *l, const char *extra)
{
	long long elapsed = bench_now() - l->start;
	long long cpu = bench_cpu() - l->cpu_start;
	printf("ops=%ld ns=%lld ns_per_op=%.1f cpu_ns=%lld errors=%ld%s%s\n", l->ops, elapsed,
	       l->ops > 0 ? (double)elapsed / l->ops : 0.0, cpu, l->errors, extra[0] ? " " : "", extra);
	fflush(stdout);
}

#endif
