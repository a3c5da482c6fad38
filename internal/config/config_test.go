package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agenttrace/agenttrace/internal/cgroup"
	"github.com/agenttrace/agenttrace/internal/export"
	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/pipeline"
	"github.com/agenttrace/agenttrace/internal/sink"
)

// writeFile writes a file with an explicit mode (the umask does not apply).
func writeFile(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// setup makes a private directory holding the configuration text (with
// KEY replaced by the signing key's path) and returns both paths.
func setup(t *testing.T, text string) (configPath, keyPath string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	configPath = filepath.Join(dir, "agenttrace.yaml")
	keyPath = filepath.Join(dir, "signing.key")
	writeFile(t, configPath, strings.ReplaceAll(text, "KEY", keyPath), 0o644)
	return configPath, keyPath
}

func mustLoad(t *testing.T, path string) *Config {
	t.Helper()
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

// pattern builds the expected cgroup.Pattern of a valid target.
func pattern(t *testing.T, text string) cgroup.Pattern {
	t.Helper()
	p, err := cgroup.ParsePattern(text)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const fullFile = `targets: ["agents.slice/*", "/kubepods.slice/*/*agent*/"]
log:
  dir: /var/log/at/
  name: a.jsonl
  rotate_size: 64MiB
  rotate_interval: 1h
  fsync: always
  group_read: true
signing_key: KEY
checkpoint: {records: 500, interval: 5s}
heartbeat: 30s
ring_size: 33554432
max_arg_bytes: 64KiB
fail_closed: true
sensitive_paths: ["/srv/app/secret.json", " !.env "]
metrics: {listen: "[::1]:9000"}
state_dir: /var/lib/at
drain_timeout: 1m
exporters:
  - name: siem
    type: syslog
    format: ocsf
    syslog: {address: "siem.example:6514"}
  - name: splunk
    type: hec
    hec: {url: "https://splunk.example:8088", token: "00000000-0000-0000-0000-000000000000"}
`

func TestLoadFull(t *testing.T) {
	path, key := setup(t, fullFile)
	writeFile(t, key, "key\n", 0o600)
	got := mustLoad(t, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Targets: []cgroup.Pattern{
			{Text: "agents.slice/*", Components: []string{"agents.slice", "*"}},
			{Text: "kubepods.slice/*/*agent*", Components: []string{"kubepods.slice", "*", "*agent*"}},
		},
		Log: LogConfig{
			Dir:            "/var/log/at",
			Name:           "a.jsonl",
			RotateSize:     64 << 20,
			RotateInterval: time.Hour,
			Fsync:          "always",
			GroupRead:      true,
		},
		SigningKey:     key,
		Checkpoint:     CheckpointConfig{Records: 500, Interval: 5 * time.Second},
		Heartbeat:      30 * time.Second,
		RingSize:       32 << 20,
		MaxArgBytes:    64 << 10,
		FailClosed:     true,
		SensitivePaths: []string{"/srv/app/secret.json", "!.env"},
		Metrics:        MetricsConfig{Listen: "[::1]:9000"},
		StateDir:       "/var/lib/at",
		DrainTimeout:   time.Minute,
		Exporters: []export.Config{
			{Name: "siem", Type: "syslog", Format: "ocsf", Syslog: &export.SyslogConfig{Address: "siem.example:6514"}},
			{Name: "splunk", Type: "hec", HEC: &export.HECConfig{URL: "https://splunk.example:8088", Token: "00000000-0000-0000-0000-000000000000"}},
		},
		Path:         path,
		Hash:         sha256Hex(data),
		targetsGiven: 2,
	}
	got.lines = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", got, want)
	}
	if err := got.CheckDaemon(); err != nil {
		t.Errorf("CheckDaemon: %v", err)
	}
}

// defaults is the configuration of a file that sets nothing.
func defaults(path string, data []byte) *Config {
	return &Config{
		Log: LogConfig{
			Dir:        "/var/log/agenttrace",
			Name:       "audit.jsonl",
			RotateSize: 256 << 20,
			Fsync:      "checkpoint",
		},
		Checkpoint:   CheckpointConfig{Records: sink.DefaultCheckpointRecords, Interval: sink.DefaultCheckpointInterval},
		Heartbeat:    pipeline.DefaultHeartbeat,
		RingSize:     loader.DefaultRingBytes,
		MaxArgBytes:  loader.DefaultMaxArgBytes,
		Metrics:      MetricsConfig{Listen: "127.0.0.1:9477"},
		StateDir:     "/var/lib/agenttrace",
		DrainTimeout: 10 * time.Second,
		Path:         path,
		Hash:         sha256Hex(data),
	}
}

// TestLoadDaemonReportsAll: the problems of the file and what the daemon
// needs beyond it come in one error, one line each.
func TestLoadDaemonReportsAll(t *testing.T) {
	path, _ := setup(t, "ring: 16MiB\nheartbeat: soon\n")
	_, err := LoadDaemon(path)
	if err == nil {
		t.Fatal("LoadDaemon accepted a file with three problems")
	}
	msg := err.Error()
	if n := strings.Count(msg, "\n"); n != 3 || !strings.Contains(msg, `:1: unknown key "ring"`) || !strings.Contains(msg, `:2: heartbeat "soon"`) ||
		!strings.Contains(msg, "targets: the daemon needs at least one target") || !strings.Contains(msg, "signing_key: required by the daemon") {
		t.Fatalf("LoadDaemon error, want four lines (unknown key, bad value, no targets, no signing key):\n%v", err)
	}
}

func TestLoadDefaults(t *testing.T) {
	for _, text := range []string{
		"",
		"# nothing set\n",
		"---\n",
		"log: {}\ncheckpoint:\nmetrics: {}\ntargets: []\nexporters: []\nheartbeat: ~\n",
	} {
		path, _ := setup(t, text)
		got := mustLoad(t, path)
		got.lines = nil
		want := defaults(path, []byte(text))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n got %+v\nwant %+v", text, got, want)
		}
	}
}

func TestMetricsListen(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"targets: [a]\n", "127.0.0.1:9477"},
		{"metrics: {}\n", "127.0.0.1:9477"},
		{"metrics: {listen: \"\"}\n", ""},
		{"metrics:\n  listen:\n", ""},
		{"metrics: {listen: \":9477\"}\n", ":9477"},
		{"metrics: {listen: \"0.0.0.0:1\"}\n", "0.0.0.0:1"},
	} {
		path, _ := setup(t, tt.text)
		if got := mustLoad(t, path).Metrics.Listen; got != tt.want {
			t.Errorf("%q: Listen = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	tooMany := "targets:\n"
	for i := range cgroup.MaxPatterns + 1 {
		tooMany += "  - a/t" + string(rune('a'+i)) + "\n"
	}
	for _, tt := range []struct {
		name, text string
		want       string // FILE stands for the file's path
	}{
		{"unknown key", "targets: [a]\n\nring: 16MiB\n",
			`FILE:3: unknown key "ring" (the keys are: targets, log, signing_key, checkpoint, heartbeat, ring_size, max_arg_bytes, fail_closed, sensitive_paths, metrics, state_dir, drain_timeout, exporters)`},
		{"unknown nested key", "log:\n  dir: /x\n  rotate: 1h\n",
			`FILE:3: unknown key "log.rotate" (the keys of log are: dir, name, rotate_size, rotate_interval, fsync, group_read)`},
		{"unknown exporter key", "exporters:\n  - name: a\n    type: syslog\n    syslog:\n      adress: x:1\n",
			"FILE:4: exporters[0].syslog.address: required (host:port of the receiver, e.g. siem.example:6514)\n" +
				`FILE:5: unknown key "exporters[0].syslog.adress" (the keys of exporters[0].syslog are: address, tls, facility, severity, severity_by_type, batch_size, flush_interval, dial_timeout, write_timeout, confirm_after, max_unconfirmed)`},
		// Every problem at once, whatever its kind.
		{"an unknown key and a bad value", "heartbeat: soon\nring: 16MiB\n",
			"FILE:1: heartbeat \"soon\": not a duration (write it as 10s, 1m30s or 24h)\n" + `FILE:2: unknown key "ring" (the keys are: targets, log, signing_key, checkpoint, heartbeat, ring_size, max_arg_bytes, fail_closed, sensitive_paths, metrics, state_dir, drain_timeout, exporters)`},
		{"repeated key", "heartbeat: 1s\nlog: {}\nheartbeat: 2s\n",
			`FILE:3: heartbeat: repeated (first at line 1)`},
		{"merge key", "log: {dir: /x}\n<<: {heartbeat: 1s}\n",
			`FILE:2: merge keys (<<) are not supported`},
		{"syntax", "targets: [a\nlog: {}\n",
			`FILE:1: did not find expected ',' or ']'`},
		{"two documents", "targets: [a]\n---\ntargets: [b]\n",
			`FILE:2: a second YAML document: the file must hold one`},
		{"not a mapping", "- a\n- b\n",
			`FILE:1: the file must be a mapping of keys (targets:, log:, ...), not a list`},
		{"list wanted", "targets: agents.slice/*\n",
			`FILE:1: targets: want a list, not "agents.slice/*"`},
		{"mapping wanted", "log: /var/log\n",
			`FILE:1: log: want a mapping (key: value lines), not "/var/log"`},
		{"bool wanted", "fail_closed: yes please\n",
			`FILE:1: fail_closed "yes please": want true or false`},
		{"scalar wanted", "signing_key: [a]\n",
			`FILE:1: signing_key: want a string, not a list`},
		{"records negative", "checkpoint:\n  records: -1\n",
			`FILE:2: checkpoint.records "-1": want a non-negative integer`},
		{"bad target", "targets:\n  - agents.slice/*\n  - a/[bc]\n",
			`FILE:3: targets[1] "a/[bc]": only * and ? are supported as wildcards (no [...] classes or \ escapes)`},
		{"bad target flow", "targets: [\"a/..\", \"/\"]\n",
			"FILE:1: targets[0] \"a/..\": \"..\" is not allowed in a target\n" +
				`FILE:1: targets[1] "/": empty (the cgroup2 root itself cannot be a target: it would trace the whole host)`},
		{"duplicate target", "targets:\n  - agents.slice/*\n  - /agents.slice/*/\n",
			`FILE:3: targets[1] "/agents.slice/*/": repeats targets[0]`},
		{"too many targets", tooMany,
			`FILE:1: targets: 17 patterns, at most 16 are supported`},
		{"decimal unit", "log:\n  rotate_size: 12MB\n",
			`FILE:2: log.rotate_size "12MB": unknown unit "MB" (use B, KiB, MiB or GiB)`},
		{"size not a number", "log:\n  rotate_size: lots\n",
			`FILE:2: log.rotate_size "lots": want an integer with an optional unit B, KiB, MiB or GiB, such as 128MiB`},
		{"size negative", "log:\n  rotate_size: -1\n",
			`FILE:2: log.rotate_size "-1": must not be negative`},
		{"size float", "ring_size: 1.5\n",
			`FILE:1: ring_size "1.5": want a size such as 128MiB`},
		{"ring not a power of two", "ring_size: 3MiB\n",
			`FILE:1: ring_size "3MiB": must be a power of two (such as 16MiB)`},
		{"ring too large", "ring_size: 2GiB\n",
			`FILE:1: ring_size "2GiB": at most 1GiB`},
		{"ring too small", "ring_size: 1KiB\n",
			`FILE:1: ring_size "1KiB": at least a page (4096 bytes)`},
		{"max arg bytes", "max_arg_bytes: 2MiB\n",
			`FILE:1: max_arg_bytes "2MiB": must be between 1 and 1MiB`},
		{"max arg bytes zero", "max_arg_bytes: 0\n",
			`FILE:1: max_arg_bytes "0": must be between 1 and 1MiB`},
		{"bad duration", "heartbeat: ten seconds\n",
			`FILE:1: heartbeat "ten seconds": not a duration (write it as 10s, 1m30s or 24h)`},
		{"duration without unit", "checkpoint:\n  interval: 10\n",
			`FILE:2: checkpoint.interval "10": a duration needs a unit (write 10s)`},
		{"duration negative", "log:\n  rotate_interval: -1h\n",
			`FILE:2: log.rotate_interval "-1h": must not be negative`},
		{"duration zero", "drain_timeout: 0s\n",
			`FILE:1: drain_timeout "0s": must be positive`},
		{"records zero", "checkpoint: {records: 0}\n",
			`FILE:1: checkpoint.records: must be at least 1`},
		{"relative dir", "log:\n  dir: logs\n",
			`FILE:2: log.dir "logs": must be an absolute path`},
		{"relative key", "signing_key: signing.key\n",
			`FILE:1: signing_key "signing.key": must be an absolute path`},
		{"log name", "log:\n  name: a/b.jsonl\n",
			`FILE:2: log.name "a/b.jsonl": must be a file name, without / or glob characters (* ? [ \)`},
		{"fsync", "log:\n  fsync: never\n",
			`FILE:2: log.fsync "never": want checkpoint or always`},
		{"listen", "metrics:\n  listen: localhost\n",
			`FILE:2: metrics.listen "localhost": want host:port (such as 127.0.0.1:9477), or "" to disable metrics`},
		{"sensitive path", "sensitive_paths:\n  - ok\n  - a/[b\n  - ''\n  - '#x'\n",
			"FILE:3: sensitive_paths[1] \"a/[b\": syntax error in pattern\n" +
				"FILE:4: sensitive_paths[2]: empty pattern\n" +
				`FILE:5: sensitive_paths[3] "#x": a pattern cannot start with # (a comment in a --sensitive-paths file)`},
		{"duplicate exporter", "exporters:\n  - name: siem\n    type: syslog\n    syslog: {address: \"x:1\"}\n  - name: siem\n    type: syslog\n    syslog: {address: \"y:1\"}\n",
			`FILE:5: exporters[1].name "siem": repeats exporters[0]; names must be unique`},
		{"exporter without name", "exporters:\n  - type: syslog\n    syslog: {address: \"x:1\"}\n",
			`FILE:2: exporters[0].name: required (it names the exporter's cursor and metrics)`},
		{"exporter type", "exporters:\n  - name: a\n    type: kafka\n",
			`FILE:3: exporters[0].type: "kafka": want syslog or hec`},
		{"exporter format", "exporters:\n  - name: a\n    type: hec\n    format: cef\n    hec: {url: x}\n",
			`FILE:4: exporters[0].format: "cef": want native or ocsf`},
		{"exporter block", "exporters:\n  - name: a\n    type: syslog\n",
			`FILE:2: exporters[0].syslog: required for type syslog (at least syslog.address)`},
		{"every problem, in file order", "max_arg_bytes: 0\nheartbeat: x\ntargets: [\"a/[b\"]\n",
			"FILE:1: max_arg_bytes \"0\": must be between 1 and 1MiB\n" +
				"FILE:2: heartbeat \"x\": not a duration (write it as 10s, 1m30s or 24h)\n" +
				`FILE:3: targets[0] "a/[b": only * and ? are supported as wildcards (no [...] classes or \ escapes)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path, _ := setup(t, tt.text)
			c, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", c)
			}
			if want := strings.ReplaceAll(tt.want, "FILE", path); err.Error() != want {
				t.Errorf("error:\n got %s\nwant %s", err, want)
			}
		})
	}
}

func TestCheckDaemon(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		key        bool // create the key, mode 0600
		want       string
	}{
		{"complete", "targets: [a]\nsigning_key: KEY\n", true, ""},
		{"nothing", "log: {}\n", false,
			"FILE: targets: the daemon needs at least one target (a cgroup glob such as agents.slice/*)\n" +
				"FILE: signing_key: required by the daemon (agenttrace keygen --out /etc/agenttrace creates /etc/agenttrace/signing.key)"},
		{"empty targets", "\ntargets: []\nsigning_key: KEY\n", true,
			"FILE:2: targets: the daemon needs at least one target (a cgroup glob such as agents.slice/*)"},
		{"missing key", "targets: [a]\nsigning_key: KEY\n", false,
			`FILE:2: signing_key "DIR/signing.key": no such file (agenttrace keygen --out DIR writes DIR/signing.key)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path, key := setup(t, tt.text)
			if tt.key {
				writeFile(t, key, "key\n", 0o600)
			}
			c := mustLoad(t, path) // a missing key is not Load's concern
			err := c.CheckDaemon()
			want := strings.NewReplacer("FILE", path, "DIR", filepath.Dir(key)).Replace(tt.want)
			switch {
			case want == "" && err != nil:
				t.Errorf("CheckDaemon: %v", err)
			case want != "" && (err == nil || err.Error() != want):
				t.Errorf("CheckDaemon:\n got %v\nwant %s", err, want)
			}
		})
	}
}

func TestHardening(t *testing.T) {
	for _, tt := range []struct {
		name string
		configMode,
		keyMode, // 0: no key file
		dirMode os.FileMode
		want string // FILE, KEY and DIR stand for the paths
	}{
		{"private", 0o644, 0o600, 0o700, ""},
		{"read-only key", 0o600, 0o400, 0o755, ""},
		{"sticky directory", 0o644, 0o600, os.ModeSticky | 0o777, ""},
		{"world-writable config", 0o666, 0o600, 0o700,
			"FILE: writable by group or others (mode 0666): chmod go-w FILE"},
		{"group-writable config", 0o664, 0, 0o700,
			"FILE: writable by group or others (mode 0664): chmod go-w FILE"},
		{"key readable by others", 0o644, 0o644, 0o700,
			`FILE:2: signing_key "KEY": private key is readable by group or others (mode 0644): chmod 600 KEY`},
		{"key readable by group", 0o644, 0o640, 0o700,
			`FILE:2: signing_key "KEY": private key is readable by group or others (mode 0640): chmod 600 KEY`},
		{"key writable by others", 0o644, 0o602, 0o700,
			`FILE:2: signing_key "KEY": private key is writable by group or others (mode 0602): chmod 600 KEY`},
		{"directory writable by others", 0o644, 0o600, 0o777,
			"FILE: directory DIR is writable by others: chmod o-w DIR"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path, key := setup(t, "targets: [a]\nsigning_key: KEY\n")
			if tt.keyMode != 0 {
				writeFile(t, key, "key\n", tt.keyMode)
			}
			if err := os.Chmod(path, tt.configMode); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Dir(path)
			if err := os.Chmod(dir, tt.dirMode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o700) })
			_, err := Load(path)
			want := strings.NewReplacer("FILE", path, "KEY", key, "DIR", dir).Replace(tt.want)
			switch {
			case want == "" && err != nil:
				t.Errorf("Load: %v", err)
			case want != "" && (err == nil || err.Error() != want):
				t.Errorf("Load:\n got %v\nwant %s", err, want)
			}
		})
	}
}

func TestHardeningOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("giving a file to another user needs root; CI=true: not skipping")
		}
		t.Skip("giving a file to another user needs root")
	}
	path, key := setup(t, "targets: [a]\nsigning_key: KEY\n")
	writeFile(t, key, "key\n", 0o600)
	if err := os.Chown(path, 12345, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || err.Error() != path+": owned by uid 12345, not root: chown root "+path {
		t.Errorf("config owned by another user: %v", err)
	}
	if err := os.Chown(path, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(key, 12345, 0); err != nil {
		t.Fatal(err)
	}
	want := path + `:2: signing_key "` + key + `": owned by uid 12345, not root: chown root ` + key
	if _, err := Load(path); err == nil || err.Error() != want {
		t.Errorf("key owned by another user:\n got %v\nwant %s", err, want)
	}
}

func TestNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || err.Error() != dir+": not a regular file" {
		t.Errorf("Load(directory): %v", err)
	}
	if _, err := Load(filepath.Join(dir, "absent.yaml")); err == nil ||
		err.Error() != "reading configuration: open "+dir+"/absent.yaml: no such file or directory" {
		t.Errorf("Load(absent): %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"4096", 4096, ""},
		{"512B", 512, ""},
		{"32KiB", 32 << 10, ""},
		{"128MiB", 128 << 20, ""},
		{"1 GiB", 1 << 30, ""},
		{" 8GiB ", 8 << 30, ""},
		{"8589934591GiB", 8589934591 << 30, ""},
		{"8589934592GiB", 0, `size "8589934592GiB": too large`},
		{"99999999999999999999", 0, `size "99999999999999999999": too large`},
		{"1MB", 0, `size "1MB": unknown unit "MB" (use B, KiB, MiB or GiB)`},
		{"1mib", 0, `size "1mib": unknown unit "mib" (use B, KiB, MiB or GiB)`},
		{"1.5GiB", 0, `size "1.5GiB": unknown unit ".5GiB" (use B, KiB, MiB or GiB)`},
		{"-1", 0, `size "-1": must not be negative`},
		{"", 0, `size "": want an integer with an optional unit B, KiB, MiB or GiB, such as 128MiB`},
		{"MiB", 0, `size "MiB": want an integer with an optional unit B, KiB, MiB or GiB, such as 128MiB`},
	} {
		got, err := ParseSize(tt.in)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tt.want || gotErr != tt.err {
			t.Errorf("ParseSize(%q) = %d, %q; want %d, %q", tt.in, got, gotErr, tt.want, tt.err)
		}
	}
}

func TestDiff(t *testing.T) {
	path, key := setup(t, fullFile)
	writeFile(t, key, "key\n", 0o600)
	base := mustLoad(t, path)
	for _, tt := range []struct {
		name        string
		change      func(c *Config)
		changed     []string
		needRestart []string
	}{
		{"same", func(c *Config) {}, nil, nil},
		{"path and hash are not keys", func(c *Config) { c.Path, c.Hash = "/other", "00" }, nil, nil},
		{"targets", func(c *Config) { c.Targets = c.Targets[:1] }, []string{"targets"}, nil},
		{"target order", func(c *Config) { c.Targets[0], c.Targets[1] = c.Targets[1], c.Targets[0] }, []string{"targets"}, nil},
		{"rotation", func(c *Config) { c.Log.RotateSize, c.Log.RotateInterval = 1, 2 },
			[]string{"log.rotate_size", "log.rotate_interval"}, nil},
		{"log location", func(c *Config) { c.Log.Dir, c.Log.Name = "/x", "y" },
			[]string{"log.dir", "log.name"}, []string{"log.dir", "log.name"}},
		{"file modes and fsync", func(c *Config) { c.Log.GroupRead, c.Log.Fsync = false, "checkpoint" },
			[]string{"log.fsync", "log.group_read"}, []string{"log.group_read"}},
		{"kernel side", func(c *Config) { c.RingSize, c.MaxArgBytes = 1<<20, 1 },
			[]string{"ring_size", "max_arg_bytes"}, []string{"ring_size", "max_arg_bytes"}},
		{"reloadable scalars", func(c *Config) {
			c.Checkpoint = CheckpointConfig{1, 1}
			c.Heartbeat, c.FailClosed, c.DrainTimeout = 1, false, 1
		}, []string{"checkpoint.records", "checkpoint.interval", "heartbeat", "fail_closed", "drain_timeout"}, nil},
		{"key, metrics and state", func(c *Config) { c.SigningKey, c.Metrics.Listen, c.StateDir = "/k", "", "/s" },
			[]string{"signing_key", "metrics.listen", "state_dir"}, []string{"signing_key", "metrics.listen", "state_dir"}},
		{"sensitive paths", func(c *Config) { c.SensitivePaths = append(c.SensitivePaths, "x") }, []string{"sensitive_paths"}, nil},
		{"exporter field", func(c *Config) { c.Exporters[0].Syslog = &export.SyslogConfig{Address: "other:1"} }, []string{"exporters"}, nil},
		{"exporters removed", func(c *Config) { c.Exporters = nil }, []string{"exporters"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			next := mustLoad(t, path)
			tt.change(next)
			changed, needRestart := Diff(base, next)
			if !slices.Equal(changed, tt.changed) || !slices.Equal(needRestart, tt.needRestart) {
				t.Errorf("Diff = %q, %q; want %q, %q", changed, needRestart, tt.changed, tt.needRestart)
			}
		})
	}

	// An empty list and no list are the same configuration.
	a, b := mustLoad(t, path), mustLoad(t, path)
	a.Exporters, b.Exporters = nil, []export.Config{}
	if changed, _ := Diff(a, b); changed != nil {
		t.Errorf("Diff(no exporters, empty exporters) = %q", changed)
	}
}

// TestKeysComplete keeps Diff's key list, the file's shape and
// docs/config.md in step: every key of the file is compared and documented.
func TestKeysComplete(t *testing.T) {
	var leaves []string
	var collect func(reflect.Type, string)
	collect = func(typ reflect.Type, prefix string) {
		for f := range typ.Fields() {
			name := prefix + strings.Split(f.Tag.Get("yaml"), ",")[0]
			if f.Type.Kind() == reflect.Struct && f.Type != nodeType {
				collect(f.Type, name+".")
				continue
			}
			leaves = append(leaves, name)
		}
	}
	collect(reflect.TypeFor[fileConfig](), "")
	var names []string
	for _, k := range keys {
		names = append(names, k.name)
	}
	if !slices.Equal(names, leaves) {
		t.Errorf("Diff compares %q;\nthe file has %q", names, leaves)
	}
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.Contains(string(doc), "`"+k.name+"`") {
			t.Errorf("docs/config.md does not document `%s`", k.name)
		}
	}
}

// TestExample loads the shipped deploy/agenttrace.yaml (from a private
// copy: the checkout's modes depend on the umask) and checks that it shows
// the defaults where it says it does.
func TestExample(t *testing.T) {
	text, err := os.ReadFile("../../deploy/agenttrace.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path, _ := setup(t, string(text))
	example := mustLoad(t, path)
	want := []cgroup.Pattern{pattern(t, "agents.slice/*"), pattern(t, "system.slice/agent-*.service")}
	if !reflect.DeepEqual(example.Targets, want) {
		t.Errorf("Targets = %+v, want %+v", example.Targets, want)
	}
	if example.SigningKey != "/etc/agenttrace/signing.key" {
		t.Errorf("SigningKey = %q", example.SigningKey)
	}
	empty, _ := setup(t, "")
	changed, _ := Diff(example, mustLoad(t, empty))
	if want := []string{"targets", "log.rotate_size", "log.rotate_interval", "signing_key", "sensitive_paths"}; !slices.Equal(changed, want) {
		t.Errorf("the example differs from the defaults in %q, want %q", changed, want)
	}
}
