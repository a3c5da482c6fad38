package record

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/loader"
)

// A regular file on 254:0, as the kernel resolves it.
func regular(ino uint64, path string) File {
	return File{Present: true, Path: path, Dev: 254 << 20, Ino: ino, Mode: 0o100644, MntID: 27, Magic: 0xef53}
}

func withFile(o Open, f File) Open {
	o.File = f
	return o
}

func withDir(o Open, d File) Open {
	o.Dir = d
	return o
}

func uringEv(u IOURing, flags uint32) Event {
	e := ev(KindIOURing, agent, flags)
	u.ParamsUnreadable = flags&loader.FlagArgFault != 0
	e.IOURing = u
	return e
}

// openArgEv is openEv with openat2's open_how (or the handle) unreadable.
func openArgEv(flags uint32, o Open) Event {
	e := openEv(flags, o)
	e.Open.ArgUnreadable = true
	return e
}

var fileCases = []struct {
	name   string
	events []Event
	want   []string
}{
	{
		name: "file_relative_open",
		events: []Event{openEv(0, withFile(Open{Ret: 3, Syscall: "openat", Dirfd: -100, Flags: oRdonly, Path: "target.txt"},
			regular(77, "/home/u/proj/a/target.txt")))},
		want: []string{
			`"open":{"syscall":"openat","dirfd":-100,"path":"target.txt","flags":["O_RDONLY"],"flags_raw":0,"mode":"0","fd":3,"ret":3,` +
				`"file":{"path":"/home/u/proj/a/target.txt","dev":"254:0","ino":77,"mode":"0100644","type":"regular","mnt_id":27}}}`,
		},
	},
	{
		name: "file_chroot_deleted_truncated_inexact",
		events: func() []Event {
			f := regular(78, "/srv/root/etc/pass\xffwd")
			f.PathTruncated, f.Deleted, f.HasPathInNS, f.PathInNS = true, true, true, "/etc/pass\xffwd"
			root := regular(2, "/srv/root")
			root.Mode, root.HasPathInNS, root.PathInNS = 0o40755, true, "/"
			return []Event{
				openEv(0, withFile(Open{Ret: 4, Syscall: "open", Dirfd: -100, Flags: oRdonly, Path: "/etc/pass\xffwd"}, f)),
				openEv(0, withFile(Open{Ret: 5, Syscall: "open", Dirfd: -100, Flags: oRdonly | oDirectory, Path: "/"}, root)),
			}
		}(),
		want: []string{
			`"file":{"path":"/srv/root/etc/pass\\xffwd","path_b64":"L3Nydi9yb290L2V0Yy9wYXNz/3dk","dev":"254:0","ino":78,"mode":"0100644","type":"regular","mnt_id":27,` +
				`"path_truncated":true,"deleted":true,"path_in_ns":"/etc/pass\\xffwd","path_in_ns_b64":"L2V0Yy9wYXNz/3dk"}}}`,
			`"file":{"path":"/srv/root","dev":"254:0","ino":2,"mode":"040755","type":"directory","mnt_id":27,"path_in_ns":"/"}}}`,
		},
	},
	{
		name: "file_failed_relative_dir_and_unreadable",
		events: []Event{
			openEv(0, withDir(Open{Ret: -2, Syscall: "openat", Dirfd: 7, Flags: oRdonly, Path: "credentials"}, File{Present: true, Path: "/home/u/.aws"})),
			openEv(loader.FlagPathFault, withFile(Open{Ret: 6, Syscall: "open", Dirfd: -100, Flags: oRdonly}, regular(10, "/home/u/notes.md"))),
			openArgEv(0, Open{Ret: -14, Syscall: "openat2", Dirfd: -100, Path: "/tmp/x"}),
		},
		want: []string{
			`"open":{"syscall":"openat","dirfd":7,"path":"credentials","flags":["O_RDONLY"],"flags_raw":0,"mode":"0","ret":-2,"errno":"ENOENT","dir":{"path":"/home/u/.aws"}},"tags":["credential_access"]}`,
			`"open":{"syscall":"open","dirfd":-100,"path_unreadable":true,"flags":["O_RDONLY"],"flags_raw":0,"mode":"0","fd":6,"ret":6,"file":{"path":"/home/u/notes.md",`,
			`"open":{"syscall":"openat2","dirfd":-100,"path":"/tmp/x","how_unreadable":true,"ret":-14,"errno":"EFAULT"}}`,
		},
	},
	{
		name: "file_other_syscalls",
		events: func() []Event {
			memfd := File{Present: true, Path: "memfd:payload", Ino: 3936, Dev: 1, Mode: 0o100777, MntID: 12, Magic: 0x01021994, Fileless: true}
			sock := File{Present: true, Ino: 551, Dev: 8, Mode: 0o140777, MntID: 9, Magic: sockfsMagic, Fileless: true, HasSocket: true,
				Socket: SocketInfo{Cookie: 4096, Family: unix.AF_INET, SockType: unix.SOCK_STREAM, Protocol: unix.IPPROTO_TCP, State: 1,
					Local:  ParseSockaddr([]byte{2, 0, 0x9c, 0x40, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}),
					Remote: ParseSockaddr([]byte{2, 0, 0x01, 0xbb, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})}}
			tree := regular(81, "/")
			tree.Mode, tree.MntID = 0o40755, 301
			return []Event{
				openEv(0, withFile(Open{Ret: 5, Syscall: "memfd_create", Dirfd: -100, Flags: unix.MFD_CLOEXEC | 0x40, Path: "payload"}, memfd)),
				openEv(0, withFile(Open{Ret: 6, Syscall: "pidfd_getfd", Dirfd: 4, TargetFd: 9,
					Source: Source{Known: true, ExecID: ExecID{300, 920_000_000_000, 8}, Exe: "/usr/bin/curl"}}, sock)),
				openEv(0, withFile(Open{Ret: 7, Syscall: "open_by_handle_at", Dirfd: 3, HandleType: 1, Handle: "\x01\x8e\x98\x00"},
					regular(80, "/home/u/.ssh/id_rsa"))),
				openArgEv(0, Open{Ret: -14, Syscall: "open_by_handle_at", Dirfd: 3}),
				openEv(0, withFile(Open{Ret: 8, Syscall: "open_tree", Dirfd: -100, Flags: unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC,
					Path: "/home/u/.ssh"}, tree)),
			}
		}(),
		want: []string{
			`"open":{"syscall":"memfd_create","name":"payload","flags":["MFD_CLOEXEC","0x40"],"flags_raw":65,"fd":5,"ret":5,` +
				`"file":{"path":"memfd:payload","dev":"0:1","ino":3936,"mode":"0100777","type":"regular","mnt_id":12,"fileless":true}}}`,
			`"open":{"syscall":"pidfd_getfd","pidfd":4,"target_fd":9,"source":{"pid":300,"exec_id":"300-920000000000-8","exe":"/usr/bin/curl"},"fd":6,"ret":6,` +
				`"file":{"path":"socket:[551]","dev":"0:8","ino":551,"mode":"0140777","type":"socket","mnt_id":9,"fileless":true,` +
				`"socket":{"cookie":4096,"family":"AF_INET","type":"SOCK_STREAM","protocol":"tcp","state":"ESTABLISHED",` +
				`"local":{"addr":"127.0.0.1","port":40000},"remote":{"addr":"10.0.0.1","port":443}}}}}`,
			`"open":{"syscall":"open_by_handle_at","mount_fd":3,"handle":{"type":1,"bytes_hex":"018e9800"},"flags":["O_RDONLY"],"flags_raw":0,"fd":7,"ret":7,"file":{"path":"/home/u/.ssh/id_rsa",`,
			`"tags":["credential_access"]}`,
			`"open":{"syscall":"open_by_handle_at","mount_fd":3,"handle_unreadable":true,"flags":["O_RDONLY"],"flags_raw":0,"ret":-14,"errno":"EFAULT"}}`,
			`"open":{"syscall":"open_tree","dirfd":-100,"path":"/home/u/.ssh","flags":["OPEN_TREE_CLONE","OPEN_TREE_CLOEXEC"],"flags_raw":524289,"fd":8,"ret":8,` +
				`"file":{"path":"/","dev":"254:0","ino":81,"mode":"040755","type":"directory","mnt_id":301}}}`,
		},
	},
	{
		name: "file_io_uring",
		events: func() []Event {
			f := regular(90, "/home/u/.env")
			return []Event{
				uringEv(IOURing{Ret: 4, Syscall: "io_uring_setup", Entries: 8, Flags: ioringSetupCqsize | 1<<30, CqEntries: 64}, 0),
				uringEv(IOURing{Ret: -14, Syscall: "io_uring_setup", Entries: 8}, loader.FlagArgFault),
				openEv(0, withFile(Open{Ret: 9, Syscall: "io_uring_openat", Dirfd: -100, Flags: oRdonly | oLargefile, Path: "/home/u/.env",
					UserData: 0x1001, SqeFlags: 1 << 4}, f)),
				openEv(0, withFile(Open{Ret: 0, Syscall: "io_uring_openat2", Dirfd: 5, Flags: oRdonly, Resolve: unix.RESOLVE_BENEATH,
					Path: "a.txt", UserData: 7, FileSlot: 2, InSlot: true, UserDataShared: true}, f)),
				openEv(0, Open{Ret: 0, Syscall: "io_uring_openat", Dirfd: -100, Flags: oRdonly, Path: "b.txt",
					UserData: 8, SqeFlags: 1 << 6, CQESkipped: true}),
			}
		}(),
		want: []string{
			`"io_uring":{"syscall":"io_uring_setup","entries":8,"flags":["IORING_SETUP_CQSIZE","0x40000000"],"cq_entries":64,"fd":4,"ret":4}}`,
			`"io_uring":{"syscall":"io_uring_setup","entries":8,"params_unreadable":true,"ret":-14,"errno":"EFAULT"}}`,
			`"open":{"syscall":"io_uring_openat","dirfd":-100,"path":"/home/u/.env","flags":["O_RDONLY","O_LARGEFILE"],"flags_raw":32768,"mode":"0",` +
				`"io_uring":{"user_data":4097,"sqe_flags":["IOSQE_ASYNC"]},"fd":9,"ret":9,"file":{"path":"/home/u/.env",`,
			`"tags":["credential_access"]}`,
			`"open":{"syscall":"io_uring_openat2","dirfd":5,"path":"a.txt","flags":["O_RDONLY"],"flags_raw":0,"mode":"0","resolve":["RESOLVE_BENEATH"],` +
				`"io_uring":{"user_data":7,"sqe_flags":[],"user_data_shared":true},"file_slot":2,"ret":0,"file":{"path":"/home/u/.env",`,
			`"open":{"syscall":"io_uring_openat","dirfd":-100,"path":"b.txt","flags":["O_RDONLY"],"flags_raw":0,"mode":"0",` +
				`"io_uring":{"user_data":8,"sqe_flags":["IOSQE_CQE_SKIP_SUCCESS"],"cqe_skipped":true}}}`,
		},
	},
	{
		name: "file_exec_fileless",
		events: []Event{execEv(shell, 0, Exec{
			Ret: 0, Syscall: "execveat", Dirfd: 5, AtFlags: unix.AT_EMPTY_PATH, Filename: "", Exe: "memfd:payload",
			ExeFile: ExeFile{Ino: 3936, Dev: 1, Mode: 0o100777, Ctime: 5, Fileless: true},
			Argc:    2, Args: "git\x00status\x00", ArgsSize: 11,
		})},
		want: []string{
			`"exe":"memfd:payload","cgroup_id"`,
			`"exe":"memfd:payload","exe_file":{"ino":3936,"dev":"0:1","mode":"0100777","uid":0,"gid":0,"ctime":5,"fileless":true},"argv":["git","status"]`,
		},
	},
}

func TestAppendFileRecords(t *testing.T) {
	for _, tc := range fileCases {
		t.Run(tc.name, func(t *testing.T) {
			enc := newTestEncoder()
			enc.SetSensitive(DefaultSensitive())
			checkGolden(t, enc, tc.name, tc.events, tc.want)
		})
	}
}

// TestOpenSensitiveByTruth: the tag follows the requested path, the
// resolved path, a failed relative open's directory and name, and the
// file's identity; the file of a matching resolved path is learned.
func TestOpenSensitiveByTruth(t *testing.T) {
	enc := newTestEncoder()
	enc.SetSensitive(DefaultSensitive())
	files := NewFileSet()
	files.Add(254<<20, 500) // resolved at start
	enc.SetSensitiveFiles(files)
	key := regular(501, "/home/u/.ssh/id_ed25519")
	link := regular(501, "/tmp/innocent.txt")
	known := regular(500, "/tmp/other.txt")
	benign := regular(502, "/tmp/benign.txt")
	dir := File{Present: true, Path: "/home/u/.aws"}
	for _, c := range []struct {
		name string
		open Open
		want bool
	}{
		{"requested path", Open{Ret: -2, Syscall: "open", Path: "/x/.netrc"}, true},
		{"benign", withFile(Open{Ret: 3, Syscall: "open", Path: "/tmp/benign.txt"}, benign), false},
		{"hard link before the key was opened", withFile(Open{Ret: 3, Syscall: "open", Path: "/tmp/innocent.txt"}, link), false},
		{"resolved path (a symlink)", withFile(Open{Ret: 3, Syscall: "open", Path: "/tmp/sym"}, key), true},
		{"hard link, learned", withFile(Open{Ret: 3, Syscall: "open", Path: "/tmp/innocent.txt"}, link), true},
		{"identity from start", withFile(Open{Ret: 3, Syscall: "open", Path: "/tmp/other.txt"}, known), true},
		{"failed relative open in a sensitive directory", withDir(Open{Ret: -2, Syscall: "openat", Dirfd: -100, Path: "credentials"}, dir), true},
		{"a memfd name is not a path", Open{Ret: 3, Syscall: "memfd_create", Path: ".env"}, false},
	} {
		e := openEv(0, c.open)
		line := string(enc.AppendEvent(nil, 1, &[32]byte{}, &e))
		if got := strings.HasSuffix(line, `,"tags":["credential_access"]}`); got != c.want {
			t.Errorf("%s: tagged %v, want %v:\n%s", c.name, got, c.want, line)
		}
	}
}

func TestResolveSensitiveFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"home/.ssh/id_rsa", "home/.ssh/id_rsa.pub", "home/.config/gcloud/a/b/token", "vault/secret", "vault/other"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	set, err := CompilePathSet([]string{".ssh/id_*", "!.ssh/id_*.pub", ".config/gcloud/**", filepath.Join(dir, "vault/secret")})
	if err != nil {
		t.Fatal(err)
	}
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, []byte("u:x:1000:1000::"+filepath.Join(dir, "home")+":/bin/sh\nbad line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := resolveSensitiveFiles(set, []string{filepath.Join(dir, "home")})
	id := func(f string) (uint32, uint64) {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(dir, f), &st); err != nil {
			t.Fatal(err)
		}
		return kernelDev(st.Dev), st.Ino
	}
	for f, want := range map[string]bool{
		"home/.ssh/id_rsa": true, "home/.ssh/id_rsa.pub": false, "home/.config/gcloud/a/b/token": true, "home/.config/gcloud": true,
		"vault/secret": true, "vault/other": false,
	} {
		if has := got.Has(id(f)); has != want {
			t.Errorf("%s: in the set %v, want %v", f, has, want)
		}
	}
	if homes := passwdHomes(passwd); len(homes) != 1 || homes[0] != filepath.Join(dir, "home") {
		t.Errorf("passwdHomes = %q", homes)
	}
}

// TestExeHasher hashes only the file that was executed.
func TestExeHasher(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	if err := os.WriteFile(exe, []byte("image"), 0o755); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(exe, &st); err != nil {
		t.Fatal(err)
	}
	f := ExeFile{Ino: st.Ino, Dev: kernelDev(st.Dev), Ctime: uint64(st.Ctim.Nano())}
	sum := sha256.Sum256([]byte("image"))
	want := hex.EncodeToString(sum[:])

	h := NewExeHasher()
	h.proc = filepath.Join(dir, "no-proc") // the process is gone: the path is used
	if got, why := h.Sum(1, 0, exe, &f); got != want || why != "" {
		t.Errorf("Sum = %q, %q; want %q", got, why, want)
	}
	// Cached by identity: a later change of the file is not read.
	if err := os.WriteFile(exe, []byte("other"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.Sum(1, 0, exe, &f); got != want {
		t.Errorf("cached Sum = %q, want %q", got, want)
	}
	// Not cached, changed since the exec: refused, with why.
	h = NewExeHasher()
	h.proc = filepath.Join(dir, "no-proc")
	if got, why := h.Sum(1, 0, exe, &f); got != "" || !strings.Contains(why, "is not the file that was executed") {
		t.Errorf("Sum of a changed file = %q, %q", got, why)
	}
	// A fileless image of a process that is gone: nothing to read.
	f.Fileless = true
	if got, why := h.Sum(1, 0, "memfd:x", &f); got != "" || why == "" {
		t.Errorf("Sum of a fileless image = %q, %q", got, why)
	}
	// This process's own image, through /proc/self/exe.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(self, &st); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	sum = sha256.Sum256(data)
	f = ExeFile{Ino: st.Ino, Dev: kernelDev(st.Dev), Ctime: uint64(st.Ctim.Nano()) + 1, WriteDenied: true}
	h = NewExeHasher()
	start := startTicks("/proc/self") * 1e7
	if got, why := h.Sum(uint32(os.Getpid()), start, "/nonexistent", &f); got != hex.EncodeToString(sum[:]) {
		t.Errorf("Sum of a running, write-protected image whose ctime changed = %q, %q", got, why)
	}
	h = NewExeHasher()
	if got, why := h.Sum(uint32(os.Getpid()), start+1e9, "/nonexistent", &f); got != "" || !strings.Contains(why, "no longer runs") {
		t.Errorf("Sum for another process with this pid = %q, %q", got, why)
	}
}
