package transparency

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sort"

	"golang.org/x/mod/sumdb/tlog"
)

// Head is a tree's state: its size, its root and the offset after its last
// leaf.
type Head struct {
	Size       int64
	Root       tlog.Hash
	NextOffset int64
}

// MemTree is a tree held in memory: the auditor's, rebuilt from the log.
type MemTree struct {
	hashes []tlog.Hash
	size   int64
	next   int64
}

// ReadHashes implements tlog.HashReader.
func (t *MemTree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(t.hashes)) {
			return nil, fmt.Errorf("hash %d not in a tree of %d leaves", x, t.size)
		}
		out[i] = t.hashes[x]
	}
	return out, nil
}

// Append adds a leaf.
func (t *MemTree) Append(l Leaf) error {
	hs, err := tlog.StoredHashesForRecordHash(t.size, l.Hash(), t)
	if err != nil {
		return err
	}
	t.hashes = append(t.hashes, hs...)
	t.size++
	t.next = l.Offset + 1
	return nil
}

// Size is the number of leaves.
func (t *MemTree) Size() int64 { return t.size }

// RootAt is the root of the tree's first n leaves.
func (t *MemTree) RootAt(n int64) (tlog.Hash, error) { return tlog.TreeHash(n, t) }

// Head is the tree's state.
func (t *MemTree) Head() (Head, error) {
	r, err := tlog.TreeHash(t.size, t)
	return Head{Size: t.size, Root: r, NextOffset: t.next}, err
}

// Counts sums tallies.
type Counts map[Tally]int64

// Digest is SHA-256 over the counts, one line each, sorted:
// "<kind> <contest> <region> <choice> <n>\n" (region "-" when none). A
// checkpoint signs it; an auditor recomputes it from the log.
func (c Counts) Digest() string {
	lines := make([]string, 0, len(c))
	for t, n := range c {
		if n == 0 {
			continue
		}
		region := t.Region
		if region == "" {
			region = "-"
		}
		lines = append(lines, fmt.Sprintf("%s %s %s %s %d\n", t.Kind, t.Contest, region, t.Choice, n))
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Totals are the counted and rejected votes in c.
func (c Counts) Totals() (counted, rejected int64) {
	for t, n := range c {
		if t.Kind == Counted {
			counted += n
		} else {
			rejected += n
		}
	}
	return counted, rejected
}
