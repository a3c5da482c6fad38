package daemon

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agenttrace/agenttrace/internal/config"
)

// The exporters the configuration names, each tailing the log with its own
// cursor (package export).

func (d *Daemon) startExporters() error { return nil }

func (d *Daemon) stopExporters(deadline time.Time) {}

func (d *Daemon) reloadExporters(old, cfg *config.Config) {}

func (m *metrics) describeExporters(ch chan<- *prometheus.Desc) {}

func (m *metrics) collectExporters(ch chan<- prometheus.Metric) {}
