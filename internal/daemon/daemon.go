// Package daemon owns `agenttrace daemon`: one long-running tracer per host
// that follows the cgroups matching the configured target patterns as they
// come and go, snapshots the processes already in them, writes lifecycle
// records (start, reload, stop) into the audit log, reloads its
// configuration on SIGHUP, and drains on SIGTERM.
//
// Operational telemetry (its zerolog log on stderr and the Prometheus
// metrics) is separate from the audit log and never carries record contents.
package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/agenttrace/agenttrace/internal/cgroup"
	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/config"
	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/pipeline"
	"github.com/agenttrace/agenttrace/internal/preflight"
	"github.com/agenttrace/agenttrace/internal/record"
	"github.com/agenttrace/agenttrace/internal/session"
	"github.com/agenttrace/agenttrace/internal/sink"
	"github.com/agenttrace/agenttrace/internal/snapshot"
)

// Daemon is one running `agenttrace daemon`.
type Daemon struct {
	cfgPath string
	logger  zerolog.Logger
	started time.Time

	mount  string
	tracer *loader.Tracer
	enc    *record.Encoder
	res    *cgroup.Resolver
	log    *sink.Writer
	pipe   *pipeline.Pipeline
	guard  *pipeline.Guard
	met    *metrics

	// self is the daemon's own cgroup (below the mount) and its id: never
	// traced, or its own reads of /proc and the log would feed themselves.
	self   string
	selfID uint64

	expMu     sync.Mutex
	exporters []*exporter

	mu      sync.Mutex // cfg, targets, guard
	cfg     *config.Config
	targets map[uint64]string // cgroups that matched a pattern: id → path below the mount
}

// Run runs the daemon with the configuration at cfgPath until ctx is done
// or it receives SIGTERM or SIGINT; SIGHUP reloads. It returns nil after a
// clean stop (drained, final checkpoint written).
func Run(ctx context.Context, cfgPath string, logger zerolog.Logger) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	if err := cfg.CheckDaemon(); err != nil {
		return err
	}
	if err := preflight.Required(); err != nil {
		return err
	}
	d := &Daemon{cfgPath: cfgPath, logger: logger, started: time.Now(), cfg: cfg, targets: map[uint64]string{}}
	// Signals before anything is attached: a SIGTERM during start-up
	// still ends in a drained, checkpointed log.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	if err := d.start(); err != nil {
		d.abort()
		return err
	}
	logger.Info().Str("log", d.log.Path()).Strs("targets", patternTexts(cfg.Targets)).Int("traced_cgroups", d.targetCount()).Msg("tracing")

	reason := ""
	for reason == "" {
		select {
		case <-ctx.Done():
			reason = "context cancelled"
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				d.reload()
				continue
			}
			reason = "signal " + unixSignalName(sig)
		}
	}
	return d.stop(reason)
}

// start brings the daemon up: log, tracer, start record, targets.
func (d *Daemon) start() error {
	cfg := d.cfg
	mount, err := cgroup.Mount()
	if err != nil {
		return err
	}
	d.mount = mount
	if d.self, err = cgroup.Own(); err != nil {
		return err
	}
	if d.selfID, err = cgroup.ID(filepath.Join(mount, d.self)); err != nil {
		return fmt.Errorf("agenttrace's own cgroup: %w", err)
	}
	dirMode, fileMode := os.FileMode(0o700), os.FileMode(0o600)
	if cfg.Log.GroupRead {
		dirMode, fileMode = 0o750, 0o640
	}
	for _, dir := range []string{cfg.Log.Dir, cfg.StateDir} {
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
		// An existing directory others can write to would let them add or
		// replace segments (and cursors) beside ours.
		st, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o022 != 0 {
			return fmt.Errorf("%s is writable by group or others (mode %04o): chmod %04o %s", dir, st.Mode().Perm(), dirMode, dir)
		}
	}
	signer, vkey, err := chain.ReadSigningKey(cfg.SigningKey)
	if err != nil {
		return err
	}
	sensitive, err := sensitiveSet(cfg.SensitivePaths)
	if err != nil {
		return err
	}
	sync, err := sink.ParseSyncPolicy(cfg.Log.Fsync)
	if err != nil {
		return err
	}

	d.tracer, err = loader.Load(loader.Config{Globs: true, MaxArgBytes: cfg.MaxArgBytes, RingBytes: cfg.RingSize})
	if err != nil {
		return err
	}
	if err := d.tracer.SetPatterns(components(cfg.Targets)); err != nil {
		return err
	}
	host, _ := os.Hostname()
	d.res = cgroup.NewResolver(mount, "")
	d.enc = record.NewEncoder(host, session.BootID(), record.WallOffset(), d.res)
	d.enc.Sensitive = sensitive
	d.enc.OnCgroup = d.cgroupRecord
	names := patternTexts(cfg.Targets)
	d.enc.PatternNames.Store(&names)
	d.met = newMetrics(d)

	d.log, err = sink.Open(sink.Options{
		Base: filepath.Join(cfg.Log.Dir, cfg.Log.Name), Signer: signer, VerifierKey: vkey, Encoder: d.enc, Version: session.Version,
		CheckpointRecords: cfg.Checkpoint.Records, CheckpointInterval: cfg.Checkpoint.Interval,
		RotateSize: cfg.Log.RotateSize, RotateInterval: cfg.Log.RotateInterval, Sync: sync, Mode: fileMode,
		Observe: d.met.observeWrite,
	})
	if err != nil {
		return err
	}
	if err := d.tracer.Attach(); err != nil {
		return err
	}
	d.pipe = pipeline.New(d.tracer, d.enc, d.log, pipeline.Options{Heartbeat: cfg.Heartbeat})
	d.met.pipeDone = make(chan error, 1)
	go func() { d.met.pipeDone <- d.pipe.Run() }()
	if cfg.FailClosed {
		d.guard = pipeline.NewGuard(d.tracer, d.log, d.enc, d)
		d.guard.Start()
	}
	if err := d.log.Append(func(b []byte, seq uint64, prev *chain.Hash) []byte {
		return d.appendStart(b, seq, prev)
	}); err != nil {
		return err
	}
	if err := d.applyTargets("start", nil); err != nil {
		return err
	}
	if cfg.Metrics.Listen != "" {
		if err := d.met.serve(cfg.Metrics.Listen); err != nil {
			return err
		}
	}
	return d.startExporters()
}

// abort undoes a start that failed part way; what was logged stays.
func (d *Daemon) abort() {
	d.stopExporters(time.Now().Add(d.cfg.DrainTimeout))
	if d.guard != nil {
		d.guard.Stop()
	}
	if d.tracer != nil {
		d.tracer.Detach()
		if d.pipe != nil {
			d.tracer.Flush()
			<-d.met.pipeDone
		}
	}
	if d.log != nil {
		d.log.Close()
	}
	if d.met != nil {
		d.met.close()
	}
	if d.tracer != nil {
		d.tracer.Close()
	}
}

// stop drains and closes: no new events are accepted (the hooks are
// detached), everything in the ring buffer is written, then the stop record
// and the final checkpoint; exporters get what is left of drain_timeout to
// deliver them.
func (d *Daemon) stop(reason string) error {
	d.logger.Info().Str("reason", reason).Msg("stopping")
	deadline := time.Now().Add(d.cfg.DrainTimeout)
	d.mu.Lock()
	if d.guard != nil {
		d.guard.Stop()
		d.guard = nil
	}
	d.mu.Unlock()
	d.tracer.Detach()
	d.tracer.Flush()
	var pipeErr error
	select {
	case pipeErr = <-d.met.pipeDone:
	case <-time.After(time.Until(deadline)):
		// Cannot happen short of a wedged disk: the ring is finite and
		// nothing adds to it. The records not drained are in no gap
		// record either, so say so loudly.
		pipeErr = errors.New("drain did not finish within drain_timeout")
		d.logger.Error().Err(pipeErr).Msg("drain")
	}
	stats := d.pipe.Stats()
	err := d.log.Append(func(b []byte, seq uint64, prev *chain.Hash) []byte {
		return d.appendStop(b, seq, prev, reason, &stats)
	})
	closeErr := d.log.Close()
	d.stopExporters(deadline)
	d.met.close()
	d.tracer.Close()
	if err = errors.Join(pipeErr, err, closeErr); err != nil {
		d.logger.Error().Err(err).Msg("stopped with errors")
		return err
	}
	d.logger.Info().Msg("stopped: log drained and checkpointed")
	return nil
}

// cgroupRecord keeps the target list current between walks: a cgroup that
// matched a pattern at mkdir is a target until its rmdir.
func (d *Daemon) cgroupRecord(op uint32, id uint64, path string, flags uint32) {
	d.mu.Lock()
	switch {
	case op == loader.CgroupMkdir && flags&loader.CgroupMatched != 0 && flags&loader.CgroupStateFull == 0:
		d.targets[id] = strings.TrimPrefix(path, "/")
	case op == loader.CgroupRmdir:
		delete(d.targets, id)
	}
	n := len(d.targets)
	d.mu.Unlock()
	d.met.targets.Set(float64(n))
	if flags&loader.CgroupStateFull != 0 {
		d.logger.Error().Str("cgroup", path).Msg("the kernel's cgroup state map is full: this cgroup is NOT traced")
	}
}

// Freeze and Thaw make the daemon the fail-closed guard's freezer: every
// target cgroup (and so its subtree) is frozen together.
func (d *Daemon) Freeze() error { return d.setFrozen("1") }

// Thaw lets the targets' processes run again.
func (d *Daemon) Thaw() error { return d.setFrozen("0") }

func (d *Daemon) setFrozen(v string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, rel := range d.targets {
		if err := os.WriteFile(filepath.Join(d.mount, rel, "cgroup.freeze"), []byte(v), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (d *Daemon) targetCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.targets)
}

// applyTargets makes the kernel's cgroup states match the current patterns
// (the tracer's patterns must already be set), appends a target record for
// every cgroup that starts or stops matching, and a snapshot record for
// every process in a cgroup that was not traced before. old is the pattern
// set being replaced (nil at start).
func (d *Daemon) applyTargets(reason string, old []cgroup.Pattern) error {
	before, err := d.tracer.CgroupStates()
	if err != nil {
		return err
	}
	pats := d.currentPatterns()
	seen := map[uint64]bool{}
	matched := map[uint64]string{}
	var newlyTraced []string // cgroups whose processes need a snapshot
	err = cgroup.Walk(d.mount, pats, func(rel string, id uint64, st cgroup.State) error {
		seen[id] = true
		if id == d.selfID && st.Traced {
			st.Traced = false
			d.logger.Warn().Str("cgroup", "/"+rel).Msg("a target matches agenttrace's own cgroup: it is excluded")
		}
		if err := d.tracer.PutCgroupState(id, st.Partial, st.Traced); err != nil {
			return err
		}
		d.res.Learn(id, "/"+rel)
		if st.Matched != 0 {
			matched[id] = rel
		}
		if st.Traced && before[id].Traced == 0 {
			newlyTraced = append(newlyTraced, rel)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for id := range before {
		if !seen[id] {
			d.tracer.DeleteCgroupState(id)
		}
	}

	d.mu.Lock()
	prev := d.targets
	d.targets = matched
	d.mu.Unlock()
	for id, rel := range matched {
		if _, ok := prev[id]; ok {
			continue
		}
		pids, _ := cgroup.TreeProcs(filepath.Join(d.mount, rel))
		d.appendTarget("add", reason, rel, id, matchingPatterns(pats, rel), len(pids))
	}
	for id, rel := range prev {
		if _, ok := matched[id]; !ok {
			d.appendTarget("remove", reason, rel, id, nil, -1)
		}
	}
	for _, rel := range newlyTraced {
		pids, err := cgroup.ReadProcs(filepath.Join(d.mount, rel))
		if err != nil {
			continue // removed meanwhile
		}
		for _, p := range snapshot.TakeAll(pids) {
			// The path as the daemon sees the tree, whatever cgroup
			// namespace /proc/PID/cgroup was read through.
			p.CgroupPath = "/" + rel
			d.log.Append(func(b []byte, seq uint64, prev *chain.Hash) []byte {
				b = d.enc.AppendEnvelope(b, seq, prev, record.BootTime(), "snapshot")
				return append(snapshot.AppendBody(b, p), '}')
			})
		}
	}
	d.met.targets.Set(float64(len(matched)))
	return nil
}

func (d *Daemon) currentPatterns() []cgroup.Pattern {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg.Targets
}

func (d *Daemon) appendTarget(op, reason, rel string, id uint64, pats []string, procs int) {
	d.log.Append(func(b []byte, seq uint64, prev *chain.Hash) []byte {
		b = d.enc.AppendEnvelope(b, seq, prev, record.BootTime(), "target")
		b = append(b, `,"target":{"op":"`...)
		b = append(b, op...)
		b = append(b, `","reason":"`...)
		b = append(b, reason...)
		b = append(b, '"')
		b = record.AppendBytes(b, "cgroup", []byte("/"+rel))
		b = append(b, `,"cgroup_id":`...)
		b = strconv.AppendUint(b, id, 10)
		if pats != nil {
			b = record.AppendStrings(b, "targets", pats)
		}
		if procs >= 0 {
			b = append(b, `,"processes":`...)
			b = strconv.AppendInt(b, int64(procs), 10)
		}
		return append(b, "}}"...)
	})
	d.logger.Info().Str("op", op).Str("reason", reason).Str("cgroup", "/"+rel).Msg("target")
}

func (d *Daemon) appendStart(b []byte, seq uint64, prev *chain.Hash) []byte {
	cfg := d.cfg
	b = d.enc.AppendEnvelope(b, seq, prev, record.BootTime(), "start")
	b = append(b, `,"start":{"mode":"daemon","agenttrace_version":"`...)
	b = append(b, session.Version...)
	b = append(b, `","pid":`...)
	b = strconv.AppendInt(b, int64(os.Getpid()), 10)
	b = append(b, `,"uid":`...)
	b = strconv.AppendInt(b, int64(os.Getuid()), 10)
	b = record.AppendBytes(b, "config", []byte(cfg.Path))
	b = append(b, `,"config_sha256":"`...)
	b = append(b, cfg.Hash...)
	b = append(b, '"')
	b = record.AppendBytes(b, "cgroup_mount", []byte(d.mount))
	b = record.AppendStrings(b, "targets", patternTexts(cfg.Targets))
	if tracesPath(cfg.Targets, d.self) {
		b = record.AppendBytes(b, "excluded_cgroup", []byte("/"+d.self))
	}
	b = append(b, `,"max_arg_bytes":`...)
	b = strconv.AppendUint(b, uint64(cfg.MaxArgBytes), 10)
	b = append(b, `,"ring_size":`...)
	b = strconv.AppendInt(b, int64(d.tracer.RingSize()), 10)
	b = append(b, `,"fail_closed":`...)
	b = strconv.AppendBool(b, cfg.FailClosed)
	b = record.AppendStrings(b, "sensitive_paths", d.enc.Sensitive.Patterns())
	// Kernel records after this one are attributed (under the log's lock).
	d.enc.BeginDaemon()
	b = record.AppendHooks(b, d.tracer.ProgramTags())
	return append(b, "}}"...)
}

func (d *Daemon) appendStop(b []byte, seq uint64, prev *chain.Hash, reason string, stats *pipeline.Stats) []byte {
	b = d.enc.AppendEnvelope(b, seq, prev, record.BootTime(), "stop")
	b = append(b, `,"stop":{"mode":"daemon"`...)
	b = record.AppendBytes(b, "reason", []byte(reason))
	b = append(b, `,"uptime_ns":`...)
	b = strconv.AppendInt(b, int64(time.Since(d.started)), 10)
	b = append(b, `,"records":{`...)
	for kind := loader.KindExec; kind < loader.KindMax; kind++ {
		if kind > loader.KindExec {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, record.KindName(kind)...)
		b = append(b, `":`...)
		b = strconv.AppendUint(b, stats.Written[kind], 10)
	}
	b = append(b, `},"lost":{`...)
	first := true
	for kind := uint32(0); kind < loader.KindMax; kind++ {
		lost := stats.Lost(kind)
		if lost == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		name := record.KindName(kind)
		if name == "" {
			name = "unknown"
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
		b = strconv.AppendUint(b, lost, 10)
	}
	return append(b, "}}}"...)
}

// reload re-reads the configuration. A file that does not load is
// rejected (recorded, logged) and the running configuration stays.
func (d *Daemon) reload() {
	var sensitive *record.PathSet
	newCfg, err := config.Load(d.cfgPath)
	if err == nil {
		err = newCfg.CheckDaemon()
	}
	if err == nil {
		sensitive, err = sensitiveSet(newCfg.SensitivePaths)
	}
	if err != nil {
		d.logger.Error().Err(err).Str("config", d.cfgPath).Msg("reload rejected; the previous configuration stays in force")
		d.met.reloads.WithLabelValues("rejected").Inc()
		d.appendReload("rejected", fileHash(d.cfgPath), err, nil, nil, nil)
		return
	}
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	changed, needRestart := config.Diff(old, newCfg)
	// What cannot change while running keeps its old value.
	merged := *newCfg
	merged.Log.Dir, merged.Log.Name, merged.Log.GroupRead = old.Log.Dir, old.Log.Name, old.Log.GroupRead
	merged.SigningKey, merged.RingSize, merged.MaxArgBytes, merged.Metrics, merged.StateDir = old.SigningKey, old.RingSize, old.MaxArgBytes, old.Metrics, old.StateDir
	targetsChanged := !samePatterns(old.Targets, merged.Targets)

	if targetsChanged {
		if err := d.tracer.SetPatterns(components(merged.Targets)); err != nil {
			d.logger.Error().Err(err).Msg("reload: setting patterns")
			d.met.reloads.WithLabelValues("rejected").Inc()
			d.appendReload("rejected", merged.Hash, err, nil, nil, nil)
			return
		}
	}
	d.mu.Lock()
	d.cfg = &merged
	d.mu.Unlock()
	names := patternTexts(merged.Targets)
	d.log.Append(func(b []byte, seq uint64, prev *chain.Hash) []byte {
		// Under the log's lock, like every encoder change: records after
		// this one use the new lists.
		d.enc.Sensitive = sensitive
		d.enc.PatternNames.Store(&names)
		return d.reloadBody(b, seq, prev, "applied", merged.Hash, nil, changed, needRestart, names)
	})
	syncPolicy, _ := sink.ParseSyncPolicy(merged.Log.Fsync)
	d.log.SetPolicy(sink.Policy{CheckpointRecords: merged.Checkpoint.Records, CheckpointInterval: merged.Checkpoint.Interval,
		RotateSize: merged.Log.RotateSize, RotateInterval: merged.Log.RotateInterval, Sync: syncPolicy})
	d.pipe.SetHeartbeat(merged.Heartbeat)
	d.mu.Lock()
	switch {
	case merged.FailClosed && d.guard == nil:
		d.guard = pipeline.NewGuard(d.tracer, d.log, d.enc, d)
		d.guard.Start()
	case !merged.FailClosed && d.guard != nil:
		d.guard.Stop()
		d.guard = nil
	}
	d.mu.Unlock()
	if targetsChanged {
		if err := d.applyTargets("reload", old.Targets); err != nil {
			d.logger.Error().Err(err).Msg("reload: applying targets")
		}
	}
	d.reloadExporters(old, &merged)
	d.met.reloads.WithLabelValues("applied").Inc()
	d.logger.Info().Strs("changed", changed).Strs("needs_restart", needRestart).Msg("reloaded")
}

func (d *Daemon) appendReload(status, hash string, err error, changed, needRestart, targets []string) {
	d.log.Append(func(b []byte, seq uint64, prev *chain.Hash) []byte {
		return d.reloadBody(b, seq, prev, status, hash, err, changed, needRestart, targets)
	})
}

func (d *Daemon) reloadBody(b []byte, seq uint64, prev *chain.Hash, status, hash string, err error, changed, needRestart, targets []string) []byte {
	b = d.enc.AppendEnvelope(b, seq, prev, record.BootTime(), "reload")
	b = append(b, `,"reload":{"status":"`...)
	b = append(b, status...)
	b = append(b, '"')
	b = record.AppendBytes(b, "config", []byte(d.cfgPath))
	b = append(b, `,"config_sha256":"`...)
	b = append(b, hash...)
	b = append(b, '"')
	if err != nil {
		b = record.AppendBytes(b, "error", []byte(err.Error()))
	}
	if changed != nil {
		b = record.AppendStrings(b, "changed", changed)
	}
	if len(needRestart) > 0 {
		b = record.AppendStrings(b, "needs_restart", needRestart)
	}
	if targets != nil {
		b = record.AppendStrings(b, "targets", targets)
	}
	return append(b, "}}"...)
}

// fileHash is the SHA-256 of a file's bytes (of no bytes if unreadable),
// so a rejected reload still names what was rejected.
func fileHash(path string) string {
	data, _ := os.ReadFile(path)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func sensitiveSet(extra []string) (*record.PathSet, error) {
	set, err := record.SensitiveWith(extra)
	if err != nil {
		return nil, fmt.Errorf("sensitive_paths: %w", err)
	}
	return set, nil
}

func components(pats []cgroup.Pattern) [][]string {
	out := make([][]string, len(pats))
	for i, p := range pats {
		out[i] = p.Components
	}
	return out
}

func patternTexts(pats []cgroup.Pattern) []string {
	out := make([]string, len(pats))
	for i, p := range pats {
		out[i] = p.Text
	}
	return out
}

func samePatterns(a, b []cgroup.Pattern) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Text != b[i].Text {
			return false
		}
	}
	return true
}

func matchingPatterns(pats []cgroup.Pattern, rel string) []string {
	var out []string
	for _, p := range pats {
		if p.Match(rel) {
			out = append(out, p.Text)
		}
	}
	return out
}

// tracesPath reports whether the patterns trace the cgroup at rel (it or an
// ancestor matches), by the rule the kernel applies.
func tracesPath(pats []cgroup.Pattern, rel string) bool {
	if rel == "" {
		return false
	}
	st := cgroup.Root(pats)
	for i, name := range strings.Split(rel, "/") {
		if st = st.Child(pats, i+1, name); st.Traced {
			return true
		}
	}
	return false
}

func unixSignalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		switch s {
		case syscall.SIGTERM:
			return "SIGTERM"
		case syscall.SIGINT:
			return "SIGINT"
		}
	}
	return sig.String()
}
