package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/agenttrace/agenttrace/internal/config"
	"github.com/agenttrace/agenttrace/internal/loader"
	"github.com/agenttrace/agenttrace/internal/sink"
)

// stopGrace is how long Stop waits beyond the daemon's drain_timeout for
// it to exit.
const stopGrace = 30 * time.Second

// Stop ends tracing for the configuration at cfgPath for good: the running
// daemon is told to release its kernel side (SIGUSR1) and Stop waits for it
// to exit; with no daemon running, a kernel side left pinned is adopted,
// drained into the log and released here. out is told what was done.
func Stop(ctx context.Context, cfgPath string, logger zerolog.Logger, out io.Writer) error {
	cfg, err := config.LoadDaemon(cfgPath)
	if err != nil {
		return err
	}
	lockPath := filepath.Join(cfg.StateDir, "daemon.lock")
	lock, err := sink.LockFile(lockPath, "the state directory "+cfg.StateDir)
	if err == nil {
		lock.Close()
		if !loader.PinnedState(cfg.StateDir) {
			fmt.Fprintf(out, "no daemon runs for %s and no kernel side is pinned for it: nothing to stop\n", cfg.StateDir)
			return nil
		}
		if err := run(ctx, cfgPath, logger, true); err != nil {
			return err
		}
		fmt.Fprintf(out, "no daemon was running: the kernel side it left pinned was drained into the log and released\n")
		return nil
	}
	if !errors.Is(err, sink.ErrLocked) {
		return err
	}
	pid, perr := lockHolder(lockPath)
	if perr != nil {
		return fmt.Errorf("the state directory %s is locked, but by whom: %w", cfg.StateDir, perr)
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return fmt.Errorf("telling the daemon (pid %d) to stop: %w", pid, err)
	}
	deadline := time.Now().Add(cfg.DrainTimeout + stopGrace)
	for {
		lock, err := sink.LockFile(lockPath, "the state directory "+cfg.StateDir)
		if err == nil {
			lock.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon (pid %d) did not stop within %v", pid, cfg.DrainTimeout+stopGrace)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if loader.PinnedState(cfg.StateDir) {
		return fmt.Errorf("the daemon (pid %d) exited, but a kernel side is still pinned in %s: run agenttrace daemon stop again", pid, loader.PinDir(cfg.StateDir))
	}
	fmt.Fprintf(out, "the daemon (pid %d) stopped and released its kernel side\n", pid)
	return nil
}

// lockHolder is the pid a lock file names.
func lockHolder(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s does not name a pid", path)
	}
	return pid, nil
}
