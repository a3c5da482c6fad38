// Package snapshot owns the snapshot record: what a process that was
// already running in a cgroup was when agenttrace started tracing it (its
// identity, credentials, program, arguments, working directory, cgroup and
// open sockets), read from /proc and from sock_diag, so that the audit log
// describes every traced process from its first moment.
//
// It only reads. It never signals, stops or ptraces a process and never
// changes its state; the one namespace it enters is a process's network
// namespace, on a locked thread and only to open a sock_diag socket there.
package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/cgroup"
)

// StartTimeResolution is the resolution of Process.StartTime in ns:
// /proc/PID/stat gives the start time in clock ticks of USER_HZ, which is
// 100 on x86_64 (and on every architecture but alpha).
const StartTimeResolution = 1_000_000_000 / userHZ

const userHZ = 100

// AuidUnset is the login uid of a process that has none.
const AuidUnset = 4294967295

// Socket is an open socket of a process, as sock_diag reports it in the
// process's network namespace.
type Socket struct {
	Fd    int
	Inode uint64
	// Family is AF_INET, AF_INET6 or AF_UNIX; "" when the socket was found
	// in no dump (Proto is then "unknown": netlink, packet, raw, an
	// unbound UDP or TCP socket, ...).
	Family string
	// Proto is tcp, udp, unix_stream, unix_dgram, unix_seqpacket or unknown.
	Proto string
	// State is the kernel's TCP state name without its TCP_ prefix
	// (ESTABLISHED, LISTEN, CLOSE, ...), which unix and UDP sockets use too;
	// STATE_<n> for a number without a name.
	State string
	// Src and Dst are the local and remote address of an inet socket, as
	// the kernel reports them (0.0.0.0:0 or [::]:0 when not bound or not
	// connected); zero for other families.
	Src, Dst netip.AddrPort
	// Path is the address a unix socket is bound to: a path, or an
	// abstract name with its leading NUL; nil when it has none.
	Path []byte
	// Peer is the inode of a connected unix socket's peer, 0 if none.
	Peer uint64
}

// Process is what a running process was when it was read.
type Process struct {
	Pid, Ppid                  int
	Uid, Gid, Euid, Egid, Auid uint32
	Comm                       string // task name, the bytes of /proc/PID/stat
	Exe                        []byte // /proc/PID/exe; nil when unreadable (then Errors says why)
	Argv                       [][]byte
	Cwd                        []byte // /proc/PID/cwd; nil when unreadable
	StartTime                  uint64 // ns since boot (CLOCK_BOOTTIME), truncated to StartTimeResolution
	StartTimeResolution        uint64 // ns
	CgroupPath                 string // cgroup v2 path, from the "0::" line of /proc/PID/cgroup
	Sockets                    []Socket
	Errors                     []string // what could not be read and why: "exe: permission denied"
}

// Take reads the process pid. It fails only when the process is gone
// (exited before or while it was read; the error wraps os.ErrNotExist) or
// its stat and status files cannot be read; anything else that cannot be
// read is left out and named in Errors.
func Take(pid int) (*Process, error) {
	nets := newNetnsTables()
	return take(pid, nets)
}

// TakeAll reads the processes pids, in order, leaving out the ones that
// are gone. Sockets are dumped once per network namespace.
func TakeAll(pids []int) []*Process {
	nets := newNetnsTables()
	procs := make([]*Process, 0, len(pids))
	for _, pid := range pids {
		if p, err := take(pid, nets); err == nil {
			procs = append(procs, p)
		}
	}
	return procs
}

func take(pid int, nets *netnsTables) (*Process, error) {
	// Every file is read through one descriptor of /proc/PID: it stays
	// bound to this process, so a pid reused meanwhile reads as gone
	// instead of mixing two processes into one record.
	dir, err := unix.Open("/proc/"+strconv.Itoa(pid), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, processError(pid, "opening /proc", err)
	}
	defer unix.Close(dir)

	p := &Process{Pid: pid, StartTimeResolution: StartTimeResolution}
	stat, err := readAt(dir, "stat")
	if err != nil {
		return nil, processError(pid, "reading stat", err)
	}
	var comm []byte
	var ticks uint64
	if comm, p.Ppid, ticks, err = parseStat(stat); err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	p.Comm = string(comm)
	p.StartTime = ticks * StartTimeResolution
	status, err := readAt(dir, "status")
	if err != nil {
		return nil, processError(pid, "reading status", err)
	}
	if err := p.parseStatus(status); err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}

	p.Auid = AuidUnset
	if data, err := readAt(dir, "loginuid"); err != nil {
		p.addError("auid", err)
	} else if auid, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 32); err != nil {
		p.addError("auid", err)
	} else {
		p.Auid = uint32(auid)
	}
	if p.Exe, err = readlinkAt(dir, "exe"); err != nil {
		p.addError("exe", err)
	}
	if cmdline, err := readAt(dir, "cmdline"); err != nil {
		p.addError("argv", err)
	} else {
		p.Argv = splitArgv(cmdline)
	}
	if p.Cwd, err = readlinkAt(dir, "cwd"); err != nil {
		p.addError("cwd", err)
	}
	if data, err := readAt(dir, "cgroup"); err != nil {
		p.addError("cgroup", err)
	} else if path, ok := cgroup.ParseProcCgroup(data); ok {
		p.CgroupPath = path
	} else {
		p.Errors = append(p.Errors, "cgroup: no cgroup v2 entry")
	}
	p.readSockets(dir, nets)

	// A process that exited while it was read is gone rather than a record
	// with holes: its exit is the kernel's to record. (A zombie is still
	// there, and its record says what a zombie no longer has.)
	if _, err := readAt(dir, "stat"); gone(err) {
		return nil, processError(pid, "reading stat", err)
	}
	return p, nil
}

// processError wraps os.ErrNotExist when err means the process is gone.
func processError(pid int, doing string, err error) error {
	if gone(err) {
		return fmt.Errorf("process %d is gone: %w", pid, os.ErrNotExist)
	}
	return fmt.Errorf("process %d: %s: %w", pid, doing, err)
}

// gone reports the errors /proc gives for a process that no longer exists:
// ENOENT for its directory and the files in it, ESRCH for files opened
// before it was reaped.
func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH)
}

// addError records why what could not be read: "exe: permission denied".
func (p *Process) addError(what string, err error) {
	var errno unix.Errno
	if errors.As(err, &errno) {
		p.Errors = append(p.Errors, what+": "+errno.Error())
		return
	}
	p.Errors = append(p.Errors, what+": "+err.Error())
}

func readAt(dir int, name string) ([]byte, error) {
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return io.ReadAll(f)
}

// readlinkAt reads a /proc link. The kernel writes at most a page less its
// terminating NUL, so a buffer of PathMax always holds the whole target.
func readlinkAt(dir int, name string) ([]byte, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n:n], nil
}

var errMalformedStat = errors.New("malformed /proc stat line")

// parseStat reads comm, ppid (field 4) and starttime (field 22) from
// /proc/PID/stat. comm may hold spaces and parentheses, so it ends at the
// last ')'.
func parseStat(data []byte) (comm []byte, ppid int, startTicks uint64, err error) {
	open := bytes.IndexByte(data, '(')
	end := bytes.LastIndexByte(data, ')')
	if open < 0 || end < open {
		return nil, 0, 0, errMalformedStat
	}
	fields := strings.Fields(string(data[end+1:])) // fields[0] is field 3, state
	if len(fields) < 20 {
		return nil, 0, 0, errMalformedStat
	}
	if ppid, err = strconv.Atoi(fields[4-3]); err != nil {
		return nil, 0, 0, errMalformedStat
	}
	if startTicks, err = strconv.ParseUint(fields[22-3], 10, 64); err != nil {
		return nil, 0, 0, errMalformedStat
	}
	return data[open+1 : end], ppid, startTicks, nil
}

// parseStatus reads the real and effective ids from the Uid: and Gid:
// lines of /proc/PID/status (real, effective, saved, file system).
func (p *Process) parseStatus(data []byte) error {
	var seen int
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		var real, eff *uint32
		if v, ok := bytes.CutPrefix(line, []byte("Uid:")); ok {
			line, real, eff = v, &p.Uid, &p.Euid
		} else if v, ok := bytes.CutPrefix(line, []byte("Gid:")); ok {
			line, real, eff = v, &p.Gid, &p.Egid
		} else {
			continue
		}
		ids := strings.Fields(string(line))
		if len(ids) < 2 {
			return errors.New("malformed /proc status id line")
		}
		r, err1 := strconv.ParseUint(ids[0], 10, 32)
		e, err2 := strconv.ParseUint(ids[1], 10, 32)
		if err1 != nil || err2 != nil {
			return errors.New("malformed /proc status id line")
		}
		*real, *eff = uint32(r), uint32(e)
		seen++
	}
	if seen != 2 {
		return errors.New("/proc status without Uid: and Gid: lines")
	}
	return nil
}

// splitArgv splits /proc/PID/cmdline into arguments: each ends with a NUL,
// except the last when the process overwrote its argument area. Empty
// arguments are kept; a process without memory (a zombie, a kernel thread)
// has none.
func splitArgv(cmdline []byte) [][]byte {
	if len(cmdline) == 0 {
		return nil
	}
	cmdline = bytes.TrimSuffix(cmdline, []byte{0})
	return bytes.Split(bytes.Clone(cmdline), []byte{0})
}

// readSockets lists the process's socket descriptors and describes each
// from the socket tables of its network namespace.
func (p *Process) readSockets(dir int, nets *netnsTables) {
	fd, err := unix.Openat(dir, "fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		p.addError("sockets", err)
		return
	}
	fdDir := os.NewFile(uintptr(fd), "fd")
	defer fdDir.Close()
	names, err := fdDir.Readdirnames(-1)
	if err != nil {
		p.addError("sockets", err)
		return
	}
	for _, name := range names {
		n, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		link, err := readlinkAt(fd, name)
		if errors.Is(err, unix.ENOENT) {
			continue // closed since the listing: not open now
		}
		if err != nil {
			p.addError("sockets: fd "+name, err)
			continue
		}
		if inode, ok := socketInode(link); ok {
			p.Sockets = append(p.Sockets, Socket{Fd: n, Inode: inode, Proto: "unknown"})
		}
	}
	if len(p.Sockets) == 0 {
		return
	}
	slices.SortFunc(p.Sockets, func(a, b Socket) int { return a.Fd - b.Fd })
	table, err := nets.lookup(dir)
	for i, s := range p.Sockets {
		if found, ok := table[s.Inode]; ok {
			found.Fd = s.Fd
			p.Sockets[i] = found
		}
	}
	if err != nil {
		p.addError("sockets", err)
	}
}

// socketInode parses the target of a socket descriptor's link, "socket:[INODE]".
func socketInode(link []byte) (uint64, bool) {
	v, ok := bytes.CutPrefix(link, []byte("socket:["))
	if !ok {
		return 0, false
	}
	v, ok = bytes.CutSuffix(v, []byte("]"))
	if !ok {
		return 0, false
	}
	inode, err := strconv.ParseUint(string(v), 10, 64)
	return inode, err == nil
}
