package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/agenttrace/agenttrace/schema"
)

// rec is one log line: the envelope and proc decoded into fields, the type
// object kept both generic (for whole-object comparison) and typed.
type rec struct {
	Seq  uint64 `json:"seq"`
	Prev string `json:"prev"`
	Type string `json:"type"`
	CPU  uint32 `json:"cpu"`
	Kseq uint64 `json:"kseq"`
	Proc proc   `json:"proc"`

	Exec    *execObj    `json:"exec"`
	Open    *openObj    `json:"open"`
	Connect *connectObj `json:"connect"`
	Send    *netObj     `json:"send"`
	Bind    *netObj     `json:"bind"`
	Listen  *netObj     `json:"listen"`
	Accept  *netObj     `json:"accept"`
	Fork    *forkObj    `json:"fork"`
	Exit    *exitObj    `json:"exit"`
	Start   *startObj   `json:"start"`
	Stop    *stopObj    `json:"stop"`

	SockState *sockStateObj `json:"sock_state"`
	DNS       *dnsObj       `json:"dns"`

	Checkpoint *checkpointObj `json:"checkpoint"`

	Tags []string `json:"tags"`

	line []byte
	body any // the type object, decoded generically
}

type proc struct {
	Pid          int    `json:"pid"`
	Tid          int    `json:"tid"`
	Ppid         int    `json:"ppid"`
	UID          uint32 `json:"uid"`
	GID          uint32 `json:"gid"`
	EUID         uint32 `json:"euid"`
	EGID         uint32 `json:"egid"`
	Comm         string `json:"comm"`
	Exe          string `json:"exe"`
	CgroupID     uint64 `json:"cgroup_id"`
	Cgroup       string `json:"cgroup"`
	ExecID       string `json:"exec_id"`
	ParentExecID string `json:"parent_exec_id"`
	ABI          string `json:"abi"`
}

type execObj struct {
	Syscall  string   `json:"syscall"`
	Filename string   `json:"filename"`
	Argv     []string `json:"argv"`
	ArgvB64  []string `json:"argv_b64"`
	Argc     int      `json:"argc"`
	Ret      int      `json:"ret"`
	// The exec failed after the kernel had replaced the caller's image.
	PastNoReturn bool `json:"past_point_of_no_return"`
}

type openObj struct {
	Syscall string       `json:"syscall"`
	Dirfd   int          `json:"dirfd"`
	Path    string       `json:"path"`
	PathB64 string       `json:"path_b64"`
	Ret     int          `json:"ret"`
	Fd      *int         `json:"fd"`
	File    *fileJSON    `json:"file"`
	IOURing *iouringJSON `json:"io_uring"`
}

// fileJSON is the file (or dir) object of an open record.
type fileJSON struct {
	Path  string `json:"path"`
	Dev   string `json:"dev"`
	Ino   uint64 `json:"ino"`
	MntID uint64 `json:"mnt_id"`
}

type iouringJSON struct {
	UserData uint64 `json:"user_data"`
}

type connectObj struct {
	Syscall string     `json:"syscall"`
	Fd      int        `json:"fd"`
	Port    int        `json:"port"`
	Ret     int        `json:"ret"`
	Socket  *socketObj `json:"socket"`
}

type forkObj struct {
	ChildPid    int    `json:"child_pid"`
	ChildExecID string `json:"child_exec_id"`
}

type exitObj struct {
	Status int `json:"status"`
}

type startObj struct {
	Pid      int      `json:"pid"`
	Argv     []string `json:"argv"`
	ArgvB64  []string `json:"argv_b64"`
	Cgroup   string   `json:"cgroup"`
	CgroupID uint64   `json:"cgroup_id"`
}

type checkpointObj struct {
	Final bool `json:"final"`
}

type stopObj struct {
	ExitCode    int               `json:"exit_code"`
	LeftRunning int               `json:"left_running"`
	Records     map[string]uint64 `json:"records"`
	Lost        map[string]uint64 `json:"lost"`
}

// checkLog parses a whole new log (one segment) and checks what every log
// must satisfy; see checkSegment.
func checkLog(t *testing.T, data []byte) ([][]byte, []*rec) {
	t.Helper()
	return checkSegment(t, data, 1, strings.Repeat("0", 64))
}

// checkSegment parses one log segment and checks what every segment must
// satisfy: complete lines, each valid against the JSON Schema; seq
// contiguous from firstSeq; each line's prev the SHA-256 of the line before
// (firstPrev for the first); a header first, then start, then the session's
// records, then a stop record that reports no loss and counts exactly the
// records in between, then only checkpoints, the last one final; no gap or
// freeze record; per CPU and kind, kseq 1..n with no gap (the kernel
// emitted everything it matched); and the process tree (see checkTree).
func checkSegment(t *testing.T, data []byte, firstSeq uint64, firstPrev string) ([][]byte, []*rec) {
	t.Helper()
	if len(data) == 0 {
		t.Fatal("the log is empty")
	}
	if data[len(data)-1] != '\n' {
		t.Fatalf("the log does not end with a newline: ...%q", data[max(0, len(data)-200):])
	}
	lines := bytes.Split(data[:len(data)-1], []byte("\n"))
	recs := make([]*rec, 0, len(lines))
	prev := firstPrev
	for i, line := range lines {
		if err := schema.Validate(line); err != nil {
			t.Errorf("line %d does not match the schema: %v\n%s", i+1, err, line)
		}
		var r rec
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("line %d is not a record: %v\n%s", i+1, err, line)
		}
		var all map[string]any
		if err := json.Unmarshal(line, &all); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		r.line, r.body = line, all[r.Type]
		if want := firstSeq + uint64(i); r.Seq != want {
			t.Errorf("line %d has seq %d, want %d", i+1, r.Seq, want)
		}
		if r.Prev != prev {
			t.Errorf("line %d has prev %s, want %s (SHA-256 of the line before)", i+1, r.Prev, prev)
		}
		sum := sha256.Sum256(append(line[:len(line):len(line)], '\n'))
		prev = hex.EncodeToString(sum[:])
		recs = append(recs, &r)
	}
	if len(recs) < 4 || recs[0].Type != "header" || recs[1].Type != "start" || recs[1].Start == nil {
		t.Fatalf("the log does not begin with header, start:\n%s", lines[0])
	}
	stopAt := len(recs) - 1
	for stopAt > 0 && recs[stopAt].Type == "checkpoint" {
		stopAt--
	}
	if stopAt == len(recs)-1 || !recs[len(recs)-1].Checkpoint.Final {
		t.Errorf("the log does not end with a final checkpoint:\n%s", lines[len(lines)-1])
	}
	stop := recs[stopAt]
	if stop.Type != "stop" || stop.Stop == nil {
		t.Fatalf("the last record before the closing checkpoints is %q, want stop:\n%s", stop.Type, stop.line)
	}
	if stop.Stop.Lost == nil || len(stop.Stop.Lost) != 0 {
		t.Errorf("stop record reports loss: %s", stop.line)
	}
	counts := map[string]uint64{}
	kseqs := map[string][]uint64{}
	for _, r := range recs {
		counts[r.Type]++
		if r.Proc.Pid != 0 {
			key := fmt.Sprintf("%s/cpu%d", r.Type, r.CPU)
			kseqs[key] = append(kseqs[key], r.Kseq)
		}
	}
	if counts["header"] != 1 || counts["start"] != 1 || counts["stop"] != 1 || counts["recovery"] != 0 {
		t.Errorf("want one header, start and stop record and no recovery, got %v", counts)
	}
	if counts["gap"] != 0 || counts["freeze"] != 0 {
		t.Errorf("the log reports loss (gap or freeze records): %v", counts)
	}
	for _, typ := range []string{"exec", "open", "connect", "fork", "exit", "send", "bind", "listen", "accept", "sock_state", "dns",
		"cgroup_move", "proc_access", "file_op", "mount", "namespace", "bpf"} {
		if got := stop.Stop.Records[typ]; got != counts[typ] {
			t.Errorf("stop record counts %d %s records, the log has %d", got, typ, counts[typ])
		}
	}
	for key, ks := range kseqs {
		slices.Sort(ks)
		for i, k := range ks {
			if k != uint64(i+1) {
				t.Errorf("%s: kseq values %v are not 1..%d: a record is missing", key, ks, len(ks))
				break
			}
		}
	}
	checkTree(t, recs)
	return lines, recs
}

// start and stop return the session's start and stop objects.
func (s *session) start() *startObj { return s.recs[1].Start }

func (s *session) stop() *stopObj {
	for i := len(s.recs) - 1; i >= 0; i-- {
		if s.recs[i].Stop != nil {
			return s.recs[i].Stop
		}
	}
	return nil
}

// execIDParts splits "pid-start-seq".
func execIDParts(t *testing.T, id string) (process string, seq uint64) {
	t.Helper()
	i := strings.LastIndexByte(id, '-')
	if i < 0 || strings.Count(id, "-") != 2 {
		t.Fatalf("malformed exec id %q", id)
	}
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil {
		t.Fatalf("malformed exec id %q: %v", id, err)
	}
	return id[:i], seq
}

// checkTree checks the identity of every process in the log against the
// fork records: after "fork" with child_exec_id C, every record of that
// child carries parent_exec_id equal to the forking record's exec_id (even
// after the child is reparented), and exec_id C until its first successful
// exec, which bumps only the last part of exec_id by one. An exec that failed
// past the point of no return bumped it too, unless it failed before the
// kernel got that far (exec_task_namespaces, unshare_sighand): its record and
// the process's later ones carry what the kernel left. Processes with no
// fork record were started by agenttrace, whose pid is their parent's.
func checkTree(t *testing.T, recs []*rec) {
	t.Helper()
	type child struct {
		parentExecID string
		execID       string // current
	}
	children := map[string]*child{} // by "pid-start"
	// Processes outside the session that a traced one took over (a
	// proc_access record says "tainted"): traced from then on, created by
	// whoever created them.
	tainted := map[string]bool{}
	agentPid := strconv.Itoa(recs[1].Start.Pid) + "-"
	for _, r := range recs {
		if r.Type == "proc_access" {
			if b, _ := r.body.(map[string]any); b["tainted"] == true {
				target, _ := b["target"].(map[string]any)
				id, _ := target["exec_id"].(string)
				process, _ := execIDParts(t, id)
				tainted[process] = true
			}
		}
		if r.Proc.ExecID == "" {
			continue
		}
		process, seq := execIDParts(t, r.Proc.ExecID)
		c, forked := children[process]
		switch {
		case !forked && tainted[process]:
		case !forked:
			if !strings.HasPrefix(r.Proc.ParentExecID, agentPid) {
				t.Errorf("record of a process without a fork record: parent_exec_id %q is not agenttrace's (pid %s):\n%s", r.Proc.ParentExecID, agentPid, r.line)
			}
		case r.Type == "exec" && r.Exec.Ret == 0:
			_, prev := execIDParts(t, c.execID)
			if r.Proc.ExecID != process+"-"+strconv.FormatUint(prev+1, 10) {
				t.Errorf("exec record has exec_id %q, want %s-%d (the forked image %q plus one exec):\n%s", r.Proc.ExecID, process, prev+1, c.execID, r.line)
			}
			c.execID = r.Proc.ExecID
		case r.Type == "exec" && r.Exec.PastNoReturn:
			_, prev := execIDParts(t, c.execID)
			if r.Proc.ExecID != process+"-"+strconv.FormatUint(prev+1, 10) && r.Proc.ExecID != c.execID {
				t.Errorf("exec record past the point of no return has exec_id %q, want %s-%d or %q (the image %q, bumped or not yet):\n%s",
					r.Proc.ExecID, process, prev+1, c.execID, c.execID, r.line)
			}
			c.execID = r.Proc.ExecID
		default:
			if r.Proc.ExecID != c.execID {
				t.Errorf("record has exec_id %q, want %q (from the fork record, seq %d):\n%s", r.Proc.ExecID, c.execID, seq, r.line)
			}
		}
		if forked && r.Proc.ParentExecID != c.parentExecID {
			t.Errorf("record has parent_exec_id %q, want %q (the exec_id of the process that forked it):\n%s", r.Proc.ParentExecID, c.parentExecID, r.line)
		}
		if r.Type == "fork" {
			childProcess, _ := execIDParts(t, r.Fork.ChildExecID)
			if want := strconv.Itoa(r.Fork.ChildPid) + "-"; !strings.HasPrefix(childProcess, want) {
				t.Errorf("fork record: child_exec_id %q does not start with child_pid %s:\n%s", r.Fork.ChildExecID, want, r.line)
			}
			if _, seen := children[childProcess]; seen {
				t.Errorf("two fork records for %s", childProcess)
			}
			children[childProcess] = &child{parentExecID: r.Proc.ExecID, execID: r.Fork.ChildExecID}
		}
	}
}

// find returns the records of type typ for which match is true, in log order.
func (s *session) find(typ string, match func(*rec) bool) []*rec {
	var out []*rec
	for _, r := range s.recs {
		if r.Type == typ && (match == nil || match(r)) {
			out = append(out, r)
		}
	}
	return out
}

// one returns the only record of type typ for which match is true.
func (s *session) one(t *testing.T, typ string, match func(*rec) bool) *rec {
	t.Helper()
	found := s.find(typ, match)
	if len(found) != 1 {
		t.Fatalf("want exactly one matching %s record, found %d:\n%s", typ, len(found), s.dump(found))
	}
	return found[0]
}

func (s *session) dump(recs []*rec) string {
	if len(recs) == 0 {
		recs = s.recs
	}
	var b strings.Builder
	for _, r := range recs {
		b.Write(r.line)
		b.WriteByte('\n')
	}
	return b.String()
}

// openOf matches open records of path.
func openOf(path string) func(*rec) bool {
	return func(r *rec) bool { return r.Open.Path == path }
}

// byPid matches records of one process.
func byPid(pid int) func(*rec) bool {
	return func(r *rec) bool { return r.Proc.Pid == pid }
}

// obj is an expected JSON object.
type obj = map[string]any

// wantBody compares the whole type object of r with want: every member,
// nothing more, nothing less.
func wantBody(t *testing.T, r *rec, want obj) {
	t.Helper()
	norm := func(v any) any {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var out any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got, exp := norm(r.body), norm(want)
	if !reflect.DeepEqual(got, exp) {
		gotJSON, _ := json.Marshal(got)
		expJSON, _ := json.Marshal(exp)
		t.Errorf("%s record differs\n got: %s\nwant: %s\nline: %s", r.Type, gotJSON, expJSON, r.line)
	}
}
