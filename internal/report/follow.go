package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/export"
	"github.com/agenttrace/agenttrace/internal/logfile"
	"github.com/agenttrace/agenttrace/internal/record"
)

// FollowOptions of a live view.
type FollowOptions struct {
	Filter Filter
	Color  bool
	// Poll is how often a log at its end is looked at again (default
	// export.DefaultPoll); Rescan how often a directory is listed for new
	// logs (default 1s).
	Poll   time.Duration
	Rescan time.Duration
}

// followed is one log being followed.
type followed struct {
	base   string
	label  string // "" when only one log is followed
	tailer *export.Tailer
	rec    export.Record
	prev   chain.Hash // hash of the last line read, with its newline
	linked bool       // prev is set
}

// Follow writes the Compact line of every record of note the logs at paths
// get, as it is written, until ctx is done; then it returns nil. A path is
// a log (its first segment; later segments, from rotation or a continuing
// run, are followed as they appear) or a directory of logs. A log that
// exists is followed from its end, one that appears later (a path that
// does not exist yet, a new log in a directory) from its start.
//
// Follow does not verify signatures: the last records of a log being
// written are not signed yet. It does check that each record chains to the
// one before it and says so where one does not.
func Follow(ctx context.Context, w io.Writer, paths []string, opts FollowOptions) error {
	if opts.Rescan <= 0 {
		opts.Rescan = time.Second
	}
	var dirs []string
	var logs []*followed
	known := map[string]bool{}
	add := func(base string, atEnd bool) error {
		known[base] = true
		pos := export.Position{Segment: 1}
		if atEnd {
			var err error
			if pos, err = endPosition(base); err != nil {
				return err
			}
		}
		logs = append(logs, &followed{base: base, tailer: export.NewTailer(base, "", pos, opts.Poll, nil)})
		return nil
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			err = add(p, false) // not written yet: from its first record
		case err != nil:
		case info.IsDir():
			dirs = append(dirs, p)
			var bases []string
			if bases, err = logfile.Logs(p); err == nil {
				for _, b := range bases {
					if err = add(b, true); err != nil {
						break
					}
				}
			}
		default:
			err = add(p, true)
		}
		if err != nil {
			return err
		}
	}
	defer func() {
		for _, l := range logs {
			l.tailer.Close()
		}
	}()
	labels := len(paths) > 1 || len(dirs) > 0
	poll := opts.Poll
	if poll <= 0 {
		poll = export.DefaultPoll
	}
	lastScan := time.Now()
	var out bytes.Buffer
	for {
		if time.Since(lastScan) >= opts.Rescan {
			lastScan = time.Now()
			for _, d := range dirs {
				bases, err := logfile.Logs(d)
				if err != nil {
					return err
				}
				for _, b := range bases {
					if !known[b] {
						if err := add(b, false); err != nil {
							return err
						}
					}
				}
			}
		}
		read := false
		for _, l := range logs {
			if labels && l.label == "" {
				l.label = display(filepath.Base(l.base)) + ": "
			}
			// A bounded batch per log, so one busy log does not starve the others.
			for range 1000 {
				ok, err := l.tailer.TryNext(&l.rec)
				if err != nil {
					return err
				}
				if !ok {
					break
				}
				read = true
				l.line(&out, &opts)
			}
			if out.Len() > 0 {
				if _, err := w.Write(out.Bytes()); err != nil {
					return err
				}
				out.Reset()
			}
		}
		if read {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// line appends the compact line of the record just read, if it is of
// note, and a warning where the record does not chain to the one before.
func (l *followed) line(out *bytes.Buffer, opts *FollowOptions) {
	r := &l.rec
	env, err := record.ParseEnvelope(r.Line)
	if err != nil {
		return // the tailer already parsed it
	}
	if l.linked && chain.Hash(env.Prev) != l.prev {
		t := &textWriter{color: opts.Color}
		fmt.Fprintf(out, "%s%s\n", l.label, t.style(styleRed, fmt.Sprintf(
			"CHAIN BROKEN: seq %d (%s offset %d) does not follow the record before it: run agenttrace verify %s",
			r.Seq, display(logfile.SegmentPath(l.base, r.Segment)), r.Offset, display(l.base))))
	}
	r.Line = append(r.Line, '\n')
	l.prev = chain.HashLine(r.Line)
	r.Line = r.Line[:len(r.Line)-1]
	l.linked = true
	text, err := Compact(r.Line, &opts.Filter, opts.Color)
	if err != nil {
		text = fmt.Sprintf("seq %d: %v", r.Seq, err)
	}
	if text != "" {
		out.WriteString(l.label)
		out.WriteString(text)
		out.WriteByte('\n')
	}
}

// endPosition is where the log at base ends now: after the last complete
// line of its newest segment.
func endPosition(base string) (export.Position, error) {
	files, numbers := logfile.Segments(base)
	if len(files) == 0 {
		return export.Position{Segment: 1}, nil
	}
	last := len(files) - 1
	end, err := logfile.EndOfLines(files[last])
	if err != nil {
		return export.Position{}, err
	}
	return export.Position{Segment: numbers[last], Offset: end}, nil
}
