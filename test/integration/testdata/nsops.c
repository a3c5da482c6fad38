// SPDX-License-Identifier: GPL-2.0-only
/*
 * Namespaces and mounts, as an unprivileged agent can make them in a user
 * namespace of its own:
 *
 *	nsops DIR
 *
 * Drops root to uid and gid 65534, then: unshare(CLONE_NEWUSER|CLONE_NEWNS)
 * (maps uid and gid 0 to 65534), mount a tmpfs on DIR and unmount it,
 * umount2 DIR again (EINVAL: no longer a mount point), the new mount API
 * (fsopen tmpfs, fsconfig source, fsconfig create, fsmount, move_mount onto
 * DIR, umount2), setns back into the original mount namespace (EPERM: its
 * owner is not ours), unshare(CLONE_NEWNET|CLONE_NEWUTS). Prints one line:
 *
 *	RESULT {"pid":N,"ops":[{"op":"unshare","ret":0},...]}
 *
 * with the raw result of each (-errno on failure), in order; "fd" is the
 * file descriptor an op used.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/mount.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_OPS 32

static struct {
	const char *op;
	long ret;
	int fd;
} ops[MAX_OPS];
static int nops;

static long add(const char *op, long r, int fd)
{
	if (r < 0)
		r = -errno;
	if (nops < MAX_OPS) {
		ops[nops].op = op;
		ops[nops].ret = r;
		ops[nops].fd = fd;
		nops++;
	}
	return r;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: nsops DIR\n");
		return 2;
	}
	const char *dir = argv[1];
	if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) {
		perror("nsops: dropping root");
		return 3;
	}
	/* Changing uid made it non-dumpable: /proc/self/uid_map would be root's. */
	prctl(PR_SET_DUMPABLE, 1);
	int orig_mnt = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (orig_mnt < 0) {
		perror("nsops: /proc/self/ns/mnt");
		return 4;
	}

	if (add("unshare", unshare(CLONE_NEWUSER | CLONE_NEWNS), 0) < 0)
		goto out;
	if (write_file("/proc/self/setgroups", "deny") || write_file("/proc/self/uid_map", "0 65534 1") ||
	    write_file("/proc/self/gid_map", "0 65534 1")) {
		perror("nsops: id maps");
		return 5;
	}
	add("mount", mount("none", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k"), 0);
	add("umount2", umount2(dir, MNT_DETACH), 0);
	add("umount2-einval", umount2(dir, 0), 0);

	int fs = add("fsopen", syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC), 0);
	add("fsconfig-source", syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", "agent-fs", 0), fs);
	add("fsconfig-create", syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0), fs);
	int mfd = add("fsmount", syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC), fs);
	add("move_mount", syscall(SYS_move_mount, mfd, "", AT_FDCWD, dir, MOVE_MOUNT_F_EMPTY_PATH), mfd);
	add("umount2-new", umount2(dir, MNT_DETACH), 0);

	add("setns", setns(orig_mnt, CLONE_NEWNS), orig_mnt);
	add("unshare-net", unshare(CLONE_NEWNET | CLONE_NEWUTS), 0);
out:
	printf("RESULT {\"pid\":%d,\"ops\":[", getpid());
	for (int i = 0; i < nops; i++)
		printf("%s{\"op\":\"%s\",\"ret\":%ld,\"fd\":%d}", i ? "," : "", ops[i].op, ops[i].ret, ops[i].fd);
	printf("]}\n");
	return 0;
}
