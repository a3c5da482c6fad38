package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/agenttrace/agenttrace/internal/config"
	"github.com/agenttrace/agenttrace/internal/export"
	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/session"
)

func newExportCommand() *cobra.Command {
	var o struct {
		config, exporter string
		fromSeq, toSeq   uint64
		once             bool
		timeout          time.Duration
	}
	cmd := &cobra.Command{
		Use:   "export --config FILE --once LOG",
		Short: "Send a log, or a seq range of it, to the configured SIEM exporters again",
		Long: `Replays the log LOG (the path of its first segment; later segments are found
beside it) to the exporters of the configuration file (the daemon's YAML, its
exporters: list), and exits. For backfill after an outage: the exporters'
cursors are neither read nor moved, every record of the range is sent, and
the destination drops what it already has by the dedupe key (host, log_id,
seq). Exit status 0 only if every record of the range was delivered.

Continuous export runs in agenttrace run --export-config and in the daemon.
Exporters and formats: docs/siem.md.`,
		Example: `  agenttrace export --config /etc/agenttrace/agenttrace.yaml --once /var/log/agenttrace/agenttrace.jsonl
  agenttrace export --config agenttrace.yaml --exporter splunk --from-seq 1000 --to-seq 2000 --once audit.jsonl`,
		Args: exactArgs(1, "one LOG (the path of its first segment)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.config == "":
				return usageError("export: --config FILE is required")
			case !o.once:
				return usageError("export: --once is required: continuous export runs in agenttrace run --export-config and in the daemon")
			case o.toSeq > 0 && o.toSeq < o.fromSeq:
				return usageError("export: --to-seq must not be below --from-seq")
			}
			return runExport(cmd, args[0], o.config, o.exporter, o.fromSeq, o.toSeq, o.timeout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "the configuration `file` whose exporters: to use (required)")
	f.StringVar(&o.exporter, "exporter", "", "replay to this exporter only (default: every exporter of the file)")
	f.Uint64Var(&o.fromSeq, "from-seq", 0, "first seq to send (default: the log's first)")
	f.Uint64Var(&o.toSeq, "to-seq", 0, "last seq to send (default: the log's last)")
	f.BoolVar(&o.once, "once", false, "replay the log and exit (required: continuous export is agenttrace run --export-config or the daemon)")
	f.DurationVar(&o.timeout, "timeout", 0, "give up after this long (default: retry until delivered or interrupted)")
	return cmd
}

// runExport is agenttrace export --once.
func runExport(cmd *cobra.Command, logPath, configPath, name string, fromSeq, toSeq uint64, timeout time.Duration) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if files, _ := logfile.Segments(logPath); len(files) == 0 {
		return failed(fmt.Errorf("export: %s: no such log", logPath))
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return failed(fmt.Errorf("export: %w", err))
	}
	var exporters []export.Config
	for _, e := range cfg.Exporters {
		if name == "" || e.Name == name {
			exporters = append(exporters, e)
		}
	}
	if len(exporters) == 0 {
		if name != "" {
			return failed(fmt.Errorf("export: %s has no exporter named %q", configPath, name))
		}
		return failed(fmt.Errorf("export: %s has no exporters", configPath))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	logger := consoleLogger(stderr)
	status := 0
	for _, e := range exporters {
		start := time.Now()
		r, err := export.NewRunner(e, export.RunnerOptions{
			Log: logPath, Replay: true, Once: true, FromSeq: fromSeq, ToSeq: toSeq, Logger: &logger, Version: session.Version,
		})
		if err != nil {
			fmt.Fprintf(stderr, "agenttrace: export: %v\n", err)
			status = 1
			continue
		}
		err = r.Run(ctx)
		st := r.Stats()
		took := time.Since(start)
		rate := float64(st.Delivered) / took.Seconds()
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "agenttrace: export: %s: %v\n", e.Name, err)
			status = 1
		case st.Delivered == 0:
			fmt.Fprintf(stdout, "agenttrace: export %s: 0 records: none in the range\n", e.Name)
		default:
			fmt.Fprintf(stdout, "agenttrace: export %s: %d records sent (seq %d-%d) in %.1fs (%.0f records/s)\n",
				e.Name, st.Delivered, st.FirstSeq, st.LastSeq, took.Seconds(), rate)
		}
	}
	return exitStatus(status)
}

// consoleLogger is the exporters' operational log on a terminal's stderr.
func consoleLogger(w io.Writer) zerolog.Logger {
	return zerolog.New(zerolog.ConsoleWriter{Out: w, NoColor: true, TimeFormat: time.RFC3339}).With().Timestamp().Logger()
}

// exportOptions reads the exporters of `run --export-config FILE` into
// opts.
func exportOptions(path string, opts *session.Options, stderr io.Writer) error {
	if path == "" {
		return nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if len(cfg.Exporters) == 0 {
		return fmt.Errorf("%s has no exporters", path)
	}
	logger := consoleLogger(stderr)
	opts.Exporters, opts.ExportStateDir, opts.ExportLogger = cfg.Exporters, cfg.StateDir, &logger
	return nil
}

// printExports is the summary of what each exporter delivered.
func printExports(w io.Writer, exports []session.ExportResult) {
	for _, e := range exports {
		st := e.Stats
		switch {
		case st.LastSeq >= e.LastSeq && e.Err == nil && st.Delivered == 0:
			fmt.Fprintf(w, "agenttrace: exported to %s: nothing new, the log up to its end (seq %d) was delivered before\n", e.Name, st.LastSeq)
		case st.LastSeq >= e.LastSeq && e.Err == nil:
			fmt.Fprintf(w, "agenttrace: exported to %s: %d records delivered (seq %d-%d), the log up to its end\n",
				e.Name, st.Delivered, st.FirstSeq, st.LastSeq)
		default:
			fmt.Fprintf(w, "agenttrace: EXPORT TO %s INCOMPLETE: delivered up to seq %d of %d (%d records this run, %d send errors); the rest stays in the log: the next run with the same state_dir resends it, or agenttrace export --once\n",
				e.Name, st.LastSeq, e.LastSeq, st.Delivered, st.Errors)
		}
	}
}
