package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/sql/db"
	"github.com/votewatch/votewatch/transparency"
)

// treeLockKey serialises tree builders: one projector of a scaled-out group
// grows the trees at a time (transaction locks: a killed builder releases
// it with its transaction).
const treeLockKey int64 = 0x766f7465_74726565 // "votetree"

// maxGrow bounds the messages a partition's tree grows by in one
// transaction, so a tick's memory and transaction stay small.
const maxGrow = 4096

// Trees keeps a projection's transparency log (package transparency): it
// grows each votes partition's tree over the messages the projection has
// decided, in offset order, in transactions of its own.
type Trees struct {
	pool   *pgxpool.Pool
	secret transparency.Secret
	read   transparency.ReadFunc
	// opener decodes the votes (nil: clear votes only).
	opener *domain.Opener
	// live trees belong to the projection readers see, and hold the swap
	// lock shared in each transaction, as the Store's writes do.
	live bool
	// stalled is, per partition, the vote the last growth stopped at
	// (Grow runs on one goroutine).
	stalled map[int32]transparency.Stall
}

// NewTrees returns the trees of the projection behind pool. read reads the
// votes topic; secret salts the choice commitments.
func NewTrees(pool *pgxpool.Pool, secret transparency.Secret, read transparency.ReadFunc) (*Trees, error) {
	if pool == nil || read == nil || len(secret) == 0 {
		return nil, errors.New("new trees: nil pool, log reader or secret")
	}
	return &Trees{pool: pool, secret: secret, read: read, live: true}, nil
}

// OpenWith has the trees decode votes through o, as the projector does (the
// leaves commit to the opened choice). Call it before Grow.
func (t *Trees) OpenWith(o *domain.Opener) { t.opener = o }

// Heads returns each tree's head.
func (t *Trees) Heads(ctx context.Context) (map[int32]transparency.Head, error) {
	return treeHeads(ctx, db.New(t.pool))
}

func treeHeads(ctx context.Context, q *db.Queries) (map[int32]transparency.Head, error) {
	rows, err := q.TreeHeads(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the tree heads: %w", err)
	}
	out := make(map[int32]transparency.Head, len(rows))
	for _, r := range rows {
		h := transparency.Head{Size: r.Size, NextOffset: r.NextOffset}
		copy(h.Root[:], r.Root)
		out[r.Partition] = h
	}
	return out, nil
}

// skipStalled leaves out of ends each partition whose tree stopped, last
// time, at a vote that is still undecided: re-reading up to maxGrow
// messages every tick would change nothing (a vote held for a
// registration that never comes holds its partition for good).
func (t *Trees) skipStalled(ctx context.Context, heads map[int32]transparency.Head, ends map[int32]int64) error {
	var check []domain.Vote
	for p, st := range t.stalled {
		if _, ok := ends[p]; ok && heads[p].NextOffset == st.Offset {
			check = append(check, st.Vote)
		}
	}
	if len(check) == 0 {
		return nil
	}
	decided, err := t.decide(ctx, check)
	if err != nil {
		return err
	}
	ids := make([]string, len(check))
	for i, v := range check {
		ids[i] = v.ID()
	}
	inTrees, err := t.seen(ctx, ids)
	if err != nil {
		return err
	}
	for p, st := range t.stalled {
		if heads[p].NextOffset != st.Offset || inTrees[st.Vote.ID()] {
			continue
		}
		switch decided[transparency.KeyOf(st.Vote)].Status {
		case transparency.Counted, transparency.Rejected, transparency.Repeat:
		default:
			delete(ends, p)
		}
	}
	return nil
}

// TreeLeaves counts the leaves of every tree of the projection behind pool.
func TreeLeaves(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	heads, err := treeHeads(ctx, db.New(pool))
	var n int64
	for _, h := range heads {
		n += h.Size
	}
	return n, err
}

// GrowAll grows the trees until they cover everything decided so far, and
// returns how many leaves it added.
func (t *Trees) GrowAll(ctx context.Context) (int64, error) {
	var total int64
	for {
		n, err := t.Grow(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// Grow adds, in one transaction, up to maxGrow leaves per partition: the
// messages after each tree's head that the projection has decided, in
// offset order, up to the first that it has not (transparency.Secret.Grow).
// It adds nothing when another builder holds the trees.
func (t *Trees) Grow(ctx context.Context) (int64, error) {
	q := db.New(t.pool)
	heads, err := treeHeads(ctx, q)
	if err != nil {
		return 0, err
	}
	rows, err := q.ListAppliedOffsets(ctx, []string{domain.TopicVotes})
	if err != nil {
		return 0, fmt.Errorf("read the votes' applied offsets: %w", err)
	}
	ends := map[int32]int64{}
	for _, r := range rows {
		ends[r.Partition] = min(r.NextOffset, heads[r.Partition].NextOffset+maxGrow)
	}
	if err := t.skipStalled(ctx, heads, ends); err != nil {
		return 0, err
	}
	g, err := t.secret.Grow(ctx, t.opener, heads, ends, t.read, t.decide, t.seen, t.appliedOthers)
	if err != nil {
		return 0, err
	}
	t.stalled = g.Stalled
	exts, counts := g.Extensions, g.Counts
	if len(exts) == 0 {
		return 0, nil
	}
	var added int64
	err = pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		if t.live {
			if err := holdSwapLock(ctx, tx); err != nil {
				return err
			}
		}
		var got bool
		// Per schema: a replay grows its rebuilt trees while the live
		// builder grows the live ones.
		if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock(hashtextextended(current_schema(), $1))", treeLockKey).Scan(&got); err != nil {
			return fmt.Errorf("lock the trees: %w", err)
		}
		if !got {
			return nil
		}
		q := db.New(tx)
		now, err := treeHeads(ctx, q)
		if err != nil {
			return err
		}
		for _, ext := range exts {
			if now[ext.Partition] != ext.From {
				// Another builder grew it since we read: its leaves stand.
				return nil
			}
		}
		for _, ext := range exts {
			if err := appendExtension(ctx, q, ext); err != nil {
				return err
			}
			added += int64(len(ext.Leaves))
		}
		return addCounts(ctx, q, counts)
	})
	if err != nil {
		return 0, fmt.Errorf("grow the trees: %w", err)
	}
	return added, nil
}

func appendExtension(ctx context.Context, q *db.Queries, ext transparency.Extension) error {
	hashes, head, err := ext.Hashes(hashReader(ctx, q, ext.Partition))
	if err != nil {
		return err
	}
	first := tlog.StoredHashIndex(0, ext.From.Size)
	hp := db.AppendTreeHashesParams{Partition: ext.Partition, Idxs: make([]int64, len(hashes)), Hashes: make([][]byte, len(hashes))}
	for i, h := range hashes {
		hp.Idxs[i] = first + int64(i)
		hp.Hashes[i] = h[:]
	}
	if err := q.AppendTreeHashes(ctx, hp); err != nil {
		return fmt.Errorf("store partition %d's hashes: %w", ext.Partition, err)
	}
	lp := db.AppendTreeLeavesParams{Partition: ext.Partition}
	for i, l := range ext.Leaves {
		lp.Leaves = append(lp.Leaves, ext.From.Size+int64(i))
		lp.Offsets = append(lp.Offsets, l.Offset)
		lp.VoteIDs = append(lp.VoteIDs, l.VoteID)
		lp.Bodies = append(lp.Bodies, l.Body())
	}
	if err := q.AppendTreeLeaves(ctx, lp); err != nil {
		return fmt.Errorf("store partition %d's leaves: %w", ext.Partition, err)
	}
	if err := q.SetTreeHead(ctx, db.SetTreeHeadParams{Partition: ext.Partition, Size: head.Size, Root: head.Root[:], NextOffset: head.NextOffset}); err != nil {
		return fmt.Errorf("store partition %d's head: %w", ext.Partition, err)
	}
	return nil
}

func addCounts(ctx context.Context, q *db.Queries, counts transparency.Counts) error {
	var p db.AddTreeCountsParams
	for t, n := range counts {
		p.Kinds = append(p.Kinds, t.Kind)
		p.Contests = append(p.Contests, t.Contest)
		p.Regions = append(p.Regions, t.Region)
		p.Choices = append(p.Choices, t.Choice)
		p.Ns = append(p.Ns, n)
	}
	if len(p.Kinds) == 0 {
		return nil
	}
	if err := q.AddTreeCounts(ctx, p); err != nil {
		return fmt.Errorf("add the trees' counts: %w", err)
	}
	return nil
}

// hashReader reads a partition's stored hashes through q.
func hashReader(ctx context.Context, q *db.Queries, partition int32) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		rows, err := q.TreeHashes(ctx, db.TreeHashesParams{Partition: partition, Idxs: indexes})
		if err != nil {
			return nil, fmt.Errorf("read partition %d's hashes: %w", partition, err)
		}
		got := make(map[int64]tlog.Hash, len(rows))
		for _, r := range rows {
			var h tlog.Hash
			copy(h[:], r.Hash)
			got[r.Idx] = h
		}
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			h, ok := got[x]
			if !ok {
				return nil, fmt.Errorf("partition %d has no stored hash %d", partition, x)
			}
			out[i] = h
		}
		return out, nil
	})
}

// compareTrees compares two projections' trees partition by partition, at
// the size both have reached, and describes each partition whose roots
// differ there: equal decisions give equal roots, so a difference is a
// difference in what was decided, in order.
func compareTrees(ctx context.Context, a, b *db.Queries) ([]string, int, error) {
	ha, err := treeHeads(ctx, a)
	if err != nil {
		return nil, 0, err
	}
	hb, err := treeHeads(ctx, b)
	if err != nil {
		return nil, 0, err
	}
	var diffs []string
	checked := 0
	for _, p := range sortedPartitions(ha, hb) {
		if hb[p].Size < ha[p].Size {
			// The live tree holds decisions the rebuilt one does not.
			diffs = append(diffs, fmt.Sprintf("partition %d: the live tree has %d leaves, the rebuilt %d", p, ha[p].Size, hb[p].Size))
		}
		n := min(ha[p].Size, hb[p].Size)
		if n == 0 {
			continue
		}
		ra, err := tlog.TreeHash(n, hashReader(ctx, a, p))
		if err != nil {
			return nil, 0, err
		}
		rb, err := tlog.TreeHash(n, hashReader(ctx, b, p))
		if err != nil {
			return nil, 0, err
		}
		checked++
		if ra != rb {
			diffs = append(diffs, fmt.Sprintf("partition %d: at %d leaves the live root is %s, the rebuilt %s", p, n, ra, rb))
		}
	}
	return diffs, checked, nil
}

func sortedPartitions(hs ...map[int32]transparency.Head) []int32 {
	seen := map[int32]bool{}
	var out []int32
	for _, h := range hs {
		for p := range h {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out
}

// HashReader reads a partition's stored hashes, for proofs.
func (t *Trees) HashReader(ctx context.Context, partition int32) tlog.HashReader {
	return hashReader(ctx, db.New(t.pool), partition)
}

// decide reads what the projection made of each vote.
func (t *Trees) decide(ctx context.Context, votes []domain.Vote) (map[transparency.VoteKey]transparency.Decision, error) {
	return decideVotes(ctx, db.New(t.pool), votes)
}

// decideVotes gives each vote the row of the projection that is its own:
// the same vote_id, voter and contest. A vote whose vote_id has rows only
// for another voter or contest was not decided itself (the projection
// decides a vote_id once): a Repeat.
func decideVotes(ctx context.Context, q *db.Queries, votes []domain.Vote) (map[transparency.VoteKey]transparency.Decision, error) {
	out := make(map[transparency.VoteKey]transparency.Decision, len(votes))
	known := map[string]bool{}
	for start := 0; start < len(votes); start += 8192 {
		chunk := votes[start:min(start+8192, len(votes))]
		ids := make([]pgtype.UUID, len(chunk))
		for i, v := range chunk {
			if err := ids[i].Scan(v.ID()); err != nil {
				return nil, fmt.Errorf("vote_id %q: %w", v.ID(), err)
			}
		}
		rows, err := q.VoteDecisions(ctx, ids)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			known[r.VoteID] = true
			k := transparency.VoteKey{ID: r.VoteID, Voter: r.VoterID, Contest: r.ContestID}
			d := transparency.Decision{Status: r.Status, Reason: r.Reason, Region: r.Region}
			if cur, ok := out[k]; ok && rank(cur.Status) <= rank(d.Status) {
				continue
			}
			out[k] = d
		}
	}
	for _, v := range votes {
		if k := transparency.KeyOf(v); known[v.ID()] {
			if _, ok := out[k]; !ok {
				out[k] = transparency.Decision{Status: transparency.Repeat}
			}
		}
	}
	return out, nil
}

// rank orders what a vote_id's rows may say, the decisive first.
func rank(status string) int {
	switch status {
	case transparency.Counted:
		return 0
	case transparency.Rejected:
		return 1
	}
	return 2
}

// seen reports which vote_ids the trees already have a leaf for.
func (t *Trees) seen(ctx context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for start := 0; start < len(ids); start += 8192 {
		rows, err := db.New(t.pool).VoteIDsInTrees(ctx, ids[start:min(start+8192, len(ids))])
		if err != nil {
			return nil, err
		}
		for _, id := range rows {
			out[id] = true
		}
	}
	return out, nil
}

// appliedOthers reports which schedules and dead letters of a votes
// partition between two offsets the projection has applied.
func (t *Trees) appliedOthers(ctx context.Context, partition int32, from, to int64) (func(int64) bool, error) {
	rows, err := db.New(t.pool).AppliedVotePositions(ctx, db.AppliedVotePositionsParams{VotePartition: partition, FromOffset: from, ToOffset: to})
	if err != nil {
		return nil, err
	}
	out := make(map[int64]bool, len(rows))
	for _, r := range rows {
		out[r.Offset] = true
	}
	return func(o int64) bool { return out[o] }, nil
}

// Snapshot reads, in one snapshot, what a checkpoint states.
func (t *Trees) Snapshot(ctx context.Context, origin string) (transparency.Checkpoint, error) {
	c := transparency.Checkpoint{Origin: origin, Applied: map[string]map[int32]int64{}}
	err := pgx.BeginTxFunc(ctx, t.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		q := db.New(tx)
		var err error
		if c.Trees, err = treeHeads(ctx, q); err != nil {
			return err
		}
		rows, err := q.TreeCounts(ctx)
		if err != nil {
			return fmt.Errorf("read the trees' counts: %w", err)
		}
		counts := transparency.Counts{}
		for _, r := range rows {
			counts[transparency.Tally{Kind: r.Kind, Contest: r.Contest, Region: r.Region, Choice: r.Choice}] = r.N
		}
		c.Tallies = counts.Digest()
		c.Counted, c.Rejected = counts.Totals()
		applied, err := q.ListAppliedOffsets(ctx, domain.EventTopics)
		if err != nil {
			return fmt.Errorf("read the applied offsets: %w", err)
		}
		for _, a := range applied {
			if c.Applied[a.Topic] == nil {
				c.Applied[a.Topic] = map[int32]int64{}
			}
			c.Applied[a.Topic][a.Partition] = a.NextOffset
		}
		return tx.QueryRow(ctx, "SELECT now()").Scan(&c.Time)
	})
	if err != nil {
		return c, fmt.Errorf("read the checkpoint's state: %w", err)
	}
	c.Time = c.Time.UTC().Truncate(time.Millisecond)
	return c, nil
}

// RecordCheckpoint keeps a signed checkpoint, to serve it.
func (t *Trees) RecordCheckpoint(ctx context.Context, at time.Time, signed []byte, verifierKey string) error {
	if err := db.New(t.pool).InsertCheckpoint(ctx, db.InsertCheckpointParams{
		CreatedAt: at, Note: string(signed), VerifierKey: verifierKey,
	}); err != nil {
		return fmt.Errorf("record the checkpoint: %w", err)
	}
	return nil
}
