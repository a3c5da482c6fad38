package record

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/schema"
)

// ownBodies are agenttrace's own records with every member set, text that
// is not exact in JSON included.
func ownBodies() []Body {
	procs := 3
	at := func(ns int) time.Time { return time.Date(2025, 1, 2, 3, 4, 5, ns, time.UTC) }
	hooks := []Hook{{Hook: "tp_btf/sched_process_fork", Tag: "478f13daf0743651"}, {Hook: "tp_btf/sys_exit"}}
	return []Body{
		&Header{Schema: 1, AgenttraceVersion: "0.2.0", LogID: "011de81458be8e7719005fc6381d9822", Segment: 1,
			Key: "agenttrace+7c89a865+AUA5o4lFHTNYcMy26jedTxggc/AC80NAjmHaTCcNABmp"},
		&Header{Schema: 1, AgenttraceVersion: "0.2.0", LogID: "011de81458be8e7719005fc6381d9822", Segment: 3,
			Key: "agenttrace+7c89a865+AUA5o4lFHTNYcMy26jedTxggc/AC80NAjmHaTCcNABmp",
			Continues: &Continues{SegmentFile: "audit.000002.jsonl", LastSeq: 41, LastHash: strings.Repeat("ab", 32),
				Tree: []string{"SMr4ZlOeItXD0yzN0kCAt5R/pZHTmwSt8+0zd8SkkOg=", "cDy3kHjrZMhUIugsdcMY5ZlS4dKK7B+R1Z63Qb/9p5c="}}},
		&Checkpoint{LogID: "011de81458be8e7719005fc6381d9822", Size: 41, Head: strings.Repeat("cd", 32),
			Root: "SMr4ZlOeItXD0yzN0kCAt5R/pZHTmwSt8+0zd8SkkOg=", Final: true,
			Note: "agenttrace/011de81458be8e7719005fc6381d9822\n41\nSMr4ZlOeItXD0yzN0kCAt5R/pZHTmwSt8+0zd8SkkOg=\nhead " + strings.Repeat("cd", 32) + "\n\n— agenttrace fIlAf2Q4XWWm3uZ1uwDVkmQnCwTPxZYz4U1ZYsd7mGCk8MDrd7SLvjZOHzJvGtQm7yC8A5S3LbrY5H0rPtQnK0oZJgk=\n"},
		&Recovery{SegmentFile: "audit\xff.jsonl", AfterSeq: 17, Unsigned: 6},
		&Recovery{SegmentFile: "audit.jsonl", AfterSeq: 17, Unsigned: 6, TornOffset: 5012, TornBytes: 30, TornSHA256: strings.Repeat("ef", 32)},
		&Start{AgenttraceVersion: "0.2.0", Pid: 12890, Uid: 1000, Command: "/usr/bin/sh", Argv: []string{"sh", "-c", "echo \xff\u202e"},
			Cgroup: "/agenttrace/run-1", CgroupID: 367, MaxArgBytes: 32768, SensitivePaths: []string{".env", "!.env.example"}, Hooks: hooks},
		&Start{Mode: ModeDaemon, AgenttraceVersion: "0.2.0", Pid: 7059, Config: "/etc/agenttrace/agenttrace.yaml",
			ConfigSHA256: strings.Repeat("3e", 32), CgroupMount: "/sys/fs/cgroup", Targets: []string{"agents/*", "ci/**"},
			ExcludedCgroup: "/system.slice/agenttrace.service", MaxArgBytes: 32768, RingSize: 16 << 20, FailClosed: true,
			SensitivePaths: []string{}, Hooks: hooks},
		&Stop{Reason: "command exited", ExitCode: 137, Error: "wait: bad\xffthing", LeftRunning: 2,
			LeftRunningAction: "killed with SIGKILL after the grace period",
			Records:           Counts{"exec": 2, "open": 33, "connect": 0, "fork": 1, "exit": 2, "cgroup": 0}, Lost: Counts{"open": 3, "unknown": 1}},
		&Stop{Mode: ModeDaemon, Reason: "SIGTERM", UptimeNs: 123456789,
			Records: Counts{"exec": 2, "open": 33, "connect": 0, "fork": 1, "exit": 2, "cgroup": 4}, Lost: Counts{}},
		&Gap{Stage: "kernel", Reason: "ring buffer full", CPU: 1, Lost: Counts{"open": 7, "exec": 1}, From: at(20_000_000), To: at(30_000_001)},
		&Gap{Stage: "write", Reason: "the log file refused writes", CPU: -1, Lost: Counts{"open": 7, "target": 1, "reload": 2}, From: at(0), To: at(1)},
		&Heartbeat{UptimeNs: 10_000_000_000, Records: 1234, RingSize: 16 << 20, RingUsed: 4096, Kinds: []KindTotals{
			{Kind: "exec", Matched: 3, Written: 3}, {Kind: "open", Matched: 100, Written: 90, Lost: 10}, {Kind: "connect"},
			{Kind: "fork", Matched: 1, Written: 1}, {Kind: "exit", Matched: 1, Written: 1}, {Kind: "cgroup"}}},
		&Freeze{Reason: "ring buffer 90% full", RingUsed: 15 << 20, RingSize: 16 << 20},
		&Thaw{Reason: "ring buffer drained", FrozenNs: 250_000_000},
		&Target{Op: "add", Reason: "start", Cgroup: "/agents/caf\xe9", CgroupID: 4242, Targets: []string{"agents/*"}, Processes: &procs},
		&Target{Op: "remove", Reason: "reload", Cgroup: "/agents/a", CgroupID: 4242},
		&Reload{Status: "applied", Config: "/etc/agenttrace/agenttrace.yaml", ConfigSHA256: strings.Repeat("3e", 32),
			Changed: []string{"targets", "ring_size"}, NeedsRestart: []string{"ring_size"}, Targets: []string{"agents/*"}},
		&Reload{Status: "applied", Config: "/etc/agenttrace/agenttrace.yaml", ConfigSHA256: strings.Repeat("3e", 32), Changed: []string{}, Targets: []string{}},
		&Reload{Status: "rejected", Config: "/etc/agenttrace/agenttrace.yaml", ConfigSHA256: strings.Repeat("3e", 32), Error: "targets: bad\npattern"},
		&Snapshot{Pid: 4242, Ppid: 4200, Uid: 1000, Gid: 1000, Euid: 1000, Egid: 1000, Auid: 1000, Comm: "python3",
			Exe: "/usr/bin/python3.12", Argv: []string{"python3", "agent.py", "--task=caf\xe9"}, Cwd: "/home/dev/proj\xff",
			StartTime: 1059710000000, StartTimeResolution: 10_000_000, Cgroup: "/agents/claude",
			Sockets: []Socket{
				{Fd: 3, Inode: 81234, Family: "AF_INET", Proto: "tcp", State: "ESTABLISHED",
					Src: netip.MustParseAddrPort("10.0.2.15:53012"), Dst: netip.MustParseAddrPort("160.79.104.10:443")},
				{Fd: 5, Inode: 81241, Family: "AF_INET6", Proto: "udp", State: "ESTABLISHED",
					Src: netip.MustParseAddrPort("[::ffff:127.0.0.1]:40000"), Dst: netip.MustParseAddrPort("[::ffff:127.0.0.53]:53")},
				{Fd: 6, Inode: 81250, Family: "AF_UNIX", Proto: "unix_stream", State: "ESTABLISHED", Unix: UnixPath, UnixName: "/run/dbus/system_bus_socket", Peer: 81251},
				{Fd: 7, Inode: 81260, Family: "AF_UNIX", Proto: "unix_dgram", State: "CLOSE", Unix: UnixAbstract, UnixName: "agent\x00\xff"},
				{Fd: 9, Inode: 81280, Proto: "unknown"},
			}},
		&Snapshot{Pid: 4243, Ppid: 4242, Auid: 4294967295, Comm: "sh", Argv: []string{}, StartTime: 1059720000000,
			StartTimeResolution: 10_000_000, Errors: []string{"exe: no such file or directory"}},
		&Tamper{What: "cgroup_states", CgroupID: 4242, Cgroup: "/agents/caf\xe9", Expected: TamperValue{Traced: true},
			Found: TamperValue{Absent: true}, Restored: true},
		&Tamper{What: "cgroup_states", CgroupID: 4243, Expected: TamperValue{Partial: 3, Traced: true}, Found: TamperValue{Partial: 3}},
		&Tamper{What: "patterns", Slot: 2, Expected: TamperValue{Pattern: "agents/*"}, Found: TamperValue{Pattern: ""}, Restored: true},
		&Tamper{What: "states_gen", Expected: TamperValue{Gen: 41}, Found: TamperValue{Gen: 0}, Restored: true},
	}
}

// TestOwnBodiesRoundTrip: each of agenttrace's own records is valid, and
// decodes to the value it was written from.
func TestOwnBodiesRoundTrip(t *testing.T) {
	enc := newTestEncoder()
	types := map[string]bool{}
	for i, body := range ownBodies() {
		line := enc.Append(nil, uint64(i+1), &[32]byte{}, 1_000_000_000_000, body)
		if err := schema.Validate(line); err != nil {
			t.Errorf("%s %d: %v\n%s", body.Type(), i, err, line)
		}
		r, err := Decode(line)
		if err != nil {
			t.Fatalf("%s %d: Decode: %v\n%s", body.Type(), i, err, line)
		}
		if r.Type != body.Type() || r.Proc != nil || r.Seq != uint64(i+1) || r.Time != "2025-01-02T03:04:05.000000000Z" || r.Host != testHost {
			t.Errorf("%s %d: envelope %+v", body.Type(), i, r)
		}
		if !reflect.DeepEqual(r.Body, body) {
			t.Errorf("%s %d: Decode(Append(body)).Body =\n%#v\nwant\n%#v\n%s", body.Type(), i, r.Body, body, line)
		}
		if got := AppendRecord(nil, r); string(got) != string(line) {
			t.Errorf("%s %d: AppendRecord(Decode(line)) =\n%s\nwant\n%s", body.Type(), i, got, line)
		}
		types[body.Type()] = true
	}
	for _, ti := range Types {
		if !types[ti.Name] && ti.Kind == 0 {
			t.Errorf("no %s record in ownBodies", ti.Name)
		}
	}
}

// TestCountsOrder: counts are written in the order of the type table (the
// kernel kinds), then unknown, then agenttrace's own types by name, so a
// record is a function of its value.
func TestCountsOrder(t *testing.T) {
	c := Counts{"reload": 2, "unknown": 1, "cgroup": 4, "open": 3, "target": 1, "exec": 0}
	got := string(c.append([]byte("{"), "lost"))
	if want := `{"lost":{"exec":0,"open":3,"cgroup":4,"unknown":1,"reload":2,"target":1}`; got != want {
		t.Errorf("Counts.append = %s, want %s", got, want)
	}
	if c.Total() != 11 {
		t.Errorf("Total = %d", c.Total())
	}
	if got := string(Counts(nil).append([]byte("{"), "lost")); got != `{"lost":{}` {
		t.Errorf("nil Counts = %s", got)
	}
}

// TestStartBeginsAttribution: appending a start record is what begins
// tool-call attribution, for run (its pid creates the roots) and daemon.
func TestStartBeginsAttribution(t *testing.T) {
	enc := newTestEncoder()
	if enc.attr.active {
		t.Fatal("attribution active before any start record")
	}
	enc.Append(nil, 1, &[32]byte{}, 1, &Start{Pid: 77})
	if !enc.attr.active || enc.attr.daemon || enc.attr.creator != 77 {
		t.Errorf("after a run start: %+v", enc.attr)
	}
	enc.Append(nil, 2, &[32]byte{}, 1, &Start{Mode: ModeDaemon, Pid: 88})
	if !enc.attr.active || !enc.attr.daemon || enc.attr.creator != 0 {
		t.Errorf("after a daemon start: %+v", enc.attr)
	}
}

// TestSensitiveAndPatternNames: the sensitive list and the target pattern
// names in force are the ones set last, for the records appended after.
func TestSensitiveAndPatternNames(t *testing.T) {
	enc := newTestEncoder()
	open := openEv(0, Open{Ret: 3, Syscall: "openat", Dirfd: -100, Path: "/home/u/.ssh/id_ed25519"})
	if enc.Sensitive() != nil || strings.Contains(string(enc.AppendEvent(nil, 1, &[32]byte{}, &open)), TagCredentialAccess) {
		t.Fatal("tagged without a sensitive list")
	}
	enc.SetSensitive(DefaultSensitive())
	if enc.Sensitive() != DefaultSensitive() || !strings.Contains(string(enc.AppendEvent(nil, 2, &[32]byte{}, &open)), `,"tags":["credential_access"]}`) {
		t.Error("not tagged with the default list")
	}
	only, err := CompilePathSet([]string{"*.pem"})
	if err != nil {
		t.Fatal(err)
	}
	enc.SetSensitive(only)
	if strings.Contains(string(enc.AppendEvent(nil, 3, &[32]byte{}, &open)), TagCredentialAccess) {
		t.Error("tagged after the list changed")
	}

	var seen []Cgroup
	enc.OnCgroup = func(c *Cgroup) { seen = append(seen, *c) }
	cg := ev(KindCgroup, agent, 0)
	cg.Cgroup = Cgroup{Op: "mkdir", ID: 9000, ParentID: 1, Level: 2, Path: "/agents/a", Matched: true, Patterns: 0b101}
	line := string(enc.AppendEvent(nil, 4, &[32]byte{}, &cg))
	if !strings.Contains(line, `"path":"/agents/a","matched":true}`) {
		t.Errorf("cgroup record without pattern names: %s", line)
	}
	enc.SetPatternNames([]string{"agents/*", "ci/*", "*/a"})
	cg2 := cg
	line = string(enc.AppendEvent(nil, 5, &[32]byte{}, &cg2))
	if !strings.Contains(line, `"path":"/agents/a","matched":true,"targets":["agents/*","*/a"]}`) {
		t.Errorf("cgroup record: %s", line)
	}
	if err := schema.Validate([]byte(line)); err != nil {
		t.Errorf("%v\n%s", err, line)
	}
	if len(seen) != 2 || seen[1].Targets == nil || seen[1].ID != 9000 {
		t.Errorf("OnCgroup saw %+v", seen)
	}
}

// learningCgroups is a resolver that learns new cgroups, as the cgroup
// package's does.
type learningCgroups map[uint64]string

func (m learningCgroups) Path(id uint64) (string, bool) { p, ok := m[id]; return p, ok }
func (m learningCgroups) Learn(id uint64, path string)  { m[id] = path }

// TestCgroupLearned: a resolver that learns is taught the path of a cgroup
// made with mkdir (not one removed, not a truncated path), and the records
// after it name that cgroup.
func TestCgroupLearned(t *testing.T) {
	cgroups := learningCgroups{}
	enc := NewEncoder(testHost, testBootID, testOffset, cgroups)
	for i, c := range []Cgroup{
		{Op: "rmdir", ID: 1, Path: "/gone"},
		{Op: "mkdir", ID: 2, Path: "/agents/lon", PathTruncated: true},
		{Op: "mkdir", ID: 3, Path: "/agents/a"},
	} {
		e := ev(KindCgroup, agent, 0)
		e.Cgroup = c
		enc.AppendEvent(nil, uint64(i+1), &[32]byte{}, &e)
	}
	if len(cgroups) != 1 || cgroups[3] != "/agents/a" {
		t.Fatalf("learned %v, want only 3: /agents/a", cgroups)
	}
	e := exitEv(agent, 0)
	e.Proc.CgroupID = 3
	if line := string(enc.AppendEvent(nil, 4, &[32]byte{}, &e)); !strings.Contains(line, `"cgroup_id":3,"cgroup":"/agents/a",`) {
		t.Errorf("a record in the new cgroup: %s", line)
	}
}
