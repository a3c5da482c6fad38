package daemon

import (
	"context"
	"path/filepath"
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agenttrace/agenttrace/internal/config"
	"github.com/agenttrace/agenttrace/internal/export"
	"github.com/agenttrace/agenttrace/internal/session"
)

// exporter is one running export.Runner: it tails the daemon's log with its
// own cursor in state_dir and never touches the tracer's path.
type exporter struct {
	r      *export.Runner
	cancel context.CancelFunc
	done   chan error
}

// newExporters makes one Runner per configured exporter, taking its
// cursor's lock. A Runner that cannot start (a cursor of another log or in
// use, a bad TLS file) fails the start before the log is touched: the
// operator must know before the first event.
func (d *Daemon) newExporters() error {
	for _, cfg := range d.cfg.Exporters {
		e, err := d.newExporter(cfg)
		if err != nil {
			return err
		}
		d.expMu.Lock()
		d.exporters = append(d.exporters, e)
		d.expMu.Unlock()
	}
	return nil
}

// runExporters starts the Runners newExporters made.
func (d *Daemon) runExporters() {
	d.expMu.Lock()
	defer d.expMu.Unlock()
	for _, e := range d.exporters {
		e.run()
	}
}

func (d *Daemon) startExporter(cfg export.Config) error {
	e, err := d.newExporter(cfg)
	if err != nil {
		return err
	}
	e.run()
	d.expMu.Lock()
	d.exporters = append(d.exporters, e)
	d.expMu.Unlock()
	return nil
}

func (e *exporter) run() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.done <- e.r.Run(ctx) }()
}

func (d *Daemon) newExporter(cfg export.Config) (*exporter, error) {
	// The Runner adds the exporter's name to its log lines itself.
	r, err := export.NewRunner(cfg, export.RunnerOptions{
		Log: filepath.Join(d.cfg.Log.Dir, d.cfg.Log.Name), StateDir: d.cfg.StateDir,
		Head: func() uint64 { seq, _ := d.rt.Log.Head(); return seq }, Logger: &d.logger,
		DrainTimeout: d.cfg.DrainTimeout, Version: session.Version,
	})
	if err != nil {
		return nil, err
	}
	return &exporter{r: r, done: make(chan error, 1)}, nil
}

// stopExporters lets each exporter deliver what the log holds (its drain
// bound is drain_timeout) and waits for them until deadline.
func (d *Daemon) stopExporters(deadline time.Time) {
	d.expMu.Lock()
	list := d.exporters
	d.exporters = nil
	d.expMu.Unlock()
	for _, e := range list {
		if e.cancel == nil { // made, never run
			e.r.Close()
			continue
		}
		e.cancel()
	}
	for _, e := range list {
		if e.cancel == nil {
			continue
		}
		select {
		case err := <-e.done:
			if err != nil {
				d.logger.Warn().Err(err).Str("exporter", e.r.Name()).Msg("exporter stopped")
			}
		case <-time.After(time.Until(deadline)):
			d.logger.Warn().Str("exporter", e.r.Name()).Msg("exporter did not stop within drain_timeout; what it did not deliver stays in the log for the next start")
		}
		e.r.Close()
	}
}

// reloadExporters restarts the exporters whose configuration changed, and
// starts and stops the ones added and removed. Cursors carry over: a
// restarted exporter resumes where the old one was acknowledged.
func (d *Daemon) reloadExporters(old, cfg *config.Config) {
	want := map[string]export.Config{}
	for _, e := range cfg.Exporters {
		want[e.Name] = e
	}
	d.expMu.Lock()
	var keep, stop []*exporter
	running := map[string]bool{}
	for _, e := range d.exporters {
		if c, ok := want[e.r.Name()]; ok && reflect.DeepEqual(c, e.r.Config()) {
			keep = append(keep, e)
			running[e.r.Name()] = true
		} else {
			stop = append(stop, e)
		}
	}
	d.exporters = keep
	d.expMu.Unlock()
	for _, e := range stop {
		e.cancel()
		<-e.done // its drain is bounded by drain_timeout
		e.r.Close()
		d.logger.Info().Str("exporter", e.r.Name()).Msg("exporter stopped for the reload")
	}
	for _, c := range cfg.Exporters {
		if running[c.Name] {
			continue
		}
		if err := d.startExporter(c); err != nil {
			d.logger.Error().Err(err).Str("exporter", c.Name).Msg("exporter could not start; the log keeps its records for it")
		}
	}
}

var (
	descExpDelivered = prometheus.NewDesc("agenttrace_exporter_delivered_total",
		"Records the exporter's destination acknowledged (each counted once).", []string{"exporter"}, nil)
	descExpSent = prometheus.NewDesc("agenttrace_exporter_sent_total",
		"Events sent, resent ones included.", []string{"exporter"}, nil)
	descExpRetries = prometheus.NewDesc("agenttrace_exporter_retries_total",
		"Events sent again after a failure (at least the duplicates the destination got).", []string{"exporter"}, nil)
	descExpErrors = prometheus.NewDesc("agenttrace_exporter_errors_total",
		"Failed sends and broken connections.", []string{"exporter"}, nil)
	descExpLagRecords = prometheus.NewDesc("agenttrace_exporter_lag_records",
		"Records in the log not yet acknowledged by the destination.", []string{"exporter"}, nil)
	descExpLagBytes = prometheus.NewDesc("agenttrace_exporter_lag_bytes",
		"Bytes of the log not yet acknowledged: the log is the buffer, bounded by the free space of its file system.", []string{"exporter"}, nil)
	descExpLogFree = prometheus.NewDesc("agenttrace_exporter_log_free_bytes",
		"Free bytes of the log's file system, as the exporter last saw them.", []string{"exporter"}, nil)
	descExpConnected = prometheus.NewDesc("agenttrace_exporter_connected",
		"1 while the exporter has a working connection to its destination.", []string{"exporter"}, nil)
	descExpLastAck = prometheus.NewDesc("agenttrace_exporter_last_ack_seconds",
		"When the destination last acknowledged records (Unix time; 0: never).", []string{"exporter"}, nil)
)

func (m *metrics) describeExporters(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descExpDelivered, descExpSent, descExpRetries, descExpErrors, descExpLagRecords, descExpLagBytes, descExpLogFree, descExpConnected, descExpLastAck} {
		ch <- d
	}
}

func (m *metrics) collectExporters(ch chan<- prometheus.Metric) {
	m.d.expMu.Lock()
	list := append([]*exporter(nil), m.d.exporters...)
	m.d.expMu.Unlock()
	for _, e := range list {
		s, name := e.r.Stats(), e.r.Name()
		ch <- prometheus.MustNewConstMetric(descExpDelivered, prometheus.CounterValue, float64(s.Delivered), name)
		ch <- prometheus.MustNewConstMetric(descExpSent, prometheus.CounterValue, float64(s.Sent), name)
		ch <- prometheus.MustNewConstMetric(descExpRetries, prometheus.CounterValue, float64(s.Retries), name)
		ch <- prometheus.MustNewConstMetric(descExpErrors, prometheus.CounterValue, float64(s.Errors), name)
		ch <- prometheus.MustNewConstMetric(descExpLagRecords, prometheus.GaugeValue, float64(s.LagRecords), name)
		ch <- prometheus.MustNewConstMetric(descExpLagBytes, prometheus.GaugeValue, float64(s.LagBytes), name)
		ch <- prometheus.MustNewConstMetric(descExpLogFree, prometheus.GaugeValue, float64(s.LogFree), name)
		connected := 0.0
		if s.Connected {
			connected = 1
		}
		ch <- prometheus.MustNewConstMetric(descExpConnected, prometheus.GaugeValue, connected, name)
		lastAck := 0.0
		if !s.LastAck.IsZero() {
			lastAck = float64(s.LastAck.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(descExpLastAck, prometheus.GaugeValue, lastAck, name)
	}
}
