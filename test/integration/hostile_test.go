package integration

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestHostileFileName opens a file whose name has a newline, quotes, a
// right-to-left override and bytes that are not UTF-8. Every record stays
// one line, nothing in the log can reorder or break what a reader sees, and
// the _b64 members give back the exact bytes.
func TestHostileFileName(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	name := "evil\nline \"quoted\" 'single' \u202egpj.exe \xff\xfe end"
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := agent(t, dir, runOpts{helper: "open"}, helperBin, path)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	pid, all := ops(t, s.result(t))
	fd := wantOp(t, all, "0", 0).Ret

	// The readable form: escapes that decode to the same text, and the
	// bytes that are not UTF-8 as the text \xNN.
	readable := filepath.Join(dir, "evil\nline \"quoted\" 'single' \u202egpj.exe \\xff\\xfe end")
	r := s.one(t, "open", func(r *rec) bool { return r.Open.PathB64 != "" && r.Proc.Pid == pid })
	// The kernel's resolved path of the file is exact the same way.
	file := fileOf(t, path)
	file["path"], file["path_b64"] = readable, base64.StdEncoding.EncodeToString([]byte(path))
	wantBody(t, r, obj{
		"syscall": "open", "dirfd": -100,
		"path": readable, "path_b64": base64.StdEncoding.EncodeToString([]byte(path)),
		"flags": []string{"O_RDONLY"}, "flags_raw": 0, "mode": "0", "fd": fd, "ret": fd, "file": file,
	})
	decoded, err := base64.StdEncoding.DecodeString(r.Open.PathB64)
	if err != nil || !bytes.Equal(decoded, []byte(path)) {
		t.Errorf("path_b64 decodes to %q (%v), want %q", decoded, err, path)
	}
	for _, want := range []string{`\n`, `\"quoted\"`, `\u202e`, `\\xff\\xfe`} {
		if !bytes.Contains(r.line, []byte(want)) {
			t.Errorf("open record does not contain %s:\n%s", want, r.line)
		}
	}
	for i, line := range s.lines {
		for _, raw := range []string{"\u202e", "\xff", "\xfe", "\r"} {
			if bytes.Contains(line, []byte(raw)) {
				t.Errorf("line %d contains the raw bytes %q:\n%s", i+1, raw, line)
			}
		}
	}

	// argv carries the name too: as the exec record and the start record saw it.
	argv := []string{helperBin, path}
	exec := s.one(t, "exec", byPid(pid))
	if fmt.Sprint(exec.Exec.Argv) != fmt.Sprint([]string{helperBin, readable}) || fmt.Sprint(exec.Exec.ArgvB64) != fmt.Sprint(b64s(argv)) {
		t.Errorf("exec argv %q argv_b64 %q, want %q %q", exec.Exec.Argv, exec.Exec.ArgvB64, []string{helperBin, readable}, b64s(argv))
	}
	if start := s.start(); fmt.Sprint(start.ArgvB64) != fmt.Sprint(b64s(argv)) {
		t.Errorf("start argv_b64 %q, want %q", start.ArgvB64, b64s(argv))
	}
}

// longPath builds, below dir, nested directories and a file whose absolute
// path is exactly n bytes.
func longPath(t *testing.T, dir string, n int) string {
	t.Helper()
	p := dir
	for i := 0; ; i++ {
		rest := n - len(p) - 1 // bytes for the next component
		if rest <= 255 {
			p += "/" + strings.Repeat("f", rest)
			break
		}
		p += "/" + fmt.Sprintf("%03d", i) + strings.Repeat("d", 197)
	}
	if len(p) != n {
		t.Fatalf("built a path of %d bytes, want %d", len(p), n)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLongPath: a 4095-byte path, the longest the kernel accepts, is
// recorded in full; a longer one, refused with ENAMETOOLONG, is recorded as
// its first 4095 bytes with path_truncated.
func TestLongPath(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	path := longPath(t, dir, 4095)
	tooLong := path + strings.Repeat("x", 100)
	s := agent(t, dir, runOpts{helper: "open"}, helperBin, path, tooLong)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	pid, all := ops(t, s.result(t))
	fd := wantOp(t, all, "0", 0).Ret
	wantOp(t, all, "1", unix.ENAMETOOLONG)

	full := s.one(t, "open", func(r *rec) bool { return r.Proc.Pid == pid && r.Open.Ret >= 0 && r.Open.Path == path })
	// The kernel's walk of the file gives the same 4095 bytes.
	wantBody(t, full, obj{"syscall": "open", "dirfd": -100, "path": path, "flags": []string{"O_RDONLY"}, "flags_raw": 0, "mode": "0", "fd": fd, "ret": fd,
		"file": fileOf(t, path)})
	cut := s.one(t, "open", func(r *rec) bool { return r.Proc.Pid == pid && r.Open.Ret == -int(unix.ENAMETOOLONG) })
	wantBody(t, cut, obj{"syscall": "open", "dirfd": -100, "path": tooLong[:4095], "path_truncated": true, "flags": []string{"O_RDONLY"}, "flags_raw": 0, "mode": "0", "ret": -int(unix.ENAMETOOLONG), "errno": "ENAMETOOLONG"})
}

// TestManyArgs: 2,000 arguments, an empty one among them, each recorded.
func TestManyArgs(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	argv := []string{helperBin}
	for i := range 2000 {
		arg := fmt.Sprintf("arg-%04d", i)
		if i == 1000 {
			arg = ""
		}
		argv = append(argv, arg)
	}
	s := agent(t, dir, runOpts{helper: "true"}, argv...)
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	r := s.one(t, "exec", func(r *rec) bool { return r.Exec.Filename == helperBin })
	wantBody(t, r, obj{
		"syscall": "execve", "filename": helperBin, "exe": helperBin, "exe_file": exeFile(t, helperBin),
		"argv": argv, "argc": len(argv), "ret": 0,
	})
}

// splitArgs splits NUL-terminated arguments as the record does: a last
// argument without its NUL (cut by truncation) is kept.
func splitArgs(blob string) []string {
	var out []string
	for blob != "" {
		i := strings.IndexByte(blob, 0)
		if i < 0 {
			return append(out, blob)
		}
		out = append(out, blob[:i])
		blob = blob[i+1:]
	}
	return out
}

// TestLargeArgv: 200 KiB of argv. With the default --max-arg-bytes (32768)
// the record holds the first 32768 bytes, argv_truncated and the real
// argv_size; with --max-arg-bytes 262144, all of it.
func TestLargeArgv(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	argv := []string{helperBin}
	for i := range 200 {
		argv = append(argv, fmt.Sprintf("%03d:", i)+strings.Repeat(string(rune('a'+i%26)), 1019))
	}
	size := 0
	var blob strings.Builder
	for _, a := range argv {
		size += len(a) + 1
		blob.WriteString(a)
		blob.WriteByte(0)
	}
	if size < 200<<10 {
		t.Fatalf("argv is %d bytes, want at least 200 KiB", size)
	}

	for _, c := range []struct {
		name  string
		flags []string
		want  obj
	}{
		{"default", nil, obj{"argv": splitArgs(blob.String()[:32768]), "argv_truncated": true, "argv_size": size}},
		{"262144", []string{"--max-arg-bytes", "262144"}, obj{"argv": argv}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := agent(t, testDir(t), runOpts{helper: "true", flags: c.flags}, argv...)
			if s.exit != 0 {
				t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
			}
			r := s.one(t, "exec", func(r *rec) bool { return r.Exec.Filename == helperBin })
			want := obj{"syscall": "execve", "filename": helperBin, "exe": helperBin, "exe_file": exeFile(t, helperBin), "argc": len(argv), "ret": 0}
			for k, v := range c.want {
				want[k] = v
			}
			wantBody(t, r, want)
		})
	}
}

// TestUnfaultedArguments: an agent can put a path or an address in memory
// that is not yet faulted in, which a tracer cannot read at syscall entry.
// The records say so and never claim a later read of that memory: an open
// says path_unreadable (or how_unreadable) and carries the file the kernel
// opened; a failed exec says path_unreadable; a successful exec takes the
// kernel's own copy of the file name. The connect address is still read
// again at exit (the kernel's copy is issue 13's).
func TestUnfaultedArguments(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := testDir(t)
	for _, name := range []string{"existing", "existing2"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := listen(t, "tcp4", "127.0.0.1:0").Addr().(*net.TCPAddr).Port
	s := agent(t, dir, runOpts{helper: "unfaulted"}, helperBin, dir, fmt.Sprint(port))
	if s.exit != 0 {
		t.Fatalf("agenttrace exited %d:\n%s", s.exit, s.stderr)
	}
	res := s.result(t)
	pid, all := ops(t, res)
	_, seen := netOps(t, res)

	path := filepath.Join(dir, "existing")
	fd := wantOp(t, all, "open", 0).Ret
	wantBody(t, s.one(t, "open", func(r *rec) bool { return r.Proc.Pid == pid && r.Open.Syscall == "open" && r.Open.Ret == fd }),
		obj{"syscall": "open", "dirfd": -100, "path_unreadable": true, "flags": []string{"O_RDONLY"}, "flags_raw": 0, "mode": "0", "fd": fd, "ret": fd,
			"file": fileOf(t, path)})

	fd = wantOp(t, all, "openat2", 0).Ret
	wantBody(t, s.one(t, "open", func(r *rec) bool { return r.Proc.Pid == pid && r.Open.Syscall == "openat2" }),
		obj{"syscall": "openat2", "dirfd": unix.AT_FDCWD, "path": filepath.Join(dir, "existing2"), "how_unreadable": true, "fd": fd, "ret": fd,
			"file": fileOf(t, filepath.Join(dir, "existing2"))})

	op := wantOp(t, all, "connect", 0)
	obs := seen["connect"]
	wantBody(t, s.one(t, "connect", byPid(pid)), obj{"syscall": "connect", "fd": op.Fd, "addrlen": 16, "family": "AF_INET",
		"family_num": unix.AF_INET, "addr": "127.0.0.1", "port": port, "addr_source": "kernel",
		"socket": sockObj(t, "AF_INET", "SOCK_STREAM", "tcp", "ESTABLISHED", obs.Cookie, obs.Local, fmt.Sprintf("127.0.0.1:%d", port)), "ret": 0})

	wantOp(t, all, "execve-enoent", unix.ENOENT)
	wantBody(t, s.one(t, "exec", func(r *rec) bool { return r.Proc.Pid == pid && r.Exec.Ret < 0 }),
		obj{"syscall": "execve", "path_unreadable": true, "argv": []string{"unfaulted-exec"}, "argc": 1, "ret": -int(unix.ENOENT), "errno": "ENOENT"})
	wantBody(t, s.one(t, "exec", func(r *rec) bool {
		return r.Proc.Pid == pid && len(r.Exec.Argv) == 1 && r.Exec.Argv[0] == "unfaulted-exec" && r.Exec.Ret == 0
	}),
		obj{"syscall": "execve", "filename": helperBin, "exe": helperBin, "exe_file": exeFile(t, helperBin), "argv": []string{"unfaulted-exec"}, "argc": 1, "ret": 0})
}
