package record

import (
	"bufio"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// fileID is a file's identity as the kernel records it: the super block's
// dev_t (major << 20 | minor) and the inode number.
type fileID struct {
	dev uint32
	ino uint64
}

// FileSet is the identities of sensitive files, so that an open of one is
// tagged whatever name reached it (a hard link, a bind mount, a descriptor
// reopened through /proc, a file handle). It is filled from the sensitive
// list at start and reload (ResolveSensitiveFiles) and learns the file of
// every open whose resolved path matches the list. It belongs to the
// encoder: not safe for concurrent use.
type FileSet struct {
	ids map[fileID]struct{}
}

// NewFileSet returns an empty set.
func NewFileSet() *FileSet { return &FileSet{ids: map[fileID]struct{}{}} }

// Has reports whether the file (kernel dev_t, inode) is in the set. A nil
// set has nothing.
func (s *FileSet) Has(dev uint32, ino uint64) bool {
	if s == nil {
		return false
	}
	_, ok := s.ids[fileID{dev, ino}]
	return ok
}

// Add puts the file (kernel dev_t, inode) in the set; a nil set ignores it.
func (s *FileSet) Add(dev uint32, ino uint64) {
	if s != nil {
		s.ids[fileID{dev, ino}] = struct{}{}
	}
}

// Len is the number of files in the set.
func (s *FileSet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.ids)
}

// kernelDev converts a stat(2) st_dev to the kernel's dev_t encoding.
func kernelDev(dev uint64) uint32 {
	return unix.Major(dev)<<20 | unix.Minor(dev)&0xfffff
}

// Bounds of ResolveSensitiveFiles: a home directory full of files must
// not make start or reload slow.
const (
	maxResolveEntries = 50_000 // directory entries read, in all
	maxResolveDepth   = 8      // levels a "**" descends
)

// ResolveSensitiveFiles finds the files the sensitive list names that exist
// now: each pattern is expanded below the root (anchored ones as they are),
// /root, and every home directory in /etc/passwd, within fixed bounds; a
// file is kept when the list matches its path (so exclusions apply). The
// identity of what a path resolves to (symbolic links followed) is recorded.
func ResolveSensitiveFiles(set *PathSet) *FileSet {
	return resolveSensitiveFiles(set, append([]string{"/root"}, passwdHomes("/etc/passwd")...))
}

// resolveSensitiveFiles expands the patterns below "/" and homes.
func resolveSensitiveFiles(set *PathSet, homes []string) *FileSet {
	out := NewFileSet()
	if set == nil {
		return out
	}
	bases := append([]string{"/"}, homes...)
	r := resolver{set: set, out: out, budget: maxResolveEntries, seen: map[string]bool{}}
	for _, p := range set.Patterns() {
		if strings.HasPrefix(p, "!") {
			continue
		}
		if strings.HasPrefix(p, "/") {
			r.expand("/", strings.Split(strings.Trim(p, "/"), "/"), 0)
			continue
		}
		comps := strings.Split(strings.Trim(strings.TrimPrefix(p, "~/"), "/"), "/")
		for _, base := range bases {
			r.expand(base, comps, 0)
		}
	}
	return out
}

type resolver struct {
	set    *PathSet
	out    *FileSet
	budget int
	seen   map[string]bool // paths already added
}

// expand matches the pattern components comps below dir.
func (r *resolver) expand(dir string, comps []string, depth int) {
	if r.budget <= 0 {
		return
	}
	for len(comps) > 0 && comps[0] == "" {
		comps = comps[1:]
	}
	if len(comps) == 0 {
		r.add(dir)
		return
	}
	c := comps[0]
	switch {
	case c == "**":
		// Zero components, then one more and "**" again.
		r.expand(dir, comps[1:], depth)
		if depth >= maxResolveDepth {
			return
		}
		for _, e := range r.readDir(dir) {
			if e.IsDir() {
				r.expand(filepath.Join(dir, e.Name()), comps, depth+1)
			} else {
				r.expand(filepath.Join(dir, e.Name()), comps[1:], depth)
			}
		}
	case !strings.ContainsAny(c, `*?[\`):
		r.budget--
		next := filepath.Join(dir, c)
		if _, err := os.Lstat(next); err == nil {
			r.expand(next, comps[1:], depth)
		}
	default:
		for _, e := range r.readDir(dir) {
			if ok, _ := path.Match(c, e.Name()); ok {
				r.expand(filepath.Join(dir, e.Name()), comps[1:], depth)
			}
		}
	}
}

func (r *resolver) readDir(dir string) []fs.DirEntry {
	f, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer f.Close()
	entries, _ := f.ReadDir(r.budget)
	r.budget -= len(entries) + 1
	return entries
}

func (r *resolver) add(p string) {
	if r.seen[p] || !r.set.Match([]byte(p)) {
		return
	}
	r.seen[p] = true
	var st unix.Stat_t
	if unix.Stat(p, &st) == nil {
		r.out.Add(kernelDev(st.Dev), st.Ino)
	}
}

// passwdHomes lists the home directories of /etc/passwd that are
// directories, other than "/".
func passwdHomes(passwd string) []string {
	f, err := os.Open(passwd)
	if err != nil {
		return nil
	}
	defer f.Close()
	var homes []string
	seen := map[string]bool{"/": true, "/root": true}
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Split(s.Text(), ":")
		if len(fields) < 7 {
			continue
		}
		home := filepath.Clean(fields[5])
		if seen[home] || !filepath.IsAbs(home) {
			continue
		}
		seen[home] = true
		if st, err := os.Stat(home); err == nil && st.IsDir() {
			homes = append(homes, home)
		}
	}
	return homes
}

// openSensitive decides an open record's credential_access tag: the path
// as passed, the path the kernel resolved (and the one the task saw), a
// failed relative open's directory joined with the name, or the file's
// identity. A file whose resolved path matches is learned, so that its
// other names are tagged from then on.
func (e *Encoder) openSensitive(o *Open) bool {
	set := e.sensitive.Load()
	requested := o.HasPath()
	match := requested && set.Match(unsafeBytes(o.Path))
	if d := &o.Dir; d.Present {
		if !match && requested && o.Path != "" && o.Path[0] != '/' {
			e.joined = append(append(append(e.joined[:0], d.Path...), '/'), o.Path...)
			match = set.Match(e.joined)
		}
		return match
	}
	f := &o.File
	if !f.Present || f.Fileless {
		return match
	}
	// Most opens pass the absolute path the kernel resolves: the same bytes
	// match alike.
	resolved := match
	if !requested || f.Path != o.Path {
		resolved = set.Match(unsafeBytes(f.Path))
	}
	resolved = resolved || f.HasPathInNS && set.Match(unsafeBytes(f.PathInNS))
	files := e.sensitiveFiles.Load()
	if resolved {
		files.Add(f.Dev, f.Ino)
		return true
	}
	return match || files.Has(f.Dev, f.Ino)
}
