package audit

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/internal/db"
	"github.com/votewatch/votewatch/projections/internal/dbutil"
	"github.com/votewatch/votewatch/projections/trees"
	"github.com/votewatch/votewatch/transparency"
)

// SpecTree is the tree the rule's specification (domain.Count, no SQL)
// gives a log grown by its recorded epochs: the auditor's, to compare
// with a projection's tree and with signed checkpoints.
type SpecTree struct {
	Tree *transparency.MemTree
	// tallies holds what each leaf adds to the counts (the zero Tally for
	// none).
	tallies []transparency.Tally
	// Diff describes the first recorded epoch the specification grows
	// differently, or is "".
	Diff string
}

// CountsAt sums what the tree's first n leaves decide: a checkpoint of n
// leaves must sign their keyed digest.
func (s SpecTree) CountsAt(n int64) (transparency.Counts, error) {
	if n > int64(len(s.tallies)) {
		return nil, fmt.Errorf("the checkpoint has %d leaves, the log decides %d", n, len(s.tallies))
	}
	c := transparency.Counts{}
	for _, t := range s.tallies[:n] {
		if t != (transparency.Tally{}) {
			c[t]++
		}
	}
	return c, nil
}

// BuildSpecTree reads the log up to ends (per topic, per partition),
// decides it with domain.Count and grows the tree by the epochs the log
// records, as far as ends reach, from the decisions: as a projection's
// Tree would.
func BuildSpecTree(ctx context.Context, log projections.ReplayLog, secret transparency.Secret, opener *domain.Opener, ends map[string]map[int32]int64) (SpecTree, error) {
	el, err := readElectionLog(ctx, log, opener, ends, rowSet{}, func(string, int64, int) {})
	if err != nil {
		return SpecTree{}, err
	}
	out := domain.Count(el)
	held := make(map[string]bool, len(out.Held))
	for _, id := range out.Held {
		held[id] = true
	}
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
	misrouted := map[[2]int64]bool{}
	for _, at := range out.Misrouted {
		misrouted[at] = true
	}
	refused := func(_ context.Context, p int32, _, _ int64) (func(int64) bool, error) {
		return func(o int64) bool { return misrouted[[2]int64{int64(p), o}] }, nil
	}
	// The rule decides a vote_id once, at its first copy in the order
	// the tree grows: Grow marks the later copies repeats.
	decided := map[string]bool{}
	seen := func(_ context.Context, ids []string) (map[string]bool, error) {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = decided[id]
		}
		return m, nil
	}
	epochs, err := trees.RecordedEpochs(ctx, log)
	if err != nil {
		return SpecTree{}, err
	}
	s := SpecTree{Tree: &transparency.MemTree{}}
	cursors := map[int32]int64{}
	read := trees.VotesReader(log)
	for _, e := range epochs {
		if e.From < s.Tree.Size() {
			continue
		}
		beyond := false
		for p, end := range e.Ends {
			beyond = beyond || end > ends[domain.TopicVotes][p]
		}
		if beyond || e.From > s.Tree.Size() {
			break
		}
		g, err := secret.Grow(ctx, opener, cursors, e.Ends, read, decide, seen, everything, refused)
		if err != nil {
			return SpecTree{}, err
		}
		for p, end := range e.Ends {
			if g.Ends[p] != end {
				s.Diff = fmt.Sprintf("from %d leaves, the log decides partition %d up to offset %d; the recorded epoch says %d", e.From, p, g.Ends[p], end)
				return s, nil
			}
		}
		for i, l := range g.Leaves {
			if err := s.Tree.Append(l); err != nil {
				return SpecTree{}, err
			}
			if l.Kind == transparency.KindVote && l.Decision != transparency.Repeat && l.Decision != transparency.Misrouted {
				decided[voteIDOfLeaf(g, i)] = true
			}
		}
		s.tallies = append(s.tallies, g.Tallies...)
		for p, end := range g.Ends {
			cursors[p] = end
		}
		if root, err := s.Tree.RootAt(s.Tree.Size()); err != nil {
			return SpecTree{}, err
		} else if s.Tree.Size() != e.Size || root != e.Root {
			s.Diff = fmt.Sprintf("the log's epoch from %d leaves grows to %d leaves with root %s; the recorded epoch to %d with root %s", e.From, s.Tree.Size(), root, e.Size, e.Root)
			return s, nil
		}
	}
	return s, nil
}

// voteIDOfLeaf is the vote_id behind g's leaf i, which Grow read from the
// log (the leaf itself holds only its hash).
func voteIDOfLeaf(g transparency.Growth, i int) string { return g.VoteIDs[i] }

// AllAppliedOffsets returns the projection's applied offsets, per topic.
func AllAppliedOffsets(ctx context.Context, pool *pgxpool.Pool) (map[string]map[int32]int64, error) {
	return dbutil.AppliedOffsets(ctx, db.New(pool))
}

// TreeAuditOptions say what an audit of the transparency log checks
// beyond the projection's own tree.
type TreeAuditOptions struct {
	// Secret, when set, rebuilds every leaf from the log and compares the
	// roots, and checks the checkpoint's keyed tallies digest.
	Secret transparency.Secret
	// Checkpoint is a signed checkpoint saved earlier, checked with
	// VerifierKey (default: the key the projection serves) and, with
	// Witnesses, their cosignatures (Quorum of them).
	Checkpoint  []byte
	VerifierKey string
	Witnesses   []string
	Quorum      int
	// Opener opens sealed choices to rebuild the leaves (as the projector's).
	Opener *domain.Opener
}

// TreeAudit is what an audit of the transparency log found.
type TreeAudit struct {
	Leaves int64
	// RootsCompared counts the roots recomputed from the log (0 without
	// the secret).
	RootsCompared int
	// Checkpoint is the checkpoint checked, when one was given and its
	// signature verified.
	Checkpoint *transparency.Checkpoint
	// Counted and Rejected are the specification's totals at the
	// checkpoint's size (with the secret and a checkpoint).
	Counted, Rejected int64
	// Problems lists every check that failed, readably.
	Problems []string
}

// AuditTrees checks the projection's transparency log against the log:
// with the secret, that the tree's root is the one the rule's
// specification gives when grown by the recorded epochs; with a saved
// checkpoint, that its signature (and cosignatures) verify, that its tree
// is a prefix of today's (an RFC 6962 consistency proof from the stored
// hashes) and of the specification's, and that its keyed tallies digest
// is the specification's at its size.
func AuditTrees(ctx context.Context, pool *pgxpool.Pool, log projections.ReplayLog, opt TreeAuditOptions) (TreeAudit, error) {
	var a TreeAudit
	q := db.New(pool)
	// The head before the offsets: the tree never covers more than was
	// applied, so the specification decides at least what it covers.
	head, err := trees.LogHead(ctx, q)
	if err != nil {
		return a, err
	}
	ends, err := dbutil.AppliedOffsets(ctx, q)
	if err != nil {
		return a, err
	}
	a.Leaves = head.N
	var cp *transparency.Checkpoint
	if opt.Checkpoint != nil {
		vkey := opt.VerifierKey
		if vkey == "" {
			latest, err := trees.LatestCheckpointRow(ctx, q)
			if err != nil {
				return a, fmt.Errorf("read the served verifier key: %w", err)
			}
			if latest == nil {
				return a, fmt.Errorf("no verifier key given and the projection serves none")
			}
			vkey = latest.VerifierKey
			a.Problems = append(a.Problems, "checkpoint: no verifier key pinned (--verifier-key): its signature was checked with the key the projection itself serves, which proves only that the operator agrees with itself")
		}
		c, _, err := transparency.OpenWitnessed(opt.Checkpoint, vkey, opt.Witnesses, opt.Quorum)
		if err != nil {
			a.Problems = append(a.Problems, "checkpoint: "+err.Error())
		} else {
			cp, a.Checkpoint = &c, &c
			if err := transparency.CheckConsistent(c.Head(), head, trees.HashReader(ctx, q)); err != nil {
				a.Problems = append(a.Problems, "checkpoint against the projection's tree: "+err.Error())
			}
		}
	}
	if len(opt.Secret) == 0 {
		return a, nil
	}
	secret := opt.Secret
	if len(secret) == 0 {
		// Tallies need no secret; the leaves built with this one are
		// not compared.
		secret = transparency.Secret{0}
	}
	spec, err := BuildSpecTree(ctx, log, secret, opt.Opener, ends)
	if err != nil {
		return a, err
	}
	if spec.Diff != "" {
		a.Problems = append(a.Problems, "the recorded epochs: "+spec.Diff)
	}
	if head.N > 0 {
		a.RootsCompared++
		if msg := specRootDiff(spec, head); msg != "" {
			a.Problems = append(a.Problems, "the projection's tree: "+msg)
		}
	}
	if cp != nil {
		a.RootsCompared++
		if msg := specRootDiff(spec, cp.Head()); msg != "" {
			a.Problems = append(a.Problems, "the checkpoint's tree: "+msg)
		}
		counts, err := spec.CountsAt(cp.Size)
		if err == nil {
			a.Counted, a.Rejected = counts.Totals()
		}
		if err != nil {
			a.Problems = append(a.Problems, "checkpoint: "+err.Error())
		} else if got := counts.KeyedDigest(opt.Secret); got != cp.Tallies {
			counted, rejected := counts.Totals()
			a.Problems = append(a.Problems, fmt.Sprintf("checkpoint: its tallies digest %s is not the recount's at its size, %s (counted %d, rejected %d)",
				cp.Tallies, got, counted, rejected))
		}
	}
	return a, nil
}

// specRootDiff describes how the tree h differs from the specification's,
// or returns "".
func specRootDiff(spec SpecTree, h tlog.Tree) string {
	if spec.Tree.Size() < h.N {
		return fmt.Sprintf("it has %d leaves; the log decides only %d", h.N, spec.Tree.Size())
	}
	want, err := spec.Tree.RootAt(h.N)
	if err != nil {
		return err.Error()
	}
	if want != h.Hash {
		return fmt.Sprintf("at %d leaves its root is %s; the log's is %s", h.N, h.Hash, want)
	}
	return ""
}
