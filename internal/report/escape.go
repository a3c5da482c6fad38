package report

import (
	"fmt"
	"strings"

	"github.com/agenttrace/agenttrace/internal/record"
)

// Action is one escape record of a process (docs/schema.md): a cgroup
// move, an access to another process, a change to a name or a file's
// metadata, a mount, a namespace change, a bpf(2) call. The report shows
// every one: they are rare, and each can change what the rest of the log
// means.
type Action struct {
	Type  string `json:"type"` // the record type
	Text  string `json:"text"` // what happened, in words
	Errno string `json:"errno,omitempty"`
	// Alert marks what an investigator must see first: a process outside
	// the session taken over, a process moved out of the session's
	// cgroup, a bpf(2) call.
	Alert bool     `json:"alert,omitempty"`
	Tags  []string `json:"tags,omitempty"`
	Seq   uint64   `json:"seq"`
}

// action describes an escape record, or returns nil for other records.
func action(r *record.Record) *Action {
	a := &Action{Type: r.Type, Seq: r.Seq, Tags: r.Tags}
	switch body := r.Body.(type) {
	case *record.CgroupMove:
		a.Errno, a.Alert = record.Errno(body.Ret), true
		if body.Attempt {
			a.Text = "clone3 into cgroup " + cgroupText(body.ToCgroupID, body.ToCgroup)
			break
		}
		what := "process"
		if !body.Threadgroup {
			what = fmt.Sprintf("thread %d of", body.Tid)
		}
		from := "(from a cgroup not known)"
		if body.FromKnown {
			from = "from " + cgroupText(body.FromCgroupID, body.FromCgroup)
		}
		a.Text = fmt.Sprintf("moved %s pid %d %s to %s", what, body.Pid, from, cgroupText(body.ToCgroupID, body.ToCgroup))
		if !body.Traced {
			a.Text += " (not traced there)"
		}
	case *record.ProcAccess:
		a.Errno = record.Errno(body.Ret)
		a.Text = accessText(body)
		a.Alert = body.Tainted || !body.Target.Traced
	case *record.FileOp:
		a.Errno = record.Errno(body.Ret)
		a.Text = fileOpText(body)
	case *record.Mount:
		a.Errno = record.Errno(body.Ret)
		a.Text = mountText(body)
	case *record.Namespace:
		a.Errno = record.Errno(body.Ret)
		a.Text = body.Syscall + " " + strings.Join(record.CloneFlagNames(body.Flags), "|")
		if body.Syscall == "setns" {
			a.Text = fmt.Sprintf("setns fd %d %s", body.Fd, strings.Join(record.CloneFlagNames(body.Flags), "|"))
		}
	case *record.BPF:
		a.Errno, a.Alert = record.Errno(body.Ret), true
		a.Text = "bpf " + bpfText(body)
	default:
		return nil
	}
	return a
}

func cgroupText(id uint64, path string) string {
	if path != "" {
		return record.Readable(path)
	}
	return fmt.Sprintf("id %d", id)
}

func targetText(t *record.AccessTarget) string {
	if !t.Found {
		return ""
	}
	name := record.Readable(t.Comm)
	if t.Exe != "" {
		name += " " + record.Readable(t.Exe)
	}
	where := "outside the trace"
	if t.Traced {
		where = "traced"
	}
	return fmt.Sprintf(" (%s, %s)", name, where)
}

func accessText(p *record.ProcAccess) string {
	var what string
	switch p.Syscall {
	case "ptrace":
		what = fmt.Sprintf("ptrace %s pid %d", record.PtraceRequestName(p.Request), p.Pid)
	case "pidfd_send_signal":
		what = fmt.Sprintf("pidfd_send_signal %s pidfd %d", signalText(p.Signal), p.Pidfd)
	case "process_vm_readv", "process_vm_writev", "pidfd_open":
		what = fmt.Sprintf("%s pid %d", p.Syscall, p.Pid)
	default:
		what = fmt.Sprintf("%s %s pid %d", p.Syscall, signalText(p.Signal), p.Pid)
	}
	what += targetText(&p.Target)
	if p.Tainted {
		what += ": TAKEN OVER, traced from here on"
	}
	return what
}

func signalText(sig uint32) string {
	if sig == 0 {
		return "signal 0"
	}
	return record.SignalName(int(sig))
}

func fileOpText(f *record.FileOp) string {
	name := func(n record.Name, dir record.Dir) string {
		if n.Unreadable {
			return "(unreadable)"
		}
		if dir.Present {
			return record.Readable(strings.TrimSuffix(dir.Path, "/") + "/" + n.Path)
		}
		return record.Readable(n.Path)
	}
	subject := name(f.Path, f.Dir)
	if f.File.Present {
		subject = record.Readable(f.File.Path)
	}
	switch f.Syscall {
	case "rename", "renameat", "renameat2":
		return fmt.Sprintf("rename %s → %s", subject, name(f.NewPath, f.NewDir))
	case "link", "linkat":
		return fmt.Sprintf("link %s → %s", subject, name(f.NewPath, f.NewDir))
	case "symlink", "symlinkat":
		return fmt.Sprintf("symlink %s → %s", name(f.NewPath, f.NewDir), record.Readable(f.Path.Path))
	case "chmod", "fchmod", "fchmodat", "fchmodat2":
		return fmt.Sprintf("chmod %04o %s", f.Mode, subject)
	case "chown", "fchown", "lchown", "fchownat":
		return fmt.Sprintf("chown %s:%s %s", idText(f.UID), idText(f.GID), subject)
	case "truncate", "ftruncate":
		return fmt.Sprintf("truncate %s to %d", subject, f.Length)
	case "rmdir":
		return "rmdir " + subject
	}
	return "unlink " + subject
}

func idText(id uint32) string {
	if id == ^uint32(0) {
		return "-"
	}
	return fmt.Sprint(id)
}

func mountText(m *record.Mount) string {
	s := func(n record.Name) string {
		if n.Unreadable {
			return "(unreadable)"
		}
		return record.Readable(n.Path)
	}
	switch m.Syscall {
	case "mount":
		text := "mount"
		if m.HasFstype {
			text += " " + s(m.Fstype)
		}
		if m.HasSource {
			text += " " + s(m.Source)
		}
		return text + " on " + s(m.Target)
	case "umount", "umount2":
		return "umount " + s(m.Target)
	case "pivot_root":
		return fmt.Sprintf("pivot_root %s (old root to %s)", s(m.Target), s(m.Source))
	case "move_mount":
		return fmt.Sprintf("move_mount %s to %s", s(m.Source), s(m.Target))
	case "fsopen":
		return "fsopen " + s(m.Fstype)
	case "fsconfig":
		return fmt.Sprintf("fsconfig fd %d %s", m.Fd, s(m.Fstype))
	case "fsmount":
		return fmt.Sprintf("fsmount fd %d", m.Fd)
	}
	return "mount_setattr " + s(m.Target)
}

func bpfText(x *record.BPF) string {
	text := record.BPFCmdName(x.Cmd)
	switch {
	case x.HasMap:
		text += fmt.Sprintf(" map %d", x.MapID)
	case x.HasProg:
		text += fmt.Sprintf(" prog %d", x.ProgID)
	case x.HasLink:
		text += fmt.Sprintf(" link %d", x.LinkID)
	}
	return text
}
