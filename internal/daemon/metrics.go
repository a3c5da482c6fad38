package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/record"
)

// metrics is the daemon's Prometheus endpoint: counts and durations only,
// never the contents of a record (docs/config.md lists every series).
type metrics struct {
	d   *Daemon
	reg *prometheus.Registry
	srv *http.Server
	ln  net.Listener

	write   *prometheus.HistogramVec
	reloads *prometheus.CounterVec
	targets prometheus.Gauge
	tamper  *prometheus.CounterVec
}

func newMetrics(d *Daemon) *metrics {
	m := &metrics{d: d, reg: prometheus.NewRegistry()}
	m.write = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "agenttrace_log_write_seconds",
		Help:    "Duration of writes and fsyncs of the audit log.",
		Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10), // 10 µs to 2.6 s
	}, []string{"op"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agenttrace_reloads_total",
		Help: "Configuration reloads (SIGHUP) by status: applied or rejected.",
	}, []string{"status"})
	m.targets = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "agenttrace_targets",
		Help: "Cgroups that match a target pattern (each traced with its subtree).",
	})
	m.tamper = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agenttrace_tamper_total",
		Help: "Changes someone else made to the kernel state agenttrace set (tamper records), by what changed.",
	}, []string{"what"})
	m.reloads.WithLabelValues("applied")
	m.reloads.WithLabelValues("rejected")
	for _, what := range []string{"cgroup_states", "patterns", "states_gen"} {
		m.tamper.WithLabelValues(what)
	}
	m.reg.MustRegister(m.write, m.reloads, m.targets, m.tamper, collector{m})
	return m
}

func (m *metrics) observeWrite(op string, d time.Duration) {
	m.write.WithLabelValues(op).Observe(d.Seconds())
}

// listen binds addr (loopback by default): before anything is written, so
// that a port in use stops a start before it touches the log.
func (m *metrics) listen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	m.ln = l
	return nil
}

// serve answers on the listener, if there is one, until close.
func (m *metrics) serve() {
	if m.ln == nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	l := m.ln
	go func() {
		if err := m.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.d.logger.Error().Err(err).Msg("metrics endpoint")
		}
	}()
	m.d.logger.Info().Str("listen", l.Addr().String()).Msg("metrics endpoint")
}

func (m *metrics) close() {
	if m.srv == nil && m.ln != nil {
		m.ln.Close()
	}
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		m.srv.Shutdown(ctx)
	}
}

var (
	descMatched = prometheus.NewDesc("agenttrace_events_matched_total",
		"Events the kernel's filters matched, by kind.", []string{"kind"}, nil)
	descWritten = prometheus.NewDesc("agenttrace_records_written_total",
		"Kernel event records written to the audit log, by kind.", []string{"kind"}, nil)
	descLost = prometheus.NewDesc("agenttrace_events_lost_total",
		"Events lost, by kind and stage: ringbuf and pairing_map as the kernel counts them; recorded: every loss counted in a gap record of the log (all stages); counted: every loss counted so far, also those waiting for the log to take writes again.",
		[]string{"kind", "stage"}, nil)
	descRingUsed = prometheus.NewDesc("agenttrace_ring_buffer_used_bytes", "Bytes of the ring buffer the kernel cannot reuse yet: not read, or read and not yet in the log.", nil, nil)
	descRingSize = prometheus.NewDesc("agenttrace_ring_buffer_size_bytes", "Ring buffer size.", nil, nil)
	descCPAge    = prometheus.NewDesc("agenttrace_checkpoint_age_seconds",
		"Time since the last signed checkpoint (since start if none yet).", nil, nil)
	descLogRecords = prometheus.NewDesc("agenttrace_log_records_total",
		"Lines this daemon appended to the audit log, its own records included.", nil, nil)
	descUp      = prometheus.NewDesc("agenttrace_start_time_seconds", "When the daemon started (Unix time).", nil, nil)
	descBlocked = prometheus.NewDesc("agenttrace_log_blocked",
		"1 while the audit log refuses writes (disk full, I/O error): events are then counted, not recorded.", nil, nil)
)

// collector reads the live counters at scrape time.
type collector struct{ m *metrics }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMatched, descWritten, descLost, descRingUsed, descRingSize, descCPAge, descLogRecords, descUp, descBlocked} {
		ch <- d
	}
	c.m.describeExporters(ch)
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	d := c.m.d
	if d.rt == nil {
		return
	}
	counters, _ := d.rt.Kernel.Counters()
	written, gapped := d.rt.Pipe.Live()
	counted := d.rt.Pipe.Counted()
	for kind := loader.KindExec; kind < loader.KindMax; kind++ {
		if !record.IsKind(kind) {
			continue // a number no record kind uses
		}
		name := record.KindName(kind)
		ch <- prometheus.MustNewConstMetric(descMatched, prometheus.CounterValue, float64(counters[kind].Matched), name)
		ch <- prometheus.MustNewConstMetric(descWritten, prometheus.CounterValue, float64(written[kind]), name)
		ch <- prometheus.MustNewConstMetric(descLost, prometheus.CounterValue, float64(counters[kind].LostRingbuf), name, "ringbuf")
		ch <- prometheus.MustNewConstMetric(descLost, prometheus.CounterValue, float64(counters[kind].LostInflight), name, "pairing_map")
		ch <- prometheus.MustNewConstMetric(descLost, prometheus.CounterValue, float64(gapped[kind]), name, "recorded")
		ch <- prometheus.MustNewConstMetric(descLost, prometheus.CounterValue, float64(counted[kind]), name, "counted")
	}
	ch <- prometheus.MustNewConstMetric(descRingUsed, prometheus.GaugeValue, float64(d.rt.Kernel.Used()))
	ch <- prometheus.MustNewConstMetric(descRingSize, prometheus.GaugeValue, float64(d.rt.Kernel.RingSize()))
	{
		last := d.rt.Log.LastCheckpoint()
		if last.IsZero() {
			last = d.started
		}
		ch <- prometheus.MustNewConstMetric(descCPAge, prometheus.GaugeValue, time.Since(last).Seconds())
		cnt := d.rt.Log.Counts()
		ch <- prometheus.MustNewConstMetric(descLogRecords, prometheus.CounterValue, float64(cnt.Records+cnt.Headers+cnt.Checkpoints+cnt.Recoveries))
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, float64(d.started.UnixNano())/1e9)
	blocked := 0.0
	if b, _ := d.rt.Log.Blocked(); b {
		blocked = 1
	}
	ch <- prometheus.MustNewConstMetric(descBlocked, prometheus.GaugeValue, blocked)
	c.m.collectExporters(ch)
}
