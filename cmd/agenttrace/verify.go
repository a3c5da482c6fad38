package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/agenttrace/agenttrace/internal/chain"
)

// numberedSegment matches segments after the first (audit.000002.jsonl).
var numberedSegment = regexp.MustCompile(`\.[0-9]{6}(\.[^./]*)?$`)

// logBases expands the arguments to log base paths: a file is a log (its
// later segments are found beside it); a directory holds logs, one per
// *.jsonl file that is not a later segment.
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
		matches, err := filepath.Glob(filepath.Join(arg, "*.jsonl"))
		if err != nil {
			return nil, err
		}
		for _, m := range matches {
			if !numberedSegment.MatchString(m) {
				bases = append(bases, m)
			}
		}
	}
	if len(bases) == 0 {
		return nil, errors.New("no log found")
	}
	return bases, nil
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

func cmdVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pubkey := fs.String("pubkey", "", "public key `file` the checkpoints must be signed with (without it, the keys named in the log are used and listed)")
	head := fs.String("head", "", "`SEQ:HASH` of a checkpoint held elsewhere (e.g. by the SIEM): the log must contain it")
	open := fs.Bool("open", false, "the log is still being written: records after the last checkpoint are not an error")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: agenttrace verify [flags] LOG|DIR...\n\nExit 0: intact; 1: damaged (the first bad place is named); 2: usage or I/O error.\n\n")
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
	opts := chain.VerifyOptions{Open: *open}
	if *pubkey != "" {
		keys, err := chain.ReadVerifierKeys(*pubkey)
		if err != nil {
			fmt.Fprintf(stderr, "agenttrace: %v\n", err)
			return 2
		}
		opts.PublicKeys = keys
	}
	if *head != "" {
		h, err := parseHead(*head)
		if err != nil {
			fmt.Fprintf(stderr, "agenttrace: %v\n", err)
			return 2
		}
		opts.Head = h
	}
	bases, err := logBases(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "agenttrace: %v\n", err)
		return 2
	}
	code := 0
	for _, base := range bases {
		files, numbers := chain.Segments(base)
		rep, err := chain.Verify(files, numbers, opts)
		if err != nil {
			fmt.Fprintf(stderr, "agenttrace: %v\n", err)
			return 2
		}
		printReport(stdout, base, rep, opts)
		if rep.Damage != nil {
			code = 1
		}
	}
	return code
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

func cmdKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "`directory` for signing.key (mode 0600) and signing.pub")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *out == "" {
		fmt.Fprintln(stderr, "agenttrace: keygen needs --out DIR")
		return 2
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		fmt.Fprintf(stderr, "agenttrace: %v\n", err)
		return 1
	}
	skey, vkey, err := chain.GenerateKey()
	if err != nil {
		fmt.Fprintf(stderr, "agenttrace: generating key: %v\n", err)
		return 1
	}
	private, public := filepath.Join(*out, "signing.key"), filepath.Join(*out, "signing.pub")
	for _, f := range []struct {
		path, text string
		mode       os.FileMode
	}{{private, skey, 0o600}, {public, vkey, 0o644}} {
		file, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			fmt.Fprintf(stderr, "agenttrace: %v (keygen never overwrites a key)\n", err)
			return 1
		}
		_, err = file.WriteString(f.text + "\n")
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintf(stderr, "agenttrace: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "private key: %s (keep it secret; agenttrace run --signing-key %s)\npublic key:  %s\n", private, private, public)
	return 0
}
