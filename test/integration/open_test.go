package integration

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// ops returns the helper's op list by name, with its pid.
func ops(t *testing.T, r map[string]any) (pid int, byName map[string]helperOp) {
	t.Helper()
	byName = map[string]helperOp{}
	list, _ := r["ops"].([]any)
	for _, v := range list {
		m := v.(map[string]any)
		op := helperOp{Op: m["op"].(string), Ret: int(m["ret"].(float64))}
		if fd, ok := m["fd"].(float64); ok {
			op.Fd = int(fd)
		}
		byName[op.Op] = op
	}
	return num(t, r, "pid"), byName
}

// wantOp returns the op called name, failing unless the kernel answered as
// the test needs: success when wantErrno is 0, else exactly -wantErrno.
func wantOp(t *testing.T, all map[string]helperOp, name string, wantErrno unix.Errno) helperOp {
	t.Helper()
	op, ok := all[name]
	if !ok {
		t.Fatalf("helper did not report %q: %v", name, all)
	}
	switch {
	case wantErrno == 0 && op.Ret < 0:
		t.Fatalf("%s: the kernel returned %v, the test needs success", name, unix.Errno(-op.Ret))
	case wantErrno != 0 && op.Ret != -int(wantErrno):
		t.Fatalf("%s: the kernel returned %d, the test needs -%v", name, op.Ret, wantErrno)
	}
	return op
}

// openResult adds the result members of an open record to o: fd (on
// success), ret, errno (on failure).
func openResult(o obj, ret int) obj {
	if ret >= 0 {
		o["fd"] = ret
	} else {
		o["errno"] = unix.ErrnoName(unix.Errno(-ret))
	}
	o["ret"] = ret
	return o
}

// TestOpen makes open, creat, openat (with a real dirfd) and openat2 (flags,
// mode, resolve) succeed, fail with ENOENT and, after the helper drops root,
// fail with EACCES, and compares each whole open record: the file the kernel
// opened for a success, the directory for a failed relative path.
func TestOpen(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	// sub is world-writable so that only the files' mode 000 refuses the
	// unprivileged helper.
	if err := os.Mkdir(filepath.Join(dir, opensSub), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, opensSub), 0o777); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{
		opensExisting: 0o644, opensSecret: 0, filepath.Join(opensSub, opensSecret): 0,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}

	s := agent(t, dir, runOpts{helper: "opens"}, helperBin, dir)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	pid, all := ops(t, s.result(t))
	p := func(name string) string { return filepath.Join(dir, name) }
	sub := p(opensSub)
	dfd := wantOp(t, all, "openat", 0).Fd

	rdonly := []string{"O_RDONLY"}
	dirs := map[string]string{}
	cases := []struct {
		op      string
		errno   unix.Errno
		path    string
		root    bool // made before dropping root
		want    obj  // without fd/ret/errno/file/dir
		matches func(*rec) bool
	}{
		{"open", 0, p(opensExisting), true, obj{"syscall": "open", "dirfd": -100, "flags": rdonly, "flags_raw": 0, "mode": "0"}, nil},
		{"open-enoent", unix.ENOENT, p("missing-open"), true, obj{"syscall": "open", "dirfd": -100, "flags": rdonly, "flags_raw": 0, "mode": "0"}, nil},
		{"creat", 0, p("creat-new"), true, obj{"syscall": "creat", "dirfd": -100, "flags": []string{"O_WRONLY", "O_CREAT", "O_TRUNC"}, "flags_raw": unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, "mode": "0640"}, nil},
		{"creat-enoent", unix.ENOENT, p("no-dir/creat"), true, obj{"syscall": "creat", "dirfd": -100, "flags": []string{"O_WRONLY", "O_CREAT", "O_TRUNC"}, "flags_raw": unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, "mode": "0600"}, nil},
		{"openat", 0, "openat-new", true, obj{"syscall": "openat", "dirfd": dfd, "flags": []string{"O_WRONLY", "O_CREAT", "O_EXCL", "O_CLOEXEC"}, "flags_raw": unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_CLOEXEC, "mode": "0600"}, nil},
		{"openat-enoent", unix.ENOENT, "openat-missing", true, obj{"syscall": "openat", "dirfd": dfd, "flags": rdonly, "flags_raw": 0, "mode": "0"}, nil},
		{"openat2", 0, "openat2-new", true, obj{"syscall": "openat2", "dirfd": dfd, "flags": []string{"O_RDWR", "O_CREAT"}, "flags_raw": unix.O_RDWR | unix.O_CREAT, "mode": "0644", "resolve": []string{"RESOLVE_NO_SYMLINKS", "RESOLVE_BENEATH"}}, nil},
		{"openat2-exdev", unix.EXDEV, "../" + opensExisting, true, obj{"syscall": "openat2", "dirfd": dfd, "flags": rdonly, "flags_raw": 0, "mode": "0", "resolve": []string{"RESOLVE_BENEATH"}}, nil},
		{"openat2-enoent", unix.ENOENT, "openat2-missing", true, obj{"syscall": "openat2", "dirfd": dfd, "flags": []string{"O_RDONLY", "O_CLOEXEC"}, "flags_raw": unix.O_CLOEXEC, "mode": "0", "resolve": []string{"RESOLVE_IN_ROOT"}}, nil},
		{"open-eacces", unix.EACCES, p(opensSecret), false, obj{"syscall": "open", "dirfd": -100, "flags": rdonly, "flags_raw": 0, "mode": "0"}, func(r *rec) bool { return r.Open.Syscall == "open" }},
		{"creat-eacces", unix.EACCES, p(opensSecret), false, obj{"syscall": "creat", "dirfd": -100, "flags": []string{"O_WRONLY", "O_CREAT", "O_TRUNC"}, "flags_raw": unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, "mode": "0600"}, func(r *rec) bool { return r.Open.Syscall == "creat" }},
		{"openat-eacces", unix.EACCES, opensSecret, false, obj{"syscall": "openat", "dirfd": dfd, "flags": []string{"O_RDWR"}, "flags_raw": unix.O_RDWR, "mode": "0"}, func(r *rec) bool { return r.Open.Syscall == "openat" }},
		{"openat2-eacces", unix.EACCES, opensSecret, false, obj{"syscall": "openat2", "dirfd": dfd, "flags": rdonly, "flags_raw": 0, "mode": "0", "resolve": []string{"RESOLVE_NO_MAGICLINKS"}}, func(r *rec) bool { return r.Open.Syscall == "openat2" }},
	}
	files := map[string]string{"open": p(opensExisting), "creat": p("creat-new"), "openat": filepath.Join(sub, "openat-new"),
		"openat2": filepath.Join(sub, "openat2-new")}
	for _, op := range []string{"openat-enoent", "openat2-exdev", "openat2-enoent", "openat-eacces", "openat2-eacces"} {
		dirs[op] = sub
	}
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			op := wantOp(t, all, c.op, c.errno)
			match := func(r *rec) bool {
				return r.Proc.Pid == pid && r.Open.Path == c.path && (c.matches == nil || c.matches(r))
			}
			r := s.one(t, "open", match)
			want := openResult(c.want, op.Ret)
			want["path"] = c.path
			if f := files[c.op]; f != "" {
				want["file"] = fileOf(t, f)
			}
			if d := dirs[c.op]; d != "" {
				want["dir"] = dirOf(t, d)
			}
			wantBody(t, r, want)
			uid := uint32(0)
			if !c.root {
				uid = 65534
			}
			if r.Proc.UID != uid || r.Proc.EUID != uid || r.Proc.GID != uid || r.Proc.EGID != uid {
				t.Errorf("proc uid/euid/gid/egid = %d/%d/%d/%d, want %d:\n%s", r.Proc.UID, r.Proc.EUID, r.Proc.GID, r.Proc.EGID, uid, r.line)
			}
			if r.Proc.Exe != helperBin || r.Proc.Tid == 0 || r.Proc.ABI != "" {
				t.Errorf("proc exe %q (want %q), tid %d, abi %q:\n%s", r.Proc.Exe, helperBin, r.Proc.Tid, r.Proc.ABI, r.line)
			}
		})
	}
	// The directory fd itself: open(sub, O_RDONLY|O_DIRECTORY).
	r := s.one(t, "open", func(r *rec) bool { return r.Proc.Pid == pid && r.Open.Path == sub })
	wantBody(t, r, openResult(obj{"syscall": "open", "dirfd": -100, "path": sub, "flags": []string{"O_RDONLY", "O_DIRECTORY"}, "flags_raw": unix.O_DIRECTORY, "mode": "0",
		"file": fileOf(t, sub)}, dfd))
}
