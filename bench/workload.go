package bench

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The workload programs. They are C so that one operation is the syscalls it
// names and nothing else: no runtime, no allocator, no garbage collector.
//
//go:embed workload/*.c workload/*.h
var workloadSources embed.FS

// workload is one kind of operation the harness times.
type workload struct {
	Name    string   // in the report
	Title   string   // what one operation is
	Program string   // source workload/<Program>.c
	Args    []string // operands; targetArg is replaced by the file to open
	// Snoop is the libbpf-tools program that traces this operation;
	// NoSnoop says why there is none.
	Snoop, NoSnoop string
	// Tree: the workload is a process tree (a real-work command run by the
	// runner), traced as a whole.
	Tree bool
}

// snoopTools are the libbpf-tools programs that trace w.
func (w *workload) snoopTools() []string {
	if w.Tree {
		return []string{"execsnoop", "opensnoop"}
	}
	if w.Snoop == "" {
		return nil
	}
	return []string{w.Snoop}
}

// targetArg stands for the existing file the openat workload opens.
const targetArg = "{target}"

// Workload names.
const (
	WorkloadOpenat          = "openat"
	WorkloadConnectListener = "connect-listener"
	WorkloadConnectRefused  = "connect-refused"
	WorkloadUDPSend         = "udp-send"
	WorkloadForkExec        = "fork-exec"
)

var workloads = []workload{
	{Name: WorkloadOpenat, Title: "openat + close of an existing file", Program: "open", Args: []string{targetArg}, Snoop: "opensnoop"},
	{Name: WorkloadConnectListener, Title: "socket + connect to a loopback listener + accept + close", Program: "connect", Args: []string{"listener"}, Snoop: "tcpconnect"},
	{Name: WorkloadConnectRefused, Title: "socket + connect to a closed loopback port (ECONNREFUSED) + close", Program: "connect", Args: []string{"refused"}, Snoop: "tcpconnect"},
	{Name: WorkloadUDPSend, Title: "sendto of a 64-byte datagram to a loopback UDP socket + recv of it", Program: "connect", Args: []string{"udp"},
		NoSnoop: "libbpf-tools has no program that traces UDP sends"},
	{Name: WorkloadForkExec, Title: "fork + execve /bin/true + wait", Program: "forkexec", Snoop: "execsnoop"},
}

// WorkloadNames lists every workload, in report order.
func WorkloadNames() []string {
	names := make([]string, len(workloads))
	for i, w := range workloads {
		names[i] = w.Name
	}
	return names
}

// buildWorkloads compiles every workload program (and the real-work
// runner) into dir/bin. They are
// linked statically: a dynamic loader would add opens of its own to every
// start, and its symbol binding would add first-call costs to the loop.
func buildWorkloads(ctx context.Context, dir string) (map[string]string, error) {
	src := filepath.Join(dir, "src")
	bin := filepath.Join(dir, "bin")
	for _, d := range []string{src, bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	entries, err := workloadSources.ReadDir("workload")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		data, err := workloadSources.ReadFile("workload/" + e.Name())
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(src, e.Name()), data, 0o644); err != nil {
			return nil, err
		}
	}
	programs := map[string]string{}
	for _, e := range entries {
		program, ok := strings.CutSuffix(e.Name(), ".c")
		if !ok {
			continue
		}
		out := filepath.Join(bin, program)
		cmd := exec.CommandContext(ctx, "gcc", "-O2", "-static", "-Wall", "-Wextra", "-o", out, filepath.Join(src, e.Name()))
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("compiling workload %s (needs gcc and libc6-dev): %w\n%s", program, err, msg)
		}
		programs[program] = out
	}
	return programs, nil
}

// runSpec says how to start one workload process.
type runSpec struct {
	CgroupFD int   // the process starts in this cgroup (CLONE_INTO_CGROUP); -1: the harness's
	AUID     int64 // >= 0: the process sets its loginuid, which audit rules select on
	Duration time.Duration
	MaxOps   int64
	Rate     float64 // target operations per second; 0: full speed
	Wait     bool    // start idle; run when released
	Env      []string
	// Operands replace the workload's Args (a real-work command line).
	Operands []string
}

func (s runSpec) args(w *workload, target string) []string {
	var args []string
	if s.Duration > 0 {
		args = append(args, "-d", strconv.FormatInt(max(s.Duration.Milliseconds(), 1), 10))
	}
	if s.MaxOps > 0 {
		args = append(args, "-n", strconv.FormatInt(s.MaxOps, 10))
	}
	if s.Rate > 0 {
		args = append(args, "-r", strconv.FormatFloat(s.Rate, 'f', 0, 64))
	}
	if s.Wait {
		args = append(args, "-w")
	}
	if s.AUID >= 0 {
		args = append(args, "-a", strconv.FormatInt(s.AUID, 10))
	}
	operands := w.Args
	if s.Operands != nil {
		operands = s.Operands
	}
	for _, a := range operands {
		if a == targetArg {
			a = target
		}
		args = append(args, a)
	}
	return args
}

// workloadProc is a started workload process.
type workloadProc struct {
	cmd            *exec.Cmd
	start          io.WriteCloser // the start signal: one byte, then EOF
	stdout, stderr bytes.Buffer
	Pid            int
}

// startWorkload starts a workload process. With spec.Wait it is idle, its
// setup done, until release.
func startWorkload(ctx context.Context, path string, args []string, spec runSpec) (*workloadProc, error) {
	p := &workloadProc{cmd: exec.CommandContext(ctx, path, args...)}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.Env = append([]string{}, spec.Env...)
	if spec.CgroupFD >= 0 {
		// In the cgroup before its first instruction, like agenttrace's own command.
		p.cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: spec.CgroupFD}
	}
	if spec.Wait {
		w, err := p.cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		p.start = w
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting workload %s: %w", filepath.Base(path), err)
	}
	p.Pid = p.cmd.Process.Pid
	return p, nil
}

// release lets an idle workload run.
func (p *workloadProc) release() error {
	if p.start == nil {
		return nil
	}
	_, err := p.start.Write([]byte{'g'})
	p.start.Close()
	return err
}

// abort ends a workload that will not be released.
func (p *workloadProc) abort() {
	if p.start != nil {
		p.start.Close() // EOF: it exits without running
	}
	p.cmd.Wait()
}

// workloadResult is the line a workload prints when done.
type workloadResult struct {
	Ops     int64
	Ns      int64
	NsPerOp float64
	CPUNs   int64 // CPU time of the loop, the program's and its children's
	Errors  int64
	Extra   map[string]int64
}

// wait waits for the workload to exit and parses its result line.
func (p *workloadProc) wait() (workloadResult, error) {
	err := p.cmd.Wait()
	if err != nil {
		return workloadResult{}, fmt.Errorf("workload %s: %w: %s", filepath.Base(p.cmd.Path), err, strings.TrimSpace(p.stderr.String()))
	}
	return parseWorkloadResult(p.stdout.String())
}

// parseWorkloadResult parses "ops=N ns=T ns_per_op=X cpu_ns=C errors=E [k=v...]",
// the last such line of out.
func parseWorkloadResult(out string) (workloadResult, error) {
	r := workloadResult{Extra: map[string]int64{}}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	line := lines[len(lines)-1]
	if !strings.HasPrefix(line, "ops=") {
		return r, fmt.Errorf("workload printed no result line: %q", out)
	}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return r, fmt.Errorf("bad field %q in workload result %q", f, line)
		}
		if k == "ns_per_op" {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return r, fmt.Errorf("bad ns_per_op in %q: %w", line, err)
			}
			r.NsPerOp = x
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return r, fmt.Errorf("bad %s in %q: %w", k, line, err)
		}
		switch k {
		case "ops":
			r.Ops = n
		case "ns":
			r.Ns = n
		case "cpu_ns":
			r.CPUNs = n
		case "errors":
			r.Errors = n
		default:
			r.Extra[k] = n
		}
	}
	if r.Ops == 0 {
		return r, errors.New("workload made no operations: " + line)
	}
	return r, nil
}

// stopProcess sends sig and waits for the process, killing it if it has
// not exited after 10 s.
func stopProcess(cmd *exec.Cmd, sig syscall.Signal) {
	cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}
