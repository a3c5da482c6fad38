package ocsf

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/agenttrace/agenttrace/schema"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.json from the mapper's output")

const testLogID = "011de81458be8e7719005fc6381d9822"

var testMeta = Meta{LogID: testLogID, ProductVersion: "0.1.0-dev"}

// schemaFiles maps class_uid to its schema in testdata/schema, the
// hand-written OCSF 1.3.0 subset.
var schemaFiles = map[int64]string{
	0:    "base_event.schema.json",
	1001: "file_activity.schema.json",
	1007: "process_activity.schema.json",
	1008: "event_log.schema.json",
	4001: "network_activity.schema.json",
	4003: "dns_activity.schema.json",
	6002: "application_lifecycle.schema.json",
}

const schemaBase = "https://agenttrace.dev/ocsf/1.3.0/"

var (
	schemasOnce sync.Once
	schemas     map[int64]*jsonschema.Schema
	schemasErr  error
)

func compiledSchemas(t testing.TB) map[int64]*jsonschema.Schema {
	t.Helper()
	schemasOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		files, err := filepath.Glob("testdata/schema/*.schema.json")
		if err != nil || len(files) == 0 {
			schemasErr = fmt.Errorf("no schema files: %v", err)
			return
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				schemasErr = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
			if err != nil {
				schemasErr = fmt.Errorf("%s: %w", f, err)
				return
			}
			if err := c.AddResource(schemaBase+filepath.Base(f), doc); err != nil {
				schemasErr = fmt.Errorf("%s: %w", f, err)
				return
			}
		}
		schemas = map[int64]*jsonschema.Schema{}
		for uid, name := range schemaFiles {
			s, err := c.Compile(schemaBase + name)
			if err != nil {
				schemasErr = fmt.Errorf("compiling %s: %w", name, err)
				return
			}
			schemas[uid] = s
		}
	})
	if schemasErr != nil {
		t.Fatal(schemasErr)
	}
	return schemas
}

// validateOCSF checks an event against the schema of its class.
func validateOCSF(t testing.TB, event []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(event))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("not an object")
	}
	n, ok := obj["class_uid"].(json.Number)
	if !ok {
		return fmt.Errorf("no class_uid")
	}
	uid, _ := n.Int64()
	s, ok := compiledSchemas(t)[uid]
	if !ok {
		return fmt.Errorf("class_uid %d: no schema in testdata", uid)
	}
	return s.Validate(v)
}

// nativeLines are every record agenttrace's schema tests hold as valid
// (schema/testdata/valid.jsonl) and every example record of docs/schema.md.
func nativeLines(t testing.TB) [][]byte {
	t.Helper()
	data, err := os.ReadFile("../../schema/testdata/valid.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	doc, err := os.ReadFile("../../docs/schema.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("(?s)```json\n(.*?)\n```").FindAllSubmatch(doc, -1) {
		if l := bytes.TrimSpace(m[1]); bytes.HasPrefix(l, []byte(`{"v":1`)) && !bytes.Contains(l, []byte("\n")) {
			lines = append(lines, l)
		}
	}
	return lines
}

// mapped is what the tests read back from an event.
type mapped struct {
	ClassUID   int    `json:"class_uid"`
	ActivityID int    `json:"activity_id"`
	StatusID   *int   `json:"status_id"`
	StatusCode string `json:"status_code"`
	Time       int64  `json:"time"`
	Metadata   struct {
		UID       string   `json:"uid"`
		Sequence  *int64   `json:"sequence"`
		EventCode string   `json:"event_code"`
		Labels    []string `json:"labels"`
	} `json:"metadata"`
	Unmapped struct {
		Agenttrace json.RawMessage `json:"agenttrace"`
	} `json:"unmapped"`
}

func TestOCSFEveryRecordMapsAndValidates(t *testing.T) {
	lines := nativeLines(t)
	types := map[string]bool{}
	for i, line := range lines {
		if err := schema.Validate(line); err != nil {
			t.Fatalf("input %d is not a valid record: %v", i, err)
		}
		out, err := Map(line, testMeta)
		if err != nil {
			t.Errorf("line %d: %v\n%s", i, err, line)
			continue
		}
		if err := validateOCSF(t, out); err != nil {
			t.Errorf("line %d: the OCSF event does not validate: %v\n%s", i, err, out)
		}
		var m mapped
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if !bytes.Equal(m.Unmapped.Agenttrace, line) {
			t.Errorf("line %d: unmapped.agenttrace is not the record byte for byte:\n got %s\nwant %s", i, m.Unmapped.Agenttrace, line)
		}
		var env struct {
			Seq  uint64
			Type string
		}
		json.Unmarshal(line, &env)
		types[env.Type] = true
		if want := fmt.Sprintf("%s:%d", testLogID, env.Seq); m.Metadata.UID != want {
			t.Errorf("line %d: metadata.uid %q, want %q", i, m.Metadata.UID, want)
		}
		if m.Metadata.Sequence == nil || uint64(*m.Metadata.Sequence) != env.Seq {
			t.Errorf("line %d: metadata.sequence %v, want %d", i, m.Metadata.Sequence, env.Seq)
		}
		if m.Metadata.EventCode != env.Type {
			t.Errorf("line %d: metadata.event_code %q, want %q", i, m.Metadata.EventCode, env.Type)
		}
		if err := checkDisplaySafe(out); err != nil {
			t.Errorf("line %d: %v", i, err)
		}
		// A trailing newline is the same record.
		withNL, err := Map(append(bytes.Clone(line), '\n'), testMeta)
		if err != nil || !bytes.Equal(withNL, out) {
			t.Errorf("line %d: mapping the line with its newline differs (%v)", i, err)
		}
	}
	for _, typ := range []string{"header", "start", "exec", "open", "connect", "fork", "exit", "stop",
		"checkpoint", "recovery", "gap", "heartbeat", "freeze", "thaw", "snapshot",
		"cgroup_move", "proc_access", "file_op", "mount", "namespace", "bpf", "tamper"} {
		if !types[typ] {
			t.Errorf("no %s record was mapped", typ)
		}
	}
}

// checkDisplaySafe holds an event to the native log's promise: no raw
// control, line-breaking or invisible format character (docs/schema.md,
// "Exactness").
func checkDisplaySafe(b []byte) error {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Errorf("byte %d: invalid UTF-8", i)
		case r < 0x20 || r == 0x7f, r >= 0x80 && r < 0xa0, r == 0x2028, r == 0x2029, unicode.Is(unicode.Cf, r):
			return fmt.Errorf("byte %d: raw %U", i, r)
		}
		i += size
	}
	return nil
}

func TestOCSFMapping(t *testing.T) {
	intp := func(v int) *int { return &v }
	tests := []struct {
		name       string
		class      int
		activity   int
		status     *int
		statusCode string
		labels     []string
	}{
		{"header", 1008, 6, intp(1), "", nil},
		{"header-continues", 1008, 5, intp(1), "", nil},
		{"start", 6002, 3, intp(1), "", nil},
		{"exec", 1007, 1, intp(1), "", []string{"tool_call_command"}},
		{"exec-failed", 1007, 1, intp(2), "ENOENT", nil},
		{"open", 1001, 14, intp(1), "", []string{"credential_access"}},
		{"open-failed", 1001, 14, intp(2), "ENOENT", nil},
		{"connect", 4001, 1, intp(2), "ECONNREFUSED", nil},
		{"connect-inprogress", 4001, 1, intp(0), "EINPROGRESS", nil},
		{"connect-unix", 4001, 1, intp(1), "", nil},
		{"connect-unspec", 4001, 2, intp(1), "", nil},
		{"connect-v4mapped", 4001, 1, intp(1), "", nil},
		{"fork", 1007, 1, intp(1), "", nil},
		{"exit", 1007, 2, intp(1), "", nil},
		{"stop", 6002, 4, intp(2), "", nil},
		{"checkpoint", 1008, 7, intp(1), "", nil},
		{"recovery", 1008, 8, intp(1), "", nil},
		{"gap", 1008, 99, intp(2), "kernel", nil},
		{"heartbeat", 1008, 99, intp(1), "", nil},
		{"freeze", 1008, 99, intp(1), "", nil},
		{"thaw", 1008, 99, intp(1), "", nil},
		{"start-daemon", 6002, 3, intp(1), "", nil},
		{"stop-daemon", 6002, 4, intp(1), "", nil},
		{"reload", 6002, 99, intp(1), "", nil},
		{"reload-needs-restart", 6002, 99, intp(1), "", nil},
		{"reload-rejected", 6002, 99, intp(2), "", nil},
		{"snapshot", 1007, 99, intp(1), "", nil},
		{"snapshot-errors", 1007, 99, intp(1), "", nil},
		{"cgroup", 1008, 9, intp(1), "", nil},
		{"cgroup-child", 1008, 9, intp(1), "", nil},
		{"cgroup-rmdir", 1008, 10, intp(1), "", nil},
		{"cgroup-state-full", 1008, 9, intp(2), "state_full", nil},
		{"target", 1008, 9, intp(1), "", nil},
		{"target-remove", 1008, 10, intp(1), "", nil},
		{"cgroup-move", 1007, 99, intp(1), "", nil},
		{"cgroup-move-clone3-refused", 1007, 1, intp(2), "EACCES", nil},
		{"proc-access-ptrace-tainted", 1007, 4, intp(1), "", nil},
		{"proc-access-kill", 1007, 99, intp(2), "EPERM", nil},
		{"proc-access-pidfd-open", 1007, 3, intp(1), "", nil},
		{"file-op-rename", 1001, 5, intp(1), "", nil},
		{"file-op-fchown", 1001, 7, intp(1), "", nil},
		{"mount", 1001, 12, intp(1), "", nil},
		{"mount-umount-i386", 1001, 13, intp(1), "", nil},
		{"namespace", 1007, 99, intp(1), "", nil},
		{"bpf", 1007, 99, intp(2), "EPERM", nil},
		{"tamper", 1008, 99, intp(2), "cgroup_states", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Map(readRecord(t, tt.name), testMeta)
			if err != nil {
				t.Fatal(err)
			}
			var m mapped
			if err := json.Unmarshal(out, &m); err != nil {
				t.Fatal(err)
			}
			if m.ClassUID != tt.class || m.ActivityID != tt.activity {
				t.Errorf("class %d activity %d, want %d %d", m.ClassUID, m.ActivityID, tt.class, tt.activity)
			}
			if fmt.Sprint(deref(m.StatusID)) != fmt.Sprint(deref(tt.status)) || m.StatusCode != tt.statusCode {
				t.Errorf("status %v %q, want %v %q", deref(m.StatusID), m.StatusCode, deref(tt.status), tt.statusCode)
			}
			if strings.Join(m.Metadata.Labels, ",") != strings.Join(tt.labels, ",") {
				t.Errorf("labels %q, want %q", m.Metadata.Labels, tt.labels)
			}
		})
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func readRecord(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/records", name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

// TestGolden compares the whole event of one record of each type (and a
// few variants) with testdata/golden/<name>.json, indented for review.
func TestOCSFGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/records/*.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no records in testdata/records: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".jsonl")
		t.Run(name, func(t *testing.T) {
			line := readRecord(t, name)
			if err := schema.Validate(line); err != nil {
				t.Fatalf("testdata/records/%s.jsonl is not a valid record: %v", name, err)
			}
			out, err := Map(line, testMeta)
			if err != nil {
				t.Fatal(err)
			}
			if err := validateOCSF(t, out); err != nil {
				t.Errorf("does not validate: %v", err)
			}
			var indented bytes.Buffer
			if err := json.Indent(&indented, out, "", "  "); err != nil {
				t.Fatal(err)
			}
			indented.WriteByte('\n')
			golden := filepath.Join("testdata/golden", name+".json")
			if *update {
				if err := os.WriteFile(golden, indented.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(indented.Bytes(), want) {
				t.Errorf("%s differs from the mapping (go test -update rewrites it; review the diff):\n%s", golden, indented.Bytes())
			}
		})
	}
}

func TestOCSFUnknownTypeIsABaseEvent(t *testing.T) {
	line := []byte(`{"v":1,"seq":9,"prev":"0000000000000000000000000000000000000000000000000000000000000000","time":"2025-01-02T03:04:05.123456789Z","ktime":1,"host":"h","boot_id":"","type":"future","future":{"x":1}}`)
	out, err := Map(line, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if err := validateOCSF(t, out); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var m mapped
	json.Unmarshal(out, &m)
	if m.ClassUID != 0 || m.ActivityID != 99 || m.Metadata.UID != ":9" || !bytes.Equal(m.Unmapped.Agenttrace, line) {
		t.Errorf("got %s", out)
	}
}

func TestOCSFMapErrors(t *testing.T) {
	tests := []struct {
		name, line, err string
	}{
		{"not JSON", `{"v":1,`, "ocsf: parsing the record"},
		{"bad time", `{"v":1,"seq":1,"time":"yesterday","type":"exec"}`, `ocsf: record 1: time "yesterday"`},
		{"no type", `{"v":1,"seq":1,"time":"2025-01-02T03:04:05Z"}`, "ocsf: the record has no type"},
		{"no proc", `{"v":1,"seq":2,"time":"2025-01-02T03:04:05Z","type":"open","open":{}}`, "ocsf: open record 2 has no proc object"},
		{"no type object", `{"v":1,"seq":3,"time":"2025-01-02T03:04:05Z","type":"stop"}`, "ocsf: stop record 3 has no stop object"},
		{"cgroup without proc", `{"v":1,"seq":5,"time":"2025-01-02T03:04:05Z","type":"cgroup","cgroup":{"op":"mkdir"}}`, "ocsf: cgroup record 5 has no proc object"},
		{"no reload object", `{"v":1,"seq":6,"time":"2025-01-02T03:04:05Z","type":"reload"}`, "ocsf: reload record 6 has no reload object"},
		{"bad gap window", `{"v":1,"seq":4,"time":"2025-01-02T03:04:05Z","type":"gap","gap":{"from":"x","to":"y"}}`, "ocsf: parsing the record: gap record 4: from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("prefix")
			out, err := Append(dst, []byte(tt.line), testMeta)
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("error %v, want %q…", err, tt.err)
			}
			if string(out) != "prefix" {
				t.Errorf("dst changed on error: %q", out)
			}
		})
	}
}

func TestOCSFAppendKeepsDst(t *testing.T) {
	line := readRecord(t, "open")
	want, err := Map(line, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Append([]byte(`"event":`), line, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `"event":`+string(want) {
		t.Errorf("Append after a prefix:\n got %s\nwant \"event\":%s", got, want)
	}
}

// A host that is not a DNS name goes to device.name, not device.hostname.
func TestOCSFHostThatIsNotAHostname(t *testing.T) {
	line := bytes.Replace(readRecord(t, "exit"), []byte(`"host":"vm"`), []byte(`"host":"my host\u202e"`), 1)
	out, err := Map(line, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	if err := validateOCSF(t, out); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte(`"device":{"name":"my host\u202e"`)) {
		t.Errorf("device: %s", out)
	}
	if err := checkDisplaySafe(out); err != nil {
		t.Error(err)
	}
}

func BenchmarkMap(b *testing.B) {
	lines := nativeLines(b)
	var buf []byte
	var bytesIn int
	for _, l := range lines {
		bytesIn += len(l)
	}
	b.SetBytes(int64(bytesIn / len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var err error
		if buf, err = Append(buf[:0], lines[i%len(lines)], testMeta); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// The schema subset is only worth its name if it refuses what OCSF 1.3.0
// refuses (and, being a closed subset, what agenttrace must not emit).
func TestOCSFSchemaRejects(t *testing.T) {
	tests := []struct {
		name, record string
		mutate       func(m map[string]any)
	}{
		{"process activity without device", "exec", func(m map[string]any) { delete(m, "device") }},
		{"process activity without actor", "exit", func(m map[string]any) { delete(m, "actor") }},
		{"activity name of another id", "exec", func(m map[string]any) { m["activity_name"] = "Terminate" }},
		{"type_uid not class*100+activity", "open", func(m map[string]any) { m["type_uid"] = 100101 }},
		{"activity id outside the enum", "open", func(m map[string]any) { m["activity_id"] = 15 }},
		{"severity caption of another id", "gap", func(m map[string]any) { m["severity"] = "Low" }},
		{"status caption of another id", "open-failed", func(m map[string]any) { m["status"] = "Success" }},
		{"time as a string", "fork", func(m map[string]any) { m["time"] = "2026-11-27T01:28:11Z" }},
		{"unknown attribute", "fork", func(m map[string]any) { m["pid"] = 1 }},
		{"file without type_id", "open", func(m map[string]any) { delete(m["file"].(map[string]any), "type_id") }},
		{"port out of range", "connect", func(m map[string]any) { m["dst_endpoint"].(map[string]any)["port"] = 70000 }},
		{"endpoint with nothing to name it", "connect", func(m map[string]any) { m["dst_endpoint"] = map[string]any{"port": 1} }},
		{"network activity without dst_endpoint", "connect", func(m map[string]any) { delete(m, "dst_endpoint") }},
		{"host profile not named", "connect", func(m map[string]any) { delete(m["metadata"].(map[string]any), "profiles") }},
		{"metadata without product", "start", func(m map[string]any) { delete(m["metadata"].(map[string]any), "product") }},
		{"product without vendor_name", "stop", func(m map[string]any) { delete(m["app"].(map[string]any), "vendor_name") }},
		{"another OCSF version", "heartbeat", func(m map[string]any) { m["metadata"].(map[string]any)["version"] = "1.1.0" }},
		{"event log without a log named", "heartbeat", func(m map[string]any) { delete(m, "log_name"); delete(m, "log_provider") }},
		{"process with neither pid nor uid", "exit", func(m map[string]any) {
			m["process"] = map[string]any{"name": "x"}
		}},
		{"bad hostname", "exit", func(m map[string]any) { m["device"].(map[string]any)["hostname"] = "a b" }},
		{"actor that names nothing", "snapshot", func(m map[string]any) { m["actor"] = map[string]any{} }},
		{"created_time as a string", "snapshot", func(m map[string]any) {
			m["process"].(map[string]any)["created_time"] = "2026-11-27T03:36:14Z"
		}},
		{"event log activity without the host profile", "cgroup", func(m map[string]any) {
			delete(m["metadata"].(map[string]any), "profiles")
		}},
		{"sequence beyond integer_t", "exit", func(m map[string]any) { m["metadata"].(map[string]any)["sequence"] = int64(1) << 40 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Map(readRecord(t, tt.record), testMeta)
			if err != nil {
				t.Fatal(err)
			}
			if err := validateOCSF(t, out); err != nil {
				t.Fatalf("the unmodified event does not validate: %v", err)
			}
			dec := json.NewDecoder(bytes.NewReader(out))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			tt.mutate(m)
			bad, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if err := validateOCSF(t, bad); err == nil {
				t.Errorf("the schema accepts it:\n%s", bad)
			}
		})
	}
}

// Without Meta.LogID, a header or checkpoint still names its log.
func TestOCSFLogIDFromTheRecord(t *testing.T) {
	for name, want := range map[string]string{
		"header":           "011de81458be8e7719005fc6381d9822:1",
		"header-continues": "1fb48926de4dfc2bd05bacc2ec89b022:8",
		"checkpoint":       "011de81458be8e7719005fc6381d9822:42",
		"exit":             ":126",
	} {
		out, err := Map(readRecord(t, name), Meta{})
		if err != nil {
			t.Fatal(err)
		}
		var m mapped
		json.Unmarshal(out, &m)
		if m.Metadata.UID != want {
			t.Errorf("%s: metadata.uid %q, want %q", name, m.Metadata.UID, want)
		}
	}
}
