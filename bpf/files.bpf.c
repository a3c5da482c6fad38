// SPDX-License-Identifier: GPL-2.0-only
/*
 * Files: every syscall that yields a file descriptor for a file the caller
 * names or reaches (open, creat, openat, openat2, open_tree, open_tree_attr,
 * open_by_handle_at, pidfd_getfd, memfd_create), paired at sys_enter and
 * sys_exit. The arguments are read once, at entry; at exit the record gets
 * the file the kernel installed in the descriptor table, resolved from its
 * struct file, so what it names is what was opened whatever the caller's
 * memory says by then. A failed open of a relative name records the
 * directory it was relative to, resolved in the kernel.
 */
#include "syscalls.h"
#include "net.h"

#define O_CREAT 0100
#define O_WRONLY 01
#define O_TRUNC 01000
#define AT_FDCWD -100


/* openat2's struct open_how; false if it cannot be read. */
static __always_inline bool read_open_how(struct open_event *e, __u64 uhow)
{
	struct open_how how = {};

	if (bpf_probe_read_user(&how, sizeof(how), (void *)uhow))
		return false;
	e->flags = how.flags;
	e->mode = how.mode;
	e->resolve = how.resolve;
	return true;
}

/* open_by_handle_at's struct file_handle: its type, and its bytes into names. */
static __always_inline bool read_handle(struct open_event *e, __u64 uhandle)
{
	struct {
		__u32 handle_bytes;
		__s32 handle_type;
	} h;

	if (bpf_probe_read_user(&h, sizeof(h), (void *)uhandle))
		return false;
	__u32 n = h.handle_bytes;
	if (n > HANDLE_BYTES)
		n = HANDLE_BYTES; /* the kernel refuses it with EINVAL */
	if (n && bpf_probe_read_user(e->names, n & (HANDLE_BYTES * 2 - 1), (void *)(uhandle + sizeof(h))))
		return false;
	e->arg = h.handle_type;
	e->path_len = n;
	return true;
}

/* Reset what a previous syscall of this thread left in its open record. */
static __always_inline void reset_open(struct open_event *e, __u32 sc)
{
	e->syscall = sc;
	e->dirfd = AT_FDCWD;
	e->flags = 0;
	e->mode = 0;
	e->resolve = 0;
	e->user_data = 0;
	e->src_start_time = 0;
	e->src_exec_seq = 0;
	e->src_pid = 0;
	e->arg = 0;
	e->oflags = 0;
	e->sqe_flags = 0;
	e->path_len = 0;
	e->file.flags = 0;
}

static __always_inline void enter_open(__u32 sc, __u32 abi, struct sys_args *args)
{
	const char *path = NULL;

	struct inflight_rec *rec = start_inflight(KIND_OPEN);
	if (!rec)
		return;
	struct open_event *e = &rec->open;

	fill_header_cached(rec, &e->hdr, KIND_OPEN);
	reset_open(e, sc);
	e->hdr.flags |= abi;
	switch (sc) {
	case SC_OPEN:
		path = (const char *)args->a[0];
		e->flags = args->a[1];
		e->mode = args->a[2];
		break;
	case SC_CREAT:
		path = (const char *)args->a[0];
		e->flags = O_CREAT | O_WRONLY | O_TRUNC;
		e->mode = args->a[1];
		break;
	case SC_OPENAT:
		e->dirfd = (__s32)args->a[0];
		path = (const char *)args->a[1];
		e->flags = (__u32)args->a[2];
		e->mode = (__u32)args->a[3];
		break;
	case SC_OPENAT2:
		e->dirfd = (__s32)args->a[0];
		path = (const char *)args->a[1];
		if (!read_open_how(e, args->a[2]))
			e->hdr.flags |= EF_ARG_FAULT;
		break;
	case SC_OPEN_TREE:
	case SC_OPEN_TREE_ATTR:
		e->dirfd = (__s32)args->a[0];
		path = (const char *)args->a[1];
		e->flags = (__u32)args->a[2];
		break;
	case SC_MEMFD_CREATE:
		path = (const char *)args->a[0]; /* the name */
		e->flags = (__u32)args->a[1];
		break;
	case SC_OPEN_BY_HANDLE_AT:
		e->dirfd = (__s32)args->a[0]; /* mount_fd */
		e->flags = (__u32)args->a[2];
		if (!read_handle(e, args->a[1]))
			e->hdr.flags |= EF_ARG_FAULT;
		return;
	default: /* SC_PIDFD_GETFD */
		e->dirfd = (__s32)args->a[0]; /* pidfd */
		e->arg = (__s32)args->a[1];   /* the fd in the other process */
		e->flags = (__u32)args->a[2];
		return;
	}
	e->path_len = read_user_path(e->names, path, &e->hdr.flags);
}

/*
 * pidfd_getfd: the process the pidfd refers to, from the pidfd's struct
 * pid, and its executable's path into names.
 */
static __always_inline void resolve_source(struct open_event *e, struct path_scratch *s)
{
	struct file *pidfd = current_fd(e->dirfd);
	if (!pidfd)
		return;
	struct inode *inode = KREAD(struct file, pidfd, f_inode);
	struct super_block *sb = KREAD(struct inode, inode, i_sb);
	/* pidfs (6.9+) keeps the pid in the inode; earlier, anon inodes in the file. */
	struct pid *pid = KREAD(struct super_block, sb, s_magic) == PIDFS_MAGIC ? KREAD(struct inode, inode, i_private)
										   : KREAD(struct file, pidfd, private_data);
	if (!pid)
		return;
	struct hlist_node *first = KREAD(struct pid, pid, tasks[PIDTYPE_PID].first);
	if (!first)
		return; /* the process is gone */
	struct task_struct *task = (void *)first - bpf_core_field_offset(struct task_struct, pid_links);
	struct task_struct *leader = KREAD(struct task_struct, task, group_leader);

	e->src_pid = KREAD(struct task_struct, leader, tgid);
	e->src_start_time = KREAD(struct task_struct, leader, start_boottime);
	e->src_exec_seq = KREAD(struct task_struct, leader, self_exec_id);
	e->oflags |= OF_SOURCE;

	struct mm_struct *mm = KREAD(struct task_struct, leader, mm);
	struct file *exe = mm ? KREAD(struct mm_struct, mm, exe_file) : NULL;
	if (!exe)
		return;
	struct file_info fi = {};
	struct task_root none = {};
	resolve_file(s, &fi, exe, &none, e->names);
	if (fi.flags & FF_PATH_TRUNCATED)
		e->oflags |= OF_SOURCE_EXE_TRUNCATED;
	e->path_len = fi.path_len & PATH_MASK;
}

/*
 * The directory a failed open of a relative (or unreadable) name was
 * resolved against: the dirfd's file, or the working directory.
 */
static __always_inline void resolve_dir(struct open_event *e, struct path_scratch *s, struct task_root *root, char *dst)
{
	switch (e->syscall) {
	case SC_OPEN_BY_HANDLE_AT:
	case SC_PIDFD_GETFD:
	case SC_MEMFD_CREATE:
		return;
	}
	if (!(e->hdr.flags & EF_PATH_FAULT) && e->path_len && e->names[0] == '/')
		return;
	if (e->dirfd == AT_FDCWD || e->syscall == SC_OPEN || e->syscall == SC_CREAT) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct fs_struct *fs = KREAD(struct task_struct, task, fs);
		s->from_dentry = (__u64)KREAD(struct fs_struct, fs, pwd.dentry);
		s->from_mnt = (__u64)KREAD(struct fs_struct, fs, pwd.mnt);
		resolve_path(s, &e->file, root, (struct path_out *)dst);
	} else {
		struct file *dir = current_fd(e->dirfd);
		if (!dir)
			return;
		resolve_file(s, &e->file, dir, root, dst);
	}
	e->oflags |= OF_DIR;
}

/*
 * Complete an open record with its result: the file behind the new
 * descriptor (or, for a fixed io_uring slot, file), or for a failure the
 * directory; then send the fixed part, the argument and the file's path.
 */
static __always_inline void finish_open(struct open_event *e, long ret, struct file *file, __u32 kind)
{
	struct path_scratch *s = path_scratch();
	struct task_root root;
	__u32 n = (e->path_len & PATH_MASK) + 1; /* the argument and its NUL */
	char *dst = &e->names[n];

	e->ret = ret;
	e->file.flags = 0;
	if (s) {
		current_root(&root);
		if (ret >= 0 && file)
			resolve_file(s, &e->file, file, &root, dst);
		else if (ret < 0)
			resolve_dir(e, s, &root, dst);
	}
	if (e->file.flags & FF_PRESENT) {
		__u32 len = e->file.path_len & PATH_MASK;
		dst[len] = 0;
		n += len + 1;
	}
	if (n > 2 * PATH_BYTES)
		n = 2 * PATH_BYTES;
	if (e->syscall == SC_PIDFD_GETFD && ret >= 0 && file) {
		/* A socket taken from another process: which one, and its peer. */
		struct sock *sk = file_sock(file);
		__u32 off = (n + 7) & ~7U;
		if (sk && off <= 2 * PATH_BYTES) {
			fill_sock((struct sock_info *)&e->names[off], sk);
			e->oflags |= OF_SOCKET;
			n = off + sizeof(struct sock_info);
		}
	}
	stamp(&e->hdr);
	emit(e, offsetof(struct open_event, names) + n, kind);
}

static __always_inline void exit_open(struct inflight_rec *rec, long ret)
{
	struct open_event *e = &rec->open;
	struct path_scratch *s;

	if (e->syscall == SC_PIDFD_GETFD && ret >= 0 && (s = path_scratch()))
		resolve_source(e, s);
	finish_open(e, ret, ret >= 0 ? current_fd(ret) : NULL, KIND_OPEN);
}
