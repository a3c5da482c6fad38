package snapshot

import (
	"net/netip"
	"strconv"

	"github.com/agenttrace/agenttrace/internal/record"
)

// AppendBody appends the type object of a snapshot record,
// `,"snapshot":{...}`, to a record that record.Encoder.AppendEnvelope
// started with type "snapshot"; the caller closes the record with '}'.
// Byte strings (comm, exe, argv, cwd, cgroup, unix names) are written as
// every record writes them: a readable form and, when it is not exact, the
// exact bytes in a _b64 sibling (docs/schema.md, "Exactness").
func AppendBody(b []byte, p *Process) []byte {
	b = append(b, `,"snapshot":{"pid":`...)
	b = strconv.AppendInt(b, int64(p.Pid), 10)
	b = appendInt(b, "ppid", int64(p.Ppid))
	b = appendUint(b, "uid", uint64(p.Uid))
	b = appendUint(b, "gid", uint64(p.Gid))
	b = appendUint(b, "euid", uint64(p.Euid))
	b = appendUint(b, "egid", uint64(p.Egid))
	b = appendUint(b, "auid", uint64(p.Auid))
	b = record.AppendBytes(b, "comm", []byte(p.Comm))
	if len(p.Exe) > 0 {
		b = record.AppendBytes(b, "exe", p.Exe)
	}
	argv := make([]string, len(p.Argv))
	for i, arg := range p.Argv {
		argv[i] = string(arg)
	}
	b = record.AppendStrings(b, "argv", argv)
	if len(p.Cwd) > 0 {
		b = record.AppendBytes(b, "cwd", p.Cwd)
	}
	b = appendUint(b, "start_time", p.StartTime)
	b = appendUint(b, "start_time_resolution_ns", p.StartTimeResolution)
	if p.CgroupPath != "" {
		b = record.AppendBytes(b, "cgroup", []byte(p.CgroupPath))
	}
	if len(p.Sockets) > 0 {
		b = append(b, `,"sockets":[`...)
		for i := range p.Sockets {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendSocket(b, &p.Sockets[i])
		}
		b = append(b, ']')
	}
	if len(p.Errors) > 0 {
		b = record.AppendStrings(b, "errors", p.Errors)
	}
	return append(b, '}')
}

func appendSocket(b []byte, s *Socket) []byte {
	b = append(b, `{"fd":`...)
	b = strconv.AppendInt(b, int64(s.Fd), 10)
	b = appendUint(b, "inode", s.Inode)
	if s.Family != "" {
		b = appendString(b, "family", s.Family)
	}
	b = appendString(b, "proto", s.Proto)
	if s.State != "" {
		b = appendString(b, "state", s.State)
	}
	if s.Src.Addr().IsValid() {
		b = appendAddrPort(b, "src", s.Src)
	}
	if s.Dst.Addr().IsValid() {
		b = appendAddrPort(b, "dst", s.Dst)
	}
	switch {
	case len(s.Path) == 0:
	case s.Path[0] == 0:
		// As in connect records: the abstract name is every byte after the
		// leading NUL, NULs included.
		b = record.AppendBytes(b, "unix_abstract", s.Path[1:])
	default:
		b = record.AppendBytes(b, "unix_path", s.Path)
	}
	if s.Peer != 0 {
		b = appendUint(b, "peer_inode", s.Peer)
	}
	return append(b, '}')
}

// appendAddrPort appends "<prefix>_addr" (dotted quad or RFC 5952 text,
// IPv4-mapped as ::ffff:a.b.c.d) and "<prefix>_port".
func appendAddrPort(b []byte, prefix string, ap netip.AddrPort) []byte {
	b = append(b, `,"`...)
	b = append(b, prefix...)
	b = append(b, `_addr":"`...)
	b = ap.Addr().AppendTo(b)
	b = append(b, `","`...)
	b = append(b, prefix...)
	b = append(b, `_port":`...)
	return strconv.AppendUint(b, uint64(ap.Port()), 10)
}

func appendUint(b []byte, key string, v uint64) []byte {
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	return strconv.AppendUint(b, v, 10)
}

func appendInt(b []byte, key string, v int64) []byte {
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	return strconv.AppendInt(b, v, 10)
}

// appendString appends a value known to need no escaping (names of this package).
func appendString(b []byte, key, v string) []byte {
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":"`...)
	b = append(b, v...)
	return append(b, '"')
}
