// Package report turns an agenttrace log into the answers an incident
// responder asks for: what the agent ran (its tool calls), which processes
// each one started, the files they opened, the connections they made,
// whether they touched credentials, and where events were lost. It verifies
// the log's hash chain and signatures first (chain.Verify) and recomputes
// tool-call attribution from the records' own ids (record.Attributor), so
// the tree does not depend on what a damaged log claims, and a mismatch
// with what the tracer wrote is itself reported.
//
// It only reads logs. Every string it outputs (terminal, JSON, HTML) has its
// control and invisible format characters escaped, so a hostile file name
// cannot disguise a report any more than it can a log line.
package report

import (
	"cmp"
	"fmt"
	pathpkg "path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
)

// Filter selects records; the zero Filter selects all. Processes, tool
// calls and sessions without a selected record are left out of the tree
// (ancestors of a selected process stay, as context).
type Filter struct {
	ToolCall string    // proc.tool_call (as recomputed) equals this id
	Pid      int       // proc.pid
	Types    []string  // record types
	Since    time.Time // record time at or after
	Until    time.Time // record time at or before
	Tag      string    // the record carries this tag
}

// Active reports whether f selects anything less than every record.
func (f *Filter) Active() bool {
	return f.ToolCall != "" || f.Pid != 0 || len(f.Types) > 0 || !f.Since.IsZero() || !f.Until.IsZero() || f.Tag != ""
}

// Describe says what f selects, for the reader of a report.
func (f *Filter) Describe() string {
	var parts []string
	if f.ToolCall != "" {
		parts = append(parts, "tool call "+f.ToolCall)
	}
	if f.Pid != 0 {
		parts = append(parts, fmt.Sprintf("pid %d", f.Pid))
	}
	if len(f.Types) > 0 {
		parts = append(parts, "type "+strings.Join(f.Types, ","))
	}
	if !f.Since.IsZero() {
		parts = append(parts, "since "+f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		parts = append(parts, "until "+f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.Tag != "" {
		parts = append(parts, "tag "+f.Tag)
	}
	return strings.Join(parts, ", ")
}

// Options of a report.
type Options struct {
	Verify chain.VerifyOptions
	Filter Filter
}

// Report is the tree of one or more logs.
type Report struct {
	Filter string `json:"filter,omitempty"`
	Logs   []*Log `json:"logs"`
}

// Log is one log (all its segments).
type Log struct {
	Path     string     `json:"path"`
	Segments []string   `json:"segments"`
	Verify   Verify     `json:"verify"`
	Summary  Summary    `json:"summary"`
	Sessions []*Session `json:"sessions"`
	// Problems are things the reader must know that are not damage found
	// by verification: unreadable lines, attribution that differs from
	// what the log says.
	Problems []string `json:"problems,omitempty"`
}

// Verify is the result of chain.Verify.
type Verify struct {
	Intact        bool     `json:"intact"`
	Damage        string   `json:"damage,omitempty"`
	DamageKind    string   `json:"damage_kind,omitempty"`
	Records       uint64   `json:"records"`
	LastSeq       uint64   `json:"last_seq"`
	Checkpoints   int      `json:"checkpoints"`
	LastSignedSeq uint64   `json:"last_signed_seq"`
	Unsigned      uint64   `json:"unsigned"`
	Keys          []string `json:"keys"`
	KeyChecked    bool     `json:"key_checked"` // against a key given by the reader (--pubkey)
	Recovered     []string `json:"recovered,omitempty"`
}

// Summary counts what the selected records show.
type Summary struct {
	Records          map[string]uint64 `json:"records"` // by type
	Sessions         int               `json:"sessions"`
	ToolCalls        int               `json:"tool_calls"`
	Processes        int               `json:"processes"`
	FilesOpened      int               `json:"files_opened"` // distinct paths opened successfully
	FailedOpens      int               `json:"failed_opens"`
	Connections      int               `json:"connections"`
	CredentialAccess int               `json:"credential_access"` // tagged opens
	LostEvents       uint64            `json:"lost_events"`       // counted by gap records
}

// Session is one agenttrace run: from its start record to its stop record.
type Session struct {
	Seq           uint64   `json:"seq"` // of its start record; 0 for records before any start
	Time          string   `json:"time"`
	Host          string   `json:"host"`
	AgenttracePid uint32   `json:"agenttrace_pid"`
	Command       string   `json:"command"`
	Argv          []string `json:"argv"`
	Cgroup        string   `json:"cgroup"`
	DurationNs    int64    `json:"duration_ns"`
	Ended         bool     `json:"ended"` // a stop record closes it
	ExitCode      int      `json:"exit_code"`
	LeftRunning   int      `json:"left_running"`
	// TaintedRunning: processes outside the session it took over, still
	// running at its end (not killed, untraced after it).
	TaintedRunning int           `json:"tainted_running,omitempty"`
	Lost           record.Counts `json:"lost,omitempty"`
	// Attributed: the log itself carries tool-call attribution (written by
	// a tracer that has it); otherwise it was computed only here.
	Attributed bool        `json:"attributed"`
	Agent      []*Process  `json:"agent"` // the root processes
	ToolCalls  []*ToolCall `json:"tool_calls"`
	Events     []*Event    `json:"events"` // gap, freeze, thaw

	ktime    uint64
	procs    map[string]*Process
	calls    map[string]*ToolCall
	netState *netState
}

// ToolCall is everything one process started by the agent did, with its
// descendants.
type ToolCall struct {
	ID string `json:"id"`
	// Argv is what was run: the first successful exec of the top-most
	// process. Without one, ForkOf is the agent's program it was forked from.
	Argv       []string   `json:"argv,omitempty"`
	Exe        string     `json:"exe,omitempty"`
	Fileless   bool       `json:"fileless,omitempty"` // Exe has no path (memfd)
	Deleted    bool       `json:"deleted,omitempty"`  // Exe was unlinked when it was executed
	ForkOf     []string   `json:"fork_of,omitempty"`
	Time       string     `json:"time"`
	StartNs    int64      `json:"start_ns"` // since the session's start
	DurationNs int64      `json:"duration_ns"`
	Exit       *Exit      `json:"exit,omitempty"` // of the top-most process
	Processes  []*Process `json:"processes"`
	Credential bool       `json:"credential_access"`

	first uint64
	ktime uint64
	end   uint64
	top   string // process key of the top-most process
}

// Process is one process (all its images) and what its selected records show.
type Process struct {
	Pid         int            `json:"pid"`
	ID          string         `json:"id"` // <pid>-<start>: exec_id without the exec counter
	Comm        string         `json:"comm"`
	Images      []*Image       `json:"images,omitempty"` // successful execs, in order
	Exit        *Exit          `json:"exit,omitempty"`
	Credentials []*File        `json:"credential_access,omitempty"`
	Files       []*File        `json:"files,omitempty"`
	Connects    []*Connect     `json:"connects,omitempty"`
	Net         []*Net         `json:"network,omitempty"` // sends, binds, listens, accepts, DNS questions
	ExecFailed  []*ExecFailure `json:"exec_failures,omitempty"`
	// Actions are its escape records (moves, accesses to other processes,
	// file operations, mounts, namespaces, bpf), in order.
	Actions []*Action `json:"actions,omitempty"`
	// Cgroup is where the process started or was moved to, when that is
	// not the session's cgroup (from its fork or move records).
	Cgroup   string     `json:"cgroup,omitempty"`
	Children []*Process `json:"children,omitempty"`

	creator  string
	toolCall string
	first    uint64
	selected bool
	files    map[fileKey]*File
	net      []netObs
}

// Image is one program a process ran.
type Image struct {
	ExecID   string   `json:"exec_id"`
	Exe      string   `json:"exe"`
	Fileless bool     `json:"fileless,omitempty"` // no path in any mount namespace (memfd)
	Deleted  bool     `json:"deleted,omitempty"`  // unlinked when it was executed
	Argv     []string `json:"argv"`
}

// ExeLabel is Image.Label of the tool call's command.
func (c *ToolCall) ExeLabel() string {
	return (&Image{Exe: c.Exe, Fileless: c.Fileless, Deleted: c.Deleted}).Label()
}

// Label is how a fileless or deleted image is presented before its argv
// ("[fileless memfd:x]"), so that argv chosen by the program cannot pass
// for another; "" for an image with a path.
func (img *Image) Label() string {
	switch {
	case img.Fileless:
		return "[fileless " + img.Exe + "]"
	case img.Deleted:
		return "[deleted " + img.Exe + "]"
	}
	return ""
}

// File is one (path, access, result) a process opened, with how often.
type File struct {
	Path string `json:"path"` // as requested
	// Opened is the file the kernel opened, when the name asked for does
	// not say which (relative, another base name: a link, a descriptor
	// reopened through /proc, a file handle, a memfd).
	Opened string   `json:"opened,omitempty"`
	Access string   `json:"access"` // read, write, create, rdwr, dir, path
	Errno  string   `json:"errno,omitempty"`
	Count  int      `json:"count"`
	Tags   []string `json:"tags,omitempty"`
	Seq    uint64   `json:"seq"` // the first record
}

type fileKey struct{ path, opened, access, errno string }

// Connect is one (address, result) a process connected to, with how often.
type Connect struct {
	Address string `json:"address"`
	Result  string `json:"result"` // "ok", the errno, "in progress" or "in progress → " its outcome
	Count   int    `json:"count"`
	Seq     uint64 `json:"seq"`
}

// ExecFailure is a failed exec.
type ExecFailure struct {
	Filename       string   `json:"filename"`
	Argv           []string `json:"argv"`
	ArgvUnreadable bool     `json:"argv_unreadable,omitempty"` // Argv is empty or partial
	// PastNoReturn: the exec failed after the kernel had replaced the
	// caller's image (argv unknown); the kernel killed the process.
	PastNoReturn bool   `json:"past_point_of_no_return,omitempty"`
	Errno        string `json:"errno"`
	Seq          uint64 `json:"seq"`
}

// ArgvText is the failed exec's argv as text, saying when it is not known.
func (x *ExecFailure) ArgvText() string {
	switch {
	case x.PastNoReturn:
		return "(past the point of no return: argv unknown)"
	case x.ArgvUnreadable:
		return strings.TrimLeft(argvText(x.Argv)+" (argv unreadable)", " ")
	}
	return argvText(x.Argv)
}

// Exit is how a process ended.
type Exit struct {
	Code   *int   `json:"code,omitempty"`
	Signal string `json:"signal,omitempty"`
	Core   bool   `json:"core_dumped,omitempty"`
	AtNs   int64  `json:"at_ns"` // since the session's start
}

// Event is a session-level record: gap, freeze or thaw.
type Event struct {
	Type string `json:"type"`
	Seq  uint64 `json:"seq"`
	Time string `json:"time"`
	// AtNs is when it happened, since the session's start: for a gap the
	// start of the window in which events were lost (UntilNs its end).
	AtNs    int64  `json:"at_ns"`
	UntilNs int64  `json:"until_ns,omitempty"`
	Text    string `json:"text"`

	ktime    uint64
	from, to time.Time
}

// Load verifies and reads the logs at bases (each a log's first segment;
// later segments are found beside it) and builds their trees.
func Load(bases []string, opts Options) (*Report, error) {
	rep := &Report{}
	if opts.Filter.Active() {
		rep.Filter = opts.Filter.Describe()
	}
	for _, base := range bases {
		l, err := loadLog(base, opts)
		if err != nil {
			return nil, err
		}
		rep.Logs = append(rep.Logs, l)
	}
	return rep, nil
}

func loadLog(base string, opts Options) (*Log, error) {
	files, numbers := logfile.Segments(base)
	l := &Log{Path: base, Segments: files}
	b := &builder{log: l, filter: &opts.Filter, summary: Summary{Records: map[string]uint64{}}}
	// One pass: verification hands every line to the builder.
	vopts := opts.Verify
	lineNo := 0
	vopts.Visit = func(line []byte) {
		lineNo++
		if err := b.add(line[:len(line)-1]); err != nil {
			b.problem(fmt.Sprintf("line %d of the log: %v", lineNo, err))
		}
	}
	vr, err := chain.Verify(files, numbers, vopts)
	if err != nil {
		return nil, err
	}
	l.Verify = Verify{
		Intact: vr.Damage == nil, Records: vr.Records, LastSeq: vr.LastSeq, Checkpoints: vr.Checkpoints,
		LastSignedSeq: vr.LastSignedSeq, Unsigned: vr.Unsigned, Keys: vr.Keys, KeyChecked: len(opts.Verify.PublicKeys) > 0,
		Recovered: vr.Recovered,
	}
	if vr.Damage != nil {
		l.Verify.Damage, l.Verify.DamageKind = vr.Damage.Error(), vr.Damage.Kind
	}
	b.finish()
	if b.problems > maxProblems {
		l.Problems = append(l.Problems, fmt.Sprintf("%d more problems", b.problems-maxProblems))
	}
	l.Summary = b.summary
	return l, nil
}

// maxProblems bounds the problems a report lists: a log of garbage must not
// make a report of garbage.
const maxProblems = 10

// problem notes something the reader must know, up to maxProblems.
func (b *builder) problem(text string) {
	b.problems++
	if b.problems <= maxProblems {
		b.log.Problems = append(b.log.Problems, text)
	}
}

// builder builds one log's tree, record by record.
type builder struct {
	log      *Log
	filter   *Filter
	summary  Summary
	attr     record.Attributor
	session  *Session
	problems int
}

func (b *builder) add(line []byte) error {
	r, err := record.Decode(line)
	if err != nil {
		return fmt.Errorf("not a record: %w", err)
	}
	attr, err := b.attr.Next(r)
	if err != nil {
		return fmt.Errorf("seq %d: %w", r.Seq, err)
	}
	if r.Type == "start" || r.Type == "stop" {
		b.summary.Records[r.Type]++
	}
	switch body := r.Body.(type) {
	case *record.Start:
		b.finish()
		s := &Session{Seq: r.Seq, Time: r.Time, Host: record.Readable(r.Host), AgenttracePid: uint32(body.Pid),
			Command: record.Readable(body.Command), Argv: readables(body.Argv), Cgroup: record.Readable(body.Cgroup),
			// Attribution came with sensitive_paths: a start record without
			// them was written by a tracer that did not attribute.
			Attributed: body.SensitivePaths != nil, ktime: r.Ktime}
		if body.Mode == record.ModeDaemon {
			// The daemon has no command: name it and what it traces.
			s.Command, s.Argv = "agenttrace daemon", []string{"agenttrace", "daemon"}
			s.Cgroup = "targets " + strings.Join(readables(body.Targets), ", ")
		}
		b.session = s
		return nil
	case *record.Stop:
		if s := b.session; s != nil {
			s.Ended, s.ExitCode, s.LeftRunning, s.Lost = true, body.ExitCode, body.LeftRunning, body.Lost
			s.TaintedRunning = body.TaintedRunning
			s.DurationNs = int64(r.Ktime - s.ktime)
			b.finish()
		}
		return nil
	case *record.Gap, *record.Freeze, *record.Thaw:
		b.event(r)
		return nil
	}
	if r.Proc == nil || r.Type == "cgroup" || r.Body == nil {
		if r.Type != "" && r.Type != "start" && r.Type != "stop" {
			b.summary.Records[r.Type]++
		}
		return nil
	}
	if b.session == nil {
		// Kernel records before any start record: only a damaged log.
		b.session = &Session{Time: r.Time, Host: record.Readable(r.Host), ktime: r.Ktime}
	}
	if written := record.Written(r); written != attr && b.session.Attributed {
		b.problem(fmt.Sprintf("seq %d: the log's tool-call attribution %+v differs from the one recomputed from its ids %+v", r.Seq, written, attr))
	}
	b.kernel(r, attr)
	return nil
}

// readables is the readable form of each string.
func readables(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = record.Readable(v)
	}
	return out
}

// selects reports whether the filter selects r, whose recomputed tool call is toolCall.
func (b *builder) selects(r *record.Record, toolCall string) bool {
	return b.filter.matches(r, toolCall)
}

// matches reports whether f selects r, whose tool call is toolCall.
func (f *Filter) matches(r *record.Record, toolCall string) bool {
	if f.ToolCall != "" && toolCall != f.ToolCall {
		return false
	}
	if f.Pid != 0 && (r.Proc == nil || int(r.Proc.Pid) != f.Pid) {
		return false
	}
	if len(f.Types) > 0 && !slices.Contains(f.Types, r.Type) {
		return false
	}
	if f.Tag != "" && !r.HasTag(f.Tag) {
		return false
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		t, err := time.Parse(time.RFC3339Nano, r.Time)
		if err != nil || (!f.Since.IsZero() && t.Before(f.Since)) || (!f.Until.IsZero() && t.After(f.Until)) {
			return false
		}
	}
	return true
}

// event adds a gap, freeze or thaw record. Only --type and the time window
// leave them out: a loss may hide records of any tool call, process or tag,
// so every view shows where events were lost.
func (b *builder) event(r *record.Record) {
	if !b.filter.eventFilter().matches(r, "") {
		return
	}
	b.summary.Records[r.Type]++
	if b.session == nil {
		b.session = &Session{Time: r.Time, Host: record.Readable(r.Host), ktime: r.Ktime}
	}
	e := &Event{Type: r.Type, Seq: r.Seq, Time: r.Time, ktime: r.Ktime}
	switch body := r.Body.(type) {
	case *record.Gap:
		b.summary.LostEvents += body.Lost.Total()
		e.Text = gapText(body)
		e.from, e.to = body.From, body.To
	case *record.Freeze:
		e.Text = "processes frozen: " + record.Readable(body.Reason)
	case *record.Thaw:
		e.Text = fmt.Sprintf("processes thawed after %s: %s", seconds(body.FrozenNs), record.Readable(body.Reason))
	}
	b.session.Events = append(b.session.Events, e)
}

// eventFilter is f for gap, freeze and thaw records: only the record types
// and the time window apply to them (a loss may hide records of any tool
// call, process or tag, so every view shows where events were lost).
func (f *Filter) eventFilter() *Filter {
	return &Filter{Types: f.Types, Since: f.Since, Until: f.Until}
}

// gapText says what a gap record counts and where: "7 open events lost
// (kernel: ring buffer full, cpu 1)".
func gapText(g *record.Gap) string {
	where := g.Stage + ": " + g.Reason
	if g.CPU >= 0 {
		where += fmt.Sprintf(", cpu %d", g.CPU)
	}
	return fmt.Sprintf("%s events lost (%s)", lostText(g.Lost), where)
}

// lostOrder lists the kinds of a loss count that lost something, kernel
// kinds in kind order first.
func lostOrder(lost record.Counts) []string {
	var kinds []string
	for _, kind := range record.LossNames() {
		if lost[kind] > 0 {
			kinds = append(kinds, kind)
		}
	}
	var others []string
	for kind, n := range lost {
		if n > 0 && !slices.Contains(kinds, kind) {
			others = append(others, kind)
		}
	}
	slices.Sort(others)
	return append(kinds, others...)
}

// processKey is exec_id without its exec counter.
func processKey(execID string) string {
	if i := strings.LastIndexByte(execID, '-'); i > 0 {
		return execID[:i]
	}
	return execID
}

func (s *Session) process(key string, r *record.Record) *Process {
	p, ok := s.procs[key]
	if !ok {
		p = &Process{ID: key, first: r.Seq}
		if s.procs == nil {
			s.procs = map[string]*Process{}
		}
		s.procs[key] = p
	}
	return p
}

func (s *Session) toolCall(id string, r *record.Record) *ToolCall {
	t, ok := s.calls[id]
	if !ok {
		t = &ToolCall{ID: id, Time: r.Time, first: r.Seq, ktime: r.Ktime, top: processKey(id)}
		if s.calls == nil {
			s.calls = map[string]*ToolCall{}
		}
		s.calls[id] = t
	}
	return t
}

func (b *builder) kernel(r *record.Record, attr record.Attribution) {
	s := b.session
	p := s.process(processKey(r.Proc.ExecID.String()), r)
	if p.Pid == 0 {
		p.Pid, p.creator, p.toolCall = int(r.Proc.Pid), processKey(r.Proc.ParentExecID.String()), attr.ToolCall
	}
	p.Comm = record.Readable(r.Proc.Comm)
	var call *ToolCall
	if attr.ToolCall != "" {
		call = s.toolCall(attr.ToolCall, r)
		call.end = max(call.end, r.Ktime)
	}
	sel := b.selects(r, attr.ToolCall)
	if sel {
		p.selected = true
		b.summary.Records[r.Type]++
	}
	switch body := r.Body.(type) {
	case *record.Exec:
		if body.Ret != 0 {
			if sel {
				p.ExecFailed = append(p.ExecFailed, &ExecFailure{Filename: record.Readable(body.Filename), Argv: readables(body.Argv()),
					ArgvUnreadable: body.ArgsUnreadable, PastNoReturn: body.PastNoReturn, Errno: record.Errno(body.Ret), Seq: r.Seq})
			}
			break
		}
		argv := readables(body.Argv())
		p.Images = append(p.Images, &Image{ExecID: r.Proc.ExecID.String(), Exe: record.Readable(body.Exe), Argv: argv,
			Fileless: body.ExeFile.Fileless, Deleted: body.ExeFile.Deleted})
		if attr.ToolCallCommand && call != nil {
			call.Argv, call.Exe = argv, record.Readable(body.Exe)
			call.Fileless, call.Deleted = body.ExeFile.Fileless, body.ExeFile.Deleted
		}
	case *record.Open:
		if sel {
			b.open(p, r, body)
			if call != nil && r.HasTag(record.TagCredentialAccess) {
				call.Credential = true
			}
		}
	case *record.Connect, *record.Send, *record.Bind, *record.Listen, *record.Accept:
		if sel {
			b.network(p, r)
		}
	case *record.SockState, *record.DNS:
		// What they tell about other records counts whatever the filter selects.
		b.netEvent(r)
		if sel {
			b.network(p, r)
		}
	case *record.Fork:
		child := s.process(processKey(body.ChildExecID.String()), r)
		child.Pid, child.creator = int(body.ChildPid), p.ID
		// Every fork shows its child, even one with no record of its own
		// (until it execs, it runs its parent's program).
		child.selected = child.selected || sel
		if child.Comm == "" {
			child.Comm = p.Comm
		}
		if body.ChildCgroupID != 0 {
			child.Cgroup = cgroupText(body.ChildCgroupID, body.ChildCgroup)
		}
		if attr.ChildToolCall != "" {
			child.toolCall = attr.ChildToolCall
			t := s.toolCall(attr.ChildToolCall, r)
			t.ForkOf = p.argv()
		} else {
			child.toolCall = attr.ToolCall
		}
	case *record.CgroupMove:
		if sel {
			p.Actions = append(p.Actions, action(r))
		}
		if !body.Attempt {
			if moved := s.procs[processKey(body.ExecID.String())]; moved != nil {
				moved.Cgroup = cgroupText(body.ToCgroupID, body.ToCgroup)
			}
		}
	case *record.ProcAccess, *record.FileOp, *record.Mount, *record.Namespace, *record.BPF:
		if sel {
			p.Actions = append(p.Actions, action(r))
			if call != nil && r.HasTag(record.TagCredentialAccess) {
				call.Credential = true
			}
		}
	case *record.Exit:
		x := &Exit{Core: body.Status&0x80 != 0, AtNs: int64(r.Ktime - s.ktime)}
		if sig := body.Signal(); sig != 0 {
			x.Signal = record.SignalName(sig)
		} else {
			code := body.Code()
			x.Code = &code
		}
		p.Exit = x
	}
}

// argv is the command line of the process's current image.
func (p *Process) argv() []string {
	if n := len(p.Images); n > 0 {
		return p.Images[n-1].Argv
	}
	return []string{p.Comm}
}

// openAccess is how an open used its file: path (O_PATH), dir, create,
// or its access mode.
func openAccess(flags uint64) string {
	tmpfile := flags&unix.O_TMPFILE == unix.O_TMPFILE
	switch {
	case flags&unix.O_PATH != 0:
		return "path"
	case !tmpfile && flags&unix.O_DIRECTORY != 0:
		return "dir"
	case tmpfile || flags&unix.O_CREAT != 0:
		return "create"
	}
	switch flags & unix.O_ACCMODE {
	case unix.O_WRONLY:
		return "write"
	case unix.O_RDWR, unix.O_ACCMODE:
		return "rdwr"
	}
	return "read"
}

func (b *builder) open(p *Process, r *record.Record, o *record.Open) {
	path, errno := requestedPath(o), record.Errno(o.Ret)
	opened := openedPath(r, o)
	key := fileKey{path, opened, openAccess(o.Flags), errno}
	if p.files == nil {
		p.files = map[fileKey]*File{}
	}
	credential := r.HasTag(record.TagCredentialAccess)
	f, ok := p.files[key]
	if !ok {
		f = &File{Path: path, Opened: opened, Access: key.access, Errno: errno, Seq: r.Seq, Tags: r.Tags}
		p.files[key] = f
		if credential {
			p.Credentials = append(p.Credentials, f)
		} else {
			p.Files = append(p.Files, f)
		}
	}
	f.Count++
	if credential {
		b.summary.CredentialAccess++
	}
}

// openedPath is the file an open opened, when what it asked for does not
// say: a relative name (three files can be "target.txt"), no path at all (a
// file handle, a descriptor of another process, a memfd, a path that could
// not be read), or a credential reached under another name (a link, a
// /proc/self/fd reopen). "" otherwise: a library reached through a
// versioned symbolic link is not worth a line.
func openedPath(r *record.Record, o *record.Open) string {
	if !o.File.Present {
		return ""
	}
	requested := requestedPath(o)
	if !strings.HasPrefix(requested, "/") ||
		r.HasTag(record.TagCredentialAccess) && pathpkg.Base(requested) != pathpkg.Base(o.File.Path) {
		return record.Readable(o.File.Path)
	}
	return ""
}

// requestedPath is what an open asked for, as one string.
func requestedPath(o *record.Open) string {
	switch {
	case o.Syscall == "open_by_handle_at":
		return "(file handle)"
	case o.Syscall == "pidfd_getfd":
		return fmt.Sprintf("(fd %d of pid %d)", o.TargetFd, o.Source.ExecID.Pid)
	case o.Syscall == "memfd_create":
		return "(memfd " + record.Readable(o.Path) + ")"
	case o.PathUnreadable:
		return "(path unreadable)"
	}
	return record.Readable(o.Path)
}

// connectAddress is where a connect went, as one string.
func connectAddress(c *record.Connect) string {
	if c.AddrUnreadable && !c.Addr.HasFamily {
		return "(address unreadable)"
	}
	return c.Addr.String()
}

// connectResult is what connect returned: "ok", "in progress" or the errno.
func connectResult(c *record.Connect) string {
	switch errno := record.Errno(c.Ret); {
	case c.Ret == 0:
		return "ok"
	case errno == "EINPROGRESS":
		return "in progress"
	case errno == "":
		return fmt.Sprintf("ret %d", c.Ret)
	default:
		return errno
	}
}

// finish closes the current session: links processes into trees, orders
// tool calls, prunes what the filter left out and counts.
func (b *builder) finish() {
	s := b.session
	if s == nil {
		return
	}
	b.session = nil
	procs := make([]*Process, 0, len(s.procs))
	for _, p := range s.procs {
		procs = append(procs, p)
	}
	slices.SortFunc(procs, func(a, b *Process) int { return cmp.Compare(a.first, b.first) })
	for _, p := range procs {
		s.finishNet(p)
	}
	// keep: the process or a descendant has a selected record.
	keep := map[*Process]bool{}
	for _, p := range procs {
		if !p.selected {
			continue
		}
		for q := p; q != nil && !keep[q]; q = s.parentInCall(q) {
			keep[q] = true
		}
	}
	for _, p := range procs {
		if !keep[p] {
			continue
		}
		b.summary.Processes++
		for _, f := range slices.Concat(p.Credentials, p.Files) {
			if f.Errno != "" {
				b.summary.FailedOpens += f.Count
			}
		}
		b.summary.Connections += len(p.Connects)
		if parent := s.parentInCall(p); parent != nil {
			parent.Children = append(parent.Children, p)
			continue
		}
		if p.toolCall == "" {
			s.Agent = append(s.Agent, p)
			continue
		}
		// Every process with a tool call had a record that created it.
		t := s.calls[p.toolCall]
		t.Processes = append(t.Processes, p)
	}
	paths := map[string]bool{}
	for _, p := range procs {
		if keep[p] {
			for _, f := range p.Files {
				if f.Errno == "" {
					paths[f.Path] = true
				}
			}
			for _, f := range p.Credentials {
				if f.Errno == "" {
					paths[f.Path] = true
				}
			}
		}
	}
	b.summary.FilesOpened += len(paths)
	for _, t := range s.calls {
		if len(t.Processes) == 0 {
			continue
		}
		if top := s.procs[t.top]; top != nil {
			t.Exit = top.Exit
		}
		t.StartNs = int64(t.ktime - s.ktime)
		if t.end > t.ktime {
			t.DurationNs = int64(t.end - t.ktime)
		}
		s.ToolCalls = append(s.ToolCalls, t)
	}
	slices.SortFunc(s.ToolCalls, func(a, b *ToolCall) int { return cmp.Compare(a.first, b.first) })
	start, _ := time.Parse(time.RFC3339Nano, s.Time)
	for _, e := range s.Events {
		e.AtNs = int64(e.ktime - s.ktime)
		if !e.from.IsZero() && !start.IsZero() {
			e.AtNs, e.UntilNs = max(0, int64(e.from.Sub(start))), max(0, int64(e.to.Sub(start)))
		}
	}
	slices.SortStableFunc(s.Events, func(a, b *Event) int { return cmp.Compare(a.AtNs, b.AtNs) })
	if !b.filter.Active() || len(s.Agent)+len(s.ToolCalls)+len(s.Events) > 0 {
		b.log.Sessions = append(b.log.Sessions, s)
		b.summary.Sessions++
		b.summary.ToolCalls += len(s.ToolCalls)
	}
}

// Item is a tool call or an event.
type Item struct {
	ToolCall *ToolCall
	Event    *Event
}

// Items are the session's tool calls and events in the order they happened
// (an event before the first tool call that started after it).
func (s *Session) Items() []Item {
	var items []Item
	events := s.Events
	for _, c := range s.ToolCalls {
		for len(events) > 0 && events[0].AtNs < c.StartNs {
			items = append(items, Item{Event: events[0]})
			events = events[1:]
		}
		items = append(items, Item{ToolCall: c})
	}
	for _, e := range events {
		items = append(items, Item{Event: e})
	}
	return items
}

// parentInCall is p's creator when it belongs to the same tool call (or
// both are root processes); nil when p is the top of its tree.
func (s *Session) parentInCall(p *Process) *Process {
	parent := s.procs[p.creator]
	if parent == nil || parent == p || parent.toolCall != p.toolCall {
		return nil
	}
	return parent
}

func seconds(ns int64) string {
	return fmt.Sprintf("%.3fs", float64(ns)/1e9)
}
