package chain

import (
	"crypto/sha256"
	"strconv"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// TestTreeHashesAreTlogs checks the writer's leaf and node hashes, and the
// root of the compact tree, against golang.org/x/mod/sumdb/tlog.
func TestTreeHashesAreTlogs(t *testing.T) {
	var tree Tree
	var leaves []tlog.Hash
	for i := range 1000 {
		line := HashLine([]byte(strconv.Itoa(i) + "\n"))
		if got, want := leafHash(line), tlog.RecordHash(line[:]); got != want {
			t.Fatalf("leaf %d: %x, tlog %x", i, got, want)
		}
		left := tlog.Hash(sha256.Sum256([]byte{byte(i)}))
		if got, want := nodeHash(left, leafHash(line)), tlog.NodeHash(left, leafHash(line)); got != want {
			t.Fatalf("node %d: %x, tlog %x", i, got, want)
		}
		tree.Append(line)
		leaves = append(leaves, tlog.RecordHash(line[:]))
		want, err := tlog.TreeHash(int64(len(leaves)), tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for j, x := range idx {
				out[j] = storedHash(leaves, x)
			}
			return out, nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		if got := tree.Root(); got != want {
			t.Fatalf("root of %d leaves: %x, tlog %x", len(leaves), got, want)
		}
	}
}

// storedHash is tlog's stored hash at index x of a tree of these leaves.
func storedHash(leaves []tlog.Hash, x int64) tlog.Hash {
	level, n := tlog.SplitStoredHashIndex(x)
	if level == 0 {
		return leaves[n]
	}
	left := storedHash(leaves, tlog.StoredHashIndex(level-1, 2*n))
	right := storedHash(leaves, tlog.StoredHashIndex(level-1, 2*n+1))
	return tlog.NodeHash(left, right)
}

func BenchmarkTreeAppend(b *testing.B) {
	var tree Tree
	line := HashLine([]byte("{}\n"))
	for b.Loop() {
		tree.Append(line)
	}
}
