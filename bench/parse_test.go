package bench

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/internal/logfile"
)

func TestParseWorkloadResult(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want workloadResult
		err  string
	}{
		{out: "ops=2000 ns=4000000 ns_per_op=2000.0 errors=0\n",
			want: workloadResult{Ops: 2000, Ns: 4000000, NsPerOp: 2000, Extra: map[string]int64{}}},
		{out: "ops=10 ns=150000 ns_per_op=15000.0 errors=1 connected=0 refused=9\n",
			want: workloadResult{Ops: 10, Ns: 150000, NsPerOp: 15000, Errors: 1, Extra: map[string]int64{"connected": 0, "refused": 9}}},
		{out: "", err: "no result line"},
		{out: "ops=0 ns=5 ns_per_op=0.0 errors=0", err: "no operations"},
		{out: "ops=x ns=5 ns_per_op=0.0 errors=0", err: "bad ops"},
	} {
		got, err := parseWorkloadResult(tc.out)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one containing %q", tc.out, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v, %v; want %+v", tc.out, got, err, tc.want)
		}
	}
}

func TestRunSpecArgs(t *testing.T) {
	w := lookupWorkload(WorkloadOpenat)
	spec := runSpec{AUID: 1000001, Duration: 300e6, MaxOps: 5, Rate: 1000.4, Wait: true}
	got := strings.Join(spec.args(w, "/t/f"), " ")
	if want := "-d 300 -n 5 -r 1000 -w -a 1000001 /t/f"; got != want {
		t.Errorf("args %q, want %q", got, want)
	}
}

// A session log, abridged to the fields the harness reads.
const sessionLogText = `{"seq":1,"type":"header","header":{}}
{"seq":2,"type":"start","start":{"pid":10}}
{"seq":3,"type":"exec","proc":{"pid":11,"tid":11},"exec":{"path":"/bin/sleep"}}
{"seq":4,"type":"exec","proc":{"pid":20,"tid":20},"exec":{"path":"\"proc\":{\"pid\":11"}}
{"seq":5,"type":"fork","proc":{"pid":20,"tid":20},"fork":{"child_pid":21}}
{"seq":6,"type":"exec","proc":{"pid":21,"tid":21}}
{"seq":7,"type":"open","proc":{"pid":21,"tid":21}}
{"seq":8,"type":"exit","proc":{"pid":21,"tid":21}}
{"seq":9,"type":"open","proc":{"pid":30,"tid":30}}
{"seq":10,"type":"gap","gap":{"stage":"kernel","lost":{"open":3,"exit":1}}}
{"seq":11,"type":"exit","proc":{"pid":11,"tid":11}}
{"seq":12,"type":"stop","stop":{"records":{"exec":3,"open":2,"connect":0,"fork":1,"exit":2},"lost":{"open":3,"exit":1}}}
{"seq":13,"type":"checkpoint","checkpoint":{}}
`

// TestParseSessionLog reads a log split in two segments (the stop record in
// the second), as a session that rotates writes it.
func TestParseSessionLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.jsonl")
	lines := strings.SplitAfter(sessionLogText, "\n")
	if err := os.WriteFile(path, []byte(strings.Join(lines[:6], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logfile.SegmentPath(path, 2), []byte(strings.Join(lines[6:], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := parseSessionLog(path, map[int]string{20: "traced", 30: "untraced"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]int64{
		"traced":   {"exec": 2, "fork": 1, "open": 1, "exit": 1},
		"untraced": {"open": 1},
	}
	if !reflect.DeepEqual(l.ByKey, want) {
		t.Errorf("by key %v, want %v", l.ByKey, want)
	}
	if l.Lines != 13 || l.Unattributed != 2 || l.Gaps != 1 || l.GapLost != 4 || !l.HasStop || l.LostTotal() != 4 {
		t.Errorf("lines %d, unattributed %d, gaps %d (%d lost), stop %v (%d lost); want 13, 2, 1 (4), true (4)",
			l.Lines, l.Unattributed, l.Gaps, l.GapLost, l.HasStop, l.LostTotal())
	}
	stop, err := readStop(path)
	if err != nil || !maps.Equal(stop.StopRecords, map[string]int64{"exec": 3, "open": 2, "connect": 0, "fork": 1, "exit": 2}) {
		t.Errorf("readStop: %+v, %v", stop, err)
	}
	removeLog(path)
	if left, _ := logfile.Segments(path); len(left) != 0 {
		t.Errorf("removeLog left %v", left)
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/agenttrace/agenttrace/internal/pipeline
cpu: AMD EPYC
BenchmarkHotPath-2   	  500000	      2100 ns/op	      2100 ns/event	       0 B/op	       0 allocs/op
BenchmarkHotPath-2   	  500000	      1900 ns/op	      1900 ns/event	       0 B/op	       0 allocs/op
BenchmarkHotPath-2   	  500000	      2300 ns/op	      2300 ns/event	       0 B/op	       0 allocs/op
PASS
pkg: github.com/agenttrace/agenttrace/internal/record
BenchmarkEncodeOpen-2   	 1000000	      1000 ns/op	 330.00 MB/s	       0 B/op	       0 allocs/op
ok  	github.com/agenttrace/agenttrace/internal/record	3.1s
`
	got := parseGoBench(out)
	want := []GoBenchmark{
		{Package: "github.com/agenttrace/agenttrace/internal/pipeline", Name: "BenchmarkHotPath", Runs: 3,
			Metrics: map[string]float64{"ns/op": 2100, "ns/event": 2100, "B/op": 0, "allocs/op": 0}},
		{Package: "github.com/agenttrace/agenttrace/internal/record", Name: "BenchmarkEncodeOpen", Runs: 1,
			Metrics: map[string]float64{"ns/op": 1000, "MB/s": 330, "B/op": 0, "allocs/op": 0}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestAuditSerial(t *testing.T) {
	for line, want := range map[string]string{
		`type=SYSCALL msg=audit(1795745444.856:6598): arch=c000003e syscall=42 auid=1000001 `: "6598",
		`type=PROCTITLE msg=audit(1795745444.856:6597): proctitle=2F746D70`:                   "6597",
		`no serial here`: "",
	} {
		if got := auditSerial([]byte(line)); got != want {
			t.Errorf("auditSerial(%q) = %q, want %q", line, got, want)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%v) = %q, want %q", n, got, want)
		}
	}
}

func TestParsePprofTop(t *testing.T) {
	out := `File: pipeline.test
Type: cpu
Showing nodes accounting for 1680ms, 85.71% of 1960ms total
      flat  flat%   sum%        cum   cum%
     470ms 23.98% 23.98%      470ms 23.98%  internal/runtime/syscall/linux.Syscall6
      70ms  3.57% 71.43%      240ms 12.24%  crypto/internal/fips140/sha256.(*Digest).Sum
`
	want := []PprofLine{
		{Function: "internal/runtime/syscall/linux.Syscall6", FlatPct: 23.98, CumPct: 23.98},
		{Function: "crypto/internal/fips140/sha256.(*Digest).Sum", FlatPct: 3.57, CumPct: 12.24},
	}
	if got := parsePprofTop(out); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestAwaitExitRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.jsonl")
	// The exit of pid 20's thread 21, and of another process 200: neither is
	// the exit of process 20.
	before := `{"seq":3,"type":"open","proc":{"pid":20,"tid":20,"ppid":1}}
{"seq":4,"type":"exit","proc":{"pid":20,"tid":21,"ppid":1}}
{"seq":5,"type":"exit","proc":{"pid":200,"tid":200,"ppid":1}}
`
	if err := os.WriteFile(path, []byte(before), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, found, err := awaitExitRecord(ctx, path, 0, 20); found || err != nil {
		t.Fatalf("found %v, %v in a log without the exit record", found, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Written in two parts, the first ending in the middle of the line.
	exit := `{"seq":6,"type":"exit","proc":{"pid":20,"tid":20,"ppid":1},"exit":{"status":0}}` + "\n"
	f.WriteString(exit[:30])
	go func() {
		time.Sleep(50 * time.Millisecond)
		f.WriteString(exit[30:])
	}()
	if _, found, err := awaitExitRecord(ctx, path, int64(len(before)), 20); !found || err != nil {
		t.Errorf("found %v, %v; want the exit record", found, err)
	}
}
