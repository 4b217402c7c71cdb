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

// Growth is what Grow found: the leaves that extend the tree, in order
// (partitions ascending, offsets ascending within each), what each adds
// to the counts and their sum, each partition's offset after its last new
// leaf, and, per partition, the vote it stopped at for want of a decision
// (pending, or not applied yet).
type Growth struct {
	Leaves []Leaf
	// VoteIDs holds each leaf's vote_id ("" for a leaf not a vote): the
	// leaf names it only by its hash.
	VoteIDs []string
	Tallies []Tally
	Counts  Counts
	Ends    map[int32]int64
	Stalled map[int32]Stall
}

// Stall is the vote a partition's growth stopped at, and its offset.
type Stall struct {
	Vote   domain.Vote
	Offset int64
}

// Grow reads each partition's messages (decoding votes through opener,
// which opens sealed choices; nil: clear votes only) from cursors[p] (the offset after
// the tree's last leaf of that partition) up to ends[p], and returns the
// leaves that extend the tree: per partition, ascending, the messages in
// offset order up to, not including, the first one not applied (no
// decision, or not in applied) or pending. So the tree covers a prefix of
// each partition whose every decision is final, whatever order the
// projector applied the messages in: equal decisions and equal epochs give
// equal trees.
//
// applied reports whether a message that is not a vote (a schedule or a
// dead letter) at partition, offset was applied; misrouted whether a vote
// there was refused as misrouted (domain rule 0): its leaf says
// "misrouted", adds to no count and takes no vote_id.
//
// A vote_id is decided once (domain.Count): its first leaf, in the order
// the trees grow (partitions ascending, offsets ascending), carries the
// decision; every later one, a redelivery or a reuse, is a Repeat and adds
// to no count. seen tells which vote_ids earlier growth already holds.
func (s Secret) Grow(ctx context.Context, opener *domain.Opener, cursors, ends map[int32]int64, read ReadFunc, decide DecideFunc, seen SeenFunc,
	applied, misrouted func(ctx context.Context, partition int32, from, to int64) (func(offset int64) bool, error)) (Growth, error) {
	from := map[int32]int64{}
	to := map[int32]int64{}
	for p, end := range ends {
		if c := cursors[p]; c < end {
			from[p], to[p] = c, end
		}
	}
	if len(to) == 0 {
		return Growth{Counts: Counts{}, Ends: map[int32]int64{}, Stalled: map[int32]Stall{}}, nil
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
	g := Growth{Counts: Counts{}, Ends: map[int32]int64{}, Stalled: map[int32]Stall{}}
	for _, p := range parts {
		var others, refused func(int64) bool
		for _, e := range entries[p] {
			d := Decision{}
			if v, ok := e.Event.(domain.VoteCast); ok {
				if refused == nil {
					if refused, err = misrouted(ctx, p, from[p], to[p]); err != nil {
						return Growth{}, fmt.Errorf("read partition %d's misrouted votes: %w", p, err)
					}
				}
				d = decisions[KeyOf(v.Vote)]
				if refused(e.Offset) {
					d = Decision{Status: Misrouted}
				} else if repeated[v.Vote.ID()] {
					d = Decision{Status: Repeat}
				} else if d.Status != Counted && d.Status != Rejected && d.Status != Repeat && d.Status != Misrouted {
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
			g.Tallies = append(g.Tallies, t)
			if e, ok := e.Event.(domain.VoteCast); ok && l.Decision != Repeat && l.Decision != Misrouted {
				repeated[e.Vote.ID()] = true
			}
			g.Leaves = append(g.Leaves, l)
			id := ""
			if v, ok := e.Event.(domain.VoteCast); ok && l.Decision != Misrouted {
				// A misrouted vote takes no vote_id (domain rule 0): its
				// leaf must not make the vote's right copy a repeat, nor
				// answer for it.
				id = v.Vote.ID()
			}
			g.VoteIDs = append(g.VoteIDs, id)
			g.Ends[p] = e.Offset + 1
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

// AppendHashes works out the hashes to store for appending leaves to a
// tree of from leaves, from index StoredHashIndex(0, from) on, and the new
// tree's size and root. base reads the hashes already stored.
func AppendHashes(from int64, leaves []Leaf, base tlog.HashReader) ([]tlog.Hash, tlog.Tree, error) {
	o := &overlay{base: cached(base), first: tlog.StoredHashIndex(0, from)}
	n := from
	for _, l := range leaves {
		hs, err := tlog.StoredHashesForRecordHash(n, l.Hash(), o)
		if err != nil {
			return nil, tlog.Tree{}, fmt.Errorf("leaf %d: %w", n, err)
		}
		o.added = append(o.added, hs...)
		n++
	}
	root, err := tlog.TreeHash(n, o)
	if err != nil {
		return nil, tlog.Tree{}, fmt.Errorf("root of %d leaves: %w", n, err)
	}
	return o.added, tlog.Tree{N: n, Hash: root}, nil
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
