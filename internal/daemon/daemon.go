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
	"github.com/agenttrace/agenttrace/internal/tracer"
)

// Daemon is one running `agenttrace daemon`.
type Daemon struct {
	cfgPath string
	logger  zerolog.Logger
	started time.Time

	mount     string
	rt        *tracer.Tracer
	kernel    *loader.Tracer // rt.Kernel, known before the pipeline runs (cgroupRecord needs it)
	stateLock *os.File       // held for the daemon's life
	res       *cgroup.Resolver
	met       *metrics

	tamperStop chan struct{} // closed to stop watchTamper
	tamperDone chan struct{}

	// self is the daemon's own cgroup (below the mount) and its id: never
	// traced, or its own reads of /proc and the log would feed themselves.
	self   string
	selfID uint64

	expMu     sync.Mutex
	exporters []*exporter

	mu      sync.Mutex // cfg, targets, the tracer's fail-closed guard
	cfg     *config.Config
	targets map[uint64]string // cgroups that matched a pattern: id → path below the mount
}

// Run runs the daemon with the configuration at cfgPath until ctx is done
// or it receives SIGTERM or SIGINT, which hand the kernel side over (it
// stays pinned, recording, for the next daemon to adopt), or SIGUSR1 (a
// deliberate stop: `agenttrace daemon stop`), which releases it; SIGHUP
// reloads. It returns nil after a clean stop (drained, final checkpoint
// written).
func Run(ctx context.Context, cfgPath string, logger zerolog.Logger) error {
	return run(ctx, cfgPath, logger, false)
}

// run is Run; releaseNow stops at once, releasing the kernel side (what
// `agenttrace daemon stop` does when no daemon runs).
func run(ctx context.Context, cfgPath string, logger zerolog.Logger, releaseNow bool) error {
	cfg, err := config.LoadDaemon(cfgPath)
	if err != nil {
		return err
	}
	if err := preflight.Required(); err != nil {
		return err
	}
	d := &Daemon{cfgPath: cfgPath, logger: logger, started: time.Now(), cfg: cfg, targets: map[uint64]string{}}
	// Signals before anything is attached: a SIGTERM during start-up
	// still ends in a drained, checkpointed log.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	if err := d.start(sigs); err != nil {
		d.abort()
		return err
	}
	logger.Info().Str("log", d.rt.Log.Path()).Strs("targets", patternTexts(cfg.Targets)).Int("traced_cgroups", d.targetCount()).
		Str("kernel_state", string(d.rt.Kernel.State())).Msg("tracing")

	reason, release := "", releaseNow
	if releaseNow {
		reason = "agenttrace daemon stop"
	}
	for reason == "" {
		select {
		case <-ctx.Done():
			reason = "context cancelled"
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				d.reload()
				continue
			case syscall.SIGUSR1:
				reason, release = "agenttrace daemon stop", true
			default:
				reason = "signal " + unixSignalName(sig)
			}
		}
	}
	return d.stop(reason, release)
}

// start brings the daemon up: log, tracer, start record, targets. Every
// check that can fail comes before the log is touched. A termination
// signal in sigs ends a wait for disk space.
func (d *Daemon) start(sigs <-chan os.Signal) error {
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
	// One daemon per state directory (cursors, counts): a second one, run
	// by hand while the service is up, stops here.
	if d.stateLock, err = sink.LockFile(filepath.Join(cfg.StateDir, "daemon.lock"), "the state directory "+cfg.StateDir); err != nil {
		return err
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

	host, _ := os.Hostname()
	d.res = cgroup.NewResolver(mount, "")
	enc := record.NewEncoder(host, session.BootID(), record.WallOffset(), d.res)
	enc.SetSensitive(sensitive)
	enc.SetSensitiveFiles(record.ResolveSensitiveFiles(sensitive))
	enc.Hasher = record.NewExeHasher()
	enc.OnCgroup = d.cgroupRecord
	enc.SetPatternNames(patternTexts(cfg.Targets))
	d.met = newMetrics(d)
	// Every check that can fail comes before the log is touched: a second
	// daemon whose metrics port is taken must not write a segment.
	if cfg.Metrics.Listen != "" {
		if err := d.met.listen(cfg.Metrics.Listen); err != nil {
			return err
		}
	}
	tcfg := tracer.Config{
		Load: loader.Config{Globs: true, MaxArgBytes: cfg.MaxArgBytes, RingBytes: cfg.RingSize, PinDir: loader.PinDir(cfg.StateDir)},
		Target: func(k *loader.Tracer) error {
			d.kernel = k
			if err := k.SetPatterns(components(cfg.Targets)); err != nil {
				return err
			}
			// What the daemon does not write from now on, nobody can.
			return k.Freeze()
		},
		Encoder: enc,
		Log: sink.Options{
			Base: filepath.Join(cfg.Log.Dir, cfg.Log.Name), Signer: signer, VerifierKey: vkey, Version: session.Version,
			CheckpointRecords: cfg.Checkpoint.Records, CheckpointInterval: cfg.Checkpoint.Interval,
			RotateSize: cfg.Log.RotateSize, RotateInterval: cfg.Log.RotateInterval, Sync: sync, Mode: fileMode,
			Observe: d.met.observeWrite,
		},
		Pipeline: pipeline.Options{Heartbeat: cfg.Heartbeat, OnBlocked: func(err error) {
			if err != nil {
				d.logger.Error().Err(err).Msg("the audit log refuses writes: events are counted, not recorded, until it takes writes again")
			} else {
				d.logger.Info().Msg("the audit log takes writes again; what was lost meanwhile is counted in a gap record")
			}
		}},
	}
	if cfg.FailClosed {
		tcfg.Freezer = d
	}
	// Exporters take their cursors' locks now, before the log is touched.
	if err := d.newExporters(); err != nil {
		return err
	}
	tcfg.BeforeRead = func(t *tracer.Tracer) error {
		if err := t.Log.Append(d.startBody(t)); err != nil {
			return fmt.Errorf("writing the start record: %w", err)
		}
		d.kernelStateRecords(t)
		return nil
	}
	if d.rt, err = d.startTracer(tcfg, sigs); err != nil {
		return err
	}
	if err := d.applyTargets("start"); err != nil {
		return err
	}
	d.watchTamper()
	d.met.serve()
	d.runExporters()
	return nil
}

// startTracer starts the tracer; while the log's file system is full it
// retries, with a growing wait, saying so, until it has room or a
// termination signal comes: a full disk never needs a hand-deleted file.
func (d *Daemon) startTracer(cfg tracer.Config, sigs <-chan os.Signal) (*tracer.Tracer, error) {
	wait := time.Second
	for {
		rt, err := tracer.Start(cfg)
		if err == nil || !diskFull(err) {
			return rt, err
		}
		d.logger.Error().Err(err).Dur("retry_in", wait).Msg("the log's file system is full: nothing can be written, so nothing is traced; retrying")
		select {
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				return nil, fmt.Errorf("stopped by %s while waiting for room for the log: %w", unixSignalName(sig), err)
			}
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// diskFull reports whether err says the file system has no room.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG)
}

// abort undoes a start that failed part way; what was logged stays.
func (d *Daemon) abort() {
	d.stopTamper()
	d.stopExporters(time.Now().Add(d.cfg.DrainTimeout))
	if d.rt != nil {
		d.rt.HandOver(d.cfg.DrainTimeout)
		d.rt.Close()
	}
	if d.met != nil {
		d.met.close()
	}
	if d.stateLock != nil {
		d.stateLock.Close()
	}
}

// stop drains and closes: everything in the ring buffer now is written,
// then the stop record and the final checkpoint; exporters get what is
// left of drain_timeout to deliver them. Released, the hooks are detached
// first and the kernel side goes; otherwise it stays pinned, recording
// into its ring for the next daemon.
func (d *Daemon) stop(reason string, release bool) error {
	d.logger.Info().Str("reason", reason).Bool("release", release).Msg("stopping")
	deadline := time.Now().Add(d.cfg.DrainTimeout)
	d.stopTamper()
	// Not under d.mu: the pipeline takes it (cgroupRecord) while it drains.
	var stats pipeline.Stats
	var pipeErr error
	if release {
		stats, pipeErr = d.rt.Stop(time.Until(deadline))
	} else {
		stats, pipeErr = d.rt.HandOver(time.Until(deadline))
	}
	if pipeErr != nil {
		d.logger.Error().Err(pipeErr).Msg("drain")
	}
	state := "released"
	if d.rt.Kernel.Pinned() {
		state = "kept"
	}
	stop := &record.Stop{Mode: record.ModeDaemon, Reason: reason, UptimeNs: int64(time.Since(d.started)),
		KernelState: state, Reread: stats.Reread, Records: stats.WrittenCounts(), Lost: stats.LostCounts()}
	err := d.rt.Log.Append(stop)
	if err != nil {
		err = fmt.Errorf("writing the stop record: %w", err)
	}
	closeErr := d.rt.Close()
	d.stopExporters(deadline)
	d.met.close()
	d.stateLock.Close()
	if err = errors.Join(pipeErr, err, closeErr); err != nil {
		d.logger.Error().Err(err).Msg("stopped with errors")
		return err
	}
	if state == "kept" {
		d.logger.Info().Str("pinned", d.rt.Kernel.PinPath()).Msg("stopped: log drained and checkpointed; the kernel side keeps recording for the next daemon (agenttrace daemon stop releases it)")
	} else {
		d.logger.Info().Msg("stopped: log drained and checkpointed; the kernel side is released")
	}
	return nil
}

// kernelStateRecords says in the log what the kernel side's past is: an
// adopted one's tail that could not be matched, replaced ones' unread
// events (a gap each).
func (d *Daemon) kernelStateRecords(t *tracer.Tracer) {
	if err := t.ResumeErr; err != nil {
		d.logger.Error().Err(err).Msg("the adopted kernel side's ring cannot be matched with the log: records its last reader wrote after its last commit may be written twice")
	}
	for _, r := range t.Replaced {
		now := time.Now()
		gap := &record.Gap{Stage: "kernel", CPU: -1, From: d.started, To: now, Lost: record.Counts{}}
		if r.Known {
			gap.Reason = "a kernel side of another build or configuration was replaced: what it matched and no log shows was never read"
			gap.Lost["unknown"] = r.Unread
		} else {
			gap.Reason = "an incomplete or unreadable kernel side was replaced: what it matched and no log shows could not be counted"
		}
		d.logger.Warn().Str("pinned", r.Dir).Bool("counted", r.Known).Uint64("unread", r.Unread).Msg("replaced a pinned kernel side")
		if err := t.Log.Append(gap); err != nil {
			d.logger.Error().Err(err).Msg("the gap record of a replaced kernel side could not be written")
		}
	}
}

// cgroupRecord keeps the target list current between walks: a cgroup that
// matched a pattern at mkdir is a target until its rmdir.
func (d *Daemon) cgroupRecord(c *record.Cgroup) {
	d.mu.Lock()
	switch {
	case c.Op == "mkdir" && c.Matched && !c.StateFull:
		d.targets[c.ID] = strings.Clone(strings.TrimPrefix(c.Path, "/")) // c.Path aliases the ring buffer
	case c.Op == "rmdir":
		delete(d.targets, c.ID)
	}
	// The kernel made every cgroup a mkdir record reports traced: watch it.
	switch {
	case c.Op == "mkdir" && !c.StateFull:
		d.kernel.LearnCgroupState(c.ID)
	case c.Op == "rmdir":
		d.kernel.ForgetCgroupState(c.ID)
	}
	n := len(d.targets)
	d.mu.Unlock()
	d.met.targets.Set(float64(n))
	if c.StateFull {
		d.logger.Error().Str("cgroup", c.Path).Msg("the kernel's cgroup state map is full: this cgroup is NOT traced")
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
// every process in a cgroup that was not traced before.
func (d *Daemon) applyTargets(reason string) error {
	before, err := d.rt.Kernel.CgroupStates()
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
		if err := d.rt.Kernel.PutCgroupState(id, st.Partial, st.Traced); err != nil {
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
			d.rt.Kernel.DeleteCgroupState(id)
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
		procs := len(pids)
		d.appendTarget(&record.Target{Op: "add", Reason: reason, Cgroup: "/" + rel, CgroupID: id, Targets: matchingPatterns(pats, rel), Processes: &procs})
	}
	for id, rel := range prev {
		if _, ok := matched[id]; !ok {
			d.appendTarget(&record.Target{Op: "remove", Reason: reason, Cgroup: "/" + rel, CgroupID: id})
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
			d.appendOwn(p.Record())
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

func (d *Daemon) appendTarget(tg *record.Target) {
	d.appendOwn(tg)
	d.logger.Info().Str("op", tg.Op).Str("reason", tg.Reason).Str("cgroup", tg.Cgroup).Msg("target")
}

// appendOwn appends one of the daemon's records. While the log refuses
// writes the record is lost, and counted: the sink counts it, and the
// pipeline writes the count in a gap record once the log takes writes.
func (d *Daemon) appendOwn(body record.Body) {
	if err := d.rt.Log.Append(body); err != nil {
		d.logger.Error().Err(err).Str("record", body.Type()).Msg("a record could not be written; it is counted in a gap record")
	}
}

func (d *Daemon) startBody(t *tracer.Tracer) *record.Start {
	cfg := d.cfg
	s := &record.Start{
		Mode: record.ModeDaemon, AgenttraceVersion: session.Version, Pid: os.Getpid(), Uid: os.Getuid(),
		Config: cfg.Path, ConfigSHA256: cfg.Hash, CgroupMount: d.mount, Targets: patternTexts(cfg.Targets),
		MaxArgBytes: cfg.MaxArgBytes, RingSize: t.Kernel.RingSize(), FailClosed: cfg.FailClosed,
		SensitivePaths: t.Enc.Sensitive().Patterns(), Hooks: session.Hooks(t.Kernel),
		KernelState: string(t.Kernel.State()),
	}
	if t.Kernel.Adopted() {
		s.ResumedAfterSeq = t.Kernel.Resumed().Seq
		if t.ResumeErr != nil {
			s.ResumeError = t.ResumeErr.Error()
		}
	}
	if tracesPath(cfg.Targets, d.self) {
		s.ExcludedCgroup = "/" + d.self
	}
	return s
}

// reload re-reads the configuration. A file that does not load is
// rejected (recorded, logged) and the running configuration stays.
func (d *Daemon) reload() {
	var sensitive *record.PathSet
	newCfg, err := config.LoadDaemon(d.cfgPath)
	if err == nil {
		sensitive, err = sensitiveSet(newCfg.SensitivePaths)
	}
	if err != nil {
		d.logger.Error().Err(err).Str("config", d.cfgPath).Msg("reload rejected; the previous configuration stays in force")
		d.met.reloads.WithLabelValues("rejected").Inc()
		d.appendOwn(&record.Reload{Status: "rejected", Config: d.cfgPath, ConfigSHA256: fileHash(d.cfgPath), Error: err.Error()})
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
		if err := d.rt.Kernel.SetPatterns(components(merged.Targets)); err != nil {
			d.logger.Error().Err(err).Msg("reload: setting patterns")
			d.met.reloads.WithLabelValues("rejected").Inc()
			d.appendOwn(&record.Reload{Status: "rejected", Config: d.cfgPath, ConfigSHA256: merged.Hash, Error: err.Error()})
			return
		}
	}
	d.mu.Lock()
	d.cfg = &merged
	d.mu.Unlock()
	names := patternTexts(merged.Targets)
	sensitiveFiles := record.ResolveSensitiveFiles(sensitive)
	// The new lists apply to the records appended from now on, whether or
	// not the reload record below can be written.
	d.rt.Enc.SetSensitive(sensitive)
	d.rt.Enc.SetSensitiveFiles(sensitiveFiles)
	d.rt.Enc.SetPatternNames(names)
	d.appendOwn(&record.Reload{Status: "applied", Config: d.cfgPath, ConfigSHA256: merged.Hash, Changed: changed, NeedsRestart: needRestart, Targets: names})
	syncPolicy, _ := sink.ParseSyncPolicy(merged.Log.Fsync)
	d.rt.Log.SetPolicy(sink.Policy{CheckpointRecords: merged.Checkpoint.Records, CheckpointInterval: merged.Checkpoint.Interval,
		RotateSize: merged.Log.RotateSize, RotateInterval: merged.Log.RotateInterval, Sync: syncPolicy})
	d.rt.Pipe.SetHeartbeat(merged.Heartbeat)
	d.mu.Lock()
	if merged.FailClosed {
		d.rt.SetFailClosed(d)
	} else {
		d.rt.SetFailClosed(nil)
	}
	d.mu.Unlock()
	if targetsChanged {
		if err := d.applyTargets("reload"); err != nil {
			d.logger.Error().Err(err).Msg("reload: applying targets")
		}
	}
	d.reloadExporters(old, &merged)
	d.met.reloads.WithLabelValues("applied").Inc()
	d.logger.Info().Strs("changed", changed).Strs("needs_restart", needRestart).Msg("reloaded")
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
