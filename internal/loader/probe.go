package loader

import (
	"errors"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"

	"github.com/agenttrace/agenttrace/internal/cgroup"
)

// HaveRingBuf reports whether the kernel has BPF ring buffers (5.8+).
func HaveRingBuf() error {
	return features.HaveMapType(ebpf.RingBuf)
}

// HaveBPFLoop reports whether the kernel has the bpf_loop helper (5.17+),
// which the daemon's in-kernel glob matcher (handle_cgroup_mkdir) calls.
// The helper is in the base set every program type gets, so a socket
// filter probes it without needing a tracing attach target.
func HaveBPFLoop() error {
	return features.HaveProgramHelper(ebpf.SocketFilter, asm.FnLoop)
}

// ProbeHooks loads the object and attaches each hook on its own, with no
// target set (so nothing is recorded), then detaches. It returns one error
// (nil: it works) per entry of Hooks, or an error if loading failed.
func ProbeHooks() ([]error, error) {
	t, err := Load(Config{})
	if err != nil {
		return nil, err
	}
	defer t.Close()
	root, err := cgroup.Mount()
	if err != nil {
		return nil, err
	}
	progs := t.programs()
	results := make([]error, len(Hooks))
	for i, h := range Hooks {
		if t.absent[h.Name] {
			results[i] = ErrHookAbsent
			continue
		}
		l, err := attach(h, progs[h.Program], root)
		if err != nil {
			results[i] = classify(err)
			continue
		}
		l.Close()
	}
	return results, nil
}

// ErrHookAbsent: an optional hook's tracepoint is not in this kernel (it is
// not attached, and what it records is not recorded).
var ErrHookAbsent = errors.New("this kernel has no such tracepoint")

// IsNotSupported reports whether err says the kernel lacks a feature.
func IsNotSupported(err error) bool {
	return errors.Is(err, ebpf.ErrNotSupported)
}
