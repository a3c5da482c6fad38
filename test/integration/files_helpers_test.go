package integration

// The helper actions of files_truth_test.go: the ways an agent can make an
// open record name something other than the file it opened, or open a file
// with no open record at all. Each action reports, per open, what the
// kernel returned and what fstat/statx say of the new descriptor.

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// filesHelper runs action if it is one of this file's; known is false otherwise.
func filesHelper(action string, args []string, extra map[string]any) (ops []helperOp, known bool, err error) {
	// Some of these stall in the kernel on purpose (userfaultfd, io_uring
	// waits): a helper whose test is gone must not stall forever.
	watchdog := time.AfterFunc(3*time.Minute, func() {
		fmt.Fprintf(os.Stderr, "helper %s: still running after 3 minutes\n", action)
		os.Exit(124)
	})
	defer watchdog.Stop()
	known = true
	switch action {
	case "relative":
		ops, err = helperRelative(args[0])
	case "links":
		ops, err = helperLinks(args[0], args[1])
	case "bind":
		err = helperBind(args[0], args[1], extra)
	case "bind-child":
		ops, err = helperBindChild(args[0], args[1])
	case "open-tree":
		ops, err = helperOpenTree(args[0])
	case "handle":
		ops, err = helperHandle(args[0], extra)
	case "getfd":
		ops, err = helperGetfd(args[0], extra)
	case "hold-fd":
		err = helperHoldFd(args[0])
	case "iouring":
		ops, err = helperIOUring(args[0], args[1], extra)
	case "uffd":
		n, _ := strconv.Atoi(args[2])
		ops, err = helperUffd(args[0], args[1], n)
	case "flip":
		n, _ := strconv.Atoi(args[2])
		ops, err = helperFlip(args[0], args[1], n)
	case "memfd-exec":
		err = helperMemfdExec(args[0], args[1], extra)
	case "deleted-exec":
		err = helperDeletedExec(args[0], extra)
	case "replace-self":
		err = helperReplaceSelf(args[0])
	case "linger":
		ms, _ := strconv.Atoi(args[0])
		if len(args) > 1 {
			// Every thread: the last one to exit names the exit record.
			tasks, _ := os.ReadDir("/proc/self/task")
			for _, task := range tasks {
				os.WriteFile("/proc/self/task/"+task.Name()+"/comm", []byte(args[1]), 0)
			}
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
		extra["pid"] = os.Getpid()
	default:
		known = false
	}
	return ops, known, err
}

// selfExe runs this binary again after dropToNobody: the test binary's own
// directory may not be searchable by nobody, and the magic link needs no
// search permission.
const selfExe = "/proc/self/exe"

// dropToNobody makes the helper an unprivileged process (uid and gid 65534,
// no supplementary groups), as an agent would be.
func dropToNobody() error {
	if err := syscall.Setresgid(65534, 65534, 65534); err != nil {
		return fmt.Errorf("setresgid: %w", err)
	}
	if err := syscall.Setgroups(nil); err != nil && err != syscall.EPERM {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setresuid(65534, 65534, 65534); err != nil {
		return fmt.Errorf("setresuid: %w", err)
	}
	// Changing credentials made the process non-dumpable: its /proc files
	// (and its children's, until they exec) became root's. An agent that
	// was never root would be dumpable.
	return unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0)
}

// opened is an op of an open: on success, what statx says of the new fd.
func opened(name string, ret, dirfd int) helperOp {
	op := helperOp{Op: name, Ret: ret, Fd: dirfd}
	if ret < 0 {
		return op
	}
	var stx unix.Statx_t
	if err := unix.Statx(ret, "", unix.AT_EMPTY_PATH, unix.STATX_BASIC_STATS|unix.STATX_MNT_ID, &stx); err == nil {
		op.Ino = stx.Ino
		op.Dev = fmt.Sprintf("%d:%d", stx.Dev_major, stx.Dev_minor)
		op.MntID = stx.Mnt_id
	}
	return op
}

// helperRelative opens three different files that are all "target.txt":
// relative to the working directory after chdir and after fchdir, relative
// to a dirfd and to a dirfd dup2'd to another number; and fails relative
// opens, whose records must name the directory they were relative to.
func helperRelative(dir string) ([]helperOp, error) {
	if err := dropToNobody(); err != nil {
		return nil, err
	}
	var ops []helperOp
	add := func(name string, ret, dirfd int) { ops = append(ops, opened(name, ret, dirfd)) }
	p := func(name string) string { return filepath.Join(dir, name) }

	if err := unix.Chdir(p("a")); err != nil {
		return nil, err
	}
	add("chdir", sysOpen("target.txt", unix.O_RDONLY, 0), 0)
	add("chdir-enoent", sysOpen("missing.txt", unix.O_RDONLY, 0), 0)

	bfd := sysOpen(p("b"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err := unix.Fchdir(bfd); err != nil {
		return nil, fmt.Errorf("fchdir: %w", err)
	}
	add("fchdir", sysOpen("target.txt", unix.O_RDONLY, 0), 0)
	add("dotdot", sysOpen("../c/target.txt", unix.O_RDONLY, 0), 0)

	cfd := sysOpen(p("c"), unix.O_PATH|unix.O_DIRECTORY, 0)
	add("dirfd", sysOpenat(cfd, "target.txt", unix.O_RDONLY, 0), cfd)
	add("dirfd-enoent", sysOpenat(cfd, "nodir/missing.txt", unix.O_RDONLY, 0), cfd)

	afd := sysOpen(p("a"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	const dupped = 77
	if err := unix.Dup2(afd, dupped); err != nil {
		return nil, fmt.Errorf("dup2: %w", err)
	}
	add("dup2", sysOpenat(dupped, "target.txt", unix.O_RDONLY, 0), dupped)
	add("dup2-enoent", sysOpenat(dupped, "missing.txt", unix.O_RDONLY, 0), dupped)
	add("abs-enoent", sysOpen(p("missing-abs.txt"), unix.O_RDONLY, 0), 0)
	return ops, nil
}

// helperLinks reaches sensitive files under names the sensitive list does
// not match: a symbolic link, a hard link, a relative name after chdir, a
// /proc/self/fd reopen, and a hard link to a key the agent created.
func helperLinks(dir, home string) ([]helperOp, error) {
	if err := dropToNobody(); err != nil {
		return nil, err
	}
	var ops []helperOp
	add := func(name string, ret, dirfd int) { ops = append(ops, opened(name, ret, dirfd)) }
	p := func(name string) string { return filepath.Join(dir, name) }

	add("symlink", sysOpen(p("sym"), unix.O_RDONLY, 0), 0)
	add("hardlink", sysOpen(p("hard.txt"), unix.O_RDONLY, 0), 0)
	if err := unix.Chdir(filepath.Join(home, ".aws")); err != nil {
		return nil, err
	}
	add("cd", sysOpen("credentials", unix.O_RDONLY, 0), 0)
	vault := sysOpen(p("vault"), unix.O_PATH|unix.O_DIRECTORY, 0)
	add("procfd", sysOpen(fmt.Sprintf("/proc/self/fd/%d/secret.key", vault), unix.O_RDONLY, 0), 0)
	created := filepath.Join(home, ".ssh", "id_ed25519")
	add("create", sysOpen(created, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600), 0)
	if err := unix.Link(created, p("w/notes.txt")); err != nil {
		return nil, fmt.Errorf("link: %w", err)
	}
	add("created-link", sysOpen(p("w/notes.txt"), unix.O_RDONLY, 0), 0)
	add("benign", sysOpen(p("benign.txt"), unix.O_RDONLY, 0), 0)
	return ops, nil
}

// helperBind, unprivileged, starts a child in a new user and mount
// namespace that bind-mounts src onto target and opens target.
func helperBind(src, target string, extra map[string]any) error {
	if err := dropToNobody(); err != nil {
		return err
	}
	child := exec.Command(selfExe, src, target)
	child.Env = helperEnvFor("bind-child")
	child.Stdout, child.Stderr = os.Stdout, os.Stderr
	child.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 65534, Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 65534, Size: 1}},
		GidMappingsEnableSetgroups: false,
	}
	if err := child.Run(); err != nil {
		return fmt.Errorf("bind child: %w", err)
	}
	extra["child"] = child.Process.Pid
	return nil
}

func helperBindChild(src, target string) ([]helperOp, error) {
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return nil, fmt.Errorf("bind mount in a user namespace: %w", err)
	}
	return []helperOp{opened("bind", sysOpen(target, unix.O_RDONLY, 0), 0)}, nil
}

func sysOpenTree(dirfd int, path string, flags int) int {
	p := bytePtr(path)
	r, _, e := unix.Syscall(unix.SYS_OPEN_TREE, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(flags))
	runtime.KeepAlive(p)
	return ret(r, e)
}

// helperOpenTree opens dir/vault with open_tree, without and with
// OPEN_TREE_CLONE (a detached copy of the mount: paths through it start at
// its root), and opens secret.key through each.
func helperOpenTree(dir string) ([]helperOp, error) {
	var ops []helperOp
	add := func(name string, ret, dirfd int) { ops = append(ops, opened(name, ret, dirfd)) }
	vault := filepath.Join(dir, "vault")
	tree := sysOpenTree(unix.AT_FDCWD, vault, unix.OPEN_TREE_CLOEXEC)
	add("open_tree", tree, unix.AT_FDCWD)
	add("through-tree", sysOpenat(tree, "secret.key", unix.O_RDONLY, 0), tree)
	clone := sysOpenTree(unix.AT_FDCWD, vault, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	add("open_tree_clone", clone, unix.AT_FDCWD)
	add("through-clone", sysOpenat(clone, "secret.key", unix.O_RDONLY, 0), clone)
	return ops, nil
}

// helperHandle opens dir/vault/secret.key by a file handle: no path at all.
func helperHandle(dir string, extra map[string]any) ([]helperOp, error) {
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, filepath.Join(dir, "vault", "secret.key"), 0)
	if err != nil {
		return nil, fmt.Errorf("name_to_handle_at: %w", err)
	}
	mountFd := sysOpen(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	fd, err := unix.OpenByHandleAt(mountFd, h, unix.O_RDONLY)
	r := fd
	if err != nil {
		r = -int(err.(syscall.Errno))
	}
	extra["handle_type"] = h.Type()
	extra["handle_hex"] = hex.EncodeToString(h.Bytes())
	return []helperOp{opened("open_by_handle_at", r, mountFd)}, nil
}

// helperGetfd, unprivileged, takes a descriptor of path that a child opened,
// with pidfd_getfd.
func helperGetfd(path string, extra map[string]any) ([]helperOp, error) {
	if err := dropToNobody(); err != nil {
		return nil, err
	}
	child := exec.Command(selfExe, path)
	child.Env = helperEnvFor("hold-fd")
	stdin, err := child.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := child.Start(); err != nil {
		return nil, err
	}
	defer child.Wait()
	defer stdin.Close()
	var target, sock int
	if _, err := fmt.Fscanf(bufio.NewReader(stdout), "FD %d %d\n", &target, &sock); err != nil {
		return nil, fmt.Errorf("reading the child's fds: %w", err)
	}
	pidfd, err := unix.PidfdOpen(child.Process.Pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open: %w", err)
	}
	r, _, e := unix.Syscall(unix.SYS_PIDFD_GETFD, uintptr(pidfd), uintptr(target), 0)
	ops := []helperOp{opened("pidfd_getfd", ret(r, e), pidfd)}
	// The child's connected TCP socket: which one it is, from here.
	r, _, e = unix.Syscall(unix.SYS_PIDFD_GETFD, uintptr(pidfd), uintptr(sock), 0)
	ops = append(ops, opened("pidfd_getfd-socket", ret(r, e), pidfd))
	if e == 0 {
		cookie, _ := unix.GetsockoptUint64(int(r), unix.SOL_SOCKET, unix.SO_COOKIE)
		local, _ := unix.Getsockname(int(r))
		peer, _ := unix.Getpeername(int(r))
		l, _ := local.(*unix.SockaddrInet4)
		p, _ := peer.(*unix.SockaddrInet4)
		if l == nil || p == nil {
			return nil, fmt.Errorf("the child's socket is not a connected IPv4 one")
		}
		extra["sock_cookie"], extra["sock_local_port"], extra["sock_peer_port"] = cookie, l.Port, p.Port
	}
	extra["child"], extra["target_fd"], extra["target_sock"] = child.Process.Pid, target, sock
	return ops, nil
}

// helperHoldFd opens path, says which fd it got, and waits for stdin to close.
func helperHoldFd(path string) error {
	fd := sysOpen(path, unix.O_RDONLY, 0)
	// And a TCP connection to itself over loopback.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		return err
	}
	accepted, err := ln.Accept()
	if err != nil {
		return err
	}
	defer accepted.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	sock := -1
	raw.Control(func(fd uintptr) { sock = int(fd) })
	fmt.Printf("FD %d %d\n", fd, sock)
	var b [1]byte
	for {
		if n, err := os.Stdin.Read(b[:]); n == 0 || err != nil {
			return nil
		}
	}
}

// io_uring, by hand (no liburing): the uapi layouts of linux/io_uring.h.
const (
	ioringOpNop     = 0
	ioringOpOpenat  = 18
	ioringOpOpenat2 = 28

	iosqeAsync          = 1 << 4
	iosqeCqeSkipSuccess = 1 << 6

	ioringEnterGetevents = 1
	ioringSetupCqsize    = 1 << 3
	ioringRegisterFiles  = 2

	ioringOffSqRing = 0
	ioringOffCqRing = 0x8000000
	ioringOffSqes   = 0x10000000
)

type uringOffsets struct {
	Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1 uint32
	UserAddr                                                        uint64
}

type uringParams struct {
	SqEntries, CqEntries, Flags, SqThreadCPU, SqThreadIdle, Features, WqFd uint32
	Resv                                                                   [3]uint32
	SqOff                                                                  uringOffsets
	CqOff                                                                  uringOffsets // Overflow, Cqes in place of Flags/Dropped... see cq()
}

type uringSqe struct {
	Opcode      uint8
	Flags       uint8
	Ioprio      uint16
	Fd          int32
	Off         uint64 // addr2: openat2's struct open_how
	Addr        uint64 // the path
	Len         uint32 // openat: mode; openat2: sizeof(struct open_how)
	OpenFlags   uint32
	UserData    uint64
	BufIndex    uint16
	Personality uint16
	FileIndex   uint32 // a fixed-file slot + 1, 0 for none
	Addr3       uint64
	Pad         uint64
}

type uringCqe struct {
	UserData uint64
	Res      int32
	Flags    uint32
}

type uring struct {
	fd           int
	p            uringParams
	sq, cq, sqes []byte
	keep         [][]byte // user memory the kernel reads at submission
}

func newURing(entries uint32, p uringParams) (*uring, int) {
	r := &uring{p: p}
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&r.p)), 0)
	if e != 0 {
		return nil, -int(e)
	}
	r.fd = int(fd)
	var err error
	mmap := func(off int64, size uint32) []byte {
		if err != nil {
			return nil
		}
		var m []byte
		m, err = unix.Mmap(r.fd, off, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		return m
	}
	r.sq = mmap(ioringOffSqRing, r.p.SqOff.Array+r.p.SqEntries*4)
	// In the CQ offsets, Flags is "overflow" and Dropped is "cqes".
	r.cq = mmap(ioringOffCqRing, r.p.CqOff.Dropped+r.p.CqEntries*16)
	r.sqes = mmap(ioringOffSqes, r.p.SqEntries*64)
	if err != nil {
		panic(err)
	}
	return r, r.fd
}

func u32at(b []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }

// queue puts one SQE in the submission ring (not yet submitted).
func (r *uring) queue(sqe uringSqe) {
	tail := atomic.LoadUint32(u32at(r.sq, r.p.SqOff.Tail))
	idx := tail & *u32at(r.sq, r.p.SqOff.RingMask)
	*(*uringSqe)(unsafe.Pointer(&r.sqes[idx*64])) = sqe
	*u32at(r.sq, r.p.SqOff.Array+idx*4) = idx
	atomic.StoreUint32(u32at(r.sq, r.p.SqOff.Tail), tail+1)
}

func (r *uring) enter(submit, wait uint32) int {
	flags := uintptr(0)
	if wait > 0 {
		flags = ioringEnterGetevents
	}
	n, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(submit), uintptr(wait), flags, 0, 0)
	return ret(n, e)
}

// reap returns the completions in the ring.
func (r *uring) reap() []uringCqe {
	var out []uringCqe
	head := atomic.LoadUint32(u32at(r.cq, r.p.CqOff.Head))
	tail := atomic.LoadUint32(u32at(r.cq, r.p.CqOff.Tail))
	mask := *u32at(r.cq, r.p.CqOff.RingMask)
	for ; head != tail; head++ {
		out = append(out, *(*uringCqe)(unsafe.Pointer(&r.cq[r.p.CqOff.Dropped+(head&mask)*16])))
	}
	atomic.StoreUint32(u32at(r.cq, r.p.CqOff.Head), head)
	return out
}

func (r *uring) path(p string) uint64 {
	b := append([]byte(p), 0)
	r.keep = append(r.keep, b)
	return uint64(uintptr(unsafe.Pointer(&b[0])))
}

// run submits one SQE, waits for its completion and returns its result.
func (r *uring) run(sqe uringSqe) int {
	r.queue(sqe)
	if n := r.enter(1, 1); n < 0 {
		return n
	}
	for _, c := range r.reap() {
		if c.UserData == sqe.UserData {
			return int(c.Res)
		}
	}
	return -int(unix.EIO)
}

// helperIOUring, unprivileged, opens files through io_uring: inline, in a
// kernel worker (IOSQE_ASYNC), with openat2, a failing relative open, into
// a fixed-file slot, with IOSQE_CQE_SKIP_SUCCESS (no completion), and with
// its completion overflowing the completion ring. secret is a sensitive file.
func helperIOUring(dir, secret string, extra map[string]any) ([]helperOp, error) {
	if err := dropToNobody(); err != nil {
		return nil, err
	}
	var ops []helperOp
	add := func(name string, ret, dirfd int) { ops = append(ops, opened(name, ret, dirfd)) }
	r, fd := newURing(8, uringParams{})
	ops = append(ops, helperOp{Op: "io_uring_setup", Ret: fd})
	if r == nil {
		return ops, nil
	}
	dirfd := sysOpen(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	add("openat", r.run(uringSqe{Opcode: ioringOpOpenat, Fd: unix.AT_FDCWD, Addr: r.path(filepath.Join(dir, "uring-a.txt")), UserData: 0x1001}), unix.AT_FDCWD)
	add("openat-async", r.run(uringSqe{Opcode: ioringOpOpenat, Flags: iosqeAsync, Fd: int32(dirfd), Addr: r.path("uring-b.txt"),
		OpenFlags: unix.O_RDONLY | unix.O_CLOEXEC, UserData: 0x1002}), dirfd)
	how := unix.OpenHow{Flags: unix.O_RDONLY, Resolve: unix.RESOLVE_BENEATH}
	add("openat2", r.run(uringSqe{Opcode: ioringOpOpenat2, Fd: int32(dirfd), Addr: r.path("uring-c.txt"),
		Off: uint64(uintptr(unsafe.Pointer(&how))), Len: uint32(unix.SizeofOpenHow), UserData: 0x1003}), dirfd)
	add("openat-enoent", r.run(uringSqe{Opcode: ioringOpOpenat, Fd: int32(dirfd), Addr: r.path("missing.txt"), UserData: 0x1004}), dirfd)
	add("openat-secret", r.run(uringSqe{Opcode: ioringOpOpenat, Fd: unix.AT_FDCWD, Addr: r.path(secret), UserData: 0x1005}), unix.AT_FDCWD)

	// A sparse table of 4 fixed files; open into slot 2.
	slots := []int32{-1, -1, -1, -1}
	if _, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), ioringRegisterFiles, uintptr(unsafe.Pointer(&slots[0])), 4, 0, 0); e != 0 {
		return nil, fmt.Errorf("registering files: %w", e)
	}
	ops = append(ops, helperOp{Op: "openat-slot", Ret: r.run(uringSqe{Opcode: ioringOpOpenat, Fd: unix.AT_FDCWD,
		Addr: r.path(filepath.Join(dir, "uring-slot.txt")), FileIndex: 2 + 1, UserData: 0x1006})})

	// No completion for a success: the result is never posted.
	r.queue(uringSqe{Opcode: ioringOpOpenat, Flags: iosqeCqeSkipSuccess, Fd: unix.AT_FDCWD, Addr: r.path(filepath.Join(dir, "uring-skip.txt")), UserData: 0x1007})
	ops = append(ops, helperOp{Op: "openat-skip", Ret: r.enter(1, 0)})

	// A ring of 4 completions filled with NOPs: the open's completion overflows.
	small, sfd := newURing(4, uringParams{Flags: ioringSetupCqsize, CqEntries: 4})
	if small == nil {
		return nil, fmt.Errorf("io_uring_setup with a 4-entry completion ring: %v", syscall.Errno(-sfd))
	}
	for i := range 4 {
		small.queue(uringSqe{Opcode: ioringOpNop, UserData: uint64(i)})
	}
	if n := small.enter(4, 0); n != 4 {
		return nil, fmt.Errorf("submitting the NOPs: %d", n)
	}
	small.queue(uringSqe{Opcode: ioringOpOpenat, Fd: unix.AT_FDCWD, Addr: small.path(filepath.Join(dir, "uring-overflow.txt")), UserData: 0x1008})
	if n := small.enter(1, 0); n != 1 {
		return nil, fmt.Errorf("submitting the open after the NOPs: %d", n)
	}
	overflowRes, found := -int(unix.EIO), false
	for range 3 {
		for _, c := range small.reap() {
			if c.UserData == 0x1008 {
				overflowRes, found = int(c.Res), true
			}
		}
		if found {
			break
		}
		small.enter(0, 1) // flushes the overflowed completions into the ring
	}
	add("openat-overflow", overflowRes, unix.AT_FDCWD)
	extra["overflow_ring_fd"] = sfd
	runtime.KeepAlive(&how)
	runtime.KeepAlive(r)
	runtime.KeepAlive(small)
	return ops, nil
}

// userfaultfd(2) uapi.
const (
	uffdioAPI      = 0xc018aa3f
	uffdioRegister = 0xc020aa00
	uffdioCopy     = 0xc028aa03
	uffdAPI        = 0xaa
	uffdRegMissing = 1
	uffdEventFault = 0x12
	uffdMsgSize    = 32
	uffdMsgAddr    = 16
)

// helperUffd opens real n times, its name straddling two pages that are
// missing and registered with userfaultfd (a fresh pair each time). The
// kernel stalls on the first page until this helper supplies the start of
// the name, and again on the second: by then the kernel has copied the
// start, which this helper now overwrites with the start of decoy before it
// supplies the rest. The kernel opens real; the memory then names decoy.
// Neither page can be read at syscall entry.
func helperUffd(real, decoy string, n int) ([]helperOp, error) {
	split := len(real) - len(".txt")
	if len(real) != len(decoy) || real[split:] != decoy[split:] {
		return nil, fmt.Errorf("uffd: the names must differ only before their last 4 bytes")
	}
	ufd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC, 0, 0)
	if e != 0 {
		return nil, fmt.Errorf("userfaultfd: %w", e)
	}
	api := [3]uint64{uffdAPI, 0, 0}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, ufd, uffdioAPI, uintptr(unsafe.Pointer(&api))); e != 0 {
		return nil, fmt.Errorf("UFFDIO_API: %w", e)
	}
	pageSize := os.Getpagesize()
	pages, err := unix.Mmap(-1, 0, 2*n*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, err
	}
	base := uint64(uintptr(unsafe.Pointer(&pages[0])))
	reg := [4]uint64{base, uint64(2 * n * pageSize), uffdRegMissing, 0}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, ufd, uffdioRegister, uintptr(unsafe.Pointer(&reg))); e != 0 {
		return nil, fmt.Errorf("UFFDIO_REGISTER: %w", e)
	}
	// first: a page ending with the start of real; second: a page starting
	// with the rest of it.
	first, second := make([]byte, pageSize), make([]byte, pageSize)
	copy(first[pageSize-split:], real[:split])
	copy(second, real[split:]+"\x00")
	go func() {
		runtime.LockOSThread()
		msg := make([]byte, uffdMsgSize)
		for {
			if _, err := unix.Read(int(ufd), msg); err != nil {
				return
			}
			if msg[0] != uffdEventFault {
				continue
			}
			addr := *(*uint64)(unsafe.Pointer(&msg[uffdMsgAddr])) &^ uint64(pageSize-1)
			page := int(addr-base) / pageSize
			src := first
			if page%2 == 1 {
				// The kernel has copied the start of the name: change it.
				copy(pages[page*pageSize-split:], decoy[:split])
				src = second
			}
			cp := [5]uint64{addr, uint64(uintptr(unsafe.Pointer(&src[0]))), uint64(pageSize), 0, 0}
			unix.Syscall(unix.SYS_IOCTL, ufd, uffdioCopy, uintptr(unsafe.Pointer(&cp)))
		}
	}()
	var ops []helperOp
	for i := range n {
		name := uintptr(base) + uintptr((2*i+1)*pageSize-split)
		r, _, e := unix.Syscall(unix.SYS_OPEN, name, unix.O_RDONLY, 0)
		ops = append(ops, opened(fmt.Sprintf("uffd-%d", i), ret(r, e), 0))
	}
	return ops, nil
}

// helperFlip opens the same buffer n times while another thread flips it
// between the names a and b (same length, differing in one byte).
func helperFlip(a, b string, n int) ([]helperOp, error) {
	if len(a) != len(b) {
		return nil, fmt.Errorf("flip names of different lengths")
	}
	buf := append([]byte(a), 0)
	diff := 0
	for diff < len(a) && a[diff] == b[diff] {
		diff++
	}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(done)
		p := (*byte)(unsafe.Pointer(&buf[diff]))
		for !stop.Load() {
			*(*uint8)(unsafe.Pointer(p)) = b[diff]
			*(*uint8)(unsafe.Pointer(p)) = a[diff]
		}
	}()
	var ops []helperOp
	for i := range n {
		r, _, e := unix.Syscall(unix.SYS_OPEN, uintptr(unsafe.Pointer(&buf[0])), unix.O_RDONLY, 0)
		ops = append(ops, opened(fmt.Sprintf("flip-%d", i), ret(r, e), 0))
	}
	stop.Store(true)
	<-done
	runtime.KeepAlive(buf)
	return ops, nil
}

// helperMemfdExec copies this binary into a memfd called name and execs it
// (how: "execveat" with AT_EMPTY_PATH, or "proc-fd": execve of
// /proc/self/fd/N) with an argv and a comm that say "git".
func helperMemfdExec(how, name string, extra map[string]any) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	image, err := os.ReadFile(self)
	if err != nil {
		return err
	}
	fd, err := unix.MemfdCreate(name, 0)
	if err != nil {
		return fmt.Errorf("memfd_create: %w", err)
	}
	if _, err := unix.Write(fd, image); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	extra["fd"], extra["ino"] = fd, st.Ino
	extra["dev"] = fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	extra["ctime"] = st.Ctim.Nano()
	printResult(nil, extra)
	env, _ := syscall.SlicePtrFromStrings(helperEnvFor("linger"))
	// The new image lingers 1500 ms and names itself "git"; argv says "git".
	lingerArgv, _ := syscall.SlicePtrFromStrings([]string{"git", "1500", "git"})
	var e syscall.Errno
	switch how {
	case "execveat":
		empty := bytePtr("")
		_, _, e = unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
			uintptr(unsafe.Pointer(&lingerArgv[0])), uintptr(unsafe.Pointer(&env[0])), unix.AT_EMPTY_PATH, 0)
		runtime.KeepAlive(empty)
	default:
		p := bytePtr(fmt.Sprintf("/proc/self/fd/%d", fd))
		_, _, e = unix.Syscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&lingerArgv[0])), uintptr(unsafe.Pointer(&env[0])))
		runtime.KeepAlive(p)
	}
	runtime.KeepAlive(lingerArgv)
	runtime.KeepAlive(env)
	return fmt.Errorf("exec of the memfd: %w", e)
}

// helperDeletedExec opens path, unlinks it and execs the open file.
func helperDeletedExec(path string, extra map[string]any) error {
	fd := sysOpen(path, unix.O_RDONLY, 0)
	if fd < 0 {
		return fmt.Errorf("open %s: %v", path, syscall.Errno(-fd))
	}
	if err := unix.Unlink(path); err != nil {
		return err
	}
	extra["fd"] = fd
	printResult(nil, extra)
	argv, _ := syscall.SlicePtrFromStrings([]string{"deleted-tool", "1500"})
	env, _ := syscall.SlicePtrFromStrings(helperEnvFor("linger"))
	empty := bytePtr("")
	_, _, e := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&env[0])), unix.AT_EMPTY_PATH, 0)
	runtime.KeepAlive(empty)
	runtime.KeepAlive(argv)
	runtime.KeepAlive(env)
	return fmt.Errorf("execveat of a deleted file: %w", e)
}

// helperReplaceSelf, run from a copy of this binary at path, unlinks path
// and writes a different program there, then lingers.
func helperReplaceSelf(path string) error {
	if err := unix.Unlink(path); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho replaced\n"), 0o755); err != nil {
		return err
	}
	printResult(nil, map[string]any{"replaced": true})
	time.Sleep(1500 * time.Millisecond)
	return nil
}
