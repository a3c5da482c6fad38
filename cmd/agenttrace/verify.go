package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agenttrace/agenttrace/internal/chain"
	"github.com/agenttrace/agenttrace/internal/logfile"
)

// logBases expands the arguments to log base paths: a file is a log (its
// later segments are found beside it); a directory holds logs (chain.Logs).
func logBases(args []string) ([]string, error) {
	var bases []string
	for _, arg := range args {
		info, err := os.Stat(arg)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			bases = append(bases, arg)
			continue
		}
		logs, err := logfile.Logs(arg)
		if err != nil {
			return nil, err
		}
		bases = append(bases, logs...)
	}
	if len(bases) == 0 {
		return nil, errors.New("no log found")
	}
	return bases, nil
}

// publicKeys reads every key of the --pubkey files.
func publicKeys(files []string) ([]string, error) {
	var keys []string
	for _, f := range files {
		k, err := chain.ReadVerifierKeys(f)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k...)
	}
	return keys, nil
}

func parseHead(s string) (*chain.HeadRef, error) {
	seqText, hashText, ok := strings.Cut(s, ":")
	if !ok {
		return nil, errors.New("--head wants SEQ:HASH (a checkpoint's size and head)")
	}
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil || seq == 0 {
		return nil, fmt.Errorf("--head: bad seq %q", seqText)
	}
	h, err := chain.ParseHash(hashText)
	if err != nil {
		return nil, fmt.Errorf("--head: %w", err)
	}
	return &chain.HeadRef{Seq: seq, Hash: h}, nil
}

// pubkeyUsage is the help of --pubkey, for verify and show.
const pubkeyUsage = "public key `file` the checkpoints must be signed with; repeat it, or list keys one a line in the file, for a log continued by runs with their own keys (without it, the keys named in the log are used and listed)"

func newVerifyCommand() *cobra.Command {
	var pubkeys []string
	var head string
	var open bool
	cmd := &cobra.Command{
		Use:   "verify [flags] LOG|DIR...",
		Short: "Prove a log is complete and unmodified up to its signed checkpoints",
		Long: `Checks that every segment of the log is present and in order, every line is valid
JSON, seq is contiguous, every prev hash matches, every checkpoint matches the records
before it and is signed by an expected key, and the log ends with a final checkpoint.
Otherwise it names the first bad place (file, line, seq) and the kind of damage.

A log continued by several runs with ephemeral keys has one key per run
(<segment>.pub beside the first segment of each run): give every one, with one
--pubkey each or in one file. The summary of agenttrace run prints the command.

Exit 0: intact; 1: damaged; 2: usage or I/O error.`,
		Example: `  agenttrace verify --pubkey audit.jsonl.pub audit.jsonl
  agenttrace verify --pubkey audit.jsonl.pub --pubkey audit.000002.jsonl.pub audit.jsonl
  agenttrace verify --pubkey /etc/agenttrace/signing.pub /var/log/agenttrace
  agenttrace verify --pubkey signing.pub --head 20000:6c1f…e2 audit.jsonl`,
		Args: minArgs(1, "a LOG or a DIR of logs"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := chain.VerifyOptions{Open: open}
			var err error
			if opts.PublicKeys, err = publicKeys(pubkeys); err != nil {
				return usageError("%v", err)
			}
			if head != "" {
				if opts.Head, err = parseHead(head); err != nil {
					return usageError("%v", err)
				}
			}
			bases, err := logBases(args)
			if err != nil {
				return usageError("%v", err)
			}
			code := 0
			for _, base := range bases {
				files, numbers := logfile.Segments(base)
				rep, err := chain.Verify(files, numbers, opts)
				if err != nil {
					return usageError("%v", err)
				}
				printReport(cmd.OutOrStdout(), base, rep, opts)
				if rep.Damage != nil {
					code = 1
				}
			}
			return exitStatus(code)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&pubkeys, "pubkey", nil, pubkeyUsage)
	f.StringVar(&head, "head", "", "`SEQ:HASH` of a checkpoint held elsewhere (e.g. by the SIEM): the log must contain it")
	f.BoolVar(&open, "open", false, "the log is still being written: records after the last checkpoint are not an error")
	return cmd
}

func printReport(w io.Writer, base string, rep *chain.Report, opts chain.VerifyOptions) {
	fmt.Fprintf(w, "%s: log %s\n", base, rep.LogID)
	fmt.Fprintf(w, "  segments:    %d (%s)\n", len(rep.Segments), strings.Join(rep.Segments, ", "))
	fmt.Fprintf(w, "  records:     %d verified (seq 1 to %d)\n", rep.Records, rep.LastSeq)
	fmt.Fprintf(w, "  checkpoints: %d, last signed seq %d\n", rep.Checkpoints, rep.LastSignedSeq)
	for _, k := range rep.Keys {
		fmt.Fprintf(w, "  signed by:   %s\n", k)
	}
	if len(opts.PublicKeys) == 0 {
		fmt.Fprintln(w, "  key:         not checked against a key held elsewhere (use --pubkey)")
	}
	for _, r := range rep.Recovered {
		fmt.Fprintf(w, "  recovered:   %s\n", r)
	}
	if rep.Unsigned > 0 && rep.Damage == nil {
		fmt.Fprintf(w, "  unsigned:    %d records after the last checkpoint\n", rep.Unsigned)
	}
	if opts.Head != nil && rep.Damage == nil {
		fmt.Fprintf(w, "  head:        seq %d matches %s\n", opts.Head.Seq, opts.Head.Hash)
	}
	if rep.Damage != nil {
		fmt.Fprintf(w, "  DAMAGED:     %v\n", rep.Damage)
		return
	}
	fmt.Fprintln(w, "  OK: intact")
}

func newKeygenCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out DIR",
		Short: "Create a checkpoint signing key pair",
		Long: `Writes an Ed25519 key pair for signing checkpoints: DIR/signing.key (mode 0600,
for agenttrace run --signing-key and the daemon's signing_key) and DIR/signing.pub
(for agenttrace verify --pubkey; keep a copy off the host). It never overwrites a key.`,
		Example: `  sudo agenttrace keygen --out /etc/agenttrace`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError("keygen needs --out DIR")
			}
			return runKeygen(cmd.OutOrStdout(), out)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "`directory` for signing.key (mode 0600) and signing.pub")
	return cmd
}

func runKeygen(stdout io.Writer, out string) error {
	if err := os.MkdirAll(out, 0o700); err != nil {
		return failed(err)
	}
	skey, vkey, err := chain.GenerateKey()
	if err != nil {
		return failed(fmt.Errorf("generating key: %w", err))
	}
	private, public := filepath.Join(out, "signing.key"), filepath.Join(out, "signing.pub")
	for _, f := range []struct {
		path, text string
		mode       os.FileMode
	}{{private, skey, 0o600}, {public, vkey, 0o644}} {
		file, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			return failed(fmt.Errorf("%w (keygen never overwrites a key)", err))
		}
		_, err = file.WriteString(f.text + "\n")
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return failed(err)
		}
	}
	fmt.Fprintf(stdout, "private key: %s (keep it secret; agenttrace run --signing-key %s)\npublic key:  %s\n", private, private, public)
	return nil
}
