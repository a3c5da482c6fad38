package snapshot

import "github.com/agenttrace/agenttrace/internal/record"

// Record is the snapshot record of p.
func (p *Process) Record() *record.Snapshot {
	s := &record.Snapshot{
		Pid: p.Pid, Ppid: p.Ppid, Uid: p.Uid, Gid: p.Gid, Euid: p.Euid, Egid: p.Egid, Auid: p.Auid,
		Comm: p.Comm, Exe: string(p.Exe), Argv: make([]string, len(p.Argv)), Cwd: string(p.Cwd),
		StartTime: p.StartTime, StartTimeResolution: p.StartTimeResolution, Cgroup: p.CgroupPath, Errors: p.Errors,
	}
	for i, arg := range p.Argv {
		s.Argv[i] = string(arg)
	}
	for _, sock := range p.Sockets {
		rs := record.Socket{Fd: sock.Fd, Inode: sock.Inode, Family: sock.Family, Proto: sock.Proto, State: sock.State,
			Src: sock.Src, Dst: sock.Dst, Peer: sock.Peer}
		switch {
		case len(sock.Path) == 0:
		case sock.Path[0] == 0:
			// As in connect records: the abstract name is every byte after
			// the leading NUL, NULs included.
			rs.Unix, rs.UnixName = record.UnixAbstract, string(sock.Path[1:])
		default:
			rs.Unix, rs.UnixName = record.UnixPath, string(sock.Path)
		}
		s.Sockets = append(s.Sockets, rs)
	}
	return s
}
