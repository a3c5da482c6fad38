package record

import (
	"testing"

	"github.com/agenttrace/agenttrace/internal/loader"
)

// The escape records' cases of TestAppendEventGolden (and, through their
// golden files, of TestDecodeRoundTrip).
func init() {
	recordCases = append(recordCases, escapeCases...)
}

func moveEv(m CgroupMove) Event {
	e := ev(KindCgroupMove, shell, 0)
	e.CgroupMove = m
	return e
}

func accessEv(flags uint32, p ProcAccess) Event {
	e := ev(KindProcAccess, agent, flags)
	e.ProcAccess = p
	return e
}

func fileOpEv(f FileOp) Event {
	e := ev(KindFileOp, agent, 0)
	e.FileOp = f
	return e
}

func mountEv(flags uint32, m Mount) Event {
	e := ev(KindMount, agent, flags)
	e.Mount = m
	return e
}

var victim = AccessTarget{Found: true, Pid: 300, Tid: 300, ExecID: ExecID{300, 700_000_000_000, 3}, Exe: "/usr/bin/bash", Comm: "bash"}

var escapeCases = []struct {
	name   string
	events []Event
	want   []string
}{
	{
		name: "fork_into_cgroup",
		events: []Event{func() Event {
			e := forkEv(shell, child)
			e.Fork.ChildCgroupID = 4343
			return e
		}()},
		want: []string{`"fork":{"child_pid":101,"child_exec_id":"101-900500000000-5","child_cgroup_id":4343,"child_cgroup":"/agenttrace/run-1/caf\\xe9","child_cgroup_b64":"L2FnZW50dHJhY2UvcnVuLTEvY2Fm6Q=="}}`},
	},
	{
		name: "cgroup_move_procs",
		events: []Event{moveEv(CgroupMove{Pid: 101, Tid: 101, ExecID: ExecID{101, 900_500_000_000, 6}, Threadgroup: true,
			FromKnown: true, FromCgroupID: cgroupID, ToCgroupID: 5555, ToCgroup: "/outside", Traced: true})},
		want: []string{`"cgroup_move":{"pid":101,"exec_id":"101-900500000000-6","threadgroup":true,"from_cgroup_id":4242,"from_cgroup":"/agenttrace/run-1","to_cgroup_id":5555,"to_cgroup":"/outside","traced":true}}`},
	},
	{
		name: "cgroup_move_thread_untraced_from_unknown",
		events: []Event{moveEv(CgroupMove{Pid: 300, Tid: 301, ExecID: ExecID{300, 700_000_000_000, 3}, ToCgroupID: 6666,
			ToCgroup: "/very/deep", ToCgroupTruncated: true})},
		want: []string{`"cgroup_move":{"pid":300,"tid":301,"exec_id":"300-700000000000-3","threadgroup":false,"to_cgroup_id":6666,"to_cgroup":"/very/deep","to_cgroup_truncated":true,"traced":false}}`},
	},
	{
		name:   "cgroup_move_clone3_refused",
		events: []Event{moveEv(CgroupMove{Attempt: true, ToCgroupID: cgroupID, Ret: -13})},
		want:   []string{`"cgroup_move":{"syscall":"clone3","to_cgroup_id":4242,"to_cgroup":"/agenttrace/run-1","ret":-13,"errno":"EACCES"}}`},
	},
	{
		name: "proc_access_ptrace_attach_tainted",
		events: []Event{accessEv(0, ProcAccess{Syscall: "ptrace", Request: 16, Pid: 300, Target: victim, Tainted: true}),
			accessEv(0, ProcAccess{Syscall: "ptrace", Request: 5, Pid: 300, Addr: 0x7ffd0000, Data: 0x68732f6e69622f,
				Target: func() AccessTarget { t := victim; t.Traced = true; return t }()})},
		want: []string{
			`"proc_access":{"syscall":"ptrace","request":"PTRACE_ATTACH","pid":300,"addr":0,"data":0,"target":{"pid":300,"exec_id":"300-700000000000-3","exe":"/usr/bin/bash","comm":"bash","traced":false},"tainted":true,"ret":0}}`,
			`"proc_access":{"syscall":"ptrace","request":"PTRACE_POKEDATA","pid":300,"addr":2147287040,"data":29400045130965551,"target":{"pid":300,"exec_id":"300-700000000000-3","exe":"/usr/bin/bash","comm":"bash","traced":true},"ret":0}}`,
		},
	},
	{
		name: "proc_access_signals",
		events: []Event{
			accessEv(0, ProcAccess{Syscall: "kill", Pid: -1, Signal: 9, Ret: -1}),
			accessEv(loader.FlagCompat, ProcAccess{Syscall: "rt_tgsigqueueinfo", Pid: 300, Tid: 302, Signal: 15,
				Target: func() AccessTarget { t := victim; t.Tid = 302; return t }()}),
			accessEv(0, ProcAccess{Syscall: "pidfd_send_signal", Pidfd: 7, Signal: 0, Ret: -9}),
			accessEv(0, ProcAccess{Syscall: "pidfd_open", Pid: 2, Flags: 0x800, Target: AccessTarget{Found: true, Pid: 2, Tid: 2,
				ExecID: ExecID{2, 140_873_701, 0}, NoExe: true, Comm: "kthreadd"}, Ret: 5}),
		},
		want: []string{
			`"proc_access":{"syscall":"kill","pid":-1,"signal":"SIGKILL","signal_num":9,"ret":-1,"errno":"EPERM"}}`,
			`"abi":"i386"},"proc_access":{"syscall":"rt_tgsigqueueinfo","pid":300,"tid":302,"signal":"SIGTERM","signal_num":15,"target":{"pid":300,"tid":302,`,
			`"proc_access":{"syscall":"pidfd_send_signal","pidfd":7,"signal_num":0,"ret":-9,"errno":"EBADF"}}`,
			`"proc_access":{"syscall":"pidfd_open","pid":2,"flags":["PIDFD_NONBLOCK"],"target":{"pid":2,"exec_id":"2-140873701-0","comm":"kthreadd","traced":false},"ret":5}}`,
		},
	},
	{
		name: "file_op_renameat2_relative",
		events: []Event{fileOpEv(FileOp{Syscall: "renameat2", Dirfd: 3, Path: Name{Path: "a"}, Dir: Dir{Present: true, Path: "/work"},
			NewDirfd: -100, NewPath: Name{Path: "b\xff"}, NewDir: Dir{Present: true, Path: "/home/u", Truncated: true}, Flags: 1 | 8})},
		want: []string{`"file_op":{"syscall":"renameat2","dirfd":3,"path":"a","dir":{"path":"/work"},"new_dirfd":-100,"new_path":"b\\xff","new_path_b64":"Yv8=","new_dir":{"path":"/home/u","path_truncated":true},"flags":["RENAME_NOREPLACE","0x8"],"ret":0}}`},
	},
	{
		name: "file_op_fd_and_faults",
		events: []Event{
			fileOpEv(FileOp{Syscall: "fchown", Fd: 4, File: File{Present: true, Path: "/tmp/x", Dev: 254<<20 | 1, Ino: 99, Mode: 0o100600, MntID: 27, Deleted: true},
				UID: 0, GID: 4294967295}),
			fileOpEv(FileOp{Syscall: "unlink", Path: Name{Unreadable: true}, Ret: -14}),
			fileOpEv(FileOp{Syscall: "truncate", Path: Name{Path: "/long", Truncated: true}, Length: -1, Ret: -22}),
			fileOpEv(FileOp{Syscall: "rename", Path: Name{Path: "/home/u/.ssh/id_ed25519"}, NewPath: Name{Path: "/tmp/k"}}),
		},
		want: []string{
			`"file_op":{"syscall":"fchown","uid":0,"gid":4294967295,"fd":4,"file":{"path":"/tmp/x","dev":"254:1","ino":99,"mode":"0100600","type":"regular","mnt_id":27,"deleted":true},"ret":0}}`,
			`"file_op":{"syscall":"unlink","path_unreadable":true,"ret":-14,"errno":"EFAULT"}}`,
			`"file_op":{"syscall":"truncate","path":"/long","path_truncated":true,"length":-1,"ret":-22,"errno":"EINVAL"}}`,
			`"file_op":{"syscall":"rename","path":"/home/u/.ssh/id_ed25519","new_path":"/tmp/k","ret":0}}`,
		},
	},
	{
		name: "mount_calls",
		events: []Event{
			mountEv(0, Mount{Syscall: "mount", HasSource: true, HasTarget: true, HasFstype: true, Source: Name{Path: "/dev/sda1"},
				Target: Name{Path: "/mnt"}, Fstype: Name{Path: "ext4"}, Flags: 0xc0ed0000 | 1 | 4096}),
			mountEv(loader.FlagCompat, Mount{Syscall: "umount", HasTarget: true, Target: Name{Path: "/mnt"}}),
			mountEv(0, Mount{Syscall: "fsconfig", Fd: 3, Cmd: 1, HasFstype: true, Fstype: Name{Path: "password"}, HasSource: true, Source: Name{Path: "hunter2"}}),
			mountEv(0, Mount{Syscall: "mount_setattr", Dirfd: -100, HasTarget: true, Target: Name{Path: "/"}, Flags: 0x8000, AttrUnreadable: true, Ret: -14}),
			mountEv(0, Mount{Syscall: "pivot_root", HasTarget: true, Target: Name{Path: "/new"}, HasSource: true, Source: Name{Unreadable: true}, Ret: -14}),
		},
		want: []string{
			`"mount":{"syscall":"mount","source":"/dev/sda1","target":"/mnt","fstype":"ext4","flags":["MS_MGC_VAL","MS_RDONLY","MS_BIND"],"ret":0}}`,
			`"mount":{"syscall":"umount","target":"/mnt","ret":0}}`,
			`"mount":{"syscall":"fsconfig","fd":3,"cmd":"FSCONFIG_SET_STRING","key":"password","value_redacted":true,"ret":0}}`,
			`"mount":{"syscall":"mount_setattr","dirfd":-100,"target":"/","flags":["AT_RECURSIVE"],"attr_unreadable":true,"ret":-14,"errno":"EFAULT"}}`,
			`"mount":{"syscall":"pivot_root","put_old_unreadable":true,"new_root":"/new","ret":-14,"errno":"EFAULT"}}`,
		},
	},
	{
		name: "namespace_and_bpf",
		events: []Event{
			func() Event {
				e := ev(KindNamespace, agent, loader.FlagCompat)
				e.Namespace = Namespace{Syscall: "unshare", Flags: 0x20000 | 0x10000000 | 1}
				return e
			}(),
			func() Event {
				e := ev(KindNamespace, agent, 0)
				e.Namespace = Namespace{Syscall: "setns", Fd: 5, Ret: -1}
				return e
			}(),
			func() Event {
				e := ev(KindBPF, agent, 0)
				e.BPF = BPF{Cmd: 2, HasMap: true, MapID: 77, Ret: -1}
				return e
			}(),
			func() Event {
				e := ev(KindBPF, agent, 0)
				e.BPF = BPF{Cmd: 99, Ret: -22}
				return e
			}(),
		},
		want: []string{
			`"namespace":{"syscall":"unshare","flags":["CLONE_NEWNS","CLONE_NEWUSER","0x1"],"ret":0}}`,
			`"namespace":{"syscall":"setns","fd":5,"flags":[],"ret":-1,"errno":"EPERM"}}`,
			`"bpf":{"cmd":"BPF_MAP_UPDATE_ELEM","map_id":77,"ret":-1,"errno":"EPERM"}}`,
			`"bpf":{"cmd_num":99,"ret":-22,"errno":"EINVAL"}}`,
		},
	},
}

// TestEscapeAllocs: encoding the escape records does not allocate.
func TestEscapeAllocs(t *testing.T) {
	enc := newTestEncoder()
	b := make([]byte, 0, 1<<16)
	var prev [32]byte
	for _, tc := range escapeCases {
		for i := range tc.events {
			ev := tc.events[i]
			if ev.Kind == KindCgroupMove {
				continue // it teaches the resolver, which test maps do not learn
			}
			if allocs := testing.AllocsPerRun(100, func() { b = enc.AppendEvent(b[:0], 1, &prev, &ev) }); allocs != 0 {
				t.Errorf("%s: AppendEvent of a %s record: %v allocs, want 0", tc.name, KindName(ev.Kind), allocs)
			}
		}
	}
}

// TestFileOpCredentialTag: a file_op of a sensitive path, as passed or as
// its new name, is tagged credential_access.
func TestFileOpCredentialTag(t *testing.T) {
	enc := newTestEncoder()
	enc.SetSensitive(DefaultSensitive())
	for _, tc := range []struct {
		op   FileOp
		want bool
	}{
		{FileOp{Syscall: "rename", Path: Name{Path: "/home/u/.ssh/id_ed25519"}, NewPath: Name{Path: "/tmp/k"}}, true},
		{FileOp{Syscall: "link", Path: Name{Path: "/tmp/k"}, NewPath: Name{Path: "/root/.aws/credentials"}}, true},
		{FileOp{Syscall: "unlink", Path: Name{Path: "/tmp/k"}}, false},
	} {
		e := fileOpEv(tc.op)
		r, err := Decode(enc.AppendEvent(nil, 1, &[32]byte{}, &e))
		if err != nil || r.HasTag(TagCredentialAccess) != tc.want {
			t.Errorf("%+v: tagged %v (%v), want %v", tc.op, r != nil && r.HasTag(TagCredentialAccess), err, tc.want)
		}
	}
}
