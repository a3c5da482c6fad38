package integration

// Kernel truth for files and executables (issue 12): every way an agent can
// make an open record name something other than the file it opened, or
// open a file with no open record, tried as the agent would (unprivileged
// where the evasion is), and compared with what stat(2) says of the file.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// realPath resolves symbolic links in path (the test directories live below
// os.TempDir, which may be a link).
func realPath(t *testing.T, path string) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, filepath.Base(path))
}

// fileType is the file object's "type" for st_mode.
func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "char"
	case unix.S_IFBLK:
		return "block"
	}
	return "anon"
}

// fileAs is the file object of an open record of the file statPath names
// (symbolic links followed), recorded under the path seen; mntID 0 means
// the mount statPath is on.
func fileAs(t *testing.T, statPath, seen string, mntID uint64) obj {
	t.Helper()
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, statPath, 0, unix.STATX_BASIC_STATS|unix.STATX_MNT_ID, &stx); err != nil {
		t.Fatal(err)
	}
	if mntID == 0 {
		mntID = stx.Mnt_id
	}
	return obj{
		"path":   seen,
		"dev":    fmt.Sprintf("%d:%d", stx.Dev_major, stx.Dev_minor),
		"ino":    stx.Ino,
		"mode":   fmt.Sprintf("0%o", stx.Mode),
		"type":   fileType(uint32(stx.Mode)),
		"mnt_id": mntID,
	}
}

// fileOf is the file object of an open of the file at path.
func fileOf(t *testing.T, path string) obj {
	t.Helper()
	return fileAs(t, path, realPath(t, path), 0)
}

// dirOf is the dir object of a failed relative open resolved against dir.
func dirOf(t *testing.T, dir string) obj {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	return obj{"path": real}
}

// helperOps returns the ops of a helper result in order, with their
// identities, and the result's pid.
func helperOps(t *testing.T, r map[string]any) (int, []helperOp) {
	t.Helper()
	b, err := json.Marshal(r["ops"])
	if err != nil {
		t.Fatal(err)
	}
	var list []helperOp
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	return num(t, r, "pid"), list
}

// opNamed returns the op called name, which must have succeeded (wantErrno
// 0) or failed with exactly wantErrno.
func listOp(t *testing.T, list []helperOp, name string, wantErrno unix.Errno) helperOp {
	t.Helper()
	all := map[string]helperOp{}
	for _, op := range list {
		all[op.Op] = op
	}
	return wantOp(t, all, name, wantErrno)
}

// resultHaving returns the helper result that has key (runs whose processes
// each print one).
func (s *session) resultHaving(t *testing.T, key string) map[string]any {
	t.Helper()
	for _, r := range s.results {
		if _, ok := r[key]; ok {
			return r
		}
	}
	t.Fatalf("no helper result with %q: stdout:\n%s\nstderr:\n%s", key, s.stdout, s.stderr)
	return nil
}

// openByFd matches the successful open records of pid that returned fd.
func openByFd(pid, fd int) func(*rec) bool {
	return func(r *rec) bool { return r.Proc.Pid == pid && r.Open.Fd != nil && *r.Open.Fd == fd }
}

// openByFdPath matches the successful open records of pid that returned
// fd for path (the Go runtime's own opens reuse low fds).
func openByFdPath(pid, fd int, path string) func(*rec) bool {
	return func(r *rec) bool { return openByFd(pid, fd)(r) && r.Open.Path == path }
}

// wantTagged checks r's tags: credential_access or none.
func wantTagged(t *testing.T, r *rec, credential bool) {
	t.Helper()
	var want []string
	if credential {
		want = []string{"credential_access"}
	}
	if !slices.Equal(r.Tags, want) {
		t.Errorf("tags %q, want %q:\n%s", r.Tags, want, r.line)
	}
}

// wantSameFile checks that a record's file is the one the helper's fstat saw.
func wantSameFile(t *testing.T, r *rec, op helperOp) {
	t.Helper()
	if r.Open.File == nil || r.Open.File.Ino != op.Ino || r.Open.File.Dev != op.Dev || r.Open.File.MntID != op.MntID {
		t.Errorf("record's file is not the file the kernel opened (fstat: ino %d dev %s mnt_id %d):\n%s", op.Ino, op.Dev, op.MntID, r.line)
	}
}

func rdonly(o obj) obj {
	o["flags"], o["flags_raw"], o["mode"] = []string{"O_RDONLY"}, 0, "0"
	return o
}

// oLargefile is O_LARGEFILE on x86_64 (unix.O_LARGEFILE is 0 there).
const oLargefile = 0o100000

// large: an io_uring open of O_RDONLY, as the kernel holds it: with
// O_LARGEFILE, which it adds on 64-bit.
func large(o obj) obj {
	o["flags"], o["flags_raw"], o["mode"] = []string{"O_RDONLY", "O_LARGEFILE"}, oLargefile, "0"
	return o
}

// TestOpenRelative: three different files all named target.txt, opened
// relative to the working directory after chdir and after fchdir, to a
// dirfd and to a dirfd dup2'd to another number, by an unprivileged agent.
// Each record names the file the kernel opened; a failed relative open
// names the directory it was resolved against.
func TestOpenRelative(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	for _, sub := range []string{"a", "b", "c"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, sub, "target.txt"), []byte(sub), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := agent(t, dir, runOpts{helper: "relative"}, helperBin, dir)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	pid, list := helperOps(t, s.result(t))
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, c := range []struct {
		op      string
		syscall string
		path    string
		file    string // the file opened
		dir     string // a failure's directory; "" for an absolute path
		errno   unix.Errno
	}{
		{"chdir", "open", "target.txt", p("a/target.txt"), "", 0},
		{"chdir-enoent", "open", "missing.txt", "", p("a"), unix.ENOENT},
		{"fchdir", "open", "target.txt", p("b/target.txt"), "", 0},
		{"dotdot", "open", "../c/target.txt", p("c/target.txt"), "", 0},
		{"dirfd", "openat", "target.txt", p("c/target.txt"), "", 0},
		{"dirfd-enoent", "openat", "nodir/missing.txt", "", p("c"), unix.ENOENT},
		{"dup2", "openat", "target.txt", p("a/target.txt"), "", 0},
		{"dup2-enoent", "openat", "missing.txt", "", p("a"), unix.ENOENT},
		{"abs-enoent", "open", p("missing-abs.txt"), "", "", unix.ENOENT},
	} {
		t.Run(c.op, func(t *testing.T) {
			op := listOp(t, list, c.op, c.errno)
			dirfd := unix.AT_FDCWD
			if c.syscall == "openat" {
				dirfd = op.Fd
			}
			r := s.one(t, "open", func(r *rec) bool {
				return r.Proc.Pid == pid && r.Open.Path == c.path && r.Open.Dirfd == dirfd && r.Open.Ret == op.Ret
			})
			want := openResult(rdonly(obj{"syscall": c.syscall, "dirfd": dirfd, "path": c.path}), op.Ret)
			if c.file != "" {
				want["file"] = fileOf(t, c.file)
				wantSameFile(t, r, op)
			}
			if c.dir != "" {
				want["dir"] = dirOf(t, c.dir)
			}
			wantBody(t, r, want)
			wantTagged(t, r, false)
		})
	}
}

// sensitiveFixture makes, below dir, a home with an SSH key and AWS
// credentials, a vault/secret.key named in a --sensitive-paths file (an
// anchored pattern), a symbolic link to the key, a hard link to the secret,
// a benign file, and a directory the unprivileged helper can write. It
// returns the home and the run flags.
func sensitiveFixture(t *testing.T, dir string) (home string, flags []string) {
	t.Helper()
	home = filepath.Join(dir, "home")
	for _, d := range []string{"home/.ssh", "home/.aws", "vault", "w", "mnt"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"home/.ssh", "w"} {
		if err := os.Chmod(filepath.Join(dir, d), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range map[string]string{
		"home/.ssh/id_rsa":      "ssh key",
		"home/.aws/credentials": "aws",
		"vault/secret.key":      "secret",
		"benign.txt":            "benign",
		"mnt/innocent.txt":      "innocent",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(home, ".ssh", "id_rsa"), filepath.Join(dir, "sym")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "vault", "secret.key"), filepath.Join(dir, "hard.txt")); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(dir, "sensitive.txt")
	if err := os.WriteFile(list, []byte(realPath(t, filepath.Join(dir, "vault", "secret.key"))+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return home, []string{"--sensitive-paths", list}
}

// TestOpenSensitiveByTruth: an unprivileged agent reaches credentials under
// names the sensitive list does not match: a symbolic link, a hard link, a
// relative name after cd, a /proc/self/fd reopen, and a hard link to a key
// it created itself. Every one is tagged credential_access, by the path the
// kernel resolved or by the file's identity (device, inode); a benign file
// is not.
func TestOpenSensitiveByTruth(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	home, flags := sensitiveFixture(t, dir)
	s := agent(t, dir, runOpts{helper: "links", flags: flags}, helperBin, dir, home)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	pid, list := helperOps(t, s.result(t))
	p := func(name string) string { return filepath.Join(dir, name) }
	created := filepath.Join(home, ".ssh", "id_ed25519")
	vaultOpen := s.one(t, "open", func(r *rec) bool { return r.Proc.Pid == pid && r.Open.Path == p("vault") })
	for _, c := range []struct {
		op, path, file string
		flags          []string
		credential     bool
	}{
		{"symlink", p("sym"), filepath.Join(home, ".ssh", "id_rsa"), nil, true},
		{"hardlink", p("hard.txt"), p("hard.txt"), nil, true},
		{"cd", "credentials", filepath.Join(home, ".aws", "credentials"), nil, true},
		{"procfd", fmt.Sprintf("/proc/self/fd/%d/secret.key", *vaultOpen.Open.Fd), p("vault/secret.key"), nil, true},
		{"create", created, created, []string{"O_WRONLY", "O_CREAT", "O_EXCL"}, true},
		{"created-link", p("w/notes.txt"), p("w/notes.txt"), nil, true},
		{"benign", p("benign.txt"), p("benign.txt"), nil, false},
	} {
		t.Run(c.op, func(t *testing.T) {
			op := listOp(t, list, c.op, 0)
			r := s.one(t, "open", openByFdPath(pid, op.Ret, c.path))
			want := openResult(rdonly(obj{"syscall": "open", "dirfd": unix.AT_FDCWD, "path": c.path, "file": fileOf(t, c.file)}), op.Ret)
			if c.flags != nil {
				want["flags"], want["flags_raw"], want["mode"] = c.flags, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, "0600"
			}
			wantBody(t, r, want)
			wantSameFile(t, r, op)
			wantTagged(t, r, c.credential)
		})
	}
}

// TestOpenBindMountUserns: an unprivileged agent creates a user and mount
// namespace and bind-mounts a sensitive file onto an innocent name. The
// record names the file as the process sees it, with the secret's device
// and inode, and is tagged by that identity.
func TestOpenBindMountUserns(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	_, flags := sensitiveFixture(t, dir)
	secret, target := filepath.Join(dir, "vault", "secret.key"), filepath.Join(dir, "mnt", "innocent.txt")
	s := agent(t, dir, runOpts{helper: "bind", flags: flags}, helperBin, secret, target)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	pid, list := helperOps(t, s.resultHaving(t, "ops"))
	if len(list) != 1 {
		t.Fatalf("the bind child reported %v", list)
	}
	op := listOp(t, list, "bind", 0)
	r := s.one(t, "open", openByFdPath(pid, op.Ret, target))
	seen := realPath(t, target)
	file := fileAs(t, secret, seen, op.MntID)
	file["path_in_ns"] = seen
	wantBody(t, r, openResult(rdonly(obj{"syscall": "open", "dirfd": unix.AT_FDCWD, "path": target, "file": file}), op.Ret))
	wantSameFile(t, r, op)
	wantTagged(t, r, true)
	if r.Proc.UID != 65534 {
		t.Errorf("the bind mount was not made by the unprivileged helper: uid %d", r.Proc.UID)
	}
}

// TestOpenTree: open_tree gives a descriptor of a path, and with
// OPEN_TREE_CLONE a detached copy of its mount, through which paths start
// at the copy's root. Both are open records with the file; an open through
// the detached copy names "/secret.key" and is tagged by the secret's identity.
func TestOpenTree(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	_, flags := sensitiveFixture(t, dir)
	s := agent(t, dir, runOpts{helper: "open-tree", flags: flags}, helperBin, dir)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	pid, list := helperOps(t, s.result(t))
	vault := filepath.Join(dir, "vault")
	secret := filepath.Join(vault, "secret.key")

	tree := listOp(t, list, "open_tree", 0)
	r := s.one(t, "open", openByFdPath(pid, tree.Ret, vault))
	wantBody(t, r, openResult(obj{"syscall": "open_tree", "dirfd": unix.AT_FDCWD, "path": vault,
		"flags": []string{"OPEN_TREE_CLOEXEC"}, "flags_raw": unix.OPEN_TREE_CLOEXEC, "file": fileOf(t, vault)}, tree.Ret))
	wantSameFile(t, r, tree)

	through := listOp(t, list, "through-tree", 0)
	r = s.one(t, "open", openByFdPath(pid, through.Ret, "secret.key"))
	wantBody(t, r, openResult(rdonly(obj{"syscall": "openat", "dirfd": tree.Ret, "path": "secret.key", "file": fileOf(t, secret)}), through.Ret))
	wantTagged(t, r, true)

	clone := listOp(t, list, "open_tree_clone", 0)
	r = s.one(t, "open", openByFdPath(pid, clone.Ret, vault))
	wantBody(t, r, openResult(obj{"syscall": "open_tree", "dirfd": unix.AT_FDCWD, "path": vault,
		"flags": []string{"OPEN_TREE_CLONE", "OPEN_TREE_CLOEXEC"}, "flags_raw": unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC,
		"file": fileAs(t, vault, "/", clone.MntID)}, clone.Ret))
	wantSameFile(t, r, clone)

	inClone := listOp(t, list, "through-clone", 0)
	r = s.one(t, "open", openByFdPath(pid, inClone.Ret, "secret.key"))
	wantBody(t, r, openResult(rdonly(obj{"syscall": "openat", "dirfd": clone.Ret, "path": "secret.key",
		"file": fileAs(t, secret, "/secret.key", clone.MntID)}), inClone.Ret))
	wantTagged(t, r, true)
}

// TestOpenByHandle: name_to_handle_at, then open_by_handle_at (root: it
// needs CAP_DAC_READ_SEARCH) opens the secret with no path at all.
func TestOpenByHandle(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	_, flags := sensitiveFixture(t, dir)
	// One name only: a handle names an inode, and the kernel opens it
	// through whichever of its dentries it finds.
	if err := os.Remove(filepath.Join(dir, "hard.txt")); err != nil {
		t.Fatal(err)
	}
	s := agent(t, dir, runOpts{helper: "handle", flags: flags}, helperBin, dir)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid, list := helperOps(t, res)
	op := listOp(t, list, "open_by_handle_at", 0)
	r := s.one(t, "open", func(r *rec) bool { return openByFd(pid, op.Ret)(r) && r.Open.Syscall == "open_by_handle_at" })
	wantBody(t, r, openResult(obj{"syscall": "open_by_handle_at", "mount_fd": op.Fd,
		"handle": obj{"type": num(t, res, "handle_type"), "bytes_hex": res["handle_hex"]},
		"flags":  []string{"O_RDONLY"}, "flags_raw": 0, "file": fileOf(t, filepath.Join(dir, "vault", "secret.key"))}, op.Ret))
	wantSameFile(t, r, op)
	wantTagged(t, r, true)
}

// TestPidfdGetfd: an unprivileged agent takes an open descriptor of the
// secret from its child with pidfd_getfd. The record names the source
// process (pid, exec_id, exe) and the file, and is tagged.
func TestPidfdGetfd(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	_, flags := sensitiveFixture(t, dir)
	hard := filepath.Join(dir, "hard.txt")
	s := agent(t, dir, runOpts{helper: "getfd", flags: flags}, helperBin, hard)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid, list := helperOps(t, res)
	child := num(t, res, "child")
	op := listOp(t, list, "pidfd_getfd", 0)
	childExec := s.one(t, "exec", byPid(child))
	r := s.one(t, "open", func(r *rec) bool { return openByFd(pid, op.Ret)(r) && r.Open.Syscall == "pidfd_getfd" })
	wantBody(t, r, openResult(obj{"syscall": "pidfd_getfd", "pidfd": op.Fd, "target_fd": num(t, res, "target_fd"),
		"source": obj{"pid": child, "exec_id": childExec.Proc.ExecID, "exe": helperBin},
		"file":   fileOf(t, hard)}, op.Ret))
	wantSameFile(t, r, op)
	wantTagged(t, r, true)

	// A connected socket taken from the child: which socket, and its peer.
	op = listOp(t, list, "pidfd_getfd-socket", 0)
	if op.Ret < 0 {
		t.Fatalf("pidfd_getfd of the socket: %d", op.Ret)
	}
	r = s.one(t, "open", func(r *rec) bool { return openByFd(pid, op.Ret)(r) && r.Open.Syscall == "pidfd_getfd" })
	local := fmt.Sprintf("127.0.0.1:%d", num(t, res, "sock_local_port"))
	peer := fmt.Sprintf("127.0.0.1:%d", num(t, res, "sock_peer_port"))
	wantBody(t, r, openResult(obj{"syscall": "pidfd_getfd", "pidfd": op.Fd, "target_fd": num(t, res, "target_sock"),
		"source": obj{"pid": child, "exec_id": childExec.Proc.ExecID, "exe": helperBin},
		"file": obj{"path": fmt.Sprintf("socket:[%d]", op.Ino), "dev": op.Dev, "ino": op.Ino, "mode": "0140777", "type": "socket",
			"mnt_id": op.MntID, "fileless": true,
			"socket": sockObj(t, "AF_INET", "SOCK_STREAM", "tcp", "ESTABLISHED", uint64(num(t, res, "sock_cookie")), local, peer)}}, op.Ret))
	wantTagged(t, r, false)
}

// TestIOUringOpen: opens through io_uring, which make no open syscall, by
// an unprivileged agent: inline, in a kernel worker (IOSQE_ASYNC), openat2,
// a failed relative open, a sensitive file, into a fixed-file slot, with no
// completion posted for a success (IOSQE_CQE_SKIP_SUCCESS) and with the
// completion overflowing the ring. io_uring_setup is recorded too.
func TestIOUringOpen(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	_, flags := sensitiveFixture(t, dir)
	for _, name := range []string{"uring-a.txt", "uring-b.txt", "uring-c.txt", "uring-slot.txt", "uring-skip.txt", "uring-overflow.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(dir, "vault", "secret.key")
	s := agent(t, dir, runOpts{helper: "iouring", flags: flags}, helperBin, dir, secret)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid, list := helperOps(t, res)
	p := func(name string) string { return filepath.Join(dir, name) }

	setup := listOp(t, list, "io_uring_setup", 0)
	r := s.one(t, "io_uring", func(r *rec) bool { return r.Proc.Pid == pid && strings.Contains(string(r.line), `"entries":8,`) })
	wantBody(t, r, obj{"syscall": "io_uring_setup", "entries": 8, "flags": []string{}, "fd": setup.Ret, "ret": setup.Ret})
	r = s.one(t, "io_uring", func(r *rec) bool { return r.Proc.Pid == pid && strings.Contains(string(r.line), `"entries":4,`) })
	overflowFd := num(t, res, "overflow_ring_fd")
	wantBody(t, r, obj{"syscall": "io_uring_setup", "entries": 4, "flags": []string{"IORING_SETUP_CQSIZE"}, "cq_entries": 4, "fd": overflowFd, "ret": overflowFd})

	byUserData := func(ud uint64) func(*rec) bool {
		return func(r *rec) bool { return r.Proc.Pid == pid && r.Open.IOURing != nil && r.Open.IOURing.UserData == ud }
	}
	dirfd := s.one(t, "open", func(r *rec) bool { return r.Proc.Pid == pid && r.Open.Path == dir }).Open.Ret
	for _, c := range []struct {
		op       string
		ud       uint64
		want     obj
		file     string
		errno    unix.Errno
		tagged   bool
		sqeFlags []string
	}{
		{"openat", 0x1001, large(obj{"syscall": "io_uring_openat", "dirfd": unix.AT_FDCWD, "path": p("uring-a.txt")}), p("uring-a.txt"), 0, false, nil},
		{"openat-async", 0x1002, obj{"syscall": "io_uring_openat", "dirfd": dirfd, "path": "uring-b.txt", "flags": []string{"O_RDONLY", "O_LARGEFILE", "O_CLOEXEC"},
			"flags_raw": unix.O_CLOEXEC | oLargefile, "mode": "0"}, p("uring-b.txt"), 0, false, []string{"IOSQE_ASYNC"}},
		{"openat2", 0x1003, large(obj{"syscall": "io_uring_openat2", "dirfd": dirfd, "path": "uring-c.txt", "resolve": []string{"RESOLVE_BENEATH"}}),
			p("uring-c.txt"), 0, false, nil},
		{"openat-enoent", 0x1004, large(obj{"syscall": "io_uring_openat", "dirfd": dirfd, "path": "missing.txt", "dir": dirOf(t, dir)}), "", unix.ENOENT, false, nil},
		{"openat-secret", 0x1005, large(obj{"syscall": "io_uring_openat", "dirfd": unix.AT_FDCWD, "path": secret}), secret, 0, true, nil},
		{"openat-overflow", 0x1008, large(obj{"syscall": "io_uring_openat", "dirfd": unix.AT_FDCWD, "path": p("uring-overflow.txt")}), p("uring-overflow.txt"), 0, false, nil},
	} {
		t.Run(c.op, func(t *testing.T) {
			op := listOp(t, list, c.op, c.errno)
			r := s.one(t, "open", byUserData(c.ud))
			want := openResult(c.want, op.Ret)
			want["io_uring"] = obj{"user_data": c.ud, "sqe_flags": append([]string{}, c.sqeFlags...)}
			if c.file != "" {
				want["file"] = fileOf(t, c.file)
				wantSameFile(t, r, op)
			}
			wantBody(t, r, want)
			wantTagged(t, r, c.tagged)
		})
	}
	t.Run("slot", func(t *testing.T) {
		op := listOp(t, list, "openat-slot", 0)
		r := s.one(t, "open", byUserData(0x1006))
		wantBody(t, r, large(obj{"syscall": "io_uring_openat", "dirfd": unix.AT_FDCWD, "path": p("uring-slot.txt"),
			"io_uring": obj{"user_data": 0x1006, "sqe_flags": []string{}}, "file_slot": 2, "ret": op.Ret, "file": fileOf(t, p("uring-slot.txt"))}))
	})
	t.Run("cqe-skip", func(t *testing.T) {
		r := s.one(t, "open", byUserData(0x1007))
		wantBody(t, r, large(obj{"syscall": "io_uring_openat", "dirfd": unix.AT_FDCWD, "path": p("uring-skip.txt"),
			"io_uring": obj{"user_data": 0x1007, "sqe_flags": []string{"IOSQE_CQE_SKIP_SUCCESS"}, "cqe_skipped": true}}))
	})
}

// TestOpenUnfaultedRace: a path in a page that is missing at syscall entry
// and stalls the kernel in userfaultfd while its content is swapped for a
// decoy. The record must not claim a path it could not read, and its file
// is always the one the kernel opened.
func TestOpenUnfaultedRace(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	// The names differ well before the page boundary the helper splits them at.
	real, decoy := filepath.Join(dir, "real-0123456789abcdef.txt"), filepath.Join(dir, "deco-0123456789abcdef.txt")
	for _, f := range []string{real, decoy} {
		if err := os.WriteFile(f, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const n = 20
	s := agent(t, dir, runOpts{helper: "uffd"}, helperBin, real, decoy, strconv.Itoa(n))
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	pid, list := helperOps(t, s.result(t))
	files := map[uint64]obj{}
	for _, f := range []string{real, decoy} {
		o := fileOf(t, f)
		files[o["ino"].(uint64)] = o
	}
	for i := range n {
		op := listOp(t, list, fmt.Sprintf("uffd-%d", i), 0)
		file, ok := files[op.Ino]
		if !ok {
			t.Fatalf("uffd-%d opened inode %d, neither %s nor %s", i, op.Ino, real, decoy)
		}
		r := s.one(t, "open", func(r *rec) bool {
			return openByFd(pid, op.Ret)(r) && (r.Open.Path == "" || r.Open.Path == real || r.Open.Path == decoy)
		})
		wantBody(t, r, openResult(obj{"syscall": "open", "dirfd": unix.AT_FDCWD, "path_unreadable": true,
			"flags": []string{"O_RDONLY"}, "flags_raw": 0, "mode": "0", "file": file}, op.Ret))
	}
}

// TestOpenPathFlip: a thread flips the path buffer between two names while
// another opens it, over many opens. Whichever name the kernel used, the
// record's file is the one it opened.
func TestOpenPathFlip(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	a, b := filepath.Join(dir, "flip-a.txt"), filepath.Join(dir, "flip-b.txt")
	for _, f := range []string{a, b} {
		if err := os.WriteFile(f, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const n = 2000
	s := agent(t, dir, runOpts{helper: "flip"}, helperBin, a, b, strconv.Itoa(n))
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	pid, list := helperOps(t, s.result(t))
	files := map[uint64]obj{}
	for _, f := range []string{a, b} {
		o := fileOf(t, f)
		files[o["ino"].(uint64)] = o
	}
	byFd := map[int]*rec{}
	for _, r := range s.find("open", func(r *rec) bool {
		return r.Proc.Pid == pid && r.Open.Fd != nil && r.Open.File != nil && files[r.Open.File.Ino] != nil
	}) {
		byFd[*r.Open.Fd] = r
	}
	flipped := 0
	for i := range n {
		op := listOp(t, list, fmt.Sprintf("flip-%d", i), 0)
		r := byFd[op.Ret]
		if r == nil {
			t.Fatalf("no open record of fd %d (flip-%d)", op.Ret, i)
		}
		file, ok := files[op.Ino]
		if !ok {
			t.Fatalf("flip-%d opened inode %d", i, op.Ino)
		}
		if r.Open.Path != a && r.Open.Path != b {
			t.Errorf("flip-%d: path %q is neither name:\n%s", i, r.Open.Path, r.line)
		}
		if r.Open.Path != file["path"] {
			flipped++ // the buffer changed between our read and the kernel's
		}
		wantBody(t, r, openResult(rdonly(obj{"syscall": "open", "dirfd": unix.AT_FDCWD, "path": r.Open.Path, "file": file}), op.Ret))
		if t.Failed() {
			return
		}
	}
	t.Logf("%d of %d opens: the requested path read at entry differs from the file the kernel opened", flipped, n)
}

// helperHash is the SHA-256 of helperBin, computed once.
var helperHash = sync.OnceValues(func() (string, error) {
	data, err := os.ReadFile(helperBin)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), err
})

// fileSHA256 is the hex SHA-256 of the file at path.
func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	if path == helperBin {
		h, err := helperHash()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256Of(data)
}

// TestExecMemfd: a fileless program (memfd_create, then execveat with
// AT_EMPTY_PATH, execve of /proc/self/fd/N, or glibc's fexecve) whose argv
// and comm say "git". The exec record says exe "memfd:NAME", fileless, and
// the SHA-256 of the image; so does every later record's proc.exe; and
// show presents it as fileless, not as git.
func TestExecMemfd(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	for _, how := range []string{"execveat", "proc-fd", "fexecve"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			dir := testDir(t)
			name := "payload-" + how
			var s *session
			if how == "fexecve" {
				bin := requireC(t, fexecveBin)
				s = agent(t, dir, runOpts{helper: "linger"}, bin, helperBin, name, "git", "1500", "git")
			} else {
				s = agent(t, dir, runOpts{helper: "memfd-exec"}, helperBin, how, name)
			}
			if s.exit != 0 {
				t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
			}
			res := s.resultHaving(t, "fd")
			pid, fd := num(t, res, "pid"), num(t, res, "fd")
			var memfdFile obj
			if how != "fexecve" {
				memfd := s.one(t, "open", func(r *rec) bool { return openByFd(pid, fd)(r) && r.Open.Syscall == "memfd_create" })
				memfdFile = obj{"path": "memfd:" + name, "dev": res["dev"], "ino": res["ino"], "mode": "0100777", "type": "regular",
					"mnt_id": memfd.Open.File.MntID, "fileless": true}
				wantBody(t, memfd, openResult(obj{"syscall": "memfd_create", "name": name, "flags": []string{}, "flags_raw": 0, "file": memfdFile}, fd))
			}
			r := s.one(t, "exec", func(r *rec) bool {
				return r.Proc.Pid == pid && r.Exec.Ret == 0 && len(r.Exec.Argv) > 0 && r.Exec.Argv[0] == "git"
			})
			exeFile := obj{"ino": res["ino"], "dev": res["dev"], "mode": "0100777", "uid": 0, "gid": 0, "fileless": true,
				"sha256": fileSHA256(t, helperBin)}
			ctime, ok := r.body.(map[string]any)["exe_file"].(map[string]any)["ctime"]
			if !ok {
				t.Fatalf("exec record has no exe_file.ctime:\n%s", r.line)
			}
			exeFile["ctime"] = ctime
			want := obj{"exe": "memfd:" + name, "exe_file": exeFile, "argv": []string{"git", "1500", "git"}, "argc": 3, "ret": 0}
			switch how {
			case "proc-fd":
				want["syscall"], want["filename"] = "execve", fmt.Sprintf("/proc/self/fd/%d", fd)
			default:
				want["syscall"], want["filename"] = "execveat", ""
				want["dirfd"], want["flags"], want["flags_raw"] = fd, []string{"AT_EMPTY_PATH"}, unix.AT_EMPTY_PATH
			}
			wantBody(t, r, want)
			exit := s.one(t, "exit", byPid(pid))
			if exit.Proc.Exe != "memfd:"+name || exit.Proc.Comm != "git" {
				t.Errorf("exit record: proc.exe %q comm %q, want memfd:%s git", exit.Proc.Exe, exit.Proc.Comm, name)
			}
			out, err := exec.Command(agentBin, "show", "--pubkey", s.logPath+".pub", s.logPath).CombinedOutput()
			if err != nil {
				t.Fatalf("agenttrace show: %v\n%s", err, out)
			}
			if want := fmt.Sprintf("[fileless memfd:%s]", name); !strings.Contains(string(out), want) {
				t.Errorf("show does not present the fileless program as %s:\n%s", want, out)
			}
		})
	}
}

// TestExecDeleted: a program unlinked before it is executed through its
// open descriptor is recorded as deleted, with the SHA-256 of the image
// that ran; a program that unlinks its file after the exec and writes
// another one there keeps the SHA-256 of what ran, not of the replacement.
func TestExecDeleted(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	image, err := os.ReadFile(helperBin)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("unlinked-before", func(t *testing.T) {
		t.Parallel()
		dir := testDir(t)
		tool := filepath.Join(dir, "tool")
		if err := os.WriteFile(tool, image, 0o755); err != nil {
			t.Fatal(err)
		}
		want := exeFile(t, tool)
		s := agent(t, dir, runOpts{helper: "deleted-exec"}, helperBin, tool)
		if s.exit != 0 {
			t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
		}
		res := s.resultHaving(t, "fd")
		pid, fd := num(t, res, "pid"), num(t, res, "fd")
		r := s.one(t, "exec", func(r *rec) bool { return r.Proc.Pid == pid && r.Exec.Syscall == "execveat" })
		// unlink changed the inode's ctime: take it from the record, check the rest.
		want["ctime"] = r.body.(map[string]any)["exe_file"].(map[string]any)["ctime"]
		want["deleted"] = true
		wantBody(t, r, obj{"syscall": "execveat", "dirfd": fd, "flags": []string{"AT_EMPTY_PATH"}, "flags_raw": unix.AT_EMPTY_PATH,
			"filename": "", "exe": realPath(t, tool), "exe_file": want, "argv": []string{"deleted-tool", "1500"}, "argc": 2, "ret": 0})
	})
	t.Run("replaced-after", func(t *testing.T) {
		t.Parallel()
		dir := testDir(t)
		tool := filepath.Join(dir, "tool2")
		if err := os.WriteFile(tool, image, 0o755); err != nil {
			t.Fatal(err)
		}
		want := exeFile(t, tool)
		s := agent(t, dir, runOpts{helper: "replace-self"}, tool, tool)
		if s.exit != 0 {
			t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
		}
		if fileSHA256(t, tool) == want["sha256"] {
			t.Fatal("the helper did not replace its program")
		}
		r := s.one(t, "exec", func(r *rec) bool { return r.Exec.Filename == tool })
		wantBody(t, r, obj{"syscall": "execve", "filename": tool, "exe": realPath(t, tool), "exe_file": want,
			"argv": []string{tool, tool}, "argc": 2, "ret": 0})
	})
}
