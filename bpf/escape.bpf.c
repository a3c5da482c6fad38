// SPDX-License-Identifier: GPL-2.0-only
/*
 * Escapes: what a traced process can do to leave the trace or act through
 * something outside it, and the syscalls that decide what a later path
 * means.
 *
 *   - cgroup moves (tp_btf/cgroup_attach_task) of traced processes and by
 *     traced processes, and clone3(CLONE_INTO_CGROUP) the kernel refused;
 *   - proc_access: ptrace requests that change the target,
 *     process_vm_readv/writev, pidfd_open, and signals to processes outside
 *     the trace, with the target's identity read in the kernel; a process a
 *     traced one attaches to or writes into is traced from then on;
 *   - file_op: rename, link, symlink, unlink, chmod, chown, truncate;
 *   - mount, namespace (unshare, setns) and bpf(2).
 *
 * Each syscall is paired at sys_enter/sys_exit through its own per-thread
 * entry in `escapes`, created at entry and deleted at exit: these syscalls
 * are rare, and their records (up to four paths) are larger than the
 * open/connect pairing entry that every thread keeps.
 */
#include "syscalls.h"

#define AT_FDCWD -100
#define CLONE_INTO_CGROUP 0x200000000ULL
#define PID_FS_MAGIC 0x50494446
#define PROC_SUPER_MAGIC 0x9fa0
#define ANON_INODE_FS_MAGIC 0x09041934

/* ptrace requests that change the target (registers, memory, signals, state). */
#define PTRACE_POKETEXT 4
#define PTRACE_POKEDATA 5
#define PTRACE_POKEUSR 6
#define PTRACE_SETREGS 13
#define PTRACE_SETFPREGS 15
#define PTRACE_ATTACH 16
#define PTRACE_SETFPXREGS 19
#define PTRACE_SET_THREAD_AREA 26
#define PTRACE_ARCH_PRCTL 30
#define PTRACE_SETSIGINFO 0x4203
#define PTRACE_SETREGSET 0x4205
#define PTRACE_SEIZE 0x4206
#define PTRACE_SETSIGMASK 0x420b
#define PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG 0x4210
#define PTRACE_SET_SYSCALL_INFO 0x4212

/* bpf(2) commands whose attr names an object (see bpf_ids). */
#define BPF_MAP_CREATE 0
#define BPF_MAP_LOOKUP_ELEM 1
#define BPF_MAP_UPDATE_ELEM 2
#define BPF_MAP_DELETE_ELEM 3
#define BPF_MAP_GET_NEXT_KEY 4
#define BPF_PROG_LOAD 5
#define BPF_OBJ_GET 7
#define BPF_PROG_ATTACH 8
#define BPF_PROG_DETACH 9
#define BPF_PROG_TEST_RUN 10
#define BPF_PROG_GET_FD_BY_ID 13
#define BPF_MAP_GET_FD_BY_ID 14
#define BPF_OBJ_GET_INFO_BY_FD 15
#define BPF_RAW_TRACEPOINT_OPEN 17
#define BPF_MAP_LOOKUP_AND_DELETE_ELEM 21
#define BPF_MAP_FREEZE 22
#define BPF_MAP_LOOKUP_BATCH 24
#define BPF_MAP_DELETE_BATCH 27
#define BPF_LINK_CREATE 28
#define BPF_LINK_UPDATE 29
#define BPF_LINK_GET_FD_BY_ID 30
#define BPF_ITER_CREATE 33
#define BPF_LINK_DETACH 34
#define BPF_PROG_BIND_MAP 35
/* The leading bytes of union bpf_attr that bpf_ids reads. */
#define BPF_ATTR_WORDS 10

#ifndef bpf_ksym_exists
/* As libbpf's bpf_helpers.h has it: whether a __weak kernel symbol resolved. */
#define bpf_ksym_exists(sym) ({ _Static_assert(!__builtin_constant_p(!!sym), #sym " should be marked as __weak"); !!sym; })
#endif

extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
extern struct task_struct *bpf_task_from_vpid(s32 vpid) __ksym __weak;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern int bpf_iter_task_new(struct bpf_iter_task *it, struct task_struct *task, unsigned int flags) __ksym __weak;
extern struct task_struct *bpf_iter_task_next(struct bpf_iter_task *it) __ksym __weak;
extern void bpf_iter_task_destroy(struct bpf_iter_task *it) __ksym __weak;

/* One escape syscall between its entry and its exit. */
struct escape_inflight {
	__u32 kind;         /* enum record_kind of the live member */
	__u32 size;         /* bytes of the record to send */
	__u32 attr[BPF_ATTR_WORDS]; /* bpf: the leading words of its attr */
	union {
		struct cgroup_move_event move; /* clone3(CLONE_INTO_CGROUP) */
		struct proc_access_event access;
		struct file_op_event file_op;
		struct mount_event mount;
		struct namespace_event ns;
		struct bpf_event bpf;
	};
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32); /* tid */
	__type(value, struct escape_inflight);
} escapes SEC(".maps");

/* This thread's new escape entry for kind, or NULL (counted) if the map is full. */
static __always_inline struct escape_inflight *start_escape(__u32 tid, __u32 kind)
{
	static const struct escape_inflight zero;
	struct escape_state *s = escape_state_get();

	if (bpf_map_update_elem(&escapes, &tid, &zero, BPF_NOEXIST) == 0) {
		if (s)
			__sync_fetch_and_add(&s->live, 1);
	} else {
		/* A stale entry of this thread's (or a full map). */
		bpf_map_update_elem(&escapes, &tid, &zero, BPF_EXIST);
	}
	struct escape_inflight *x = bpf_map_lookup_elem(&escapes, &tid);
	if (!x) {
		count_lost_inflight(kind);
		return NULL;
	}
	x->kind = kind;
	return x;
}

/* Drop this thread's escape entry, if it has one. */
static __always_inline void end_escape(__u32 tid)
{
	struct escape_state *s = escape_state_get();

	if (bpf_map_delete_elem(&escapes, &tid) == 0 && s)
		__sync_fetch_and_sub(&s->live, 1);
}

/* Whether any thread may have an escape entry: else an exit has none to look up. */
static __always_inline bool escapes_live(void)
{
	struct escape_state *s = escape_state_get();
	return !s || s->live;
}

/*
 * Read a user string into dst (cap bytes with its NUL); returns its length.
 * A NULL src is not read (returns 0, *present false).
 */
static __always_inline __u32 read_user_str(char *dst, __u32 cap, const char *src, __u32 *flags, __u32 fault, __u32 trunc)
{
	long n = bpf_probe_read_user_str(dst, cap, src);
	if (n <= 0) {
		*flags |= fault;
		return 0;
	}
	if (n == cap) {
		char next = 0;
		if (bpf_probe_read_user(&next, 1, src + cap - 1) == 0 && next)
			*flags |= trunc;
	}
	return (__u32)(n - 1);
}

/* The file open at fd in the current task's table, or NULL. */
static __always_inline struct file *fd_file_of(int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = NULL;

	if (fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* Where resolve_path writes a path for path_into (it needs NAME_BYTES of room past the end). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_out);
} escape_paths SEC(".maps");

/*
 * Walk (dentry, mnt) into dst (PATH_BYTES) with the open records' walk
 * (resolve_path, common.h); returns the length, sets *trunc.
 */
static __always_inline __u32 path_into(char *dst, struct dentry *dentry, struct vfsmount *mnt, bool *trunc)
{
	__u32 zero = 0;
	struct path_scratch *s = bpf_map_lookup_elem(&pathbuf, &zero);
	struct path_out *out = bpf_map_lookup_elem(&escape_paths, &zero);
	if (!s || !out)
		return 0;
	struct file_info fi = {};
	struct task_root none = {};
	s->from_dentry = (__u64)dentry;
	s->from_mnt = (__u64)mnt;
	resolve_path(s, &fi, &none, out);
	if (fi.flags & FF_PATH_TRUNCATED)
		*trunc = true;
	__u32 len = fi.path_len & PATH_MASK;
	bpf_probe_read_kernel(dst, len, out->buf);
	return len;
}

/* The directory a relative name is resolved against: the cwd or dirfd's file. */
static __always_inline bool dir_into(char *dst, __s32 dirfd, __u32 *len, bool *trunc)
{
	struct dentry *dentry;
	struct vfsmount *mnt;

	if (dirfd == AT_FDCWD) {
		struct task_struct *task = bpf_get_current_task_btf();
		dentry = BPF_CORE_READ(task, fs, pwd.dentry);
		mnt = BPF_CORE_READ(task, fs, pwd.mnt);
	} else {
		struct file *f = fd_file_of(dirfd);
		if (!f)
			return false;
		dentry = BPF_CORE_READ(f, f_path.dentry);
		mnt = BPF_CORE_READ(f, f_path.mnt);
	}
	if (!dentry || !mnt)
		return false;
	*len = path_into(dst, dentry, mnt, trunc);
	return true;
}

static __always_inline bool relative(const char *path, __u32 len)
{
	return len > 0 && path[0] != '/';
}

/* fd-based file ops: what the fd refers to, as the kernel has it. */
static __always_inline void file_info(struct file_op_event *e, int fd)
{
	struct file *f = fd_file_of(fd);
	if (!f)
		return;
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	struct vfsmount *vmnt = BPF_CORE_READ(f, f_path.mnt);
	struct mount *mnt = container_of(vmnt, struct mount, mnt);
	bool trunc = false;

	e->fflags |= FO_FILE;
	e->file_ino = BPF_CORE_READ(inode, i_ino);
	e->file_dev = BPF_CORE_READ(inode, i_sb, s_dev);
	e->file_mode = BPF_CORE_READ(inode, i_mode);
	e->file_mnt_id = BPF_CORE_READ(mnt, mnt_id);
	if (BPF_CORE_READ(inode, __i_nlink) == 0)
		e->fflags |= FO_FILE_DELETED;
	e->dir_len = path_into(e->dir, BPF_CORE_READ(f, f_path.dentry), vmnt, &trunc);
	if (trunc)
		e->fflags |= FO_DIR_TRUNCATED;
}

static __always_inline __u32 uid16(__u64 v)
{
	return (__u16)v == 0xffff ? 0xffffffff : (__u16)v;
}

static __always_inline void enter_file_op(__u32 tid, __u32 sc, __u32 abi, __u32 variant, struct sys_args *a)
{
	struct escape_inflight *x = start_escape(tid, KIND_FILE_OP);
	if (!x)
		return;
	struct file_op_event *e = &x->file_op;
	const char *path = NULL, *new_path = NULL;
	bool resolve = true; /* path is a name to resolve (not symlink contents) */
	int fd = -1;

	fill_header(&e->hdr, KIND_FILE_OP);
	e->hdr.flags |= abi;
	e->syscall = sc;
	e->dirfd = AT_FDCWD;
	e->new_dirfd = AT_FDCWD;
	e->fd = -1;
	switch (sc) {
	case SC_RENAME:
	case SC_LINK:
		path = (const char *)a->a[0];
		new_path = (const char *)a->a[1];
		break;
	case SC_SYMLINK:
		path = (const char *)a->a[0];
		new_path = (const char *)a->a[1];
		resolve = false;
		break;
	case SC_SYMLINKAT:
		path = (const char *)a->a[0];
		e->new_dirfd = (__s32)a->a[1];
		new_path = (const char *)a->a[2];
		resolve = false;
		break;
	case SC_RENAMEAT:
	case SC_RENAMEAT2:
	case SC_LINKAT:
		e->dirfd = (__s32)a->a[0];
		path = (const char *)a->a[1];
		e->new_dirfd = (__s32)a->a[2];
		new_path = (const char *)a->a[3];
		e->flags = (__u32)a->a[4];
		break;
	case SC_UNLINK:
	case SC_RMDIR:
		path = (const char *)a->a[0];
		break;
	case SC_UNLINKAT:
		e->dirfd = (__s32)a->a[0];
		path = (const char *)a->a[1];
		e->flags = (__u32)a->a[2];
		break;
	case SC_CHMOD:
		path = (const char *)a->a[0];
		e->mode = (__u32)a->a[1];
		break;
	case SC_FCHMOD:
		fd = (int)a->a[0];
		e->mode = (__u32)a->a[1];
		break;
	case SC_FCHMODAT:
	case SC_FCHMODAT2:
		e->dirfd = (__s32)a->a[0];
		path = (const char *)a->a[1];
		e->mode = (__u32)a->a[2];
		e->flags = sc == SC_FCHMODAT2 ? (__u32)a->a[3] : 0;
		break;
	case SC_CHOWN:
	case SC_LCHOWN:
		path = (const char *)a->a[0];
		e->uid = variant == SV_UID16 ? uid16(a->a[1]) : (__u32)a->a[1];
		e->gid = variant == SV_UID16 ? uid16(a->a[2]) : (__u32)a->a[2];
		break;
	case SC_FCHOWN:
		fd = (int)a->a[0];
		e->uid = variant == SV_UID16 ? uid16(a->a[1]) : (__u32)a->a[1];
		e->gid = variant == SV_UID16 ? uid16(a->a[2]) : (__u32)a->a[2];
		break;
	case SC_FCHOWNAT:
		e->dirfd = (__s32)a->a[0];
		path = (const char *)a->a[1];
		e->uid = (__u32)a->a[2];
		e->gid = (__u32)a->a[3];
		e->flags = (__u32)a->a[4];
		break;
	case SC_TRUNCATE:
	case SC_FTRUNCATE:
		if (sc == SC_TRUNCATE)
			path = (const char *)a->a[0];
		else
			fd = (int)a->a[0];
		if (variant == SV_LENGTH64)
			e->length = (a->a[1] & 0xffffffff) | (a->a[2] << 32);
		else if (abi == EF_COMPAT)
			e->length = (__s64)(__s32)a->a[1]; /* compat_off_t */
		else
			e->length = a->a[1];
		break;
	}
	e->fd = fd;

	__u32 size = offsetof(struct file_op_event, path);
	if (path) {
		e->path_len = read_user_str(e->path, PATH_BYTES, path, &e->fflags, FO_PATH_FAULT, FO_PATH_TRUNCATED);
		size = offsetof(struct file_op_event, path) + (e->path_len & PATH_MASK) + 1;
	}
	if (new_path) {
		e->new_path_len = read_user_str(e->new_path, PATH_BYTES, new_path, &e->fflags, FO_NEW_PATH_FAULT, FO_NEW_PATH_TRUNCATED);
		size = offsetof(struct file_op_event, new_path) + (e->new_path_len & PATH_MASK) + 1;
	}
	bool trunc = false;
	if (path && resolve && relative(e->path, e->path_len) && dir_into(e->dir, e->dirfd, &e->dir_len, &trunc)) {
		e->fflags |= FO_DIR | (trunc ? FO_DIR_TRUNCATED : 0);
		size = offsetof(struct file_op_event, dir) + (e->dir_len & PATH_MASK) + 1;
	}
	if (fd >= 0) {
		file_info(e, fd);
		if (e->fflags & FO_FILE)
			size = offsetof(struct file_op_event, dir) + (e->dir_len & PATH_MASK) + 1;
	}
	trunc = false;
	if (new_path && relative(e->new_path, e->new_path_len) && dir_into(e->new_dir, e->new_dirfd, &e->new_dir_len, &trunc)) {
		e->fflags |= FO_NEW_DIR | (trunc ? FO_NEW_DIR_TRUNCATED : 0);
		size = offsetof(struct file_op_event, new_dir) + (e->new_dir_len & PATH_MASK) + 1;
	}
	x->size = size;
}

static __always_inline void enter_mount(__u32 tid, __u32 sc, __u32 abi, __u32 variant, struct sys_args *a)
{
	struct escape_inflight *x = start_escape(tid, KIND_MOUNT);
	if (!x)
		return;
	struct mount_event *e = &x->mount;
	const char *source = NULL, *target = NULL, *fstype = NULL;

	fill_header(&e->hdr, KIND_MOUNT);
	e->hdr.flags |= abi;
	e->syscall = sc;
	e->fd = -1;
	e->dirfd = AT_FDCWD;
	e->from_dirfd = AT_FDCWD;
	switch (sc) {
	case SC_MOUNT:
		source = (const char *)a->a[0];
		target = (const char *)a->a[1];
		fstype = (const char *)a->a[2];
		e->flags = a->a[3];
		break;
	case SC_UMOUNT2:
		target = (const char *)a->a[0];
		if (variant == SV_OLD_UMOUNT)
			e->mflags |= MO_OLD_UMOUNT;
		else
			e->flags = (__u32)a->a[1];
		break;
	case SC_PIVOT_ROOT:
		target = (const char *)a->a[0];
		source = (const char *)a->a[1];
		break;
	case SC_MOVE_MOUNT:
		e->from_dirfd = (__s32)a->a[0];
		source = (const char *)a->a[1];
		e->dirfd = (__s32)a->a[2];
		target = (const char *)a->a[3];
		e->flags = (__u32)a->a[4];
		break;
	case SC_FSOPEN:
		fstype = (const char *)a->a[0];
		e->flags = (__u32)a->a[1];
		break;
	case SC_FSCONFIG:
		e->fd = (__s32)a->a[0];
		e->cmd = (__u32)a->a[1];
		/* FSCONFIG_SET_FLAG .. SET_FD name a key; SET_STRING, SET_PATH(_EMPTY) a string value. */
		if (e->cmd <= 5)
			fstype = (const char *)a->a[2];
		if (e->cmd == 1 || e->cmd == 3 || e->cmd == 4)
			source = (const char *)a->a[3];
		e->aux = (__s32)a->a[4];
		break;
	case SC_FSMOUNT:
		e->fd = (__s32)a->a[0];
		e->flags = (__u32)a->a[1];
		e->attr = (__u32)a->a[2];
		break;
	case SC_MOUNT_SETATTR: {
		__u64 attr[2] = {};
		e->dirfd = (__s32)a->a[0];
		target = (const char *)a->a[1];
		e->flags = (__u32)a->a[2];
		if (a->a[4] >= sizeof(attr) && bpf_probe_read_user(attr, sizeof(attr), (void *)a->a[3]) == 0) {
			e->attr = attr[0];
			e->attr_clr = attr[1];
		} else {
			e->mflags |= MO_ATTR_FAULT;
		}
		break;
	}
	}
	if (source) {
		e->mflags |= MO_SOURCE;
		e->source_len = read_user_str(e->source, PATH_BYTES, source, &e->mflags, MO_SOURCE_FAULT, MO_TRUNCATED);
	}
	if (target) {
		e->mflags |= MO_TARGET;
		e->target_len = read_user_str(e->target, PATH_BYTES, target, &e->mflags, MO_TARGET_FAULT, MO_TRUNCATED);
	}
	if (fstype) {
		e->mflags |= MO_FSTYPE;
		e->fstype_len = read_user_str(e->fstype, FSTYPE_BYTES, fstype, &e->mflags, MO_FSTYPE_FAULT, MO_TRUNCATED);
	}
	x->size = sizeof(*e);
}

static __always_inline void enter_namespace(__u32 tid, __u32 sc, __u32 abi, struct sys_args *a)
{
	struct escape_inflight *x = start_escape(tid, KIND_NAMESPACE);
	if (!x)
		return;
	struct namespace_event *e = &x->ns;

	fill_header(&e->hdr, KIND_NAMESPACE);
	e->hdr.flags |= abi;
	e->syscall = sc;
	if (sc == SC_SETNS) {
		e->fd = (__s32)a->a[0];
		e->flags = (__u32)a->a[1];
	} else {
		e->fd = -1;
		e->flags = a->a[0];
	}
	x->size = sizeof(*e);
}

/* The id of the bpf object (map, program, link) open at fd, if it is one. */
static __always_inline void bpf_object_ids(struct bpf_event *e, int fd)
{
	struct file *f = fd_file_of(fd);
	char name[9] = {};

	if (!f || BPF_CORE_READ(f, f_inode, i_sb, s_magic) != ANON_INODE_FS_MAGIC)
		return;
	bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(f, f_path.dentry, d_name.name));
	void *obj = BPF_CORE_READ(f, private_data);
	if (!obj)
		return;
	/* The names anon_inode_getfd gives them in kernel/bpf/syscall.c. */
	if (name[0] != 'b' || name[1] != 'p' || name[2] != 'f')
		return;
	if (name[3] == '-' && name[4] == 'm' && name[5] == 'a' && name[6] == 'p' && name[7] == 0) {
		e->map_id = BPF_CORE_READ((struct bpf_map *)obj, id);
		e->bflags |= BF_MAP;
	} else if (name[3] == '-' && name[4] == 'p' && name[5] == 'r' && name[6] == 'o' && name[7] == 'g' && name[8] == 0) {
		e->prog_id = BPF_CORE_READ((struct bpf_prog *)obj, aux, id);
		e->bflags |= BF_PROG;
	} else if (name[3] == '_' && name[4] == 'l' && name[5] == 'i' && name[6] == 'n' && name[7] == 'k' && name[8] == 0) {
		e->link_id = BPF_CORE_READ((struct bpf_link *)obj, id);
		e->bflags |= BF_LINK;
	}
}

/* The objects a bpf(2) command names in its attr (words of it in x->attr). */
static __always_inline void bpf_ids(struct escape_inflight *x, struct bpf_event *e)
{
	__u32 *w = x->attr;

	switch (e->cmd) {
	case BPF_MAP_LOOKUP_ELEM:
	case BPF_MAP_UPDATE_ELEM:
	case BPF_MAP_DELETE_ELEM:
	case BPF_MAP_GET_NEXT_KEY:
	case BPF_MAP_LOOKUP_AND_DELETE_ELEM:
	case BPF_MAP_FREEZE:
	case BPF_OBJ_GET_INFO_BY_FD:
	case BPF_PROG_TEST_RUN:
	case BPF_LINK_CREATE:
	case BPF_LINK_DETACH:
	case BPF_ITER_CREATE:
		bpf_object_ids(e, (int)w[0]);
		break;
	case BPF_LINK_UPDATE:
	case BPF_PROG_BIND_MAP:
		bpf_object_ids(e, (int)w[0]);
		bpf_object_ids(e, (int)w[1]);
		break;
	case BPF_PROG_ATTACH:
	case BPF_PROG_DETACH:
		bpf_object_ids(e, (int)w[1]); /* attach_bpf_fd */
		break;
	case BPF_RAW_TRACEPOINT_OPEN:
		bpf_object_ids(e, (int)w[2]); /* prog_fd, after the name pointer */
		break;
	case BPF_PROG_GET_FD_BY_ID:
		e->prog_id = w[0];
		e->bflags |= BF_PROG;
		break;
	case BPF_MAP_GET_FD_BY_ID:
		e->map_id = w[0];
		e->bflags |= BF_MAP;
		break;
	case BPF_LINK_GET_FD_BY_ID:
		e->link_id = w[0];
		e->bflags |= BF_LINK;
		break;
	default:
		if (e->cmd >= BPF_MAP_LOOKUP_BATCH && e->cmd <= BPF_MAP_DELETE_BATCH)
			bpf_object_ids(e, (int)w[9]); /* batch.map_fd */
	}
}

static __always_inline void enter_bpf(__u32 tid, __u32 abi, struct sys_args *a)
{
	struct escape_inflight *x = start_escape(tid, KIND_BPF);
	if (!x)
		return;
	struct bpf_event *e = &x->bpf;

	fill_header(&e->hdr, KIND_BPF);
	e->hdr.flags |= abi;
	e->cmd = (__u32)a->a[0];
	__u32 size = (__u32)a->a[2];
	if (size > sizeof(x->attr))
		size = sizeof(x->attr);
	if (size)
		bpf_probe_read_user(x->attr, size & (sizeof(x->attr) * 2 - 1), (void *)a->a[1]);
	bpf_ids(x, e);
	x->size = sizeof(*e);
}

static __always_inline void exit_bpf(struct bpf_event *e, long ret)
{
	/* Commands that return a new fd for an object it did not name by id. */
	if (ret >= 0 && !e->bflags && (e->cmd == BPF_MAP_CREATE || e->cmd == BPF_PROG_LOAD || e->cmd == BPF_OBJ_GET))
		bpf_object_ids(e, (int)ret);
}

/*
 * The task pid names in the caller's pid namespace (acquired: release it),
 * or NULL.
 */
static __always_inline struct task_struct *task_from_vpid(__s32 pid)
{
	if (pid <= 0)
		return NULL;
	if (bpf_ksym_exists(bpf_task_from_vpid))
		return bpf_task_from_vpid(pid);
	/* Before 6.13: a pid is the host's only in the initial pid namespace. */
	struct task_struct *self = bpf_get_current_task_btf();
	if (BPF_CORE_READ(self, thread_pid, level) != 0)
		return NULL;
	return bpf_task_from_pid(pid);
}

/* The task of a pidfd (pidfs) or /proc/PID directory fd, or NULL. */
static __always_inline struct task_struct *task_from_pidfd(int fd)
{
	struct file *f = fd_file_of(fd);
	if (!f)
		return NULL;
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	unsigned long magic = BPF_CORE_READ(inode, i_sb, s_magic);
	struct pid *pid;

	if (magic == PID_FS_MAGIC)
		pid = BPF_CORE_READ(inode, i_private);
	else if (magic == PROC_SUPER_MAGIC)
		pid = BPF_CORE_READ(container_of(inode, struct proc_inode, vfs_inode), pid);
	else
		return NULL;
	if (!pid)
		return NULL;
	int nr = 0;
	bpf_core_read(&nr, sizeof(nr), &pid->numbers[0].nr);
	return nr > 0 ? bpf_task_from_pid(nr) : NULL;
}

/* The target's identity, as the kernel has it. */
static __always_inline void read_target(struct proc_access_event *e, struct task_struct *task)
{
	struct target_info *t = &e->target;
	bool trunc = false;

	t->tflags = TF_FOUND;
	t->pid = BPF_CORE_READ(task, tgid);
	t->tid = BPF_CORE_READ(task, pid);
	t->start_time = BPF_CORE_READ(task, group_leader, start_boottime);
	t->exec_seq = BPF_CORE_READ(task, self_exec_id);
	BPF_CORE_READ_STR_INTO(&t->comm, task, comm);
	if (task_traced(task))
		t->tflags |= TF_TRACED;
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	if (!exe) {
		t->tflags |= TF_NO_EXE;
		return;
	}
	t->exe_len = path_into(e->exe, BPF_CORE_READ(exe, f_path.dentry), BPF_CORE_READ(exe, f_path.mnt), &trunc);
	if (trunc)
		t->tflags |= TF_EXE_TRUNCATED;
}

static __always_inline bool ptrace_changes(__u64 request)
{
	switch (request) {
	case PTRACE_POKETEXT: case PTRACE_POKEDATA: case PTRACE_POKEUSR:
	case PTRACE_SETREGS: case PTRACE_SETFPREGS: case PTRACE_ATTACH:
	case PTRACE_SETFPXREGS: case PTRACE_SET_THREAD_AREA: case PTRACE_ARCH_PRCTL:
	case PTRACE_SETSIGINFO: case PTRACE_SETREGSET: case PTRACE_SEIZE:
	case PTRACE_SETSIGMASK: case PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG:
	case PTRACE_SET_SYSCALL_INFO:
		return true;
	}
	return false;
}

/* Signals are recorded only when they reach outside the trace. */
static __always_inline bool signal_sc(__u32 sc)
{
	return sc == SC_KILL || sc == SC_TKILL || sc == SC_TGKILL || sc == SC_RT_SIGQUEUEINFO || sc == SC_PIDFD_SEND_SIGNAL;
}

/*
 * Whether a signal stays within the trace: to the caller's own process or
 * to a traced one. Decided before an entry is made or the target's
 * executable walked, since most signals do (the Go runtime preempts its
 * threads with tgkill, shells signal their children). pidfd_send_signal is
 * judged with its record.
 */
static __always_inline bool signal_within_trace(__u32 sc, __u32 variant, struct sys_args *a)
{
	__s32 target, tgid = 0;

	switch (sc) {
	case SC_KILL:
		tgid = (__s32)a->a[0];
		target = tgid;
		break;
	case SC_TKILL:
		target = (__s32)a->a[0];
		break;
	case SC_TGKILL:
		tgid = (__s32)a->a[0];
		target = (__s32)a->a[1];
		break;
	case SC_RT_SIGQUEUEINFO:
		tgid = (__s32)a->a[0];
		target = (__s32)a->a[variant == SV_TG ? 1 : 0];
		break;
	default:
		return false;
	}
	/* The caller's own process, as its pid namespace numbers it. */
	if (tgid > 0) {
		struct task_struct *self = bpf_get_current_task_btf();
		struct pid *own = BPF_CORE_READ(self, group_leader, thread_pid);
		unsigned int level = BPF_CORE_READ(own, level);
		int nr = 0;
		if (level < 32)
			bpf_core_read(&nr, sizeof(nr), &own->numbers[level].nr);
		if (nr == tgid)
			return true;
	}
	struct task_struct *task = task_from_vpid(target);
	if (!task)
		return false;
	bool within = BPF_CORE_READ(task, tgid) == (__u32)(bpf_get_current_pid_tgid() >> 32) || task_traced(task);
	bpf_task_release(task);
	return within;
}

static __always_inline void enter_proc_access(__u32 tid, __u32 sc, __u32 abi, __u32 variant, struct sys_args *a)
{
	if (sc == SC_PTRACE && !ptrace_changes(a->a[0]))
		return;
	if (signal_sc(sc) && signal_within_trace(sc, variant, a))
		return;
	struct escape_inflight *x = start_escape(tid, KIND_PROC_ACCESS);
	if (!x)
		return;
	struct proc_access_event *e = &x->access;
	__s32 target = 0;

	e->syscall = sc;
	e->pidfd = -1;
	switch (sc) {
	case SC_PTRACE:
		e->request = (__u32)a->a[0];
		e->pid = (__s32)a->a[1];
		e->addr = a->a[2];
		e->data = a->a[3];
		target = e->pid;
		break;
	case SC_PROCESS_VM_READV:
	case SC_PROCESS_VM_WRITEV:
	case SC_KILL:
	case SC_TKILL:
		e->pid = (__s32)a->a[0];
		e->sig = sc == SC_KILL || sc == SC_TKILL ? (__u32)a->a[1] : 0;
		target = e->pid;
		break;
	case SC_PIDFD_OPEN:
		e->pid = (__s32)a->a[0];
		e->request = (__u32)a->a[1];
		target = e->pid;
		break;
	case SC_TGKILL:
		e->pid = (__s32)a->a[0];
		e->tid = (__s32)a->a[1];
		e->sig = (__u32)a->a[2];
		target = e->tid;
		break;
	case SC_RT_SIGQUEUEINFO:
		e->pid = (__s32)a->a[0];
		if (variant == SV_TG) {
			e->aflags |= PA_THREAD_GROUP;
			e->tid = (__s32)a->a[1];
			e->sig = (__u32)a->a[2];
			target = e->tid;
		} else {
			e->sig = (__u32)a->a[1];
			target = e->pid;
		}
		break;
	case SC_PIDFD_SEND_SIGNAL:
		e->pidfd = (__s32)a->a[0];
		e->sig = (__u32)a->a[1];
		break;
	}

	struct task_struct *task;
	if (sc == SC_PIDFD_SEND_SIGNAL) {
		task = task_from_pidfd(e->pidfd);
		if (!task)
			e->aflags |= PA_BAD_PIDFD;
	} else {
		task = task_from_vpid(target);
	}
	if (task) {
		read_target(e, task);
		bpf_task_release(task);
	}
	if (signal_sc(sc) && (e->target.tflags & TF_TRACED)) {
		/* A signal within the trace: not an access to the outside. */
		end_escape(tid);
		return;
	}
	fill_header(&e->hdr, KIND_PROC_ACCESS);
	e->hdr.flags |= abi;
	x->size = sizeof(*e);
}

/*
 * The target of a successful ptrace change or process_vm_writev is traced
 * from now on: every thread of its process, and what they create.
 */
static __always_inline bool taint(struct target_info *t)
{
	struct task_struct *task = bpf_task_from_pid(t->tid);
	struct task_struct *thread;
	struct bpf_iter_task it;
	bool done = false;

	if (!task)
		return false;
	/* The same process, not a later one with its pid. */
	if (BPF_CORE_READ(task, group_leader, start_boottime) == t->start_time) {
		set_outside();
		mark_task(task, MARK_TAINTED);
		if (bpf_ksym_exists(bpf_iter_task_new)) {
			bpf_iter_task_new(&it, task, BPF_TASK_ITER_PROC_THREADS);
			while ((thread = bpf_iter_task_next(&it)))
				mark_task(thread, MARK_TAINTED);
			bpf_iter_task_destroy(&it);
		}
		done = true;
	}
	bpf_task_release(task);
	return done;
}

static __always_inline void exit_proc_access(struct proc_access_event *e, long ret)
{
	bool taints = e->syscall == SC_PTRACE || e->syscall == SC_PROCESS_VM_WRITEV;
	__u32 want = TF_FOUND;

	if (taints && ret >= 0 && (e->target.tflags & (TF_FOUND | TF_TRACED)) == want && taint(&e->target))
		e->aflags |= PA_TAINTED;
}

/* clone3(CLONE_INTO_CGROUP): remember the cgroup; a refusal is a record. */
static __always_inline void enter_clone3(__u32 tid, __u32 abi, struct sys_args *a)
{
	__u64 args[11] = {};

	if (a->a[1] < sizeof(args) || bpf_probe_read_user(args, sizeof(args), (void *)a->a[0]))
		return;
	if (!(args[0] & CLONE_INTO_CGROUP))
		return;
	struct escape_inflight *x = start_escape(tid, KIND_CGROUP_MOVE);
	if (!x)
		return;
	struct cgroup_move_event *e = &x->move;
	struct file *f = fd_file_of((int)args[10]);

	fill_header(&e->hdr, KIND_CGROUP_MOVE);
	e->hdr.flags |= abi;
	e->mflags = MF_ATTEMPT;
	if (f)
		e->to_id = BPF_CORE_READ(f, f_inode, i_ino);
	x->size = offsetof(struct cgroup_move_event, path);
}

/* Entry of an escape syscall of a traced task. */
static __always_inline void enter_escape(__u32 tid, long nr, bool compat, __u32 sc, __u32 abi, struct sys_args *a)
{
	__u32 variant = syscall_variant(nr, compat);

	if (sc == SC_UNKNOWN) {
		enter_clone3(tid, abi, a);
		return;
	}
	if (sc <= SC_FTRUNCATE)
		enter_file_op(tid, sc, abi, variant, a);
	else if (sc <= SC_PIVOT_ROOT)
		enter_mount(tid, sc, abi, variant, a);
	else if (sc <= SC_SETNS)
		enter_namespace(tid, sc, abi, a);
	else if (sc == SC_BPF)
		enter_bpf(tid, abi, a);
	else
		enter_proc_access(tid, sc, abi, variant, a);
}

/*
 * Exit of an escape syscall: complete the record, send it, drop the entry.
 * False if this thread has no entry (not an escape syscall it entered).
 */
static __always_inline bool exit_escape(__u32 tid, long ret)
{
	if (!escapes_live())
		return false;
	struct escape_inflight *x = bpf_map_lookup_elem(&escapes, &tid);
	if (!x)
		return false;
	struct event_header *hdr = &x->move.hdr; /* every member starts with it */
	__u32 size = x->size;

	switch (x->kind) {
	case KIND_CGROUP_MOVE:
		if (ret >= 0)
			goto out; /* the fork record has it */
		x->move.ret = ret;
		break;
	case KIND_PROC_ACCESS:
		x->access.ret = ret;
		exit_proc_access(&x->access, ret);
		break;
	case KIND_FILE_OP:
		x->file_op.ret = ret;
		break;
	case KIND_MOUNT:
		x->mount.ret = ret;
		break;
	case KIND_NAMESPACE:
		x->ns.ret = ret;
		break;
	case KIND_BPF:
		x->bpf.ret = ret;
		exit_bpf(&x->bpf, ret);
		break;
	default:
		goto out;
	}
	stamp(hdr);
	if (size > sizeof(x->file_op))
		size = sizeof(x->file_op);
	emit(hdr, size, x->kind);
out:
	end_escape(tid);
	return true;
}

/*
 * A task moved to another cgroup (after the move: task is in dst). Recorded
 * when the task is traced (before or now) or the mover is; a traced task
 * stays traced wherever it goes, and a task that lands in a traced cgroup is
 * marked so it stays traced when it leaves again.
 */
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(handle_cgroup_attach_task, struct cgroup *dst, const char *path, struct task_struct *task, bool threadgroup)
{
	struct task_mark *m = bpf_task_storage_get(&marks, task, 0, 0);
	bool mover = traced();
	bool now = m || traced_cgroup_of(task);
	__u64 to = BPF_CORE_READ(dst, kn, id);
	__u64 from = 0;
	__u32 mflags = 0;

	if (!m && !mover && !now)
		return 0;
	if (m) {
		from = m->cgroup_id;
		mflags |= MF_FROM_KNOWN;
		m->cgroup_id = to;
		set_outside();
	} else if (now) {
		mark_task(task, 0);
	}

	struct cgroup_move_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_matched(KIND_CGROUP_MOVE);
		count_lost_ringbuf(KIND_CGROUP_MOVE);
		return 0;
	}
	fill_header(&e->hdr, KIND_CGROUP_MOVE);
	e->ret = 0;
	e->pid = BPF_CORE_READ(task, tgid);
	e->tid = BPF_CORE_READ(task, pid);
	e->start_time = BPF_CORE_READ(task, group_leader, start_boottime);
	e->exec_seq = BPF_CORE_READ(task, self_exec_id);
	e->from_id = from;
	e->to_id = to;
	if (threadgroup)
		mflags |= MF_THREADGROUP;
	if (now)
		mflags |= MF_TRACED;
	long n = bpf_probe_read_kernel_str(e->path, PATH_BYTES, path);
	e->path_len = n > 0 ? n - 1 : 0;
	if (n == PATH_BYTES)
		mflags |= MF_PATH_TRUNCATED;
	e->mflags = mflags;
	stamp(&e->hdr);
	bpf_ringbuf_submit(e, wakeup_flags());
	return 0;
}
