// SPDX-License-Identifier: GPL-2.0-only
/*
 * Files: open, creat, openat and openat2, paired at sys_enter/sys_exit.
 */
#include "syscalls.h"

#define O_CREAT 0100
#define O_WRONLY 01
#define O_TRUNC 01000

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

static __always_inline void enter_open(__u32 tid, __u32 sc, __u32 abi, struct sys_args *args)
{
	const char *path;

	struct inflight_rec *rec = start_inflight(tid, KIND_OPEN);
	if (!rec)
		return;
	struct open_event *e = &rec->open;

	fill_header_cached(rec, &e->hdr, KIND_OPEN);
	e->syscall = sc;
	e->dirfd = -100; /* AT_FDCWD: open and creat resolve from the cwd */
	e->resolve = 0;
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
	default: /* SC_OPENAT2 */
		e->dirfd = (__s32)args->a[0];
		path = (const char *)args->a[1];
		e->flags = 0;
		e->mode = 0;
		rec->uptr2 = args->a[2];
		rec->how_fault = !read_open_how(e, rec->uptr2);
		break;
	}
	e->hdr.flags |= abi;
	rec->uptr = (__u64)path;
	e->path_len = read_user_path(e->path, path, &e->hdr.flags);
}

/* At exit, read again what could not be read at entry. */
static __always_inline void retry_open(struct inflight_rec *rec)
{
	struct open_event *e = &rec->open;

	if (e->hdr.flags & EF_PATH_FAULT) {
		e->hdr.flags &= ~EF_PATH_FAULT;
		e->path_len = read_user_path(e->path, (const char *)rec->uptr, &e->hdr.flags);
	}
	if (rec->how_fault)
		read_open_how(e, rec->uptr2);
}

static __always_inline void exit_open(struct inflight_rec *rec, long ret)
{
	struct open_event *e = &rec->open;

	retry_open(rec);
	e->ret = ret;
	stamp(&e->hdr);
	__u32 n = e->path_len + 1; /* with the NUL */
	if (n > PATH_BYTES)
		n = PATH_BYTES;
	emit(e, offsetof(struct open_event, path) + n, KIND_OPEN);
}
