package transparency_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/votewatch/votewatch/transparency"
)

// signedTree is a tree of n vote leaves and a checkpoint of it signed by
// key.
func signedTree(t *testing.T, key transparency.Key, n int) (*transparency.MemTree, []transparency.Leaf, []byte) {
	t.Helper()
	secret := transparency.Secret(bytes.Repeat([]byte{3}, 32))
	tree := &transparency.MemTree{}
	var leaves []transparency.Leaf
	for i := range n {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		l := transparency.Leaf{Partition: int32(i % 3), Offset: int64(i), Kind: transparency.KindVote, Vote: transparency.VoteRef(id),
			Decision: transparency.Counted, Choice: secret.Commit(id, "default", "cand"), Event: strings.Repeat("ab", 32)}
		if err := tree.Append(l); err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, l)
	}
	head, err := tree.Head()
	if err != nil {
		t.Fatal(err)
	}
	c := transparency.Checkpoint{Origin: "votewatch/test", Time: time.Date(2026, 11, 3, 20, 0, 0, 0, time.UTC),
		Size: head.N, Root: head.Hash, Tallies: transparency.Counts{}.KeyedDigest(secret)}
	signed, err := key.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tree, leaves, signed
}

func newKey(t *testing.T) transparency.Key {
	t.Helper()
	key, err := transparency.CreateKey(t.TempDir()+"/key", "votewatch-test")
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// Every leaf's proof verifies against the signed checkpoint; an edited
// leaf, a proof for another tree, an edited hash or a checkpoint signed by
// another key does not.
func TestAnInclusionProofVerifiesOnlyAgainstItsSignedCheckpoint(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	tree, leaves, signed := signedTree(t, key, 13)
	for i, l := range leaves {
		p, err := tree.Prove(int64(i), tree.Size(), l.Body())
		if err != nil {
			t.Fatal(err)
		}
		c, got, err := p.Verify(signed, key.Verifier)
		if err != nil || got != l || c.Size != 13 {
			t.Fatalf("leaf %d: %+v, %v", i, got, err)
		}
	}
	good, err := tree.Prove(5, tree.Size(), leaves[5].Body())
	if err != nil {
		t.Fatal(err)
	}
	bad := func(name string, edit func(p *transparency.InclusionProof), signed []byte, want error) {
		t.Helper()
		p := good
		p.Hashes = append([]string(nil), good.Hashes...)
		edit(&p)
		if _, _, err := p.Verify(signed, key.Verifier); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	bad("another leaf's body", func(p *transparency.InclusionProof) { p.Leaf = leaves[6].Body() }, signed, transparency.ErrBadProof)
	bad("a decision changed", func(p *transparency.InclusionProof) {
		p.Leaf = strings.Replace(p.Leaf, "decision counted", "decision rejected duplicate_voter", 1)
	}, signed, transparency.ErrBadProof)
	bad("another index", func(p *transparency.InclusionProof) { p.LeafIndex = 4 }, signed, transparency.ErrBadProof)
	bad("an edited hash", func(p *transparency.InclusionProof) { p.Hashes[0] = good.Hashes[1] }, signed, transparency.ErrBadProof)
	older, err := tree.Prove(5, 8, leaves[5].Body())
	if err != nil {
		t.Fatal(err)
	}
	bad("a proof in an older tree", func(p *transparency.InclusionProof) { *p = older }, signed, transparency.ErrBadProof)
	_, _, forged := signedTree(t, newKey(t), 13)
	bad("a checkpoint signed by another key", func(*transparency.InclusionProof) {}, forged, transparency.ErrBadSignature)
}
