// Package preflight checks, before anything is loaded, that this host can
// run agenttrace, and says what to do about each thing that is missing.
//
// It must not change the host: checks read, or load and immediately unload.
package preflight

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/cgroup"
	"github.com/agenttrace/agenttrace/internal/loader"
)

// Result of one check.
type Result struct {
	Name      string
	Modes     Mode // the modes that need it
	OK        bool
	Required  bool   // by some mode
	NotProbed bool   // not OK because an earlier check failed
	Detail    string // what was found
	Fix       string // what to do, when not OK
}

// Capabilities agenttrace needs: BPF and PERFMON to load and attach the
// programs, SYS_ADMIN for the cgroup and its BPF map, SYS_RESOURCE for
// kernels that still charge BPF memory to RLIMIT_MEMLOCK.
var capabilities = []struct {
	bit  uint
	name string
}{
	{unix.CAP_BPF, "CAP_BPF"},
	{unix.CAP_PERFMON, "CAP_PERFMON"},
	{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"},
}

// ErrNotPrivileged is returned by Privileges when a capability is missing.
var ErrNotPrivileged = loader.ErrNotPrivileged

// Privileges returns nil if the effective capability set has everything
// agenttrace needs.
func Privileges() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	var missing []string
	for _, c := range capabilities {
		if data[c.bit/32].Effective&(1<<(c.bit%32)) == 0 {
			missing = append(missing, c.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w; missing %s", ErrNotPrivileged, strings.Join(missing, ", "))
	}
	return nil
}

// BTFPath is where the kernel exposes its own type information.
const BTFPath = "/sys/kernel/btf/vmlinux"

// ErrNoBTF means the kernel does not expose BTF.
var ErrNoBTF = errors.New("kernel has no BTF (" + BTFPath + " is missing): agenttrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (6.2 or later)")

// BTF returns nil if the kernel exposes BTF.
func BTF() error {
	if _, err := os.Stat(BTFPath); err != nil {
		return ErrNoBTF
	}
	return nil
}

// KernelVersion returns the running kernel's major and minor version.
func KernelVersion() (release string, major, minor int) {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "", 0, 0
	}
	release = unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(release, ".", 3)
	if len(parts) >= 2 {
		major, _ = strconv.Atoi(parts[0])
		minor, _ = strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	}
	return release, major, minor
}

func atLeast(major, minor, wantMajor, wantMinor int) bool {
	return major > wantMajor || major == wantMajor && minor >= wantMinor
}

// Required runs the checks `run` cannot start without, fast, and returns the
// first failure.
func Required() error {
	if err := Privileges(); err != nil {
		return err
	}
	if err := BTF(); err != nil {
		return err
	}
	if _, err := cgroup.Mount(); err != nil {
		return err
	}
	return nil
}

// Mode is a way of running agenttrace; a requirement names the modes that
// cannot work without it.
type Mode uint8

// The modes.
const (
	ModeRun    Mode = 1 << iota // agenttrace run
	ModeDaemon                  // agenttrace daemon
	ModeAll    = ModeRun | ModeDaemon
)

// Modes lists every mode with its name, in the order check reports them.
var Modes = []struct {
	Mode Mode
	Name string
}{{ModeRun, "run"}, {ModeDaemon, "daemon"}}

// String names the modes in m ("run, daemon"), or "optional" for none.
func (m Mode) String() string {
	var names []string
	for _, x := range Modes {
		if m&x.Mode != 0 {
			names = append(names, x.Name)
		}
	}
	if len(names) == 0 {
		return "optional"
	}
	return strings.Join(names, ", ")
}

// Requirement is one thing a mode needs from the host: how to check it and
// what to do when it is missing. Check returns what was found, or why the
// requirement is not met (ErrNotProbed when an earlier one blocks the probe).
type Requirement struct {
	Name  string
	Modes Mode // the modes that need it; 0: optional, reported for information
	Check func(h *Host) (found string, err error)
	Fix   string
}

// ErrNotProbed marks a requirement that could not be checked because one it
// depends on is missing.
var ErrNotProbed = errors.New("not probed")

// Requirements is every requirement agenttrace check reports, in order.
// Add a row when agenttrace starts to use a kernel feature; each hook of
// loader.Hooks is a row of its own (hookRequirements), so a new hook is
// checked as soon as it is in that list.
func Requirements() []Requirement {
	rows := []Requirement{
		{"privileges", ModeAll, func(h *Host) (string, error) {
			return "effective CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN", h.privErr
		}, "run as root (sudo) or grant CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN"},
		{"kernel", ModeAll, func(h *Host) (string, error) {
			found := h.release + " (6.2 or later required)"
			if !atLeast(h.major, h.minor, 6, 2) {
				return "", errors.New(found)
			}
			return found, nil
		}, "upgrade to Linux 6.2 or later (ring buffer, BTF tracing programs, task storage, bpf_task_from_pid)"},
		{"BTF", ModeAll, func(h *Host) (string, error) { return BTFPath, h.btfErr },
			"use a kernel built with CONFIG_DEBUG_INFO_BTF=y"},
		{"cgroup2", ModeAll, func(h *Host) (string, error) { return "mounted at " + h.mount, h.cgErr },
			"mount cgroup2 (mount -t cgroup2 none /sys/fs/cgroup/unified)"},
		{"cgroup2 writable", ModeRun, checkCgroupWritable, "run as root, or delegate a writable cgroup2 subtree"},
		{"cgroup.kill", 0, checkCgroupKill, "optional: Linux 5.14 or later"},
		{"clone3 into cgroup", ModeRun, func(h *Host) (string, error) {
			found := "start the command inside its cgroup from its first instruction (CLONE_INTO_CGROUP, 5.7+)"
			if !atLeast(h.major, h.minor, 5, 7) {
				return "", errors.New(found)
			}
			return found, nil
		}, "upgrade to Linux 5.7 or later"},
		{"ring buffer", ModeAll, func(h *Host) (string, error) {
			if h.privErr != nil {
				return "", fmt.Errorf("%w: needs privileges", ErrNotProbed)
			}
			return "BPF_MAP_TYPE_RINGBUF", loader.HaveRingBuf()
		}, "upgrade to Linux 5.8 or later"},
		{"bpf_loop", ModeDaemon, func(h *Host) (string, error) {
			if h.privErr != nil {
				return "", fmt.Errorf("%w: needs privileges", ErrNotProbed)
			}
			found := "the daemon matches target globs in the kernel with the bpf_loop helper (5.17+)"
			if err := loader.HaveBPFLoop(); err != nil {
				if loader.IsNotSupported(err) {
					return "", errors.New("the kernel has no bpf_loop helper: the daemon cannot match target globs (agenttrace run does not need it)")
				}
				return "", fmt.Errorf("probing bpf_loop: %w", err)
			}
			return found, nil
		}, "upgrade to Linux 5.17 or later for agenttrace daemon"},
		{"bpffs", ModeDaemon, func(h *Host) (string, error) {
			mounted, err := loader.BPFFSMounted()
			switch {
			case err != nil:
				return "", err
			case mounted:
				return "mounted at " + loader.BPFFS + ": the daemon's kernel side is pinned there and outlives it", nil
			}
			if st, err := os.Stat(loader.BPFFS); err != nil || !st.IsDir() {
				return "", fmt.Errorf("%s is not mounted and is not a directory to mount it on", loader.BPFFS)
			}
			return "not mounted: the daemon mounts it at " + loader.BPFFS + " (in a container, mount the host's there)", nil
		}, "mount -t bpf bpf /sys/fs/bpf (a container needs the host's: -v /sys/fs/bpf:/sys/fs/bpf)"},
		{"load eBPF programs", ModeAll, func(h *Host) (string, error) {
			if _, err := h.probeHooks(); err != nil {
				return "", err
			}
			return "the object loads and passes the verifier", nil
		}, "see the verifier message above; report it with `agenttrace check` output"},
	}
	rows = append(rows, hookRequirements()...)
	return append(rows,
		Requirement{"pinned kernel sides", 0, func(*Host) (string, error) {
			dirs, _ := filepath.Glob(filepath.Join(loader.BPFFS, "agenttrace", "*", "*"))
			if len(dirs) == 0 {
				return "none: no daemon's kernel side is recording without it", nil
			}
			return fmt.Sprintf("%d recording (a daemon's, or one left for the next daemon; agenttrace daemon stop --config … releases it): %s",
				len(dirs), strings.Join(dirs, ", ")), nil
		}, ""},
		Requirement{"tracefs", 0, func(*Host) (string, error) {
			return "not needed: agenttrace uses BTF tracepoints (tp_btf), which do not go through tracefs", nil
		}, ""},
		Requirement{"i386 syscall ABI", 0, func(*Host) (string, error) {
			if _, err := os.Stat("/proc/sys/abi/vsyscall32"); err != nil {
				return "not present", nil
			}
			return "enabled: i386 syscalls (int 0x80) are recorded too", nil
		}, ""},
	)
}

// hookRequirements is one row per hook agenttrace attaches.
func hookRequirements() []Requirement {
	rows := make([]Requirement, len(loader.Hooks))
	for i, hook := range loader.Hooks {
		rows[i] = Requirement{Name: "hook " + hook.Name, Modes: ModeAll, Check: func(h *Host) (string, error) {
			errs, err := h.probeHooks()
			if err != nil {
				return "", fmt.Errorf("%w: the eBPF object did not load", ErrNotProbed)
			}
			if hook.Optional && errors.Is(errs[i], loader.ErrHookAbsent) {
				return "absent (optional): what it records is not recorded on this kernel", nil
			}
			return "attaches", errs[i]
		}, Fix: "needs BTF-enabled raw tracepoints (tp_btf, Linux 5.5+)"}
	}
	return rows
}

// Host is what is known about this host, probed once and shared by the
// checks.
type Host struct {
	privErr      error
	btfErr       error
	release      string
	major, minor int
	mount        string
	cgErr        error

	hooksProbed bool
	hookErrs    []error
	loadErr     error
}

// NewHost probes what every check needs.
func NewHost() *Host {
	h := &Host{privErr: Privileges(), btfErr: BTF()}
	h.release, h.major, h.minor = KernelVersion()
	h.mount, h.cgErr = cgroup.Mount()
	return h
}

// probeHooks loads the object and attaches each hook, once.
func (h *Host) probeHooks() ([]error, error) {
	if !h.hooksProbed {
		h.hooksProbed = true
		switch {
		case h.privErr != nil:
			h.loadErr = fmt.Errorf("%w: needs privileges", ErrNotProbed)
		case h.btfErr != nil:
			h.loadErr = fmt.Errorf("%w: needs BTF", ErrNotProbed)
		default:
			h.hookErrs, h.loadErr = loader.ProbeHooks()
		}
	}
	return h.hookErrs, h.loadErr
}

func checkCgroupWritable(h *Host) (string, error) {
	if h.cgErr != nil {
		return "", fmt.Errorf("%w: no cgroup2 mount", ErrNotProbed)
	}
	return "can create session cgroups under " + h.mount, unix.Access(h.mount, unix.W_OK)
}

func checkCgroupKill(h *Host) (string, error) {
	found := "kill a session's leftover processes at once (5.14+); otherwise freeze and signal each"
	if h.cgErr != nil {
		return "", fmt.Errorf("%w: no cgroup2 mount", ErrNotProbed)
	}
	_, err := os.Stat(h.mount + "/cgroup.kill")
	if os.IsNotExist(err) {
		// cgroup.kill is absent in the root cgroup; look one level down.
		entries, _ := os.ReadDir(h.mount)
		for _, e := range entries {
			if e.IsDir() {
				_, err = os.Stat(h.mount + "/" + e.Name() + "/cgroup.kill")
				break
			}
		}
	}
	if err != nil && !atLeast(h.major, h.minor, 5, 14) {
		return "", errors.New(found)
	}
	return found, nil
}

// All runs every check, for `agenttrace check`.
func All() []Result {
	h := NewHost()
	var results []Result
	for _, r := range Requirements() {
		found, err := r.Check(h)
		res := Result{Name: r.Name, Modes: r.Modes, Required: r.Modes != 0, OK: err == nil, Detail: found, Fix: r.Fix}
		if err != nil {
			res.Detail = err.Error()
			res.NotProbed = errors.Is(err, ErrNotProbed)
			if res.NotProbed {
				res.Fix = "fix the checks above, then run agenttrace check again"
			}
		}
		results = append(results, res)
	}
	return results
}
