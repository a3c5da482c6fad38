package record

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/schema"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the encoder's output")

// Fixed values of the test encoder: ktime 1_000_000_000_000 is
// 2025-01-02T03:04:05Z.
const (
	testHost   = "build-host-1"
	testBootID = "b78835f2-8fc3-4e6c-826a-884af615cd65"
	testOffset = 1_735_787_045_000_000_000 - 1_000_000_000_000
	cgroupID   = 4242
)

type mapCgroups map[uint64]string

func (m mapCgroups) Path(id uint64) (string, bool) {
	p, ok := m[id]
	return p, ok
}

func newTestEncoder() *Encoder {
	return NewEncoder(testHost, testBootID, testOffset, mapCgroups{
		cgroupID: "/agenttrace/run-1",
		4343:     "/agenttrace/run-1/caf\xe9",
	})
}

// proc describes the process of an event.
type proc struct {
	pid, tid   uint32
	start, seq uint64
	comm       string
}

var (
	shell = proc{pid: 100, tid: 100, start: 900_000_000_000, seq: 5, comm: "sh"}
	child = proc{pid: 101, tid: 101, start: 900_500_000_000, seq: 5, comm: "sh"}
	agent = proc{pid: 200, tid: 203, start: 910_000_000_000, seq: 7, comm: "python3"}
)

// ev is an event of p as the decoder delivers it; flags are the kernel's
// header flags (loader.Flag*), given to the body by the case's helper.
func ev(kind uint32, p proc, flags uint32) Event {
	e := Event{
		Kind: kind, Ktime: 1_000_123_456_789, Kseq: 17, CPU: 3,
		Proc: Proc{
			Pid: p.pid, Tid: p.tid, Ppid: 99, Uid: 1000, Gid: 1001, Euid: 1002, Egid: 1003, Auid: 4294967295,
			Comm: p.comm, CgroupID: cgroupID,
			ExecID: ExecID{p.pid, p.start, p.seq}, ParentExecID: ExecID{99, 800_000_000_000, 4},
		},
	}
	switch {
	case flags&loader.FlagCompat != 0:
		e.Proc.ABI = "i386"
	case flags&loader.FlagX32 != 0:
		e.Proc.ABI = "x32"
	}
	return e
}

// childEv is an event of child, created by shell's fork.
func childEv(kind uint32) Event {
	e := ev(kind, child, 0)
	e.Proc.Ppid, e.Proc.ParentExecID = shell.pid, ExecID{shell.pid, shell.start, shell.seq}
	return e
}

func execEv(p proc, flags uint32, x Exec) Event {
	e := ev(KindExec, p, flags)
	x.NoEnter = flags&loader.FlagNoEnter != 0
	x.FilenameTruncated = flags&loader.FlagPathTruncated != 0
	x.FilenameUnreadable = flags&loader.FlagPathFault != 0
	x.ExeTruncated = flags&loader.FlagExeTruncated != 0
	x.ArgsTruncated = flags&loader.FlagArgsTruncated != 0
	x.ArgsUnreadable = flags&loader.FlagArgsFault != 0
	x.ArgvEmpty = flags&loader.FlagArgvEmpty != 0
	e.Exec = x
	return e
}

func openEv(flags uint32, o Open) Event {
	e := ev(KindOpen, agent, flags)
	o.PathTruncated = flags&loader.FlagPathTruncated != 0
	o.PathUnreadable = flags&loader.FlagPathFault != 0
	e.Open = o
	return e
}

func connectEv(flags uint32, c Connect) Event {
	e := ev(KindConnect, agent, flags)
	c.AddrUnreadable = flags&loader.FlagAddrFault != 0
	e.Connect = c
	return e
}

func exitEv(p proc, status uint32) Event {
	e := ev(KindExit, p, 0)
	e.Exit = Exit{Status: status}
	return e
}

func forkEv(parent, c proc) Event {
	e := ev(KindFork, parent, 0)
	e.Fork = Fork{ChildPid: c.pid, ChildExecID: ExecID{c.pid, c.start, parent.seq}}
	return e
}

// Socket addresses as the caller passes them.
func sockaddr4(ip [4]byte, port uint16) []byte {
	b := make([]byte, unix.SizeofSockaddrInet4)
	binary.NativeEndian.PutUint16(b, unix.AF_INET)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[4:], ip[:])
	return b
}

func sockaddr6(ip [16]byte, port uint16, flow, scope uint32, size int) []byte {
	b := make([]byte, unix.SizeofSockaddrInet6)
	binary.NativeEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], port)
	binary.BigEndian.PutUint32(b[4:], flow)
	copy(b[8:], ip[:])
	binary.NativeEndian.PutUint32(b[24:], scope)
	return b[:size]
}

func sockaddrFamily(family uint16, rest string) []byte {
	b := binary.NativeEndian.AppendUint16(nil, family)
	return append(b, rest...)
}

var (
	ip6Doc    = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	ip6Mapped = [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 1}
	ip6LL     = [16]byte{0xfe, 0x80, 15: 1}
)

const (
	oRdonly    = 0
	oWronly    = 1
	oRdwr      = 2
	oCreat     = 0o100
	oTrunc     = 0o1000
	oCloexec   = 0o2000000
	oSync      = 0o4010000
	oTmpfile   = 0o20200000
	oDirectory = 0o200000
	oLargefile = 0o100000
)

// recordCases: each case is a sequence of events given to one encoder (the
// encoder remembers executables) and its golden file holds one line per
// event. want lists exact fragments written by hand from the kernel's
// record, checked independently of the golden file: each must appear in the
// output after the previous one.
var recordCases = []struct {
	name   string
	events []Event
	want   []string
}{
	{
		name: "exec_success",
		events: []Event{execEv(shell, 0, Exec{
			Ret: 0, Syscall: "execve", Dirfd: -100,
			Filename: "/usr/bin/sh", Exe: "/usr/bin/dash",
			ExeFile: ExeFile{Ino: 247072, Dev: 254<<20 | 1, Mode: 0o100755, UID: 0, GID: 0, Ctime: 1735786000123456789}, Argc: 3, Args: "sh\x00-c\x00cat /etc/hostname\x00", ArgsSize: 24,
		})},
		want: []string{
			`{"v":1,"seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","time":"2025-01-02T03:04:05.123456789Z","ktime":1000123456789,"host":"build-host-1","boot_id":"b78835f2-8fc3-4e6c-826a-884af615cd65","type":"exec","cpu":3,"kseq":17,`,
			`"proc":{"pid":100,"tid":100,"ppid":99,"uid":1000,"gid":1001,"euid":1002,"egid":1003,"auid":4294967295,"comm":"sh","exe":"/usr/bin/dash","cgroup_id":4242,"cgroup":"/agenttrace/run-1","exec_id":"100-900000000000-5","parent_exec_id":"99-800000000000-4"}`,
			`"exec":{"syscall":"execve","filename":"/usr/bin/sh","exe":"/usr/bin/dash","exe_file":{"ino":247072,"dev":"254:1","mode":"0100755","uid":0,"gid":0,"ctime":1735786000123456789},"argv":["sh","-c","cat /etc/hostname"],"argc":3,"ret":0}}`,
		},
	},
	{
		name: "exec_success_truncated",
		events: []Event{execEv(shell, loader.FlagArgsTruncated|loader.FlagExeTruncated|loader.FlagPathTruncated, Exec{
			Ret: 0, Syscall: "execve", Dirfd: -100,
			Filename: "/very/long/name", Exe: "/deep/bin/tool",
			ExeFile: ExeFile{Ino: 12, Dev: 8<<20 | 3, Mode: 0o104755, UID: 0, GID: 50, Deleted: true}, Argc: 5000, Args: "tool\x00--flag\x00partial-argu", ArgsSize: 1_048_576,
		})},
		want: []string{
			`"exec":{"syscall":"execve","filename":"/very/long/name","path_truncated":true,"exe":"/deep/bin/tool","exe_truncated":true,"exe_file":{"ino":12,"dev":"8:3","mode":"0104755","uid":0,"gid":50,"ctime":0,"deleted":true},"argv":["tool","--flag","partial-argu"],"argc":5000,"argv_truncated":true,"argv_size":1048576,"ret":0}}`,
		},
	},
	{
		name: "exec_failed",
		events: []Event{execEv(agent, 0, Exec{
			Ret: -2, Syscall: "execve", Dirfd: -100,
			Filename: "/nonexistent/bin\xff",
			Argc:     3, Args: "arg\xff\x00a\nb\x00\u202e\x00", ArgsSize: 13,
		})},
		want: []string{
			`"comm":"python3","cgroup_id":4242,`, // no exe: the encoder has not seen this process exec
			`"exec":{"syscall":"execve","filename":"/nonexistent/bin\\xff","filename_b64":"L25vbmV4aXN0ZW50L2Jpbv8=","argv":["arg\\xff","a\nb","\u202e"],"argv_b64":["YXJn/w==","YQpi","4oCu"],"argc":3,"ret":-2,"errno":"ENOENT"}}`,
		},
	},
	{
		name: "exec_failed_truncated",
		events: []Event{execEv(agent, loader.FlagArgsTruncated, Exec{
			Ret: -7, Syscall: "execve", Dirfd: -100,
			Filename: "/usr/bin/env",
			Argc:     2, Args: "env\x00xxxxxxxx", ArgsSize: 12,
		})},
		want: []string{
			`"exec":{"syscall":"execve","filename":"/usr/bin/env","argv":["env","xxxxxxxx"],"argc":2,"argv_truncated":true,"argv_size":12,"ret":-7,"errno":"E2BIG"}}`,
		},
	},
	{
		name: "exec_execveat_empty_argv",
		events: []Event{execEv(agent, loader.FlagArgvEmpty, Exec{
			Ret: 0, Syscall: "execveat", Dirfd: 11, AtFlags: unix.AT_EMPTY_PATH | 0x8000,
			Filename: "", Exe: "/usr/bin/true",
			ExeFile: ExeFile{Ino: 247849, Dev: 254 << 20, Mode: 0o100755}, Argc: 1, Args: "\x00", ArgsSize: 1,
		})},
		want: []string{
			`"exe":"/usr/bin/true","cgroup_id"`,
			`"exec":{"syscall":"execveat","dirfd":11,"flags":["AT_EMPTY_PATH","0x8000"],"flags_raw":36864,"filename":"","exe":"/usr/bin/true","exe_file":{"ino":247849,"dev":"254:0","mode":"0100755","uid":0,"gid":0,"ctime":0},"argv":[""],"argc":1,"argv_empty":true,"ret":0}}`,
		},
	},
	{
		name: "exec_failed_empty_argv_unreadable_path",
		events: []Event{execEv(agent, loader.FlagArgvEmpty|loader.FlagPathFault, Exec{
			Ret: -14, Syscall: "execve", Dirfd: -100,
		})},
		want: []string{
			`"exec":{"syscall":"execve","path_unreadable":true,"argv":[],"argc":0,"argv_empty":true,"ret":-14,"errno":"EFAULT"}}`,
		},
	},
	{
		// A child of the shell failed its exec past the point of no return
		// (killed while the kernel loaded the new image): its comm and
		// exec_id are the new image's, argv is not known, exe is the file the
		// kernel was executing, and the exit that follows names it too.
		name: "exec_failed_past_no_return",
		events: []Event{
			execEv(shell, 0, Exec{Ret: 0, Syscall: "execve", Dirfd: -100, Filename: "/bin/sh", Exe: "/usr/bin/dash",
				ExeFile: ExeFile{Ino: 1, Dev: 254 << 20, Mode: 0o100755}, Argc: 1, Args: "sh\x00", ArgsSize: 3}),
			forkEv(shell, child),
			func() Event {
				e := childEv(KindExec)
				e.Proc.Comm, e.Proc.ExecID.Seq = "sleep", 6
				e.Exec = Exec{Ret: -14, Syscall: "execve", Dirfd: -100, Filename: "/usr/bin/sleep", Exe: "/usr/bin/sleep",
					ExeFile: ExeFile{Ino: 9, Dev: 254 << 20, Mode: 0o100755}, ArgsUnreadable: true, PastNoReturn: true}
				return e
			}(),
			func() Event {
				e := childEv(KindExit)
				e.Proc.Comm, e.Proc.ExecID.Seq = "sleep", 6
				e.Exit = Exit{Status: 9}
				return e
			}(),
		},
		want: []string{
			`"comm":"sleep","exe":"/usr/bin/sleep","cgroup_id":4242,"cgroup":"/agenttrace/run-1","exec_id":"101-900500000000-6","parent_exec_id":"100-900000000000-5"},"exec":{"syscall":"execve","filename":"/usr/bin/sleep","exe":"/usr/bin/sleep","exe_file":{"ino":9,"dev":"254:0","mode":"0100755","uid":0,"gid":0,"ctime":0},"argv":[],"argc":0,"argv_unreadable":true,"past_point_of_no_return":true,"ret":-14,"errno":"EFAULT"}}`,
			`"comm":"sleep","exe":"/usr/bin/sleep","cgroup_id":4242,"cgroup":"/agenttrace/run-1","exec_id":"101-900500000000-6","parent_exec_id":"100-900000000000-5"},"exit":{"status":9,"signal":"SIGKILL","signal_num":9}}`,
		},
	},
	{
		name: "exec_no_enter_args_fault",
		events: []Event{execEv(shell, loader.FlagNoEnter|loader.FlagArgsFault, Exec{
			Ret: 0, Exe: "/usr/bin/ls", ExeFile: ExeFile{Ino: 5, Dev: 1<<20 | 2, Mode: 0o100755}, Argc: 2, ArgsSize: 8,
		})},
		want: []string{
			`"exec":{"exe":"/usr/bin/ls","exe_file":{"ino":5,"dev":"1:2","mode":"0100755","uid":0,"gid":0,"ctime":0},"argv":[],"argc":2,"argv_unreadable":true,"ret":0}}`,
		},
	},
	{
		name: "exec_i386",
		events: []Event{execEv(shell, loader.FlagCompat, Exec{
			Ret: 0, Syscall: "execve", Dirfd: -100, Filename: "./a.out", Exe: "/tmp/a.out",
			ExeFile: ExeFile{Ino: 7, Dev: 0<<20 | 45, Mode: 0o100700, UID: 1000, GID: 1000}, Argc: 1, Args: "./a.out\x00", ArgsSize: 8,
		})},
		want: []string{
			`"exec_id":"100-900000000000-5","parent_exec_id":"99-800000000000-4","abi":"i386"}`,
			`"exe_file":{"ino":7,"dev":"0:45","mode":"0100700","uid":1000,"gid":1000,"ctime":0}`,
		},
	},
	{
		name: "open_open",
		events: []Event{openEv(0, Open{
			Ret: 3, Syscall: "open", Dirfd: -100, Flags: oRdonly | oLargefile, Path: "/etc/passwd",
		})},
		want: []string{
			`"type":"open","cpu":3,"kseq":17,"proc":{"pid":200,"tid":203,`,
			`"open":{"syscall":"open","dirfd":-100,"path":"/etc/passwd","flags":["O_RDONLY","O_LARGEFILE"],"flags_raw":32768,"mode":"0","fd":3,"ret":3}}`,
		},
	},
	{
		name: "open_creat",
		events: []Event{openEv(0, Open{
			Ret: 4, Syscall: "creat", Dirfd: -100, Flags: oCreat | oWronly | oTrunc, Mode: 0o640, Path: "out.txt",
		})},
		want: []string{
			`"open":{"syscall":"creat","dirfd":-100,"path":"out.txt","flags":["O_WRONLY","O_CREAT","O_TRUNC"],"flags_raw":577,"mode":"0640","fd":4,"ret":4}}`,
		},
	},
	{
		name: "open_openat_tmpfile",
		events: []Event{openEv(0, Open{
			Ret: 5, Syscall: "openat", Dirfd: -100, Flags: oRdwr | oTmpfile | oCloexec, Mode: 0o600, Path: "/tmp",
		})},
		want: []string{
			`"open":{"syscall":"openat","dirfd":-100,"path":"/tmp","flags":["O_RDWR","O_TMPFILE","O_CLOEXEC"],"flags_raw":4784130,"mode":"0600","fd":5,"ret":5}}`,
		},
	},
	{
		name: "open_openat_directory_not_tmpfile",
		events: []Event{openEv(0, Open{
			Ret: 6, Syscall: "openat", Dirfd: 9, Flags: oRdonly | oDirectory, Path: "sub",
		})},
		want: []string{
			`"open":{"syscall":"openat","dirfd":9,"path":"sub","flags":["O_RDONLY","O_DIRECTORY"],"flags_raw":65536,"mode":"0","fd":6,"ret":6}}`,
		},
	},
	{
		name: "open_openat_sync_unknown_bits",
		events: []Event{openEv(0, Open{
			Ret: 7, Syscall: "openat", Dirfd: -100, Flags: oWronly | oSync | oCreat | 0x4000000 | 0x8000000, Mode: 0o644, Path: "/tmp/at_sync",
		})},
		want: []string{
			`"flags":["O_WRONLY","O_SYNC","O_CREAT","0xc000000"],"flags_raw":202379329,"mode":"0644"`,
		},
	},
	{
		name: "open_openat_lone_multibit_parts",
		events: []Event{
			openEv(0, Open{Ret: 3, Syscall: "openat", Dirfd: -100, Flags: oWronly | 0o4000000, Path: "a"}),
			openEv(0, Open{Ret: -22, Syscall: "openat", Dirfd: -100, Flags: oRdwr | 0o20000000, Path: "/tmp"}),
		},
		want: []string{
			// __O_SYNC without O_DSYNC and __O_TMPFILE without O_DIRECTORY have no name.
			`"flags":["O_WRONLY","0x100000"],"flags_raw":1048577,`,
			`"flags":["O_RDWR","0x400000"],"flags_raw":4194306,`,
		},
	},
	{
		name: "open_openat_dsync_and_lone_sync_bit",
		events: []Event{openEv(0, Open{
			Ret: 8, Syscall: "openat", Dirfd: -100, Flags: oWronly | unix.O_DSYNC | unix.O_APPEND | unix.O_NOFOLLOW | 0o4000000, Path: "log",
		})},
		want: []string{
			// __O_SYNC without O_DSYNC's bit is not O_SYNC: here both are set, so O_SYNC wins.
			`"flags":["O_WRONLY","O_SYNC","O_APPEND","O_NOFOLLOW"],"flags_raw":1184769,`,
		},
	},
	{
		name: "open_openat_accmode_all_named",
		events: []Event{openEv(0, Open{
			Ret: -22, Syscall: "openat", Dirfd: -100,
			Flags: 3 | oCreat | unix.O_EXCL | unix.O_NOCTTY | unix.O_NONBLOCK | unix.O_ASYNC | unix.O_DIRECT | unix.O_NOATIME | unix.O_PATH,
			Path:  "x",
		})},
		want: []string{
			`"flags":["O_ACCMODE","O_CREAT","O_EXCL","O_NOCTTY","O_NONBLOCK","O_ASYNC","O_DIRECT","O_NOATIME","O_PATH"],"flags_raw":2386371,"mode":"0","ret":-22,"errno":"EINVAL"}}`,
		},
	},
	{
		name: "open_openat_failed_inexact_path",
		events: []Event{openEv(0, Open{
			Ret: -2, Syscall: "openat", Dirfd: -100, Flags: oRdonly | oCloexec, Path: "/tmp/bad\xffname\u202e",
		})},
		want: []string{
			`"open":{"syscall":"openat","dirfd":-100,"path":"/tmp/bad\\xffname\u202e","path_b64":"L3RtcC9iYWT/bmFtZeKArg==","flags":["O_RDONLY","O_CLOEXEC"],"flags_raw":524288,"mode":"0","ret":-2,"errno":"ENOENT"}}`,
		},
	},
	{
		name: "open_openat2_resolve",
		events: []Event{openEv(0, Open{
			Ret: -18, Syscall: "openat2", Dirfd: 4, Flags: oRdonly | oCloexec,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | 0x20 | 0x40, Path: "../etc/shadow",
		})},
		want: []string{
			`"open":{"syscall":"openat2","dirfd":4,"path":"../etc/shadow","flags":["O_RDONLY","O_CLOEXEC"],"flags_raw":524288,"mode":"0","resolve":["RESOLVE_NO_SYMLINKS","RESOLVE_BENEATH","RESOLVE_CACHED","0x40"],"ret":-18,"errno":"EXDEV"}}`,
		},
	},
	{
		name: "open_openat2_no_resolve",
		events: []Event{openEv(0, Open{
			Ret: 3, Syscall: "openat2", Dirfd: -100, Path: "/etc/hostname",
		})},
		want: []string{`"mode":"0","resolve":[],"fd":3,"ret":3}}`},
	},
	{
		name: "open_x32",
		events: []Event{
			openEv(loader.FlagX32, Open{Ret: 3, Syscall: "openat", Dirfd: -100, Path: "/etc/hostname"}),
		},
		want: []string{`"abi":"x32"},"open":{"syscall":"openat","dirfd":-100,"path":"/etc/hostname","flags":["O_RDONLY"],"flags_raw":0,"mode":"0","fd":3,"ret":3}}`},
	},
	{
		name: "open_path_flags_i386",
		events: []Event{
			openEv(loader.FlagPathTruncated|loader.FlagCompat, Open{Ret: -36, Syscall: "open", Dirfd: -100, Path: "/aaaa"}),
			openEv(loader.FlagPathFault, Open{Ret: -14, Syscall: "openat", Dirfd: -100}),
		},
		want: []string{
			`"abi":"i386"},"open":{"syscall":"open","dirfd":-100,"path":"/aaaa","path_truncated":true,"flags":["O_RDONLY"],"flags_raw":0,"mode":"0","ret":-36,"errno":"ENAMETOOLONG"}}`,
			`"open":{"syscall":"openat","dirfd":-100,"path_unreadable":true,"flags":["O_RDONLY"],"flags_raw":0,"mode":"0","ret":-14,"errno":"EFAULT"}}`,
		},
	},
	{
		name: "open_ret_outside_errno_range",
		events: []Event{
			openEv(0, Open{Ret: -4095, Syscall: "openat", Dirfd: -100, Path: "a"}),
			openEv(0, Open{Ret: -4096, Syscall: "openat", Dirfd: -100, Path: "b"}),
			openEv(0, Open{Ret: -512, Syscall: "openat", Dirfd: -100, Path: "c"}),
		},
		want: []string{
			`"ret":-4095,"errno":"E4095"}}`,
			`"path":"b","flags":["O_RDONLY"],"flags_raw":0,"mode":"0","ret":-4096}}`,
			`"ret":-512,"errno":"ERESTARTSYS"}}`,
		},
	},
	{
		name: "connect_inet",
		events: []Event{connectEv(0, Connect{
			Ret: 0, Syscall: "connect", Fd: 3, Addrlen: 16, Addr: ParseSockaddr(sockaddr4([4]byte{93, 184, 216, 34}, 443)),
		})},
		want: []string{
			`"connect":{"syscall":"connect","fd":3,"addrlen":16,"family":"AF_INET","family_num":2,"addr":"93.184.216.34","port":443,"ret":0}}`,
		},
	},
	{
		name: "connect_inet_refused_and_short",
		events: []Event{
			connectEv(0, Connect{Ret: -111, Syscall: "connect", Fd: 3, Addrlen: 16, Addr: ParseSockaddr(sockaddr4([4]byte{127, 0, 0, 1}, 1))}),
			connectEv(0, Connect{Ret: -22, Syscall: "connect", Fd: 3, Addrlen: 8, Addr: ParseSockaddr(sockaddr4([4]byte{127, 0, 0, 1}, 1)[:8])}),
		},
		want: []string{
			`"family":"AF_INET","family_num":2,"addr":"127.0.0.1","port":1,"ret":-111,"errno":"ECONNREFUSED"}}`,
			`"connect":{"syscall":"connect","fd":3,"addrlen":8,"family":"AF_INET","family_num":2,"ret":-22,"errno":"EINVAL"}}`,
		},
	},
	{
		name: "connect_inet6",
		events: []Event{connectEv(0, Connect{
			Ret: -115, Syscall: "connect", Fd: 4, Addrlen: 28, Addr: ParseSockaddr(sockaddr6(ip6Doc, 8443, 0, 0, 28)),
		})},
		want: []string{
			`"connect":{"syscall":"connect","fd":4,"addrlen":28,"family":"AF_INET6","family_num":10,"addr":"2001:db8::1","port":8443,"ret":-115,"errno":"EINPROGRESS"}}`,
		},
	},
	{
		name: "connect_inet6_flow_scope",
		events: []Event{connectEv(0, Connect{
			Ret: -101, Syscall: "connect", Fd: 6, Addrlen: 28, Addr: ParseSockaddr(sockaddr6(ip6LL, 9, 0x12345, 2, 28)),
		})},
		want: []string{
			`"family":"AF_INET6","family_num":10,"addr":"fe80::1","port":9,"flowinfo":74565,"scope_id":2,"ret":-101,"errno":"ENETUNREACH"}}`,
		},
	},
	{
		name: "connect_inet6_rfc2133",
		events: []Event{connectEv(0, Connect{
			Ret: -111, Syscall: "connect", Fd: 6, Addrlen: 24, Addr: ParseSockaddr(sockaddr6(ip6LL, 9, 0, 0, 24)),
		})},
		want: []string{
			// 24 bytes (no sin6_scope_id) is a valid address for the kernel.
			`"addrlen":24,"family":"AF_INET6","family_num":10,"addr":"fe80::1","port":9,"ret":-111,"errno":"ECONNREFUSED"}}`,
		},
	},
	{
		name: "connect_inet6_v4_mapped",
		events: []Event{connectEv(0, Connect{
			Ret: 0, Syscall: "connect", Fd: 5, Addrlen: 28, Addr: ParseSockaddr(sockaddr6(ip6Mapped, 53, 0, 0, 28)),
		})},
		want: []string{
			`"family":"AF_INET6","family_num":10,"addr":"::ffff:10.0.0.1","port":53,"v4_mapped":true,"ret":0}}`,
		},
	},
	{
		name: "connect_unix",
		events: []Event{
			connectEv(0, Connect{Ret: 0, Syscall: "connect", Fd: 7, Addrlen: 28, Addr: ParseSockaddr(sockaddrFamily(unix.AF_UNIX, "/run/docker.sock\x00garbage\xff"))}),
			connectEv(0, Connect{Ret: -111, Syscall: "connect", Fd: 8, Addrlen: 20, Addr: ParseSockaddr(sockaddrFamily(unix.AF_UNIX, "\x00abs\x00tract\xff\x01"))}),
			connectEv(0, Connect{Ret: -22, Syscall: "connect", Fd: 9, Addrlen: 2, Addr: ParseSockaddr(sockaddrFamily(unix.AF_UNIX, ""))}),
			connectEv(0, Connect{Ret: -2, Syscall: "connect", Fd: 9, Addrlen: 10, Addr: ParseSockaddr(sockaddrFamily(unix.AF_UNIX, "/tmp/\xe9\x00\x00\x00"))}),
		},
		want: []string{
			`"connect":{"syscall":"connect","fd":7,"addrlen":28,"family":"AF_UNIX","family_num":1,"unix_path":"/run/docker.sock","ret":0}}`,
			`"family":"AF_UNIX","family_num":1,"unix_abstract":"abs\u0000tract\\xff\u0001","unix_abstract_b64":"YWJzAHRyYWN0/wE=","ret":-111,"errno":"ECONNREFUSED"}}`,
			`"family":"AF_UNIX","family_num":1,"unix_unnamed":true,"ret":-22,"errno":"EINVAL"}}`,
			`"unix_path":"/tmp/\\xe9","unix_path_b64":"L3RtcC/p","ret":-2`,
		},
	},
	{
		name: "connect_other_families",
		events: []Event{
			connectEv(0, Connect{Ret: 0, Syscall: "connect", Fd: 3, Addrlen: 16, Addr: ParseSockaddr(sockaddrFamily(unix.AF_UNSPEC, "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))}),
			connectEv(0, Connect{Ret: 0, Syscall: "connect", Fd: 3, Addrlen: 12, Addr: ParseSockaddr(sockaddrFamily(unix.AF_NETLINK, "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))}),
			connectEv(0, Connect{Ret: -97, Syscall: "connect", Fd: 3, Addrlen: 4, Addr: ParseSockaddr(sockaddrFamily(99, "ab"))}),
			connectEv(0, Connect{Ret: -22, Syscall: "connect", Fd: 3, Addrlen: 1, Addr: ParseSockaddr([]byte{2})}),
			connectEv(0, Connect{Ret: -22, Syscall: "connect", Fd: 3, Addrlen: 0}),
		},
		want: []string{
			`"connect":{"syscall":"connect","fd":3,"addrlen":16,"family":"AF_UNSPEC","family_num":0,"ret":0}}`,
			`"connect":{"syscall":"connect","fd":3,"addrlen":12,"family":"AF_NETLINK","family_num":16,"ret":0}}`,
			`"connect":{"syscall":"connect","fd":3,"addrlen":4,"family_num":99,"ret":-97,"errno":"EAFNOSUPPORT"}}`,
			`"connect":{"syscall":"connect","fd":3,"addrlen":1,"ret":-22,"errno":"EINVAL"}}`,
			`"connect":{"syscall":"connect","fd":3,"addrlen":0,"ret":-22,"errno":"EINVAL"}}`,
		},
	},
	{
		name: "connect_fault_socketcall_i386",
		events: []Event{
			connectEv(loader.FlagAddrFault, Connect{Ret: -14, Syscall: "connect", Fd: 6, Addrlen: 16}),
			connectEv(loader.FlagCompat, Connect{Ret: 0, Syscall: "socketcall", Fd: 3, Addrlen: 16, Addr: ParseSockaddr(sockaddr4([4]byte{10, 1, 2, 3}, 80))}),
		},
		want: []string{
			`"connect":{"syscall":"connect","fd":6,"addrlen":16,"addr_unreadable":true,"ret":-14,"errno":"EFAULT"}}`,
			`"abi":"i386"},"connect":{"syscall":"socketcall","fd":3,"addrlen":16,"family":"AF_INET","family_num":2,"addr":"10.1.2.3","port":80,"ret":0}}`,
		},
	},
	{
		name: "fork_inherits_exe",
		events: []Event{
			execEv(shell, 0, Exec{Ret: 0, Syscall: "execve", Dirfd: -100, Filename: "/bin/sh", Exe: "/usr/bin/dash",
				ExeFile: ExeFile{Ino: 1, Dev: 254 << 20, Mode: 0o100755}, Argc: 1, Args: "sh\x00", ArgsSize: 3}),
			forkEv(shell, child),
			func() Event {
				e := childEv(KindOpen)
				e.Open = Open{Ret: 3, Syscall: "openat", Dirfd: -100, Path: "/etc/profile"}
				return e
			}(),
			childEv(KindExit),
			// Impossible after the exit: shows that the encoder forgot the exe.
			func() Event {
				e := childEv(KindOpen)
				e.Open = Open{Ret: 3, Syscall: "openat", Dirfd: -100, Path: "/late"}
				return e
			}(),
		},
		want: []string{
			`"exe":"/usr/bin/dash"`,
			`"type":"fork","cpu":3,"kseq":17,"proc":{"pid":100,"tid":100,"ppid":99,"uid":1000,"gid":1001,"euid":1002,"egid":1003,"auid":4294967295,"comm":"sh","exe":"/usr/bin/dash","cgroup_id":4242,"cgroup":"/agenttrace/run-1","exec_id":"100-900000000000-5","parent_exec_id":"99-800000000000-4"},"fork":{"child_pid":101,"child_exec_id":"101-900500000000-5"}}`,
			`"proc":{"pid":101,"tid":101,"ppid":100,"uid":1000,"gid":1001,"euid":1002,"egid":1003,"auid":4294967295,"comm":"sh","exe":"/usr/bin/dash","cgroup_id":4242,"cgroup":"/agenttrace/run-1","exec_id":"101-900500000000-5","parent_exec_id":"100-900000000000-5"}`,
			`"exec_id":"101-900500000000-5","parent_exec_id":"100-900000000000-5"},"exit":{"status":0,"code":0}}`,
			`"comm":"sh","cgroup_id":4242,`,
		},
	},
	{
		name: "exit",
		events: []Event{
			exitEv(agent, 1<<8),
			exitEv(agent, 255<<8),
			exitEv(agent, 9),
			exitEv(agent, 0x80|11),
			exitEv(agent, 40),
		},
		want: []string{
			`"exit":{"status":256,"code":1}}`,
			`"exit":{"status":65280,"code":255}}`,
			`"exit":{"status":9,"signal":"SIGKILL","signal_num":9}}`,
			`"exit":{"status":139,"signal":"SIGSEGV","signal_num":11,"core_dumped":true}}`,
			`"exit":{"status":40,"signal":"SIG40","signal_num":40}}`,
		},
	},
	{
		name: "proc_cgroup_unresolved_and_inexact",
		events: []Event{
			func() Event { e := exitEv(agent, 0); e.Proc.CgroupID = 1; return e }(),
			func() Event {
				e := exitEv(agent, 0)
				e.Proc.CgroupID = 4343
				e.Proc.Comm = "ev\xff\u202eil\n" // the decoder ends it at the first NUL
				return e
			}(),
			func() Event { e := exitEv(agent, 0); e.Proc.Comm = "0123456789abcdef"; return e }(), // 16 bytes, no NUL
		},
		want: []string{
			`"comm":"python3","cgroup_id":1,"exec_id"`,
			`"comm":"ev\\xff\u202eil\n","comm_b64":"ZXb/4oCuaWwK","cgroup_id":4343,"cgroup":"/agenttrace/run-1/caf\\xe9","cgroup_b64":"L2FnZW50dHJhY2UvcnVuLTEvY2Fm6Q==","exec_id"`,
			`"comm":"0123456789abcdef","cgroup_id"`,
		},
	},
}

func TestAppendEventGolden(t *testing.T) {
	for _, tc := range recordCases {
		t.Run(tc.name, func(t *testing.T) {
			checkGolden(t, newTestEncoder(), tc.name, tc.events, tc.want)
		})
	}
}

// checkGolden encodes events with enc, validates every line against the
// schema, looks for the want fragments in order, and compares the whole
// output with testdata/<name>.golden (rewritten with -update).
func checkGolden(t *testing.T, enc *Encoder, name string, events []Event, want []string) {
	t.Helper()
	var got []byte
	var prev [32]byte // each line's prev is the hash of the line before, as the sink writes it
	for i := range events {
		line := enc.AppendEvent(nil, uint64(i+1), &prev, &events[i])
		prev = sha256.Sum256(append(line[:len(line):len(line)], '\n'))
		if err := schema.Validate(line); err != nil {
			t.Errorf("line %d does not validate: %v\n%s", i+1, err, line)
		}
		got = append(append(got, line...), '\n')
	}
	rest := string(got)
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("output does not contain (after the previous fragment) %s\noutput:\n%s", w, got)
			break
		}
		rest = rest[i+len(w):]
	}
	golden := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	wantGolden, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, wantGolden) {
		t.Errorf("output differs from %s:\n got %s\nwant %s", golden, got, wantGolden)
	}
}

// TestAppendEventAppends checks that a record is appended after what the
// buffer holds (the sink's earlier lines) and that seq is the given one.
func TestAppendEventAppends(t *testing.T) {
	enc := newTestEncoder()
	e := exitEv(agent, 0)
	prev := []byte(`{"previous":"line"}` + "\n")
	got := enc.AppendEvent(append([]byte(nil), prev...), 12345, &[32]byte{}, &e)
	if !bytes.HasPrefix(got, prev) || !bytes.HasPrefix(got[len(prev):], []byte(`{"v":1,"seq":12345,"prev":"0000000000000000000000000000000000000000000000000000000000000000","time":`)) {
		t.Errorf("AppendEvent after a line = %s", got)
	}
}

func TestAppendEnvelope(t *testing.T) {
	for _, tc := range []struct {
		host string
		want string
	}{
		{"build-host-1", `{"v":1,"seq":7,"prev":"ab00000000000000000000000000000000000000000000000000000000000001","time":"2025-01-02T03:04:05.000000001Z","ktime":1000000000001,"host":"build-host-1","boot_id":"b78835f2-8fc3-4e6c-826a-884af615cd65","type":"start"`},
		{"bad\xffhost", `{"v":1,"seq":7,"prev":"ab00000000000000000000000000000000000000000000000000000000000001","time":"2025-01-02T03:04:05.000000001Z","ktime":1000000000001,"host":"bad\\xffhost","host_b64":"YmFk/2hvc3Q=","boot_id":"b78835f2-8fc3-4e6c-826a-884af615cd65","type":"start"`},
	} {
		enc := NewEncoder(tc.host, testBootID, testOffset, nil)
		prev := [32]byte{0: 0xab, 31: 0x01}
		if got := enc.envelope(nil, 7, &prev, 1_000_000_000_001, "start"); string(got) != tc.want {
			t.Errorf("AppendEnvelope(host %q) =\n%s\nwant\n%s", tc.host, got, tc.want)
		}
	}
	// Whole seconds still have nine fraction digits.
	enc := NewEncoder("h", testBootID, testOffset, nil)
	if got := enc.envelope(nil, 1, &[32]byte{}, 1_000_000_000_000, "stop"); !bytes.Contains(got, []byte(`"time":"2025-01-02T03:04:05.000000000Z"`)) {
		t.Errorf("AppendEnvelope at a whole second = %s", got)
	}
}

func TestKindName(t *testing.T) {
	for kind, want := range map[uint32]string{0: "unknown", loader.KindExec: "exec", loader.KindOpen: "open", loader.KindConnect: "connect",
		loader.KindFork: "fork", loader.KindExit: "exit", loader.KindCgroup: "cgroup", loader.KindMax: "unknown", 1 << 31: "unknown"} {
		if got := KindName(kind); got != want {
			t.Errorf("KindName(%d) = %q, want %q", kind, got, want)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{ErrnoName(2), "ENOENT"},
		{ErrnoName(11), "EAGAIN"},
		{ErrnoName(4000), "E4000"},
		{SignalName(9), "SIGKILL"},
		{SignalName(31), "SIGSYS"},
		{SignalName(64), "SIG64"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestExeCacheBounded: a process that forks children which exec and exit
// leaves nothing behind in the executable cache.
func TestExeCacheBounded(t *testing.T) {
	enc := NewEncoder("h", "b", 0, nil)
	var prev [32]byte
	root := Event{Kind: KindExec, Proc: Proc{Pid: 100, Tid: 100, ExecID: ExecID{100, 5, 1}}, Exec: Exec{Exe: "/bin/agent"}}
	enc.AppendEvent(nil, 1, &prev, &root)
	for i := uint32(0); i < 1000; i++ {
		child, start := 200+i, uint64(10+i)
		fork := Event{Kind: KindFork, Proc: Proc{Pid: 100, Tid: 100, ExecID: ExecID{100, 5, 1}}, Fork: Fork{ChildPid: child, ChildExecID: ExecID{child, start, 1}}}
		enc.AppendEvent(nil, 2, &prev, &fork)
		exec := Event{Kind: KindExec, Proc: Proc{Pid: child, Tid: child, ExecID: ExecID{child, start, 2}}, Exec: Exec{Exe: "/bin/tool"}}
		enc.AppendEvent(nil, 3, &prev, &exec)
		exit := Event{Kind: KindExit, Proc: Proc{Pid: child, Tid: child, ExecID: ExecID{child, start, 2}}}
		enc.AppendEvent(nil, 4, &prev, &exit)
	}
	if len(enc.exes) != 1 {
		t.Fatalf("%d cached executables after 1000 fork+exec+exit, want 1 (the root's)", len(enc.exes))
	}
}
