package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/sql/db"
	"github.com/votewatch/votewatch/transparency"
)

// SpecTrees are the trees the rule's specification (domain.Count, no SQL)
// gives a log: the auditor's, to compare with a projection's trees and
// with signed checkpoints.
type SpecTrees struct {
	Trees map[int32]*transparency.MemTree
	// tallies holds, per partition, what each leaf adds to the counts
	// (the zero Tally for none).
	tallies map[int32][]transparency.Tally
}

// CountsAt sums what the first sizes[p] leaves of each partition decide:
// a checkpoint at those sizes must sign their digest.
func (s SpecTrees) CountsAt(sizes map[int32]int64) (transparency.Counts, error) {
	c := transparency.Counts{}
	for p, n := range sizes {
		ts := s.tallies[p]
		if n > int64(len(ts)) {
			return nil, fmt.Errorf("partition %d: %d leaves, the log decides %d", p, n, len(ts))
		}
		for _, t := range ts[:n] {
			if t != (transparency.Tally{}) {
				c[t]++
			}
		}
	}
	return c, nil
}

// BuildSpecTrees reads the log up to ends (per topic, per partition),
// decides it with domain.Count and builds every votes partition's tree
// from the decisions, as a projection's Trees would.
func BuildSpecTrees(ctx context.Context, log ReplayLog, secret transparency.Secret, opener *domain.Opener, ends map[string]map[int32]int64) (SpecTrees, error) {
	el, err := readElectionLog(ctx, log, opener, ends, rowSet{}, func(string, int64, int) {})
	if err != nil {
		return SpecTrees{}, err
	}
	out := domain.Count(el)
	held := make(map[string]bool, len(out.Held))
	for _, id := range out.Held {
		held[id] = true
	}
	// The rule decides a vote_id once, at its first copy in the order
	// the trees grow: Grow marks the later copies repeats before asking.
	decide := func(_ context.Context, votes []domain.Vote) (map[transparency.VoteKey]transparency.Decision, error) {
		d := make(map[transparency.VoteKey]transparency.Decision, len(votes))
		for _, v := range votes {
			k := transparency.KeyOf(v)
			if c, ok := out.Counted[domain.BallotKey{Voter: v.VoterID(), Contest: v.ContestID()}]; ok && c.ID() == v.ID() {
				d[k] = transparency.Decision{Status: transparency.Counted, Region: out.Voters[v.VoterID()].Region().String()}
			} else if reason, ok := out.Rejected[v.ID()]; ok {
				d[k] = transparency.Decision{Status: transparency.Rejected, Reason: reason.String()}
			} else if held[v.ID()] {
				d[k] = transparency.Decision{Status: transparency.Pending}
			}
		}
		return d, nil
	}
	everything := func(context.Context, int32, int64, int64) (func(int64) bool, error) {
		return func(int64) bool { return true }, nil
	}
	read := VotesReader(log)
	none := func(context.Context, []string) (map[string]bool, error) { return map[string]bool{}, nil }
	g, err := secret.Grow(ctx, opener, map[int32]transparency.Head{}, ends[domain.TopicVotes], read, decide, none, everything)
	if err != nil {
		return SpecTrees{}, err
	}
	s := SpecTrees{Trees: map[int32]*transparency.MemTree{}, tallies: map[int32][]transparency.Tally{}}
	for _, ext := range g.Extensions {
		t := &transparency.MemTree{}
		for _, l := range ext.Leaves {
			if err := t.Append(l); err != nil {
				return SpecTrees{}, err
			}
		}
		s.Trees[ext.Partition] = t
		s.tallies[ext.Partition] = ext.Tallies
	}
	return s, nil
}

// VotesReader reads the votes topic of log, for Trees.
func VotesReader(log ReplayLog) transparency.ReadFunc {
	return func(ctx context.Context, from, to map[int32]int64, fn func(int32, int64, []byte) error) error {
		return log.ReadRange(ctx, domain.TopicVotes, from, to, func(recs []LogRecord) error {
			for _, r := range recs {
				if err := fn(r.Partition, r.Offset, r.Value); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// AllAppliedOffsets returns the projection's applied offsets, per topic.
func AllAppliedOffsets(ctx context.Context, pool *pgxpool.Pool) (map[string]map[int32]int64, error) {
	return appliedOffsets(ctx, db.New(pool))
}

// TreeAuditOptions say what an audit of the transparency log checks
// beyond the projection's own trees.
type TreeAuditOptions struct {
	// Secret, when set, rebuilds every leaf from the log and compares the
	// roots.
	Secret transparency.Secret
	// Checkpoint is a signed checkpoint saved earlier, checked with
	// VerifierKey (default: the key the projection serves).
	Checkpoint  []byte
	VerifierKey string
	// Opener opens sealed choices to rebuild the leaves (as the projector's).
	Opener *domain.Opener
}

// TreeAudit is what an audit of the transparency log found.
type TreeAudit struct {
	Trees  int
	Leaves int64
	// RootsCompared counts the trees whose roots were recomputed from the
	// log (0 without the secret).
	RootsCompared int
	// Checkpoint is the checkpoint checked, when one was given and its
	// signature verified.
	Checkpoint *transparency.Checkpoint
	// Problems lists every check that failed, readably.
	Problems []string
}

// AuditTrees checks the projection's transparency log against the log:
// with the secret, that every tree's root is the one the rule's
// specification gives; with a saved checkpoint, that its signature
// verifies, that its trees are prefixes of today's (RFC 6962 consistency
// proofs from the stored hashes) and of the specification's, and that its
// tallies digest is the specification's at its tree sizes.
func AuditTrees(ctx context.Context, pool *pgxpool.Pool, log ReplayLog, opt TreeAuditOptions) (TreeAudit, error) {
	var a TreeAudit
	q := db.New(pool)
	// The heads before the offsets: the trees never cover more than was
	// applied, so the specification decides at least what they cover.
	heads, err := treeHeads(ctx, q)
	if err != nil {
		return a, err
	}
	ends, err := appliedOffsets(ctx, q)
	if err != nil {
		return a, err
	}
	for _, h := range heads {
		if h.Size > 0 {
			a.Trees++
			a.Leaves += h.Size
		}
	}
	var cp *transparency.Checkpoint
	if opt.Checkpoint != nil {
		vkey := opt.VerifierKey
		if vkey == "" {
			latest, err := q.LatestCheckpoint(ctx)
			if err != nil {
				return a, fmt.Errorf("read the served verifier key: %w", err)
			}
			if len(latest) == 0 {
				return a, fmt.Errorf("no verifier key given and the projection serves none")
			}
			vkey = latest[0].VerifierKey
			a.Problems = append(a.Problems, "checkpoint: no verifier key pinned (--verifier-key): its signature was checked with the key the projection itself serves, which proves only that the operator agrees with itself")
		}
		c, err := transparency.Open(opt.Checkpoint, vkey)
		if err != nil {
			a.Problems = append(a.Problems, "checkpoint: "+err.Error())
		} else {
			cp, a.Checkpoint = &c, &c
			if err := transparency.CheckConsistent(c, heads, func(p int32) tlog.HashReader { return hashReader(ctx, q, p) }); err != nil {
				a.Problems = append(a.Problems, "checkpoint against the projection's trees: "+err.Error())
			}
		}
	}
	if len(opt.Secret) == 0 && cp == nil {
		return a, nil
	}
	secret := opt.Secret
	if len(secret) == 0 {
		// Tallies need no secret; the leaves built with this one are
		// not compared.
		secret = transparency.Secret{0}
	}
	spec, err := BuildSpecTrees(ctx, log, secret, opt.Opener, ends)
	if err != nil {
		return a, err
	}
	if len(opt.Secret) > 0 {
		for _, p := range sortedPartitions(heads) {
			h := heads[p]
			if h.Size == 0 {
				continue
			}
			a.RootsCompared++
			if msg := specRootDiff(spec, p, h.Size, h.Root); msg != "" {
				a.Problems = append(a.Problems, "the projection's tree of "+msg)
			}
		}
		if cp != nil {
			for _, p := range sortedPartitions(cp.Trees) {
				if h := cp.Trees[p]; h.Size > 0 {
					if msg := specRootDiff(spec, p, h.Size, h.Root); msg != "" {
						a.Problems = append(a.Problems, "the checkpoint's tree of "+msg)
					}
				}
			}
		}
	}
	if cp != nil {
		sizes := map[int32]int64{}
		for p, h := range cp.Trees {
			sizes[p] = h.Size
		}
		counts, err := spec.CountsAt(sizes)
		if err != nil {
			a.Problems = append(a.Problems, "checkpoint: "+err.Error())
		} else if counted, rejected := counts.Totals(); counted != cp.Counted || rejected != cp.Rejected {
			a.Problems = append(a.Problems, fmt.Sprintf("checkpoint: it states counted %d, rejected %d; the recount at its tree sizes gives counted %d, rejected %d",
				cp.Counted, cp.Rejected, counted, rejected))
		} else if got := counts.Digest(); got != cp.Tallies {
			counted, rejected := counts.Totals()
			a.Problems = append(a.Problems, fmt.Sprintf("checkpoint: its tallies digest %s (counted %d, rejected %d) is not the recount's at its tree sizes, %s (counted %d, rejected %d)",
				cp.Tallies, cp.Counted, cp.Rejected, got, counted, rejected))
		}
	}
	return a, nil
}

// specRootDiff describes how partition p's tree of size n with root root
// differs from the specification's, or returns "".
func specRootDiff(spec SpecTrees, p int32, n int64, root tlog.Hash) string {
	t := spec.Trees[p]
	if t == nil || t.Size() < n {
		have := int64(0)
		if t != nil {
			have = t.Size()
		}
		return fmt.Sprintf("partition %d has %d leaves; the log decides only %d", p, n, have)
	}
	want, err := t.RootAt(n)
	if err != nil {
		return fmt.Sprintf("partition %d: %v", p, err)
	}
	if want != root {
		return fmt.Sprintf("partition %d at %d leaves has root %s; the log's is %s", p, n, root, want)
	}
	return ""
}
