// Package record owns the audit record: the JSON Lines schema documented in
// docs/schema.md and schema/record.schema.json. Every record body is a Go
// type here (the kernel's events and agenttrace's own records alike) with
// one way to write it and one way to read it back; the table of record types
// (Types) is defined once, in kinds.go.
//
// Writers build values: the decoder fills an Event, the sink, pipeline,
// session and daemon build bodies, and the Encoder turns them into lines,
// adding what a kernel record refers to by id (the cgroup path, the
// process's executable, the tool call it belongs to) and the
// credential_access tag. Readers (verify, show, the OCSF mapping, the
// exporters, attribution recomputation) use Decode and get the same types.
//
// It must never drop, merge or reorder events, and never alter a byte of what
// the kernel saw: text that is not exact in JSON is carried in a _b64 sibling.
// What it derives, it derives from the records it wrote before (the ids they
// carry), so a reader can recompute it from the log alone (Attributor). It
// must not depend on the eBPF loader: a reader of logs does not link the
// eBPF object.
package record

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// SchemaVersion is the "v" of every record.
const SchemaVersion = 1

// Body is the type object of a record: one of the kernel's bodies (*Exec,
// *Open, …) or one of agenttrace's own (*Header, *Start, *Gap, …).
type Body interface {
	// Type is the record's "type", and the name of its type object.
	Type() string
	appendBody(b []byte) []byte
	decode(r *reader)
}

// Record is one line of a log.
type Record struct {
	Seq    uint64
	Prev   [32]byte // SHA-256 of the line before, newline included
	Time   string   // RFC 3339 UTC with nanoseconds, as written
	Ktime  uint64   // CLOCK_BOOTTIME ns
	Host   string
	BootID string
	Type   string
	// Kernel records only.
	CPU  uint32
	Kseq uint64
	Proc *Proc
	// Body is the type object; nil for a type this build does not know.
	Body Body
	Tags []string
}

// Tags: what agenttrace derives about a record, after its type object.
const (
	// TagCredentialAccess: an open of a path in the sensitive list.
	TagCredentialAccess = "credential_access"
	// TagToolCallCommand: the first successful exec of a tool call's
	// top-most process; its argv is what the tool call ran.
	TagToolCallCommand = "tool_call_command"
)

// HasTag reports whether the record carries tag.
func (r *Record) HasTag(tag string) bool {
	for _, t := range r.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// CgroupPaths resolves a cgroup id to its path below the cgroup2 mount.
type CgroupPaths interface {
	Path(id uint64) (string, bool)
}

// Encoder writes records. It is not safe for concurrent use, except for
// SetSensitive and SetPatternNames: one goroutine at a time appends (the
// sink's, under its lock), which is also what keeps seq order equal to log
// order.
type Encoder struct {
	Host   string
	BootID string
	// WallOffset converts kernel boot-time ns to Unix ns (wall = ktime + WallOffset).
	WallOffset int64
	Cgroups    CgroupPaths
	// OnCgroup, if set, learns of every cgroup record as it is written
	// (the daemon keeps its target list with it). It runs while a record is
	// appended and must not append.
	OnCgroup func(c *Cgroup)

	sensitive      atomic.Pointer[PathSet]
	sensitiveFiles atomic.Pointer[FileSet]
	patternNames   atomic.Pointer[[]string]
	// Hasher adds the SHA-256 of the executed image to exec records
	// (exe_file.sha256); nil: none. Set it before the first append.
	Hasher *ExeHasher
	// joined holds a failed relative open's directory and name, to match.
	joined []byte

	exes    map[processID]exeOf
	attr    attribution
	targets []string // scratch for a cgroup record's pattern names
	procs   [procCacheSlots]cachedProc

	// The formatted date and time up to the second, for the second it is
	// of: records arrive in bursts within one second, and formatting a
	// time in full costs more than the rest of the envelope.
	timeSec    int64
	timePrefix []byte
	// hostBoot is `,"host":..,"boot_id":..` for the Host and BootID in hostBootOf.
	hostBoot   []byte
	hostBootOf [2]string
}

// exeOf is the executable of a process's image, and which image it is.
type exeOf struct {
	seq uint64
	exe []byte
}

// NewEncoder returns an encoder for this host.
func NewEncoder(host, bootID string, wallOffset int64, cgroups CgroupPaths) *Encoder {
	return &Encoder{Host: host, BootID: bootID, WallOffset: wallOffset, Cgroups: cgroups, exes: make(map[processID]exeOf)}
}

// SetSensitive sets the paths whose opens are tagged credential_access (nil:
// none) for the records appended from now on. Safe while others append.
func (e *Encoder) SetSensitive(s *PathSet) { e.sensitive.Store(s) }

// Sensitive is the current sensitive path set.
func (e *Encoder) Sensitive() *PathSet { return e.sensitive.Load() }

// SetSensitiveFiles sets the files (device, inode) whose opens are tagged
// credential_access whatever their name (nil: none), usually
// ResolveSensitiveFiles of the sensitive path set, for the records appended
// from now on. The set then belongs to the encoder, which adds the files of
// opens whose resolved path is sensitive. Safe while others append.
func (e *Encoder) SetSensitiveFiles(f *FileSet) { e.sensitiveFiles.Store(f) }

// SetPatternNames sets the daemon's target patterns, in the kernel's order,
// so that a cgroup record can name the ones that matched. Safe while others
// append.
func (e *Encoder) SetPatternNames(names []string) { e.patternNames.Store(&names) }

// WallOffset measures the offset between CLOCK_REALTIME and CLOCK_BOOTTIME.
func WallOffset() int64 {
	var boot, real1, real2 unix.Timespec
	// Bracket the boot-time read so the offset error is at most half the gap.
	unix.ClockGettime(unix.CLOCK_REALTIME, &real1)
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot)
	unix.ClockGettime(unix.CLOCK_REALTIME, &real2)
	return (real1.Nano()+real2.Nano())/2 - boot.Nano()
}

// BootTime returns the current CLOCK_BOOTTIME in ns, the time of records
// that are not kernel events.
func BootTime() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return uint64(ts.Nano())
}

// appendEnvelope starts a record: `{"v":..,"seq":..,"prev":..,"time":..,"ktime":..,"host":..,"boot_id":..,"type":..`.
// It is written in runs of constant text; hostBoot is the part that is the
// same in every line of a writer (appendHostBoot), which the Encoder keeps.
func appendEnvelope(b []byte, seq uint64, prev *[32]byte, time []byte, ktime uint64, hostBoot []byte, typ string) []byte {
	b = append(b, envelopeStart...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"prev":"`...)
	b = hex.AppendEncode(b, prev[:])
	b = append(b, `","time":"`...)
	b = append(b, time...)
	b = append(b, `","ktime":`...)
	b = strconv.AppendUint(b, ktime, 10)
	b = append(b, hostBoot...)
	b = append(b, `,"type":"`...)
	b = append(b, typ...)
	return append(b, '"')
}

// envelopeStart is the start of every line, up to seq's value.
var envelopeStart = `{"v":` + strconv.Itoa(SchemaVersion) + `,"seq":`

// appendHostBoot appends the envelope's `,"host":..,"boot_id":..`.
func appendHostBoot(b []byte, host, bootID string) []byte {
	// Written after a '{' (appendKey puts no comma there), which then
	// becomes the comma.
	n := len(b)
	b = appendASCII(AppendString(append(b, '{'), "host", host), "boot_id", bootID)
	b[n] = ','
	return b
}

// envelope is appendEnvelope for a record of this encoder, with its host
// and boot_id formatted once.
func (e *Encoder) envelope(b []byte, seq uint64, prev *[32]byte, ktime uint64, typ string) []byte {
	if e.hostBoot == nil || e.hostBootOf != [2]string{e.Host, e.BootID} {
		e.hostBoot = appendHostBoot(e.hostBoot[:0], e.Host, e.BootID)
		e.hostBootOf = [2]string{e.Host, e.BootID}
	}
	var tbuf [40]byte
	return appendEnvelope(b, seq, prev, e.appendTime(tbuf[:0], int64(ktime)+e.WallOffset), ktime, e.hostBoot, typ)
}

// appendTime appends unixNano as RFC 3339 UTC with nanoseconds
// (2006-01-02T15:04:05.000000000Z).
func (e *Encoder) appendTime(b []byte, unixNano int64) []byte {
	sec, nsec := unixNano/1e9, unixNano%1e9
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	if sec != e.timeSec || e.timePrefix == nil {
		e.timePrefix = time.Unix(sec, 0).UTC().AppendFormat(e.timePrefix[:0], "2006-01-02T15:04:05.")
		e.timeSec = sec
	}
	b = append(b, e.timePrefix...)
	var digits [9]byte
	for i := 8; i >= 0; i-- {
		digits[i] = byte('0' + nsec%10)
		nsec /= 10
	}
	return append(append(b, digits[:]...), 'Z')
}

// Append appends one of agenttrace's own records, at boot time ktime,
// without newline. Appending a *Start begins the tool-call attribution it
// describes: the kernel records after it in the log are attributed.
func (e *Encoder) Append(b []byte, seq uint64, prev *[32]byte, ktime uint64, body Body) []byte {
	if s, ok := body.(*Start); ok {
		if s.Mode == ModeDaemon {
			e.attr.begin(0, true)
		} else {
			e.attr.begin(uint32(s.Pid), false)
		}
	}
	b = e.envelope(b, seq, prev, ktime, body.Type())
	b = append(appendKey(b, body.Type()), '{')
	return append(body.appendBody(b), '}', '}')
}

// AppendEvent appends the record of one kernel event, without newline.
func (e *Encoder) AppendEvent(b []byte, seq uint64, prev *[32]byte, ev *Event) []byte {
	body := ev.Body()
	if body == nil {
		// The decoder never delivers an unknown kind.
		panic(fmt.Sprintf("record: kernel event of unknown kind %d", ev.Kind))
	}
	p := &ev.Proc
	self := p.ExecID
	process := self.process()
	var member membership
	// A cgroup record's process is whoever made the directory (often
	// outside the targets): it takes no part in attribution.
	if ev.Kind == KindCgroup {
		member.root = true
	} else if e.attr.active {
		member = e.attr.of(process, p.ParentExecID.process(), p.ParentExecID.Seq)
	}

	// Learn executables before the proc object so an exec names its new image.
	switch ev.Kind {
	case KindExec:
		if (ev.Exec.Ret == 0 || ev.Exec.PastNoReturn) && ev.Exec.Exe != "" {
			// The exec bumped self_exec_id: the image it replaced is gone,
			// and no later record can name it. (One that failed past the
			// point of no return left the process with the new file as its
			// exe, whether or not it got as far as the bump.)
			old := e.exes[process]
			e.exes[process] = exeOf{seq: self.Seq, exe: append(old.exe[:0], ev.Exec.Exe...)}
		}
	case KindFork:
		// The child runs the parent's image until it execs; it inherits
		// self_exec_id, so its exec_id differs from the parent's by pid and start.
		if x, ok := e.exes[process]; ok && x.seq == self.Seq {
			e.exes[ev.Fork.ChildExecID.process()] = exeOf{seq: self.Seq, exe: append([]byte(nil), x.exe...)}
		}
	}
	if x, ok := e.exes[process]; ok && x.seq == self.Seq {
		p.Exe = unsafeString(x.exe)
	} else {
		p.Exe = ""
	}
	p.Cgroup = ""
	if e.Cgroups != nil {
		if path, ok := e.Cgroups.Path(p.CgroupID); ok {
			p.Cgroup = path
		}
	}
	p.ToolCall = ExecID{}
	if e.attr.active && !member.root {
		p.ToolCall = member.toolCall
	}

	tag := ""
	switch ev.Kind {
	case KindExec:
		if e.attr.active && ev.Exec.Ret == 0 && e.attr.exec(process, member) {
			tag = TagToolCallCommand
		}
		if x := &ev.Exec; (x.Ret == 0 || x.PastNoReturn && x.Exe != "") && e.Hasher != nil {
			x.ExeFile.SHA256, x.ExeFile.SHA256Error = e.Hasher.Sum(p.Pid, p.ExecID.Start, x.Exe, &x.ExeFile)
		}
	case KindOpen:
		if e.openSensitive(&ev.Open) {
			tag = TagCredentialAccess
		}
	case KindFork:
		ev.Fork.ChildToolCall = e.attr.active && e.attr.fork(member, ev.Fork.ChildExecID.process(), self.Seq)
		ev.Fork.ChildCgroup = e.cgroupPath(ev.Fork.ChildCgroupID)
	case KindCgroup:
		e.cgroupTargets(&ev.Cgroup)
	case KindCgroupMove:
		e.cgroupMove(&ev.CgroupMove)
	case KindFileOp:
		if s := e.sensitive.Load(); s.Match(unsafeBytes(ev.FileOp.Path.Path)) || s.Match(unsafeBytes(ev.FileOp.NewPath.Path)) {
			tag = TagCredentialAccess
		}
	case KindExit:
		delete(e.exes, process)
		if e.attr.active {
			e.attr.exit(process)
		}
	}

	b = e.envelope(b, seq, prev, ev.Ktime, body.Type())
	b = appendUint(b, "cpu", uint64(ev.CPU))
	b = appendUint(b, "kseq", ev.Kseq)
	b = e.appendProc(b, p)
	b = append(appendKey(b, body.Type()), '{')
	b = append(body.appendBody(b), '}')
	if tag != "" {
		b = append(appendKey(b, "tags"), '[', '"')
		b = append(append(b, tag...), '"', ']')
	}
	return append(b, '}')
}

// procCacheSlots is the size of the cache of encoded proc objects: a direct-
// mapped table by thread id, one entry a thread that is recording now.
const procCacheSlots = 256

// cachedProc is a proc object as last encoded for a thread.
type cachedProc struct {
	proc Proc   // its value; its strings point into strs, not into the ring
	strs []byte // the bytes of proc's strings
	json []byte // `"proc":{...}`, without the comma before it
}

// appendProc appends `,"proc":{...}`. A thread's records mostly carry the
// same process object, byte for byte: the encoder keeps the last one it
// wrote for each thread and copies it when nothing in it changed, instead
// of formatting its dozen numbers and names again (issue 16: the object is
// about half of an open record).
func (e *Encoder) appendProc(b []byte, p *Proc) []byte {
	c := &e.procs[p.Tid%procCacheSlots]
	if c.json != nil && c.proc == *p {
		if n := len(b); n > 0 && b[n-1] != '{' && b[n-1] != '[' {
			b = append(b, ',')
		}
		return append(b, c.json...)
	}
	start := len(b)
	b = p.append(b)
	// The cache keeps its own copies of the strings, which alias the ring,
	// in a buffer it reuses: no allocation once it has grown.
	c.proc = *p
	c.strs = append(append(append(c.strs[:0], p.Comm...), p.Exe...), p.Cgroup...)
	c.proc.Comm = unsafeString(c.strs[:len(p.Comm)])
	c.proc.Exe = unsafeString(c.strs[len(p.Comm) : len(p.Comm)+len(p.Exe)])
	c.proc.Cgroup = unsafeString(c.strs[len(p.Comm)+len(p.Exe):])
	body := b[start:]
	if len(body) > 0 && body[0] == ',' {
		body = body[1:]
	}
	c.json = append(c.json[:0], body...)
	return b
}

// cgroupTargets names the patterns that matched a cgroup, tells OnCgroup,
// and teaches the resolver the new cgroup's path.
func (e *Encoder) cgroupTargets(c *Cgroup) {
	c.Targets = nil
	if names := e.patternNames.Load(); c.Matched && names != nil {
		e.targets = e.targets[:0]
		for i, n := range *names {
			if c.Patterns&(1<<i) != 0 {
				e.targets = append(e.targets, n)
			}
		}
		c.Targets = e.targets
	}
	if e.OnCgroup != nil {
		e.OnCgroup(c)
	}
	if l, ok := e.Cgroups.(interface{ Learn(uint64, string) }); ok && c.Op == "mkdir" && !c.PathTruncated {
		l.Learn(c.ID, c.Path)
	}
}

// cgroupPath is the path of cgroup id, "" if unknown (or id is 0).
func (e *Encoder) cgroupPath(id uint64) string {
	if id == 0 || e.Cgroups == nil {
		return ""
	}
	path, _ := e.Cgroups.Path(id)
	return path
}

// cgroupMove names the cgroups of a move and teaches the resolver the
// destination's path, as the kernel wrote it.
func (e *Encoder) cgroupMove(m *CgroupMove) {
	if m.FromKnown {
		m.FromCgroup = e.cgroupPath(m.FromCgroupID)
	}
	if m.Attempt {
		m.ToCgroup = e.cgroupPath(m.ToCgroupID)
		return
	}
	if l, ok := e.Cgroups.(interface{ Learn(uint64, string) }); ok && m.ToCgroup != "" && !m.ToCgroupTruncated {
		l.Learn(m.ToCgroupID, m.ToCgroup)
	}
}

// AppendRecord appends r as a line, without newline: the inverse of Decode
// (Decode(AppendRecord(r)) is r). Writers use an Encoder; this is for tools
// and tests that re-encode what they read.
func AppendRecord(b []byte, r *Record) []byte {
	b = appendEnvelope(b, r.Seq, &r.Prev, []byte(r.Time), r.Ktime, appendHostBoot(nil, r.Host, r.BootID), r.Type)
	if r.Proc != nil {
		b = appendUint(b, "cpu", uint64(r.CPU))
		b = appendUint(b, "kseq", r.Kseq)
		b = r.Proc.append(b)
	}
	if r.Body != nil {
		b = append(appendKey(b, r.Type), '{')
		b = append(r.Body.appendBody(b), '}')
	}
	if r.Tags != nil {
		b = appendASCIIs(b, "tags", r.Tags)
	}
	return append(b, '}')
}

// NewBody returns an empty body of the record type name, or nil if the
// type is not one this build knows.
func NewBody(name string) Body {
	switch name {
	case "exec":
		return new(Exec)
	case "open":
		return new(Open)
	case "connect":
		return new(Connect)
	case "send":
		return new(Send)
	case "bind":
		return new(Bind)
	case "listen":
		return new(Listen)
	case "accept":
		return new(Accept)
	case "sock_state":
		return new(SockState)
	case "dns":
		return new(DNS)
	case "fork":
		return new(Fork)
	case "exit":
		return new(Exit)
	case "cgroup":
		return new(Cgroup)
	case "io_uring":
		return new(IOURing)
	case "cgroup_move":
		return new(CgroupMove)
	case "proc_access":
		return new(ProcAccess)
	case "file_op":
		return new(FileOp)
	case "mount":
		return new(Mount)
	case "namespace":
		return new(Namespace)
	case "bpf":
		return new(BPF)
	case "tamper":
		return new(Tamper)
	case "header":
		return new(Header)
	case "checkpoint":
		return new(Checkpoint)
	case "recovery":
		return new(Recovery)
	case "start":
		return new(Start)
	case "stop":
		return new(Stop)
	case "gap":
		return new(Gap)
	case "heartbeat":
		return new(Heartbeat)
	case "freeze":
		return new(Freeze)
	case "thaw":
		return new(Thaw)
	case "target":
		return new(Target)
	case "reload":
		return new(Reload)
	case "snapshot":
		return new(Snapshot)
	}
	return nil
}

// ErrDuplicateKey is wrapped by Decode's error for a line with a key that
// appears twice in one object: readers could disagree on which one counts,
// so such a line is never what agenttrace wrote.
var ErrDuplicateKey = errDuplicateKey

// Decode reads one line (without its newline). A record of a type this
// build does not know decodes with a nil Body.
func Decode(line []byte) (*Record, error) {
	o, err := parseObject(line)
	if err != nil {
		return nil, err
	}
	r := &reader{o: o}
	rec := &Record{
		Seq: r.uint("seq"), Time: r.string("time"), Ktime: r.uint("ktime"), Host: r.bytes("host"),
		BootID: r.string("boot_id"), Type: r.string("type"),
	}
	if v := r.int("v"); r.err == nil && v != SchemaVersion {
		return nil, fmt.Errorf("schema version %d, this build reads %d", v, SchemaVersion)
	}
	if prev := r.string("prev"); prev != "" && hexDecode(rec.Prev[:], []byte(prev)) != nil {
		r.fail(errors.New("prev: not 64 lowercase hex digits"))
	}
	if p := r.object("proc"); p != nil {
		rec.CPU, rec.Kseq = r.uint32("cpu"), r.uint("kseq")
		rec.Proc = new(Proc)
		rec.Proc.decode(p)
		r.done(p)
	}
	if body := NewBody(rec.Type); body != nil {
		if br := r.object(rec.Type); br != nil {
			body.decode(br)
			if br.err != nil {
				r.fail(fmt.Errorf("%s record %d: %w", rec.Type, rec.Seq, br.err))
			}
			rec.Body = body
		}
	}
	if r.o.has("tags") {
		r.into("tags", &rec.Tags)
	}
	if r.err != nil {
		return nil, r.err
	}
	return rec, nil
}

// Envelope is the prefix every record starts with, in this order:
// {"v":1,"seq":N,"prev":"<64 hex>","time":"<RFC 3339>",… and later
// ,"type":"<type>".
type Envelope struct {
	Seq  uint64
	Prev [32]byte
	Time []byte // as written; aliases the line
	Type string
}

var (
	errNoPrefix = errors.New(`line does not start with {"v":1,"seq":N,"prev":"<hash>","time":"…"`)
	errNoType   = errors.New(`line has no "type"`)
)

// ParseEnvelope reads seq, prev, time and type from a line without decoding
// the whole record: the fast path of verification and export. It relies on
// the fixed member order of the encoder; "type" is found as the first
// `,"type":"` because inside a JSON string every quote is escaped, so that
// byte sequence cannot occur in an earlier value.
func ParseEnvelope(line []byte) (Envelope, error) {
	var env Envelope
	rest, ok := bytes.CutPrefix(line, []byte(`{"v":1,"seq":`))
	if !ok {
		return env, errNoPrefix
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	seq, err := strconv.ParseUint(string(rest[:i]), 10, 64)
	if err != nil {
		return env, errNoPrefix
	}
	env.Seq = seq
	rest, ok = bytes.CutPrefix(rest[i:], []byte(`,"prev":"`))
	if !ok || len(rest) < 65 || rest[64] != '"' {
		return env, errNoPrefix
	}
	if hexDecode(env.Prev[:], rest[:64]) != nil {
		return env, errNoPrefix
	}
	rest, ok = bytes.CutPrefix(rest[65:], []byte(`,"time":"`))
	if !ok {
		return env, errNoPrefix
	}
	k := bytes.IndexByte(rest, '"')
	if k < 0 {
		return env, errNoPrefix
	}
	env.Time = rest[:k]
	j := bytes.Index(rest, []byte(`,"type":"`))
	if j < 0 {
		return env, errNoType
	}
	t := rest[j+len(`,"type":"`):]
	k = bytes.IndexByte(t, '"')
	if k < 0 {
		return env, errNoType
	}
	env.Type = string(t[:k])
	return env, nil
}

// hexDecode decodes lowercase hex only: the encoder writes lowercase, so an
// uppercase digit is a modification.
func hexDecode(dst, src []byte) error {
	if len(src) != 2*len(dst) {
		return errNoPrefix
	}
	for i := range dst {
		hi, ok1 := unhex(src[2*i])
		lo, ok2 := unhex(src[2*i+1])
		if !ok1 || !ok2 {
			return errNoPrefix
		}
		dst[i] = hi<<4 | lo
	}
	return nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
