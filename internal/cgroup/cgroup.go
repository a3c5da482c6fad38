// Package cgroup owns agenttrace's use of cgroup v2: finding the cgroup2
// mount, creating a session's cgroup, waiting for it to empty, killing what
// is left, and mapping cgroup ids back to paths.
//
// It never moves a process that agenttrace did not start: processes enter a
// session cgroup only by being started inside it (CLONE_INTO_CGROUP).
package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoCgroup2 means no cgroup2 file system is mounted.
var ErrNoCgroup2 = errors.New("no cgroup2 file system is mounted: mount one (mount -t cgroup2 none /sys/fs/cgroup) or boot with systemd.unified_cgroup_hierarchy=1")

// Mount returns the mount point of the cgroup2 file system, read from
// /proc/self/mountinfo (hybrid systems mount it at /sys/fs/cgroup/unified).
func Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("reading mounts: %w", err)
	}
	defer f.Close()
	return parseMountinfo(f)
}

// parseMountinfo returns the first cgroup2 mount point in a mountinfo file.
func parseMountinfo(r io.Reader) (string, error) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - cgroup2 cgroup2 rw
		fields := strings.Fields(s.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(fields) {
			continue
		}
		if fields[sep+1] == "cgroup2" {
			return unescapeMountPath(fields[4]), nil
		}
	}
	if err := s.Err(); err != nil {
		return "", fmt.Errorf("reading mounts: %w", err)
	}
	return "", ErrNoCgroup2
}

// unescapeMountPath undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMountPath(p string) string {
	if !strings.Contains(p, `\`) {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+3 < len(p) {
			if v, err := strconv.ParseUint(p[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// ID returns the cgroup v2 id of the cgroup directory at path: the inode
// number of the directory, which is what bpf_get_current_cgroup_id returns.
func ID(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Ino, nil
}

// Cgroup is a cgroup directory agenttrace created and holds open.
type Cgroup struct {
	Mount string // the cgroup2 mount point
	Rel   string // path below Mount, starting with "/"
	ID    uint64
	dir   *os.File
}

// Path is the absolute path of the cgroup directory.
func (c *Cgroup) Path() string { return filepath.Join(c.Mount, c.Rel) }

// FD is an open descriptor of the directory, for CLONE_INTO_CGROUP and
// BPF_MAP_TYPE_CGROUP_ARRAY.
func (c *Cgroup) FD() int { return int(c.dir.Fd()) }

// Create makes the cgroup rel (below mount), creating parents as needed. It
// fails if rel already exists: a session never shares a cgroup.
func Create(mount, rel string) (*Cgroup, error) {
	rel = "/" + strings.Trim(rel, "/")
	path := filepath.Join(mount, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup parent: %w", err)
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", path, err)
	}
	dir, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("opening cgroup %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(dir.Fd()), &st); err != nil {
		dir.Close()
		os.Remove(path)
		return nil, fmt.Errorf("stat cgroup %s: %w", path, err)
	}
	return &Cgroup{Mount: mount, Rel: rel, ID: st.Ino, dir: dir}, nil
}

// Populated reports whether any process is in the cgroup or below it.
func (c *Cgroup) Populated() (bool, error) {
	data, err := os.ReadFile(filepath.Join(c.Path(), "cgroup.events"))
	if err != nil {
		return false, fmt.Errorf("reading cgroup.events: %w", err)
	}
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("populated ")); ok {
			return string(v) == "1", nil
		}
	}
	return false, fmt.Errorf("cgroup.events of %s has no populated line", c.Path())
}

// WaitEmpty waits until no process is left in the cgroup tree, or timeout.
// It reports whether the cgroup became empty.
func (c *Cgroup) WaitEmpty(timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		populated, err := c.Populated()
		if err != nil || !populated {
			return !populated, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Procs lists the processes in the cgroup and all cgroups below it.
func (c *Cgroup) Procs() ([]int, error) { return TreeProcs(c.Path()) }

// TreeProcs lists the processes in the cgroup at dir and all cgroups below
// it; cgroups removed meanwhile are skipped.
func TreeProcs(dir string) ([]int, error) {
	var pids []int
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		p, err := ReadProcs(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		pids = append(pids, p...)
		return err
	})
	return pids, err
}

// ReadProcs lists the processes directly in the cgroup at dir.
func ReadProcs(dir string) ([]int, error) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Own returns the calling process's cgroup below the cgroup2 mount ("" for
// the root), from /proc/self/cgroup.
func Own() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	path, ok := ParseProcCgroup(data)
	if !ok {
		return "", errors.New("/proc/self/cgroup has no cgroup2 entry")
	}
	return strings.Trim(path, "/"), nil
}

// ParseProcCgroup returns the path of the "0::" (cgroup v2) entry of a
// /proc/PID/cgroup file. The kernel prints that entry last, so the path runs
// to the end of the file: a cgroup name may contain a newline.
func ParseProcCgroup(data []byte) (string, bool) {
	var path []byte
	if v, ok := bytes.CutPrefix(data, []byte("0::")); ok {
		path = v
	} else if i := bytes.Index(data, []byte("\n0::")); i >= 0 {
		path = data[i+len("\n0::"):]
	} else {
		return "", false
	}
	return string(bytes.TrimSuffix(path, []byte("\n"))), true
}

// Kill sends SIGKILL to every process in the cgroup tree: with cgroup.kill
// where the kernel has it (5.14+), else by freezing, signalling and thawing.
func (c *Cgroup) Kill() error {
	err := os.WriteFile(filepath.Join(c.Path(), "cgroup.kill"), []byte("1"), 0)
	if err == nil {
		return nil
	}
	freeze := filepath.Join(c.Path(), "cgroup.freeze")
	// Frozen processes cannot fork while we signal them.
	frozen := os.WriteFile(freeze, []byte("1"), 0) == nil
	pids, perr := c.Procs()
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if frozen {
		os.WriteFile(freeze, []byte("0"), 0)
	}
	if perr != nil {
		return fmt.Errorf("killing cgroup %s: %w", c.Path(), perr)
	}
	return nil
}

// Remove closes the directory and removes the cgroup and any cgroups the
// traced processes created below it. The tree must be empty of processes.
func (c *Cgroup) Remove() error {
	c.dir.Close()
	var dirs []string
	filepath.WalkDir(c.Path(), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	var first error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) && first == nil {
			first = fmt.Errorf("removing cgroup %s: %w", dirs[i], err)
		}
	}
	return first
}

// Resolver maps cgroup ids to their paths relative to the cgroup2 mount,
// those below a root cgroup first. A miss rescans the root's tree once, then
// the whole hierarchy (a traced process can be started in, or moved to, any
// cgroup); ids that are still unknown (the cgroup was already removed) are
// remembered as unknown, which is safe because the kernel never reuses a
// cgroup id within a boot.
type Resolver struct {
	mount string
	root  string // relative to mount

	mu    sync.Mutex
	paths map[uint64]string
	known map[uint64]bool
}

// NewResolver resolves ids of root (relative to mount) and its descendants.
func NewResolver(mount, root string) *Resolver {
	return &Resolver{mount: mount, root: root, paths: map[uint64]string{}, known: map[uint64]bool{}}
}

// Path returns the path of cgroup id relative to the mount ("/a/b").
func (r *Resolver) Path(id uint64) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.paths[id]; ok {
		return p, true
	}
	if r.known[id] {
		return "", false
	}
	r.scan(r.root)
	if _, ok := r.paths[id]; !ok && r.root != "" {
		r.scan("")
	}
	r.known[id] = true
	p, ok := r.paths[id]
	return p, ok
}

// Learn records the path of a cgroup seen elsewhere (a cgroup record, the
// daemon's walk), sparing a rescan.
func (r *Resolver) Learn(id uint64, path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// A copy: a record's strings alias the ring buffer's memory, which the
	// next record reuses.
	r.paths[id] = strings.Clone(path)
	r.known[id] = true
}

func (r *Resolver) scan(root string) {
	base := filepath.Join(r.mount, root)
	filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		rel, err := filepath.Rel(r.mount, path)
		if err != nil {
			return nil
		}
		r.paths[st.Ino] = "/" + strings.TrimPrefix(rel, ".")
		r.known[st.Ino] = true
		return nil
	})
}

// Freeze stops every process in the cgroup tree (cgroup.freeze, 5.2+); they
// stay in the kernel until Thaw, unable to run any code.
func (c *Cgroup) Freeze() error {
	return os.WriteFile(filepath.Join(c.Path(), "cgroup.freeze"), []byte("1"), 0)
}

// Thaw lets the processes run again.
func (c *Cgroup) Thaw() error {
	return os.WriteFile(filepath.Join(c.Path(), "cgroup.freeze"), []byte("0"), 0)
}
