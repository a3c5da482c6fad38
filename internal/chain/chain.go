// Package chain owns what makes an audit log provable: the hash chain that
// links every line to the one before it, the Merkle tree over all lines, the
// signed checkpoints (C2SP signed-note / tlog-checkpoint format), segment
// naming, and the verification of all of it.
//
// It never reads what a record says beyond its envelope; the record schema
// belongs to package record.
package chain

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Hash is the SHA-256 of one complete line, newline included.
type Hash [32]byte

// HashLine hashes one line (which must include its newline).
func HashLine(line []byte) Hash { return sha256.Sum256(line) }

// AppendHex appends h as 64 lowercase hex digits.
func (h *Hash) AppendHex(b []byte) []byte { return hex.AppendEncode(b, h[:]) }

// String is the hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash parses 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("hash %q: want %d hex digits", s, 2*len(h))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("hash %q: %w", s, err)
	}
	return h, nil
}

// Tree is the compact form of the Merkle tree (RFC 6962, as in
// golang.org/x/mod/sumdb/tlog) over every line of a log: leaf i is
// tlog.RecordHash(HashLine(line i)). It keeps one hash per set bit of the
// size, so appending is O(1) amortized and the state fits in a header.
type Tree struct {
	size  uint64
	nodes []tlog.Hash // roots of the perfect subtrees, largest first
}

// Append adds the leaf for one line.
func (t *Tree) Append(line Hash) {
	h := leafHash(line)
	for n := t.size; n&1 == 1; n >>= 1 {
		left := t.nodes[len(t.nodes)-1]
		t.nodes = t.nodes[:len(t.nodes)-1]
		h = nodeHash(left, h)
	}
	t.nodes = append(t.nodes, h)
	t.size++
}

// leafHash and nodeHash are tlog.RecordHash and tlog.NodeHash (RFC 6962:
// SHA-256 of 0x00 and the leaf, of 0x01 and the two children), hashed in
// one call from the stack: one leaf and on average one node per line, on
// the writer's hot path (TestTreeHashesAreTlogs checks they agree).
func leafHash(line Hash) tlog.Hash {
	var b [1 + len(line)]byte
	copy(b[1:], line[:])
	return sha256.Sum256(b[:])
}

func nodeHash(left, right tlog.Hash) tlog.Hash {
	var b [1 + 2*len(left)]byte
	b[0] = 1
	copy(b[1:], left[:])
	copy(b[1+len(left):], right[:])
	return sha256.Sum256(b[:])
}

// Clone returns an independent copy of t.
func (t *Tree) Clone() Tree { return Tree{size: t.size, nodes: append([]tlog.Hash(nil), t.nodes...)} }

// Size is the number of leaves.
func (t *Tree) Size() uint64 { return t.size }

// Root is the Merkle tree hash of all leaves.
func (t *Tree) Root() tlog.Hash {
	if len(t.nodes) == 0 {
		return tlog.Hash{}
	}
	root := t.nodes[len(t.nodes)-1]
	for i := len(t.nodes) - 2; i >= 0; i-- {
		root = tlog.NodeHash(t.nodes[i], root)
	}
	return root
}

// State returns the tree's compact state (base64 hashes, largest subtree first).
func (t *Tree) State() []string {
	out := make([]string, len(t.nodes))
	for i, n := range t.nodes {
		out[i] = base64.StdEncoding.EncodeToString(n[:])
	}
	return out
}

// RestoreTree rebuilds a tree of size leaves from State.
func RestoreTree(size uint64, state []string) (*Tree, error) {
	if len(state) != bitsSet(size) {
		return nil, fmt.Errorf("tree state has %d hashes, a tree of %d leaves needs %d", len(state), size, bitsSet(size))
	}
	t := &Tree{size: size, nodes: make([]tlog.Hash, len(state))}
	for i, s := range state {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != len(tlog.Hash{}) {
			return nil, fmt.Errorf("tree state hash %d is not a base64 SHA-256", i)
		}
		copy(t.nodes[i][:], b)
	}
	return t, nil
}

func bitsSet(n uint64) int {
	c := 0
	for ; n > 0; n &= n - 1 {
		c++
	}
	return c
}

// KeyName is the signed-note key name agenttrace generates keys with.
const KeyName = "agenttrace"

// GenerateKey returns a new Ed25519 signing key and its verifier key, in the
// text forms of golang.org/x/mod/sumdb/note.
func GenerateKey() (skey, vkey string, err error) {
	return note.GenerateKey(rand.Reader, KeyName)
}

// VerifierKey derives the verifier key from a signing key.
func VerifierKey(skey string) (string, error) {
	// PRIVATE+KEY+<name>+<hash>+<base64(alg || seed)>
	parts := strings.SplitN(strings.TrimSpace(skey), "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("not a signing key (want PRIVATE+KEY+name+hash+key, as written by agenttrace keygen)")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+32 || raw[0] != 1 {
		return "", errors.New("signing key is not an Ed25519 key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// ReadSigningKey reads a signing key file, refusing one that others can read
// or write.
func ReadSigningKey(path string) (note.Signer, string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, "", fmt.Errorf("signing key: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, "", fmt.Errorf("signing key %s has mode %04o: it must be readable by its owner only (chmod 600)", path, info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("signing key: %w", err)
	}
	skey := strings.TrimSpace(string(data))
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("signing key %s: %w", path, err)
	}
	vkey, err := VerifierKey(skey)
	if err != nil {
		return nil, "", fmt.Errorf("signing key %s: %w", path, err)
	}
	return signer, vkey, nil
}

// ReadVerifierKeys reads a public (verifier) key file: one key a line, as
// agenttrace keygen and run write them; a file may hold the keys of several
// runs. Blank lines and lines starting with # are ignored.
func ReadVerifierKeys(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	var keys []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, err := note.NewVerifier(line); err != nil {
			return nil, fmt.Errorf("public key %s line %d: %w", path, i+1, err)
		}
		keys = append(keys, line)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("public key %s: no key in the file", path)
	}
	return keys, nil
}

// NewLogID returns a random log identity.
func NewLogID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Origin is the checkpoint origin line of a log.
func Origin(logID string) string { return "agenttrace/" + logID }

// CheckpointText is the body of a checkpoint in the C2SP tlog-checkpoint
// format: origin, tree size, base64 Merkle root, then one extension line
// with the hash-chain head (the hash of line `size`).
func CheckpointText(logID string, size uint64, root tlog.Hash, head Hash) string {
	return fmt.Sprintf("%s\n%d\n%s\nhead %s\n", Origin(logID), size, base64.StdEncoding.EncodeToString(root[:]), head)
}

// Checkpoint is a parsed checkpoint body.
type Checkpoint struct {
	LogID string
	Size  uint64
	Root  tlog.Hash
	Head  Hash
}

// ParseCheckpointText parses the body written by CheckpointText.
func ParseCheckpointText(text string) (Checkpoint, error) {
	var c Checkpoint
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "agenttrace/") || !strings.HasPrefix(lines[3], "head ") {
		return c, errors.New("checkpoint text is not origin, size, root, head")
	}
	c.LogID = strings.TrimPrefix(lines[0], "agenttrace/")
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return c, fmt.Errorf("checkpoint size: %w", err)
	}
	c.Size = size
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != len(c.Root) {
		return c, errors.New("checkpoint root is not a base64 SHA-256")
	}
	copy(c.Root[:], root)
	if c.Head, err = ParseHash(strings.TrimPrefix(lines[3], "head ")); err != nil {
		return c, fmt.Errorf("checkpoint head: %w", err)
	}
	return c, nil
}
