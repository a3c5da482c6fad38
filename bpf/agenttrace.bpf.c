// SPDX-License-Identifier: GPL-2.0-only
/*
 * agenttrace kernel side: record what the tasks inside the target cgroups
 * (and all their descendants) exec, open, connect, send, bind, listen,
 * accept and resolve, and their forks and exits.
 *
 * One object, one translation unit: bpf2go builds an object from one file,
 * and every hook family shares the same maps (ring buffer, counters,
 * pairing entries), which one object keeps as one set. So this file only
 * includes the hook families, each in its own file (see DEVELOPERS.md).
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

#include "process.bpf.c"
#include "files.bpf.c"
#include "net.bpf.c"
#include "net_iouring.bpf.c"
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
const struct fork_event *unused_fork_event __attribute__((unused));
const struct exit_event *unused_exit_event __attribute__((unused));
const struct kind_counters *unused_kind_counters __attribute__((unused));
const struct cgroup_event *unused_cgroup_event __attribute__((unused));
const struct glob_pattern *unused_glob_pattern __attribute__((unused));
const struct cgroup_state *unused_cgroup_state __attribute__((unused));
const enum cgroup_op *unused_cgroup_op __attribute__((unused));
const enum cgroup_flag *unused_cgroup_flag __attribute__((unused));
