package transparency

import (
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// InclusionProof is a ballot's proof as the read API serves it: the leaf
// at LeafIndex of the election's tree of TreeSize leaves with Root, and
// the RFC 6962 record proof's hashes (base64, as tlog.Hash.String writes
// them).
type InclusionProof struct {
	LeafIndex int64    `json:"leaf_index"`
	Leaf      string   `json:"leaf"`
	TreeSize  int64    `json:"tree_size"`
	Root      string   `json:"root"`
	Hashes    []string `json:"hashes"`
}

// ErrBadProof is returned for a proof that does not prove its leaf in
// the checkpoint's tree.
var ErrBadProof = errors.New("inclusion proof does not verify")

// Check checks the proof against a checkpoint already opened: the proof's
// own size and root must be the checkpoint's (they are not trusted), and
// the record proof must lead from the leaf to that root. It returns the
// leaf.
func (p InclusionProof) Check(c Checkpoint) (Leaf, error) {
	if p.TreeSize != c.Size || p.Root != c.Root.String() {
		return Leaf{}, fmt.Errorf("%w: it is for a tree of %d leaves with root %s; the checkpoint signs %d leaves with root %s",
			ErrBadProof, p.TreeSize, p.Root, c.Size, c.Root)
	}
	proof := make(tlog.RecordProof, len(p.Hashes))
	for i, s := range p.Hashes {
		var err error
		if proof[i], err = tlog.ParseHash(s); err != nil {
			return Leaf{}, fmt.Errorf("%w: hash %d: %v", ErrBadProof, i, err)
		}
	}
	if err := tlog.CheckRecord(proof, c.Size, c.Root, p.LeafIndex, tlog.RecordHash([]byte(p.Leaf))); err != nil {
		return Leaf{}, fmt.Errorf("%w: leaf %d: %v", ErrBadProof, p.LeafIndex, err)
	}
	l, err := ParseLeaf(p.Leaf)
	if err != nil {
		return l, fmt.Errorf("%w: %v", ErrBadProof, err)
	}
	return l, nil
}

// Verify checks the proof against a signed checkpoint: the checkpoint's
// signature with the verifier key vkey, then Check. It returns the
// checkpoint and the leaf.
func (p InclusionProof) Verify(signed []byte, vkey string) (Checkpoint, Leaf, error) {
	c, err := Open(signed, vkey)
	if err != nil {
		return c, Leaf{}, err
	}
	l, err := p.Check(c)
	return c, l, err
}

// Prove returns the inclusion proof of the tree's leaf at index, whose
// body is body, in the tree's first size leaves.
func (t *MemTree) Prove(index, size int64, body string) (InclusionProof, error) {
	root, err := t.RootAt(size)
	if err != nil {
		return InclusionProof{}, err
	}
	hashes, err := tlog.ProveRecord(size, index, t)
	if err != nil {
		return InclusionProof{}, err
	}
	return NewInclusionProof(index, body, size, root, hashes), nil
}

// NewInclusionProof writes a record proof in the read API's form.
func NewInclusionProof(index int64, body string, size int64, root tlog.Hash, hashes tlog.RecordProof) InclusionProof {
	p := InclusionProof{LeafIndex: index, Leaf: body, TreeSize: size, Root: root.String(), Hashes: make([]string, len(hashes))}
	for i, h := range hashes {
		p.Hashes[i] = h.String()
	}
	return p
}
