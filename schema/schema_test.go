package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// validLines are lines written by agenttrace (a real run, the sink's
// continuation and recovery records, internal/record's golden files) and
// two hand-made variants of stop and recovery.
func validLines(t *testing.T) [][]byte {
	t.Helper()
	data, err := os.ReadFile("testdata/valid.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

// pick returns the first valid line containing every one of substrs.
func pick(t *testing.T, lines [][]byte, substrs ...string) []byte {
	t.Helper()
next:
	for _, l := range lines {
		for _, s := range substrs {
			if !bytes.Contains(l, []byte(s)) {
				continue next
			}
		}
		return l
	}
	t.Fatalf("no valid line contains %q", substrs)
	return nil
}

func TestValidLines(t *testing.T) {
	lines := validLines(t)
	types := map[string]bool{}
	for i, line := range lines {
		if err := Validate(line); err != nil {
			t.Errorf("line %d: %v\n%s", i+1, err, line)
		}
		if err := Validate(append(bytes.Clone(line), '\n')); err != nil {
			t.Errorf("line %d with its newline: %v", i+1, err)
		}
		var env struct{ Type string }
		json.Unmarshal(line, &env)
		types[env.Type] = true
	}
	for _, typ := range []string{"header", "start", "exec", "open", "connect", "fork", "exit", "stop", "checkpoint", "recovery",
		"send", "bind", "listen", "accept", "sock_state", "dns"} {
		if !types[typ] {
			t.Errorf("testdata has no %s record", typ)
		}
	}
}

// mutate decodes line, applies fn to the object and encodes it again.
func mutate(t *testing.T, line []byte, fn func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return escapeLikeTheEncoder(out)
}

// escapeLikeTheEncoder writes as \u escapes the characters that
// encoding/json leaves raw but agenttrace escapes (C1 controls, DEL, format
// characters), so that a mutated line fails only for its mutation.
func escapeLikeTheEncoder(b []byte) []byte {
	var out []byte
	for _, r := range string(b) {
		if r == 0x7f || (r >= 0x80 && r < 0xa0) || unicode.Is(unicode.Cf, r) {
			for _, u := range utf16.Encode([]rune{r}) {
				out = fmt.Appendf(out, "\\u%04x", u)
			}
			continue
		}
		out = utf8.AppendRune(out, r)
	}
	return out
}

func obj(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	return m
}

func rename(m map[string]any, from, to string) {
	m[to] = m[from]
	delete(m, from)
}

func TestInvalidLines(t *testing.T) {
	lines := validLines(t)
	// The round trip alone must keep every line valid, or a case could
	// fail for a reason other than its mutation.
	for i, l := range lines {
		if err := Validate(mutate(t, l, func(map[string]any) {})); err != nil {
			t.Fatalf("line %d after a round trip: %v", i+1, err)
		}
	}
	for _, tc := range []struct {
		name string
		base []string // substrings that select the valid line to mutate
		fn   func(m map[string]any)
	}{
		{"envelope: renamed member", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { rename(m, "ktime", "k_time") }},
		{"envelope: unknown member", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { m["tokens_used"] = 12 }},
		{"envelope: v 2", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { m["v"] = 2 }},
		{"envelope: seq 0", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { m["seq"] = 0 }},
		{"envelope: seq as a string", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { m["seq"] = "3" }},
		{"envelope: time without nanoseconds", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { m["time"] = "2026-11-27T01:28:11Z" }},
		{"envelope: time not UTC", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { m["time"] = "2026-11-27T01:28:11.359669832+01:00" }},
		{"envelope: impossible time", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { m["time"] = "2026-13-27T01:28:11.359669832Z" }},
		{"envelope: prev uppercase", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { m["prev"] = strings.ToUpper(m["prev"].(string)) }},
		{"envelope: prev missing", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { delete(m, "prev") }},
		{"envelope: boot_id not a uuid", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { m["boot_id"] = "xyz" }},
		{"envelope: unknown type", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { m["type"] = "read" }},
		{"envelope: host_b64 without an inexact host", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { m["host_b64"] = "dm0=" }},
		{"kernel record without cpu", []string{`"type":"fork"`}, func(m map[string]any) { delete(m, "cpu") }},
		{"kernel record without kseq", []string{`"type":"fork"`}, func(m map[string]any) { delete(m, "kseq") }},
		{"type object missing", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { delete(m, "open") }},
		{"another type's object", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { rename(m, "open", "exec") }},
		{"an extra type object", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { m["exit"] = map[string]any{"status": 0, "code": 0} }},
		{"type names another object", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { m["type"] = "connect" }},
		{"start with proc", []string{`"type":"start"`}, func(m map[string]any) { m["proc"] = map[string]any{} }},
		{"start with cpu", []string{`"type":"start"`}, func(m map[string]any) { m["cpu"] = 0 }},
		{"proc: renamed pid", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { rename(obj(m, "proc"), "pid", "pidd") }},
		{"proc: unknown member", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { obj(m, "proc")["container"] = "x" }},
		{"proc: abi amd64", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { obj(m, "proc")["abi"] = "amd64" }},
		{"proc: pid over 32 bits", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { obj(m, "proc")["pid"] = json.Number("4294967296") }},
		{"proc: exec_id malformed", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { obj(m, "proc")["exec_id"] = "12-34" }},
		{"proc: comm missing", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { delete(obj(m, "proc"), "comm") }},
		{"exec: renamed argv", []string{`"type":"exec"`, `"syscall":"execve"`, `"ret":0`}, func(m map[string]any) { rename(obj(m, "exec"), "argv", "args") }},
		{"exec: success without exe_file", []string{`"type":"exec"`, `"syscall":"execve"`, `"ret":0`}, func(m map[string]any) { delete(obj(m, "exec"), "exe_file") }},
		{"exec: failure with exe", []string{`"type":"exec"`, `"filename_b64"`}, func(m map[string]any) { obj(m, "exec")["exe"] = "/bin/x" }},
		{"exec: past_point_of_no_return without argv_unreadable", []string{`"past_point_of_no_return":true`}, func(m map[string]any) { delete(obj(m, "exec"), "argv_unreadable") }},
		{"exec: past_point_of_no_return on a success", []string{`"type":"exec"`, `"syscall":"execve"`, `"ret":0`}, func(m map[string]any) {
			obj(m, "exec")["past_point_of_no_return"] = true
			obj(m, "exec")["argv_unreadable"] = true
		}},
		{"exec: past_point_of_no_return false", []string{`"past_point_of_no_return":true`}, func(m map[string]any) { obj(m, "exec")["past_point_of_no_return"] = false }},
		{"exec: exe without exe_file", []string{`"past_point_of_no_return":true`}, func(m map[string]any) { delete(obj(m, "exec"), "exe_file") }},
		{"exec: failure without errno", []string{`"type":"exec"`, `"filename_b64"`}, func(m map[string]any) { delete(obj(m, "exec"), "errno") }},
		{"exec: errno lowercase", []string{`"type":"exec"`, `"filename_b64"`}, func(m map[string]any) { obj(m, "exec")["errno"] = "enoent" }},
		{"exec: success with errno", []string{`"type":"exec"`, `"syscall":"execve"`, `"ret":0`}, func(m map[string]any) { obj(m, "exec")["errno"] = "ENOENT" }},
		{"exec: argv_b64 not base64", []string{`"type":"exec"`, `"filename_b64"`}, func(m map[string]any) { obj(m, "exec")["argv_b64"] = []any{"!!"} }},
		{"exec: argv_b64 without an inexact argument", []string{`"type":"exec"`, `"syscall":"execve"`, `"ret":0`}, func(m map[string]any) { obj(m, "exec")["argv_b64"] = []any{"c2g="} }},
		{"exec: filename_b64 without filename", []string{`"type":"exec"`, `"filename_b64"`}, func(m map[string]any) { delete(obj(m, "exec"), "filename") }},
		{"exec: argv_truncated without argv_size", []string{`"type":"exec"`, `"syscall":"execve"`, `"ret":0`}, func(m map[string]any) { obj(m, "exec")["argv_truncated"] = true }},
		{"exec: argv_empty false", []string{`"type":"exec"`, `"syscall":"execve"`, `"ret":0`}, func(m map[string]any) { obj(m, "exec")["argv_empty"] = false }},
		{"exec: execve with dirfd", []string{`"type":"exec"`, `"syscall":"execve"`, `"ret":0`}, func(m map[string]any) { obj(m, "exec")["dirfd"] = 3 }},
		{"exec: execveat without flags", []string{`"type":"exec"`, `"syscall":"execveat"`}, func(m map[string]any) { delete(obj(m, "exec"), "flags") }},
		{"exec: unknown AT flag name", []string{`"type":"exec"`, `"syscall":"execveat"`}, func(m map[string]any) { obj(m, "exec")["flags"] = []any{"AT_FOO"} }},
		{"exec: mode not octal", []string{`"type":"exec"`, `"syscall":"execve"`, `"ret":0`}, func(m map[string]any) { obj(m, "exec", "exe_file")["mode"] = "100755" }},
		{"exec: dev not major:minor", []string{`"type":"exec"`, `"syscall":"execve"`, `"ret":0`}, func(m map[string]any) { obj(m, "exec", "exe_file")["dev"] = "254" }},
		{"exec: syscall open", []string{`"type":"exec"`, `"syscall":"execve"`, `"ret":0`}, func(m map[string]any) { obj(m, "exec")["syscall"] = "open" }},
		{"open: unknown flag name", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { obj(m, "open")["flags"] = []any{"O_RDONLY", "O_FOO"} }},
		{"open: no access mode first", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { obj(m, "open")["flags"] = []any{"O_CLOEXEC"} }},
		{"open: uppercase hex bits", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { obj(m, "open")["flags"] = []any{"O_RDONLY", "0x4000000A"} }},
		{"open: mode as a number", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { obj(m, "open")["mode"] = 420 }},
		{"open: mode without leading 0", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { obj(m, "open")["mode"] = "644" }},
		{"open: fd on failure", []string{`"type":"open"`, `"errno":"ENOENT"`}, func(m map[string]any) { obj(m, "open")["fd"] = 3 }},
		{"open: no fd on success", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { delete(obj(m, "open"), "fd") }},
		{"open: resolve on openat", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { obj(m, "open")["resolve"] = []any{} }},
		{"open: openat2 without resolve", []string{`"syscall":"openat2"`}, func(m map[string]any) { delete(obj(m, "open"), "resolve") }},
		{"open: creat with other flags", []string{`"type":"open"`, `"errno":"ENOENT"`}, func(m map[string]any) {
			obj(m, "open")["syscall"] = "creat"
			obj(m, "open")["dirfd"] = -100
		}},
		{"open: path_b64 for an exact path", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { obj(m, "open")["path_b64"] = "L2V0Yw==" }},
		{"open: path_truncated false", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) { obj(m, "open")["path_truncated"] = false }},
		{"open: errno for ret -4096", []string{`"type":"open"`, `"syscall":"openat"`, `"fd":`}, func(m map[string]any) {
			delete(obj(m, "open"), "fd")
			obj(m, "open")["ret"] = -4096
			obj(m, "open")["errno"] = "E4096"
		}},
		{"connect: family and family_num disagree", []string{`"family":"AF_INET6"`, `"flowinfo"`}, func(m map[string]any) { obj(m, "connect")["family_num"] = 2 }},
		{"connect: unknown family name", []string{`"family":"AF_INET6"`, `"flowinfo"`}, func(m map[string]any) { obj(m, "connect")["family"] = "AF_FOO" }},
		{"connect: known number without its name", []string{`"family":"AF_INET6"`, `"flowinfo"`}, func(m map[string]any) { delete(obj(m, "connect"), "family") }},
		{"connect: ipv4 address in AF_INET6", []string{`"family":"AF_INET6"`, `"flowinfo"`}, func(m map[string]any) { obj(m, "connect")["addr"] = "10.0.0.1" }},
		{"connect: port out of range", []string{`"family":"AF_INET6"`, `"flowinfo"`}, func(m map[string]any) { obj(m, "connect")["port"] = 65536 }},
		{"connect: addr without port", []string{`"family":"AF_INET6"`, `"flowinfo"`}, func(m map[string]any) { delete(obj(m, "connect"), "port") }},
		{"connect: v4_mapped on a v6 address", []string{`"family":"AF_INET6"`, `"flowinfo"`}, func(m map[string]any) { obj(m, "connect")["v4_mapped"] = true }},
		{"connect: unix_path on AF_INET6", []string{`"family":"AF_INET6"`, `"flowinfo"`}, func(m map[string]any) { obj(m, "connect")["unix_path"] = "/x" }},
		{"connect: two unix forms", []string{`"unix_path"`}, func(m map[string]any) { obj(m, "connect")["unix_unnamed"] = true }},
		{"connect: AF_UNIX without a form", []string{`"unix_path"`}, func(m map[string]any) { delete(obj(m, "connect"), "unix_path") }},
		{"fork: child_exec_id malformed", []string{`"type":"fork"`}, func(m map[string]any) { obj(m, "fork")["child_exec_id"] = "x" }},
		{"fork: child_tool_call malformed", []string{`"child_tool_call"`}, func(m map[string]any) { obj(m, "fork")["child_tool_call"] = "12-34" }},
		{"fork: child_tool_call from a tool call", []string{`"child_tool_call"`}, func(m map[string]any) { obj(m, "proc")["tool_call"] = "1-2-3" }},
		{"proc: tool_call malformed", []string{`"tool_call":"`, `"type":"open"`}, func(m map[string]any) { obj(m, "proc")["tool_call"] = "" }},
		{"exec: unknown tag", []string{`"tags":["tool_call_command"]`}, func(m map[string]any) { m["tags"] = []any{"tool_call"} }},
		{"exec: tool_call_command without tool_call", []string{`"tags":["tool_call_command"]`}, func(m map[string]any) { delete(obj(m, "proc"), "tool_call") }},
		{"exec: tool_call_command on a failure", []string{`"type":"exec"`, `"filename_b64"`}, func(m map[string]any) {
			m["tags"] = []any{"tool_call_command"}
			obj(m, "proc")["tool_call"] = "1-2-3"
		}},
		{"exec: credential_access", []string{`"tags":["tool_call_command"]`}, func(m map[string]any) { m["tags"] = []any{"credential_access"} }},
		{"open: unknown tag", []string{`"tags":["credential_access"]`}, func(m map[string]any) { m["tags"] = []any{"secret"} }},
		{"open: tool_call_command", []string{`"tags":["credential_access"]`}, func(m map[string]any) { m["tags"] = []any{"tool_call_command"} }},
		{"open: empty tags", []string{`"tags":["credential_access"]`}, func(m map[string]any) { m["tags"] = []any{} }},
		{"open: tags twice", []string{`"tags":["credential_access"]`}, func(m map[string]any) { m["tags"] = []any{"credential_access", "credential_access"} }},
		{"fork: tags", []string{`"child_tool_call"`}, func(m map[string]any) { m["tags"] = []any{"credential_access"} }},
		{"start: sensitive_paths not strings", []string{`"sensitive_paths"`}, func(m map[string]any) { obj(m, "start")["sensitive_paths"] = []any{1} }},
		{"start: empty sensitive path", []string{`"sensitive_paths"`}, func(m map[string]any) { obj(m, "start")["sensitive_paths"] = []any{""} }},
		{"exit: code and signal", []string{`"type":"exit"`, `"code":1}`}, func(m map[string]any) { obj(m, "exit")["signal"] = "SIGKILL"; obj(m, "exit")["signal_num"] = 9 }},
		{"exit: code with signal bits", []string{`"type":"exit"`, `"code":1}`}, func(m map[string]any) { obj(m, "exit")["status"] = 9 }},
		{"exit: signal name malformed", []string{`"signal":"SIGKILL"`}, func(m map[string]any) { obj(m, "exit")["signal"] = "KILL" }},
		{"exit: code 256", []string{`"type":"exit"`, `"code":1}`}, func(m map[string]any) { obj(m, "exit")["code"] = 256 }},
		{"start: renamed argv", []string{`"type":"start"`}, func(m map[string]any) { rename(obj(m, "start"), "argv", "args") }},
		{"start: unknown hook", []string{`"type":"start"`}, func(m map[string]any) {
			obj(m, "start")["hooks"] = []any{map[string]any{"hook": "kprobe/x", "tag": ""}}
		}},
		{"stop: records with an unknown type", []string{`"type":"stop"`, `"left_running":0`}, func(m map[string]any) { obj(m, "stop", "records")["read"] = 1 }},
		{"stop: lost zero", []string{`"type":"stop"`, `"left_running":0`}, func(m map[string]any) { obj(m, "stop", "lost")["exec"] = 0 }},
		{"stop: usage field", []string{`"type":"stop"`, `"left_running":0`}, func(m map[string]any) { obj(m, "stop")["cost_usd"] = 0.12 }},
		{"stop: left_running without action", []string{`"type":"stop"`, `"left_running_action"`}, func(m map[string]any) { delete(obj(m, "stop"), "left_running_action") }},
		{"stop: action without left_running", []string{`"type":"stop"`, `"left_running":0`}, func(m map[string]any) {
			obj(m, "stop")["left_running_action"] = "killed with SIGKILL after the grace period"
		}},
		{"header: segment 2 without continues", []string{`"type":"header"`, `"segment":1,`}, func(m map[string]any) { obj(m, "header")["segment"] = 2 }},
		{"header: continues on segment 1", []string{`"type":"header"`, `"continues"`}, func(m map[string]any) { obj(m, "header")["segment"] = 1 }},
		{"header: log_id short", []string{`"type":"header"`, `"segment":1,`}, func(m map[string]any) { obj(m, "header")["log_id"] = "abc" }},
		{"checkpoint: root not base64 of 32 bytes", []string{`"type":"checkpoint"`}, func(m map[string]any) { obj(m, "checkpoint")["root"] = "AAAA" }},
		{"checkpoint: final false", []string{`"type":"checkpoint"`}, func(m map[string]any) { obj(m, "checkpoint")["final"] = false }},
		{"recovery: torn bytes without hash", []string{`"type":"recovery"`, `"torn_sha256"`}, func(m map[string]any) { delete(obj(m, "recovery"), "torn_sha256") }},
		{"recovery: offset without torn bytes", []string{`"type":"recovery"`, `"torn_bytes":0`}, func(m map[string]any) { obj(m, "recovery")["torn_offset"] = 3 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := mutate(t, pick(t, lines, tc.base...), tc.fn)
			if err := Validate(line); err == nil {
				t.Errorf("Validate accepted\n%s", line)
			}
		})
	}
}

func TestInvalidText(t *testing.T) {
	open := string(pick(t, validLines(t), `"type":"open"`))
	for _, tc := range []struct{ name, line string }{
		{"empty", ""},
		{"not JSON", "hello"},
		{"an array", "[1]"},
		{"truncated", open[:len(open)-1]},
		{"trailing data", open + " {}"},
		{"two lines", open + "\n" + open},
		{"CRLF", open + "\r\n"},
		{"duplicate member", strings.Replace(open, `"type":"open"`, `"type":"open","type":"open"`, 1)},
		{"duplicate nested member", strings.Replace(open, `"pid":`, `"pid":1,"pid":`, 1)},
		{"invalid UTF-8", strings.Replace(open, `"comm":"`, "\"comm\":\"\xff", 1)},
		{"raw U+2028", strings.Replace(open, `"comm":"`, "\"comm\":\"\u2028", 1)},
		{"raw U+202E", strings.Replace(open, `"comm":"`, "\"comm\":\"\u202e", 1)},
		{"raw C1 control", strings.Replace(open, `"comm":"`, "\"comm\":\"\u0085", 1)},
		{"raw DEL", strings.Replace(open, `"comm":"`, "\"comm\":\"\x7f", 1)},
		{"raw tag character", strings.Replace(open, `"comm":"`, "\"comm\":\"\U000E0041", 1)},
		{"raw tab between members", strings.Replace(open, `,"type"`, ",\t\"type\"", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Validate([]byte(tc.line)); err == nil {
				t.Errorf("Validate accepted %q", tc.line)
			}
		})
	}
	// The escaped forms of the same characters are what the encoder writes.
	escaped := strings.Replace(open, `"comm":"`, `"comm":"\u2028\u202e\u0085\u007f\udb40\udc41`, 1)
	if err := Validate([]byte(escaped)); err != nil {
		t.Errorf("escaped characters: %v", err)
	}
}

func TestValidateConcurrent(t *testing.T) {
	lines := validLines(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, line := range lines {
				if err := Validate(line); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}

func TestSchemaIsValidJSON(t *testing.T) {
	var m map[string]any
	if err := json.Unmarshal(JSON, &m); err != nil {
		t.Fatal(err)
	}
	if m["$id"] != ID || m["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$id %v, $schema %v", m["$id"], m["$schema"])
	}
	if _, err := compiledSchema(); err != nil {
		t.Fatal(err)
	}
}

// TestClosedObjects walks the schema: every object schema with properties
// is closed, so that a renamed or added member fails validation. The root
// only selects the record schema by type; each <type>Record is closed.
func TestClosedObjects(t *testing.T) {
	var doc any
	if err := json.Unmarshal(JSON, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["properties"]; ok && v["type"] == "object" && path != "#" {
				if ap, ok := v["additionalProperties"]; !ok || ap != false {
					t.Errorf("%s: object with properties is not closed (additionalProperties: false)", path)
				}
			}
			for k, c := range v {
				walk(path+"/"+k, c)
			}
		case []any:
			for i, c := range v {
				walk(path+"/"+string(rune('0'+i%10)), c)
			}
		}
	}
	walk("#", doc)
}

// TestDocExamples keeps docs/schema.md honest: every ```json example is one
// valid record, and every record type has one.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/schema.md")
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, block := range strings.Split(string(doc), "```json\n")[1:] {
		example, _, ok := strings.Cut(block, "\n```")
		if !ok {
			t.Fatalf("unterminated example: %.80s", block)
		}
		if err := Validate([]byte(example)); err != nil {
			t.Errorf("example does not validate: %v\n%s", err, example)
		}
		var env struct{ Type string }
		json.Unmarshal([]byte(example), &env)
		types[env.Type] = true
	}
	for _, typ := range []string{"header", "start", "exec", "open", "connect", "fork", "exit", "stop", "checkpoint", "recovery",
		"send", "bind", "listen", "accept", "sock_state", "dns"} {
		if !types[typ] {
			t.Errorf("docs/schema.md has no example of a %s record", typ)
		}
	}
}
