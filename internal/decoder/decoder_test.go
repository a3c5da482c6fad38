package decoder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/record"
)

// TestLayout pins the generated Go types to the C layout of
// bpf/agenttrace.h. The expected offsets follow from the header by natural
// alignment (every struct is padded explicitly, never packed):
//
//	event_header: 7 x u64 (0..55), 12 x u32 (56..103), comm[16] (104..119) = 120
//	file_info:    ino 0, ctime 8, 10 x u32 16..55                          = 56
//	exec_event:   hdr 120, ret 120, exe 128..183, 8 x u32 184..215        = 216
//	open_event:   hdr 120, ret/flags/mode/resolve/user_data/src_start_time/
//	              src_exec_seq 120..175, file 176..231, 8 x u32 232..263,
//	              names 264 + 8192 + 256 (room for the path walk)          = 8712
//	io_uring_event: hdr 120, ret 120, 4 x u32 128..143                     = 144
//	net_event:    hdr 120, ret 120, user_data 128, size 136, fd 144,
//	              syscall 148, flags 152, backlog 156, msg_index 160,
//	              addrlen 164, addr_len 168, nflags 172, sqe_flags 176,
//	              _pad 180, addr[128] 184..311, sock 312..559                = 560
//	sock_info:    cookie 0, family 8, type 10, protocol 12, state 14,
//	              local 16 (len 16, name[112] 20..131), remote 132..247    = 248
//	sock_state_event: hdr 120, oldstate 120, newstate 124, error 128,
//	              _pad 132, sock 136..383                                  = 384
//	dns_event:    hdr 120, cookie 120, direction 128, protocol 132,
//	              payload_len 136, cap_len 140, family 144, sport 146,
//	              dport 148, _pad 150, saddr 152, daddr 168, payload 184   = 696
//	fork_event:   hdr 120, child_start_time 120, child_cgroup_id 128,
//	              child_pid 136, _pad 140                                  = 144
//	exit_event:   hdr 120, exit_code 120, _pad 124                         = 128
//	cgroup_event: hdr 120, id 120, parent_id 128, 6 x u32 136..159, path 160
//	kind_counters: 3 x u64                                                 = 24
//
// If this fails, the header and the generated code have drifted: run
// go generate ./internal/loader and fix the decoder, never the numbers.
func TestLayout(t *testing.T) {
	var (
		h  loader.EventHeader
		x  loader.ExecEvent
		o  loader.OpenEvent
		c  loader.NetEvent
		si loader.SockInfo
		ss loader.SockStateEvent
		d  loader.DNSEvent
		f  loader.ForkEvent
		e  loader.ExitEvent
		kc loader.KindCounters
		g  loader.CgroupEvent
		fi loader.FileInfo
		u  loader.IOURingEvent
	)
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(event_header)", unsafe.Sizeof(h), 120},
		{"event_header.ktime", unsafe.Offsetof(h.Ktime), 0},
		{"event_header.kseq", unsafe.Offsetof(h.Kseq), 8},
		{"event_header.cgroup_id", unsafe.Offsetof(h.CgroupId), 16},
		{"event_header.start_time", unsafe.Offsetof(h.StartTime), 24},
		{"event_header.exec_seq", unsafe.Offsetof(h.ExecSeq), 32},
		{"event_header.parent_start_time", unsafe.Offsetof(h.ParentStartTime), 40},
		{"event_header.parent_exec_seq", unsafe.Offsetof(h.ParentExecSeq), 48},
		{"event_header.kind", unsafe.Offsetof(h.Kind), 56},
		{"event_header.cpu", unsafe.Offsetof(h.Cpu), 60},
		{"event_header.pid", unsafe.Offsetof(h.Pid), 64},
		{"event_header.tid", unsafe.Offsetof(h.Tid), 68},
		{"event_header.ppid", unsafe.Offsetof(h.Ppid), 72},
		{"event_header.parent_pid", unsafe.Offsetof(h.ParentPid), 76},
		{"event_header.uid", unsafe.Offsetof(h.Uid), 80},
		{"event_header.gid", unsafe.Offsetof(h.Gid), 84},
		{"event_header.euid", unsafe.Offsetof(h.Euid), 88},
		{"event_header.egid", unsafe.Offsetof(h.Egid), 92},
		{"event_header.auid", unsafe.Offsetof(h.Auid), 96},
		{"event_header.flags", unsafe.Offsetof(h.Flags), 100},
		{"event_header.comm", unsafe.Offsetof(h.Comm), 104},
		{"sizeof(comm)", unsafe.Sizeof(h.Comm), 16},

		{"sizeof(file_info)", unsafe.Sizeof(fi), 56},
		{"file_info.ino", unsafe.Offsetof(fi.Ino), 0},
		{"file_info.ctime", unsafe.Offsetof(fi.Ctime), 8},
		{"file_info.dev", unsafe.Offsetof(fi.Dev), 16},
		{"file_info.mode", unsafe.Offsetof(fi.Mode), 20},
		{"file_info.uid", unsafe.Offsetof(fi.Uid), 24},
		{"file_info.gid", unsafe.Offsetof(fi.Gid), 28},
		{"file_info.mnt_id", unsafe.Offsetof(fi.MntId), 32},
		{"file_info.magic", unsafe.Offsetof(fi.Magic), 36},
		{"file_info.flags", unsafe.Offsetof(fi.Flags), 40},
		{"file_info.path_len", unsafe.Offsetof(fi.PathLen), 44},
		{"file_info.ns_len", unsafe.Offsetof(fi.NsLen), 48},
		{"file_info.ns_seen", unsafe.Offsetof(fi.NsSeen), 52},

		{"sizeof(exec_event)", unsafe.Sizeof(x), 216},
		{"exec_event.ret", unsafe.Offsetof(x.Ret), 120},
		{"exec_event.exe", unsafe.Offsetof(x.Exe), 128},
		{"exec_event.dirfd", unsafe.Offsetof(x.Dirfd), 184},
		{"exec_event.at_flags", unsafe.Offsetof(x.AtFlags), 188},
		{"exec_event.syscall", unsafe.Offsetof(x.Syscall), 192},
		{"exec_event.filename_len", unsafe.Offsetof(x.FilenameLen), 196},
		{"exec_event.argc", unsafe.Offsetof(x.Argc), 200},
		{"exec_event.args_len", unsafe.Offsetof(x.ArgsLen), 204},
		{"exec_event.args_size", unsafe.Offsetof(x.ArgsSize), 208},

		{"sizeof(open_event)", unsafe.Sizeof(o), 8712},
		{"open_event.ret", unsafe.Offsetof(o.Ret), 120},
		{"open_event.flags", unsafe.Offsetof(o.Flags), 128},
		{"open_event.mode", unsafe.Offsetof(o.Mode), 136},
		{"open_event.resolve", unsafe.Offsetof(o.Resolve), 144},
		{"open_event.user_data", unsafe.Offsetof(o.UserData), 152},
		{"open_event.src_start_time", unsafe.Offsetof(o.SrcStartTime), 160},
		{"open_event.src_exec_seq", unsafe.Offsetof(o.SrcExecSeq), 168},
		{"open_event.file", unsafe.Offsetof(o.File), 176},
		{"open_event.dirfd", unsafe.Offsetof(o.Dirfd), 232},
		{"open_event.syscall", unsafe.Offsetof(o.Syscall), 236},
		{"open_event.path_len", unsafe.Offsetof(o.PathLen), 240},
		{"open_event.arg", unsafe.Offsetof(o.Arg), 244},
		{"open_event.src_pid", unsafe.Offsetof(o.SrcPid), 248},
		{"open_event.oflags", unsafe.Offsetof(o.Oflags), 252},
		{"open_event.sqe_flags", unsafe.Offsetof(o.SqeFlags), 256},
		{"open_event.names", unsafe.Offsetof(o.Names), 264},
		{"sizeof(open_event.names)", unsafe.Sizeof(o.Names), uintptr(2*loader.PathBytes + 256)},

		{"sizeof(io_uring_event)", unsafe.Sizeof(u), 144},
		{"io_uring_event.ret", unsafe.Offsetof(u.Ret), 120},
		{"io_uring_event.syscall", unsafe.Offsetof(u.Syscall), 128},
		{"io_uring_event.entries", unsafe.Offsetof(u.Entries), 132},
		{"io_uring_event.setup_flags", unsafe.Offsetof(u.SetupFlags), 136},
		{"io_uring_event.cq_entries", unsafe.Offsetof(u.CqEntries), 140},

		{"sizeof(net_event)", unsafe.Sizeof(c), 560},
		{"net_event.ret", unsafe.Offsetof(c.Ret), 120},
		{"net_event.user_data", unsafe.Offsetof(c.UserData), 128},
		{"net_event.size", unsafe.Offsetof(c.Size), 136},
		{"net_event.fd", unsafe.Offsetof(c.Fd), 144},
		{"net_event.syscall", unsafe.Offsetof(c.Syscall), 148},
		{"net_event.flags", unsafe.Offsetof(c.Flags), 152},
		{"net_event.backlog", unsafe.Offsetof(c.Backlog), 156},
		{"net_event.msg_index", unsafe.Offsetof(c.MsgIndex), 160},
		{"net_event.addrlen", unsafe.Offsetof(c.Addrlen), 164},
		{"net_event.addr_len", unsafe.Offsetof(c.AddrLen), 168},
		{"net_event.nflags", unsafe.Offsetof(c.Nflags), 172},
		{"net_event.sqe_flags", unsafe.Offsetof(c.SqeFlags), 176},
		{"net_event.addr", unsafe.Offsetof(c.Addr), 184},
		{"sizeof(net_event.addr)", unsafe.Sizeof(c.Addr), 128},
		{"net_event.sock", unsafe.Offsetof(c.Sock), 312},

		{"sizeof(sock_info)", unsafe.Sizeof(si), 248},
		{"sock_info.family", unsafe.Offsetof(si.Family), 8},
		{"sock_info.type", unsafe.Offsetof(si.Type), 10},
		{"sock_info.protocol", unsafe.Offsetof(si.Protocol), 12},
		{"sock_info.state", unsafe.Offsetof(si.State), 14},
		{"sock_info.local", unsafe.Offsetof(si.Local), 16},
		{"sock_info.local.name", unsafe.Offsetof(si.Local.Name), 4},
		{"sizeof(sock_name)", unsafe.Sizeof(si.Local), 116},
		{"sock_info.remote", unsafe.Offsetof(si.Remote), 132},

		{"sizeof(sock_state_event)", unsafe.Sizeof(ss), 384},
		{"sock_state_event.oldstate", unsafe.Offsetof(ss.Oldstate), 120},
		{"sock_state_event.newstate", unsafe.Offsetof(ss.Newstate), 124},
		{"sock_state_event.error", unsafe.Offsetof(ss.Error), 128},
		{"sock_state_event.sock", unsafe.Offsetof(ss.Sock), 136},

		{"sizeof(dns_event)", unsafe.Sizeof(d), 696},
		{"dns_event.cookie", unsafe.Offsetof(d.Cookie), 120},
		{"dns_event.direction", unsafe.Offsetof(d.Direction), 128},
		{"dns_event.protocol", unsafe.Offsetof(d.Protocol), 132},
		{"dns_event.payload_len", unsafe.Offsetof(d.PayloadLen), 136},
		{"dns_event.cap_len", unsafe.Offsetof(d.CapLen), 140},
		{"dns_event.family", unsafe.Offsetof(d.Family), 144},
		{"dns_event.sport", unsafe.Offsetof(d.Sport), 146},
		{"dns_event.dport", unsafe.Offsetof(d.Dport), 148},
		{"dns_event.saddr", unsafe.Offsetof(d.Saddr), 152},
		{"dns_event.daddr", unsafe.Offsetof(d.Daddr), 168},
		{"dns_event.payload", unsafe.Offsetof(d.Payload), 184},
		{"sizeof(dns_event.payload)", unsafe.Sizeof(d.Payload), uintptr(loader.DNSBytes)},

		{"sizeof(fork_event)", unsafe.Sizeof(f), 144},
		{"fork_event.child_start_time", unsafe.Offsetof(f.ChildStartTime), 120},
		{"fork_event.child_cgroup_id", unsafe.Offsetof(f.ChildCgroupId), 128},
		{"fork_event.child_pid", unsafe.Offsetof(f.ChildPid), 136},

		{"sizeof(exit_event)", unsafe.Sizeof(e), 128},
		{"exit_event.exit_code", unsafe.Offsetof(e.ExitCode), 120},

		{"cgroup_event.id", unsafe.Offsetof(g.Id), 120},
		{"cgroup_event.parent_id", unsafe.Offsetof(g.ParentId), 128},
		{"cgroup_event.op", unsafe.Offsetof(g.Op), 136},
		{"cgroup_event.level", unsafe.Offsetof(g.Level), 140},
		{"cgroup_event.patterns", unsafe.Offsetof(g.Patterns), 144},
		{"cgroup_event.cflags", unsafe.Offsetof(g.Cflags), 148},
		{"cgroup_event.path_len", unsafe.Offsetof(g.PathLen), 152},
		{"cgroup_event.path", unsafe.Offsetof(g.Path), 160},
		{"sizeof(cgroup_event.path)", unsafe.Sizeof(g.Path), uintptr(loader.PathBytes)},

		{"sizeof(kind_counters)", unsafe.Sizeof(kc), 24},
		{"kind_counters.lost_ringbuf", unsafe.Offsetof(kc.LostRingbuf), 8},
		{"kind_counters.lost_inflight", unsafe.Offsetof(kc.LostInflight), 16},

		// The decoder's own constants.
		{"HeaderSize", uintptr(HeaderSize), 120},
		{"ExecSize", uintptr(ExecSize), 216},
		{"OpenSize (offset of names)", uintptr(OpenSize), 264},
		{"IOURingSize", uintptr(IOURingSize), 144},
		{"NetSize", uintptr(NetSize), 560},
		{"SockStateSize", uintptr(SockStateSize), 384},
		{"DNSSize", uintptr(DNSSize), 696},
		{"ForkSize", uintptr(ForkSize), 144},
		{"ExitSize", uintptr(ExitSize), 128},
		{"CgroupSize (offset of path)", uintptr(CgroupSize), 160},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d (bpf/agenttrace.h)", tc.name, tc.got, tc.want)
		}
	}
	// Every member's alignment is at most 8, as in C on x86_64 and arm64.
	for name, align := range map[string]uintptr{
		"event_header": unsafe.Alignof(h), "exec_event": unsafe.Alignof(x), "open_event": unsafe.Alignof(o),
		"net_event": unsafe.Alignof(c), "fork_event": unsafe.Alignof(f), "exit_event": unsafe.Alignof(e),
		"sock_state_event": unsafe.Alignof(ss), "dns_event": unsafe.Alignof(d), "sock_info": unsafe.Alignof(si),
		"cgroup_event": unsafe.Alignof(g), "file_info": unsafe.Alignof(fi), "io_uring_event": unsafe.Alignof(u),
	} {
		if align != 8 {
			t.Errorf("alignof(%s) = %d, want 8", name, align)
		}
	}
}

// bytesOf copies the first n bytes of the record *v into a new slice of
// size n+extra (the regions that follow the fixed part start zeroed).
func bytesOf[T any](v *T, n, extra int) []byte {
	b := make([]byte, n+extra)
	copy(b, unsafe.Slice((*byte)(unsafe.Pointer(v)), min(n, int(unsafe.Sizeof(*v)))))
	return b
}

func header(kind uint32) loader.EventHeader {
	h := loader.EventHeader{Ktime: 11, Kseq: 22, CgroupId: 33, StartTime: 44, ExecSeq: 55, ParentStartTime: 66,
		ParentExecSeq: 77, Kind: kind, Cpu: 1, Pid: 100, Tid: 101, Ppid: 99, ParentPid: 98, Uid: 1, Gid: 2,
		Euid: 3, Egid: 4, Auid: 5, Flags: loader.FlagCompat}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&h.Comm[0])), 16), "sh")
	return h
}

// rawExec builds an exec record as emitted: fixed part, filename[4096],
// exe[4096], then argsLen bytes of argv (extra adds bytes beyond).
func rawExec(filename, exe, args string, argsLen uint32, extra int) []byte {
	r := loader.ExecEvent{Hdr: header(loader.KindExec), Ret: -2,
		Exe: loader.FileInfo{Ino: 7, Ctime: 1e18, Dev: 8, Mode: 0o100755, Uid: 9, Gid: 10, MntId: 11, Magic: 12,
			Flags: loader.FilePresent | loader.FileDeleted | loader.FileWriteDenied, PathLen: uint32(len(exe))},
		Dirfd: -100, AtFlags: 0x1000, Syscall: loader.SyscallExecveat, FilenameLen: uint32(len(filename)),
		Argc: 2, ArgsLen: argsLen, ArgsSize: 99}
	b := bytesOf(&r, ExecSize, 2*pathBytes+len(args)+extra)
	copy(b[ExecSize:], filename)
	copy(b[ExecSize+pathBytes:], exe)
	copy(b[ExecSize+2*pathBytes:], args)
	return b
}

// rawOpen builds an open record as emitted: the fixed part, the path and
// its NUL; pathLen overrides the length field.
func rawOpen(path string, pathLen uint32) []byte {
	r := loader.OpenEvent{Hdr: header(loader.KindOpen), Ret: 3, Flags: 0o2000000, Mode: 0o644, Resolve: 8, Dirfd: 5,
		Syscall: loader.SyscallOpenat2, PathLen: pathLen}
	b := bytesOf(&r, OpenSize, len(path)+1)
	copy(b[OpenSize:], path)
	return b
}

// rawOpenFile builds an open record with a resolved file: the fixed part,
// the argument and its NUL, the file's path and its NUL.
func rawOpenFile(sc uint32, arg, filePath string, fi loader.FileInfo, oflags uint32) []byte {
	r := loader.OpenEvent{Hdr: header(loader.KindOpen), Ret: 3, Dirfd: -100, Syscall: sc, PathLen: uint32(len(arg)), File: fi,
		Arg: -16, Oflags: oflags, UserData: 13, SrcPid: 17, SrcStartTime: 14, SrcExecSeq: 15, SqeFlags: 18}
	b := bytesOf(&r, OpenSize, len(arg)+1+len(filePath)+1)
	copy(b[OpenSize:], arg)
	copy(b[OpenSize+len(arg)+1:], filePath)
	return b
}

// rawOpenSocket is a pidfd_getfd of the socket testSock (its path, of
// sockfs, is empty) with the source's exe x.
func rawOpenSocket(exe string, localLen uint32) []byte {
	b := rawOpenFile(loader.SyscallPidfdGetfd, exe, "", loader.FileInfo{Flags: loader.FilePresent | loader.FileFileless, Ino: 77,
		Mode: 0o140777, Magic: 0x534F434B}, loader.OpenSource|loader.OpenSocket)
	off := (len(b) + 7) &^ 7 // OpenSize is a multiple of 8
	si := testSock()
	si.Local.Len = localLen
	b = append(b, make([]byte, off-len(b))...)
	return append(b, unsafe.Slice((*byte)(unsafe.Pointer(&si)), unsafe.Sizeof(si))...)
}

func rawIOURing() []byte {
	r := loader.IOURingEvent{Hdr: header(loader.KindIOURing), Ret: 4, Syscall: loader.SyscallIOURingSetup, Entries: 8,
		SetupFlags: 8, CqEntries: 16}
	return bytesOf(&r, IOURingSize, 0)
}

func rawConnect(addr []byte, addrLen uint32) []byte {
	r := loader.NetEvent{Hdr: header(loader.KindConnect), Ret: -111, Fd: 3, Syscall: loader.SyscallConnect, Addrlen: 16, AddrLen: addrLen}
	copy(r.Addr[:], addr)
	return bytesOf(&r, NetSize, 0)
}

// testSock is a TCP socket 127.0.0.1:40000 -> 127.0.0.1:443.
func testSock() loader.SockInfo {
	si := loader.SockInfo{Cookie: 4096, Family: 2, Type: 1, Protocol: 6, State: 1}
	si.Local.Len, si.Remote.Len = 16, 16
	copy(si.Local.Name[:], []byte{2, 0, 0x9c, 0x40, 127, 0, 0, 1})
	copy(si.Remote.Name[:], []byte{2, 0, 0x01, 0xbb, 127, 0, 0, 1})
	return si
}

// rawSend is a sendmmsg message record with a kernel destination and a socket.
func rawSend(localLen uint32) []byte {
	r := loader.NetEvent{Hdr: header(loader.KindSend), Ret: 5, UserData: 9, Size: 5, Fd: 4, Syscall: loader.SyscallSendmmsg, Flags: 0x4000,
		MsgIndex: 2, Addrlen: 16, AddrLen: 16, Nflags: loader.NetAddrKernel | loader.NetMsgIndex | loader.NetSize | loader.NetSock, Sock: testSock()}
	copy(r.Addr[:], []byte{2, 0, 0, 53, 10, 0, 0, 1})
	r.Sock.Local.Len = localLen
	return bytesOf(&r, NetSize, 0)
}

func rawSockState(remoteLen uint32) []byte {
	r := loader.SockStateEvent{Hdr: header(loader.KindSockState), Oldstate: 2, Newstate: 7, Error: 111, Sock: testSock()}
	r.Sock.Remote.Len = remoteLen
	return bytesOf(&r, SockStateSize, 0)
}

// dnsQuery is a query for example.test A.
var dnsQuery = []byte("\x41\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x04test\x00\x00\x01\x00\x01")

func rawDNS(family uint16, payload []byte, payloadLen uint32) []byte {
	r := loader.DNSEvent{Hdr: header(loader.KindDNS), Cookie: 77, Direction: loader.DNSEgress, Protocol: 17, PayloadLen: payloadLen,
		CapLen: uint32(len(payload)), Family: family, Sport: 40000, Dport: 53}
	copy(r.Saddr[:], []byte{10, 0, 0, 2})
	copy(r.Daddr[:], []byte{10, 0, 0, 1})
	copy(r.Payload[:], payload)
	return bytesOf(&r, DNSSize, 0)
}

func rawFork() []byte {
	r := loader.ForkEvent{Hdr: header(loader.KindFork), ChildStartTime: 123, ChildCgroupId: 789, ChildPid: 456}
	return bytesOf(&r, ForkSize, 0)
}

func rawExit() []byte {
	r := loader.ExitEvent{Hdr: header(loader.KindExit), ExitCode: 0x8b}
	return bytesOf(&r, ExitSize, 0)
}

// rawCgroup builds a cgroup record as emitted: the whole struct (the
// kernel reserves sizeof(struct cgroup_event)), the path at its place;
// pathLen overrides the length field.
func rawCgroup(op uint32, path string, pathLen, cflags uint32) []byte {
	r := loader.CgroupEvent{Hdr: header(loader.KindCgroup), Id: 4242, ParentId: 17, Op: op, Level: 2, Patterns: 0b101,
		Cflags: cflags, PathLen: pathLen}
	b := bytesOf(&r, int(unsafe.Sizeof(r)), 0)
	copy(b[CgroupSize:], path)
	return b
}

// wantProc is the proc of header(kind) as the decoder delivers it.
var wantProc = record.Proc{
	Pid: 100, Tid: 101, Ppid: 99, Uid: 1, Gid: 2, Euid: 3, Egid: 4, Auid: 5, Comm: "sh", CgroupID: 33,
	ExecID: record.ExecID{Pid: 100, Start: 44, Seq: 55}, ParentExecID: record.ExecID{Pid: 98, Start: 66, Seq: 77},
	ABI: "i386",
}

// within reports whether s lies inside raw (an empty s may be anywhere).
func within(raw []byte, s string) bool {
	if len(s) == 0 {
		return true
	}
	if len(raw) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(raw))
}

func TestDecodeValid(t *testing.T) {
	t.Run("exec", func(t *testing.T) {
		raw := rawExec("/bin/x", "/usr/bin/x", "a\x00bc\x00", 5, 0)
		var ev record.Event
		if err := Decode(raw, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Kind != loader.KindExec || ev.Ktime != 11 || ev.Kseq != 22 || ev.CPU != 1 || ev.Proc != wantProc {
			t.Errorf("event = kind %d ktime %d kseq %d cpu %d proc %+v", ev.Kind, ev.Ktime, ev.Kseq, ev.CPU, ev.Proc)
		}
		want := record.Exec{Ret: -2, Syscall: "execveat", Dirfd: -100, AtFlags: 0x1000, Filename: "/bin/x", Exe: "/usr/bin/x",
			ExeFile: record.ExeFile{Ino: 7, Dev: 8, Mode: 0o100755, UID: 9, GID: 10, Ctime: 1e18, Deleted: true, WriteDenied: true},
			Argc:    2, Args: "a\x00bc\x00", ArgsSize: 99}
		if ev.Exec != want {
			t.Errorf("exec = %+v\nwant %+v", ev.Exec, want)
		}
		for name, s := range map[string]string{"Filename": ev.Exec.Filename, "Exe": ev.Exec.Exe, "Args": ev.Exec.Args, "Comm": ev.Proc.Comm} {
			if !within(raw, s) {
				t.Errorf("%s does not alias the record", name)
			}
		}
		if b := ev.Body(); b != &ev.Exec {
			t.Errorf("Body() = %T, want the exec", b)
		}
	})
	t.Run("exec with bytes after argv", func(t *testing.T) {
		raw := rawExec("f", "", "a\x00", 2, 5)
		var ev record.Event
		if err := Decode(raw, &ev); err != nil || ev.Exec.Args != "a\x00" || len(ev.Exec.Exe) != 0 {
			t.Errorf("Decode = %v, args %q, exe %q", err, ev.Exec.Args, ev.Exec.Exe)
		}
	})
	t.Run("exec longest names", func(t *testing.T) {
		long := string(bytes.Repeat([]byte("n"), pathBytes-1))
		var ev record.Event
		if err := Decode(rawExec(long, long, "", 0, 0), &ev); err != nil || len(ev.Exec.Filename) != pathBytes-1 || len(ev.Exec.Exe) != pathBytes-1 {
			t.Errorf("Decode = %v, %d, %d", err, len(ev.Exec.Filename), len(ev.Exec.Exe))
		}
	})
	t.Run("exec flags", func(t *testing.T) {
		raw := rawExec("/bin/x", "/usr/bin/x", "a", 1, 0)
		binary.NativeEndian.PutUint32(raw[100:], loader.FlagNoEnter|loader.FlagPathTruncated|loader.FlagPathFault|
			loader.FlagExeTruncated|loader.FlagArgsTruncated|loader.FlagArgsFault|loader.FlagArgvEmpty)
		var ev record.Event
		if err := Decode(raw, &ev); err != nil {
			t.Fatal(err)
		}
		x := ev.Exec
		if !x.NoEnter || !x.FilenameTruncated || !x.FilenameUnreadable || !x.ExeTruncated || !x.ArgsTruncated || !x.ArgsUnreadable || !x.ArgvEmpty || ev.Proc.ABI != "" {
			t.Errorf("exec = %+v, abi %q", x, ev.Proc.ABI)
		}
		binary.NativeEndian.PutUint32(raw[100:], loader.FlagX32)
		if err := Decode(raw, &ev); err != nil || ev.Proc.ABI != "x32" || ev.Exec.NoEnter || ev.Exec.ArgsTruncated {
			t.Errorf("x32: %v, abi %q, exec %+v", err, ev.Proc.ABI, ev.Exec)
		}
	})
	t.Run("exec past the point of no return", func(t *testing.T) {
		raw := rawExec("/bin/x", "/usr/bin/x", "", 0, 0)
		binary.NativeEndian.PutUint32(raw[100:], loader.FlagPastNoReturn|loader.FlagArgsFault)
		var ev record.Event
		if err := Decode(raw, &ev); err != nil {
			t.Fatal(err)
		}
		if x := ev.Exec; !x.PastNoReturn || !x.ArgsUnreadable || x.Ret != -2 || x.Exe != "/usr/bin/x" {
			t.Errorf("exec = %+v", x)
		}
		// Only a failure can be past the point of no return.
		(*loader.ExecEvent)(unsafe.Pointer(&raw[0])).Ret = 0
		if err := Decode(raw, &ev); err == nil {
			t.Error("Decode accepted a successful exec past the point of no return")
		}
	})
	t.Run("open", func(t *testing.T) {
		raw := rawOpen("/etc/hostname", 13)
		var ev record.Event
		if err := Decode(raw, &ev); err != nil {
			t.Fatal(err)
		}
		want := record.Open{Ret: 3, Syscall: "openat2", Dirfd: 5, Flags: 0o2000000, Mode: 0o644, Resolve: 8, Path: "/etc/hostname"}
		if ev.Open != want || ev.Proc != wantProc || ev.Kind != loader.KindOpen {
			t.Errorf("open = %+v, proc %+v", ev.Open, ev.Proc)
		}
		if !within(raw, ev.Open.Path) {
			t.Error("Path does not alias the record")
		}
		if len(raw) != 264+13+1 {
			t.Errorf("test record of %d bytes", len(raw))
		}
	})
	t.Run("open with its file", func(t *testing.T) {
		fi := loader.FileInfo{Ino: 1, Ctime: 2, Dev: 3, Mode: 0o100600, MntId: 4, Magic: 5,
			Flags: loader.FilePresent | loader.FileInNamespace | loader.FileDeleted | loader.FilePathTruncated, PathLen: 16, NsLen: 12, NsSeen: 1}
		raw := rawOpenFile(loader.SyscallOpenat, "target.txt", "/srv/target.txt\xff", fi, 0)
		var ev record.Event
		if err := Decode(raw, &ev); err != nil {
			t.Fatal(err)
		}
		want := record.Open{Ret: 3, Syscall: "openat", Dirfd: -100, Path: "target.txt", UserData: 13, SqeFlags: 18,
			File: record.File{Present: true, Path: "/srv/target.txt\xff", PathTruncated: true, Dev: 3, Ino: 1, Mode: 0o100600, MntID: 4,
				Deleted: true, HasPathInNS: true, PathInNS: "/target.txt\xff", Magic: 5}}
		if ev.Open != want {
			t.Errorf("open = %+v\nwant %+v", ev.Open, want)
		}
		if !within(raw, ev.Open.File.Path) || !within(raw, ev.Open.File.PathInNS) {
			t.Error("the file's path does not alias the record")
		}
	})
	t.Run("open of the task's root, and a failure's dir", func(t *testing.T) {
		fi := loader.FileInfo{Flags: loader.FilePresent | loader.FileInNamespace, PathLen: 4, NsSeen: 1}
		var ev record.Event
		if err := Decode(rawOpenFile(loader.SyscallOpen, "/", "/srv", fi, 0), &ev); err != nil ||
			!ev.Open.File.HasPathInNS || ev.Open.File.PathInNS != "/" || ev.Open.Dir.Present {
			t.Errorf("Decode = %v, %+v", err, ev.Open)
		}
		fi.Flags = loader.FilePresent
		if err := Decode(rawOpenFile(loader.SyscallOpen, "x", "/srv", fi, loader.OpenDir), &ev); err != nil ||
			ev.Open.File.Present || ev.Open.Dir != (record.File{Present: true, Path: "/srv"}) {
			t.Errorf("Decode = %v, %+v", err, ev.Open)
		}
	})
	t.Run("open's other syscalls", func(t *testing.T) {
		fi := loader.FileInfo{Flags: loader.FilePresent, PathLen: 2}
		var ev record.Event
		if err := Decode(rawOpenFile(loader.SyscallPidfdGetfd, "/usr/bin/x", "/a", fi, loader.OpenSource|loader.OpenSourceExeTruncated), &ev); err != nil ||
			ev.Open.Source != (record.Source{Known: true, ExecID: record.ExecID{Pid: 17, Start: 14, Seq: 15}, Exe: "/usr/bin/x", ExeTruncated: true}) ||
			ev.Open.TargetFd != -16 || ev.Open.Path != "" {
			t.Errorf("pidfd_getfd: %v, %+v", err, ev.Open)
		}
		if err := Decode(rawOpenFile(loader.SyscallOpenByHandleAt, "\x01\x02", "/a", fi, 0), &ev); err != nil ||
			ev.Open.Handle != "\x01\x02" || ev.Open.HandleType != -16 || ev.Open.Path != "" {
			t.Errorf("open_by_handle_at: %v, %+v", err, ev.Open)
		}
		if err := Decode(rawOpenFile(loader.SyscallIOURingOpenat, "b", "/a", fi, loader.OpenFileSlot|loader.OpenUserDataShared), &ev); err != nil ||
			ev.Open.Syscall != "io_uring_openat" || !ev.Open.InSlot || ev.Open.FileSlot != -16 || !ev.Open.UserDataShared || ev.Open.UserData != 13 {
			t.Errorf("io_uring_openat: %v, %+v", err, ev.Open)
		}
		for _, exe := range []string{"/x", "/usr/bin/x"} { // the socket 8-aligned after 4 and 12 bytes
			if err := Decode(rawOpenSocket(exe, 16), &ev); err != nil || !ev.Open.File.HasSocket ||
				ev.Open.File.Socket.Cookie != 4096 || ev.Open.File.Socket.Remote.Addr.String() != "127.0.0.1:443" ||
				ev.Open.File.Socket.Local.Addr.String() != "127.0.0.1:40000" || ev.Open.Source.Exe != exe {
				t.Errorf("pidfd_getfd of a socket: %v, %+v", err, ev.Open)
			}
		}
		raw := rawOpenFile(loader.SyscallIOURingOpenat, "b", "", loader.FileInfo{}, loader.OpenNoCompletion)
		if err := Decode(raw, &ev); err != nil || !ev.Open.CQESkipped || ev.Open.File.Present {
			t.Errorf("io_uring_openat without a completion: %v, %+v", err, ev.Open)
		}
	})
	t.Run("open longest path and file path", func(t *testing.T) {
		long := string(bytes.Repeat([]byte("p"), pathBytes-1))
		raw := rawOpenFile(loader.SyscallOpenat, long, long, loader.FileInfo{Flags: loader.FilePresent, PathLen: uint32(pathBytes - 1)}, 0)
		var ev record.Event
		if err := Decode(raw, &ev); err != nil || len(ev.Open.Path) != pathBytes-1 || len(ev.Open.File.Path) != pathBytes-1 {
			t.Errorf("Decode = %v, %d, %d", err, len(ev.Open.Path), len(ev.Open.File.Path))
		}
		if len(raw) != 264+2*pathBytes {
			t.Errorf("test record of %d bytes, want the fixed part and two whole paths", len(raw))
		}
	})
	t.Run("io_uring", func(t *testing.T) {
		var ev record.Event
		if err := Decode(rawIOURing(), &ev); err != nil ||
			ev.IOURing != (record.IOURing{Ret: 4, Syscall: "io_uring_setup", Entries: 8, Flags: 8, CqEntries: 16}) || ev.Body() != &ev.IOURing {
			t.Errorf("Decode = %v, %+v", err, ev.IOURing)
		}
	})
	t.Run("open flags", func(t *testing.T) {
		raw := rawOpen("/etc", 4)
		binary.NativeEndian.PutUint32(raw[100:], loader.FlagPathTruncated|loader.FlagPathFault)
		var ev record.Event
		if err := Decode(raw, &ev); err != nil || !ev.Open.PathTruncated || !ev.Open.PathUnreadable {
			t.Errorf("Decode = %v, %+v", err, ev.Open)
		}
	})
	t.Run("open without its NUL", func(t *testing.T) {
		raw := rawOpen("/etc/hostname", 13)
		var ev record.Event
		if err := Decode(raw[:len(raw)-1], &ev); err != nil || ev.Open.Path != "/etc/hostname" {
			t.Errorf("Decode = %v, %q", err, ev.Open.Path)
		}
	})
	t.Run("open longest path", func(t *testing.T) {
		long := string(bytes.Repeat([]byte("p"), pathBytes-1))
		var ev record.Event
		if err := Decode(rawOpen(long, uint32(pathBytes-1)), &ev); err != nil || len(ev.Open.Path) != pathBytes-1 {
			t.Errorf("Decode = %v, %d", err, len(ev.Open.Path))
		}
	})
	t.Run("connect", func(t *testing.T) {
		addr := binary.NativeEndian.AppendUint16(nil, 2)
		addr = append(addr, 0x01, 0xbb, 10, 0, 0, 1)
		var ev record.Event
		if err := Decode(rawConnect(addr, 8), &ev); err != nil {
			t.Fatal(err)
		}
		// 8 bytes: shorter than a sockaddr_in, so the family alone.
		c := ev.Connect
		if c.Ret != -111 || c.Syscall != "connect" || c.Fd != 3 || c.Addrlen != 16 || !c.Addr.HasFamily || c.Addr.Family != 2 || c.Addr.Addr.IsValid() {
			t.Errorf("connect = %+v", c)
		}
		addr = append(addr, make([]byte, 8)...)
		if err := Decode(rawConnect(addr, 16), &ev); err != nil || ev.Connect.Addr.Addr != netip.MustParseAddrPort("10.0.0.1:443") {
			t.Errorf("Decode = %v, addr %v", err, ev.Connect.Addr.Addr)
		}
	})
	t.Run("connect unix aliases the record", func(t *testing.T) {
		addr := append(binary.NativeEndian.AppendUint16(nil, 1), "/run/x.sock\x00junk"...)
		raw := rawConnect(addr, uint32(len(addr)))
		binary.NativeEndian.PutUint32(raw[100:], loader.FlagAddrFault)
		var ev record.Event
		if err := Decode(raw, &ev); err != nil || ev.Connect.Addr.Unix != record.UnixPath || ev.Connect.Addr.UnixName != "/run/x.sock" || !ev.Connect.AddrUnreadable {
			t.Fatalf("Decode = %v, %+v", err, ev.Connect)
		}
		if !within(raw, ev.Connect.Addr.UnixName) {
			t.Error("UnixName does not alias the record")
		}
	})
	t.Run("connect full address", func(t *testing.T) {
		var ev record.Event
		if err := Decode(rawConnect(bytes.Repeat([]byte{1}, 128), 128), &ev); err != nil || !ev.Connect.Addr.HasFamily {
			t.Errorf("Decode = %v, %+v", err, ev.Connect.Addr)
		}
	})
	t.Run("send with socket", func(t *testing.T) {
		var ev record.Event
		if err := Decode(rawSend(16), &ev); err != nil {
			t.Fatal(err)
		}
		n := ev.Send
		if n.Ret != 5 || !n.HasSize || n.Size != 5 || n.Fd != 4 || n.Syscall != "sendmmsg" || n.Flags != 0x4000 || !n.HasMsgIndex || n.MsgIndex != 2 ||
			n.Dest.Addr != netip.MustParseAddrPort("10.0.0.1:53") || n.AddrSource != record.AddrKernel || n.HasIOUring || !n.HasSocket {
			t.Errorf("send = %+v", n)
		}
		s := n.Socket
		if s.Cookie != 4096 || s.Family != 2 || s.SockType != 1 || s.Protocol != 6 || s.State != 1 ||
			s.Local.Addr != netip.MustParseAddrPort("127.0.0.1:40000") || s.Remote.Addr != netip.MustParseAddrPort("127.0.0.1:443") {
			t.Errorf("socket = %+v", s)
		}
	})
	t.Run("send without socket ignores its bytes", func(t *testing.T) {
		raw := rawSend(200)
		binary.NativeEndian.PutUint32(raw[172:], loader.NetAddrKernel)
		var ev record.Event
		if err := Decode(raw, &ev); err != nil || ev.Send.HasSocket || ev.Send.HasMsgIndex {
			t.Errorf("Decode = %v, %+v", err, ev.Send)
		}
	})
	t.Run("sock_state", func(t *testing.T) {
		var ev record.Event
		if err := Decode(rawSockState(16), &ev); err != nil {
			t.Fatal(err)
		}
		st := ev.SockState
		if st.From != 2 || st.To != 7 || st.Error != "ECONNREFUSED" || st.Cookie != 4096 || st.Local.Addr.Port() != 40000 || st.Remote.Addr.Port() != 443 {
			t.Errorf("sock_state = %+v", st)
		}
	})
	t.Run("dns", func(t *testing.T) {
		var ev record.Event
		if err := Decode(rawDNS(2, dnsQuery, uint32(len(dnsQuery))), &ev); err != nil {
			t.Fatal(err)
		}
		d := &ev.DNS
		if d.Cookie != 77 || d.Response || d.TCP || !d.HasHeader || d.Truncated || d.Malformed != "" ||
			d.Client != netip.MustParseAddrPort("10.0.0.2:40000") || d.Server != netip.MustParseAddrPort("10.0.0.1:53") ||
			d.Message.ID != 0x4100 || len(d.Message.Questions) != 1 || d.Message.String(d.Message.Questions[0].Name) != "example.test" {
			t.Errorf("dns = %+v", d)
		}
		if err := Decode(rawDNS(10, nil, 600), &ev); err != nil || !ev.DNS.Truncated || ev.DNS.HasHeader {
			t.Errorf("dns IPv6 = %v, %+v", err, ev.DNS)
		}
	})
	t.Run("connect without an address", func(t *testing.T) {
		var ev record.Event
		if err := Decode(rawConnect(nil, 0), &ev); err != nil || ev.Connect.Addr != (record.Sockaddr{}) {
			t.Errorf("Decode = %v, %+v", err, ev.Connect.Addr)
		}
	})
	t.Run("fork", func(t *testing.T) {
		var ev record.Event
		// The child runs the parent's image: its exec counter is the parent's.
		want := record.Fork{ChildPid: 456, ChildExecID: record.ExecID{Pid: 456, Start: 123, Seq: 55}, ChildCgroupID: 789}
		if err := Decode(rawFork(), &ev); err != nil || ev.Fork != want || ev.Kind != loader.KindFork {
			t.Errorf("Decode = %v, %+v", err, ev.Fork)
		}
	})
	t.Run("exit", func(t *testing.T) {
		var ev record.Event
		if err := Decode(rawExit(), &ev); err != nil || ev.Exit.Status != 0x8b || ev.Proc.Comm != "sh" {
			t.Errorf("Decode = %v, %+v, comm %q", err, ev.Exit, ev.Proc.Comm)
		}
	})
	t.Run("cgroup", func(t *testing.T) {
		raw := rawCgroup(loader.CgroupMkdir, "/agents/a", 9, loader.CgroupMatched)
		var ev record.Event
		if err := Decode(raw, &ev); err != nil {
			t.Fatal(err)
		}
		c := ev.Cgroup
		if ev.Kind != loader.KindCgroup || c.Op != "mkdir" || c.ID != 4242 || c.ParentID != 17 || c.Level != 2 || c.Path != "/agents/a" ||
			!c.Matched || c.Patterns != 0b101 || c.StateFull || c.PathTruncated || c.Targets != nil {
			t.Errorf("cgroup = %+v", c)
		}
		if !within(raw, c.Path) {
			t.Error("Path does not alias the record")
		}
		raw = rawCgroup(loader.CgroupRmdir, "/x", 2, loader.CgroupStateFull|loader.CgroupPathTruncated)
		if err := Decode(raw, &ev); err != nil || ev.Cgroup.Op != "rmdir" || ev.Cgroup.Matched || !ev.Cgroup.StateFull || !ev.Cgroup.PathTruncated {
			t.Errorf("Decode = %v, %+v", err, ev.Cgroup)
		}
	})
	t.Run("comm", func(t *testing.T) {
		raw := rawExit()
		comm := raw[104:120]
		var ev record.Event
		copy(comm, "0123456789abcdef")
		if err := Decode(raw, &ev); err != nil || ev.Proc.Comm != "0123456789abcdef" {
			t.Errorf("comm without NUL: %v, %q", err, ev.Proc.Comm)
		}
		copy(comm, "a\x00b")
		if err := Decode(raw, &ev); err != nil || ev.Proc.Comm != "a" {
			t.Errorf("comm: %v, %q", err, ev.Proc.Comm)
		}
		clear(comm)
		if err := Decode(raw, &ev); err != nil || ev.Proc.Comm != "" {
			t.Errorf("empty comm: %v, %q", err, ev.Proc.Comm)
		}
	})
}

func TestDecodeMalformed(t *testing.T) {
	withKind := func(raw []byte, kind uint32) []byte {
		binary.NativeEndian.PutUint32(raw[56:], kind)
		return raw
	}
	setU32 := func(raw []byte, off int, v uint32) []byte {
		binary.NativeEndian.PutUint32(raw[off:], v)
		return raw
	}
	exec := func() []byte { return rawExec("/bin/x", "/usr/bin/x", "a\x00b\x00", 4, 0) }
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"empty", nil},
		{"shorter than a header", rawExit()[:HeaderSize-1]},
		{"header only, exit", rawExit()[:HeaderSize]},
		{"kind 0", withKind(rawExit(), 0)},
		{"kind KIND_MAX", withKind(rawExit(), loader.KindMax)},
		{"kind 2^32-1", withKind(rawExit(), 1<<32-1)},
		{"exit short by one", rawExit()[:ExitSize-1]},
		{"fork short by one", rawFork()[:ForkSize-1]},
		{"exec fixed part only", exec()[:ExecSize]},
		{"exec without the exe region", exec()[:ExecSize+pathBytes]},
		{"exec argv cut", exec()[:ExecSize+2*pathBytes+3]},
		{"exec filename_len 4096", setU32(exec(), 196, uint32(pathBytes))},
		{"exec exe path_len 4096", setU32(exec(), 128+44, uint32(pathBytes))},
		{"exec filename_len 2^32-1", setU32(exec(), 196, 1<<32-1)},
		{"exec args_len beyond the record", setU32(exec(), 204, 5)},
		{"exec args_len 2^32-1", setU32(exec(), 204, 1<<32-1)},
		{"exec path_in_ns longer than the path", setU32(setU32(setU32(exec(), 128+40, loader.FilePresent|loader.FileInNamespace), 128+52, 1), 128+48, 11)},
		{"open short by one", rawOpen("", 0)[:OpenSize-1]},
		{"open path_len beyond the record", rawOpen("/etc", 6)},
		{"open path_len 4096", setU32(append(rawOpen("x", 1), make([]byte, pathBytes)...), 240, uint32(pathBytes))},
		{"open path_len 2^32-1", rawOpen("/etc", 1<<32-1)},
		{"open file path beyond the record", rawOpenFile(loader.SyscallOpen, "x", "/a", loader.FileInfo{Flags: loader.FilePresent, PathLen: 4}, 0)},
		{"open file without the argument's NUL", rawOpenFile(loader.SyscallOpen, "x", "", loader.FileInfo{Flags: loader.FilePresent}, 0)[:OpenSize+1]},
		{"open file path_in_ns / of an empty path", rawOpenFile(loader.SyscallOpen, "x", "",
			loader.FileInfo{Flags: loader.FilePresent | loader.FileInNamespace, NsSeen: 1}, 0)},
		{"open socket short by one", func() []byte { b := rawOpenSocket("/x", 16); return b[:len(b)-1] }()},
		{"open socket local name 113", rawOpenSocket("/x", 113)},
		{"open file path_len 4096", rawOpenFile(loader.SyscallOpen, "x", string(make([]byte, pathBytes)), loader.FileInfo{Flags: loader.FilePresent, PathLen: uint32(pathBytes)}, 0)},
		{"open file path_in_ns longer than the path", rawOpenFile(loader.SyscallOpen, "x", "/a",
			loader.FileInfo{Flags: loader.FilePresent | loader.FileInNamespace, PathLen: 2, NsLen: 3, NsSeen: 1}, 0)},
		{"io_uring short by one", rawIOURing()[:IOURingSize-1]},
		{"connect short by one", rawConnect(nil, 0)[:NetSize-1]},
		{"send local name 113", rawSend(113)},
		{"send local name 2^32-1", rawSend(1<<32 - 1)},
		{"send short by one", rawSend(16)[:NetSize-1]},
		{"sock_state remote name 113", rawSockState(113)},
		{"sock_state short by one", rawSockState(16)[:SockStateSize-1]},
		{"dns short by one", rawDNS(2, nil, 0)[:DNSSize-1]},
		{"dns cap_len over payload_len", rawDNS(2, []byte("ab"), 1)},
		{"dns cap_len 513", setU32(rawDNS(2, nil, 600), 140, 513)},
		{"dns family 1", rawDNS(1, nil, 0)},
		{"connect addr_len 129", rawConnect(nil, 129)},
		{"connect addr_len 2^32-1", rawConnect(nil, 1<<32-1)},
		{"cgroup short by one", rawCgroup(loader.CgroupMkdir, "", 0, 0)[:CgroupSize-1]},
		// Shorter than the struct: with -race (checkptr) this finds the
		// decoder converting it to *loader.CgroupEvent.
		{"cgroup path_len beyond the record", bytes.Clone(rawCgroup(loader.CgroupMkdir, "/a", 4, 0)[:CgroupSize+3])},
		{"cgroup path_len 4096", rawCgroup(loader.CgroupMkdir, "/", uint32(pathBytes), 0)},
		{"cgroup path_len 2^32-1", rawCgroup(loader.CgroupMkdir, "/a", 1<<32-1, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev record.Event
			err := Decode(tc.raw, &ev)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode(%d bytes) = %v, want ErrMalformed", len(tc.raw), err)
			}
		})
	}
}

// TestKindsMatchHeader: package record repeats the kernel's record kinds
// (it must not import the loader); they must be the header's.
func TestKindsMatchHeader(t *testing.T) {
	for _, tc := range []struct {
		name           string
		record, kernel uint32
	}{
		{"exec", record.KindExec, loader.KindExec},
		{"open", record.KindOpen, loader.KindOpen},
		{"connect", record.KindConnect, loader.KindConnect},
		{"fork", record.KindFork, loader.KindFork},
		{"exit", record.KindExit, loader.KindExit},
		{"cgroup", record.KindCgroup, loader.KindCgroup},
		{"send", record.KindSend, loader.KindSend},
		{"bind", record.KindBind, loader.KindBind},
		{"listen", record.KindListen, loader.KindListen},
		{"accept", record.KindAccept, loader.KindAccept},
		{"sock_state", record.KindSockState, loader.KindSockState},
		{"dns", record.KindDNS, loader.KindDNS},
		{"io_uring", record.KindIOURing, loader.KindIOURing},
		{"cgroup_move", record.KindCgroupMove, loader.KindCgroupMove},
		{"proc_access", record.KindProcAccess, loader.KindProcAccess},
		{"file_op", record.KindFileOp, loader.KindFileOp},
		{"mount", record.KindMount, loader.KindMount},
		{"namespace", record.KindNamespace, loader.KindNamespace},
		{"bpf", record.KindBPF, loader.KindBPF},
		{"max", record.KindMax, loader.KindMax},
	} {
		if tc.record != tc.kernel {
			t.Errorf("record.Kind %s = %d, bpf/agenttrace.h says %d", tc.name, tc.record, tc.kernel)
		}
		if tc.name != "max" && record.KindName(tc.kernel) != tc.name {
			t.Errorf("record.KindName(%d) = %q, want %q", tc.kernel, record.KindName(tc.kernel), tc.name)
		}
	}
}

func TestSyscallName(t *testing.T) {
	for id, want := range map[uint32]string{
		loader.SyscallUnknown: "", loader.SyscallExecve: "execve", loader.SyscallExecveat: "execveat",
		loader.SyscallOpen: "open", loader.SyscallCreat: "creat", loader.SyscallOpenat: "openat",
		loader.SyscallOpenat2: "openat2", loader.SyscallConnect: "connect", loader.SyscallSocketcall: "socketcall",
		loader.SyscallSendmmsg: "sendmmsg", loader.SyscallAccept4: "accept4", loader.SyscallIOUringSendmsgZC: "io_uring_sendmsg_zc",
		loader.SyscallOpenByHandleAt: "open_by_handle_at", loader.SyscallOpenTree: "open_tree", loader.SyscallPidfdGetfd: "pidfd_getfd",
		loader.SyscallMemfdCreate: "memfd_create", loader.SyscallIOURingSetup: "io_uring_setup", loader.SyscallIOURingOpenat: "io_uring_openat",
		loader.SyscallIOURingOpenat2: "io_uring_openat2", loader.SyscallOpenTreeAttr: "open_tree_attr",
		12: "", 99: "", 1<<32 - 1: "",
	} {
		if got := syscallName(id); got != want {
			t.Errorf("syscallName(%d) = %q, want %q", id, got, want)
		}
	}
}

// TestDecodeAllocs: decoding is free of allocations.
func TestDecodeAllocs(t *testing.T) {
	raws := [][]byte{rawExec("/bin/x", "/usr/bin/x", "a\x00b\x00", 4, 0), rawOpen("/etc/hostname", 13), rawIOURing(),
		rawOpenFile(loader.SyscallOpenat, "x", "/srv/x", loader.FileInfo{Flags: loader.FilePresent | loader.FileInNamespace, PathLen: 6, NsLen: 2, NsSeen: 1}, 0),
		rawConnect(append(binary.NativeEndian.AppendUint16(nil, 1), "/run/x.sock"...), 13), rawFork(), rawExit(),
		rawCgroup(loader.CgroupMkdir, "/a", 2, 0), rawSend(16), rawSockState(16), rawDNS(2, dnsQuery, uint32(len(dnsQuery)))}
	var ev record.Event
	allocs := testing.AllocsPerRun(100, func() {
		for _, raw := range raws {
			if err := Decode(raw, &ev); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("Decode: %v allocs per run, want 0", allocs)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(rawExec("/bin/x", "/usr/bin/x", "a\x00b\x00", 4, 0))
	f.Add(rawOpen("/etc/hostname", 13))
	f.Add(rawOpenFile(loader.SyscallOpenat, "target.txt", "/home/target.txt",
		loader.FileInfo{Flags: loader.FilePresent | loader.FileInNamespace, PathLen: 16, NsLen: 11, NsSeen: 1}, 0))
	f.Add(rawOpenFile(loader.SyscallPidfdGetfd, "/usr/bin/x", "/a", loader.FileInfo{Flags: loader.FilePresent, PathLen: 2}, loader.OpenSource|loader.OpenDir))
	f.Add(rawOpenSocket("/usr/bin/x", 16))
	f.Add(rawIOURing())
	f.Add(rawConnect([]byte{2, 0, 1, 187, 10, 0, 0, 1}, 8))
	f.Add(rawFork())
	f.Add(rawExit())
	f.Add(rawCgroup(loader.CgroupMkdir, "/a", 2, 0))
	f.Add(rawSend(16))
	f.Add(rawSockState(16))
	f.Add(rawDNS(2, dnsQuery, uint32(len(dnsQuery))))
	f.Add(rawMove("/x/y", 4, CgroupMoveSize+5))
	f.Add(rawMove("", 0, CgroupMoveSize))
	f.Add(rawAccess("/usr/bin/victim", 15))
	f.Add(rawFileOp("a", "bb", "/d", "/nd"))
	f.Add(rawFileOp("", "", "/file", ""))
	f.Add(rawMount())
	f.Add(rawNamespace())
	f.Add(rawBPF())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev record.Event
		if err := Decode(raw, &ev); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(raw) < HeaderSize {
			t.Fatalf("Decode accepted %d bytes", len(raw))
		}
		strs := map[string]string{}
		switch ev.Kind {
		case loader.KindExec:
			strs = map[string]string{"Filename": ev.Exec.Filename, "Exe": ev.Exec.Exe, "Args": ev.Exec.Args}
			ev.Exec.Argv()
		case loader.KindOpen:
			o := &ev.Open
			strs = map[string]string{"Path": o.Path, "Handle": o.Handle, "Source.Exe": o.Source.Exe, "File.Path": o.File.Path,
				"File.PathInNS": o.File.PathInNS, "Dir.Path": o.Dir.Path, "Dir.PathInNS": o.Dir.PathInNS}
			if len(o.File.Path) >= pathBytes || len(o.Dir.Path) >= pathBytes || len(o.File.PathInNS) > max(len(o.File.Path), 1) ||
				len(o.Dir.PathInNS) > max(len(o.Dir.Path), 1) {
				t.Fatal("a file's path length is out of range")
			}
		case loader.KindConnect:
			strs = map[string]string{"UnixName": ev.Connect.Addr.UnixName}
			_ = ev.Connect.Addr.String()
		case loader.KindCgroup:
			strs = map[string]string{"Path": ev.Cgroup.Path}
		case loader.KindSend:
			strs = map[string]string{"Dest": ev.Send.Dest.UnixName, "Local": ev.Send.Socket.Local.UnixName, "Remote": ev.Send.Socket.Remote.UnixName}
		case loader.KindBind:
			strs = map[string]string{"UnixName": ev.Bind.Addr.UnixName, "Local": ev.Bind.Socket.Local.UnixName}
		case loader.KindListen:
			strs = map[string]string{"Local": ev.Listen.Socket.Local.UnixName}
		case loader.KindAccept:
			strs = map[string]string{"Local": ev.Accept.Socket.Local.UnixName, "Remote": ev.Accept.Socket.Remote.UnixName}
		case loader.KindSockState:
			strs = map[string]string{"Local": ev.SockState.Local.UnixName}
		case loader.KindDNS:
			if len(ev.DNS.Message.Questions) > 16 || len(ev.DNS.Message.Answers) > 16 {
				t.Fatal("too many questions or answers kept")
			}
		case loader.KindCgroupMove:
			strs = map[string]string{"Path": ev.CgroupMove.ToCgroup}
		case loader.KindProcAccess:
			strs = map[string]string{"Comm": ev.ProcAccess.Target.Comm, "Exe": ev.ProcAccess.Target.Exe}
		case loader.KindFileOp:
			f := &ev.FileOp
			strs = map[string]string{"Path": f.Path.Path, "NewPath": f.NewPath.Path, "Dir": f.Dir.Path, "NewDir": f.NewDir.Path, "File": f.File.Path}
		case loader.KindMount:
			strs = map[string]string{"Source": ev.Mount.Source.Path, "Target": ev.Mount.Target.Path, "Fstype": ev.Mount.Fstype.Path}
		case loader.KindFork, loader.KindExit, loader.KindNamespace, loader.KindBPF, loader.KindIOURing:
		default:
			t.Fatalf("Decode accepted kind %d", ev.Kind)
		}
		strs["Comm"] = ev.Proc.Comm
		for name, s := range strs {
			if !within(raw, s) {
				t.Fatalf("%s (len %d) is not within the %d-byte input", name, len(s), len(raw))
			}
			if len(s) >= pathBytes {
				t.Fatalf("%s has %d bytes", name, len(s))
			}
		}
		if len(ev.Exec.Filename) >= pathBytes || len(ev.Exec.Exe) >= pathBytes || len(ev.Open.Path) >= pathBytes ||
			len(ev.Cgroup.Path) >= pathBytes || len(ev.Connect.Addr.UnixName) > 128 || len(ev.Proc.Comm) > 16 {
			t.Fatal("a length is out of range")
		}
		if ev.Body() == nil {
			t.Fatal("an event without a body")
		}
	})
}
