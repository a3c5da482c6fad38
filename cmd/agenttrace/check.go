package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agenttrace/agenttrace/internal/preflight"
)

func newCheckCommand() *cobra.Command {
	var mode string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that this host can run agenttrace, and say what is missing",
		Long: `Lists every requirement of agenttrace run and agenttrace daemon — privileges,
kernel version, BTF, cgroup v2, the BPF ring buffer, the bpf_loop helper (daemon),
each kernel hook — as OK, MISSING (with what to do), or optional, with the modes
that need it. It loads the eBPF programs and unloads them at once; it changes
nothing on the host.

Exit 0: every mode checked can run here; 1: something a mode needs is missing.`,
		Example: `  sudo agenttrace check
  sudo agenttrace check --mode daemon`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			want := preflight.ModeAll
			if mode != "" {
				want = 0
				for _, m := range preflight.Modes {
					if m.Name == mode {
						want = m.Mode
					}
				}
				if want == 0 {
					return usageError("--mode %q: want run or daemon", mode)
				}
			}
			return runCheck(cmd, want)
		},
	}
	cmd.Flags().StringVar(&mode, "mode", "", "check only what this `mode` needs: run or daemon (default: both)")
	return cmd
}

func runCheck(cmd *cobra.Command, want preflight.Mode) error {
	w := cmd.OutOrStdout()
	var results []preflight.Result
	width := 0
	for _, r := range preflight.All() {
		if r.Required && r.Modes&want == 0 {
			continue
		}
		results = append(results, r)
		width = max(width, len(r.Name))
	}
	missing := map[preflight.Mode][]string{}
	unknown := map[preflight.Mode]int{}
	for _, r := range results {
		status := "OK"
		switch {
		case !r.OK && r.NotProbed:
			status = "UNKNOWN"
		case !r.OK && r.Required:
			status = "MISSING"
		case !r.OK:
			status = "optional"
		}
		for _, m := range preflight.Modes {
			switch {
			case r.OK || r.Modes&m.Mode&want == 0:
			case r.NotProbed:
				unknown[m.Mode]++
			default:
				missing[m.Mode] = append(missing[m.Mode], r.Name)
			}
		}
		fmt.Fprintf(w, "%-8s %-*s  %-11s  %s\n", status, width, r.Name, r.Modes, r.Detail)
		if !r.OK && !r.NotProbed && r.Fix != "" {
			fmt.Fprintf(w, "%-8s %-*s  %-11s  -> %s\n", "", width, "", "", r.Fix)
		}
	}
	fmt.Fprintln(w)
	failed := false
	for _, m := range preflight.Modes {
		if m.Mode&want == 0 {
			continue
		}
		names, n := missing[m.Mode], unknown[m.Mode]
		switch {
		case len(names) > 0:
			failed = true
			more := ""
			if n > 0 {
				more = fmt.Sprintf(" (then %d more checks can run)", n)
			}
			fmt.Fprintf(w, "agenttrace %s cannot run here: fix %s above%s.\n", m.Name, strings.Join(names, ", "), more)
		case n > 0:
			failed = true
			fmt.Fprintf(w, "agenttrace %s: %d checks could not run.\n", m.Name, n)
		default:
			fmt.Fprintf(w, "agenttrace %s can run here.\n", m.Name)
		}
	}
	if failed {
		return exitStatus(1)
	}
	return nil
}
