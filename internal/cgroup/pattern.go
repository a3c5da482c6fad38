package cgroup

import (
	"fmt"
	"strings"
)

// Limits of target patterns. The kernel side matches new cgroups against
// the patterns at mkdir (bpf/agenttrace.bpf.c, glob_match), so they are
// fixed-size there: these must equal MAX_PATTERNS, MAX_PATTERN_DEPTH and
// GLOB_BYTES in bpf/agenttrace.h (a test checks).
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
