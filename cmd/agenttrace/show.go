package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/report"
)

// showTypes are the record types show displays (and --type selects).
var showTypes = []string{"exec", "open", "connect", "send", "bind", "listen", "accept", "sock_state", "dns", "fork", "exit",
	"cgroup_move", "proc_access", "file_op", "mount", "namespace", "bpf", "gap", "freeze", "thaw"}

// showFlags are the flags of agenttrace show.
type showFlags struct {
	json, follow         bool
	html                 string
	pubkeys              []string
	toolCall, types, tag string
	since, until         string
	pid                  int
}

func newShowCommand() *cobra.Command {
	var o showFlags
	cmd := &cobra.Command{
		Use:   "show [flags] LOG|DIR...",
		Short: "Verify a log, then show its tool calls, processes, files and connections",
		Long: `Answers from the log alone what an incident responder asks: what the agent ran
(its tool calls, with duration and exit status), which processes each started,
the credential files they opened, where they connected, their other opens grouped
by access and directory, failures with their errno, and where events were lost.
The first line of each log says whether it verifies (INTACT, or DAMAGED with the
first bad place); the tree is built from the records' own ids.

With --follow it is a live view instead: one line per record of note — sessions,
tool calls and their end, execs, credential access, failed opens, connects, lost
events — as the log is written (from its current end; a log or a directory that
gets new logs), until interrupted (Ctrl-C, exit 0). Rotation and continuing runs
are followed. Records appear within a second of the syscall.

Exit 0: intact; 1: damaged; 2: usage or I/O error.`,
		Example: `  agenttrace show audit.jsonl
  agenttrace show audit.jsonl --tag credential_access
  agenttrace show audit.jsonl --html report.html
  agenttrace show --pubkey /etc/agenttrace/signing.pub --since 2026-11-27T01:00:00Z /var/log/agenttrace
  agenttrace show --follow /var/log/agenttrace`,
		Args: minArgs(1, "a LOG or a DIR of logs"),
		RunE: func(cmd *cobra.Command, args []string) error { return runShow(cmd, args, &o) },
	}
	f := cmd.Flags()
	f.BoolVar(&o.json, "json", false, "write the tree as JSON instead of text")
	f.StringVar(&o.html, "html", "", "also write a self-contained HTML report to `file`")
	f.StringArrayVar(&o.pubkeys, "pubkey", nil, pubkeyUsage)
	f.BoolVar(&o.follow, "follow", false, "print the records of note as they are written, one line each, until interrupted")
	f.StringVar(&o.toolCall, "tool-call", "", "only the records of the tool call with this `id`")
	f.IntVar(&o.pid, "pid", 0, "only the records of processes with this pid")
	f.StringVar(&o.types, "type", "", "only records of these `types` (comma-separated: "+strings.Join(showTypes, ",")+")")
	f.StringVar(&o.since, "since", "", "only records at or after this RFC 3339 `time`")
	f.StringVar(&o.until, "until", "", "only records at or before this RFC 3339 `time`")
	f.StringVar(&o.tag, "tag", "", "only records with this `tag`: credential_access (opens of sensitive paths), tool_call_command (the exec that is a tool call's command)")
	return cmd
}

func runShow(cmd *cobra.Command, args []string, o *showFlags) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	filter := report.Filter{ToolCall: o.toolCall, Pid: o.pid, Tag: o.tag}
	if o.types != "" {
		filter.Types = strings.Split(o.types, ",")
		for _, t := range filter.Types {
			if !slices.Contains(showTypes, t) {
				return usageError("--type %q: show has records of types %s", t, strings.Join(showTypes, ", "))
			}
		}
	}
	for _, t := range []struct {
		flag, value string
		dst         *time.Time
	}{{"since", o.since, &filter.Since}, {"until", o.until, &filter.Until}} {
		if t.value == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.value)
		if err != nil {
			return usageError("--%s wants an RFC 3339 time such as 2026-11-27T01:23:14Z: %v", t.flag, err)
		}
		*t.dst = v
	}
	if o.follow {
		if o.json || o.html != "" || len(o.pubkeys) > 0 {
			return usageError("--follow prints a live view: --json, --html and --pubkey are for the verified tree (agenttrace show without --follow)")
		}
		return follow(cmd, args, filter)
	}
	opts := report.Options{Filter: filter}
	var err error
	if opts.Verify.PublicKeys, err = publicKeys(o.pubkeys); err != nil {
		return usageError("%v", err)
	}
	bases, err := logBases(args)
	if err != nil {
		return usageError("%v", err)
	}
	rep, err := report.Load(bases, opts)
	if err != nil {
		return usageError("%v", err)
	}
	if o.json {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout, isTerminal(stdout))
	}
	if err == nil && o.html != "" {
		if err = writeHTML(o.html, rep); err == nil {
			fmt.Fprintf(stderr, "agenttrace: wrote the HTML report to %s\n", o.html)
		}
	}
	if err != nil {
		return usageError("%v", err)
	}
	for _, l := range rep.Logs {
		if !l.Verify.Intact {
			return exitStatus(1)
		}
	}
	return nil
}

// follow is show --follow: until SIGINT or SIGTERM, then exit 0.
func follow(cmd *cobra.Command, paths []string, filter report.Filter) error {
	stdout := cmd.OutOrStdout()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(cmd.ErrOrStderr(), "agenttrace: following %s: records of note as they are written (not verified: agenttrace verify); Ctrl-C to stop\n", strings.Join(paths, " "))
	if err := report.Follow(ctx, stdout, paths, report.FollowOptions{Filter: filter, Color: isTerminal(stdout)}); err != nil {
		return failed(err)
	}
	return nil
}

func writeHTML(path string, rep *report.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = rep.WriteHTML(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// isTerminal reports whether w is a terminal: colour and readable log
// lines only then.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
