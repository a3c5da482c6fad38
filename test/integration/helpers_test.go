package integration

// The helper side: what this test binary does when it runs under agenttrace
// with AGENTTRACE_HELPER=<action>. Each action makes raw syscalls, so the
// test knows exactly what the kernel was asked, and prints what the kernel
// answered as one line "RESULT {json}" on stdout: {"pid": ..., "ops": [...]}
// where each op is {"op": name, "ret": fd or -errno, "fd": socket}.

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
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

// helperOp is one syscall a helper made and what it returned.
type helperOp struct {
	Op  string `json:"op"`
	Ret int    `json:"ret"`          // result, or -errno
	Fd  int    `json:"fd,omitempty"` // the socket of a connect, the dirfd of an *at call
	// What fstat/statx say of the file descriptor an open returned.
	Ino   uint64 `json:"ino,omitempty"`
	Dev   string `json:"dev,omitempty"`
	MntID uint64 `json:"mnt_id,omitempty"`
}

func runHelper(action string, args []string) int {
	var ops []helperOp
	var err error
	extra := map[string]any{}
	switch action {
	case "true":
		return 0
	case "exit":
		code, _ := strconv.Atoi(args[0])
		return code
	case "sigkill":
		printResult(nil, nil)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
		return 1
	case "opens":
		ops, err = helperOpens(args[0])
	case "open":
		// Ops are named by argument index: a path need not be UTF-8.
		for i, p := range args {
			ops = append(ops, helperOp{Op: strconv.Itoa(i), Ret: sysOpen(p, unix.O_RDONLY, 0)})
		}
	case "repeat-open":
		n, _ := strconv.Atoi(args[1])
		for range n {
			ops = append(ops, helperOp{Op: "open", Ret: sysOpen(args[0], unix.O_RDONLY, 0)})
			if fd := ops[len(ops)-1].Ret; fd >= 0 {
				unix.Close(fd)
			}
			time.Sleep(5 * time.Millisecond)
		}
	case "cgmove":
		ops, err = helperCgroupMove(args[0], extra)
	case "execs":
		ops = helperExecFailures(args[0])
		// The last one succeeds: print first, the image is about to go.
		printResult(ops, extra)
		err = execHelper("true", []string{"exec-ok", "a b", "", "c\"d", "\xff"})
	case "exec-fail-args":
		// args[0] is a program that does not exist; the rest is its argv.
		env, _ := syscall.SlicePtrFromStrings(helperEnvFor("true"))
		argv, _ := syscall.SlicePtrFromStrings(args[1:])
		p := bytePtr(args[0])
		r, _, e := unix.Syscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&env[0])))
		runtime.KeepAlive(p)
		runtime.KeepAlive(argv)
		runtime.KeepAlive(env)
		ops = append(ops, helperOp{Op: "execve", Ret: ret(r, e)})
	case "exec-past-no-return":
		err = helperExecPastNoReturn(args[0], extra)
	case "exec-killed-loading":
		n, _ := strconv.Atoi(args[1])
		err = helperExecKilledLoading(args[0], n, extra)
	case "threads":
		err = onNonLeaderThread(func() error { return helperThreads(extra) })
	case "unfaulted":
		ops, err = helperUnfaulted(args[0], args[1], extra)
	case "execveat":
		err = helperExecveat(extra)
	case "emptyargv":
		err = helperEmptyArgv()
	case "connects":
		ops, err = helperConnects(args, extra)
	case "net-sends":
		err = helperNetSends(args, extra)
	case "net-fastopen":
		err = helperNetFastOpen(args, extra)
	case "net-nonblock":
		err = helperNetNonblock(args, extra)
	case "net-race":
		err = helperNetRace(args, extra)
	case "net-inbound":
		err = helperNetInbound(args, extra)
	case "net-dns":
		err = helperNetDNS(args, extra)
	case "net-daemon":
		ops = helperNetDaemon(args)
	case "touch":
		err = os.WriteFile(args[0], nil, 0o644)
	default:
		var known bool
		if ops, err, known = escapeHelper(action, args, extra); !known {
			ops, known, err = filesHelper(action, args, extra)
		}
		if !known {
			err = fmt.Errorf("unknown helper action %q", action)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", action, err)
		return 100
	}
	printResult(ops, extra)
	return 0
}

func printResult(ops []helperOp, extra map[string]any) {
	r := map[string]any{"pid": os.Getpid(), "ops": ops}
	for k, v := range extra {
		r[k] = v
	}
	b, _ := json.Marshal(r)
	// One write: the line must not interleave with another process's.
	os.Stdout.Write(append(append([]byte("RESULT "), b...), '\n'))
}

// ret turns a raw syscall result into fd-or-minus-errno.
func ret(r uintptr, errno syscall.Errno) int {
	if errno != 0 {
		return -int(errno)
	}
	return int(r)
}

func bytePtr(s string) *byte {
	p, err := unix.BytePtrFromString(s)
	if err != nil {
		panic(err)
	}
	return p
}

func sysOpen(path string, flags, mode int) int {
	p := bytePtr(path)
	r, _, e := unix.Syscall(unix.SYS_OPEN, uintptr(unsafe.Pointer(p)), uintptr(flags), uintptr(mode))
	runtime.KeepAlive(p)
	return ret(r, e)
}

func sysCreat(path string, mode int) int {
	p := bytePtr(path)
	r, _, e := unix.Syscall(unix.SYS_CREAT, uintptr(unsafe.Pointer(p)), uintptr(mode), 0)
	runtime.KeepAlive(p)
	return ret(r, e)
}

func sysOpenat(dirfd int, path string, flags, mode int) int {
	p := bytePtr(path)
	r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(flags), uintptr(mode), 0, 0)
	runtime.KeepAlive(p)
	return ret(r, e)
}

func sysOpenat2(dirfd int, path string, how *unix.OpenHow) int {
	fd, err := unix.Openat2(dirfd, path, how)
	if err != nil {
		return -int(err.(syscall.Errno))
	}
	return fd
}

// Names of the files helperOpens works with, below its directory.
const (
	opensExisting = "open-ok"
	opensSecret   = "secret" // mode 000, in the directory and in sub/
	opensSub      = "sub"
)

// helperOpens makes every kind of open, succeeding and failing with ENOENT;
// then drops root to uid/gid 65534 and fails each with EACCES on a mode-000
// file. The test checks each record against the op list.
func helperOpens(dir string) ([]helperOp, error) {
	var ops []helperOp
	add := func(op string, ret, fd int) { ops = append(ops, helperOp{Op: op, Ret: ret, Fd: fd}) }
	p := func(name string) string { return filepath.Join(dir, name) }

	add("open", sysOpen(p(opensExisting), unix.O_RDONLY, 0), 0)
	add("open-enoent", sysOpen(p("missing-open"), unix.O_RDONLY, 0), 0)
	add("creat", sysCreat(p("creat-new"), 0o640), 0)
	add("creat-enoent", sysCreat(p("no-dir/creat"), 0o600), 0)

	dfd := sysOpen(p(opensSub), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if dfd < 0 {
		return nil, fmt.Errorf("opening %s: %v", p(opensSub), syscall.Errno(-dfd))
	}
	add("openat", sysOpenat(dfd, "openat-new", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600), dfd)
	add("openat-enoent", sysOpenat(dfd, "openat-missing", unix.O_RDONLY, 0), dfd)
	add("openat2", sysOpenat2(dfd, "openat2-new", &unix.OpenHow{
		Flags: unix.O_RDWR | unix.O_CREAT, Mode: 0o644, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	}), dfd)
	add("openat2-exdev", sysOpenat2(dfd, "../"+opensExisting, &unix.OpenHow{
		Flags: unix.O_RDONLY, Resolve: unix.RESOLVE_BENEATH,
	}), dfd)
	add("openat2-enoent", sysOpenat2(dfd, "openat2-missing", &unix.OpenHow{
		Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT,
	}), dfd)

	// Drop root for good (every thread: the Go runtime applies it to all).
	if err := syscall.Setresgid(65534, 65534, 65534); err != nil {
		return nil, fmt.Errorf("setresgid: %w", err)
	}
	if err := syscall.Setgroups(nil); err != nil && err != syscall.EPERM {
		return nil, fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setresuid(65534, 65534, 65534); err != nil {
		return nil, fmt.Errorf("setresuid: %w", err)
	}
	add("open-eacces", sysOpen(p(opensSecret), unix.O_RDONLY, 0), 0)
	add("creat-eacces", sysCreat(p(opensSecret), 0o600), 0)
	add("openat-eacces", sysOpenat(dfd, opensSecret, unix.O_RDWR, 0), dfd)
	add("openat2-eacces", sysOpenat2(dfd, opensSecret, &unix.OpenHow{
		Flags: unix.O_RDONLY, Resolve: unix.RESOLVE_NO_MAGICLINKS,
	}), dfd)
	return ops, nil
}

// helperCgroupMove moves this process into a new child of its cgroup, as an
// agent managing its own workers might, then opens path.
func helperCgroupMove(path string, extra map[string]any) ([]helperOp, error) {
	rel, err := ownCgroup()
	if err != nil {
		return nil, err
	}
	mount, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	child := filepath.Join(mount, rel, "moved")
	if err := os.Mkdir(child, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(child, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		return nil, fmt.Errorf("moving into %s: %w", child, err)
	}
	now, err := ownCgroup()
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Stat(child, &st); err != nil {
		return nil, err
	}
	extra["cgroup_before"], extra["cgroup_after"], extra["cgroup_after_id"] = rel, now, st.Ino
	return []helperOp{{Op: "open", Ret: sysOpen(path, unix.O_RDONLY, 0)}}, nil
}

// ownCgroup reads the "0::/path" line of /proc/self/cgroup.
func ownCgroup() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rel, ok := strings.CutPrefix(line, "0::"); ok {
			return rel, nil
		}
	}
	return "", fmt.Errorf("no cgroup2 line in /proc/self/cgroup: %q", data)
}

// cgroup2Mount finds the cgroup2 mount point in /proc/self/mountinfo.
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		for i, field := range fields {
			if field == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && len(fields) > 4 {
				return fields[4], nil
			}
		}
	}
	return "", fmt.Errorf("no cgroup2 mount in /proc/self/mountinfo")
}

// helperEnv returns the environment for an exec of this binary as action.
func helperEnvFor(action string) []string {
	return append(helperEnviron(""), helperEnv+"="+action)
}

// execHelper replaces this process with this binary running action (execve).
func execHelper(action string, argv []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	return syscall.Exec(self, argv, helperEnvFor(action))
}

// Files helperExecFailures expects in its directory.
const (
	execMissing  = "no-such-program"
	execNoExec   = "not-executable" // mode 0644
	execGarbage  = "garbage"        // mode 0755, not a known binary format
	execFailArgv = "exec-fails"
	// Not a file: this binary exec'ed with an argv pointer nobody can read.
	execArgvFault = "argv-fault"
)

func helperExecFailures(dir string) []helperOp {
	env, _ := syscall.SlicePtrFromStrings(helperEnvFor("true"))
	var ops []helperOp
	for _, name := range []string{execMissing, execNoExec, execGarbage} {
		argv, _ := syscall.SlicePtrFromStrings([]string{execFailArgv, name})
		p := bytePtr(filepath.Join(dir, name))
		r, _, e := unix.Syscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&env[0])))
		runtime.KeepAlive(p)
		runtime.KeepAlive(argv)
		ops = append(ops, helperOp{Op: name, Ret: ret(r, e)})
	}
	// argv at an address that is never mapped: the kernel fails with EFAULT.
	if self, err := os.Executable(); err == nil {
		p := bytePtr(self)
		r, _, e := unix.Syscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(p)), 8, uintptr(unsafe.Pointer(&env[0])))
		runtime.KeepAlive(p)
		ops = append(ops, helperOp{Op: execArgvFault, Ret: ret(r, e)})
	}
	runtime.KeepAlive(env)
	return ops
}

// helperExecPastNoReturn runs path, which the kernel rejects only past the
// point of no return, as Go's os/exec does (clone(CLONE_VM|CLONE_VFORK),
// execve in the child): argv {"past-no-return", "a b"}. The child never
// returns from its execve: the kernel kills it with SIGSEGV.
func helperExecPastNoReturn(path string, extra map[string]any) error {
	c := exec.Command(path, "a b")
	c.Args[0] = "past-no-return"
	if err := c.Start(); err != nil {
		return err
	}
	err := c.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGSEGV {
		return fmt.Errorf("%s: %v, want killed by SIGSEGV", path, err)
	}
	extra["child"] = c.Process.Pid
	return nil
}

// helperExecKilledLoading starts path n times through os/exec with argv
// {"killed-while-loading", i} and sends each child SIGKILL as soon as Start
// returns: when the child's exec has closed its close-on-exec descriptors,
// past the point of no return. path is dropped from the page cache first,
// so the kernel is still loading the image (waiting for the disk) when the
// signal comes: then the execve fails (EFAULT) instead of succeeding. Each
// child's pid is in extra["children"].
func helperExecKilledLoading(path string, n int, extra map[string]any) error {
	var children []int
	for i := range n {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		f.Close()
		c := exec.Command(path, strconv.Itoa(i))
		c.Args[0] = "killed-while-loading"
		if err := c.Start(); err != nil {
			return err
		}
		unix.Kill(c.Process.Pid, unix.SIGKILL)
		c.Wait()
		children = append(children, c.Process.Pid)
	}
	extra["children"] = children
	return nil
}

// helperExecveat execs this binary through an fd: execveat(fd, "", argv,
// envp, AT_EMPTY_PATH).
func helperExecveat(extra map[string]any) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fd, err := unix.Open(self, unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	extra["fd"] = fd
	printResult(nil, extra)
	argv, _ := syscall.SlicePtrFromStrings([]string{"via-execveat", strconv.Itoa(fd)})
	env, _ := syscall.SlicePtrFromStrings(helperEnvFor("true"))
	empty := bytePtr("")
	_, _, e := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&env[0])), unix.AT_EMPTY_PATH, 0)
	runtime.KeepAlive(empty)
	runtime.KeepAlive(argv)
	runtime.KeepAlive(env)
	return fmt.Errorf("execveat: %w", e)
}

// helperEmptyArgv execs this binary with argv = {NULL}.
func helperEmptyArgv() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	argv := []*byte{nil}
	env, _ := syscall.SlicePtrFromStrings(helperEnvFor("true"))
	p := bytePtr(self)
	printResult(nil, nil)
	_, _, e := unix.Syscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&env[0])))
	runtime.KeepAlive(p)
	runtime.KeepAlive(argv)
	runtime.KeepAlive(env)
	return fmt.Errorf("execve with empty argv: %w", e)
}

// sysConnect connects with the sockaddr bytes exactly as given.
func sysConnect(fd int, sa []byte) int {
	r, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa)))
	runtime.KeepAlive(sa)
	return ret(r, e)
}

func sockaddrInet4(ip [4]byte, port int) []byte {
	sa := make([]byte, unix.SizeofSockaddrInet4)
	binary.NativeEndian.PutUint16(sa, unix.AF_INET)
	binary.BigEndian.PutUint16(sa[2:], uint16(port))
	copy(sa[4:], ip[:])
	return sa
}

func sockaddrInet6(ip [16]byte, port int) []byte {
	sa := make([]byte, unix.SizeofSockaddrInet6)
	binary.NativeEndian.PutUint16(sa, unix.AF_INET6)
	binary.BigEndian.PutUint16(sa[2:], uint16(port))
	copy(sa[8:], ip[:])
	return sa
}

// sockaddrUnix is a sockaddr_un holding name and, for a path, its NUL (the
// addrlen most programs pass); an abstract name starts with a NUL byte.
func sockaddrUnix(name string, abstract bool) []byte {
	sa := make([]byte, 2, 2+1+len(name))
	binary.NativeEndian.PutUint16(sa, unix.AF_UNIX)
	if abstract {
		return append(append(sa, 0), name...)
	}
	return append(append(sa, name...), 0)
}

// helperConnects connects every way the test checks: args are the IPv4
// listener's port, the IPv6 listener's port, a unix socket path and an
// abstract socket name.
func helperConnects(args []string, extra map[string]any) ([]helperOp, error) {
	port4, _ := strconv.Atoi(args[0])
	port6, _ := strconv.Atoi(args[1])
	unixPath, abstract := args[2], args[3]
	loop4 := [4]byte{127, 0, 0, 1}
	mapped := [16]byte{10: 0xff, 11: 0xff, 12: 127, 13: 0, 14: 0, 15: 1}
	loop6 := [16]byte{15: 1}

	var ops []helperOp
	var err error
	socket := func(family, typ int) int {
		if err != nil {
			return -1
		}
		var fd int
		fd, err = unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
		return fd
	}
	var seen []netOp
	connect := func(op string, fd int, sa []byte) {
		if err == nil {
			ops = append(ops, helperOp{Op: op, Fd: fd, Ret: sysConnect(fd, sa)})
			o := netOp{Op: op, Fd: fd, Ret: ops[len(ops)-1].Ret}
			observe(&o, fd)
			seen = append(seen, o)
		}
	}

	connect("inet", socket(unix.AF_INET, unix.SOCK_STREAM), sockaddrInet4(loop4, port4))

	// A bound socket that does not listen: its port refuses, and stays ours.
	closed := socket(unix.AF_INET, unix.SOCK_STREAM)
	if err == nil {
		err = unix.Bind(closed, &unix.SockaddrInet4{Addr: loop4})
	}
	var closedPort int
	if err == nil {
		var sa unix.Sockaddr
		sa, err = unix.Getsockname(closed)
		if err == nil {
			closedPort = sa.(*unix.SockaddrInet4).Port
		}
	}
	connect("refused", socket(unix.AF_INET, unix.SOCK_STREAM), sockaddrInet4(loop4, closedPort))
	connect("nonblock", socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK), sockaddrInet4(loop4, port4))
	connect("inet6", socket(unix.AF_INET6, unix.SOCK_STREAM), sockaddrInet6(loop6, port6))
	connect("mapped", socket(unix.AF_INET6, unix.SOCK_STREAM), sockaddrInet6(mapped, port4))
	connect("unix", socket(unix.AF_UNIX, unix.SOCK_STREAM), sockaddrUnix(unixPath, false))
	connect("abstract", socket(unix.AF_UNIX, unix.SOCK_STREAM), sockaddrUnix(abstract, true))
	// AF_APPLETALK (5) on a TCP socket.
	appletalk := make([]byte, 16)
	binary.NativeEndian.PutUint16(appletalk, unix.AF_APPLETALK)
	connect("appletalk", socket(unix.AF_INET, unix.SOCK_STREAM), appletalk)
	if err != nil {
		return nil, err
	}
	ops = append(ops, helperOp{Op: "closed-port", Ret: closedPort})
	extra["net"] = seen
	return ops, nil
}

// onNonLeaderThread runs fn on a thread that is not the process's first
// (its tid differs from its pid).
func onNonLeaderThread(fn func() error) error {
	errc := make(chan error, 1)
	var try func()
	try = func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// Keep the leader thread here: the next goroutine gets another.
			go try()
			select {}
		}
		errc <- fn()
	}
	go try()
	return <-errc
}

// helperThreads, on a thread other than the leader, starts a child (fork
// and exec) and waits for it, then execs this binary.
func helperThreads(extra map[string]any) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(self, "child-of-thread")
	child.Env = helperEnvFor("true")
	if err := child.Run(); err != nil {
		return err
	}
	extra["tid"], extra["child"] = unix.Gettid(), child.Process.Pid
	printResult(nil, extra)
	return execHelper("true", []string{"exec-from-thread"})
}

// untouched returns a pointer to data in a fresh file mapping that nothing
// has touched: the page is not in the process's page tables until the
// kernel faults it in, so a tracer that cannot fault pages in cannot read
// it at syscall entry. Each call maps its own file (fault-around maps
// neighbouring pages of the same mapping).
func untouched(dir string, data []byte) (uintptr, error) {
	f, err := os.CreateTemp(dir, "page-")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return 0, err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, len(data), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return 0, err
	}
	// Never unmapped: the pointer must stay valid; &m[0] does not read it.
	return uintptr(unsafe.Pointer(&m[0])), nil
}

// helperUnfaulted passes every user-memory argument the tracer reads from a
// page not yet faulted in: an open path, an openat2 how, a connect address,
// the file name of a failing and then of a successful execve.
func helperUnfaulted(dir, port string, extra map[string]any) ([]helperOp, error) {
	var ops []helperOp
	ptr := func(data []byte) uintptr {
		p, err := untouched(dir, data)
		if err != nil {
			panic(err)
		}
		return p
	}
	existing := filepath.Join(dir, "existing")
	r, _, e := unix.Syscall(unix.SYS_OPEN, ptr(append([]byte(existing), 0)), unix.O_RDONLY, 0)
	ops = append(ops, helperOp{Op: "open", Ret: ret(r, e)})

	how := make([]byte, unix.SizeofOpenHow)
	binary.NativeEndian.PutUint64(how[0:], unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW)
	binary.NativeEndian.PutUint64(how[16:], unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_XDEV)
	path2 := bytePtr(filepath.Join(dir, "existing2"))
	atFdcwd := unix.AT_FDCWD
	r, _, e = unix.Syscall6(unix.SYS_OPENAT2, uintptr(atFdcwd), uintptr(unsafe.Pointer(path2)), ptr(how), unix.SizeofOpenHow, 0, 0)
	runtime.KeepAlive(path2)
	ops = append(ops, helperOp{Op: "openat2", Ret: ret(r, e)})

	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	p, _ := strconv.Atoi(port)
	r, _, e = unix.Syscall(unix.SYS_CONNECT, uintptr(fd), ptr(sockaddrInet4([4]byte{127, 0, 0, 1}, p)), unix.SizeofSockaddrInet4)
	ops = append(ops, helperOp{Op: "connect", Ret: ret(r, e), Fd: fd})
	seen := netOp{Op: "connect", Fd: fd, Ret: ops[len(ops)-1].Ret}
	observe(&seen, fd)
	extra["net"] = []netOp{seen}

	env, _ := syscall.SlicePtrFromStrings(helperEnvFor("true"))
	argv, _ := syscall.SlicePtrFromStrings([]string{"unfaulted-exec"})
	r, _, e = unix.Syscall(unix.SYS_EXECVE, ptr(append([]byte(filepath.Join(dir, "missing")), 0)), uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&env[0])))
	ops = append(ops, helperOp{Op: "execve-enoent", Ret: ret(r, e)})

	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	printResult(ops, extra)
	_, _, e = unix.Syscall(unix.SYS_EXECVE, ptr(append([]byte(self), 0)), uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&env[0])))
	runtime.KeepAlive(argv)
	runtime.KeepAlive(env)
	return nil, fmt.Errorf("execve: %w", e)
}
