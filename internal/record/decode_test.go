package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// contractFiles are the files that hold records as agenttrace writes them:
// the golden files of the kernel records and of snapshots, the records the
// OCSF mapping is tested with, and the schema's valid lines (a real run,
// the sink's own records).
func contractFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{
		"testdata/*.golden",
		"../snapshot/testdata/*.golden",
		"../ocsf/testdata/records/*.jsonl",
		"../../schema/testdata/valid.jsonl",
	} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 {
			t.Fatalf("no file matches %s", pattern)
		}
		files = append(files, m...)
	}
	return files
}

func fileLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		t.Fatalf("%s does not end in a newline", path)
	}
	return bytes.Split(data[:len(data)-1], []byte("\n"))
}

// notWritten are lines of the contract files that no writer of this build
// produces byte for byte.
var notWritten = map[string]string{
	// Written before start records had sensitive_paths (51eb197), which
	// every start record has had since.
	"valid.jsonl:2": "a start record of an older version",
	// schema/testdata's hand-made stop with error and left_running_action,
	// members in another order than the writer's, copied for OCSF.
	"valid.jsonl:38": "a hand-made stop record",
	"stop.jsonl:1":   "a hand-made stop record",
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(va, vb)
}

// TestDecodeRoundTrip: every record written so far decodes to a value that
// AppendRecord writes back byte for byte, with a body of its type.
func TestDecodeRoundTrip(t *testing.T) {
	types := map[string]bool{}
	for _, path := range contractFiles(t) {
		for i, line := range fileLines(t, path) {
			r, err := Decode(line)
			if err != nil {
				t.Errorf("%s:%d: Decode: %v\n%s", path, i+1, err, line)
				continue
			}
			if r.Body == nil {
				t.Errorf("%s:%d: type %q decoded without a body", path, i+1, r.Type)
				continue
			}
			if r.Body.Type() != r.Type {
				t.Errorf("%s:%d: a %s record decoded to a %s body", path, i+1, r.Type, r.Body.Type())
			}
			if (r.Proc != nil) != IsKernel(r.Type) {
				t.Errorf("%s:%d: a %s record with proc %v", path, i+1, r.Type, r.Proc != nil)
			}
			types[r.Type] = true
			got := AppendRecord(nil, r)
			if why, ok := notWritten[filepath.Base(path)+":"+strconv.Itoa(i+1)]; ok {
				// Not a line this build writes: the same members, or the
				// ones this build writes always.
				if !jsonEqual(t, bytes.Replace(got, []byte(`"sensitive_paths":[],`), nil, 1), line) {
					t.Errorf("%s:%d (%s): AppendRecord(Decode(line)) is not the same JSON\n got %s\nwant %s", path, i+1, why, got, line)
				}
				continue
			}
			if !bytes.Equal(got, line) {
				t.Errorf("%s:%d: AppendRecord(Decode(line)) differs from the line\n got %s\nwant %s", path, i+1, got, line)
			}
		}
	}
	for _, ti := range Types {
		if !types[ti.Name] {
			t.Errorf("no %s record in the files the round trip reads", ti.Name)
		}
	}
}

// TestDecodeExact: members that are not exact in JSON come back exactly
// from their _b64 siblings, and argv keeps an argument cut by truncation.
func TestDecodeExact(t *testing.T) {
	for _, tc := range recordCases {
		if tc.name != "exec_failed" && tc.name != "exec_success_truncated" && tc.name != "proc_cgroup_unresolved_and_inexact" && tc.name != "connect_unix" {
			continue
		}
		enc := newTestEncoder()
		for i := range tc.events {
			ev := tc.events[i]
			line := enc.AppendEvent(nil, 1, &[32]byte{}, &ev)
			r, err := Decode(line)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if r.Proc.Comm != ev.Proc.Comm || r.Proc.Cgroup != ev.Proc.Cgroup {
				t.Errorf("%s: proc comm %q cgroup %q, want %q %q", tc.name, r.Proc.Comm, r.Proc.Cgroup, ev.Proc.Comm, ev.Proc.Cgroup)
			}
			switch b := r.Body.(type) {
			case *Exec:
				if b.Filename != ev.Exec.Filename || b.Args != ev.Exec.Args || b.ArgsTruncated != ev.Exec.ArgsTruncated {
					t.Errorf("%s: exec filename %q args %q, want %q %q", tc.name, b.Filename, b.Args, ev.Exec.Filename, ev.Exec.Args)
				}
			case *Connect:
				if b.Addr.Unix != ev.Connect.Addr.Unix || b.Addr.UnixName != ev.Connect.Addr.UnixName {
					t.Errorf("%s: unix address %d %q, want %d %q", tc.name, b.Addr.Unix, b.Addr.UnixName, ev.Connect.Addr.Unix, ev.Connect.Addr.UnixName)
				}
			}
		}
	}
}

// TestDecodeDuplicateKey: a line that repeats a key, at the top or in any
// nested object, is never a record: readers could disagree on its value.
func TestDecodeDuplicateKey(t *testing.T) {
	good := fileLines(t, "testdata/exec_success.golden")[0]
	if err := ValidLine(good); err != nil {
		t.Fatalf("ValidLine(golden) = %v", err)
	}
	for _, tc := range []struct{ name, old, new string }{
		{"top level", `"type":"exec",`, `"type":"exec","type":"exec",`},
		{"top level, other value", `"host":"build-host-1",`, `"host":"build-host-1","host":"evil",`},
		{"proc", `"comm":"sh",`, `"comm":"sh","comm":"bash",`},
		{"body", `"filename":"/usr/bin/sh",`, `"filename":"/usr/bin/sh","filename":"/bin/true",`},
		{"nested in the body", `"ino":247072,`, `"ino":247072,"ino":1,`},
		{"escaped spelling of the same key", `"comm":"sh",`, `"comm":"sh","\u0063omm":"bash",`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(good, []byte(tc.old)) {
				t.Fatalf("the golden line has no %s", tc.old)
			}
			bad := bytes.Replace(good, []byte(tc.old), []byte(tc.new), 1)
			if err := ValidLine(bad); !errors.Is(err, ErrDuplicateKey) {
				t.Errorf("ValidLine = %v, want ErrDuplicateKey", err)
			}
			if r, err := Decode(bad); !errors.Is(err, ErrDuplicateKey) {
				t.Errorf("Decode = %+v, %v, want ErrDuplicateKey", r, err)
			}
		})
	}
	// A repeated key in objects of an array, and the same key in two
	// different objects, which is not a repetition.
	if err := ValidLine([]byte(`{"a":[{"k":1,"k":2}]}`)); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("ValidLine(duplicate in an array's object) = %v", err)
	}
	if err := ValidLine([]byte(`{"a":{"k":1},"b":{"k":2},"c":[{"k":1},{"k":2}]}`)); err != nil {
		t.Errorf("ValidLine(same key in different objects) = %v", err)
	}
}

func TestValidLineRejects(t *testing.T) {
	for _, line := range []string{
		``, `[]`, `"x"`, `{`, `{"a":1`, `{"a":1}{}`, `{"a":1} x`, `{"a":01}`, `{"a":tru}`, "{\"a\":\"\x01\"}",
		`{a:1}`, `{"a" 1}`, `{"a":1,}`, `{"a":[1,]}`, `{"a":"unterminated}`,
		strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 100),
	} {
		if err := ValidLine([]byte(line)); err == nil {
			t.Errorf("ValidLine(%q) accepted it", line)
		}
	}
}

// TestValidLineRejectsBadEscapes: a string with an escape JSON does not
// have is not JSON (json.Valid rejects it), whatever member holds it.
func TestValidLineRejectsBadEscapes(t *testing.T) {
	for _, line := range []string{`{"a":"\x01"}`, `{"a":"\u12"}`, `{"a":"\uZZZZ"}`, `{"a":"\a"}`, `{"a":{"b":"\x"}}`, `{"a":["\q"]}`} {
		if json.Valid([]byte(line)) {
			t.Fatalf("json.Valid(%s)", line)
		}
		if err := ValidLine([]byte(line)); err == nil {
			t.Errorf("ValidLine(%s) accepted it", line)
		}
	}
}

// TestDecodeRejects: a line that is not a record of this schema version.
func TestDecodeRejects(t *testing.T) {
	good := string(fileLines(t, "testdata/exit.golden")[0])
	for _, tc := range []struct{ name, old, new string }{
		{"schema version", `{"v":1,`, `{"v":2,`},
		{"no version", `{"v":1,`, `{`},
		{"prev too short", `"prev":"0000000000000000000000000000000000000000000000000000000000000000"`, `"prev":"00"`},
		{"prev not hex", `"prev":"0000000000000000000000000000000000000000000000000000000000000000"`, `"prev":"000000000000000000000000000000000000000000000000000000000000000g"`},
		{"seq not a number", `"seq":1,`, `"seq":"1",`},
		{"pid out of range", `"pid":200,`, `"pid":4294967296,`},
		{"cpu negative", `"cpu":3,`, `"cpu":-3,`},
		{"status not a number", `"status":256,`, `"status":"x",`},
		{"tags not strings", `"exit":{"status":256,"code":1}}`, `"exit":{"status":256,"code":1},"tags":[1]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the golden line has no %s", tc.old)
			}
			bad := strings.Replace(good, tc.old, tc.new, 1)
			if r, err := Decode([]byte(bad)); err == nil {
				t.Errorf("Decode accepted %s: %+v", bad, r)
			}
		})
	}
	// A type this build does not know decodes, without a body.
	unknown := strings.Replace(strings.Replace(good, `"type":"exit"`, `"type":"future"`, 1), `"exit":{`, `"future":{`, 1)
	r, err := Decode([]byte(unknown))
	if err != nil || r.Type != "future" || r.Body != nil {
		t.Errorf("Decode(unknown type) = %+v, %v", r, err)
	}
}

func TestParseEnvelope(t *testing.T) {
	line := fileLines(t, "testdata/exec_success.golden")[0]
	env, err := ParseEnvelope(line)
	if err != nil || env.Seq != 1 || env.Prev != [32]byte{} || string(env.Time) != "2025-01-02T03:04:05.123456789Z" || env.Type != "exec" {
		t.Fatalf("ParseEnvelope = %+v (time %s), %v", env, env.Time, err)
	}
	cp := fileLines(t, "../../schema/testdata/valid.jsonl")[1]
	if env, err := ParseEnvelope(cp); err != nil || env.Seq != 2 || env.Prev[0] != 0xcb || env.Prev[31] != 0x6a {
		t.Errorf("ParseEnvelope(line 2 of valid.jsonl) = %+v, %v", env, err)
	}
	s := string(line)
	for _, tc := range []struct{ name, old, new string }{
		{"other version", `{"v":1,`, `{"v":2,`},
		{"space", `{"v":1,`, `{ "v":1,`},
		{"seq missing digits", `"seq":1,`, `"seq":,`},
		{"seq overflow", `"seq":1,`, `"seq":99999999999999999999,`},
		{"prev short", `"prev":"0000000000000000000000000000000000000000000000000000000000000000"`, `"prev":"000000000000000000000000000000000000000000000000000000000000000"`},
		{"prev uppercase", `"prev":"0000000000000000000000000000000000000000000000000000000000000000"`, `"prev":"000000000000000000000000000000000000000000000000000000000000000A"`},
		{"no time", `"time":"2025-01-02T03:04:05.123456789Z",`, ``},
		{"time after ktime", `"time":"2025-01-02T03:04:05.123456789Z","ktime":1000123456789,`, `"ktime":1000123456789,"time":"2025-01-02T03:04:05.123456789Z",`},
		{"no type", `"type":"exec",`, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(s, tc.old) {
				t.Fatalf("the golden line has no %s", tc.old)
			}
			if env, err := ParseEnvelope([]byte(strings.Replace(s, tc.old, tc.new, 1))); err == nil {
				t.Errorf("ParseEnvelope accepted it: %+v", env)
			}
		})
	}
	// "type" inside an earlier string is escaped, so the first `,"type":"`
	// is the envelope's.
	tricky := strings.Replace(s, `"host":"build-host-1"`, `"host":"a\",\"type\":\"open"`, 1)
	if env, err := ParseEnvelope([]byte(tricky)); err != nil || env.Type != "exec" {
		t.Errorf("ParseEnvelope(host with a quoted type) = %q, %v", env.Type, err)
	}
}

// TestTypes: the one table of record types names each type once, has a
// body type for each, and agrees with KindName and IsKernel.
func TestTypes(t *testing.T) {
	seen := map[string]bool{}
	kinds := map[uint32]bool{}
	for _, ti := range Types {
		if seen[ti.Name] {
			t.Errorf("type %s listed twice", ti.Name)
		}
		seen[ti.Name] = true
		body := NewBody(ti.Name)
		if body == nil || body.Type() != ti.Name {
			t.Errorf("NewBody(%q) = %T", ti.Name, body)
		}
		if IsKernel(ti.Name) != (ti.Kind != 0) {
			t.Errorf("IsKernel(%q) = %v, kind %d", ti.Name, IsKernel(ti.Name), ti.Kind)
		}
		if ti.Kind != 0 {
			if kinds[ti.Kind] {
				t.Errorf("kind %d listed twice", ti.Kind)
			}
			kinds[ti.Kind] = true
			if KindName(ti.Kind) != ti.Name {
				t.Errorf("KindName(%d) = %q, want %q", ti.Kind, KindName(ti.Kind), ti.Name)
			}
			ev := Event{Kind: ti.Kind}
			if b := ev.Body(); b == nil || b.Type() != ti.Name {
				t.Errorf("Event{Kind: %d}.Body() = %T", ti.Kind, b)
			}
		}
	}
	for k := KindExec; k < KindMax; k++ {
		if !kinds[k] {
			t.Errorf("kind %d (%s) is not in Types", k, KindName(k))
		}
	}
	if NewBody("unknown") != nil || NewBody("") != nil || IsKernel("unknown") {
		t.Error("NewBody or IsKernel know the type unknown")
	}
	if (&Event{Kind: KindUnknown}).Body() != nil || (&Event{Kind: KindMax}).Body() != nil {
		t.Error("an event of an unknown kind has a body")
	}
	want := []string{"exec", "open", "connect", "fork", "exit", "cgroup", "send", "bind", "listen", "accept", "sock_state", "dns",
		"io_uring", "cgroup_move", "proc_access", "file_op", "mount", "namespace", "bpf", "unknown"}
	if got := LossNames(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("LossNames() = %v, want %v", got, want)
	}
}

func TestExecArgv(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"\x00", []string{""}},
		{"\x00\x00", []string{"", ""}},
		{"sh\x00-c\x00true\x00", []string{"sh", "-c", "true"}},
		{"sh\x00-c\x00tr", []string{"sh", "-c", "tr"}}, // the last one cut by truncation
		{"abc", []string{"abc"}},
	} {
		x := Exec{Args: tc.in}
		if got := x.Argv(); strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("Argv(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestExecIDText(t *testing.T) {
	id := ExecID{Pid: 4294967295, Start: 18446744073709551615, Seq: 7}
	s := id.String()
	if s != "4294967295-18446744073709551615-7" {
		t.Fatalf("String = %q", s)
	}
	if back, err := ParseExecID(s); err != nil || back != id {
		t.Errorf("ParseExecID(%q) = %+v, %v", s, back, err)
	}
	for _, bad := range []string{"", "1-2", "1-2-3-4", "-1-2-3", "1--3", "a-2-3", "4294967296-1-1", "1-2-18446744073709551616"} {
		if _, err := ParseExecID(bad); err == nil {
			t.Errorf("ParseExecID(%q) accepted it", bad)
		}
	}
	if !(ExecID{}).IsZero() || (ExecID{Seq: 1}).IsZero() {
		t.Error("IsZero")
	}
}
