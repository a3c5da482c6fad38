package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// readFile reads the configuration file after checking that nobody but
// root or the user agenttrace runs as could have written it: whoever can
// edit it chooses what is traced and where the evidence goes.
func readFile(path string) ([]byte, error) {
	// O_NONBLOCK: a FIFO put in the file's place must not hang the daemon.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	var msgs []string
	msgs = append(msgs, ownerProblems(path, fi)...)
	if fi.Mode().Perm()&0o022 != 0 {
		msgs = append(msgs, fmt.Sprintf("writable by group or others (mode %04o): chmod go-w %s", fi.Mode().Perm(), path))
	}
	msgs = append(msgs, directoryProblems(path)...)
	if len(msgs) > 0 {
		errs := make([]error, len(msgs))
		for i, msg := range msgs {
			errs[i] = lineError(path, 0, msg)
		}
		return nil, errors.Join(errs...)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%s: larger than %s, not a configuration file", path, formatSize(maxFileBytes))
	}
	return data, nil
}

// signingKeyProblems checks the signing key's metadata: only its owner
// (root or the user agenttrace runs as) may read it, nobody else may have
// replaced it. A key that does not exist is a problem only if required.
func (c *Config) signingKeyProblems(required bool) []string {
	key := c.SigningKey
	if key == "" {
		return nil
	}
	prefix := fmt.Sprintf("signing_key %q: ", key)
	fi, err := os.Stat(key)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !required {
			return nil
		}
		dir := filepath.Dir(key)
		return []string{prefix + fmt.Sprintf("no such file (agenttrace keygen --out %s writes %s)", dir, filepath.Join(dir, "signing.key"))}
	case err != nil:
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			err = pathErr.Err
		}
		return []string{prefix + err.Error()}
	case !fi.Mode().IsRegular():
		return []string{prefix + "not a regular file"}
	}
	var msgs []string
	for _, msg := range ownerProblems(key, fi) {
		msgs = append(msgs, prefix+msg)
	}
	switch perm := fi.Mode().Perm(); {
	case perm&0o022 != 0:
		msgs = append(msgs, prefix+fmt.Sprintf("private key is writable by group or others (mode %04o): chmod 600 %s", perm, key))
	case perm&0o044 != 0:
		msgs = append(msgs, prefix+fmt.Sprintf("private key is readable by group or others (mode %04o): chmod 600 %s", perm, key))
	}
	for _, msg := range directoryProblems(key) {
		msgs = append(msgs, prefix+msg)
	}
	return msgs
}

// ownerProblems refuses a file owned by anyone but root or the current
// effective user.
func ownerProblems(path string, fi os.FileInfo) []string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	euid := os.Geteuid()
	if st.Uid == 0 || int(st.Uid) == euid {
		return nil
	}
	if euid == 0 {
		return []string{fmt.Sprintf("owned by uid %d, not root: chown root %s", st.Uid, path)}
	}
	return []string{fmt.Sprintf("owned by uid %d, not root or uid %d (the user agenttrace runs as): chown root %s", st.Uid, euid, path)}
}

// directoryProblems refuses a file below a directory that others can write
// without the sticky bit: they could replace the file. Every directory up
// to / counts (renaming a parent replaces the file too), along the path as
// given and along its target if it is a symbolic link.
func directoryProblems(path string) []string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil
	}
	dirs := ancestors(filepath.Dir(abs))
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		dirs = append(dirs, ancestors(filepath.Dir(real))...)
	}
	var msgs []string
	checked := map[string]bool{}
	for _, dir := range dirs {
		if checked[dir] {
			continue
		}
		checked[dir] = true
		fi, err := os.Stat(dir)
		if err != nil {
			continue
		}
		if fi.Mode().Perm()&0o002 != 0 && fi.Mode()&os.ModeSticky == 0 {
			msgs = append(msgs, fmt.Sprintf("directory %s is writable by others: chmod o-w %s", dir, dir))
		}
	}
	return msgs
}

// ancestors lists dir and every directory above it, nearest first.
func ancestors(dir string) []string {
	list := []string{dir}
	for parent := filepath.Dir(dir); parent != dir; dir, parent = parent, filepath.Dir(parent) {
		list = append(list, parent)
	}
	return list
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
