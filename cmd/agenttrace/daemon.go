package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/agenttrace/agenttrace/internal/daemon"
	"github.com/agenttrace/agenttrace/internal/loader"
)

func cmdDaemon(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/agenttrace/agenttrace.yaml", "configuration `file` (docs/config.md)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: agenttrace daemon [--config FILE]\n\nTraces the cgroups the configuration's targets match until SIGTERM; SIGHUP reloads.\nLogs JSON to stderr; the audit log goes where the configuration says.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agenttrace daemon: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	logger := zerolog.New(stderr).With().Timestamp().Str("component", "agenttrace").Logger()
	if err := daemon.Run(context.Background(), *cfgPath, logger); err != nil {
		logger.Error().Err(err).Msg("agenttrace daemon")
		if errors.Is(err, loader.ErrNotPrivileged) {
			fmt.Fprintln(stderr, "agenttrace daemon: run it as root (docs/deploy.md lists the capabilities it needs)")
		}
		return 1
	}
	return 0
}
