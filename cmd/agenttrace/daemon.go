package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/agenttrace/agenttrace/internal/daemon"
	"github.com/agenttrace/agenttrace/internal/loader"
)

func newDaemonCommand() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Trace the cgroups a configuration names, as a host service",
		Long: `Runs once per host and traces every cgroup whose path matches the configuration's
target globs, from the moment the cgroup is created. Its kernel side (hooks, ring
buffer, counters) is pinned in bpffs and outlives the process: SIGTERM drains the
ring, writes the stop record and a final checkpoint, and exits 0 while the kernel
side keeps recording; the next start adopts it and reads on, so a crash, restart or
upgrade loses nothing the ring can hold. "agenttrace daemon stop" ends tracing for
good. SIGHUP reloads the configuration; a reload record says what changed. A restart
continues the chain.

Its own operational log goes to stderr: readable lines on a terminal, JSON lines
otherwise (systemd, containers). The audit log goes where the configuration says.
Configuration keys: docs/config.md; deployment: docs/deploy.md.`,
		Example: `  sudo agenttrace daemon --config /etc/agenttrace/agenttrace.yaml
  sudo kill -HUP $(pidof agenttrace)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stderr := cmd.ErrOrStderr()
			logger := daemonLogger(stderr, isTerminal(stderr))
			if err := daemon.Run(context.Background(), cfgPath, logger); err != nil {
				for _, e := range errorLines(err) {
					logger.Error().Err(e).Msg("agenttrace daemon")
				}
				if errors.Is(err, loader.ErrNotPrivileged) {
					logger.Error().Msg("run it as root (docs/deploy.md lists the capabilities it needs)")
				}
				return exitStatus(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "/etc/agenttrace/agenttrace.yaml", "configuration `file` (docs/config.md)")
	cmd.AddCommand(newDaemonStopCommand())
	return cmd
}

func newDaemonStopCommand() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "End tracing for good: stop the daemon and release its pinned kernel side",
		Long: `Tells the daemon of the configuration (found by its state directory's lock) to
stop and release its kernel side (SIGUSR1), and waits for it to exit: the hooks are
detached, the ring is drained into the log, the stop record says "released". With
no daemon running, a kernel side left pinned (after SIGTERM or a crash) is adopted,
drained into the log and released. SIGTERM, by contrast, leaves the kernel side
recording for the next daemon.`,
		Example: `  sudo agenttrace daemon stop --config /etc/agenttrace/agenttrace.yaml`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stderr := cmd.ErrOrStderr()
			logger := daemonLogger(stderr, isTerminal(stderr))
			if err := daemon.Stop(context.Background(), cfgPath, logger, cmd.OutOrStdout()); err != nil {
				for _, e := range errorLines(err) {
					logger.Error().Err(e).Msg("agenttrace daemon stop")
				}
				return exitStatus(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "/etc/agenttrace/agenttrace.yaml", "configuration `file` (docs/config.md)")
	return cmd
}

// daemonLogger is the daemon's operational log on w: zerolog's readable
// console lines for a person at a terminal, JSON lines for everything else.
func daemonLogger(w io.Writer, terminal bool) zerolog.Logger {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	if terminal {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	return zerolog.New(w).With().Timestamp().Str("component", "agenttrace").Logger()
}

// errorLines splits err into the errors it joins (errors.Join, as the
// configuration's file:line problems are), one line each.
func errorLines(err error) []error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var all []error
		for _, e := range joined.Unwrap() {
			all = append(all, errorLines(e)...)
		}
		return all
	}
	if !strings.Contains(err.Error(), "\n") {
		return []error{err}
	}
	var all []error
	for _, line := range strings.Split(err.Error(), "\n") {
		if line != "" {
			all = append(all, errors.New(line))
		}
	}
	return all
}
