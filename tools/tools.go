// Package tools owns the list of Debian packages the build, the tests and
// the demo use (the file packages beside this one, which tools/deps,
// .ci/run, the Makefile and the README read). Tests call Require so that a
// missing tool fails at once with the command that installs it, instead of
// skipping silently or timing out.
//
// It must never install anything itself: tools/deps does, when asked.
package tools

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Package is one line of the list.
type Package struct {
	Name   string
	Groups []string // generate, test, demo
	File   string   // a file it installs (a glob): present means installed
	Why    string
}

// Installed reports whether p's file exists.
func (p *Package) Installed() bool {
	matches, _ := filepath.Glob(p.File)
	return len(matches) > 0
}

// InstallCommand is the command that installs p on Debian.
func (p *Package) InstallCommand() string {
	return "apt-get update && apt-get install -y --no-install-recommends " + p.Name
}

// ListPath is the file of the list.
func ListPath() string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "packages")
}

// Packages reads the list.
func Packages() ([]Package, error) {
	f, err := os.Open(ListPath())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var pkgs []Package
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 {
			return nil, fmt.Errorf("%s line %d: want package, groups, file and what for", ListPath(), n)
		}
		pkgs = append(pkgs, Package{Name: fields[0], Groups: strings.Split(fields[1], ","), File: fields[2], Why: strings.Join(fields[3:], " ")})
	}
	return pkgs, s.Err()
}

// Lookup returns the package named name.
func Lookup(name string) (*Package, error) {
	pkgs, err := Packages()
	if err != nil {
		return nil, err
	}
	for i := range pkgs {
		if pkgs[i].Name == name {
			return &pkgs[i], nil
		}
	}
	return nil, fmt.Errorf("%s does not list package %s", ListPath(), name)
}

// Require fails t at once, with the command that installs it, unless the
// package named name is installed. It never skips: `make test` checks the
// list first, so a missing package here is one the list lacks or one
// removed since.
func Require(t testing.TB, name string) {
	t.Helper()
	p, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Installed() {
		t.Fatalf("package %s is not installed (%s is missing; it is for: %s). Install it with: %s (or: make deps)",
			p.Name, p.File, p.Why, p.InstallCommand())
	}
}
