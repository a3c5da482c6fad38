// SPDX-License-Identifier: GPL-2.0-only
/*
 * Processes: exec (the syscall's arguments at entry, the committed image at
 * sched_process_exec, or the failure at exit), fork and exit.
 * sched_process_exec records what an exec committed to, from the new image,
 * so no racing thread can change it.
 */
#include "syscalls.h"

#define MAX_FAILED_ARGS 256

/*
 * The start time of the last process reported exited under each tgid.
 * Threads that exit together can each see signal->live at zero by the time
 * their tracepoint runs (every thread decrements it before); the first to
 * claim the process here reports its exit, once.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} exited SEC(".maps");

/*
 * Per-CPU scratch for exec records, which are too large for the stack or a
 * fixed-size reservation. value_size is set from user space to
 * sizeof(struct exec_event) + 2 * PATH_BYTES + max_arg_bytes + PATH_BYTES.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct exec_event) + 3 * PATH_BYTES + 32768);
	__uint(max_entries, 1); /* set to the number of possible CPUs */
} heap SEC(".maps");

static __always_inline void enter_exec(__u32 sc, __u32 abi, struct sys_args *args)
{
	const char *filename;

	struct inflight_rec *rec = start_inflight(KIND_EXEC);
	if (!rec)
		return;
	struct exec_enter *e = &rec->exec;

	rec->hdr_valid = 0; /* exec_enter overlays the cached header */
	e->syscall = sc;
	e->flags = 0;
	e->at_flags = 0;
	if (sc == SC_EXECVEAT) {
		e->dirfd = (__s32)args->a[0];
		filename = (const char *)args->a[1];
		e->argv = args->a[2];
		e->at_flags = (__u32)args->a[4];
	} else {
		e->dirfd = -100;
		filename = (const char *)args->a[0];
		e->argv = args->a[1];
	}
	e->flags |= abi;
	e->mm = (__u64)KREAD(struct task_struct, (struct task_struct *)bpf_get_current_task(), mm);
	e->filename_len = read_user_path(e->filename, filename, &e->flags);

	/* An empty argv is replaced by {""} in the kernel: remember it was empty. */
	__u64 argv0 = 0;
	if (e->argv && abi) { /* i386 and x32: 32-bit pointers */
		__u32 p32 = 0;
		bpf_probe_read_user(&p32, sizeof(p32), (void *)e->argv);
		argv0 = p32;
	} else if (e->argv) {
		bpf_probe_read_user(&argv0, sizeof(argv0), (void *)e->argv);
	}
	if (!argv0)
		e->flags |= EF_ARGV_EMPTY;
}

static __always_inline void *exec_scratch(void)
{
	__u32 cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&heap, &cpu);
}

#define EXEC_FILENAME(e) ((char *)(e) + sizeof(struct exec_event))
#define EXEC_EXE(e) (EXEC_FILENAME(e) + PATH_BYTES)
#define EXEC_ARGS(e) (EXEC_EXE(e) + PATH_BYTES)

/* Copy the syscall-entry part of an exec into the record. */
static __always_inline void exec_from_enter(struct exec_event *e, struct exec_enter *in)
{
	e->syscall = in->syscall;
	e->dirfd = in->dirfd;
	e->at_flags = in->at_flags;
	e->hdr.flags |= in->flags;
	e->filename_len = in->filename_len & PATH_MASK;
	bpf_probe_read_kernel(EXEC_FILENAME(e), e->filename_len, in->filename);
}

/*
 * A failed exec before the point of no return: argv is still in the
 * caller's memory, so read it through the pointer array. Each argument is
 * capped at PATH_BYTES here. What cannot be read is flagged, never taken for
 * the end of argv.
 */
static __always_inline void read_failed_argv(struct exec_event *e, __u64 argv, bool ptr32)
{
	char *args = EXEC_ARGS(e);
	__u32 off = 0;

	for (__u32 i = 0; argv && i < MAX_FAILED_ARGS; i++) {
		__u64 p = 0;
		if (ptr32) {
			__u32 p32 = 0;
			if (bpf_probe_read_user(&p32, sizeof(p32), (void *)(argv + i * 4))) {
				e->hdr.flags |= EF_ARGS_FAULT;
				break;
			}
			p = p32;
		} else if (bpf_probe_read_user(&p, sizeof(p), (void *)(argv + i * 8))) {
			e->hdr.flags |= EF_ARGS_FAULT;
			break;
		}
		if (!p)
			break;
		if (off >= max_arg_bytes) {
			e->hdr.flags |= EF_ARGS_TRUNCATED;
			break;
		}
		long n = bpf_probe_read_user_str(args + off, PATH_BYTES, (void *)p);
		if (n <= 0) {
			e->hdr.flags |= EF_ARGS_FAULT;
			break;
		}
		e->argc++;
		off += n;
		if (n == PATH_BYTES) {
			char next = 0;
			/* Cut at PATH_BYTES: record it as the last, partial argument. */
			if (bpf_probe_read_user(&next, 1, (void *)(p + PATH_BYTES - 1)) == 0 && next) {
				e->hdr.flags |= EF_ARGS_TRUNCATED;
				break;
			}
		}
	}
	/* The loop's bound, not the caller's NULL, ended argv: say it is cut. */
	if (e->argc == MAX_FAILED_ARGS && !(e->hdr.flags & (EF_ARGS_TRUNCATED | EF_ARGS_FAULT))) {
		__u64 p = 0;
		long err;
		if (ptr32) {
			__u32 p32 = 0;
			err = bpf_probe_read_user(&p32, sizeof(p32), (void *)(argv + MAX_FAILED_ARGS * 4));
			p = p32;
		} else {
			err = bpf_probe_read_user(&p, sizeof(p), (void *)(argv + MAX_FAILED_ARGS * 8));
		}
		if (err)
			e->hdr.flags |= EF_ARGS_FAULT;
		else if (p)
			e->hdr.flags |= EF_ARGS_TRUNCATED;
	}
	if (off > max_arg_bytes) {
		off = max_arg_bytes;
		e->hdr.flags |= EF_ARGS_TRUNCATED;
	}
	e->args_len = off;
	e->args_size = off;
}

/*
 * The file the kernel executed (bprm->file: for a #! script, the
 * interpreter), resolved like an opened file: fileless for a memfd, deleted
 * for an unlinked one, its change time for the image's hash in user space.
 */
static __always_inline void read_exe(struct exec_event *e, struct file *file)
{
	struct path_scratch *s = path_scratch();

	if (!s || !file)
		return;
	struct task_root none = {};
	resolve_file(s, &e->exe, file, &none, EXEC_EXE(e));
	struct inode *inode = KREAD(struct file, file, f_inode);
	if (KREAD(struct inode, inode, i_writecount.counter) < 0)
		e->exe.flags |= FF_WRITE_DENIED;
	if (e->exe.flags & FF_PATH_TRUNCATED)
		e->hdr.flags |= EF_EXE_TRUNCATED;
}

/*
 * A failed exec, at the syscall's exit (a successful one ended its entry at
 * sched_process_exec). ret is the syscall's own result, nothing else.
 */
static __always_inline void exit_exec(struct inflight_rec *rec, long ret)
{
	struct exec_event *e = exec_scratch();
	if (!e)
		goto out;

	/* A file name not readable at entry stays unreadable (see struct inflight_rec). */
	struct exec_enter *in = &rec->exec;

	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, KIND_EXEC);
	exec_from_enter(e, in);
	e->ret = ret;

	struct mm_struct *mm = KREAD(struct task_struct, (struct task_struct *)bpf_get_current_task(), mm);
	if ((__u64)mm != in->mm) {
		/*
		 * The caller's memory is gone: what is at argv's address now belongs
		 * to the new image. Not read: the record says argv is unknown, and
		 * names the file the kernel was executing. A failure here is past
		 * the point of no return (a fatal signal while the new image was
		 * loaded, an ELF file the kernel rejects only then): proc is the
		 * process as the kernel left it, about to be killed. (A success
		 * comes here only when sched_process_exec no longer saw the task
		 * traced.)
		 */
		e->hdr.flags |= EF_ARGS_FAULT;
		if (ret < 0)
			e->hdr.flags |= EF_PAST_NO_RETURN;
		read_exe(e, mm ? KREAD(struct mm_struct, mm, exe_file) : NULL);
	} else {
		read_failed_argv(e, in->argv, in->flags & (EF_COMPAT | EF_X32));
	}
	stamp(&e->hdr);
	__u32 len = e->args_len;
	if (len > max_arg_bytes)
		len = max_arg_bytes;
	emit(e, sizeof(*e) + 2 * PATH_BYTES + len, KIND_EXEC);
out:
	end_inflight(rec);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_sched_process_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	if (!traced())
		return 0;

	struct exec_event *e = exec_scratch();
	if (!e)
		return 0;

	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, KIND_EXEC);

	/* The thread that called exec: it keeps its entry, whatever its tid is now. */
	struct inflight_rec *rec = current_inflight();
	if (rec && rec->kind == KIND_EXEC) {
		struct exec_enter *in = &rec->exec;
		/*
		 * Not readable at entry, and the caller's memory is gone: take the
		 * kernel's copy, which is the name as passed when it is resolved
		 * from the cwd (execveat from a dirfd gets "/dev/fd/N/...").
		 */
		if ((in->flags & EF_PATH_FAULT) && in->dirfd == -100) {
			long n = bpf_probe_read_kernel_str(in->filename, PATH_BYTES, BPF_CORE_READ(bprm, filename));
			if (n > 0) {
				in->flags &= ~EF_PATH_FAULT;
				in->filename_len = n - 1;
			}
		}
		exec_from_enter(e, in);
		end_inflight(rec);
	} else {
		e->hdr.flags |= EF_NO_ENTER;
	}
	read_exe(e, BPF_CORE_READ(bprm, file));

	/* argv as the new program sees it: its own stack, after the exec committed. */
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	__u64 arg_start = BPF_CORE_READ(mm, arg_start);
	__u64 arg_end = BPF_CORE_READ(mm, arg_end);
	__u64 size = arg_end - arg_start;
	__u32 len = size;

	e->argc = BPF_CORE_READ(bprm, argc);
	e->args_size = size;
	if (size > max_arg_bytes) {
		len = max_arg_bytes;
		e->hdr.flags |= EF_ARGS_TRUNCATED;
	}
	if (len > max_arg_bytes)
		len = max_arg_bytes;
	if (bpf_probe_read_user(EXEC_ARGS(e), len, (void *)arg_start)) {
		e->hdr.flags |= EF_ARGS_FAULT;
		len = 0;
	}
	e->args_len = len;
	stamp(&e->hdr);
	emit(e, sizeof(*e) + 2 * PATH_BYTES + len, KIND_EXEC);

	/*
	 * The session's first process is traced by its cgroup only: from its
	 * first exec on it is marked too, so leaving the cgroup does not leave
	 * the trace.
	 */
	mark_task(bpf_get_current_task_btf(), 0);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
	if (!traced())
		return 0;
	/*
	 * Every task a traced one creates is traced for life, wherever it
	 * goes (clone3 CLONE_INTO_CGROUP, a write to cgroup.procs); what a
	 * process taken over from outside creates stays marked as taken over.
	 */
	struct task_mark *pm = bpf_task_storage_get(&marks, bpf_get_current_task_btf(), 0, 0);
	mark_task(child, pm ? pm->mflags & MARK_TAINTED : 0);
	__u64 child_cgroup = task_cgroup_id(child);
	if (child_cgroup != bpf_get_current_cgroup_id())
		set_outside();

	/* Threads share their process's identity; only new processes count. */
	__u32 child_pid = BPF_CORE_READ(child, pid);
	if (child_pid != BPF_CORE_READ(child, tgid))
		return 0;

	struct fork_event e = {};
	fill_header(&e.hdr, KIND_FORK);
	e.child_pid = child_pid;
	e.child_start_time = BPF_CORE_READ(child, start_boottime);
	if (child_cgroup != e.hdr.cgroup_id)
		e.child_cgroup_id = child_cgroup;

	struct parent_id p = {
		.pid = e.hdr.pid,
		.start_time = e.hdr.start_time,
		.exec_seq = e.hdr.exec_seq,
	};
	/* When full, later records fall back to the real parent (see fill_parent). */
	bpf_map_update_elem(&parents, &child_pid, &p, BPF_ANY);
	stamp(&e.hdr);
	emit(&e, sizeof(e), KIND_FORK);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_sched_process_exit, struct task_struct *task)
{
	/*
	 * Before the filter: a thread whose process left the targets must not
	 * leave an escape entry behind (its inflight entry, task storage, goes
	 * with it).
	 */
	if (escapes_live())
		end_escape(BPF_CORE_READ(task, pid));

	if (!traced())
		return 0;

	/* Only the last thread of the process reports its exit. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;

	__u32 tgid = BPF_CORE_READ(task, tgid);
	__u64 start = BPF_CORE_READ(task, group_leader, start_boottime);
	if (bpf_map_update_elem(&exited, &tgid, &start, BPF_NOEXIST)) {
		__u64 *seen = bpf_map_lookup_elem(&exited, &tgid);
		if (seen && *seen == start)
			return 0; /* another thread of this process reported it */
		/* An earlier process with this pid: claim it anew. */
		bpf_map_delete_elem(&exited, &tgid);
		if (bpf_map_update_elem(&exited, &tgid, &start, BPF_NOEXIST))
			return 0;
	}

	struct exit_event e = {};
	fill_header(&e.hdr, KIND_EXIT);
	e.exit_code = BPF_CORE_READ(task, exit_code);
	if (BPF_CORE_READ(task, signal, flags) & 0x00000004 /* SIGNAL_GROUP_EXIT */)
		e.exit_code = BPF_CORE_READ(task, signal, group_exit_code);
	stamp(&e.hdr);
	emit(&e, sizeof(e), KIND_EXIT);

	bpf_map_delete_elem(&parents, &tgid);
	bpf_map_delete_elem(&members, &tgid);
	return 0;
}

