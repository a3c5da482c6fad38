package record

import (
	"os/exec"
	"strings"
	"testing"
)

// TestReadersDoNotLinkTheLoader: a reader of logs never loads eBPF, so it
// must not link the loader and its embedded eBPF object (issue 11).
func TestReadersDoNotLinkTheLoader(t *testing.T) {
	readers := []string{"./internal/record", "./internal/chain", "./internal/logfile", "./internal/report", "./internal/ocsf", "./internal/export"}
	cmd := exec.Command("go", append([]string{"list", "-deps"}, readers...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasSuffix(dep, "/internal/loader") || strings.HasSuffix(dep, "/internal/decoder") || strings.Contains(dep, "cilium/ebpf") {
			t.Errorf("a reader of logs depends on %s", dep)
		}
	}
}
