// Package preflight checks, before anything is loaded, that this host can
// run agenttrace, and says what to do about each thing that is missing.
//
// It must not change the host: checks read, or load and immediately unload.
package preflight

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/cgroup"
	"github.com/agenttrace/agenttrace/internal/loader"
)

// Result of one check.
type Result struct {
	Name     string
	OK       bool
	Required bool
	Detail   string // what was found
	Fix      string // what to do, when not OK
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
var ErrNoBTF = errors.New("kernel has no BTF (" + BTFPath + " is missing): agenttrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.8 or later)")

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

// All runs every check, for `agenttrace check`.
func All() []Result {
	var results []Result
	add := func(r Result) { results = append(results, r) }

	privErr := Privileges()
	add(Result{Name: "privileges", Required: true, OK: privErr == nil,
		Detail: okOr(privErr, "effective CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN"),
		Fix:    "run as root (sudo) or grant CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN"})

	release, major, minor := KernelVersion()
	add(Result{Name: "kernel", Required: true, OK: atLeast(major, minor, 5, 8),
		Detail: release + " (5.8 or later required)",
		Fix:    "upgrade to Linux 5.8 or later (ring buffer, BTF tracing programs)"})

	btfErr := BTF()
	add(Result{Name: "BTF", Required: true, OK: btfErr == nil, Detail: okOr(btfErr, BTFPath),
		Fix: "use a kernel built with CONFIG_DEBUG_INFO_BTF=y"})

	mount, cgErr := cgroup.Mount()
	add(Result{Name: "cgroup2", Required: true, OK: cgErr == nil, Detail: okOr(cgErr, "mounted at "+mount),
		Fix: "mount cgroup2 (mount -t cgroup2 none /sys/fs/cgroup/unified)"})
	if cgErr == nil {
		wErr := unix.Access(mount, unix.W_OK)
		add(Result{Name: "cgroup2 writable", Required: true, OK: wErr == nil,
			Detail: okOr(wErr, "can create session cgroups under "+mount),
			Fix:    "run as root, or delegate a writable cgroup2 subtree"})
		_, kErr := os.Stat(mount + "/cgroup.kill")
		if os.IsNotExist(kErr) {
			// cgroup.kill is absent in the root cgroup; look one level down.
			entries, _ := os.ReadDir(mount)
			for _, e := range entries {
				if e.IsDir() {
					_, kErr = os.Stat(mount + "/" + e.Name() + "/cgroup.kill")
					break
				}
			}
		}
		add(Result{Name: "cgroup.kill", OK: kErr == nil || atLeast(major, minor, 5, 14),
			Detail: "kill a session's leftover processes at once (5.14+); otherwise freeze and signal each",
			Fix:    "optional: Linux 5.14 or later"})
	}
	add(Result{Name: "clone3 into cgroup", Required: true, OK: atLeast(major, minor, 5, 7),
		Detail: "start the command inside its cgroup from its first instruction (CLONE_INTO_CGROUP, 5.7+)",
		Fix:    "upgrade to Linux 5.7 or later"})

	if privErr == nil {
		rbErr := loader.HaveRingBuf()
		add(Result{Name: "ring buffer", Required: true, OK: rbErr == nil, Detail: okOr(rbErr, "BPF_MAP_TYPE_RINGBUF"),
			Fix: "upgrade to Linux 5.8 or later"})
	}

	add(Result{Name: "tracefs", OK: true,
		Detail: "not needed: agenttrace uses BTF tracepoints (tp_btf), which do not go through tracefs"})

	if privErr == nil && btfErr == nil {
		hookErrs, loadErr := loader.ProbeHooks()
		if loadErr != nil {
			add(Result{Name: "load eBPF programs", Required: true, Detail: loadErr.Error(),
				Fix: "see the verifier message above; report it with `agenttrace check` output"})
		} else {
			for i, h := range loader.Hooks {
				add(Result{Name: "hook " + h.Name, Required: true, OK: hookErrs[i] == nil,
					Detail: okOr(hookErrs[i], "attaches"),
					Fix:    "needs BTF-enabled raw tracepoints (tp_btf, Linux 5.5+)"})
			}
		}
	} else {
		add(Result{Name: "ring buffer and hooks", Required: true, Detail: "not probed: needs privileges and BTF",
			Fix: "fix the checks above, then run agenttrace check again"})
	}

	_, ia32Err := os.Stat("/proc/sys/abi/vsyscall32")
	add(Result{Name: "i386 syscall ABI", OK: true,
		Detail: map[bool]string{true: "enabled: i386 syscalls (int 0x80) are recorded too", false: "not present"}[ia32Err == nil]})
	return results
}

func okOr(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}
