// Package ocsf maps agenttrace audit records to OCSF 1.3.0 events
// (docs/ocsf.md): one native record in, one OCSF event out. Kernel records
// become Process, File System and Network Activity, and a daemon's snapshot
// of a process already running is Process Activity too; the start and stop
// of a session or daemon, and a daemon's reload, become Application
// Lifecycle; the log's own records (header, checkpoint, recovery, gap,
// heartbeat, freeze, thaw) and the changes of what a daemon traces (cgroup,
// target) become Event Log Activity. Every event carries the native record,
// byte for byte, as unmapped.agenttrace, so nothing the record says is lost
// in translation and its hash chain can still be checked from the exported
// events.
//
// It reads nothing but the line it is given, and it must never alter the
// native record: the OCSF attributes are a view of it, never a replacement.
package ocsf

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/record"
)

// Version is the OCSF schema version of the events (metadata.version).
const Version = "1.3.0"

// Product names agenttrace in metadata.product and app.
const Product = "agenttrace"

// Meta is what an event needs that its record does not say about itself.
type Meta struct {
	// LogID is the log's id (its header's log_id): metadata.uid is
	// "<LogID>:<seq>", the record's dedupe key with the host.
	LogID string
	// ProductVersion is the agenttrace version for metadata.product.version;
	// omitted when "".
	ProductVersion string
}

// Map returns the OCSF event of one native record (a trailing newline is
// allowed).
func Map(line []byte, m Meta) ([]byte, error) {
	return Append(nil, line, m)
}

// Append appends the OCSF event of one native record to dst. On error dst is
// returned unchanged.
func Append(dst, line []byte, m Meta) ([]byte, error) {
	line = trimNewline(line)
	r, err := record.Decode(line)
	if err != nil {
		return dst, fmt.Errorf("ocsf: parsing the record: %w", err)
	}
	when, err := time.Parse(time.RFC3339Nano, r.Time)
	if err != nil {
		return dst, fmt.Errorf("ocsf: record %d: time %q: %w", r.Seq, r.Time, err)
	}
	if r.Type == "" {
		return dst, errors.New("ocsf: the record has no type")
	}
	if record.IsKernel(r.Type) && r.Proc == nil {
		return dst, fmt.Errorf("ocsf: %s record %d has no proc object", r.Type, r.Seq)
	}
	if record.NewBody(r.Type) != nil && r.Body == nil {
		return dst, fmt.Errorf("ocsf: %s record %d has no %s object", r.Type, r.Seq, r.Type)
	}
	e := event{r: r, meta: m, time: when}
	if err := e.classify(); err != nil {
		return dst, err
	}
	return e.append(dst, line), nil
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

// class is an OCSF event class and its category.
type class struct {
	uid          int
	name         string
	categoryUID  int
	categoryName string
}

var (
	fileSystemActivity   = class{1001, "File System Activity", 1, "System Activity"}
	processActivity      = class{1007, "Process Activity", 1, "System Activity"}
	eventLogActivity     = class{1008, "Event Log Activity", 1, "System Activity"}
	networkActivity      = class{4001, "Network Activity", 4, "Network Activity"}
	applicationLifecycle = class{6002, "Application Lifecycle", 6, "Application Activity"}
	baseEvent            = class{0, "Base Event", 0, "Uncategorized"}
)

// Activity ids used, by class (OCSF 1.3.0 enums). 99 (Other) takes its
// activity_name from the record type.
const (
	activityOther = 99

	processLaunch    = 1
	processTerminate = 2

	fileOpen = 14

	networkOpen  = 1
	networkClose = 2

	appStart = 3
	appStop  = 4

	logRotate  = 5
	logStart   = 6
	logStop    = 7
	logRestart = 8
	logEnable  = 9
	logDisable = 10
)

var activityNames = map[class]map[int]string{
	processActivity:      {processLaunch: "Launch", processTerminate: "Terminate"},
	fileSystemActivity:   {fileOpen: "Open"},
	networkActivity:      {networkOpen: "Open", networkClose: "Close"},
	applicationLifecycle: {appStart: "Start", appStop: "Stop"},
	eventLogActivity: {logRotate: "Rotate", logStart: "Start", logStop: "Stop", logRestart: "Restart",
		logEnable: "Enable", logDisable: "Disable"},
}

// Severity ids (severity_id) and their captions.
const (
	severityInformational = 1
	severityLow           = 2
	severityMedium        = 3
	severityHigh          = 4
)

var severityNames = map[int]string{1: "Informational", 2: "Low", 3: "Medium", 4: "High"}

// Status ids (status_id) and their captions.
const (
	statusUnknown = 0
	statusSuccess = 1
	statusFailure = 2
	statusOther   = 99
)

var statusNames = map[int]string{0: "Unknown", 1: "Success", 2: "Failure", 99: "Other"}

// status is the outcome of the recorded activity.
type status struct {
	set    bool
	id     int
	code   string // status_code: the errno name
	detail string // status_detail
}

// restartErrnos are the kernel-internal results of a syscall interrupted by
// a signal or the freezer: the kernel restarted it, and the restart is the
// thread's next record (docs/schema.md, exec).
var restartErrnos = []string{"ERESTARTSYS", "ERESTARTNOINTR", "ERESTARTNOHAND", "ENOIOCTLCMD", "ERESTART_RESTARTBLOCK"}

// statusOfRet is the status of a syscall's return value.
func statusOfRet(ret int64) status {
	errno := record.Errno(ret)
	switch {
	case ret >= 0:
		return status{set: true, id: statusSuccess}
	case slices.Contains(restartErrnos, errno):
		return status{set: true, id: statusOther, code: errno,
			detail: "interrupted and restarted by the kernel: the restart is the thread's next record"}
	}
	detail := ""
	if ret >= -4095 {
		detail = syscall.Errno(-ret).Error()
	}
	return status{set: true, id: statusFailure, code: errno, detail: detail}
}

// event is one OCSF event being built from a native record.
type event struct {
	r    *record.Record
	meta Meta
	time time.Time

	class        class
	activityID   int
	activityName string // for activityOther
	severityID   int
	status       status
	message      string
	startTime    int64 // ms, 0: absent
	endTime      int64
	correlation  string
	logName      string // metadata.log_name
	observables  []observable
}

type observable struct {
	name     string
	typeID   int
	typeName string
	value    string
}

// Observable type ids (OCSF 1.3.0 observable.type_id).
const (
	observableHostname    = 1
	observableIP          = 2
	observableFileName    = 7
	observableProcessName = 9
	observablePort        = 11
)

var observableNames = map[int]string{1: "Hostname", 2: "IP Address", 7: "File Name", 9: "Process Name", 11: "Port"}

func (e *event) observe(name string, typeID int, value string) {
	if value != "" {
		e.observables = append(e.observables, observable{name, typeID, observableNames[typeID], value})
	}
}

// classify chooses the class, activity, severity and status and writes the
// message.
func (e *event) classify() error {
	r := e.r
	e.severityID = severityInformational
	if e.meta.LogID == "" {
		// The log's own records name it.
		switch body := r.Body.(type) {
		case *record.Header:
			e.meta.LogID = body.LogID
		case *record.Checkpoint:
			e.meta.LogID = body.LogID
		}
	}
	e.logName = Product
	if e.meta.LogID != "" {
		e.logName = Product + "/" + e.meta.LogID
	}
	if r.Proc != nil && !r.Proc.ToolCall.IsZero() {
		e.correlation = r.Proc.ToolCall.String()
	}
	pid := func() string {
		if r.Proc == nil {
			return ""
		}
		return " (pid " + strconv.FormatUint(uint64(r.Proc.Pid), 10) + ")"
	}
	if e.classifyNet() || e.classifyEscape(pid()) {
		return nil
	}
	switch x := r.Body.(type) {
	case *record.Exec:
		e.class, e.activityID = processActivity, processLaunch
		e.status = statusOfRet(x.Ret)
		target := x.Exe
		if x.Ret < 0 || target == "" {
			target = x.Filename
		}
		e.message = "exec " + target + outcome(e.status) + pid()
	case *record.Fork:
		e.class, e.activityID = processActivity, processLaunch
		e.status = status{set: true, id: statusSuccess}
		e.message = fmt.Sprintf("fork: pid %d created pid %d", r.Proc.Pid, x.ChildPid)
		if x.ChildToolCall {
			e.correlation = x.ChildExecID.String()
			e.message += ", starting tool call " + e.correlation
		}
	case *record.Exit:
		e.class, e.activityID = processActivity, processTerminate
		e.status = status{set: true, id: statusSuccess}
		if sig := x.Signal(); sig != 0 {
			e.message = fmt.Sprintf("exit: pid %d killed by %s", r.Proc.Pid, record.SignalName(sig))
		} else {
			e.message = fmt.Sprintf("exit: pid %d exited with code %d", r.Proc.Pid, x.Code())
		}
		if x.Signal() != 0 && x.Status&0x80 != 0 {
			e.message += " (core dumped)"
		}
	case *record.Open:
		e.class, e.activityID = fileSystemActivity, fileOpen
		e.status = statusOfRet(x.Ret)
		e.message = "open " + x.Path + outcome(e.status) + pid()
		if x.File.Present && x.File.Path != x.Path {
			e.message = "open " + x.Path + " (" + x.File.Path + ")" + outcome(e.status) + pid()
		}
		if x.Ret >= 0 {
			e.message += ": fd " + strconv.FormatInt(x.Ret, 10)
		}
		if r.HasTag(record.TagCredentialAccess) {
			e.message = "credential access: " + e.message
		}
	case *record.Connect:
		e.class, e.activityID = networkActivity, networkOpen
		if x.Addr.HasFamily && x.Addr.Family == unix.AF_UNSPEC {
			e.activityID = networkClose // connect(AF_UNSPEC) dissolves an association
		}
		e.status = statusOfRet(x.Ret)
		if errno := record.Errno(x.Ret); errno == "EINPROGRESS" {
			e.status = status{set: true, id: statusUnknown, code: errno,
				detail: "non-blocking connect in progress: its outcome is the sock_state record of the same connection_info.uid"}
		}
		e.message = "connect " + addrText(&x.Addr, x.AddrUnreadable) + outcome(e.status) + pid()
	case *record.Start:
		e.class, e.activityID = applicationLifecycle, appStart
		e.status = status{set: true, id: statusSuccess}
		if x.Mode == record.ModeDaemon {
			e.message = "daemon started: config " + x.Config + ", targets " + strings.Join(x.Targets, ", ")
			if x.ExcludedCgroup != "" {
				e.message += "; its own cgroup " + x.ExcludedCgroup + " is excluded"
			}
		} else {
			e.message = "session started: " + strings.Join(x.Argv, " ")
		}
	case *record.Stop:
		e.class, e.activityID = applicationLifecycle, appStop
		e.status = status{set: true, id: statusSuccess}
		if x.Error != "" {
			e.status = status{set: true, id: statusFailure, detail: x.Error}
		}
		if x.Mode == record.ModeDaemon {
			uptime := time.Duration(max(x.UptimeNs, 0))
			e.message = fmt.Sprintf("daemon stopped: %s, after %s", x.Reason, uptime.Round(time.Millisecond))
		} else {
			e.message = fmt.Sprintf("session ended: %s, exit code %d", x.Reason, x.ExitCode)
		}
		if x.LeftRunning > 0 {
			e.message += fmt.Sprintf("; %d processes left running, %s", x.LeftRunning, x.LeftRunningAction)
		}
		if len(x.Lost) > 0 {
			e.message += "; events lost: " + lostText(x.Lost)
		}
	case *record.Reload:
		// Not Restart: the daemon and its tracing run on through a reload.
		e.class, e.activityID, e.activityName = applicationLifecycle, activityOther, "Reload"
		if x.Status != "applied" {
			// What is in force is no longer what the file says.
			e.severityID = severityMedium
			e.status = status{set: true, id: statusFailure, detail: x.Error}
			e.message = "configuration " + x.Config + " rejected, the previous one stays in force: " + x.Error
			break
		}
		e.status = status{set: true, id: statusSuccess}
		e.message = "configuration " + x.Config + " reloaded: "
		if len(x.Changed) > 0 {
			e.message += "changed " + strings.Join(x.Changed, ", ")
		} else {
			e.message += "nothing changed"
		}
		if len(x.NeedsRestart) > 0 {
			e.status.detail = "in force only after a restart: " + strings.Join(x.NeedsRestart, ", ")
			e.message += "; " + e.status.detail
		}
		e.message += "; targets " + strings.Join(x.Targets, ", ")
	case *record.Snapshot:
		e.class, e.activityID, e.activityName = processActivity, activityOther, "Snapshot"
		e.status = status{set: true, id: statusSuccess}
		e.message = fmt.Sprintf("snapshot: pid %d (%s) already running", x.Pid, x.Comm)
		if x.Cgroup != "" {
			e.message += " in " + x.Cgroup
		}
		if n := len(x.Sockets); n > 0 {
			e.message += ", " + plural(n, "socket") + " open"
		}
		if len(x.Errors) > 0 {
			// Written anyway, without what could not be read.
			e.status.detail = "not read: " + strings.Join(x.Errors, "; ")
			e.message += "; " + e.status.detail
		}
	case *record.Cgroup:
		e.class = eventLogActivity
		e.status = status{set: true, id: statusSuccess}
		switch x.Op {
		case "mkdir":
			e.activityID = logEnable
			e.message = "cgroup " + x.Path + " created" + pid() + ": "
			switch {
			case x.StateFull:
				e.severityID = severityHigh
				e.status = status{set: true, id: statusFailure, code: "state_full",
					detail: "the kernel's table of cgroup states is full: this cgroup is not traced"}
				e.message += "NOT traced, the kernel's table of cgroup states is full"
			case x.Matched:
				e.message += "traced, it matches " + strings.Join(x.Targets, ", ")
			default:
				e.message += "traced, below a traced cgroup"
			}
		case "rmdir":
			e.activityID = logDisable
			e.message = "traced cgroup " + x.Path + " removed" + pid()
		default:
			e.activityID, e.activityName = activityOther, x.Op
			e.message = "cgroup " + x.Path + ": " + x.Op + pid()
		}
		if x.PathTruncated {
			e.message += " (path truncated)"
		}
	case *record.Target:
		e.class = eventLogActivity
		e.status = status{set: true, id: statusSuccess}
		when := "at daemon start"
		if x.Reason == "reload" {
			when = "after a reload"
		}
		switch x.Op {
		case "add":
			e.activityID = logEnable
			procs := 0
			if x.Processes != nil {
				procs = *x.Processes
			}
			e.message = fmt.Sprintf("tracing cgroup %s %s: it matches %s; %s already in it",
				x.Cgroup, when, strings.Join(x.Targets, ", "), plural(procs, "process"))
		case "remove":
			e.activityID = logDisable
			e.message = "no longer tracing cgroup " + x.Cgroup + " " + when
		default:
			e.activityID, e.activityName = activityOther, x.Op
			e.message = "target " + x.Op + ": cgroup " + x.Cgroup + " " + when
		}
	case *record.Header:
		e.class = eventLogActivity
		e.status = status{set: true, id: statusSuccess}
		e.logName = Product + "/" + x.LogID
		if x.Continues == nil {
			e.activityID = logStart
			e.message = fmt.Sprintf("log %s started by agenttrace %s", x.LogID, x.AgenttraceVersion)
		} else {
			e.activityID = logRotate
			e.message = fmt.Sprintf("log %s: segment %d continues after seq %d of %s", x.LogID, x.Segment, x.Continues.LastSeq, x.Continues.SegmentFile)
		}
	case *record.Checkpoint:
		e.class = eventLogActivity
		e.status = status{set: true, id: statusSuccess}
		e.logName = Product + "/" + x.LogID
		if x.Final {
			e.activityID = logStop
			e.message = fmt.Sprintf("log %s closed: final checkpoint over lines 1-%d", x.LogID, x.Size)
		} else {
			e.activityID, e.activityName = activityOther, "Checkpoint"
			e.message = fmt.Sprintf("log %s: checkpoint over lines 1-%d", x.LogID, x.Size)
		}
	case *record.Recovery:
		e.class, e.activityID = eventLogActivity, logRestart
		e.status = status{set: true, id: statusSuccess}
		e.severityID = severityMedium
		e.message = fmt.Sprintf("log continued after an unclean stop: %s ends at seq %d with %d unsigned records", x.SegmentFile, x.AfterSeq, x.Unsigned)
		if x.TornBytes > 0 {
			e.message += fmt.Sprintf(" and a torn line of %d bytes", x.TornBytes)
		}
	case *record.Gap:
		e.class, e.activityID, e.activityName = eventLogActivity, activityOther, "Gap"
		e.severityID = severityHigh
		e.status = status{set: true, id: statusFailure, code: x.Stage, detail: x.Reason}
		e.message = "events lost (" + lostText(x.Lost) + "): " + x.Stage + " stage, " + x.Reason
		if x.CPU >= 0 {
			e.message += ", CPU " + strconv.Itoa(x.CPU)
		}
		e.startTime, e.endTime = x.From.UnixMilli(), x.To.UnixMilli()
	case *record.Heartbeat:
		e.class, e.activityID, e.activityName = eventLogActivity, activityOther, "Heartbeat"
		e.status = status{set: true, id: statusSuccess}
		e.message = fmt.Sprintf("heartbeat: %d records written; ring buffer %d of %d bytes used", x.Records, x.RingUsed, x.RingSize)
	case *record.Freeze:
		e.class, e.activityID, e.activityName = eventLogActivity, activityOther, "Freeze"
		e.severityID = severityMedium
		e.status = status{set: true, id: statusSuccess, detail: x.Reason}
		e.message = "session processes frozen (fail-closed): " + x.Reason
	case *record.Thaw:
		e.class, e.activityID, e.activityName = eventLogActivity, activityOther, "Thaw"
		e.status = status{set: true, id: statusSuccess, detail: x.Reason}
		e.message = fmt.Sprintf("session processes thawed after %s: %s", time.Duration(x.FrozenNs), x.Reason)
	default:
		// A type this version does not know: still exported, whole.
		e.class, e.activityID, e.activityName = baseEvent, activityOther, r.Type
		e.message = "agenttrace record of type " + r.Type
	}
	if e.activityID != activityOther {
		e.activityName = activityNames[e.class][e.activityID]
	}
	return nil
}

// outcome is the part of a message that says how a syscall ended.
func outcome(s status) string {
	if s.id == statusSuccess {
		return ""
	}
	if s.id == statusUnknown {
		return " (" + s.code + ")"
	}
	return " failed: " + s.code
}

// lostText lists per-kind counts in the schema's kind order, then any other.
func lostText(lost record.Counts) string {
	lostOrder := record.LossNames()
	var parts []string
	for _, k := range lostOrder {
		if n, ok := lost[k]; ok {
			parts = append(parts, k+" "+strconv.FormatUint(n, 10))
		}
	}
	var others []string
	for k := range lost {
		if !slices.Contains(lostOrder, k) {
			others = append(others, k)
		}
	}
	slices.Sort(others)
	for _, k := range others {
		parts = append(parts, k+" "+strconv.FormatUint(lost[k], 10))
	}
	return strings.Join(parts, ", ")
}

// plural is "1 process", "2 processes".
func plural(n int, noun string) string {
	if n != 1 {
		if strings.HasSuffix(noun, "s") {
			noun += "es"
		} else {
			noun += "s"
		}
	}
	return strconv.Itoa(n) + " " + noun
}

// Bounds of string_t (OCSF: at most 65535 characters) and of messages.
const (
	maxString  = 65535
	maxMessage = 4096
)

// truncate cuts s to at most n bytes on a character boundary, marking the
// cut with "…" (3 bytes, within n).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// append writes the event. Members follow the OCSF attribute groups:
// classification, occurrence, primary, context; the native record last.
func (e *event) append(b, line []byte) []byte {
	r := e.r
	b = append(b, '{')
	b = appendInt(b, "class_uid", int64(e.class.uid))
	b = appendString(b, "class_name", e.class.name)
	b = appendInt(b, "category_uid", int64(e.class.categoryUID))
	b = appendString(b, "category_name", e.class.categoryName)
	b = appendInt(b, "activity_id", int64(e.activityID))
	b = appendString(b, "activity_name", e.activityName)
	b = appendInt(b, "type_uid", int64(e.class.uid*100+e.activityID))
	typeName := activityNames[e.class][e.activityID]
	if e.activityID == activityOther {
		typeName = "Other"
	}
	b = appendString(b, "type_name", e.class.name+": "+typeName)
	b = appendInt(b, "severity_id", int64(e.severityID))
	b = appendString(b, "severity", severityNames[e.severityID])
	if e.status.set {
		b = appendInt(b, "status_id", int64(e.status.id))
		b = appendString(b, "status", statusNames[e.status.id])
		if e.status.code != "" {
			b = appendString(b, "status_code", e.status.code)
		}
		if e.status.detail != "" {
			b = appendString(b, "status_detail", truncate(e.status.detail, maxMessage))
		}
	}
	b = appendInt(b, "time", e.time.UnixMilli())
	b = appendInt(b, "timezone_offset", 0) // time is UTC
	if e.startTime != 0 || e.endTime != 0 {
		b = appendInt(b, "start_time", e.startTime)
		b = appendInt(b, "end_time", e.endTime)
	}
	b = appendString(b, "message", truncate(e.message, maxMessage))
	b = e.appendMetadata(b)
	if e.class != baseEvent {
		// The host profile's device (and actor, below) are not Base Event
		// attributes.
		b = e.appendDevice(b)
	}
	var escaped bool
	if b, escaped = e.appendEscape(b); !escaped {
		switch x := r.Body.(type) {
		case *record.Exec:
			b = e.appendExec(b, x)
		case *record.Fork:
			b = e.appendFork(b, x)
		case *record.Exit:
			b = e.appendExit(b, x)
		case *record.Open:
			b = e.appendOpen(b, x)
		case *record.Connect, *record.Send, *record.Bind, *record.Listen, *record.Accept, *record.SockState, *record.DNS:
			b = e.appendNet(b)
		case *record.Snapshot:
			b = e.appendSnapshot(b, x)
		case *record.Start, *record.Stop, *record.Reload:
			b = e.appendApp(b)
		case *record.Header, *record.Checkpoint, *record.Recovery, *record.Gap, *record.Heartbeat, *record.Freeze, *record.Thaw, *record.Cgroup, *record.Target:
			b = e.appendLog(b)
		}
	}
	if len(e.observables) > 0 {
		b = append(appendKey(b, "observables"), '[')
		for i, o := range e.observables {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			b = appendString(b, "name", o.name)
			b = appendInt(b, "type_id", int64(o.typeID))
			b = appendString(b, "type", o.typeName)
			b = appendString(b, "value", o.value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(appendKey(b, "unmapped"), '{')
	b = append(appendKey(b, "agenttrace"), line...)
	return append(b, '}', '}')
}

func (e *event) appendMetadata(b []byte) []byte {
	r := e.r
	b = append(appendKey(b, "metadata"), '{')
	b = appendString(b, "version", Version)
	b = append(appendKey(b, "product"), '{')
	b = appendString(b, "name", Product)
	b = appendString(b, "vendor_name", Product)
	if e.meta.ProductVersion != "" {
		b = appendString(b, "version", e.meta.ProductVersion)
	}
	b = append(b, '}')
	if e.class != baseEvent {
		b = append(appendKey(b, "profiles"), '[', '"', 'h', 'o', 's', 't', '"', ']')
	}
	uid := e.meta.LogID + ":" + strconv.FormatUint(r.Seq, 10)
	b = appendString(b, "uid", uid)
	if r.Seq <= maxInteger {
		b = appendInt(b, "sequence", int64(r.Seq))
	}
	b = appendString(b, "event_code", r.Type)
	b = appendString(b, "log_name", e.logName)
	b = appendString(b, "log_provider", Product)
	b = appendString(b, "original_time", r.Time)
	if e.correlation != "" {
		b = appendString(b, "correlation_uid", e.correlation)
	}
	if len(r.Tags) > 0 {
		b = record.AppendStrings(b, "labels", r.Tags)
	}
	return append(b, '}')
}

// maxInteger bounds OCSF integer_t (32 bits); larger values are left to
// the native record.
const maxInteger = 1<<31 - 1

func (e *event) appendDevice(b []byte) []byte {
	b = append(appendKey(b, "device"), '{')
	if validHostname(e.r.Host) {
		b = appendString(b, "hostname", e.r.Host)
		e.observe("device.hostname", observableHostname, e.r.Host)
	} else {
		b = appendString(b, "name", e.r.Host)
	}
	b = appendInt(b, "type_id", 0)
	b = appendString(b, "type", "Unknown")
	b = append(appendKey(b, "os"), '{')
	b = appendString(b, "name", "Linux")
	b = appendInt(b, "type_id", 200)
	b = appendString(b, "type", "Linux")
	return append(b, '}', '}')
}

// validHostname reports whether s is an OCSF hostname_t: dot-separated
// labels of letters, digits and inner hyphens.
func validHostname(s string) bool {
	if s == "" {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// process is an OCSF process object.
type process struct {
	pid     int64 // 0: absent
	tid     int64
	uid     string
	name    string
	exe     string
	exeType int // file.type_id of exe
	cmdLine string
	user    *int64
	created int64 // created_time, ms; 0: absent
	parent  *process
}

// self is the record's own process.
func (e *event) self() *process {
	p := e.r.Proc
	euid := int64(p.Euid)
	return &process{pid: int64(p.Pid), tid: int64(p.Tid), uid: p.ExecID.String(), name: p.Comm, exe: p.Exe, exeType: fileRegular,
		user: &euid, parent: creator(p.ParentExecID)}
}

// ref is a reference to the record's own process: its pid and exec_id.
func (e *event) ref() *process {
	return &process{pid: int64(e.r.Proc.Pid), uid: e.r.Proc.ExecID.String()}
}

// creator is the process image that created a process.
func creator(id record.ExecID) *process {
	if id.IsZero() {
		return nil
	}
	return &process{uid: id.String(), pid: int64(id.Pid)}
}

// File type ids (file.type_id) from st_mode.
const (
	fileUnknown = 0
	fileRegular = 1
	fileFolder  = 2
)

var fileTypeNames = map[int]string{0: "Unknown", 1: "Regular File", 2: "Folder", 3: "Character Device",
	4: "Block Device", 5: "Local Socket", 6: "Named Pipe", 7: "Symbolic Link"}

// fileTypeOfMode maps the file type bits of an st_mode.
func fileTypeOfMode(m uint32) int {
	switch m & 0o170000 {
	case 0o100000:
		return 1
	case 0o040000:
		return 2
	case 0o020000:
		return 3
	case 0o060000:
		return 4
	case 0o140000:
		return 5
	case 0o010000:
		return 6
	case 0o120000:
		return 7
	}
	return fileUnknown
}

func appendProcess(b []byte, key string, p *process) []byte {
	b = append(appendKey(b, key), '{')
	if p.pid != 0 {
		b = appendInt(b, "pid", p.pid)
	}
	if p.tid != 0 {
		b = appendInt(b, "tid", p.tid)
	}
	if p.uid != "" {
		b = appendString(b, "uid", p.uid)
	}
	if p.name != "" {
		b = appendString(b, "name", p.name)
	}
	if p.cmdLine != "" {
		b = appendString(b, "cmd_line", truncate(p.cmdLine, maxString))
	}
	if p.exe != "" {
		b = appendFile(b, "file", p.exe, p.exeType)
	}
	if p.user != nil {
		b = appendUser(b, "user", *p.user)
	}
	if p.created != 0 {
		b = appendInt(b, "created_time", p.created)
	}
	if p.parent != nil {
		b = appendProcess(b, "parent_process", p.parent)
	}
	return append(b, '}')
}

func appendFile(b []byte, key, filePath string, typeID int) []byte {
	b = append(appendKey(b, key), '{')
	b = appendString(b, "name", baseName(filePath))
	b = appendString(b, "path", filePath)
	b = appendInt(b, "type_id", int64(typeID))
	b = appendString(b, "type", fileTypeNames[typeID])
	return append(b, '}')
}

// baseName is the last component of a path as passed ("" stays "").
func baseName(p string) string {
	if p == "" {
		return ""
	}
	return path.Base(p)
}

func appendUser(b []byte, key string, uid int64) []byte {
	b = append(appendKey(b, key), '{')
	b = appendString(b, "uid", strconv.FormatInt(uid, 10))
	return append(b, '}')
}

// appendActor writes actor: a process and, when known, its user.
func appendActor(b []byte, p *process) []byte {
	b = append(appendKey(b, "actor"), '{')
	b = appendProcess(b, "process", p)
	if p.user != nil {
		b = appendUser(b, "user", *p.user)
	}
	return append(b, '}')
}

// exec: the process is the image that exec produced (success) or the
// caller, unchanged (failure), with the file it ran or tried to run; the
// actor is the image that created the process.
func (e *event) appendExec(b []byte, x *record.Exec) []byte {
	p := e.self()
	p.cmdLine = strings.Join(x.Argv(), " ")
	switch {
	case x.Ret >= 0 && x.Exe != "":
		p.exe, p.exeType = x.Exe, fileTypeOfMode(x.ExeFile.Mode)
	case x.Ret < 0:
		p.exe, p.exeType = x.Filename, fileUnknown
	}
	actor := p.parent
	if actor == nil {
		actor = e.ref()
	}
	b = appendActor(b, actor)
	b = appendProcess(b, "process", p)
	e.observe("process.name", observableProcessName, p.name)
	e.observe("process.file.name", observableFileName, baseName(p.exe))
	return b
}

// fork: the actor is the parent, the process the new child, which runs the
// parent's program under the parent's credentials.
func (e *event) appendFork(b []byte, f *record.Fork) []byte {
	parent := e.self()
	euid := int64(e.r.Proc.Euid)
	child := &process{pid: int64(f.ChildPid), uid: f.ChildExecID.String(), name: parent.name, exe: parent.exe, exeType: fileRegular,
		user: &euid, parent: e.ref()}
	b = appendActor(b, parent)
	b = appendProcess(b, "process", child)
	e.observe("process.name", observableProcessName, child.name)
	return b
}

// exit: the process is the one that ended. The record does not say who
// sent a fatal signal, so the actor is the process itself.
func (e *event) appendExit(b []byte, x *record.Exit) []byte {
	b = appendActor(b, e.ref())
	b = appendProcess(b, "process", e.self())
	b = appendInt(b, "exit_code", exitCode(x))
	e.observe("process.name", observableProcessName, e.r.Proc.Comm)
	return b
}

// exitCode is the exit code as a shell reports it: 128 + the signal number
// for a process killed by a signal (as stop.exit_code).
func exitCode(x *record.Exit) int64 {
	if sig := x.Signal(); sig != 0 {
		return 128 + int64(sig)
	}
	return int64(x.Code())
}

func (e *event) appendOpen(b []byte, o *record.Open) []byte {
	b = appendActor(b, e.self())
	typeID := fileUnknown
	// O_TMPFILE holds O_DIRECTORY's bit: it opens a file, not a folder.
	if o.Ret >= 0 && o.Flags&unix.O_DIRECTORY != 0 && o.Flags&unix.O_TMPFILE != unix.O_TMPFILE {
		typeID = fileFolder
	}
	// The file the kernel opened, when the record has it; else the path
	// as passed.
	path := o.Path
	if o.File.Present {
		path = o.File.Path
	}
	b = appendFile(b, "file", path, typeID)
	e.observe("file.name", observableFileName, baseName(path))
	return b
}

var ipVersionNames = map[int]string{4: "Internet Protocol version 4 (IPv4)", 6: "Internet Protocol version 6 (IPv6)"}

// ipOf is the destination address and its IP version: an IPv4-mapped IPv6
// address is the IPv4 address it carries on the wire.
func ipOf(s *record.Sockaddr) (netip.Addr, int) {
	if !s.Addr.IsValid() {
		return netip.Addr{}, 0
	}
	a := s.Addr.Addr().Unmap()
	if a.Is4() {
		return a, 4
	}
	return a, 6
}

// snapshot: the process is the one read from /proc, and agenttrace, which
// read it, is the actor. /proc gives its start only to 10 ms, not its
// exec_id, so the process has no uid; its sockets stay in the record (OCSF
// 1.3.0 has no socket list on a process).
func (e *event) appendSnapshot(b []byte, s *record.Snapshot) []byte {
	euid := int64(s.Euid)
	p := &process{pid: int64(s.Pid), name: s.Comm, exe: s.Exe, exeType: fileRegular,
		cmdLine: strings.Join(s.Argv, " "), user: &euid, created: e.bootMillis(s.StartTime)}
	if s.Ppid > 0 { // 0: the parent is outside agenttrace's pid namespace
		p.parent = &process{pid: int64(s.Ppid)}
	}
	b = append(appendKey(b, "actor"), '{')
	b = appendString(b, "app_name", Product)
	b = append(b, '}')
	b = appendProcess(b, "process", p)
	e.observe("process.name", observableProcessName, p.name)
	e.observe("process.file.name", observableFileName, baseName(p.exe))
	return b
}

// bootMillis converts a CLOCK_BOOTTIME instant (ns, as ktime) to ms since
// the epoch, through the record's own pair of ktime and time; 0 when it
// cannot.
func (e *event) bootMillis(ns uint64) int64 {
	k := e.r.Ktime
	if ns == 0 || ns > k || k-ns > math.MaxInt64 {
		return 0
	}
	return e.time.Add(-time.Duration(k - ns)).UnixMilli()
}

// start, stop and reload: the application is agenttrace; start names who
// ran it.
func (e *event) appendApp(b []byte) []byte {
	version := e.meta.ProductVersion
	if s, ok := e.r.Body.(*record.Start); ok {
		version = s.AgenttraceVersion
		uid := int64(s.Uid)
		b = appendActor(b, &process{pid: int64(s.Pid), name: Product, user: &uid})
	}
	b = append(appendKey(b, "app"), '{')
	b = appendString(b, "name", Product)
	b = appendString(b, "vendor_name", Product)
	if version != "" {
		b = appendString(b, "version", version)
	}
	return append(b, '}')
}

// The log's own records and the changes of what it traces: log_name is the
// log (agenttrace/<log_id>, as in the checkpoint notes), recovery names the
// segment it recovered, and a cgroup record the process that made or removed
// the directory.
func (e *event) appendLog(b []byte) []byte {
	if e.r.Type == "cgroup" {
		b = appendActor(b, e.self())
	}
	if x, ok := e.r.Body.(*record.Recovery); ok {
		b = appendFile(b, "file", x.SegmentFile, fileRegular)
	}
	b = appendString(b, "log_name", e.logName)
	b = appendString(b, "log_provider", Product)
	return b
}

// appendKey appends `,"key":` (the comma only if the object already has a
// member), as internal/record does.
func appendKey(b []byte, key string) []byte {
	if n := len(b); n > 0 && b[n-1] != '{' && b[n-1] != '[' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

func appendInt(b []byte, key string, v int64) []byte {
	return strconv.AppendInt(appendKey(b, key), v, 10)
}

// appendString writes a string with the native log's escaping (docs/schema.md,
// "Exactness"), so an OCSF event is as safe to display as its record: no
// raw control, bidi or invisible format character. Bytes that are not UTF-8
// are written in their readable form (\xNN) and no _b64 sibling is ever
// written: the exact bytes are in the native record, in unmapped.
func appendString(b []byte, key, v string) []byte {
	return record.AppendString(b, key, record.Readable(v))
}
