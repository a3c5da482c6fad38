package tools

import (
	"os/exec"
	"strings"
	"testing"
)

// TestList: every line parses, names known groups, and the test group is
// what tools/deps lists for it.
func TestList(t *testing.T) {
	pkgs, err := Packages()
	if err != nil {
		t.Fatal(err)
	}
	var test []string
	for _, p := range pkgs {
		for _, g := range p.Groups {
			switch g {
			case "generate", "demo":
			case "test":
				test = append(test, p.Name)
			default:
				t.Errorf("%s: unknown group %q", p.Name, g)
			}
		}
		if !strings.HasPrefix(p.File, "/") {
			t.Errorf("%s: file %q is not absolute", p.Name, p.File)
		}
	}
	out, err := exec.Command("bash", "deps", "list", "test").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != strings.Join(test, " ") {
		t.Errorf("tools/deps list test = %q, want %q", got, strings.Join(test, " "))
	}
	if _, err := Lookup("no-such-package"); err == nil {
		t.Error("Lookup of an unlisted package did not fail")
	}
}
