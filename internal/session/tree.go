package session

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/cgroup"
	"github.com/agenttrace/agenttrace/internal/loader"
)

// The session's tree is every process the kernel marked as created by it
// (loader.Members), wherever it is now: in the session's cgroup tree, or in
// any other cgroup it was started in (clone3 CLONE_INTO_CGROUP) or moved to.
// cgroup.kill covers the first; the others are killed one by one through a
// pidfd. Processes outside the session that it took over (ptrace,
// process_vm_writev) are members too, marked tainted: they are not the
// session's to kill, and are only counted.

// memberSource is what endTree needs of the tracer.
type memberSource interface {
	Members() (map[uint32]loader.Member, error)
}

// treeState is who of the session's tree is alive, and where.
type treeState struct {
	inCgroup int   // processes in the session's cgroup tree
	outside  []int // members outside it, not tainted
	tainted  int   // tainted members still running
}

// clockTicks is USER_HZ: /proc/PID/stat counts start times in 1/100 s.
const clockTicks = 100

// procStart reads a process's start time (clock ticks since boot) and its
// cgroup v2 path from /proc; ok is false when it is gone.
func procStart(pid int) (ticks uint64, cgroupPath string, ok bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", false
	}
	// Fields after the comm (which ends with the last ')'): state is field 3, starttime 22.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 20 {
		return 0, "", false
	}
	if ticks, err = strconv.ParseUint(fields[22-3], 10, 64); err != nil {
		return 0, "", false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return 0, "", false
	}
	cgroupPath, _ = cgroup.ParseProcCgroup(data)
	return ticks, cgroupPath, true
}

// same reports whether the process at pid is still the member with start
// time startNs (boot-time ns), not a later process with its pid.
func same(pid int, startNs uint64) (cgroupPath string, ok bool) {
	ticks, path, ok := procStart(pid)
	if !ok || ticks != startNs/(1e9/clockTicks) {
		return "", false
	}
	return path, true
}

func inTree(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

// tree lists the session's live processes.
func tree(src memberSource, cg *cgroup.Cgroup) (treeState, error) {
	var st treeState
	pids, err := cg.Procs()
	if err != nil {
		return st, err
	}
	st.inCgroup = len(pids)
	members, err := src.Members()
	if err != nil {
		return st, err
	}
	for tgid, m := range members {
		path, alive := same(int(tgid), m.StartTime)
		switch {
		case !alive:
		case m.Mflags&loader.MemberTainted != 0:
			st.tainted++
		case !inTree(path, cg.Rel):
			st.outside = append(st.outside, int(tgid))
		}
	}
	return st, nil
}

// killMember sends SIGKILL through a pidfd, so that the signal reaches the
// member and never a later process that got its pid.
func killMember(pid int, startNs uint64) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	// The pidfd names the process that had the pid when it was opened: if
	// that is still the member, the signal cannot reach anyone else.
	if _, ok := same(pid, startNs); !ok {
		return nil
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("killing %d: %w", pid, err)
	}
	return nil
}

// endTree waits up to grace for the session's tree to end by itself, then
// kills what is left of it, wherever it is, and waits (at most 10 s) until
// it is gone. It returns how many processes were left running, and how
// many tainted ones were still running at the end.
func endTree(src memberSource, cg *cgroup.Cgroup, grace time.Duration) (left, tainted int, err error) {
	deadline := time.Now().Add(grace)
	var st treeState
	for {
		if st, err = tree(src, cg); err != nil {
			return 0, 0, err
		}
		if st.inCgroup == 0 && len(st.outside) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	left = st.inCgroup + len(st.outside)
	if left == 0 {
		return 0, st.tainted, nil
	}
	// Kill until nothing is left: a member may fork while it is killed; the
	// kernel marks the child, and the next round kills it.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if st.inCgroup > 0 {
			cg.Kill()
		}
		members, merr := src.Members()
		if merr != nil {
			return left, st.tainted, merr
		}
		for _, pid := range st.outside {
			if err := killMember(pid, members[uint32(pid)].StartTime); err != nil {
				return left, st.tainted, err
			}
		}
		if st, err = tree(src, cg); err != nil {
			return left, st.tainted, err
		}
		if st.inCgroup == 0 && len(st.outside) == 0 && gone(src) {
			return left, st.tainted, nil
		}
	}
	return left, st.tainted, fmt.Errorf("%d processes of the session outlived SIGKILL for 10 s", st.inCgroup+len(st.outside))
}

// gone reports whether every killed member has exited (its exit record is
// in the ring): the kernel drops a member at its exit.
func gone(src memberSource) bool {
	members, err := src.Members()
	if err != nil {
		return false
	}
	for _, m := range members {
		if m.Mflags&loader.MemberTainted == 0 {
			return false
		}
	}
	return true
}
