// Command agenttrace records every exec, file open and network connect made
// by an AI agent's process tree into a syscall-exact audit log.
//
// The commands are one cobra command tree (newRootCommand): each command's
// name, one-line summary, description, examples, flags and run function
// are defined together, and the help, the dispatch, shell completion and
// docs/cli.md are all made from it. Run "agenttrace help" for the list.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agenttrace/agenttrace/internal/session"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// newRootCommand is the command tree: every command agenttrace has, in the
// order its help lists them.
func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "agenttrace",
		Short: "A syscall-exact audit log of what an AI agent's processes do",
		Long: `agenttrace records every exec, file open and network connect made by an AI agent
and every process it starts into a hash-chained, signed audit log: one JSON line
per syscall, with the exact arguments the kernel saw and the result it returned.
It uses eBPF and records nothing about any other process on the host.`,
		Example: `  sudo agenttrace check
  sudo agenttrace run --log audit.jsonl -- python3 agent.py
  agenttrace show audit.jsonl
  agenttrace verify --pubkey audit.jsonl.pub audit.jsonl`,
		Version:           session.Version,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetVersionTemplate("agenttrace {{.Version}}\n")
	// Help starts with the one-line summary, then the description.
	root.SetHelpTemplate(`{{with .Short}}{{.}}

{{end}}{{with .Long}}{{. | trimTrailingWhitespaces}}

{{end}}{{if or .Runnable .HasSubCommands}}{{.UsageString}}{{end}}`)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(
		newRunCommand(),
		newShowCommand(),
		newVerifyCommand(),
		newDaemonCommand(),
		newExportCommand(),
		newKeygenCommand(),
		newCheckCommand(),
		newVersionCommand(),
	)
	// The help and completion commands are part of the tree from the
	// start, so docs/cli.md lists them as help does.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			c.Example = "  agenttrace help\n  agenttrace help verify"
		case "completion":
			c.Example = completionExamples
			for _, shell := range c.Commands() {
				shell.Example = "  agenttrace completion " + shell.Name() + " --help"
			}
		}
	}
	return root
}

const completionExamples = `  source <(agenttrace completion bash)
  agenttrace completion bash > /etc/bash_completion.d/agenttrace
  agenttrace completion zsh > "${fpath[1]}/_agenttrace"
  agenttrace completion fish > ~/.config/fish/completions/agenttrace.fish`

func init() {
	// List the commands in the order of newRootCommand: the common ones first.
	cobra.EnableCommandSorting = false
}

// execute runs the command line args and returns the exit status: 0 on
// success, 2 for a usage error, else what the command says (1 for a
// failure; for run, the traced command's status).
func execute(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand(stdin, stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	var exit *exitError
	if errors.As(err, &exit) {
		if exit.err != nil {
			fmt.Fprintf(stderr, "agenttrace: %v\n", exit.err)
		}
		if exit.hint {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return exit.code
	}
	// cobra's own errors: an unknown command, flag or argument.
	fmt.Fprintf(stderr, "agenttrace: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
	return 2
}

// exitError ends a command with an exit status, after printing err (if not
// nil) as "agenttrace: err" and, with hint, where the usage is.
type exitError struct {
	code int
	err  error
	hint bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError is a command line the command cannot run: exit status 2.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// failed is a command that ran and failed: exit status 1.
func failed(err error) error { return &exitError{code: 1, err: err} }

// exitStatus ends the command with code and nothing more to say.
func exitStatus(code int) error {
	if code == 0 {
		return nil
	}
	return &exitError{code: code}
}

// flagError is a flag the command does not have or a bad flag value. A long
// flag given with one dash (-pubkey, as Go's flag package took it) is
// named with the two dashes it needs.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if _, arg, ok := strings.Cut(msg, "unknown shorthand flag: "); ok {
		if _, word, ok := strings.Cut(arg, " in -"); ok {
			name, _, _ := strings.Cut(word, "=")
			if cmd.Flags().Lookup(name) != nil {
				return &exitError{code: 2, err: fmt.Errorf("unknown flag -%s: long flags take two dashes: --%s", name, name), hint: true}
			}
		}
	}
	return &exitError{code: 2, err: err, hint: true}
}

// exactArgs, minArgs and noArgs check the positional arguments; a wrong
// count is a usage error that says what the command takes.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return &exitError{code: 2, err: fmt.Errorf("%s takes %s, got %d argument%s", commandName(cmd), what, len(args), plural(len(args))), hint: true}
		}
		return nil
	}
}

func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return &exitError{code: 2, err: fmt.Errorf("%s needs %s", commandName(cmd), what), hint: true}
		}
		return nil
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &exitError{code: 2, err: fmt.Errorf("%s takes no arguments, got %q", commandName(cmd), args[0]), hint: true}
	}
	return nil
}

// commandName is the command line of cmd without "agenttrace ".
func commandName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Long:    "Prints the version of agenttrace, as the start record of every log it writes names it.",
		Example: "  agenttrace version\n  agenttrace --version",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "agenttrace", session.Version)
			return nil
		},
	}
}
