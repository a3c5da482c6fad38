package record

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"unicode/utf8"
)

// DefaultSensitivePaths is the list of credential and secret material whose
// opens are tagged credential_access, in the format of --sensitive-paths
// (docs/schema.md, "Sensitive paths", reproduces it and a test keeps the two
// equal). Home directories are not known (an agent can set HOME anywhere),
// so these patterns are unanchored: they match the end of any path.
const DefaultSensitivePaths = `# SSH: private keys (not their .pub halves), authorized keys, host keys
.ssh/id_*
!.ssh/id_*.pub
id_rsa
id_dsa
id_ecdsa
id_ecdsa_sk
id_ed25519
id_ed25519_sk
.ssh/authorized_keys
.ssh/authorized_keys2
etc/ssh/ssh_host_*_key
# Cloud and cluster credentials
.aws/credentials
.aws/sso/cache/**
.config/gcloud/**
.azure/**
.kube/config
etc/kubernetes/admin.conf
.docker/config.json
# Secrets of projects (dotenv), but not their templates
.env
.env.*
!.env.example
!.env.sample
!.env.template
.envrc
# Password hashes
etc/shadow
etc/shadow-
etc/gshadow
etc/gshadow-
# Git and service tokens
.git-credentials
.config/git/credentials
.netrc
.config/gh/hosts.yml
.pypirc
.cargo/credentials
.cargo/credentials.toml
.vault-token
.pgpass
# GnuPG private keys
.gnupg/private-keys-v1.d/**
.gnupg/secring.gpg
# Browser credential stores and desktop keyrings
.mozilla/firefox/*/logins.json
.mozilla/firefox/*/key4.db
.mozilla/firefox/*/cookies.sqlite
.config/google-chrome/*/Login Data
.config/google-chrome/*/Cookies
.config/chromium/*/Login Data
.config/chromium/*/Cookies
.config/BraveSoftware/Brave-Browser/*/Login Data
.config/microsoft-edge/*/Login Data
.local/share/keyrings/**
# AI agents' own API keys
.config/openai/**
.openai/**
.anthropic/**
.config/anthropic/**
.claude/.credentials.json
`

// ParsePatterns reads a pattern list: one glob per line, surrounding spaces
// ignored, blank lines and lines starting with # skipped.
func ParsePatterns(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		out = append(out, line)
	}
	return out
}

var defaultSensitive = sync.OnceValue(func() *PathSet {
	s, err := CompilePathSet(ParsePatterns(DefaultSensitivePaths))
	if err != nil {
		panic("record: the default sensitive path list does not compile: " + err.Error())
	}
	return s
})

// DefaultSensitive is DefaultSensitivePaths, compiled.
func DefaultSensitive() *PathSet { return defaultSensitive() }

// SensitiveWith compiles the default list followed by extra patterns (the
// lines of --sensitive-paths, the daemon's sensitive_paths): the last match
// decides, so extra can both add and exclude.
func SensitiveWith(extra []string) (*PathSet, error) {
	return CompilePathSet(append(ParsePatterns(DefaultSensitivePaths), extra...))
}

// PathSet is a compiled list of path globs (docs/schema.md, "Sensitive
// paths"): a path is in the set when the last pattern that matches it is not
// negated ("!pattern"). Patterns starting with "/" match the whole absolute
// path; the others (and "~/..." ones, "~/" dropped) match its last components,
// of an absolute or a relative path alike. Within a component, * ? and [...]
// are path.Match's; a component "**" matches any number of components.
// Paths are cleaned lexically first ("//", ".", ".."). It is immutable and
// safe for concurrent use; Match does not allocate.
type PathSet struct {
	patterns []string
	rules    []pathRule
	// byName[d] maps a literal component to the rules that need it d
	// components before the end of the path (rules without "**").
	byName []nameIndex
	// anywhere maps a literal component to the rules with "**" that need
	// it somewhere in the path.
	anywhere nameIndex
	// scan holds the rules without a literal component: they are tried on
	// every path.
	scan []int32
}

// nameIndex maps literal components to rules. first has the first bytes of
// its names, so that most components are rejected without hashing.
type nameIndex struct {
	names map[string][]int32
	first [4]uint64
}

func (x *nameIndex) add(name string, rule int32) {
	if x.names == nil {
		x.names = map[string][]int32{}
	}
	x.names[name] = append(x.names[name], rule)
	x.first[name[0]>>6] |= 1 << (name[0] & 63)
}

func (x *nameIndex) lookup(name []byte) []int32 {
	if len(name) == 0 || x.first[name[0]>>6]&(1<<(name[0]&63)) == 0 {
		return nil
	}
	return x.names[unsafeString(name)]
}

type pathRule struct {
	negate   bool
	anchored bool
	deep     bool // has a "**" component
	comps    []globComp
}

type globComp struct {
	text    string
	prefix  string // the literal text before the first metacharacter
	literal bool   // no glob metacharacter: compare bytes
	any     bool   // "**"
}

// ErrBadPattern wraps the errors of CompilePathSet.
var ErrBadPattern = errors.New("bad path pattern")

// CompilePathSet compiles patterns, in order (the last match decides).
func CompilePathSet(patterns []string) (*PathSet, error) {
	s := &PathSet{patterns: append([]string(nil), patterns...)}
	for i, p := range patterns {
		rule, err := compileRule(p)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrBadPattern, p, err)
		}
		s.rules = append(s.rules, rule)
		key := -1
		for j := len(rule.comps) - 1; j >= 0; j-- {
			if rule.comps[j].literal {
				key = j
				break
			}
		}
		switch {
		case key < 0:
			s.scan = append(s.scan, int32(i))
			continue
		case rule.deep:
			s.anywhere.add(rule.comps[key].text, int32(i))
			continue
		}
		d := len(rule.comps) - 1 - key
		for len(s.byName) <= d {
			s.byName = append(s.byName, nameIndex{})
		}
		s.byName[d].add(rule.comps[key].text, int32(i))
	}
	return s, nil
}

func compileRule(p string) (pathRule, error) {
	var r pathRule
	if !utf8.ValidString(p) {
		return r, errors.New("not UTF-8")
	}
	if rest, ok := strings.CutPrefix(p, "!"); ok {
		r.negate, p = true, rest
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		p = rest
	} else if strings.HasPrefix(p, "/") {
		r.anchored = true
	}
	if strings.Trim(p, "/") == "" && !r.anchored {
		return r, errors.New("empty pattern")
	}
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "":
			continue
		case ".", "..":
			return r, errors.New(`"." and ".." components cannot match: paths are cleaned first`)
		case "**":
			r.deep = true
			r.comps = append(r.comps, globComp{text: c, any: true})
			continue
		}
		if _, err := path.Match(c, ""); err != nil {
			return r, err
		}
		meta := strings.IndexAny(c, `*?[\`)
		if meta < 0 {
			r.comps = append(r.comps, globComp{text: c, prefix: c, literal: true})
		} else {
			r.comps = append(r.comps, globComp{text: c, prefix: c[:meta]})
		}
	}
	return r, nil
}

// Patterns returns the patterns as given.
func (s *PathSet) Patterns() []string { return s.patterns }

// span is one component of a path: path[lo:hi].
type span struct{ lo, hi uint16 }

// maxCleanPath bounds the paths Match looks at: the kernel records at most
// PATH_MAX bytes, and a span offset must fit in 16 bits.
const maxCleanPath = 1 << 16

// Match reports whether path is in the set. A nil set matches nothing.
func (s *PathSet) Match(p []byte) bool {
	if s == nil || len(p) == 0 || len(p) >= maxCleanPath {
		return false
	}
	var stack [64]span
	comps, absolute := cleanComponents(p, stack[:0])
	best := -1
	for d := range s.byName {
		if d >= len(comps) {
			break
		}
		c := comps[len(comps)-1-d]
		for _, i := range s.byName[d].lookup(p[c.lo:c.hi]) {
			if int(i) > best && s.rules[i].match(p, comps, absolute) {
				best = int(i)
			}
		}
	}
	if s.anywhere.names != nil {
		for _, c := range comps {
			for _, i := range s.anywhere.lookup(p[c.lo:c.hi]) {
				if int(i) > best && s.rules[i].match(p, comps, absolute) {
					best = int(i)
				}
			}
		}
	}
	for _, i := range s.scan {
		if int(i) > best && s.rules[i].match(p, comps, absolute) {
			best = int(i)
		}
	}
	return best >= 0 && !s.rules[best].negate
}

// cleanComponents splits p into components, dropping empty and "."
// components and resolving ".." lexically (at the root of an absolute path
// it stays at the root; leading ".." of a relative path are kept).
func cleanComponents(p []byte, comps []span) ([]span, bool) {
	absolute := p[0] == '/'
	for i := 0; i < len(p); {
		for i < len(p) && p[i] == '/' {
			i++
		}
		j := len(p)
		if k := bytes.IndexByte(p[i:], '/'); k >= 0 {
			j = i + k
		}
		c := p[i:j]
		switch {
		case len(c) == 0, len(c) == 1 && c[0] == '.':
		case len(c) == 2 && c[0] == '.' && c[1] == '.':
			if n := len(comps); n > 0 && !isDotDot(p, comps[n-1]) {
				comps = comps[:n-1]
			} else if !absolute {
				comps = append(comps, span{uint16(i), uint16(j)})
			}
		default:
			comps = append(comps, span{uint16(i), uint16(j)})
		}
		i = j
	}
	return comps, absolute
}

func isDotDot(p []byte, c span) bool {
	return c.hi-c.lo == 2 && p[c.lo] == '.' && p[c.lo+1] == '.'
}

func (r *pathRule) match(p []byte, comps []span, absolute bool) bool {
	if r.anchored {
		return absolute && matchComps(r.comps, p, comps)
	}
	if !r.deep {
		k := len(r.comps)
		return len(comps) >= k && matchComps(r.comps, p, comps[len(comps)-k:])
	}
	for i := range comps {
		if matchComps(r.comps, p, comps[i:]) {
			return true
		}
	}
	return false
}

// matchComps matches the pattern components against all of comps.
func matchComps(pattern []globComp, p []byte, comps []span) bool {
	for len(pattern) > 0 {
		g := pattern[0]
		if g.any {
			for i := 0; i <= len(comps); i++ {
				if matchComps(pattern[1:], p, comps[i:]) {
					return true
				}
			}
			return false
		}
		if len(comps) == 0 {
			return false
		}
		name := unsafeString(p[comps[0].lo:comps[0].hi])
		if g.literal {
			if name != g.text {
				return false
			}
		} else if !strings.HasPrefix(name, g.prefix) {
			return false
		} else if ok, _ := path.Match(g.text, name); !ok {
			return false
		}
		pattern, comps = pattern[1:], comps[1:]
	}
	return len(comps) == 0
}
