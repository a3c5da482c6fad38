package loader

// The eBPF object and the Go types of the records are generated from
// bpf/agenttrace.bpf.c and bpf/agenttrace.h; `make generate` runs this with
// the pinned clang (Debian clang-19).
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror -I../../bpf/include -I../../bpf" -target amd64 -type event_header -type exec_event -type open_event -type file_info -type file_flag -type open_flag -type io_uring_event -type net_event -type sock_state_event -type dns_event -type sock_info -type sock_name -type net_flag -type dns_direction -type fork_event -type exit_event -type cgroup_move_event -type proc_access_event -type target_info -type file_op_event -type mount_event -type namespace_event -type bpf_event -type move_flag -type target_flag -type access_flag -type file_op_flag -type mount_flag -type bpf_flag -type member -type mark_flag -type kind_counters -type cgroup_event -type glob_pattern -type cgroup_state -type cgroup_op -type cgroup_flag -type limit -type record_kind -type syscall_id -type event_flag bpf ../../bpf/agenttrace.bpf.c
