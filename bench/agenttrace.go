package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
)

// session is one `agenttrace run -- sleep infinity`: the tracer loaded and
// attached, its session cgroup empty but for the sleep, waiting for the
// workloads the harness starts inside it.
type session struct {
	cmd        *exec.Cmd
	Log        string
	cgroup     *os.File // the session cgroup, for CLONE_INTO_CGROUP
	cgroupPath string
	stderr     bytes.Buffer
}

// startSession starts agenttrace with default settings and waits until its
// command runs in its session cgroup: by then the programs are attached.
// env is added to the harness's environment.
func startSession(ctx context.Context, bin, mount, logPath string, env ...string) (*session, error) {
	s := &session{Log: logPath}
	s.cmd = exec.CommandContext(ctx, bin, "run", "--log", logPath, "--", "sleep", "infinity")
	if len(env) > 0 {
		s.cmd.Env = append(os.Environ(), env...)
	}
	s.cmd.Stdout, s.cmd.Stderr = io.Discard, &s.stderr
	// Stopped by SIGTERM, which it forwards to the sleep; if the harness
	// dies, the session ends the same way instead of tracing on.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	s.cmd.Cancel = func() error { return s.cmd.Process.Signal(syscall.SIGTERM) }
	s.cmd.WaitDelay = time.Minute
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting agenttrace: %w", err)
	}
	pattern := filepath.Join(mount, "agenttrace", fmt.Sprintf("run-*-%d", s.cmd.Process.Pid))
	deadline := time.Now().Add(30 * time.Second)
	for {
		if dirs, _ := filepath.Glob(pattern); len(dirs) == 1 {
			procs, err := os.ReadFile(filepath.Join(dirs[0], "cgroup.procs"))
			if err == nil && len(bytes.TrimSpace(procs)) > 0 {
				s.cgroupPath = dirs[0]
				break
			}
		}
		if err := processGone(s.cmd.Process.Pid); err != nil || time.Now().After(deadline) || ctx.Err() != nil {
			s.kill()
			return nil, fmt.Errorf("agenttrace did not start its session (waited for %s): %s", pattern, strings.TrimSpace(s.stderr.String()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	dir, err := os.OpenFile(s.cgroupPath, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		s.kill()
		return nil, fmt.Errorf("opening the session cgroup: %w", err)
	}
	s.cgroup = dir
	return s, nil
}

// processGone reports an error once pid has exited (a zombie counts as gone).
func processGone(pid int) error {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return err
	}
	if i := bytes.LastIndexByte(data, ')'); i > 0 && i+2 < len(data) && data[i+2] == 'Z' {
		return errors.New("exited")
	}
	return nil
}

// processesCPU is the user+system CPU time of pids so far.
func processesCPU(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		sum += processCPU(pid)
	}
	return sum
}

// processCPU is the user+system CPU time of pid (all its threads) so far.
func processCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	// Fields 14 and 15 of stat, utime and stime, in clock ticks (USER_HZ = 100).
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func (s *session) Pid() int      { return s.cmd.Process.Pid }
func (s *session) CgroupFD() int { return int(s.cgroup.Fd()) }

func (s *session) kill() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	if s.cgroup != nil {
		s.cgroup.Close()
	}
}

// stop ends the session (SIGTERM: agenttrace forwards it to the sleep,
// drains the ring buffer and writes its stop record) and waits for it.
func (s *session) stop() error {
	s.cgroup.Close()
	s.cmd.Process.Signal(syscall.SIGTERM)
	err := s.cmd.Wait()
	if st := s.cmd.ProcessState; st != nil {
		// 143: the sleep ended by the forwarded SIGTERM, as intended.
		if st.ExitCode() == 128+int(syscall.SIGTERM) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("agenttrace session: %w: %s", err, strings.TrimSpace(s.stderr.String()))
	}
	awaitUnloaded()
	return nil
}

// awaitUnloaded waits (up to 2 s) until no agenttrace programs are loaded.
// The kernel frees a tracer's programs a moment after its process is gone;
// the next slice must not start while they are still loaded (it would
// count them as another tracer's).
func awaitUnloaded() {
	for deadline := time.Now().Add(2 * time.Second); loadedPrograms("handle_sys_enter") > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

// sessionLog is what the harness reads back from a session's log.
type sessionLog struct {
	Lines int64
	// Kernel records (exec, open, connect, fork, exit) by the key of the
	// workload process that made them (or its children), then by type.
	ByKey        map[string]map[string]int64
	Unattributed int64            // kernel records of other processes (the sleep)
	StopRecords  map[string]int64 // the stop record's per-type counts
	StopLost     map[string]int64 // the stop record's lost counts
	Gaps         int64            // gap records
	GapLost      int64            // events they count
	HasStop      bool
}

// LostTotal is every event the session lost, by its stop record.
func (l *sessionLog) LostTotal() int64 {
	var n int64
	for _, v := range l.StopLost {
		n += v
	}
	return n
}

// parseSessionLog reads a log, every segment of it (a sustained slice
// writes more than a segment holds), and attributes every kernel record to
// the workload whose process (or child of it) made it: pids maps a
// workload's pid to its key. Only the fields it needs are read, by their
// unique spelling: JSON strings escape '"', so `"proc":{"pid":` cannot occur
// inside one.
func parseSessionLog(path string, pids map[int]string) (*sessionLog, error) {
	l := &sessionLog{ByKey: map[string]map[string]int64{}}
	owner := map[int]string{}
	for pid, key := range pids {
		owner[pid] = key
		l.ByKey[key] = map[string]int64{}
	}
	files, _ := logfile.Segments(path)
	if len(files) == 0 {
		return nil, fmt.Errorf("no log at %s", path)
	}
	for _, file := range files {
		if err := l.addSegment(file, owner); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// addSegment adds the records of one segment file.
func (l *sessionLog) addSegment(path string, owner map[int]string) error {
	r, err := logfile.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		line, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		l.Lines++
		if perr := l.add(line, owner); perr != nil {
			return fmt.Errorf("%s offset %d: %w", path, r.Offset()-int64(len(line)), perr)
		}
	}
	if n := len(r.Pending()); n > 0 {
		return fmt.Errorf("%s ends in a line without its newline (%d bytes)", path, n)
	}
	return nil
}

// removeLog removes every segment of the log at path and its key.
func removeLog(path string) {
	files, _ := logfile.Segments(path)
	for _, f := range files {
		os.Remove(f)
	}
	os.Remove(path + ".pub")
}

func (l *sessionLog) add(line []byte, owner map[int]string) error {
	typ := fieldString(line, `"type":"`)
	switch {
	case record.IsKernel(typ):
		pid, ok := fieldInt(line, `"proc":{"pid":`)
		if !ok {
			return fmt.Errorf("%s record without proc.pid", typ)
		}
		key, ok := owner[pid]
		if !ok {
			l.Unattributed++
			return nil
		}
		l.ByKey[key][typ]++
		if typ == "fork" {
			if child, ok := fieldInt(line, `"child_pid":`); ok {
				owner[child] = key
			}
		}
	case typ == "gap":
		var rec struct {
			Gap struct {
				Lost map[string]int64 `json:"lost"`
			} `json:"gap"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return err
		}
		l.Gaps++
		for _, v := range rec.Gap.Lost {
			l.GapLost += v
		}
	case typ == "stop":
		var rec struct {
			Stop struct {
				Records map[string]int64 `json:"records"`
				Lost    map[string]int64 `json:"lost"`
			} `json:"stop"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return err
		}
		l.HasStop = true
		l.StopRecords, l.StopLost = rec.Stop.Records, rec.Stop.Lost
	}
	return nil
}

// fieldString returns the string value following key, "" if absent.
func fieldString(line []byte, key string) string {
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return ""
	}
	rest := line[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// fieldInt returns the integer value following key.
func fieldInt(line []byte, key string) (int, bool) {
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := line[i+len(key):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, err := strconv.Atoi(string(rest[:j]))
	return n, err == nil
}

// readStop reads only the stop record of a log, from the end of its last
// segment: the rate search's logs are hundreds of megabytes.
func readStop(path string) (*sessionLog, error) {
	if files, _ := logfile.Segments(path); len(files) > 0 {
		path = files[len(files)-1]
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(st.Size()-(1<<20), 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return nil, err
	}
	l := &sessionLog{ByKey: map[string]map[string]int64{}}
	for line := range bytes.SplitSeq(buf, []byte("\n")) {
		if fieldString(line, `"type":"`) == "stop" {
			if err := l.add(line, nil); err != nil {
				return nil, err
			}
		}
	}
	if !l.HasStop {
		return nil, fmt.Errorf("%s has no stop record in its last MiB", path)
	}
	return l, nil
}

// hookStats is the kernel's run count and run time of each of a process's
// eBPF programs, by program name. The kernel counts them only while
// BPF statistics are enabled (ebpf.EnableStats).
func hookStats(pid int) (map[string]ebpf.ProgramStats, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	stats := map[string]ebpf.ProgramStats{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err != nil || link != "anon_inode:bpf-prog" {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		if err != nil {
			continue
		}
		id := 0
		for line := range strings.SplitSeq(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "prog_id:"); ok {
				id, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
		if err != nil {
			continue
		}
		pi, ierr := prog.Info()
		ps, serr := prog.Stats()
		prog.Close()
		if ierr == nil && serr == nil {
			stats[pi.Name] = *ps
		}
	}
	if len(stats) == 0 {
		return nil, fmt.Errorf("no eBPF programs found in process %d", pid)
	}
	return stats, nil
}

// hookDeltas is each program's runs and run time between two hookStats
// readings, by program name, and their eBPF time per operation in all.
func hookDeltas(before, after map[string]ebpf.ProgramStats, ops int64) ([]ProfileHook, float64) {
	var hooks []ProfileHook
	var perOp float64
	for _, n := range slices.Sorted(maps.Keys(after)) {
		hk := ProfileHook{Program: n, Runs: int64(after[n].RunCount - before[n].RunCount), Ns: int64(after[n].Runtime - before[n].Runtime)}
		if hk.Runs > 0 {
			hk.NsPerRun = float64(hk.Ns) / float64(hk.Runs)
		}
		hk.NsPerOp = float64(hk.Ns) / float64(ops)
		perOp += hk.NsPerOp
		hooks = append(hooks, hk)
	}
	return hooks, perOp
}

// loadedPrograms counts the loaded eBPF programs called name, host-wide.
func loadedPrograms(name string) int {
	n := 0
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return n
		}
		id = next
		prog, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		if pi, err := prog.Info(); err == nil && pi.Name == name {
			n++
		}
		prog.Close()
	}
}
