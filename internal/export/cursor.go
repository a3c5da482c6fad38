package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Cursor is how far an exporter's destination has acknowledged a log: every
// record up to Seq, which ends at Offset in Segment. It is persisted in
// <state_dir>/<exporter name>.cursor only after the destination
// acknowledged, so a restart resends at most what was not acknowledged.
type Cursor struct {
	Log   string `json:"log"` // the log's base path when the cursor was written
	LogID string `json:"log_id"`
	Position
	// Final: the record at Seq is a final checkpoint, so the log was
	// delivered completely up to where its writer closed it.
	Final bool `json:"final,omitempty"`
}

// CursorPath is the file of the cursor of exporter name.
func CursorPath(stateDir, name string) string {
	return filepath.Join(stateDir, name+".cursor")
}

// LoadCursor reads a cursor file; nil, nil if there is none.
func LoadCursor(path string) (*Cursor, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading export cursor: %w", err)
	}
	var c Cursor
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("export cursor %s: %w (remove it to export the log from its start)", path, err)
	}
	if c.LogID == "" || c.Segment < 1 || c.Offset < 0 {
		return nil, fmt.Errorf("export cursor %s is incomplete (remove it to export the log from its start)", path)
	}
	return &c, nil
}

// Save writes the cursor atomically: a temporary file, fsync, rename over
// the old one, fsync of the directory. A crash leaves the old cursor or the
// new one, never a mix.
func (c *Cursor) Save(path string) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("writing export cursor: %w", err)
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing export cursor: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("writing export cursor: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("writing export cursor: syncing %s: %w", dir, err)
	}
	return nil
}

// lockCursor takes an exclusive lock on exporter name's cursor, so that two
// agenttrace processes never move the same cursor. The state directory is
// created (0700) if needed.
func lockCursor(stateDir, name string) (*os.File, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("export state directory: %w", err)
	}
	path := filepath.Join(stateDir, name+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("export state: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("exporter %q is already running (its cursor %s is locked by pid %s): give this run another state_dir or exporter name",
				name, CursorPath(stateDir, name), string(holder))
		}
		return nil, fmt.Errorf("locking export cursor: %w", err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())), 0)
	return f, nil
}
