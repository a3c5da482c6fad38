package loader_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/agenttrace/agenttrace/internal/cgroup"
	"github.com/agenttrace/agenttrace/internal/loader"
)

// The kernel's glob matcher (handle_cgroup_mkdir) must decide exactly as
// cgroup.State.Child does for the same names: the daemon's walk of existing
// cgroups uses the Go side, new cgroups the kernel side.
func TestKernelGlobsAgreeWithGo(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (CI runs as root)")
		}
		t.Skip("needs root")
	}
	mount, err := cgroup.Mount()
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join("agenttrace-test", "globs-"+time.Now().Format("150405.000000000"))
	var pats []cgroup.Pattern
	for _, s := range []string{
		base + "/agent-*",
		base + "/*/?ool*x",
		base + "/exact",
		base + "/*/*/deep*",
		base + "/a*b*c",
	} {
		p, err := cgroup.ParsePattern(s)
		if err != nil {
			t.Fatal(err)
		}
		pats = append(pats, p)
	}
	tr, err := loader.Load(loader.Config{Globs: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var comps [][]string
	for _, p := range pats {
		comps = append(comps, p.Components)
	}
	if err := tr.SetPatterns(comps); err != nil {
		t.Fatal(err)
	}
	if err := tr.Attach(); err != nil {
		t.Fatal(err)
	}
	// The existing tree (the root, and agenttrace-test if present) from Go.
	if err := os.MkdirAll(filepath.Join(mount, "agenttrace-test"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := cgroup.Walk(mount, pats, func(rel string, id uint64, st cgroup.State) error {
		return tr.PutCgroupState(id, st.Partial, st.Traced)
	}); err != nil {
		t.Fatal(err)
	}

	// Created after the walk: the kernel derives each state at mkdir.
	rels := []string{
		base,
		base + "/agent-1", base + "/agent-", base + "/agent", base + "/xagent-1",
		base + "/agent-1/child", // inherits traced
		base + "/t", base + "/t/tool-x", base + "/t/toolx", base + "/t/pool--x", base + "/t/tool-xy", base + "/t/ool-x",
		base + "/exact", base + "/exactly",
		base + "/m", base + "/m/n", base + "/m/n/deep", base + "/m/n/deeper", base + "/m/n/shallow",
		base + "/abc", base + "/aXbYc", base + "/acb", base + "/aabbcc", base + "/ab",
	}
	t.Cleanup(func() {
		for i := len(rels) - 1; i >= 0; i-- {
			os.Remove(filepath.Join(mount, rels[i]))
		}
	})
	want := map[uint64]cgroup.State{}
	states := map[string]cgroup.State{}
	parentState := func(rel string) cgroup.State {
		if s, ok := states[filepath.Dir(rel)]; ok {
			return s
		}
		// agenttrace-test itself, from the root.
		return cgroup.Root(pats).Child(pats, 1, "agenttrace-test")
	}
	for _, rel := range rels {
		if err := os.Mkdir(filepath.Join(mount, rel), 0o755); err != nil {
			t.Fatal(err)
		}
		st := parentState(rel).Child(pats, len(filepath.SplitList(rel))+countSlash(rel), filepath.Base(rel))
		states[rel] = st
		id, err := cgroup.ID(filepath.Join(mount, rel))
		if err != nil {
			t.Fatal(err)
		}
		if !st.Zero() {
			want[id] = st
		}
	}
	got, err := tr.CgroupStates()
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range rels {
		id, _ := cgroup.ID(filepath.Join(mount, rel))
		w, inWant := want[id]
		g, inGot := got[id]
		if inWant != inGot || (inWant && (g.Partial != w.Partial || (g.Traced != 0) != w.Traced)) {
			t.Errorf("%s: kernel state %v (present %v), Go state %+v (present %v)", rel, g, inGot, w, inWant)
		}
	}
	// Spot checks of the Go side itself, so both cannot be wrong together.
	for rel, traced := range map[string]bool{
		base + "/agent-1": true, base + "/agent-": true, base + "/agent": false, base + "/xagent-1": false,
		base + "/agent-1/child": true, base + "/t/tool-x": true, base + "/t/toolx": true, base + "/t/pool--x": true,
		base + "/t/tool-xy": false, base + "/t/ool-x": false, base + "/exact": true, base + "/exactly": false,
		base + "/m/n/deep": true, base + "/m/n/deeper": true, base + "/m/n/shallow": false, base + "/m/n": false,
		base + "/abc": true, base + "/aXbYc": true, base + "/acb": false, base + "/aabbcc": true, base + "/ab": false,
	} {
		if states[rel].Traced != traced {
			t.Errorf("%s: traced %v, want %v", rel, states[rel].Traced, traced)
		}
	}

	// One mkdir record per new traced cgroup, with its path.
	tr.Flush()
	var rec ringbuf.Record
	paths := map[string]uint32{}
	for {
		if err := tr.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrFlushed) {
				break
			}
			t.Fatal(err)
		}
		h := (*loader.EventHeader)(unsafe.Pointer(&rec.RawSample[0]))
		if h.Kind != loader.KindCgroup {
			continue
		}
		e := (*loader.CgroupEvent)(unsafe.Pointer(&rec.RawSample[0]))
		path := string(unsafe.Slice((*byte)(unsafe.Pointer(&e.Path[0])), e.PathLen))
		if e.Op == loader.CgroupMkdir {
			paths[path] = e.Cflags
		}
	}
	for _, rel := range rels {
		flags, ok := paths["/"+rel]
		if ok != states[rel].Traced {
			t.Errorf("%s: mkdir record %v, traced %v", rel, ok, states[rel].Traced)
		}
		if ok && (flags&loader.CgroupMatched != 0) != (states[rel].Matched != 0) {
			t.Errorf("%s: matched flag %v, want %v", rel, flags&loader.CgroupMatched != 0, states[rel].Matched != 0)
		}
	}
}

func countSlash(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			n++
		}
	}
	return n
}

// A cgroup whose state user space changes is traced from the next syscall:
// the per-CPU cache of traced() decisions (tcache) must not keep an old
// "untraced" for it. Both commands run on CPU 0 so the second can meet the
// first one's cache entry; whether it does depends on what else ran on CPU 0
// in between (any interesting syscall of another cgroup replaces the entry),
// so this checks the change takes effect, and catches a stale cache only
// when nothing else ran.
func TestKernelStateChangeInvalidatesCache(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (CI runs as root)")
		}
		t.Skip("needs root")
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Fatalf("taskset (util-linux) is needed: %v", err)
	}
	mount, err := cgroup.Mount()
	if err != nil {
		t.Fatal(err)
	}
	rel := filepath.Join("agenttrace-test", "cache-"+time.Now().Format("150405.000000000"))
	dir := filepath.Join(mount, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	id, err := cgroup.ID(dir)
	if err != nil {
		t.Fatal(err)
	}
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()

	tr, err := loader.Load(loader.Config{Globs: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.PutCgroupState(id, 0, false); err != nil {
		t.Fatal(err)
	}
	if err := tr.Attach(); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	run := func(name string) string {
		path := filepath.Join(tmp, name)
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(taskset, "-c", "0", "cat", path)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd, err, out)
		}
		return path
	}
	before := run("before")
	if err := tr.PutCgroupState(id, 0, true); err != nil {
		t.Fatal(err)
	}
	after := run("after")

	tr.Flush()
	opened := map[string]bool{}
	var rec ringbuf.Record
	for {
		if err := tr.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrFlushed) {
				break
			}
			t.Fatal(err)
		}
		h := (*loader.EventHeader)(unsafe.Pointer(&rec.RawSample[0]))
		if h.Kind != loader.KindOpen || h.CgroupId != id {
			continue
		}
		e := (*loader.OpenEvent)(unsafe.Pointer(&rec.RawSample[0]))
		opened[string(unsafe.Slice((*byte)(unsafe.Pointer(&e.Names[0])), e.PathLen))] = true
	}
	if opened[before] {
		t.Errorf("%s was opened while the cgroup was untraced, and recorded", before)
	}
	if !opened[after] {
		t.Errorf("%s was opened after the cgroup became traced, and not recorded (stale per-CPU cache?)", after)
	}
}
