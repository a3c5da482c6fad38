package loader

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
)

// What user space set in the maps it keeps writing after start (the
// daemon's targets), so that CheckState can tell a change made by someone
// else. Every other map is frozen (Freeze): nobody can change those.
type expectedState struct {
	mu       sync.Mutex
	states   map[uint64]expectedCgroup
	patterns [MaxPatterns]GlobPattern
	gen      uint64
}

// expectedCgroup is a cgroup state agenttrace put, or one the kernel derived
// at mkdir and reported in a cgroup record (then only traced is known).
type expectedCgroup struct {
	state     CgroupState
	traceOnly bool
}

// Tampering is one difference between the kernel state agenttrace set and
// what the kernel holds.
type Tampering struct {
	What     string // "cgroup_states", "patterns" or "states_gen"
	CgroupID uint64 // cgroup_states
	Slot     uint32 // patterns
	// cgroup_states: nil is no entry.
	ExpectedState, FoundState *CgroupState
	// patterns: the glob, components joined by "/" ("" for an empty slot).
	ExpectedPattern, FoundPattern string
	// states_gen.
	ExpectedGen, FoundGen uint64
	// Restored: what agenttrace set was written back.
	Restored bool
}

func (s *expectedState) put(id uint64, st CgroupState) {
	if s.states == nil {
		s.states = map[uint64]expectedCgroup{}
	}
	s.states[id] = expectedCgroup{state: st}
}

// LearnCgroupState records that the kernel made cgroup id traced when it
// was created (a cgroup record): from now on CheckState watches it too.
func (t *Tracer) LearnCgroupState(id uint64) {
	t.expect.mu.Lock()
	defer t.expect.mu.Unlock()
	if _, ok := t.expect.states[id]; !ok {
		if t.expect.states == nil {
			t.expect.states = map[uint64]expectedCgroup{}
		}
		t.expect.states[id] = expectedCgroup{state: CgroupState{Traced: 1}, traceOnly: true}
	}
}

// ForgetCgroupState stops watching cgroup id (it was removed).
func (t *Tracer) ForgetCgroupState(id uint64) {
	t.expect.mu.Lock()
	defer t.expect.mu.Unlock()
	delete(t.expect.states, id)
}

// PatternText is a pattern as the kernel holds it: its components joined by "/".
func PatternText(p *GlobPattern) string {
	var parts []string
	for i := 0; i < int(p.Depth) && i < MaxPatternDepth; i++ {
		n := min(int(p.Lengths[i]), GlobBytes)
		c := make([]byte, n)
		for j := range c {
			c[j] = byte(p.Components[i][j])
		}
		parts = append(parts, string(c))
	}
	return strings.Join(parts, "/")
}

// CheckState compares the unfrozen maps with what agenttrace set, writes
// back what it set wherever they differ, and returns the differences.
// exists reports whether a cgroup id still exists: the kernel drops a
// cgroup's state at rmdir, before agenttrace reads its record.
func (t *Tracer) CheckState(exists func(id uint64) bool) ([]Tampering, error) {
	if !t.cfg.Globs {
		return nil, nil // run: every map is frozen
	}
	s := &t.expect
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Tampering

	found, err := t.CgroupStates()
	if err != nil {
		return nil, err
	}
	ids := make([]uint64, 0, len(s.states))
	for id := range s.states {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	changed := false
	for _, id := range ids {
		exp := s.states[id]
		got, ok := found[id]
		switch {
		case !ok && !exists(id):
			delete(s.states, id)
			continue
		case ok && (got.Traced != 0) == (exp.state.Traced != 0) && (exp.traceOnly || got.Partial == exp.state.Partial):
			continue
		}
		want := exp.state
		if exp.traceOnly && ok {
			want.Partial = got.Partial // the kernel derived it; only traced is known
		}
		d := Tampering{What: "cgroup_states", CgroupID: id, ExpectedState: &want}
		if ok {
			d.FoundState = &got
		}
		// Tasks marked while it was traced may be in it: untracing it is
		// safe only once the kernel knows.
		if want.Traced != 0 || t.untracingLocked(id) == nil {
			d.Restored = t.objs.CgroupStates.Put(id, &want) == nil
		}
		changed = true
		out = append(out, d)
	}

	for i := uint32(0); i < uint32(MaxPatterns); i++ {
		var got GlobPattern
		if err := t.objs.Patterns.Lookup(i, &got); err != nil {
			return out, fmt.Errorf("reading target pattern %d: %w", i, err)
		}
		if got == s.patterns[i] {
			continue
		}
		d := Tampering{What: "patterns", Slot: i, ExpectedPattern: PatternText(&s.patterns[i]), FoundPattern: PatternText(&got)}
		d.Restored = t.objs.Patterns.Put(i, &s.patterns[i]) == nil
		out = append(out, d)
		changed = true
	}

	var gen uint64
	if err := t.objs.StatesGen.Lookup(uint32(0), &gen); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return out, fmt.Errorf("reading the cgroup state generation: %w", err)
	}
	if gen != s.gen {
		out = append(out, Tampering{What: "states_gen", ExpectedGen: s.gen, FoundGen: gen, Restored: true})
		changed = true
	}
	if changed {
		// Past decisions cached under the changed state must go.
		if err := t.bumpStatesLocked(); err != nil {
			for i := range out {
				if out[i].What == "states_gen" {
					out[i].Restored = false
				}
			}
		}
	}
	return out, nil
}
