package integration

// Helper actions of the escape tests (escape_test.go): an agent trying to
// leave the trace, act through a process outside it, change names and
// namespaces, or tamper with the tracer. Registered in runHelper.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// escapeHelper runs the escape actions; ok is false for other actions.
func escapeHelper(action string, args []string, extra map[string]any) (ops []helperOp, err error, ok bool) {
	switch action {
	case "escape-clone3":
		err = helperEscapeClone3(args[0], args[1], extra)
	case "escape-procs":
		err = helperEscapeProcs(args[0], args[1], extra)
	case "escaped":
		err = helperEscaped(args[0], false)
	case "escaped-wait":
		err = helperEscaped(args[0], true)
	case "escape-unpriv":
		ops, err = helperEscapeUnprivileged(args[0])
	case "procaccess":
		ops, err = helperProcAccess(args, extra)
	case "fileops":
		ops, err = helperFileOps(args[0], extra)
	case "tamper-targets":
		ops, err = helperTamperTargets(args[0], extra)
	default:
		return nil, nil, false
	}
	return ops, err, true
}

// escapedChild starts this binary as action with args, its stdout a pipe,
// placed by clone3(CLONE_INTO_CGROUP) in the cgroup directory cgroupDir if
// that is set. The caller forwards the child's RESULT line.
func escapedChild(action string, args []string, cgroupDir string) (*exec.Cmd, io.WriteCloser, *bufio.Reader, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, nil, err
	}
	cmd := exec.Command(self)
	cmd.Args = args // argv[0] names the action, for the test to find its tool call
	cmd.Env = helperEnvFor(action)
	cmd.Stderr = os.Stderr
	if cgroupDir != "" {
		fd, err := unix.Open(cgroupDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, nil, nil, err
		}
		defer unix.Close(fd)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	return cmd, stdin, bufio.NewReader(stdout), nil
}

// forwardResult copies the child's RESULT line to this process's stdout.
func forwardResult(r *bufio.Reader) error {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("reading the child's result: %w", err)
	}
	_, err = os.Stdout.Write(line)
	return err
}

// helperEscapeClone3 starts a child directly in the cgroup outside the
// session (clone3 with CLONE_INTO_CGROUP, no write to cgroup.procs) that
// opens key and keeps running; it exits once the child has opened it.
func helperEscapeClone3(outside, key string, extra map[string]any) error {
	cmd, stdin, out, err := escapedChild("escaped", []string{"escaped", key}, outside)
	if err != nil {
		return err
	}
	stdin.Close()
	if err := forwardResult(out); err != nil {
		return err
	}
	extra["child"] = cmd.Process.Pid
	return nil
}

// helperEscapeProcs starts a child in the session, writes its pid into the
// cgroup.procs of the cgroup outside, then lets it open key; it exits once
// the child has opened it.
func helperEscapeProcs(outside, key string, extra map[string]any) error {
	cmd, stdin, out, err := escapedChild("escaped-wait", []string{"escaped-wait", key}, "")
	if err != nil {
		return err
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	if err := os.WriteFile(filepath.Join(outside, "cgroup.procs"), []byte(pid), 0); err != nil {
		return fmt.Errorf("moving %s out: %w", pid, err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		return err
	}
	if err := forwardResult(out); err != nil {
		return err
	}
	extra["child"] = cmd.Process.Pid
	return nil
}

// helperEscaped (the escaped child) opens key, after a line on stdin if
// wait, prints its result and keeps running: a background job that
// outlives the agent.
func helperEscaped(key string, wait bool) error {
	if wait {
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return err
		}
	}
	ops := []helperOp{{Op: "open", Ret: sysOpen(key, unix.O_RDONLY, 0)}}
	cg, _ := ownCgroup()
	printResult(ops, map[string]any{"role": "escaped", "cgroup": cg})
	time.Sleep(time.Minute)
	return nil
}

// dropRoot makes the helper uid and gid 65534 for good.
func dropRoot() error {
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setresgid(65534, 65534, 65534); err != nil {
		return fmt.Errorf("setresgid: %w", err)
	}
	if err := syscall.Setresuid(65534, 65534, 65534); err != nil {
		return fmt.Errorf("setresuid: %w", err)
	}
	return nil
}

// helperEscapeUnprivileged tries both escapes as uid 65534: clone3 into
// the cgroup outside, and opening its cgroup.procs for writing.
func helperEscapeUnprivileged(outside string) ([]helperOp, error) {
	if err := dropRoot(); err != nil {
		return nil, err
	}
	var ops []helperOp
	cmd, stdin, _, err := escapedChild("true", []string{"true"}, outside)
	var errno syscall.Errno
	switch {
	case err == nil:
		stdin.Close()
		cmd.Wait()
		ops = append(ops, helperOp{Op: "clone3", Ret: cmd.Process.Pid})
	case errorsAs(err, &errno):
		ops = append(ops, helperOp{Op: "clone3", Ret: -int(errno)})
	default:
		return nil, err
	}
	ops = append(ops, helperOp{Op: "open-procs", Ret: sysOpen(filepath.Join(outside, "cgroup.procs"), unix.O_WRONLY, 0)})
	return ops, nil
}

func errorsAs(err error, errno *syscall.Errno) bool {
	for err != nil {
		if e, ok := err.(syscall.Errno); ok {
			*errno = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func sys(nr uintptr, args ...uintptr) int {
	var a [6]uintptr
	copy(a[:], args)
	r, _, e := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	return ret(r, e)
}

// helperProcAccess acts as uid 65534 on processes outside the session:
// args are victim 1's pid and the address of its 64-byte buffer, victim
// 2's pid (same uid), victim 3's pid (root) and pid_max (no such process).
func helperProcAccess(args []string, extra map[string]any) ([]helperOp, error) {
	var n [5]int
	for i := range n {
		n[i], _ = strconv.Atoi(args[i])
	}
	v1, addr, v2, v3, pidMax := n[0], uintptr(n[1]), n[2], n[3], n[4]
	if err := dropRoot(); err != nil {
		return nil, err
	}
	var ops []helperOp
	add := func(op string, r int) int { ops = append(ops, helperOp{Op: op, Ret: r}); return r }

	pfd1 := add("pidfd_open", sys(unix.SYS_PIDFD_OPEN, uintptr(v1), 0))
	add("pidfd_getfd", sys(unix.SYS_PIDFD_GETFD, uintptr(pfd1), 1, 0))
	buf := make([]byte, 64)
	local := unix.Iovec{Base: &buf[0], Len: 64}
	remote := unix.RemoteIovec{Base: addr, Len: 64}
	add("process_vm_readv", sys(unix.SYS_PROCESS_VM_READV, uintptr(v1), uintptr(unsafe.Pointer(&local)), 1, uintptr(unsafe.Pointer(&remote)), 1, 0))
	extra["read"] = string(bytes.TrimRight(buf, "\x00"))
	copy(buf, "written-by-the-agent\x00")
	add("process_vm_writev", sys(unix.SYS_PROCESS_VM_WRITEV, uintptr(v1), uintptr(unsafe.Pointer(&local)), 1, uintptr(unsafe.Pointer(&remote)), 1, 0))
	runtime.KeepAlive(buf)
	// v1 is traced from now on: a signal to it is not an access to the outside.
	add("kill-v1", sys(unix.SYS_KILL, uintptr(v1), 0))

	// The agent's own child is traced too. (This binary is not executable
	// by uid 65534: the child is sleep(1).)
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		return nil, err
	}
	add("kill-child", sys(unix.SYS_KILL, uintptr(child.Process.Pid), uintptr(unix.SIGKILL)))
	child.Wait()
	extra["child"] = child.Process.Pid

	add("kill", sys(unix.SYS_KILL, uintptr(v2), 0))
	add("tkill", sys(unix.SYS_TKILL, uintptr(v2), 0))
	add("tgkill", sys(unix.SYS_TGKILL, uintptr(v2), uintptr(v2), 0))
	var info [128]byte
	binary.NativeEndian.PutUint32(info[0:], uint32(unix.SIGCONT)) // si_signo
	binary.NativeEndian.PutUint32(info[8:], uint32(0xffffffff))   // si_code SI_QUEUE
	add("rt_sigqueueinfo", sys(unix.SYS_RT_SIGQUEUEINFO, uintptr(v2), uintptr(unix.SIGCONT), uintptr(unsafe.Pointer(&info[0]))))
	runtime.KeepAlive(info)
	add("kill-root", sys(unix.SYS_KILL, uintptr(v3), uintptr(unix.SIGTERM)))
	add("kill-none", sys(unix.SYS_KILL, uintptr(pidMax), 0))
	pfd2 := add("pidfd_open-v2", sys(unix.SYS_PIDFD_OPEN, uintptr(v2), 0))
	add("pidfd_send_signal", sys(unix.SYS_PIDFD_SEND_SIGNAL, uintptr(pfd2), uintptr(unix.SIGKILL), 0, 0))
	return ops, nil
}

func sysPath(nr uintptr, path string, args ...uintptr) int {
	p := bytePtr(path)
	r := sys(nr, append([]uintptr{uintptr(unsafe.Pointer(p))}, args...)...)
	runtime.KeepAlive(p)
	return r
}

// sysPaths makes a syscall whose first two arguments are paths.
func sysPaths(nr uintptr, path, path2 string) int {
	p, p2 := bytePtr(path), bytePtr(path2)
	r := sys(nr, uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(p2)))
	runtime.KeepAlive(p)
	runtime.KeepAlive(p2)
	return r
}

// sysAt2 makes a syscall (dirfd, path, dirfd2, path2, rest...).
func sysAt2(nr uintptr, dirfd int, path string, dirfd2 int, path2 string, rest ...uintptr) int {
	p, p2 := bytePtr(path), bytePtr(path2)
	r := sys(nr, append([]uintptr{uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(dirfd2), uintptr(unsafe.Pointer(p2))}, rest...)...)
	runtime.KeepAlive(p)
	runtime.KeepAlive(p2)
	return r
}

// fileInfo is what a record's file object says of an open file.
func fileInfo(fd int) (map[string]any, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		return nil, err
	}
	mnt := -1
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "mnt_id:"); ok {
			mnt, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	path, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"path": path, "dev": fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)), "ino": st.Ino,
		"mode": "0" + strconv.FormatUint(uint64(st.Mode), 8), "type": "regular", "mnt_id": mnt,
	}, nil
}

// helperFileOps renames, links, unlinks, chmods, chowns and truncates in
// dir (which holds a file "a" and a directory "sub") with every syscall of
// the kind, as root, some failing. extra["files"] has the file object of
// the fd-based ops as it was before each.
func helperFileOps(dir string, extra map[string]any) ([]helperOp, error) {
	var ops []helperOp
	add := func(op string, r, fd int) int { ops = append(ops, helperOp{Op: op, Ret: r, Fd: fd}); return r }
	p := func(name string) string { return filepath.Join(dir, name) }
	const cwd = unix.AT_FDCWD

	add("rename", sysPaths(unix.SYS_RENAME, p("a"), p("b")), 0)
	add("rename-enoent", sysPaths(unix.SYS_RENAME, p("missing"), p("x")), 0)
	dfd := sysOpen(p("sub"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if dfd < 0 {
		return nil, fmt.Errorf("opening sub: %v", syscall.Errno(-dfd))
	}
	add("renameat", sysAt2(unix.SYS_RENAMEAT, cwd, p("b"), dfd, "c"), dfd)
	add("renameat2", sysAt2(unix.SYS_RENAMEAT2, dfd, "c", dfd, "d", unix.RENAME_NOREPLACE), dfd)
	if fd := sysOpen(p("sub/e"), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o644); fd < 0 {
		return nil, fmt.Errorf("creating sub/e: %v", syscall.Errno(-fd))
	}
	add("renameat2-exchange", sysAt2(unix.SYS_RENAMEAT2, dfd, "d", dfd, "e", unix.RENAME_EXCHANGE), dfd)
	add("renameat2-eexist", sysAt2(unix.SYS_RENAMEAT2, dfd, "d", dfd, "e", unix.RENAME_NOREPLACE), dfd)
	add("link", sysPaths(unix.SYS_LINK, p("sub/d"), p("l")), 0)
	add("linkat", sysAt2(unix.SYS_LINKAT, dfd, "e", cwd, p("l2"), 0), dfd)
	add("symlink", sysPaths(unix.SYS_SYMLINK, "sub/d", p("s")), 0)
	q, q2 := bytePtr("../x"), bytePtr("s2")
	add("symlinkat", sys(unix.SYS_SYMLINKAT, uintptr(unsafe.Pointer(q)), uintptr(dfd), uintptr(unsafe.Pointer(q2))), dfd)
	runtime.KeepAlive(q)
	runtime.KeepAlive(q2)
	add("chmod", sysPath(unix.SYS_CHMOD, p("l"), 0o600), 0)

	fd := sysOpen(p("l2"), unix.O_RDWR, 0)
	if fd < 0 {
		return nil, fmt.Errorf("opening l2: %v", syscall.Errno(-fd))
	}
	var files []map[string]any
	fdOp := func(op string, nr uintptr, args ...uintptr) {
		info, err := fileInfo(fd)
		if err != nil {
			panic(err)
		}
		files = append(files, info)
		add(op, sys(nr, append([]uintptr{uintptr(fd)}, args...)...), fd)
	}
	fdOp("fchmod", unix.SYS_FCHMOD, 0o640)
	atPath := func(nr uintptr, name string, args ...uintptr) int {
		n := bytePtr(name)
		r := sys(nr, append([]uintptr{uintptr(dfd), uintptr(unsafe.Pointer(n))}, args...)...)
		runtime.KeepAlive(n)
		return r
	}
	add("fchmodat", atPath(unix.SYS_FCHMODAT, "d", 0o604), dfd)
	add("fchmodat2", atPath(unix.SYS_FCHMODAT2, "s2", 0o600, unix.AT_SYMLINK_NOFOLLOW), dfd)
	add("chown", sysPath(unix.SYS_CHOWN, p("l"), 65534, 65534), 0)
	fdOp("fchown", unix.SYS_FCHOWN, 0, 65534)
	add("lchown", sysPath(unix.SYS_LCHOWN, p("s"), 65534, ^uintptr(0)), 0)
	add("fchownat", atPath(unix.SYS_FCHOWNAT, "d", 0, 0, unix.AT_SYMLINK_NOFOLLOW), dfd)
	add("truncate", sysPath(unix.SYS_TRUNCATE, p("l"), 3), 0)
	fdOp("ftruncate", unix.SYS_FTRUNCATE, 5)
	add("unlink", sysPath(unix.SYS_UNLINK, p("l")), 0)
	add("unlinkat", atPath(unix.SYS_UNLINKAT, "e", 0), dfd)
	if err := unix.Mkdir(p("sub/dd"), 0o755); err != nil {
		return nil, err
	}
	add("unlinkat-dir", atPath(unix.SYS_UNLINKAT, "dd", unix.AT_REMOVEDIR), dfd)
	if err := unix.Mkdir(p("rd"), 0o755); err != nil {
		return nil, err
	}
	add("rmdir", sysPath(unix.SYS_RMDIR, p("rd")), 0)
	add("rmdir-enoent", sysPath(unix.SYS_RMDIR, p("missing")), 0)
	// A name relative to the working directory.
	if err := unix.Chdir(dir); err != nil {
		return nil, err
	}
	add("unlink-relative", sysPath(unix.SYS_UNLINK, "s"), 0)
	extra["files"] = files
	return ops, nil
}

// helperTamperTargets (root) finds the tracer's targets map (agenttrace is
// this process's parent) by its type, a cgroup array, in its fdinfo, and
// tries to point slot 0 at the cgroup2 root and to clear it; then it creates
// a map of its own and opens marker: tracing must go on.
func helperTamperTargets(marker string, extra map[string]any) ([]helperOp, error) {
	mapID, frozen, err := cgroupArrayOf(os.Getppid())
	if err != nil {
		return nil, err
	}
	extra["map_id"], extra["frozen"] = mapID, frozen
	var ops []helperOp
	add := func(op string, r int) int { ops = append(ops, helperOp{Op: op, Ret: r}); return r }

	var attr [128]byte
	binary.NativeEndian.PutUint32(attr[0:], uint32(mapID))
	fd := add("get_fd_by_id", sys(unix.SYS_BPF, unix.BPF_MAP_GET_FD_BY_ID, uintptr(unsafe.Pointer(&attr[0])), 128))
	mount, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	root := sysOpen(mount, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if root < 0 {
		return nil, fmt.Errorf("opening %s: %v", mount, syscall.Errno(-root))
	}
	var key, value uint32 = 0, uint32(root)
	attr = [128]byte{}
	binary.NativeEndian.PutUint32(attr[0:], uint32(fd))
	binary.NativeEndian.PutUint64(attr[8:], uint64(uintptr(unsafe.Pointer(&key))))
	binary.NativeEndian.PutUint64(attr[16:], uint64(uintptr(unsafe.Pointer(&value))))
	add("update", sys(unix.SYS_BPF, unix.BPF_MAP_UPDATE_ELEM, uintptr(unsafe.Pointer(&attr[0])), 128))
	binary.NativeEndian.PutUint64(attr[16:], 0) // delete takes no value: the rest of attr must be zero
	add("delete", sys(unix.SYS_BPF, unix.BPF_MAP_DELETE_ELEM, uintptr(unsafe.Pointer(&attr[0])), 128))
	runtime.KeepAlive(&key)
	runtime.KeepAlive(&value)

	attr = [128]byte{}
	binary.NativeEndian.PutUint32(attr[0:], unix.BPF_MAP_TYPE_ARRAY)
	binary.NativeEndian.PutUint32(attr[4:], 4) // key_size
	binary.NativeEndian.PutUint32(attr[8:], 4) // value_size
	binary.NativeEndian.PutUint32(attr[12:], 1)
	own := add("map_create", sys(unix.SYS_BPF, unix.BPF_MAP_CREATE, uintptr(unsafe.Pointer(&attr[0])), 128))
	var info [80]byte // struct bpf_map_info up to id
	attr = [128]byte{}
	binary.NativeEndian.PutUint32(attr[0:], uint32(own))
	binary.NativeEndian.PutUint32(attr[4:], uint32(len(info)))
	binary.NativeEndian.PutUint64(attr[8:], uint64(uintptr(unsafe.Pointer(&info[0]))))
	add("get_info", sys(unix.SYS_BPF, unix.BPF_OBJ_GET_INFO_BY_FD, uintptr(unsafe.Pointer(&attr[0])), 128))
	runtime.KeepAlive(&info)
	extra["own_map_id"] = binary.NativeEndian.Uint32(info[4:]) // bpf_map_info.id
	add("open", sysOpen(marker, unix.O_RDONLY, 0))
	return ops, nil
}

// cgroupArrayOf finds the BPF_MAP_TYPE_CGROUP_ARRAY among pid's fds and
// says whether it is frozen, from /proc/PID/fdinfo.
func cgroupArrayOf(pid int) (id int, frozen bool, err error) {
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, false, err
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		fields := map[string]string{}
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[k] = strings.TrimSpace(v)
			}
		}
		if fields["map_type"] == strconv.Itoa(unix.BPF_MAP_TYPE_CGROUP_ARRAY) {
			id, _ := strconv.Atoi(fields["map_id"])
			return id, fields["frozen"] == "1", nil
		}
	}
	return 0, false, fmt.Errorf("no cgroup array among the fds of pid %d", pid)
}
