package transparency

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sort"

	"golang.org/x/mod/sumdb/tlog"
)

// MemTree is a tree held in memory: the auditor's, rebuilt from the log.
type MemTree struct {
	hashes []tlog.Hash
	size   int64
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
func (t *MemTree) Append(l Leaf) error { return t.AppendRecord(l.Hash()) }

// AppendRecord adds a leaf by its record hash.
func (t *MemTree) AppendRecord(h tlog.Hash) error {
	hs, err := tlog.StoredHashesForRecordHash(t.size, h, t)
	if err != nil {
		return err
	}
	t.hashes = append(t.hashes, hs...)
	t.size++
	return nil
}

// Size is the number of leaves.
func (t *MemTree) Size() int64 { return t.size }

// RootAt is the root of the tree's first n leaves.
func (t *MemTree) RootAt(n int64) (tlog.Hash, error) { return tlog.TreeHash(n, t) }

// Head is the tree's size and root.
func (t *MemTree) Head() (tlog.Tree, error) {
	r, err := tlog.TreeHash(t.size, t)
	return tlog.Tree{N: t.size, Hash: r}, err
}

// Counts sums tallies.
type Counts map[Tally]int64

// lines is the counts one line each, sorted:
// "<kind> <contest> <region> <choice> <n>\n" (region "-" when none).
func (c Counts) lines() []string {
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
	return lines
}

// KeyedDigest is HMAC-SHA-256, keyed with the election secret, over the
// counts' lines. A checkpoint signs it; an auditor holding the secret
// recomputes it from the log. Unkeyed, anyone could try the few tallies a
// small interval can hold until the digest matched, and learn the votes
// cast in it.
func (c Counts) KeyedDigest(s Secret) string {
	h := hmac.New(sha256.New, s.mac("tallies"))
	for _, l := range c.lines() {
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

// Add adds d to c.
func (c Counts) Add(d Counts) {
	for t, n := range d {
		c[t] += n
	}
}
