package ocsf

// native is the part of a native record (docs/schema.md) the mapping reads.
// Strings are readable forms, decoded; exact bytes (_b64 members) and
// everything else stay in the embedded record.
type native struct {
	Seq  uint64   `json:"seq"`
	Time string   `json:"time"`
	Host string   `json:"host"`
	Type string   `json:"type"`
	Proc *proc    `json:"proc"`
	Tags []string `json:"tags"`

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
}

// kernel reports the record types that describe a process's event and
// carry proc.
func (r *native) kernel() bool {
	switch r.Type {
	case "exec", "open", "connect", "fork", "exit":
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

type startRecord struct {
	AgenttraceVersion string   `json:"agenttrace_version"`
	PID               int64    `json:"pid"`
	UID               int64    `json:"uid"`
	Argv              []string `json:"argv"`
}

type stopRecord struct {
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
