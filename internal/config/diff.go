package config

import (
	"reflect"
	"slices"

	"github.com/agenttrace/agenttrace/internal/cgroup"
)

// keys lists every key with how to compare it and whether a running daemon
// can apply a change to it (docs/config.md, "Reload"). A key that needs a
// restart is fixed when the daemon starts: the files it opened, the
// listening socket, the eBPF maps it sized.
var keys = []struct {
	name    string
	restart bool
	equal   func(a, b *Config) bool
}{
	{"targets", false, func(a, b *Config) bool {
		return slices.EqualFunc(a.Targets, b.Targets, func(x, y cgroup.Pattern) bool { return x.Text == y.Text })
	}},
	{"log.dir", true, func(a, b *Config) bool { return a.Log.Dir == b.Log.Dir }},
	{"log.name", true, func(a, b *Config) bool { return a.Log.Name == b.Log.Name }},
	{"log.rotate_size", false, func(a, b *Config) bool { return a.Log.RotateSize == b.Log.RotateSize }},
	{"log.rotate_interval", false, func(a, b *Config) bool { return a.Log.RotateInterval == b.Log.RotateInterval }},
	{"log.fsync", false, func(a, b *Config) bool { return a.Log.Fsync == b.Log.Fsync }},
	{"log.group_read", true, func(a, b *Config) bool { return a.Log.GroupRead == b.Log.GroupRead }},
	{"signing_key", true, func(a, b *Config) bool { return a.SigningKey == b.SigningKey }},
	{"checkpoint.records", false, func(a, b *Config) bool { return a.Checkpoint.Records == b.Checkpoint.Records }},
	{"checkpoint.interval", false, func(a, b *Config) bool { return a.Checkpoint.Interval == b.Checkpoint.Interval }},
	{"heartbeat", false, func(a, b *Config) bool { return a.Heartbeat == b.Heartbeat }},
	{"ring_size", true, func(a, b *Config) bool { return a.RingSize == b.RingSize }},
	{"max_arg_bytes", true, func(a, b *Config) bool { return a.MaxArgBytes == b.MaxArgBytes }},
	{"fail_closed", false, func(a, b *Config) bool { return a.FailClosed == b.FailClosed }},
	{"sensitive_paths", false, func(a, b *Config) bool { return slices.Equal(a.SensitivePaths, b.SensitivePaths) }},
	{"metrics.listen", true, func(a, b *Config) bool { return a.Metrics.Listen == b.Metrics.Listen }},
	{"state_dir", true, func(a, b *Config) bool { return a.StateDir == b.StateDir }},
	{"drain_timeout", false, func(a, b *Config) bool { return a.DrainTimeout == b.DrainTimeout }},
	{"exporters", false, func(a, b *Config) bool {
		return len(a.Exporters) == len(b.Exporters) && (len(a.Exporters) == 0 || reflect.DeepEqual(a.Exporters, b.Exporters))
	}},
}

// Diff compares the configuration a daemon runs with (old) and a newly
// loaded one (next): changed lists the keys that differ, in file order, as
// dotted names ("log.rotate_size"); needRestart the ones among them that a
// reload cannot apply. Path and Hash are not keys and are not compared.
func Diff(old, next *Config) (changed []string, needRestart []string) {
	for _, k := range keys {
		if k.equal(old, next) {
			continue
		}
		changed = append(changed, k.name)
		if k.restart {
			needRestart = append(needRestart, k.name)
		}
	}
	return changed, needRestart
}
