package preflight

import (
	"testing"

	"github.com/agenttrace/agenttrace/internal/loader"
)

// TestRequirements: the table names each requirement once, with the modes
// that need it: bpf_loop the daemon only, the kernel basics both, and one
// row per hook of loader.Hooks (so a hook added there is checked).
func TestRequirements(t *testing.T) {
	rows := map[string]Requirement{}
	for _, r := range Requirements() {
		if _, dup := rows[r.Name]; dup {
			t.Errorf("%s is listed twice", r.Name)
		}
		if r.Check == nil {
			t.Errorf("%s has no check", r.Name)
		}
		if r.Modes != 0 && r.Fix == "" {
			t.Errorf("%s is required but says nothing to do when missing", r.Name)
		}
		rows[r.Name] = r
	}
	for name, modes := range map[string]Mode{
		"privileges": ModeAll, "kernel": ModeAll, "BTF": ModeAll, "cgroup2": ModeAll, "ring buffer": ModeAll,
		"bpf_loop": ModeDaemon, "cgroup2 writable": ModeRun, "clone3 into cgroup": ModeRun, "cgroup.kill": 0,
	} {
		if r, ok := rows[name]; !ok || r.Modes != modes {
			t.Errorf("%s: modes %v (listed %v), want %v", name, r.Modes, ok, modes)
		}
	}
	for _, h := range loader.Hooks {
		if r, ok := rows["hook "+h.Name]; !ok || r.Modes != ModeAll {
			t.Errorf("hook %s: not a row needed by both modes", h.Name)
		}
	}
	for m, want := range map[Mode]string{ModeAll: "run, daemon", ModeRun: "run", ModeDaemon: "daemon", 0: "optional"} {
		if m.String() != want {
			t.Errorf("Mode(%d) = %q, want %q", m, m.String(), want)
		}
	}
}
