package ocsf

import (
	"fmt"
	"strings"

	"github.com/agenttrace/agenttrace/internal/record"
)

// The escape records (docs/ocsf.md, "Escapes"): moves between cgroups and
// accesses to other processes are Process Activity, changes to names and
// mounts File System Activity, tamper records Event Log Activity.

// Activity ids of the escape records (OCSF 1.3.0 enums).
const (
	processOpen   = 3
	processInject = 4

	fileCreate      = 1
	fileUpdate      = 3
	fileDelete      = 4
	fileRename      = 5
	fileSetSecurity = 7
	fileMount       = 12
	fileUnmount     = 13
)

func init() {
	activityNames[processActivity][processOpen] = "Open"
	activityNames[processActivity][processInject] = "Inject"
	for id, name := range map[int]string{fileCreate: "Create", fileUpdate: "Update", fileDelete: "Delete", fileRename: "Rename",
		fileSetSecurity: "Set Security", fileMount: "Mount", fileUnmount: "Unmount"} {
		activityNames[fileSystemActivity][id] = name
	}
}

// classifyEscape classifies an escape record; false for other records.
func (e *event) classifyEscape(pid string) bool {
	r := e.r
	switch x := r.Body.(type) {
	case *record.CgroupMove:
		e.class = processActivity
		e.status = statusOfRet(x.Ret)
		if x.Attempt {
			// A launch into another cgroup that the kernel refused.
			e.activityID = processLaunch
			e.severityID = severityMedium
			e.message = fmt.Sprintf("clone3 into cgroup %s%s%s", cgroupName(x.ToCgroupID, x.ToCgroup), outcome(e.status), pid)
			break
		}
		e.activityID, e.activityName = activityOther, "Move"
		e.severityID = severityMedium
		from := "a cgroup it was not traced in"
		if x.FromKnown {
			from = cgroupName(x.FromCgroupID, x.FromCgroup)
		}
		e.message = fmt.Sprintf("cgroup move: pid %d moved pid %d from %s to %s", r.Proc.Pid, x.Pid, from, cgroupName(x.ToCgroupID, x.ToCgroup))
		if x.Traced {
			e.message += ", still traced"
		}
	case *record.ProcAccess:
		e.class = processActivity
		e.status = statusOfRet(x.Ret)
		switch x.Syscall {
		case "ptrace", "process_vm_writev":
			e.activityID = processInject
		case "process_vm_readv", "pidfd_open":
			e.activityID = processOpen
		default:
			e.activityID, e.activityName = activityOther, "Signal"
		}
		what := x.Syscall
		switch {
		case x.Syscall == "ptrace":
			what = "ptrace " + record.PtraceRequestName(x.Request)
		case x.Syscall != "process_vm_readv" && x.Syscall != "process_vm_writev" && x.Syscall != "pidfd_open":
			what = fmt.Sprintf("%s %s", x.Syscall, record.SignalName(int(x.Signal)))
			if x.Signal == 0 {
				what = x.Syscall + " signal 0"
			}
		}
		target := fmt.Sprintf("pid %d", x.Pid)
		if x.Syscall == "pidfd_send_signal" {
			target = fmt.Sprintf("pidfd %d", x.Pidfd)
		}
		if t := &x.Target; t.Found {
			where := "traced"
			if !t.Traced {
				where = "outside the trace"
				e.severityID = severityMedium
			}
			target = fmt.Sprintf("pid %d (%s, %s)", t.Pid, t.Comm, where)
		}
		e.message = what + " of " + target + outcome(e.status) + pid
		if x.Tainted {
			e.severityID = severityHigh
			e.message += "; the target is taken over and traced from now on"
		}
	case *record.FileOp:
		e.class = fileSystemActivity
		e.status = statusOfRet(x.Ret)
		switch x.Syscall {
		case "rename", "renameat", "renameat2":
			e.activityID = fileRename
		case "unlink", "unlinkat", "rmdir":
			e.activityID = fileDelete
		case "link", "linkat", "symlink", "symlinkat":
			e.activityID = fileCreate
		case "truncate", "ftruncate":
			e.activityID = fileUpdate
		default: // chmod, chown families
			e.activityID = fileSetSecurity
		}
		e.message = x.Syscall + " " + fileOpSubject(x) + outcome(e.status) + pid
		if r.HasTag(record.TagCredentialAccess) {
			e.message = "credential access: " + e.message
		}
	case *record.Mount:
		e.class = fileSystemActivity
		e.status = statusOfRet(x.Ret)
		switch x.Syscall {
		case "mount", "move_mount", "fsmount", "pivot_root":
			e.activityID = fileMount
		case "umount", "umount2":
			e.activityID = fileUnmount
		default: // fsopen, fsconfig, mount_setattr
			e.activityID, e.activityName = activityOther, x.Syscall
		}
		e.message = x.Syscall + " " + mountPoint(x) + outcome(e.status) + pid
	case *record.Namespace:
		e.class, e.activityID, e.activityName = processActivity, activityOther, x.Syscall
		e.status = statusOfRet(x.Ret)
		e.message = x.Syscall + " " + strings.Join(record.CloneFlagNames(x.Flags), "|") + outcome(e.status) + pid
	case *record.BPF:
		e.class, e.activityID, e.activityName = processActivity, activityOther, "Bpf"
		e.severityID = severityMedium
		e.status = statusOfRet(x.Ret)
		e.message = "bpf " + record.BPFCmdName(x.Cmd) + outcome(e.status) + pid
	case *record.Tamper:
		e.class, e.activityID, e.activityName = eventLogActivity, activityOther, "Tamper"
		e.severityID = severityHigh
		e.status = status{set: true, id: statusFailure, code: x.What,
			detail: "the kernel state agenttrace set was changed by someone else"}
		e.message = "tamper: " + x.What + " changed"
		if x.What == "cgroup_states" {
			e.message += " for cgroup " + cgroupName(x.CgroupID, x.Cgroup)
		}
		if x.Restored {
			e.message += "; restored"
		}
	default:
		return false
	}
	if e.activityID != activityOther {
		e.activityName = activityNames[e.class][e.activityID]
	}
	return true
}

func cgroupName(id uint64, path string) string {
	if path != "" {
		return path
	}
	return fmt.Sprintf("id %d", id)
}

// fileOpSubject is the file a file_op acts on, as the record names it.
func fileOpSubject(x *record.FileOp) string {
	switch {
	case x.File.Present:
		return x.File.Path
	case x.Path.Unreadable:
		return "(unreadable path)"
	case x.Syscall == "symlink" || x.Syscall == "symlinkat":
		return joinDir(x.NewDir, x.NewPath.Path)
	}
	return joinDir(x.Dir, x.Path.Path)
}

func joinDir(dir record.Dir, name string) string {
	if dir.Present {
		return strings.TrimSuffix(dir.Path, "/") + "/" + name
	}
	return name
}

func mountPoint(m *record.Mount) string {
	switch {
	case m.HasTarget && !m.Target.Unreadable:
		return m.Target.Path
	case m.HasFstype && !m.Fstype.Unreadable:
		return m.Fstype.Path
	}
	return fmt.Sprintf("fd %d", m.Fd)
}

// appendEscape writes the primary attributes of an escape record; false
// for other records.
func (e *event) appendEscape(b []byte) ([]byte, bool) {
	switch x := e.r.Body.(type) {
	case *record.CgroupMove:
		b = appendActor(b, e.self())
		moved := &process{pid: int64(x.Pid), tid: int64(x.Tid), uid: x.ExecID.String()}
		if x.Attempt {
			moved = e.self()
		}
		b = appendProcess(b, "process", moved)
	case *record.ProcAccess:
		b = appendActor(b, e.self())
		target := &process{pid: int64(x.Pid)}
		if t := &x.Target; t.Found {
			target = &process{pid: int64(t.Pid), tid: int64(t.Tid), uid: t.ExecID.String(), name: t.Comm, exe: t.Exe, exeType: fileRegular}
			e.observe("process.name", observableProcessName, t.Comm)
		}
		if !x.Target.Found {
			// Not found, or a process group or every process (pid <= 0):
			// the pid as passed is all there is.
			target.uid = fmt.Sprintf("pid %d as passed", x.Pid)
			if x.Syscall == "pidfd_send_signal" {
				target.uid = fmt.Sprintf("pidfd %d", x.Pidfd)
			}
		}
		b = appendProcess(b, "process", target)
	case *record.FileOp:
		b = appendActor(b, e.self())
		subject := fileOpSubject(x)
		typeID := fileUnknown
		if x.File.Present {
			typeID = fileTypeOfMode(x.File.Mode)
		}
		b = appendFile(b, "file", subject, typeID)
		e.observe("file.name", observableFileName, baseName(subject))
		switch x.Syscall {
		case "rename", "renameat", "renameat2", "link", "linkat":
			b = appendFile(b, "file_result", joinDir(x.NewDir, x.NewPath.Path), fileUnknown)
		}
	case *record.Mount:
		b = appendActor(b, e.self())
		b = appendFile(b, "file", mountPoint(x), fileFolder)
	case *record.Namespace, *record.BPF:
		b = appendActor(b, e.self())
		b = appendProcess(b, "process", e.self())
	case *record.Tamper:
		b = e.appendLog(b)
	default:
		return b, false
	}
	return b, true
}
