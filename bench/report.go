package bench

import (
	"time"
)

// Condition ids, in the order of issue 5's numbering, then the conditions
// added since (numbered after it, so that a number keeps its meaning).
const (
	CondNone     = "none"
	CondTraced   = "agenttrace"
	CondUntraced = "agenttrace-untraced"
	CondAuditd   = "auditd"
	CondSnoop    = "libbpf-tools"
	// CondDaemonUntraced is `agenttrace daemon` (glob targets) running while
	// the workload is in a cgroup it does not trace: what every process on
	// a host that is not an agent pays.
	CondDaemonUntraced = "agenttrace-daemon-untraced"
)

var conditionTitles = []struct{ ID, Title string }{
	{CondNone, "no tracer"},
	{CondTraced, "agenttrace, workload traced"},
	{CondUntraced, "agenttrace running, workload untraced"},
	{CondAuditd, "auditd with rules for the same syscalls"},
	{CondSnoop, "libbpf-tools opensnoop / execsnoop"},
	{CondDaemonUntraced, "agenttrace daemon, workload untraced"},
}

// ConditionIDs lists every condition, in report order.
func ConditionIDs() []string {
	ids := make([]string, len(conditionTitles))
	for i, c := range conditionTitles {
		ids[i] = c.ID
	}
	return ids
}

func conditionNumber(id string) int {
	for i, c := range conditionTitles {
		if c.ID == id {
			return i + 1
		}
	}
	return 0
}

func conditionTitle(id string) string {
	return conditionTitles[conditionNumber(id)-1].Title
}

// Report is one run of the harness: results.json, rendered as BENCHMARKS.md.
type Report struct {
	Schema          int       `json:"schema"`
	Machine         Machine   `json:"machine"`
	Command         string    `json:"command"`
	HarnessArgs     []string  `json:"harness_args"`
	Started         time.Time `json:"started"`
	DurationSeconds float64   `json:"duration_seconds"`
	Settings        Settings  `json:"settings"`

	Conditions []Condition      `json:"conditions"`
	Workloads  []WorkloadResult `json:"workloads"`
	// Slices is every slice run, warm-up included, in the order run.
	Slices []*Slice `json:"slices"`

	// PhaseSeconds is how long each part of the run took.
	PhaseSeconds map[string]float64 `json:"phase_seconds"`

	RateSearch      *RateSearch   `json:"rate_search,omitempty"`
	RateSearchError string        `json:"rate_search_error,omitempty"`
	GoBench         []GoBenchmark `json:"go_bench,omitempty"`
	GoBenchError    string        `json:"go_bench_error,omitempty"`
	// HotPathProfile is the CPU profile of BenchmarkHotPath: its top
	// functions by own time.
	HotPathProfile []PprofLine `json:"hot_path_profile,omitempty"`
	Profile        []Profile   `json:"profile,omitempty"`
	// Sustained and RealWork summarise those phases' slices.
	Sustained             *PhaseResult      `json:"sustained,omitempty"`
	RealWork              []PhaseResult     `json:"real_work,omitempty"`
	SustainedProfile      *SustainedProfile `json:"sustained_profile,omitempty"`
	SustainedProfileError string            `json:"sustained_profile_error,omitempty"`
	ProfileError          string            `json:"profile_error,omitempty"`
	AgenttraceCPU         *AgenttraceCPU    `json:"agenttrace_cpu,omitempty"`
	ForeignTracers        ForeignTracers    `json:"foreign_tracers"`
	Targets               []Target          `json:"targets"`
	Notes                 []string          `json:"notes,omitempty"`
	Cleanup               []string          `json:"cleanup_errors,omitempty"`
}

// Settings are the knobs of the run.
type Settings struct {
	Rounds       int      `json:"rounds"`
	WarmupRounds int      `json:"warmup_rounds"`
	SliceMs      int64    `json:"slice_ms"`
	MaxOps       int64    `json:"max_ops_per_slice,omitempty"`
	RateTrialMs  int64    `json:"rate_trial_ms,omitempty"`
	AuditBacklog int      `json:"audit_backlog_limit"`
	Workloads    []string `json:"workloads"`
	// The sustained load: each slice's length, and rounds (no warm-up).
	SustainedMs     int64 `json:"sustained_ms,omitempty"`
	SustainedRounds int   `json:"sustained_rounds,omitempty"`
	// The real-work suite: its jobs, rounds after one warm-up round, and
	// the size of the C project.
	RealWork       []string `json:"real_work,omitempty"`
	RealWorkRounds int      `json:"real_work_rounds,omitempty"`
	CFiles         int      `json:"c_files,omitempty"`
}

// Condition says whether a condition ran, and if not, why.
type Condition struct {
	ID     string `json:"id"`
	Number int    `json:"number"`
	Title  string `json:"title"`
	Ran    bool   `json:"ran"`
	Reason string `json:"reason,omitempty"` // why it did not run, or stopped
	Detail string `json:"detail,omitempty"` // versions, settings
}

// Slice is one run of one workload under one condition.
type Slice struct {
	// Phase is "" for the interleaved rounds' short slices, PhaseSustained
	// or PhaseRealWork.
	Phase     string  `json:"phase,omitempty"`
	Round     int     `json:"round"` // 0 is the warm-up
	Warmup    bool    `json:"warmup,omitempty"`
	Workload  string  `json:"workload"`
	Condition string  `json:"condition"`
	Pid       int     `json:"pid"`
	Ops       int64   `json:"ops"`
	Ns        int64   `json:"ns"`
	NsPerOp   float64 `json:"ns_per_op"`
	// CPUNsPerOp is the workload's own CPU time (and its children's) per
	// operation: the wall time less what it spent waiting for a CPU.
	CPUNsPerOp float64          `json:"cpu_ns_per_op"`
	Errors     int64            `json:"errors"`
	Extra      map[string]int64 `json:"extra,omitempty"`
	Start      time.Time        `json:"start"`
	End        time.Time        `json:"end"`
	// ForeignTracers is how many other agenttrace instances (another
	// engineer's tests) had their programs loaded when the slice began.
	ForeignTracers int          `json:"foreign_tracers"`
	Events         *SliceEvents `json:"events,omitempty"`
	// TracerCPUNs is the CPU time (user and system) the tracer's own
	// processes used from the workload's start until the tracer had written
	// what the workload made: agenttrace's process; auditd and kauditd;
	// the libbpf-tools programs. Their eBPF programs run in the workload's
	// syscalls, so that time is in CPUNsPerOp, not here.
	TracerCPUNs int64 `json:"tracer_cpu_ns,omitempty"`
	// DrainMs is how long, after the workload ended, the tracer took to
	// write what it had made; the next slice starts after it.
	DrainMs float64 `json:"drain_ms,omitempty"`
	// DrainSettled: agenttrace's log never showed the workload's exit
	// record (lost), so the wait ended when the log stopped growing.
	DrainSettled bool `json:"drain_settled,omitempty"`
}

// SliceEvents is what the condition's tracer wrote for the slice's workload.
type SliceEvents struct {
	Written int64            `json:"written"`         // records (agenttrace), events (auditd), lines (libbpf-tools)
	Lost    int64            `json:"lost"`            // as the tracer counts its losses
	Lines   int64            `json:"lines,omitempty"` // auditd: log lines of those events
	ByType  map[string]int64 `json:"by_type,omitempty"`
}

// WorkloadResult is one workload under every condition.
type WorkloadResult struct {
	Name       string       `json:"name"`
	Title      string       `json:"title"`
	Conditions []CondResult `json:"conditions"`
}

// CondResult summarises the measured (not warm-up) slices of one workload
// under one condition.
type CondResult struct {
	Condition     string  `json:"condition"`
	Number        int     `json:"number"`
	Ran           bool    `json:"ran"`
	Reason        string  `json:"reason,omitempty"`
	Slices        int     `json:"slices"`
	Ops           int64   `json:"ops"`
	MedianNsPerOp float64 `json:"median_ns_per_op"`
	MinNsPerOp    float64 `json:"min_ns_per_op"`
	MaxNsPerOp    float64 `json:"max_ns_per_op"`
	// Ratio is the median over rounds of this slice's ns/op over the no-tracer
	// slice's of the same round; RatioMin and RatioMax are their extremes.
	Ratio    float64 `json:"ratio,omitempty"`
	RatioMin float64 `json:"ratio_min,omitempty"`
	RatioMax float64 `json:"ratio_max,omitempty"`
	// The same for the workload's CPU time per operation, which the other
	// load on the machine disturbs less.
	MedianCPUNsPerOp float64 `json:"median_cpu_ns_per_op"`
	CPURatio         float64 `json:"cpu_ratio,omitempty"`
	CPURatioMin      float64 `json:"cpu_ratio_min,omitempty"`
	CPURatioMax      float64 `json:"cpu_ratio_max,omitempty"`
	// Events, when the condition has a tracer.
	HasEvents bool  `json:"has_events"`
	Written   int64 `json:"events_written"`
	Lost      int64 `json:"events_lost"`
	Lines     int64 `json:"lines,omitempty"`
}

// RateSearch is the highest openat rate agenttrace (default settings) keeps
// up with without loss, and the loss at twice that rate.
type RateSearch struct {
	Workload        string      `json:"workload"`
	TrialMs         int64       `json:"trial_ms"`
	MaxRate         float64     `json:"max_rate"`        // ops/s of the workload at full speed, traced
	FullSpeedLost   int64       `json:"full_speed_lost"` // lost at full speed (worst trial)
	ZeroLossRate    float64     `json:"zero_loss_rate"`  // highest achieved rate with nothing lost
	TwiceExceedsMax bool        `json:"twice_exceeds_max"`
	Twice           *RateTrial  `json:"twice,omitempty"` // the trial at twice the zero-loss rate
	Trials          []RateTrial `json:"trials"`
}

// RateTrial is one `agenttrace run` of the rate-limited openat workload.
type RateTrial struct {
	TargetRate   float64          `json:"target_rate"` // 0: full speed
	AchievedRate float64          `json:"achieved_rate"`
	Ops          int64            `json:"ops"`
	Written      int64            `json:"open_records"`
	Lost         int64            `json:"lost"`
	LostByKind   map[string]int64 `json:"lost_by_kind,omitempty"`
}

// GoBenchmark is one Go benchmark, the median of its -count runs.
type GoBenchmark struct {
	Package string             `json:"package"`
	Name    string             `json:"name"`
	Runs    int                `json:"runs"`
	Metrics map[string]float64 `json:"metrics"` // by unit: ns/op, ns/event, B/op, allocs/op, MB/s
}

// PprofLine is one row of `go tool pprof -top`.
type PprofLine struct {
	Function string  `json:"function"`
	FlatPct  float64 `json:"flat_pct"`
	CumPct   float64 `json:"cum_pct"`
}

// Profile is where the time of one workload goes with agenttrace loaded:
// the kernel's run time of each eBPF program (BPF statistics on) per
// workload operation.
type Profile struct {
	Workload   string        `json:"workload"`
	Conditions []ProfileCond `json:"conditions"`
}

// ProfileCond is one profiled slice.
type ProfileCond struct {
	Condition  string        `json:"condition"`
	Ops        int64         `json:"ops"`
	NsPerOp    float64       `json:"ns_per_op"` // with statistics on, so a little slower
	BPFNsPerOp float64       `json:"bpf_ns_per_op"`
	Hooks      []ProfileHook `json:"hooks"`
}

// ProfileHook is one eBPF program over one profiled slice. Its runs include
// every other process's on the host (sys_enter and sys_exit fire for all).
type ProfileHook struct {
	Program  string  `json:"program"`
	Runs     int64   `json:"runs"`
	Ns       int64   `json:"ns"`
	NsPerRun float64 `json:"ns_per_run"`
	NsPerOp  float64 `json:"ns_per_op"`
}

// AgenttraceCPU is the CPU time agenttrace's user space spent per record,
// over every session of the interleaved run.
type AgenttraceCPU struct {
	Seconds     float64 `json:"seconds"`
	Records     int64   `json:"records"`
	NsPerRecord float64 `json:"ns_per_record"`
}

// ForeignTracers counts slices that ran while another agenttrace was loaded.
type ForeignTracers struct {
	Slices int `json:"slices"`
	Of     int `json:"of"`
}

// Target is one of issue 5's targets and whether this run met it.
type Target struct {
	Name     string `json:"name"`
	Want     string `json:"want"`
	Measured string `json:"measured"`
	Status   string `json:"status"` // met, not met, not measured
	// CPUStatus is the verdict of a ratio target on the workload's CPU time
	// per operation, which the machine's other load disturbs less.
	CPUStatus string `json:"cpu_status,omitempty"`
	Note      string `json:"note,omitempty"`
}

// Target statuses.
const (
	Met         = "met"
	NotMet      = "not met"
	NotMeasured = "not measured"
)

// SustainedProfile is where agenttrace's CPU goes under the sustained
// openat load: one more traced sustained slice, BPF statistics on and
// agenttrace's user space under the Go CPU profiler.
type SustainedProfile struct {
	Ops         int64   `json:"ops"`
	NsPerOp     float64 `json:"ns_per_op"`
	CPUNsPerOp  float64 `json:"cpu_ns_per_op"`
	Records     int64   `json:"records"`
	TracerCPUNs int64   `json:"tracer_cpu_ns"`
	DrainMs     float64 `json:"drain_ms"`
	// UserNsPerRecord is agenttrace's process CPU time (user and system)
	// per record of the workload.
	UserNsPerRecord float64       `json:"user_ns_per_record"`
	BPFNsPerOp      float64       `json:"bpf_ns_per_op"`
	Hooks           []ProfileHook `json:"hooks"`
	// The CPU profile's top functions, by own time and by cumulative time.
	PprofFlat  []PprofLine `json:"pprof_flat,omitempty"`
	PprofCum   []PprofLine `json:"pprof_cum,omitempty"`
	PprofError string      `json:"pprof_error,omitempty"`
}

// PhaseResult is one workload (the sustained openat load, or a real-work
// job) under each condition of its phase.
type PhaseResult struct {
	Name       string           `json:"name"`
	Title      string           `json:"title"`
	Conditions []PhaseCondition `json:"conditions"`
}

// PhaseCondition summarises the measured slices of one workload under one
// condition of a phase. Ratios are to the no-tracer slice of the same
// round: the median over rounds and its extremes.
type PhaseCondition struct {
	Condition string  `json:"condition"`
	Ran       bool    `json:"ran"`
	Reason    string  `json:"reason,omitempty"`
	Slices    int     `json:"slices"`
	Ops       int64   `json:"ops"`
	NsPerOp   float64 `json:"median_ns_per_op"`
	Ratio     float64 `json:"ratio,omitempty"`
	RatioMin  float64 `json:"ratio_min,omitempty"`
	RatioMax  float64 `json:"ratio_max,omitempty"`
	// CPUNsPerOp is the workload's own CPU time per operation (median);
	// CPUExtraNsPerOp the median over rounds of its excess over no
	// tracer's: the tracer's work in the workload's syscalls.
	CPUNsPerOp      float64 `json:"median_cpu_ns_per_op"`
	CPURatio        float64 `json:"cpu_ratio,omitempty"`
	CPUExtraNsPerOp float64 `json:"cpu_extra_ns_per_op,omitempty"`
	// TracerNsPerOp is the tracer's own processes' CPU time per operation,
	// over all measured slices; TracerNsPerEvent the same per event written.
	TracerNsPerOp    float64 `json:"tracer_ns_per_op,omitempty"`
	TracerNsPerEvent float64 `json:"tracer_ns_per_event,omitempty"`
	// TotalExtraNsPerOp is CPUExtraNsPerOp + TracerNsPerOp: all the CPU
	// time the tracer costs per operation.
	TotalExtraNsPerOp float64 `json:"total_extra_ns_per_op,omitempty"`
	DrainMs           float64 `json:"median_drain_ms,omitempty"`
	HasEvents         bool    `json:"has_events"`
	Written           int64   `json:"events_written"`
	Lost              int64   `json:"events_lost"`
	Lines             int64   `json:"lines,omitempty"`
}
