package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Limits of target patterns. The kernel side matches new cgroups against
// the patterns at mkdir (bpf/agenttrace.bpf.c, glob_match), so they are
// fixed-size there: these must equal MAX_PATTERNS, MAX_PATTERN_DEPTH and
// GLOB_BYTES in bpf/agenttrace.h (TestLimitsMatchHeader in internal/loader checks).
const (
	MaxPatterns     = 16
	MaxPatternDepth = 8
	MaxGlobBytes    = 63 // a component, without its NUL
)

// Pattern is a target: a cgroup path relative to the cgroup2 mount whose
// components are literal names or globs with * (any run of characters,
// none of them '/') and ? (one character). A cgroup matching a pattern is
// traced with all its descendants.
type Pattern struct {
	Text       string
	Components []string
}

// ParsePattern checks a target pattern. Character classes and escapes are
// refused rather than half-supported: the kernel matcher knows * and ?.
func ParsePattern(s string) (Pattern, error) {
	text := strings.Trim(s, "/")
	if text == "" {
		return Pattern{}, fmt.Errorf("target %q: empty (the cgroup2 root itself cannot be a target: it would trace the whole host)", s)
	}
	comps := strings.Split(text, "/")
	if len(comps) > MaxPatternDepth {
		return Pattern{}, fmt.Errorf("target %q: %d levels deep, at most %d are supported", s, len(comps), MaxPatternDepth)
	}
	for _, c := range comps {
		switch {
		case c == "":
			return Pattern{}, fmt.Errorf("target %q: empty path component", s)
		case c == "." || c == "..":
			return Pattern{}, fmt.Errorf("target %q: %q is not allowed in a target", s, c)
		case len(c) > MaxGlobBytes:
			return Pattern{}, fmt.Errorf("target %q: component %q is longer than %d bytes", s, c, MaxGlobBytes)
		case strings.ContainsAny(c, "[]\\"):
			return Pattern{}, fmt.Errorf("target %q: only * and ? are supported as wildcards (no [...] classes or \\ escapes)", s)
		case strings.IndexByte(c, 0) >= 0:
			return Pattern{}, fmt.Errorf("target %q: NUL byte", s)
		}
	}
	return Pattern{Text: text, Components: comps}, nil
}

// Literal reports whether the pattern has no wildcards.
func (p Pattern) Literal() bool { return !strings.ContainsAny(p.Text, "*?") }

// GlobMatch matches one path component against one glob component with the
// same algorithm as the kernel side (iterative, one backtrack point), so
// user space and the kernel always agree.
func GlobMatch(glob, name string) bool {
	p, n, star, mark := 0, 0, -1, 0
	for n < len(name) {
		switch {
		case p < len(glob) && (glob[p] == '?' || glob[p] == name[n]):
			p++
			n++
		case p < len(glob) && glob[p] == '*':
			star, mark = p, n
			p++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(glob) && glob[p] == '*' {
		p++
	}
	return p == len(glob)
}

// Match reports whether the cgroup at rel (relative to the mount, e.g.
// "agents.slice/a1") is matched by the pattern itself (not as a descendant).
func (p Pattern) Match(rel string) bool {
	comps := strings.Split(strings.Trim(rel, "/"), "/")
	if len(comps) != len(p.Components) {
		return false
	}
	for i, c := range comps {
		if !GlobMatch(p.Components[i], c) {
			return false
		}
	}
	return true
}

// State is what the kernel keeps for a cgroup in glob mode (struct
// cgroup_state): which patterns the path so far could still match, and
// whether the cgroup is traced (it, or an ancestor, matched a whole pattern).
type State struct {
	Partial uint32 // bit i: pattern i's first `level` components match
	Traced  bool
	Matched uint32 // bit i: pattern i matches this cgroup itself
}

// Root is the state of the cgroup2 root: every pattern is still possible.
func Root(pats []Pattern) State {
	return State{Partial: uint32(1)<<len(pats) - 1}
}

// Child derives the state of a child cgroup named name at level (1 for a
// child of the root) from its parent's, by the rule handle_cgroup_mkdir
// applies in the kernel.
func (s State) Child(pats []Pattern, level int, name string) State {
	c := State{Traced: s.Traced}
	for i, p := range pats {
		if s.Partial&(1<<i) == 0 || level > len(p.Components) || !GlobMatch(p.Components[level-1], name) {
			continue
		}
		if level == len(p.Components) {
			c.Matched |= 1 << i
		} else {
			c.Partial |= 1 << i
		}
	}
	if c.Matched != 0 {
		c.Traced = true
	}
	return c
}

// Zero reports whether the kernel keeps no entry for the state.
func (s State) Zero() bool { return !s.Traced && s.Partial == 0 }

// Walk visits the cgroup2 tree at mount top-down and calls fn for every
// cgroup whose state is not zero (rel "" is the root), before it lists that
// cgroup's children: when fn stores the state in the kernel, a cgroup
// created at any moment of the walk is either seen by the walk or derived in
// the kernel from a parent whose state is already stored. Subtrees with a
// zero state are not entered. A cgroup removed during the walk is skipped.
func Walk(mount string, pats []Pattern, fn func(rel string, id uint64, st State) error) error {
	var visit func(rel string, level int, st State) error
	visit = func(rel string, level int, st State) error {
		dir := filepath.Join(mount, rel)
		id, err := ID(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && rel != "" {
				return nil
			}
			return err
		}
		if err := fn(rel, id, st); err != nil {
			return err
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && rel != "" {
				return nil
			}
			return fmt.Errorf("listing cgroup %s: %w", dir, err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			child := st.Child(pats, level+1, e.Name())
			if child.Zero() {
				continue
			}
			if err := visit(filepath.Join(rel, e.Name()), level+1, child); err != nil {
				return err
			}
		}
		return nil
	}
	return visit("", 0, Root(pats))
}
