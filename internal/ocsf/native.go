package ocsf

// native is the part of a native record (docs/schema.md) the mapping reads.
// Strings are readable forms, decoded; exact bytes (_b64 members) and
// everything else stay in the embedded record.
type native struct {
	Seq   uint64   `json:"seq"`
	Time  string   `json:"time"`
	Ktime uint64   `json:"ktime"`
	Host  string   `json:"host"`
	Type  string   `json:"type"`
	Proc  *proc    `json:"proc"`
	Tags  []string `json:"tags"`

	Exec       *execRecord       `json:"exec"`
	Open       *openRecord       `json:"open"`
	Connect    *connectRecord    `json:"connect"`
	Fork       *forkRecord       `json:"fork"`
	Exit       *exitRecord       `json:"exit"`
	Start      *startRecord      `json:"start"`
	Stop       *stopRecord       `json:"stop"`
	Header     *headerRecord     `json:"header"`
	Checkpoint *checkpointRecord `json:"checkpoint"`
	Recovery   *recoveryRecord   `json:"recovery"`
	Gap        *gapRecord        `json:"gap"`
	Heartbeat  *heartbeatRecord  `json:"heartbeat"`
	Freeze     *freezeRecord     `json:"freeze"`
	Thaw       *thawRecord       `json:"thaw"`
	Cgroup     *cgroupRecord     `json:"cgroup"`
	Target     *targetRecord     `json:"target"`
	Reload     *reloadRecord     `json:"reload"`
	Snapshot   *snapshotRecord   `json:"snapshot"`
}

// kernel reports the record types that describe a process's event and
// carry proc (for cgroup, the process that made or removed the directory).
func (r *native) kernel() bool {
	switch r.Type {
	case "exec", "open", "connect", "fork", "exit", "cgroup":
		return true
	}
	return false
}

type proc struct {
	PID          int64  `json:"pid"`
	TID          int64  `json:"tid"`
	EUID         int64  `json:"euid"`
	Comm         string `json:"comm"`
	Exe          string `json:"exe"`
	ExecID       string `json:"exec_id"`
	ParentExecID string `json:"parent_exec_id"`
	ToolCall     string `json:"tool_call"`
}

type execRecord struct {
	Filename string `json:"filename"`
	Exe      string `json:"exe"`
	ExeFile  *struct {
		Mode string `json:"mode"`
	} `json:"exe_file"`
	Argv  []string `json:"argv"`
	Ret   int64    `json:"ret"`
	Errno string   `json:"errno"`
}

type openRecord struct {
	Path  string   `json:"path"`
	Flags []string `json:"flags"`
	FD    *int64   `json:"fd"`
	Ret   int64    `json:"ret"`
	Errno string   `json:"errno"`
}

type connectRecord struct {
	Family         string  `json:"family"`
	FamilyNum      *int64  `json:"family_num"`
	Addr           string  `json:"addr"`
	Port           *int64  `json:"port"`
	UnixPath       *string `json:"unix_path"`
	UnixAbstract   *string `json:"unix_abstract"`
	UnixUnnamed    bool    `json:"unix_unnamed"`
	AddrUnreadable bool    `json:"addr_unreadable"`
	Ret            int64   `json:"ret"`
	Errno          string  `json:"errno"`
}

type forkRecord struct {
	ChildPID      int64  `json:"child_pid"`
	ChildExecID   string `json:"child_exec_id"`
	ChildToolCall string `json:"child_tool_call"`
}

type exitRecord struct {
	Code       *int64 `json:"code"`
	Signal     string `json:"signal"`
	SignalNum  int64  `json:"signal_num"`
	CoreDumped bool   `json:"core_dumped"`
}

// startRecord is a run session's start, or the daemon's (Mode "daemon":
// no command, a configuration instead).
type startRecord struct {
	Mode              string   `json:"mode"`
	AgenttraceVersion string   `json:"agenttrace_version"`
	PID               int64    `json:"pid"`
	UID               int64    `json:"uid"`
	Argv              []string `json:"argv"`
	Config            string   `json:"config"`
	Targets           []string `json:"targets"`
	ExcludedCgroup    string   `json:"excluded_cgroup"`
}

// stopRecord is a run session's stop, or the daemon's (Mode "daemon": no
// exit code, an uptime instead).
type stopRecord struct {
	Mode              string            `json:"mode"`
	UptimeNS          uint64            `json:"uptime_ns"`
	Reason            string            `json:"reason"`
	ExitCode          int64             `json:"exit_code"`
	Error             string            `json:"error"`
	LeftRunning       int64             `json:"left_running"`
	LeftRunningAction string            `json:"left_running_action"`
	Lost              map[string]uint64 `json:"lost"`
}

type headerRecord struct {
	AgenttraceVersion string `json:"agenttrace_version"`
	LogID             string `json:"log_id"`
	Segment           int64  `json:"segment"`
	Continues         *struct {
		SegmentFile string `json:"segment_file"`
		LastSeq     uint64 `json:"last_seq"`
	} `json:"continues"`
}

type checkpointRecord struct {
	LogID string `json:"log_id"`
	Size  uint64 `json:"size"`
	Final bool   `json:"final"`
}

type recoveryRecord struct {
	SegmentFile     string `json:"segment_file"`
	AfterSeq        uint64 `json:"after_seq"`
	UnsignedRecords uint64 `json:"unsigned_records"`
	TornBytes       uint64 `json:"torn_bytes"`
}

type gapRecord struct {
	Stage  string            `json:"stage"`
	Reason string            `json:"reason"`
	CPU    *int64            `json:"cpu"`
	Lost   map[string]uint64 `json:"lost"`
	From   string            `json:"from"`
	To     string            `json:"to"`
}

type heartbeatRecord struct {
	Records uint64 `json:"records"`
	Ring    struct {
		Size uint64 `json:"size"`
		Used uint64 `json:"used"`
	} `json:"ring"`
}

type freezeRecord struct {
	Reason string `json:"reason"`
}

type thawRecord struct {
	Reason   string `json:"reason"`
	FrozenNS int64  `json:"frozen_ns"`
}

type cgroupRecord struct {
	Op            string   `json:"op"`
	Path          string   `json:"path"`
	Matched       bool     `json:"matched"`
	Targets       []string `json:"targets"`
	StateFull     bool     `json:"state_full"`
	PathTruncated bool     `json:"path_truncated"`
}

type targetRecord struct {
	Op        string   `json:"op"`
	Reason    string   `json:"reason"`
	Cgroup    string   `json:"cgroup"`
	Targets   []string `json:"targets"`
	Processes int64    `json:"processes"`
}

type reloadRecord struct {
	Status       string   `json:"status"`
	Config       string   `json:"config"`
	Error        string   `json:"error"`
	Changed      []string `json:"changed"`
	NeedsRestart []string `json:"needs_restart"`
	Targets      []string `json:"targets"`
}

type snapshotRecord struct {
	PID       int64      `json:"pid"`
	PPID      int64      `json:"ppid"`
	EUID      int64      `json:"euid"`
	Comm      string     `json:"comm"`
	Exe       string     `json:"exe"`
	Argv      []string   `json:"argv"`
	StartTime uint64     `json:"start_time"`
	Cgroup    string     `json:"cgroup"`
	Sockets   []struct{} `json:"sockets"` // counted; the record has them
	Errors    []string   `json:"errors"`
}
