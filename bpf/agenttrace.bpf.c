// SPDX-License-Identifier: GPL-2.0-only
/*
 * agenttrace kernel side: record what the tasks inside the target cgroups
 * (and all their descendants, wherever they move) exec, open (also through
 * io_uring), connect, send, bind, listen, accept and resolve, their forks
 * and exits, and how they try to leave the trace or act through processes
 * outside it.
 *
 * One object, one translation unit: bpf2go builds an object from one file,
 * and every hook family shares the same maps (ring buffer, counters,
 * pairing entries), which one object keeps as one set. So this file only
 * includes the hook families, each in its own file (see DEVELOPERS.md).
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

#include "escape.bpf.c"
#include "process.bpf.c"
#include "files.bpf.c"
#include "net.bpf.c"
#include "net_iouring.bpf.c"
#include "iouring.bpf.c"
#include "dns.bpf.c"
#include "cgroups.bpf.c"
#include "syscalls.bpf.c"

/* Referenced so that clang emits their BTF for bpf2go -type. */
const enum record_kind *unused_record_kind __attribute__((unused));
const enum limit *unused_limit __attribute__((unused));
const enum syscall_id *unused_syscall_id __attribute__((unused));
const enum event_flag *unused_event_flag __attribute__((unused));
const struct exec_event *unused_exec_event __attribute__((unused));
const struct open_event *unused_open_event __attribute__((unused));
const struct net_event *unused_net_event __attribute__((unused));
const struct sock_state_event *unused_sock_state_event __attribute__((unused));
const struct dns_event *unused_dns_event __attribute__((unused));
const struct sock_info *unused_sock_info __attribute__((unused));
const enum net_flag *unused_net_flag __attribute__((unused));
const enum dns_direction *unused_dns_direction __attribute__((unused));
const struct file_info *unused_file_info __attribute__((unused));
const enum file_flag *unused_file_flag __attribute__((unused));
const enum open_flag *unused_open_flag __attribute__((unused));
const struct io_uring_event *unused_io_uring_event __attribute__((unused));
const struct fork_event *unused_fork_event __attribute__((unused));
const struct exit_event *unused_exit_event __attribute__((unused));
const struct kind_counters *unused_kind_counters __attribute__((unused));
const struct cgroup_event *unused_cgroup_event __attribute__((unused));
const struct glob_pattern *unused_glob_pattern __attribute__((unused));
const struct cgroup_state *unused_cgroup_state __attribute__((unused));
const enum cgroup_op *unused_cgroup_op __attribute__((unused));
const enum cgroup_flag *unused_cgroup_flag __attribute__((unused));
const struct cgroup_move_event *unused_cgroup_move_event __attribute__((unused));
const struct proc_access_event *unused_proc_access_event __attribute__((unused));
const struct target_info *unused_target_info __attribute__((unused));
const struct file_op_event *unused_file_op_event __attribute__((unused));
const struct mount_event *unused_mount_event __attribute__((unused));
const struct namespace_event *unused_namespace_event __attribute__((unused));
const struct bpf_event *unused_bpf_event __attribute__((unused));
const enum move_flag *unused_move_flag __attribute__((unused));
const enum target_flag *unused_target_flag __attribute__((unused));
const enum access_flag *unused_access_flag __attribute__((unused));
const enum file_op_flag *unused_file_op_flag __attribute__((unused));
const enum mount_flag *unused_mount_flag __attribute__((unused));
const enum bpf_flag *unused_bpf_flag __attribute__((unused));
const struct member *unused_member __attribute__((unused));
const enum mark_flag *unused_mark_flag __attribute__((unused));
