package transparency

import (
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// InclusionProof is a ballot's proof as the read API serves it: the leaf
// at LeafIndex of Partition's tree of TreeSize leaves with Root, and the
// RFC 6962 record proof's hashes (base64, as tlog.Hash.String writes
// them).
type InclusionProof struct {
	Partition int32    `json:"partition"`
	LeafIndex int64    `json:"leaf_index"`
	Leaf      string   `json:"leaf"`
	TreeSize  int64    `json:"tree_size"`
	Root      string   `json:"root"`
	Hashes    []string `json:"hashes"`
}

// ErrBadProof is returned for a proof that does not prove its leaf in
// the checkpoint's tree.
var ErrBadProof = errors.New("inclusion proof does not verify")

// Verify checks the proof against a signed checkpoint: the checkpoint's
// signature with the verifier key vkey, then the leaf's record proof
// against the tree the checkpoint signs for the proof's partition (the
// proof's own size and root must be that tree's: they are not trusted).
// It returns the checkpoint and the leaf.
func (p InclusionProof) Verify(signed []byte, vkey string) (Checkpoint, Leaf, error) {
	c, err := Open(signed, vkey)
	if err != nil {
		return c, Leaf{}, err
	}
	head, ok := c.Trees[p.Partition]
	if !ok {
		return c, Leaf{}, fmt.Errorf("%w: the checkpoint has no tree for partition %d", ErrBadProof, p.Partition)
	}
	if p.TreeSize != head.Size || p.Root != head.Root.String() {
		return c, Leaf{}, fmt.Errorf("%w: it is for a tree of %d leaves with root %s; the checkpoint signs %d leaves with root %s",
			ErrBadProof, p.TreeSize, p.Root, head.Size, head.Root)
	}
	proof := make(tlog.RecordProof, len(p.Hashes))
	for i, s := range p.Hashes {
		if proof[i], err = tlog.ParseHash(s); err != nil {
			return c, Leaf{}, fmt.Errorf("%w: hash %d: %v", ErrBadProof, i, err)
		}
	}
	if err := tlog.CheckRecord(proof, head.Size, head.Root, p.LeafIndex, tlog.RecordHash([]byte(p.Leaf))); err != nil {
		return c, Leaf{}, fmt.Errorf("%w: leaf %d of partition %d: %v", ErrBadProof, p.LeafIndex, p.Partition, err)
	}
	l, err := ParseLeaf(p.Leaf)
	if err != nil {
		return c, l, fmt.Errorf("%w: %v", ErrBadProof, err)
	}
	if l.Partition != p.Partition {
		return c, l, fmt.Errorf("%w: the leaf is partition %d's, the proof partition %d's", ErrBadProof, l.Partition, p.Partition)
	}
	return c, l, nil
}

// Prove returns the inclusion proof of the tree's leaf at index, whose
// body is body, in the tree's first size leaves.
func (t *MemTree) Prove(partition int32, index, size int64, body string) (InclusionProof, error) {
	root, err := t.RootAt(size)
	if err != nil {
		return InclusionProof{}, err
	}
	hashes, err := tlog.ProveRecord(size, index, t)
	if err != nil {
		return InclusionProof{}, err
	}
	return NewInclusionProof(partition, index, body, size, root, hashes), nil
}

// NewInclusionProof writes a record proof in the read API's form.
func NewInclusionProof(partition int32, index int64, body string, size int64, root tlog.Hash, hashes tlog.RecordProof) InclusionProof {
	p := InclusionProof{Partition: partition, LeafIndex: index, Leaf: body, TreeSize: size, Root: root.String(), Hashes: make([]string, len(hashes))}
	for i, h := range hashes {
		p.Hashes[i] = h.String()
	}
	return p
}
