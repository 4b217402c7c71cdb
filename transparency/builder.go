package transparency

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/domain"
)

// ReadFunc reads the votes topic's partitions from from[p] up to, not
// including, to[p], handing fn the messages in offset order per partition.
type ReadFunc func(ctx context.Context, from, to map[int32]int64, fn func(partition int32, offset int64, payload []byte) error) error

// VoteKey names one vote: its vote_id, voter and contest. A producer may
// reuse a vote_id for another voter; the decision belongs to the copy the
// rule decided, the others are repeats.
type VoteKey struct{ ID, Voter, Contest string }

// KeyOf is v's VoteKey.
func KeyOf(v domain.Vote) VoteKey { return VoteKey{v.ID(), v.VoterID(), v.ContestID()} }

// DecideFunc says what was made of each vote: the decision of the copy
// the rule decided, Repeat for a vote whose vote_id was decided for
// another voter or contest, nothing for a vote not applied yet.
type DecideFunc func(ctx context.Context, votes []domain.Vote) (map[VoteKey]Decision, error)

// SeenFunc says which of the vote_ids some tree already has a leaf for.
type SeenFunc func(ctx context.Context, voteIDs []string) (map[string]bool, error)

// Extension is what one partition's tree grows by.
type Extension struct {
	Partition int32
	From      Head
	Leaves    []Leaf
	// Tallies holds what each leaf adds to the counts (the zero Tally
	// for nothing).
	Tallies []Tally
}

// Growth is what Grow found: each tree's extension, what the new leaves
// add to the counts, and, per partition, the vote it stopped at for want
// of a decision (pending, or not applied yet).
type Growth struct {
	Extensions []Extension
	Counts     Counts
	Stalled    map[int32]Stall
}

// Stall is the vote a partition's tree stopped at, and its offset.
type Stall struct {
	Vote   domain.Vote
	Offset int64
}

// Grow reads each partition's messages after its tree's head (decoding votes
// through opener, which opens sealed choices; nil: clear votes only), up to
// ends[p], and returns the leaves that extend each tree: the messages in
// offset order up to, not including, the first one not applied (no
// decision, or not in applied) or pending. So every tree covers a prefix
// of its partition whose every decision is final, whatever order the
// projector applied the messages in: equal decisions give equal trees.
//
// applied reports whether a message that is not a vote (a schedule or a
// dead letter) at partition, offset was applied.
//
// A vote_id is decided once (domain.Count): its first leaf, in the order
// the trees grow (partitions ascending, offsets ascending), carries the
// decision; every later one, a redelivery or a reuse, is a Repeat and adds
// to no count. seen tells which vote_ids earlier growth already holds.
func (s Secret) Grow(ctx context.Context, opener *domain.Opener, heads map[int32]Head, ends map[int32]int64, read ReadFunc, decide DecideFunc, seen SeenFunc,
	applied func(ctx context.Context, partition int32, from, to int64) (func(offset int64) bool, error)) (Growth, error) {
	from := map[int32]int64{}
	to := map[int32]int64{}
	for p, end := range ends {
		if h := heads[p]; h.NextOffset < end {
			from[p], to[p] = h.NextOffset, end
		}
	}
	if len(to) == 0 {
		return Growth{Counts: Counts{}}, nil
	}
	entries := map[int32][]Entry{}
	err := read(ctx, from, to, func(p int32, off int64, payload []byte) error {
		ev, err := opener.Decode(domain.TopicVotes, payload)
		if errors.Is(err, domain.ErrTallyKey) {
			return err // a leaf is never built from a vote this process cannot open
		}
		if err != nil {
			ev = nil
		}
		entries[p] = append(entries[p], Entry{Partition: p, Offset: off, Payload: payload, Event: ev})
		return nil
	})
	if err != nil {
		return Growth{}, fmt.Errorf("read the votes topic: %w", err)
	}
	var votes []domain.Vote
	for _, es := range entries {
		for _, e := range es {
			if v, ok := e.Event.(domain.VoteCast); ok {
				votes = append(votes, v.Vote)
			}
		}
	}
	decisions, err := decide(ctx, votes)
	if err != nil {
		return Growth{}, fmt.Errorf("read the decisions: %w", err)
	}
	ids := make([]string, len(votes))
	for i, v := range votes {
		ids[i] = v.ID()
	}
	repeated, err := seen(ctx, ids)
	if err != nil {
		return Growth{}, fmt.Errorf("read the vote_ids already in the trees: %w", err)
	}
	parts := make([]int32, 0, len(entries))
	for p := range entries {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	g := Growth{Counts: Counts{}, Stalled: map[int32]Stall{}}
	for _, p := range parts {
		ext := Extension{Partition: p, From: heads[p]}
		var others func(int64) bool
		for _, e := range entries[p] {
			d := Decision{}
			if v, ok := e.Event.(domain.VoteCast); ok {
				d = decisions[KeyOf(v.Vote)]
				if repeated[v.Vote.ID()] {
					d = Decision{Status: Repeat}
				} else if d.Status != Counted && d.Status != Rejected && d.Status != Repeat {
					g.Stalled[p] = Stall{Vote: v.Vote, Offset: e.Offset}
					break
				}
			} else {
				if others == nil {
					if others, err = applied(ctx, p, from[p], to[p]); err != nil {
						return Growth{}, fmt.Errorf("read partition %d's applied schedules and dead letters: %w", p, err)
					}
				}
				if !others(e.Offset) {
					break
				}
			}
			l, t, ok := s.NewLeaf(e, d)
			if ok {
				g.Counts[t]++
			}
			ext.Tallies = append(ext.Tallies, t)
			if l.Kind == KindVote && l.Decision != Repeat {
				repeated[l.VoteID] = true
			}
			ext.Leaves = append(ext.Leaves, l)
		}
		if len(ext.Leaves) > 0 {
			g.Extensions = append(g.Extensions, ext)
		}
	}
	return g, nil
}

// overlay reads a tree's hashes: the ones appended in this batch from
// memory, older ones from base.
type overlay struct {
	base  tlog.HashReader
	first int64
	added []tlog.Hash
}

func (o *overlay) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var older []int64
	for _, x := range indexes {
		if x < o.first {
			older = append(older, x)
		}
	}
	var got []tlog.Hash
	if len(older) > 0 {
		var err error
		if got, err = o.base.ReadHashes(older); err != nil {
			return nil, err
		}
	}
	k := 0
	for i, x := range indexes {
		if x < o.first {
			out[i] = got[k]
			k++
			continue
		}
		if x-o.first >= int64(len(o.added)) {
			return nil, fmt.Errorf("hash %d not stored yet", x)
		}
		out[i] = o.added[x-o.first]
	}
	return out, nil
}

// Hashes works out the hashes to store for an extension, from index
// StoredHashIndex(0, ext.From.Size) on, and the tree's new head. base
// reads the hashes already stored.
func (ext Extension) Hashes(base tlog.HashReader) ([]tlog.Hash, Head, error) {
	o := &overlay{base: cached(base), first: tlog.StoredHashIndex(0, ext.From.Size)}
	n := ext.From.Size
	for _, l := range ext.Leaves {
		hs, err := tlog.StoredHashesForRecordHash(n, l.Hash(), o)
		if err != nil {
			return nil, Head{}, fmt.Errorf("partition %d leaf %d: %w", ext.Partition, n, err)
		}
		o.added = append(o.added, hs...)
		n++
	}
	root, err := tlog.TreeHash(n, o)
	if err != nil {
		return nil, Head{}, fmt.Errorf("partition %d root: %w", ext.Partition, err)
	}
	return o.added, Head{Size: n, Root: root, NextOffset: ext.Leaves[len(ext.Leaves)-1].Offset + 1}, nil
}

// cached remembers what base returned: appending reads the same few
// frontier hashes again and again.
func cached(base tlog.HashReader) tlog.HashReader {
	seen := map[int64]tlog.Hash{}
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		var missing []int64
		for _, x := range indexes {
			if _, ok := seen[x]; !ok {
				missing = append(missing, x)
			}
		}
		if len(missing) > 0 {
			got, err := base.ReadHashes(missing)
			if err != nil {
				return nil, err
			}
			for i, x := range missing {
				seen[x] = got[i]
			}
		}
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			out[i] = seen[x]
		}
		return out, nil
	})
}
