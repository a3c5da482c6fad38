package loader

import (
	"testing"

	"github.com/agenttrace/agenttrace/internal/cgroup"
	"github.com/agenttrace/agenttrace/internal/record"
)

// TestLimitsMatchHeader: the packages that must not link the eBPF object
// keep copies of the header's numbers (enum limit, enum record_kind); they
// must be the generated ones.
func TestLimitsMatchHeader(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want int
	}{
		{"cgroup.MaxPatterns", cgroup.MaxPatterns, MaxPatterns},
		{"cgroup.MaxPatternDepth", cgroup.MaxPatternDepth, MaxPatternDepth},
		{"cgroup.MaxGlobBytes", cgroup.MaxGlobBytes, GlobBytes - 1},
		{"record.KindExec", int(record.KindExec), int(KindExec)},
		{"record.KindOpen", int(record.KindOpen), int(KindOpen)},
		{"record.KindConnect", int(record.KindConnect), int(KindConnect)},
		{"record.KindFork", int(record.KindFork), int(KindFork)},
		{"record.KindExit", int(record.KindExit), int(KindExit)},
		{"record.KindCgroup", int(record.KindCgroup), int(KindCgroup)},
		{"record.KindIOURing", int(record.KindIOURing), int(KindIOURing)},
		{"record.KindCgroupMove", int(record.KindCgroupMove), int(KindCgroupMove)},
		{"record.KindProcAccess", int(record.KindProcAccess), int(KindProcAccess)},
		{"record.KindFileOp", int(record.KindFileOp), int(KindFileOp)},
		{"record.KindMount", int(record.KindMount), int(KindMount)},
		{"record.KindNamespace", int(record.KindNamespace), int(KindNamespace)},
		{"record.KindBPF", int(record.KindBPF), int(KindBPF)},
		{"record.KindMax", int(record.KindMax), int(KindMax)},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %d, bpf/agenttrace.h says %d", tc.name, tc.got, tc.want)
		}
	}
	// Every kernel kind has a record type.
	for kind := KindExec; kind < KindMax; kind++ {
		if record.KindName(kind) == "unknown" {
			t.Errorf("kernel kind %d has no record type in record.Types", kind)
		}
	}
}
