package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/report"
)

// showTypes are the record types show displays (and --type selects).
var showTypes = []string{"exec", "open", "connect", "fork", "exit", "gap", "freeze", "thaw"}

func cmdShow(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "write the tree as JSON instead of text")
	htmlFile := fs.String("html", "", "also write a self-contained HTML report to `file`")
	pubkey := fs.String("pubkey", "", "public key `file` the checkpoints must be signed with (as for verify)")
	toolCall := fs.String("tool-call", "", "only the records of the tool call with this `id`")
	pid := fs.Int("pid", 0, "only the records of processes with this pid")
	types := fs.String("type", "", "only records of these `types` (comma-separated: exec,open,connect,fork,exit,gap,freeze,thaw)")
	since := fs.String("since", "", "only records at or after this RFC 3339 `time`")
	until := fs.String("until", "", "only records at or before this RFC 3339 `time`")
	tag := fs.String("tag", "", "only records with this `tag`: credential_access (opens of sensitive paths), tool_call_command (the exec that is a tool call's command)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: agenttrace show [flags] LOG|DIR...\n\n"+
			"The first line of each log says whether it verifies (intact or damaged), then the tree:\n"+
			"session, tool calls, their processes, files, connections, credential access, lost events.\n"+
			"Exit 0: intact; 1: damaged; 2: usage or I/O error.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	opts := report.Options{Filter: report.Filter{ToolCall: *toolCall, Pid: *pid, Tag: *tag}}
	if *types != "" {
		opts.Filter.Types = strings.Split(*types, ",")
		for _, t := range opts.Filter.Types {
			if !slices.Contains(showTypes, t) {
				fmt.Fprintf(stderr, "agenttrace: --type %q: show has records of types %s\n", t, strings.Join(showTypes, ", "))
				return 2
			}
		}
	}
	for _, t := range []struct {
		flag, value string
		dst         *time.Time
	}{{"since", *since, &opts.Filter.Since}, {"until", *until, &opts.Filter.Until}} {
		if t.value == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.value)
		if err != nil {
			fmt.Fprintf(stderr, "agenttrace: --%s wants an RFC 3339 time such as 2026-11-27T01:23:14Z: %v\n", t.flag, err)
			return 2
		}
		*t.dst = v
	}
	if *pubkey != "" {
		keys, err := chain.ReadVerifierKeys(*pubkey)
		if err != nil {
			fmt.Fprintf(stderr, "agenttrace: %v\n", err)
			return 2
		}
		opts.Verify.PublicKeys = keys
	}
	bases, err := logBases(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "agenttrace: %v\n", err)
		return 2
	}
	rep, err := report.Load(bases, opts)
	if err != nil {
		fmt.Fprintf(stderr, "agenttrace: %v\n", err)
		return 2
	}
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout, isTerminal(stdout))
	}
	if err == nil && *htmlFile != "" {
		err = writeHTML(*htmlFile, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "agenttrace: %v\n", err)
		return 2
	}
	for _, l := range rep.Logs {
		if !l.Verify.Intact {
			return 1
		}
	}
	return 0
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

// isTerminal reports whether w is a terminal: colour only then.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
