// Package config owns the daemon's YAML configuration (docs/config.md):
// reading it strictly, refusing a file or signing key that someone else could
// have written, defaults, validation that names the file and line of every
// problem, and which changes a reload (SIGHUP) can apply.
//
// It must never create or modify a file, and never read the signing key's
// contents: it looks at the key's metadata only.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/agenttrace/agenttrace/internal/cgroup"
	"github.com/agenttrace/agenttrace/internal/export"
	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/pipeline"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/sink"
)

// Defaults of the keys whose default is not another package's.
const (
	DefaultLogDir        = "/var/log/agenttrace"
	DefaultLogName       = "audit.jsonl"
	DefaultFsync         = "checkpoint"
	DefaultMetricsListen = "127.0.0.1:9477"
	DefaultStateDir      = "/var/lib/agenttrace"
	DefaultDrainTimeout  = 10 * time.Second
	// MaxRingSize bounds ring_size: the kernel's limit is higher, but a
	// larger ring only delays the loss it cannot prevent.
	MaxRingSize = 1 << 30
)

// maxFileBytes bounds the configuration file: anything larger is a mistake.
const maxFileBytes = 1 << 20

// Config is a loaded, validated configuration with every default applied.
type Config struct {
	Targets        []cgroup.Pattern
	Log            LogConfig
	SigningKey     string // absolute path, "" if absent (CheckDaemon refuses it)
	Checkpoint     CheckpointConfig
	Heartbeat      time.Duration
	RingSize       uint32
	MaxArgBytes    uint32
	FailClosed     bool
	SensitivePaths []string // appended to record.DefaultSensitivePaths
	Metrics        MetricsConfig
	StateDir       string
	DrainTimeout   time.Duration
	Exporters      []export.Config

	Path string // the file it came from, as given to Load
	Hash string // SHA-256 of the file's bytes, hex

	// lines maps a dotted key ("log.dir", "targets[1]") to its line in
	// the file, for errors found after Load (CheckDaemon).
	lines        map[string]int
	targetsGiven int // entries under targets:, valid or not
}

// LogConfig is `log:`, the audit log files.
type LogConfig struct {
	Dir            string
	Name           string // base name of segment 1
	RotateSize     int64  // bytes; 0: never (default sink.DefaultRotateSize)
	RotateInterval time.Duration
	Fsync          string // checkpoint | always (sink.ParseSyncPolicy)
	GroupRead      bool   // files 0640 and directories 0750 instead of 0600 and 0700
}

// CheckpointConfig is `checkpoint:`: a signed checkpoint is written after
// Records records or Interval, whichever comes first.
type CheckpointConfig struct {
	Records  uint64
	Interval time.Duration
}

// MetricsConfig is `metrics:`. Listen "" disables the endpoint.
type MetricsConfig struct {
	Listen string
}

// fileConfig is the file's shape. Sizes and durations stay nodes so that
// their errors can say which key and line they are on; the walker
// (checkShape) uses these yaml tags as the list of known keys.
type fileConfig struct {
	Targets        []string        `yaml:"targets"`
	Log            fileLog         `yaml:"log"`
	SigningKey     string          `yaml:"signing_key"`
	Checkpoint     fileCheckpoint  `yaml:"checkpoint"`
	Heartbeat      yaml.Node       `yaml:"heartbeat"`
	RingSize       yaml.Node       `yaml:"ring_size"`
	MaxArgBytes    yaml.Node       `yaml:"max_arg_bytes"`
	FailClosed     bool            `yaml:"fail_closed"`
	SensitivePaths []string        `yaml:"sensitive_paths"`
	Metrics        fileMetrics     `yaml:"metrics"`
	StateDir       string          `yaml:"state_dir"`
	DrainTimeout   yaml.Node       `yaml:"drain_timeout"`
	Exporters      []export.Config `yaml:"exporters"`
}

type fileLog struct {
	Dir            string    `yaml:"dir"`
	Name           string    `yaml:"name"`
	RotateSize     yaml.Node `yaml:"rotate_size"`
	RotateInterval yaml.Node `yaml:"rotate_interval"`
	Fsync          string    `yaml:"fsync"`
	GroupRead      bool      `yaml:"group_read"`
}

type fileCheckpoint struct {
	Records  *uint64   `yaml:"records"`
	Interval yaml.Node `yaml:"interval"`
}

type fileMetrics struct {
	Listen string `yaml:"listen"`
}

// Load reads the configuration file at path: it refuses a file others could
// have written, parses it strictly (unknown keys are errors), applies the
// defaults and validates every key. The signing key's permissions are
// checked if the key exists; that it exists is CheckDaemon's concern, since
// `agenttrace run` and `agenttrace export` read the file for its exporters
// only. Every error starts with "path:line: " (or "path: " when it is about
// the whole file).
func Load(path string) (*Config, error) {
	return load(path, false)
}

// LoadDaemon is Load with what the daemon needs beyond it (CheckDaemon),
// every problem of the file reported at once.
func LoadDaemon(path string) (*Config, error) {
	return load(path, true)
}

func load(path string, daemon bool) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	c, p, err := parse(path, data)
	if err != nil {
		return nil, err
	}
	if c != nil {
		for _, msg := range c.signingKeyProblems(false) {
			p.add("signing_key", "%s", msg)
		}
		if daemon {
			c.checkDaemon(p)
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// CheckDaemon reports what the daemon needs beyond what Load checked: at
// least one target, and a signing key that exists and only its owner can
// read.
func (c *Config) CheckDaemon() error {
	p := &problems{path: c.Path, lines: c.lines}
	c.checkDaemon(p)
	return p.err()
}

func (c *Config) checkDaemon(p *problems) {
	// Targets the file gives but that are wrong are reported as such.
	if len(c.Targets) == 0 && c.targetsGiven == 0 {
		p.add("targets", "targets: the daemon needs at least one target (a cgroup glob such as agents.slice/*)")
	}
	if c.SigningKey == "" {
		p.add("signing_key", "signing_key: required by the daemon (agenttrace keygen --out /etc/agenttrace creates /etc/agenttrace/signing.key)")
	}
	for _, msg := range c.signingKeyProblems(true) {
		p.add("signing_key", "%s", msg)
	}
}

// parse turns the file's bytes into a Config, collecting every problem it
// finds in p: of the shape (unknown or repeated keys, wrong kinds of
// value) and of the values. The error is for a file that is not YAML; the
// Config is nil when its shape is too wrong to read values from.
func parse(path string, data []byte) (*Config, *problems, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && err != io.EOF {
		return nil, nil, yamlError(path, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, nil, fmt.Errorf("%s:%d: a second YAML document: the file must hold one", path, next.Line)
	case err != io.EOF:
		return nil, nil, yamlError(path, err)
	}

	p := &problems{path: path, lines: map[string]int{}}
	checkShape(p, &root)
	shapeOK := len(p.list) == 0

	// With the shape right, decoding with KnownFields is the backstop
	// should the walker and the decoder ever disagree; with unknown keys
	// (already reported) the values of the known ones are still checked.
	var raw fileConfig
	d := yaml.NewDecoder(bytes.NewReader(data))
	d.KnownFields(shapeOK)
	if err := d.Decode(&raw); err != nil && err != io.EOF {
		if shapeOK {
			return nil, nil, yamlError(path, err)
		}
		return nil, p, nil // wrong kinds of values: the shape problems say which
	}

	c := &Config{Path: path, Hash: sha256Hex(data), lines: p.lines}
	c.fill(p, &raw)
	return c, p, nil
}

// fill validates raw into c, applying defaults.
func (c *Config) fill(p *problems, raw *fileConfig) {
	c.Targets = targets(p, raw.Targets)
	c.targetsGiven = len(raw.Targets)

	c.Log.Dir = absPath(p, "log.dir", raw.Log.Dir, DefaultLogDir)
	c.Log.Name = raw.Log.Name
	switch {
	case c.Log.Name == "":
		c.Log.Name = DefaultLogName
	case c.Log.Name != filepath.Base(c.Log.Name) || c.Log.Name == "." || c.Log.Name == ".." || strings.ContainsAny(c.Log.Name, `*?[\`):
		// Later segments are found by globbing beside the first.
		p.add("log.name", "log.name %q: must be a file name, without / or glob characters (* ? [ \\)", c.Log.Name)
	}
	c.Log.RotateSize = sink.DefaultRotateSize
	if n, ok := size(p, "log.rotate_size", &raw.Log.RotateSize); ok {
		c.Log.RotateSize = n
	}
	c.Log.RotateInterval = duration(p, "log.rotate_interval", &raw.Log.RotateInterval, 0, true)
	c.Log.Fsync = raw.Log.Fsync
	if c.Log.Fsync == "" {
		c.Log.Fsync = DefaultFsync
	} else if _, err := sink.ParseSyncPolicy(c.Log.Fsync); err != nil {
		p.add("log.fsync", "log.fsync %q: want checkpoint or always", c.Log.Fsync)
	}
	c.Log.GroupRead = raw.Log.GroupRead

	if raw.SigningKey != "" {
		c.SigningKey = absPath(p, "signing_key", raw.SigningKey, "")
	}

	c.Checkpoint.Records = sink.DefaultCheckpointRecords
	if raw.Checkpoint.Records != nil {
		c.Checkpoint.Records = *raw.Checkpoint.Records
		if c.Checkpoint.Records == 0 {
			p.add("checkpoint.records", "checkpoint.records: must be at least 1")
		}
	}
	c.Checkpoint.Interval = duration(p, "checkpoint.interval", &raw.Checkpoint.Interval, sink.DefaultCheckpointInterval, false)
	c.Heartbeat = duration(p, "heartbeat", &raw.Heartbeat, pipeline.DefaultHeartbeat, false)

	c.RingSize = loader.DefaultRingBytes
	if n, ok := size(p, "ring_size", &raw.RingSize); ok {
		switch {
		case n > MaxRingSize:
			p.add("ring_size", "ring_size %q: at most %s", raw.RingSize.Value, formatSize(MaxRingSize))
		case n < int64(os.Getpagesize()):
			p.add("ring_size", "ring_size %q: at least a page (%d bytes)", raw.RingSize.Value, os.Getpagesize())
		case bits.OnesCount64(uint64(n)) != 1:
			p.add("ring_size", "ring_size %q: must be a power of two (such as 16MiB)", raw.RingSize.Value)
		default:
			c.RingSize = uint32(n)
		}
	}
	c.MaxArgBytes = loader.DefaultMaxArgBytes
	if n, ok := size(p, "max_arg_bytes", &raw.MaxArgBytes); ok {
		if n < 1 || n > loader.MaxMaxArgBytes {
			p.add("max_arg_bytes", "max_arg_bytes %q: must be between 1 and %s", raw.MaxArgBytes.Value, formatSize(loader.MaxMaxArgBytes))
		} else {
			c.MaxArgBytes = uint32(n)
		}
	}

	c.FailClosed = raw.FailClosed
	c.SensitivePaths = sensitivePaths(p, raw.SensitivePaths)

	c.Metrics.Listen = DefaultMetricsListen
	if _, present := p.lines["metrics.listen"]; present {
		// Present but empty (listen: "" or listen:) disables the endpoint.
		c.Metrics.Listen = raw.Metrics.Listen
		if c.Metrics.Listen != "" && !validListen(c.Metrics.Listen) {
			p.add("metrics.listen", `metrics.listen %q: want host:port (such as 127.0.0.1:9477), or "" to disable metrics`, c.Metrics.Listen)
		}
	}

	c.StateDir = absPath(p, "state_dir", raw.StateDir, DefaultStateDir)
	c.DrainTimeout = duration(p, "drain_timeout", &raw.DrainTimeout, DefaultDrainTimeout, false)
	c.Exporters = exporters(p, raw.Exporters)
}

func targets(p *problems, texts []string) []cgroup.Pattern {
	if len(texts) > cgroup.MaxPatterns {
		p.add("targets", "targets: %d patterns, at most %d are supported", len(texts), cgroup.MaxPatterns)
		return nil
	}
	var out []cgroup.Pattern
	first := map[string]int{}
	for i, text := range texts {
		key := fmt.Sprintf("targets[%d]", i)
		pattern, err := cgroup.ParsePattern(text)
		if err != nil {
			p.add(key, "%s %q: %s", key, text, strings.TrimPrefix(err.Error(), fmt.Sprintf("target %q: ", text)))
			continue
		}
		if j, seen := first[pattern.Text]; seen {
			p.add(key, "%s %q: repeats targets[%d]", key, text, j)
			continue
		}
		first[pattern.Text] = i
		out = append(out, pattern)
	}
	return out
}

func sensitivePaths(p *problems, patterns []string) []string {
	var out []string
	for i, pattern := range patterns {
		key := fmt.Sprintf("sensitive_paths[%d]", i)
		// As a line of a --sensitive-paths file: surrounding spaces do not count.
		trimmed := strings.TrimSpace(pattern)
		switch {
		case trimmed == "":
			p.add(key, "%s: empty pattern", key)
			continue
		case trimmed[0] == '#':
			p.add(key, "%s %q: a pattern cannot start with # (a comment in a --sensitive-paths file)", key, pattern)
			continue
		}
		if _, err := record.CompilePathSet([]string{trimmed}); err != nil {
			p.add(key, "%s %q: %s", key, pattern, strings.TrimPrefix(err.Error(), fmt.Sprintf("%v %q: ", record.ErrBadPattern, trimmed)))
			continue
		}
		out = append(out, trimmed)
	}
	return out
}

func exporters(p *problems, list []export.Config) []export.Config {
	if len(list) == 0 {
		return nil // exporters: [] is no exporters, as when absent
	}
	first := map[string]int{}
	for i := range list {
		e := &list[i]
		prefix := fmt.Sprintf("exporters[%d]", i)
		// A missing name is the export package's to report (validateExporter).
		switch j, seen := first[e.Name]; {
		case e.Name == "":
		case seen:
			p.add(prefix+".name", "%s.name %q: repeats exporters[%d]; names must be unique", prefix, e.Name, j)
		default:
			first[e.Name] = i
		}
		if field, err := validateExporter(e); err != nil {
			key := prefix
			if field != "" {
				key += "." + field
			}
			p.add(key, "%s: %v", key, err)
		}
	}
	return list
}

// validateExporter checks one exporter with the export package's own
// validation (the one definition of what an exporter needs), returning the
// key at fault relative to the exporter ("syslog.address"), "" if unknown.
func validateExporter(e *export.Config) (field string, err error) {
	err = e.Validate()
	var fe *export.FieldError
	if errors.As(err, &fe) {
		return fe.Field, fe.Err
	}
	return "", err
}

// absPath cleans an absolute path; "" is def.
func absPath(p *problems, key, path, def string) string {
	if path == "" {
		return def
	}
	if !filepath.IsAbs(path) {
		p.add(key, "%s %q: must be an absolute path", key, path)
		return path
	}
	return filepath.Clean(path)
}

func validListen(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && n > 0
}

// isNull reports whether a scalar-or-absent key is absent or written empty.
func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// size reads a size key: a YAML integer (bytes) or a string for ParseSize.
// ok is false when the key is absent or wrong (a problem is recorded).
func size(p *problems, key string, n *yaml.Node) (value int64, ok bool) {
	if isNull(n) {
		return 0, false
	}
	if n.Kind != yaml.ScalarNode {
		p.add(key, "%s: want a size such as 128MiB", key)
		return 0, false
	}
	switch n.Tag {
	case "!!int":
		if err := n.Decode(&value); err != nil {
			p.add(key, "%s %q: too large", key, n.Value)
			return 0, false
		}
		if value < 0 {
			p.add(key, "%s %q: must not be negative", key, n.Value)
			return 0, false
		}
		return value, true
	case "!!str":
		value, err := parseSize(n.Value)
		if err != nil {
			p.add(key, "%s %q: %v", key, n.Value, err)
			return 0, false
		}
		return value, true
	}
	p.add(key, "%s %q: want a size such as 128MiB", key, n.Value)
	return 0, false
}

// duration reads a Go duration ("10s", "1m30s"); a bare 0 is allowed.
func duration(p *problems, key string, n *yaml.Node, def time.Duration, zeroAllowed bool) time.Duration {
	if isNull(n) {
		return def
	}
	if n.Kind != yaml.ScalarNode {
		p.add(key, "%s: want a duration such as 10s", key)
		return def
	}
	var d time.Duration
	switch n.Tag {
	case "!!int":
		if n.Value != "0" {
			p.add(key, "%s %q: a duration needs a unit (write %ss)", key, n.Value, n.Value)
			return def
		}
	case "!!str":
		var err error
		if d, err = time.ParseDuration(n.Value); err != nil {
			p.add(key, "%s %q: not a duration (write it as 10s, 1m30s or 24h)", key, n.Value)
			return def
		}
	default:
		p.add(key, "%s %q: want a duration such as 10s", key, n.Value)
		return def
	}
	switch {
	case d < 0:
		p.add(key, "%s %q: must not be negative", key, n.Value)
		return def
	case d == 0 && !zeroAllowed:
		p.add(key, "%s %q: must be positive", key, n.Value)
		return def
	}
	return d
}

// problems collects validation errors with their lines, so that a user
// sees every mistake in the file at once, in file order.
type problems struct {
	path  string
	lines map[string]int
	list  []problem
}

type problem struct {
	line int
	msg  string
}

// add records a problem about key, on the line of the key or, if it is
// absent, of the nearest enclosing one ("exporters[0]" for a missing
// "exporters[0].name"); 0 if none is in the file.
func (p *problems) add(key, format string, args ...any) {
	line, ok := p.lines[key]
	for !ok && key != "" {
		key = key[:max(strings.LastIndexAny(key, ".["), 0)]
		line, ok = p.lines[key]
	}
	p.addAt(line, format, args...)
}

func (p *problems) addAt(line int, format string, args ...any) {
	p.list = append(p.list, problem{line, fmt.Sprintf(format, args...)})
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	slices.SortStableFunc(p.list, func(a, b problem) int { return a.line - b.line })
	errs := make([]error, len(p.list))
	for i, pr := range p.list {
		errs[i] = lineError(p.path, pr.line, pr.msg)
	}
	return errors.Join(errs...)
}

func lineError(path string, line int, msg string) error {
	if line == 0 {
		return fmt.Errorf("%s: %s", path, msg)
	}
	return fmt.Errorf("%s:%d: %s", path, line, msg)
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// yamlError puts the file name in front of the decoder's errors, in the
// same path:line: form as the rest.
func yamlError(path string, err error) error {
	var typeErr *yaml.TypeError
	if errors.As(err, &typeErr) {
		errs := make([]error, len(typeErr.Errors))
		for i, msg := range typeErr.Errors {
			errs[i] = yamlLineError(path, msg)
		}
		return errors.Join(errs...)
	}
	return yamlLineError(path, strings.TrimPrefix(err.Error(), "yaml: "))
}

func yamlLineError(path, msg string) error {
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return lineError(path, line, m[2])
	}
	return lineError(path, 0, msg)
}
