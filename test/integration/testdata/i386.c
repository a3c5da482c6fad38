// SPDX-License-Identifier: GPL-2.0-only
/*
 * A 64-bit program that makes i386-ABI syscalls with int $0x80, the way a
 * process could try to slip an open or a connect past a tracer that only
 * watches the 64-bit syscall table.
 *
 *	i386 EXISTING_PATH MISSING_PATH PORT TMPDIR
 *
 * opens both paths with i386 open(2) (number 5), then connects two TCP
 * sockets to 127.0.0.1:PORT, one with socketcall(SYS_CONNECT) (102) and one
 * with i386 connect(2) (362). Then it does the same again (open of
 * EXISTING_PATH, both connects) with every argument the kernel reads from
 * user memory in a page not yet faulted in: a fresh file mapping in TMPDIR.
 * It prints what the kernel returned as one line: RESULT {json}.
 *
 * int $0x80 takes 32-bit pointers, so everything it reads is in static
 * storage: built with -no-pie (and -static when possible), that is below
 * 4 GiB, or in mappings made with MAP_32BIT.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define NR32_OPEN 5
#define NR32_SOCKETCALL 102
#define NR32_CONNECT 362
#define NR32_SENDTO 369
#define SOCKETCALL_CONNECT 3
#define SOCKETCALL_SENDTO 11

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

static char path[4096];
static struct sockaddr_in addr;
static uint32_t callargs[3];
static uint32_t sendargs[6];
static char payload[] = "int80";

static int int80(uint32_t nr, uint32_t a, uint32_t b, uint32_t c)
{
	uint64_t ret;

	/* In 64-bit mode int $0x80 clobbers r8-r11. */
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"((uint64_t)nr), "b"((uint64_t)a), "c"((uint64_t)b), "d"((uint64_t)c)
			 : "memory", "r8", "r9", "r10", "r11");
	return (int)ret;
}

static uint32_t low32(const void *p)
{
	uintptr_t v = (uintptr_t)p;

	if (v > 0xffffffffu) {
		fprintf(stderr, "i386: static data at %p is above 4 GiB: build with -no-pie\n", p);
		exit(2);
	}
	return (uint32_t)v;
}

static int open32(const char *name)
{
	if (strlen(name) >= sizeof(path)) {
		fprintf(stderr, "i386: path too long\n");
		exit(2);
	}
	strcpy(path, name);
	return int80(NR32_OPEN, low32(path), O_RDONLY, 0);
}

/*
 * A read-only copy of data in a new mapping of its own file, below 4 GiB,
 * that nothing has touched: not in the page tables until the kernel faults
 * it in.
 */
static uint32_t untouched(const char *dir, const void *data, size_t len)
{
	char name[4096];

	snprintf(name, sizeof(name), "%s/page-XXXXXX", dir);
	int fd = mkstemp(name);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		perror("i386: temp file");
		exit(2);
	}
	void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_32BIT, fd, 0);
	if (p == MAP_FAILED) {
		perror("i386: mmap");
		exit(2);
	}
	close(fd);
	unlink(name);
	return low32(p);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: i386 EXISTING_PATH MISSING_PATH PORT TMPDIR\n");
		return 2;
	}
	int opened = open32(argv[1]);
	int missing = open32(argv[2]);

	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)atoi(argv[3]));
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	int sock1 = socket(AF_INET, SOCK_STREAM, 0);
	callargs[0] = (uint32_t)sock1;
	callargs[1] = low32(&addr);
	callargs[2] = sizeof(addr);
	int socketcall = int80(NR32_SOCKETCALL, SOCKETCALL_CONNECT, low32(callargs), 0);

	int sock2 = socket(AF_INET, SOCK_STREAM, 0);
	int connected = int80(NR32_CONNECT, (uint32_t)sock2, low32(&addr), sizeof(addr));

	const char *dir = argv[4];
	int u_opened = int80(NR32_OPEN, untouched(dir, argv[1], strlen(argv[1]) + 1), O_RDONLY, 0);
	int sock3 = socket(AF_INET, SOCK_STREAM, 0);
	uint32_t u_args[3] = {(uint32_t)sock3, untouched(dir, &addr, sizeof(addr)), sizeof(addr)};
	int u_socketcall = int80(NR32_SOCKETCALL, SOCKETCALL_CONNECT, untouched(dir, u_args, sizeof(u_args)), 0);
	int sock4 = socket(AF_INET, SOCK_STREAM, 0);
	int u_connected = int80(NR32_CONNECT, (uint32_t)sock4, untouched(dir, &addr, sizeof(addr)), sizeof(addr));

	/* UDP datagrams to the same port: socketcall(SYS_SENDTO), i386 sendto. */
	int sock5 = socket(AF_INET, SOCK_DGRAM, 0);
	sendargs[0] = (uint32_t)sock5;
	sendargs[1] = low32(payload);
	sendargs[2] = 5;
	sendargs[3] = 0;
	sendargs[4] = low32(&addr);
	sendargs[5] = sizeof(addr);
	int sc_sendto = int80(NR32_SOCKETCALL, SOCKETCALL_SENDTO, low32(sendargs), 0);
	int sock6 = socket(AF_INET, SOCK_DGRAM, 0);
	uint64_t ret;
	__asm__ volatile("push %%rbp\n\tmov %7, %%rbp\n\tint $0x80\n\tpop %%rbp"
			 : "=a"(ret)
			 : "a"((uint64_t)NR32_SENDTO), "b"((uint64_t)sock6), "c"((uint64_t)low32(payload)), "d"((uint64_t)5),
			   "S"((uint64_t)0), "D"((uint64_t)low32(&addr)), "r"((uint64_t)sizeof(addr))
			 : "memory", "r8", "r9", "r10", "r11");
	int i386_sendto = (int)ret;

	printf("RESULT {\"sockets\":{");
	int socks[] = {sock1, sock2, sock3, sock4, sock5, sock6};
	for (int i = 0; i < 6; i++) {
		uint64_t cookie = 0;
		socklen_t clen = sizeof(cookie);
		struct sockaddr_in local;
		socklen_t len = sizeof(local);
		getsockopt(socks[i], SOL_SOCKET, SO_COOKIE, &cookie, &clen);
		memset(&local, 0, sizeof(local));
		getsockname(socks[i], (struct sockaddr *)&local, &len);
		printf("%s\"%d\":{\"cookie\":%llu,\"port\":%d}", i ? "," : "", socks[i], (unsigned long long)cookie,
		       ntohs(local.sin_port));
	}
	printf("},\"sock5\":%d,\"sc_sendto\":%d,\"sock6\":%d,\"sendto\":%d,", sock5, sc_sendto, sock6, i386_sendto);
	printf("\"pid\":%d,\"open\":%d,\"missing\":%d,\"sock1\":%d,\"socketcall\":%d,"
	       "\"sock2\":%d,\"connect\":%d,\"u_open\":%d,\"sock3\":%d,\"u_socketcall\":%d,"
	       "\"sock4\":%d,\"u_connect\":%d}\n",
	       getpid(), opened, missing, sock1, socketcall, sock2, connected, u_opened, sock3, u_socketcall,
	       sock4, u_connected);
	return 0;
}
