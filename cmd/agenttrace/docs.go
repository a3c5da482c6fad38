package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// cliMarkdown is docs/cli.md: every command of the tree with its summary,
// usage, description, examples and flags, as its help shows them. A test
// (TestCLIDocs) fails when the file differs; `make docs` rewrites it.
func cliMarkdown(root *cobra.Command) string {
	var b strings.Builder
	b.WriteString("# agenttrace command line\n\n")
	b.WriteString("<!-- Generated from the command tree in cmd/agenttrace by `make docs`; do not edit. -->\n\n")
	b.WriteString(root.Short + ".\n\n")
	var all []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || !sub.IsAvailableCommand() && sub.Name() != "help" {
				continue
			}
			all = append(all, sub)
			walk(sub)
		}
	}
	walk(root)
	b.WriteString("| command | what it does |\n|---|---|\n")
	for _, c := range all {
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s |\n", c.CommandPath(), anchor(c.CommandPath()), c.Short)
	}
	b.WriteString("\nEvery command takes `-h`/`--help`; flags may come anywhere on the line (for `run`, before CMD).\n")
	b.WriteString("Exit status 2 means the command line was wrong (an unknown flag, a missing argument).\n")
	for _, c := range all {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n```\n%s\n```\n", c.CommandPath(), c.Short, c.UseLine())
		if c.Long != "" {
			fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(c.Long))
		}
		if c.Example != "" {
			fmt.Fprintf(&b, "\nExamples:\n\n```\n%s\n```\n", c.Example)
		}
		if flags := c.LocalNonPersistentFlags().FlagUsages(); flags != "" {
			fmt.Fprintf(&b, "\nFlags:\n\n```\n%s```\n", flags)
		}
	}
	return b.String()
}

// anchor is the GitHub heading anchor of a command path.
func anchor(s string) string { return strings.ReplaceAll(s, " ", "-") }
