// SPDX-License-Identifier: GPL-2.0-only
/*
 * A process outside the session that a traced agent acts on (ptrace,
 * process_vm_readv/writev, signals, pidfd):
 *
 *	victim
 *
 * prints RESULT {"pid":N,"addr":A} with the address of a 64-byte buffer
 * holding "victim-secret", then waits in pause(2) for ever. Whatever it does
 * after that is what someone else made it do.
 */
#include <stdio.h>
#include <unistd.h>

static char secret[64] = "victim-secret";

int main(void)
{
	printf("RESULT {\"pid\":%d,\"addr\":%lu}\n", getpid(), (unsigned long)secret);
	fflush(stdout);
	for (;;)
		pause();
}
