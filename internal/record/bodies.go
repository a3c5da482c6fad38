package record

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// The bodies of the records agenttrace writes itself. Each has one append
// (its members in a fixed order) and one decode (the same members back).

// Header starts every segment: which log it belongs to, the key that signs
// its checkpoints, and where the previous segment ended.
type Header struct {
	Schema            int
	AgenttraceVersion string
	LogID             string
	Segment           int
	Key               string
	Continues         *Continues // nil for segment 1
}

// Continues links a segment to the one before it.
type Continues struct {
	SegmentFile string
	LastSeq     uint64
	LastHash    string
	Tree        []string // the Merkle tree's compact state after LastSeq
}

// Type is "header".
func (*Header) Type() string { return "header" }

func (h *Header) appendBody(b []byte) []byte {
	b = appendInt(b, "schema", int64(h.Schema))
	b = AppendString(b, "agenttrace_version", h.AgenttraceVersion)
	b = appendASCII(b, "log_id", h.LogID)
	b = appendInt(b, "segment", int64(h.Segment))
	b = AppendString(b, "key", h.Key)
	if c := h.Continues; c != nil {
		b = append(appendKey(b, "continues"), '{')
		b = AppendString(b, "segment_file", c.SegmentFile)
		b = appendUint(b, "last_seq", c.LastSeq)
		b = appendASCII(b, "last_hash", c.LastHash)
		b = appendASCIIs(b, "tree", c.Tree)
		b = append(b, '}')
	}
	return b
}

func (h *Header) decode(r *reader) {
	h.Schema, h.AgenttraceVersion = int(r.int("schema")), r.bytes("agenttrace_version")
	h.LogID, h.Segment, h.Key = r.string("log_id"), int(r.int("segment")), r.bytes("key")
	if c := r.object("continues"); c != nil {
		h.Continues = &Continues{SegmentFile: c.bytes("segment_file"), LastSeq: c.uint("last_seq"), LastHash: c.string("last_hash")}
		c.into("tree", &h.Continues.Tree)
		r.done(c)
	}
}

// Checkpoint is a signed checkpoint over every record before it.
type Checkpoint struct {
	LogID string
	Size  uint64
	Head  string // hex SHA-256 of line Size
	Root  string // base64 Merkle root
	Final bool   // the writer closed the log after it
	Note  string // the signed note (C2SP tlog-checkpoint)
}

// Type is "checkpoint".
func (*Checkpoint) Type() string { return "checkpoint" }

func (c *Checkpoint) appendBody(b []byte) []byte {
	b = appendASCII(b, "log_id", c.LogID)
	b = appendUint(b, "size", c.Size)
	b = appendASCII(b, "head", c.Head)
	b = appendASCII(b, "root", c.Root)
	if c.Final {
		b = appendBool(b, "final", true)
	}
	return AppendString(b, "note", c.Note)
}

func (c *Checkpoint) decode(r *reader) {
	c.LogID, c.Size, c.Head, c.Root = r.string("log_id"), r.uint("size"), r.string("head"), r.string("root")
	c.Final, c.Note = r.bool("final"), r.bytes("note")
}

// Recovery follows the header of a segment whose predecessor did not end
// with a final checkpoint (a crash): how it ended.
type Recovery struct {
	SegmentFile string
	AfterSeq    uint64
	Unsigned    uint64 // records after the last checkpoint
	TornOffset  int64
	TornBytes   int64
	TornSHA256  string
}

// Type is "recovery".
func (*Recovery) Type() string { return "recovery" }

func (rc *Recovery) appendBody(b []byte) []byte {
	b = AppendString(b, "segment_file", rc.SegmentFile)
	b = appendUint(b, "after_seq", rc.AfterSeq)
	b = appendUint(b, "unsigned_records", rc.Unsigned)
	if rc.TornBytes > 0 {
		b = appendInt(b, "torn_offset", rc.TornOffset)
	}
	b = appendInt(b, "torn_bytes", rc.TornBytes)
	if rc.TornSHA256 != "" {
		b = appendASCII(b, "torn_sha256", rc.TornSHA256)
	}
	return b
}

func (rc *Recovery) decode(r *reader) {
	rc.SegmentFile, rc.AfterSeq, rc.Unsigned = r.bytes("segment_file"), r.uint("after_seq"), r.uint("unsigned_records")
	rc.TornOffset, rc.TornBytes, rc.TornSHA256 = r.int("torn_offset"), r.int("torn_bytes"), r.string("torn_sha256")
}

// ModeDaemon is Start.Mode and Stop.Mode for `agenttrace daemon`; "" is
// `agenttrace run`.
const ModeDaemon = "daemon"

// Start begins a session (`agenttrace run`: a command in a fresh cgroup)
// or the daemon's tracing (Mode "daemon": target patterns instead). Kernel
// records after it are attributed to tool calls: appending it begins the
// attribution it describes.
type Start struct {
	Mode              string
	AgenttraceVersion string
	Pid               int // agenttrace's
	Uid               int
	// run
	Command  string
	Argv     []string
	Cgroup   string
	CgroupID uint64
	// daemon
	Config         string
	ConfigSHA256   string
	CgroupMount    string
	Targets        []string
	ExcludedCgroup string // the daemon's own cgroup, when a target matches it
	RingSize       int
	FailClosed     bool
	// KernelState: "created", "adopted" (the kernel side an earlier daemon
	// left pinned, recording meanwhile) or "replaced" (created; the pinned
	// one of another build or configuration removed).
	KernelState string
	// Adopted: the last record of the log its last reader committed, and
	// why the log's tail could not be matched with the ring, if it could not.
	ResumedAfterSeq uint64
	ResumeError     string
	// both
	MaxArgBytes    uint32
	SensitivePaths []string
	Hooks          []Hook
}

// Hook is one attached eBPF program and its kernel tag.
type Hook struct {
	Hook string
	Tag  string
}

// Type is "start".
func (*Start) Type() string { return "start" }

func (s *Start) appendBody(b []byte) []byte {
	if s.Mode == ModeDaemon {
		b = appendASCII(b, "mode", s.Mode)
	}
	b = AppendString(b, "agenttrace_version", s.AgenttraceVersion)
	b = appendInt(b, "pid", int64(s.Pid))
	b = appendInt(b, "uid", int64(s.Uid))
	if s.Mode == ModeDaemon {
		b = AppendString(b, "config", s.Config)
		b = appendASCII(b, "config_sha256", s.ConfigSHA256)
		b = AppendString(b, "cgroup_mount", s.CgroupMount)
		b = AppendStrings(b, "targets", s.Targets)
		if s.ExcludedCgroup != "" {
			b = AppendString(b, "excluded_cgroup", s.ExcludedCgroup)
		}
		b = appendUint(b, "max_arg_bytes", uint64(s.MaxArgBytes))
		b = appendInt(b, "ring_size", int64(s.RingSize))
		b = appendBool(b, "fail_closed", s.FailClosed)
		if s.KernelState != "" {
			b = appendASCII(b, "kernel_state", s.KernelState)
		}
		if s.KernelState == "adopted" {
			b = appendUint(b, "resumed_after_seq", s.ResumedAfterSeq)
			if s.ResumeError != "" {
				b = AppendString(b, "resume_error", s.ResumeError)
			}
		}
	} else {
		b = AppendString(b, "command", s.Command)
		b = AppendStrings(b, "argv", s.Argv)
		b = AppendString(b, "cgroup", s.Cgroup)
		b = appendUint(b, "cgroup_id", s.CgroupID)
		b = appendUint(b, "max_arg_bytes", uint64(s.MaxArgBytes))
	}
	b = AppendStrings(b, "sensitive_paths", s.SensitivePaths)
	b = append(appendKey(b, "hooks"), '[')
	for i, h := range s.Hooks {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendASCII(append(b, '{'), "hook", h.Hook)
		b = append(appendASCII(b, "tag", h.Tag), '}')
	}
	return append(b, ']')
}

func (s *Start) decode(r *reader) {
	s.Mode, s.AgenttraceVersion = r.string("mode"), r.bytes("agenttrace_version")
	s.Pid, s.Uid = int(r.int("pid")), int(r.int("uid"))
	s.Command, s.Argv, s.Cgroup, s.CgroupID = r.bytes("command"), r.strings("argv"), r.bytes("cgroup"), r.uint("cgroup_id")
	s.Config, s.ConfigSHA256, s.CgroupMount = r.bytes("config"), r.string("config_sha256"), r.bytes("cgroup_mount")
	s.Targets, s.ExcludedCgroup = r.strings("targets"), r.bytes("excluded_cgroup")
	s.RingSize, s.FailClosed = int(r.int("ring_size")), r.bool("fail_closed")
	s.KernelState, s.ResumedAfterSeq, s.ResumeError = r.string("kernel_state"), r.uint("resumed_after_seq"), r.bytes("resume_error")
	s.MaxArgBytes, s.SensitivePaths = r.uint32("max_arg_bytes"), r.strings("sensitive_paths")
	var hooks []struct{ Hook, Tag string }
	r.into("hooks", &hooks)
	for _, h := range hooks {
		s.Hooks = append(s.Hooks, Hook(h))
	}
}

// Stop ends a session (the command exited) or the daemon's tracing.
type Stop struct {
	Mode   string
	Reason string
	// run
	ExitCode          int
	Error             string // the command could not be started or waited for
	LeftRunning       int    // processes of the session alive when the grace period ended, wherever they were
	LeftRunningAction string
	// TaintedRunning counts processes outside the session that it took
	// over (ptrace, process_vm_writev) still running at its end: they are
	// not killed.
	TaintedRunning int
	// daemon
	UptimeNs int64
	// KernelState: "kept" (pinned, recording, for the next daemon to
	// adopt) or "released" (detached and gone: a deliberate stop).
	KernelState string
	// Reread: records of an adopted ring that the log already had, read
	// again and not written twice.
	Reread uint64
	// Records are the kernel records written, by kind (every kernel kind);
	// Lost the events not written, by kind (only kinds that lost some).
	Records Counts
	Lost    Counts
}

// Type is "stop".
func (*Stop) Type() string { return "stop" }

func (s *Stop) appendBody(b []byte) []byte {
	if s.Mode == ModeDaemon {
		b = appendASCII(b, "mode", s.Mode)
	}
	b = AppendString(b, "reason", s.Reason)
	if s.Mode == ModeDaemon {
		b = appendInt(b, "uptime_ns", s.UptimeNs)
		if s.KernelState != "" {
			b = appendASCII(b, "kernel_state", s.KernelState)
		}
		if s.Reread > 0 {
			b = appendUint(b, "reread", s.Reread)
		}
	} else {
		b = appendInt(b, "exit_code", int64(s.ExitCode))
		if s.Error != "" {
			b = AppendString(b, "error", s.Error)
		}
		b = appendInt(b, "left_running", int64(s.LeftRunning))
		if s.LeftRunningAction != "" {
			b = AppendString(b, "left_running_action", s.LeftRunningAction)
		}
		if s.TaintedRunning > 0 {
			b = appendInt(b, "tainted_running", int64(s.TaintedRunning))
		}
	}
	b = s.Records.append(b, "records")
	return s.Lost.append(b, "lost")
}

func (s *Stop) decode(r *reader) {
	s.Mode, s.Reason = r.string("mode"), r.bytes("reason")
	s.ExitCode, s.Error = int(r.int("exit_code")), r.bytes("error")
	s.LeftRunning, s.LeftRunningAction = int(r.int("left_running")), r.bytes("left_running_action")
	s.TaintedRunning = int(r.int("tainted_running"))
	s.UptimeNs, s.KernelState, s.Reread = r.int("uptime_ns"), r.string("kernel_state"), r.uint("reread")
	r.into("records", &s.Records)
	r.into("lost", &s.Lost)
}

// Counts are numbers by record type: written or lost events of each kernel
// kind, "unknown" for records the decoder could not read, and the types of
// agenttrace's own records a full disk refused.
type Counts map[string]uint64

// append writes the counts as an object, kernel kinds in kind order first.
func (c Counts) append(b []byte, key string) []byte {
	b = append(appendKey(b, key), '{')
	names := LossNames()
	for _, name := range names {
		if n, ok := c[name]; ok {
			b = appendUint(b, name, n)
		}
	}
	var others []string
	for name := range c {
		if !slices.Contains(names, name) {
			others = append(others, name)
		}
	}
	slices.Sort(others)
	for _, name := range others {
		b = appendUint(b, name, c[name])
	}
	return append(b, '}')
}

// Total is the sum of the counts.
func (c Counts) Total() uint64 {
	var n uint64
	for _, v := range c {
		n += v
	}
	return n
}

// Gap counts events that are not records: where they were lost, how many
// of each kind, and when.
type Gap struct {
	Stage    string // kernel, decode, write, accounting
	Reason   string
	CPU      int // the kernel stage's CPU; -1 for user-space stages
	Lost     Counts
	From, To time.Time
}

// Type is "gap".
func (*Gap) Type() string { return "gap" }

func (g *Gap) appendBody(b []byte) []byte {
	b = AppendString(b, "stage", g.Stage)
	b = AppendString(b, "reason", g.Reason)
	if g.CPU >= 0 {
		b = appendInt(b, "cpu", int64(g.CPU))
	}
	b = g.Lost.append(b, "lost")
	b = appendTimeString(b, "from", g.From)
	return appendTimeString(b, "to", g.To)
}

func (g *Gap) decode(r *reader) {
	g.Stage, g.Reason = r.string("stage"), r.string("reason")
	g.CPU = -1
	if r.o.has("cpu") {
		g.CPU = int(r.int("cpu"))
	}
	r.into("lost", &g.Lost)
	g.From, g.To = r.time("from"), r.time("to")
}

func appendTimeString(b []byte, key string, t time.Time) []byte {
	b = append(appendKey(b, key), '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func (r *reader) time(key string) time.Time {
	s := r.string(key)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		r.fail(fmt.Errorf("%s: %w", key, err))
	}
	return t
}

// Heartbeat carries the running totals, so a reader can tell a quiet
// tracer from a dead one.
type Heartbeat struct {
	UptimeNs int64
	Records  uint64 // lines in the log, this one included
	RingSize int
	RingUsed int
	Kinds    []KindTotals // every kernel kind, in kind order
}

// KindTotals are one kernel kind's totals.
type KindTotals struct {
	Kind                   string
	Matched, Written, Lost uint64
}

// Type is "heartbeat".
func (*Heartbeat) Type() string { return "heartbeat" }

func (h *Heartbeat) appendBody(b []byte) []byte {
	b = appendInt(b, "uptime_ns", h.UptimeNs)
	b = appendUint(b, "records", h.Records)
	b = append(appendKey(b, "ring"), '{')
	b = appendInt(b, "size", int64(h.RingSize))
	b = append(appendInt(b, "used", int64(h.RingUsed)), '}')
	b = append(appendKey(b, "kinds"), '{')
	for _, k := range h.Kinds {
		b = append(appendKey(b, k.Kind), '{')
		b = appendUint(b, "matched", k.Matched)
		b = appendUint(b, "written", k.Written)
		b = append(appendUint(b, "lost", k.Lost), '}')
	}
	return append(b, '}')
}

func (h *Heartbeat) decode(r *reader) {
	h.UptimeNs, h.Records = r.int("uptime_ns"), r.uint("records")
	if ring := r.object("ring"); ring != nil {
		h.RingSize, h.RingUsed = int(ring.int("size")), int(ring.int("used"))
		r.done(ring)
	}
	if kinds := r.object("kinds"); kinds != nil {
		for _, name := range kinds.o.keys {
			k := kinds.object(name)
			h.Kinds = append(h.Kinds, KindTotals{Kind: name, Matched: k.uint("matched"), Written: k.uint("written"), Lost: k.uint("lost")})
			kinds.done(k)
		}
		r.done(kinds)
	}
}

// Freeze: fail-closed mode froze the traced processes.
type Freeze struct {
	Reason   string
	RingUsed int
	RingSize int
}

// Type is "freeze".
func (*Freeze) Type() string { return "freeze" }

func (f *Freeze) appendBody(b []byte) []byte {
	b = AppendString(b, "reason", f.Reason)
	b = appendInt(b, "ring_used", int64(f.RingUsed))
	return appendInt(b, "ring_size", int64(f.RingSize))
}

func (f *Freeze) decode(r *reader) {
	f.Reason, f.RingUsed, f.RingSize = r.bytes("reason"), int(r.int("ring_used")), int(r.int("ring_size"))
}

// Thaw: fail-closed mode let the traced processes run again.
type Thaw struct {
	Reason   string
	FrozenNs int64
}

// Type is "thaw".
func (*Thaw) Type() string { return "thaw" }

func (t *Thaw) appendBody(b []byte) []byte {
	b = AppendString(b, "reason", t.Reason)
	return appendInt(b, "frozen_ns", t.FrozenNs)
}

func (t *Thaw) decode(r *reader) { t.Reason, t.FrozenNs = r.bytes("reason"), r.int("frozen_ns") }

// Target: a cgroup started or stopped matching the daemon's target patterns.
type Target struct {
	Op        string // add, remove
	Reason    string // start, reload
	Cgroup    string
	CgroupID  uint64
	Targets   []string // the patterns it matches (add)
	Processes *int     // processes in its tree when it was added
}

// Type is "target".
func (*Target) Type() string { return "target" }

func (t *Target) appendBody(b []byte) []byte {
	b = appendASCII(b, "op", t.Op)
	b = appendASCII(b, "reason", t.Reason)
	b = AppendString(b, "cgroup", t.Cgroup)
	b = appendUint(b, "cgroup_id", t.CgroupID)
	if t.Targets != nil {
		b = AppendStrings(b, "targets", t.Targets)
	}
	if t.Processes != nil {
		b = appendInt(b, "processes", int64(*t.Processes))
	}
	return b
}

func (t *Target) decode(r *reader) {
	t.Op, t.Reason, t.Cgroup, t.CgroupID = r.string("op"), r.string("reason"), r.bytes("cgroup"), r.uint("cgroup_id")
	if r.o.has("targets") {
		t.Targets = r.strings("targets")
	}
	if r.o.has("processes") {
		n := int(r.int("processes"))
		t.Processes = &n
	}
}

// Reload: the daemon re-read its configuration.
type Reload struct {
	Status       string // applied, rejected
	Config       string
	ConfigSHA256 string
	Error        string   // rejected: why
	Changed      []string // applied: the keys that changed (possibly none)
	NeedsRestart []string // changed keys that take effect only at a restart
	Targets      []string // applied: the target patterns now in force
}

// Type is "reload".
func (*Reload) Type() string { return "reload" }

func (rl *Reload) appendBody(b []byte) []byte {
	b = appendASCII(b, "status", rl.Status)
	b = AppendString(b, "config", rl.Config)
	b = appendASCII(b, "config_sha256", rl.ConfigSHA256)
	if rl.Error != "" {
		b = AppendString(b, "error", rl.Error)
	}
	if rl.Changed != nil {
		b = AppendStrings(b, "changed", rl.Changed)
	}
	if len(rl.NeedsRestart) > 0 {
		b = AppendStrings(b, "needs_restart", rl.NeedsRestart)
	}
	if rl.Targets != nil {
		b = AppendStrings(b, "targets", rl.Targets)
	}
	return b
}

func (rl *Reload) decode(r *reader) {
	rl.Status, rl.Config, rl.ConfigSHA256, rl.Error = r.string("status"), r.bytes("config"), r.string("config_sha256"), r.bytes("error")
	if r.o.has("changed") {
		rl.Changed = r.strings("changed")
	}
	rl.NeedsRestart = r.strings("needs_restart")
	if r.o.has("targets") {
		rl.Targets = r.strings("targets")
	}
}

// Snapshot is a process that was already running when its cgroup became
// traced, as /proc showed it then.
type Snapshot struct {
	Pid, Ppid                  int
	Uid, Gid, Euid, Egid, Auid uint32
	Comm                       string
	Exe                        string // "" when unreadable (Errors says why)
	Argv                       []string
	Cwd                        string // "" when unreadable
	StartTime                  uint64 // ns since boot, truncated to StartTimeResolution
	StartTimeResolution        uint64
	Cgroup                     string
	Sockets                    []Socket
	Errors                     []string
}

// Socket is one socket a snapshot process held.
type Socket struct {
	Fd       int
	Inode    uint64
	Family   string // inet, inet6, unix
	Proto    string // tcp, udp, stream, dgram, seqpacket
	State    string
	Src, Dst netip.AddrPort
	Unix     UnixKind // UnixPath or UnixAbstract, when the socket has a name
	UnixName string
	Peer     uint64 // a unix socket's peer inode
}

// Type is "snapshot".
func (*Snapshot) Type() string { return "snapshot" }

func (s *Snapshot) appendBody(b []byte) []byte {
	b = appendInt(b, "pid", int64(s.Pid))
	b = appendInt(b, "ppid", int64(s.Ppid))
	b = appendUint(b, "uid", uint64(s.Uid))
	b = appendUint(b, "gid", uint64(s.Gid))
	b = appendUint(b, "euid", uint64(s.Euid))
	b = appendUint(b, "egid", uint64(s.Egid))
	b = appendUint(b, "auid", uint64(s.Auid))
	b = AppendString(b, "comm", s.Comm)
	if s.Exe != "" {
		b = AppendString(b, "exe", s.Exe)
	}
	b = AppendStrings(b, "argv", s.Argv)
	if s.Cwd != "" {
		b = AppendString(b, "cwd", s.Cwd)
	}
	b = appendUint(b, "start_time", s.StartTime)
	b = appendUint(b, "start_time_resolution_ns", s.StartTimeResolution)
	if s.Cgroup != "" {
		b = AppendString(b, "cgroup", s.Cgroup)
	}
	if len(s.Sockets) > 0 {
		b = append(appendKey(b, "sockets"), '[')
		for i := range s.Sockets {
			if i > 0 {
				b = append(b, ',')
			}
			b = s.Sockets[i].append(b)
		}
		b = append(b, ']')
	}
	if len(s.Errors) > 0 {
		b = AppendStrings(b, "errors", s.Errors)
	}
	return b
}

func (s *Snapshot) decode(r *reader) {
	s.Pid, s.Ppid = int(r.int("pid")), int(r.int("ppid"))
	s.Uid, s.Gid, s.Euid, s.Egid, s.Auid = r.uint32("uid"), r.uint32("gid"), r.uint32("euid"), r.uint32("egid"), r.uint32("auid")
	s.Comm, s.Exe, s.Argv, s.Cwd = r.bytes("comm"), r.bytes("exe"), r.strings("argv"), r.bytes("cwd")
	s.StartTime, s.StartTimeResolution = r.uint("start_time"), r.uint("start_time_resolution_ns")
	s.Cgroup, s.Errors = r.bytes("cgroup"), r.strings("errors")
	var raws []json.RawMessage
	r.into("sockets", &raws)
	for _, raw := range raws {
		o, err := parseObject(raw)
		if err != nil {
			r.fail(fmt.Errorf("sockets: %w", err))
			return
		}
		sr := &reader{o: o}
		var sock Socket
		sock.decode(sr)
		r.done(sr)
		s.Sockets = append(s.Sockets, sock)
	}
}

func (s *Socket) append(b []byte) []byte {
	b = appendInt(append(b, '{'), "fd", int64(s.Fd))
	b = appendUint(b, "inode", s.Inode)
	if s.Family != "" {
		b = appendASCII(b, "family", s.Family)
	}
	b = appendASCII(b, "proto", s.Proto)
	if s.State != "" {
		b = appendASCII(b, "state", s.State)
	}
	if s.Src.Addr().IsValid() {
		b = appendAddrPort(b, "src", s.Src)
	}
	if s.Dst.Addr().IsValid() {
		b = appendAddrPort(b, "dst", s.Dst)
	}
	switch s.Unix {
	case UnixAbstract:
		// As in connect records: the abstract name is every byte after the
		// leading NUL, NULs included.
		b = AppendString(b, "unix_abstract", s.UnixName)
	case UnixPath:
		b = AppendString(b, "unix_path", s.UnixName)
	}
	if s.Peer != 0 {
		b = appendUint(b, "peer_inode", s.Peer)
	}
	return append(b, '}')
}

func (s *Socket) decode(r *reader) {
	s.Fd, s.Inode = int(r.int("fd")), r.uint("inode")
	s.Family, s.Proto, s.State = r.string("family"), r.string("proto"), r.string("state")
	s.Src, s.Dst = r.addrPort("src"), r.addrPort("dst")
	switch {
	case r.o.has("unix_abstract"):
		s.Unix, s.UnixName = UnixAbstract, r.bytes("unix_abstract")
	case r.o.has("unix_path"):
		s.Unix, s.UnixName = UnixPath, r.bytes("unix_path")
	}
	s.Peer = r.uint("peer_inode")
}

// appendAddrPort appends "<prefix>_addr" (dotted quad or RFC 5952 text,
// IPv4-mapped as ::ffff:a.b.c.d) and "<prefix>_port".
func appendAddrPort(b []byte, prefix string, ap netip.AddrPort) []byte {
	b = append(appendKey(b, prefix+"_addr"), '"')
	b = append(ap.Addr().AppendTo(b), '"')
	return appendUint(b, prefix+"_port", uint64(ap.Port()))
}

func (r *reader) addrPort(prefix string) netip.AddrPort {
	s := r.string(prefix + "_addr")
	if s == "" {
		return netip.AddrPort{}
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		r.fail(fmt.Errorf("%s_addr: %w", prefix, err))
	}
	return netip.AddrPortFrom(ip, uint16(r.uint(prefix+"_port")))
}
