package trees

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections/internal/db"
	"github.com/votewatch/votewatch/projections/internal/dbutil"
	"github.com/votewatch/votewatch/transparency"
)

// treeLockKey serialises tree builders: one projector of a scaled-out group
// grows the tree at a time (transaction locks: a killed builder releases
// it with its transaction).
const treeLockKey int64 = 0x766f7465_74726565 // "votetree"

// maxGrow bounds the messages a partition adds to one epoch, so a tick's
// memory and transaction stay small.
const maxGrow = 4096

// Tree keeps a projection's transparency log (package transparency): the
// election's one tree, grown in epochs over the messages the projection
// has decided, in transactions of its own. Every table it writes is
// append-only.
type Tree struct {
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

// NewTree returns the tree of the projection behind pool. read reads the
// votes topic; secret salts the choice commitments and keys the tallies
// digest.
func NewTree(pool *pgxpool.Pool, secret transparency.Secret, read transparency.ReadFunc) (*Tree, error) {
	if pool == nil || read == nil || len(secret) == 0 {
		return nil, errors.New("new tree: nil pool, log reader or secret")
	}
	return &Tree{pool: pool, secret: secret, read: read, live: true}, nil
}

// NewRebuiltTree returns the tree of a projection being rebuilt behind
// pool: no reader sees it before the swap, so it takes no swap lock.
func NewRebuiltTree(pool *pgxpool.Pool, secret transparency.Secret, read transparency.ReadFunc) *Tree {
	return &Tree{pool: pool, secret: secret, read: read}
}

// Head returns the tree's size and root.
func (t *Tree) Head(ctx context.Context) (tlog.Tree, error) { return LogHead(ctx, db.New(t.pool)) }

// OpenWith has the tree decode votes through o, as the projector does (the
// leaves commit to the opened choice). Call it before Grow.
func (t *Tree) OpenWith(o *domain.Opener) { t.opener = o }

// LogHead reads the head (size and root) of the tree q reads.
func LogHead(ctx context.Context, q *db.Queries) (tlog.Tree, error) {
	rows, err := q.LogHead(ctx)
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("read the tree's head: %w", err)
	}
	if len(rows) == 0 {
		return tlog.Tree{N: 0, Hash: emptyRoot}, nil
	}
	h := tlog.Tree{N: rows[0].Size}
	copy(h.Hash[:], rows[0].Root)
	return h, nil
}

// emptyRoot is RFC 6962's root of the empty tree, SHA-256 of nothing.
var emptyRoot = tlog.Hash(sha256.Sum256(nil))

func logCursors(ctx context.Context, q *db.Queries) (map[int32]int64, error) {
	rows, err := q.LogCursors(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the tree's partition cursors: %w", err)
	}
	out := make(map[int32]int64, len(rows))
	for _, r := range rows {
		out[r.Partition] = r.NextOffset
	}
	return out, nil
}

// skipStalled leaves out of ends each partition whose growth stopped, last
// time, at a vote that is still undecided: re-reading up to maxGrow
// messages every tick would change nothing (a vote held for a
// registration that never comes holds its partition for good).
func (t *Tree) skipStalled(ctx context.Context, cursors, ends map[int32]int64) error {
	var check []domain.Vote
	for p, st := range t.stalled {
		if _, ok := ends[p]; ok && cursors[p] == st.Offset {
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
	inTree, err := t.seen(ctx, ids)
	if err != nil {
		return err
	}
	for p, st := range t.stalled {
		if cursors[p] != st.Offset || inTree[st.Vote.ID()] {
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

// TreeLeaves counts the leaves of the tree of the projection behind pool.
func TreeLeaves(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	h, err := LogHead(ctx, db.New(pool))
	return h.N, err
}

// GrowAll grows the tree until it covers everything decided so far, and
// returns how many leaves it added.
func (t *Tree) GrowAll(ctx context.Context) (int64, error) {
	var total int64
	for {
		n, err := t.Grow(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// Grow adds one epoch, in one transaction: up to maxGrow leaves per
// partition, the messages after each partition's cursor that the
// projection has decided, in offset order, up to the first that it has
// not (transparency.Secret.Grow). It adds nothing when another builder
// holds the tree.
func (t *Tree) Grow(ctx context.Context) (int64, error) {
	q := db.New(t.pool)
	cursors, err := logCursors(ctx, q)
	if err != nil {
		return 0, err
	}
	rows, err := q.ListAppliedOffsets(ctx, []string{domain.TopicVotes})
	if err != nil {
		return 0, fmt.Errorf("read the votes' applied offsets: %w", err)
	}
	ends := map[int32]int64{}
	for _, r := range rows {
		ends[r.Partition] = min(r.NextOffset, cursors[r.Partition]+maxGrow)
	}
	if err := t.skipStalled(ctx, cursors, ends); err != nil {
		return 0, err
	}
	g, err := t.secret.Grow(ctx, t.opener, cursors, ends, t.read, t.decide, t.seen, t.appliedOthers, t.misrouted)
	if err != nil {
		return 0, err
	}
	t.stalled = g.Stalled
	if len(g.Leaves) == 0 {
		return 0, nil
	}
	_, added, err := t.store(ctx, cursors, g, nil)
	return added, err
}

// ErrEpochDiffers is returned when growing a recorded epoch does not give
// the recorded tree: the projection decided differently from the one that
// recorded it.
var ErrEpochDiffers = errors.New("the rebuilt epoch differs from the recorded one")

// GrowEpoch grows the tree by exactly the recorded epoch e: each of its
// partitions up to its end, and it must reach e's size and root. A replay
// follows the epochs recorded in the checkpoints topic with it, so it
// grows the same tree as live. Growing an epoch the tree already holds
// (e.From below the tree's size) does nothing: the topic may hold an epoch
// twice.
func (t *Tree) GrowEpoch(ctx context.Context, e transparency.Epoch) error {
	q := db.New(t.pool)
	head, err := LogHead(ctx, q)
	if err != nil {
		return err
	}
	switch {
	case e.From < head.N:
		return nil
	case e.From > head.N:
		return fmt.Errorf("%w: the epoch grows the tree from %d leaves; it has %d", ErrEpochDiffers, e.From, head.N)
	}
	cursors, err := logCursors(ctx, q)
	if err != nil {
		return err
	}
	ends := make(map[int32]int64, len(e.Ends))
	for p, end := range e.Ends {
		ends[p] = end
	}
	g, err := t.secret.Grow(ctx, t.opener, cursors, ends, t.read, t.decide, t.seen, t.appliedOthers, t.misrouted)
	if err != nil {
		return err
	}
	for p, end := range e.Ends {
		if got, ok := g.Ends[p]; !ok || got != end {
			return fmt.Errorf("%w: from %d leaves, partition %d grows to offset %d, the record says %d", ErrEpochDiffers, e.From, p, got, end)
		}
	}
	_, _, err = t.store(ctx, cursors, g, &e)
	return err
}

// store appends growth g as an epoch, in one transaction, and returns it.
// It adds nothing when another builder holds the tree or grew it since
// cursors were read. With want, the epoch must reach want's size and root,
// or nothing is stored (ErrEpochDiffers).
func (t *Tree) store(ctx context.Context, cursors map[int32]int64, g transparency.Growth, want *transparency.Epoch) (transparency.Epoch, int64, error) {
	var e transparency.Epoch
	var added int64
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		if t.live {
			if err := dbutil.HoldSwapLock(ctx, tx); err != nil {
				return err
			}
		}
		var got bool
		// Per schema: a replay grows its rebuilt tree while the live
		// builder grows the live one.
		if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock(hashtextextended(current_schema(), $1))", treeLockKey).Scan(&got); err != nil {
			return fmt.Errorf("lock the tree: %w", err)
		}
		if !got {
			return nil
		}
		q := db.New(tx)
		now, err := logCursors(ctx, q)
		if err != nil {
			return err
		}
		if !mapsEqual(now, cursors) {
			// Another builder grew it since we read: its leaves stand.
			return nil
		}
		head, err := LogHead(ctx, q)
		if err != nil {
			return err
		}
		if e, err = appendEpoch(ctx, q, head.N, g); err != nil {
			return err
		}
		if want != nil && (e.Size != want.Size || e.Root != want.Root) {
			return fmt.Errorf("%w: from %d leaves it reaches %d leaves with root %s, the record %d with root %s", ErrEpochDiffers, e.From, e.Size, e.Root, want.Size, want.Root)
		}
		added = int64(len(g.Leaves))
		return addCounts(ctx, q, e.Size, g.Counts)
	})
	if err != nil {
		return e, 0, fmt.Errorf("grow the tree: %w", err)
	}
	if want != nil && added == 0 {
		return e, 0, fmt.Errorf("%w: another builder grew the tree from %d leaves", ErrEpochDiffers, want.From)
	}
	return e, added, nil
}

func mapsEqual(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func appendEpoch(ctx context.Context, q *db.Queries, from int64, g transparency.Growth) (transparency.Epoch, error) {
	hashes, head, err := transparency.AppendHashes(from, g.Leaves, HashReader(ctx, q))
	if err != nil {
		return transparency.Epoch{}, err
	}
	first := tlog.StoredHashIndex(0, from)
	hp := db.AppendLogHashesParams{Idxs: make([]int64, len(hashes)), Hashes: make([][]byte, len(hashes))}
	for i, h := range hashes {
		hp.Idxs[i] = first + int64(i)
		hp.Hashes[i] = h[:]
	}
	if err := q.AppendLogHashes(ctx, hp); err != nil {
		return transparency.Epoch{}, fmt.Errorf("store the tree's hashes: %w", err)
	}
	var lp db.AppendLogLeavesParams
	for i, l := range g.Leaves {
		lp.Leaves = append(lp.Leaves, from+int64(i))
		lp.Partitions = append(lp.Partitions, l.Partition)
		lp.Offsets = append(lp.Offsets, l.Offset)
		var ref []byte
		if l.Vote != "" && l.Decision != transparency.Misrouted {
			// A misrouted vote takes no vote_id (domain rule 0): its leaf
			// must not make the vote's right copy a repeat, nor answer for
			// it.
			if ref, err = hex.DecodeString(l.Vote); err != nil {
				return transparency.Epoch{}, fmt.Errorf("leaf %d's vote: %w", from+int64(i), err)
			}
		}
		lp.VoteRefs = append(lp.VoteRefs, ref)
		lp.Decides = append(lp.Decides, l.Kind == transparency.KindVote && l.Decision != transparency.Repeat && l.Decision != transparency.Misrouted)
		lp.Bodies = append(lp.Bodies, l.Body())
	}
	if err := q.AppendLogLeaves(ctx, lp); err != nil {
		return transparency.Epoch{}, fmt.Errorf("store the tree's leaves: %w", err)
	}
	e := transparency.Epoch{From: from, Size: head.N, Root: head.Hash, Ends: g.Ends}
	ep := db.InsertLogEpochParams{Size: e.Size, FromSize: e.From, Root: e.Root[:]}
	ps := make([]int32, 0, len(e.Ends))
	for p := range e.Ends {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	for _, p := range ps {
		ep.Partitions = append(ep.Partitions, p)
		ep.NextOffsets = append(ep.NextOffsets, e.Ends[p])
	}
	if err := q.InsertLogEpoch(ctx, ep); err != nil {
		return transparency.Epoch{}, fmt.Errorf("store the epoch: %w", err)
	}
	return e, nil
}

func addCounts(ctx context.Context, q *db.Queries, epoch int64, counts transparency.Counts) error {
	p := db.AddLogCountsParams{Epoch: epoch}
	for t, n := range counts {
		if n == 0 {
			continue
		}
		p.Kinds = append(p.Kinds, t.Kind)
		p.Contests = append(p.Contests, t.Contest)
		p.Regions = append(p.Regions, t.Region)
		p.Choices = append(p.Choices, t.Choice)
		p.Ns = append(p.Ns, n)
	}
	if len(p.Kinds) == 0 {
		return nil
	}
	if err := q.AddLogCounts(ctx, p); err != nil {
		return fmt.Errorf("add the epoch's counts: %w", err)
	}
	return nil
}

// HashReader reads the tree's stored hashes through q.
func HashReader(ctx context.Context, q *db.Queries) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		rows, err := q.LogHashes(ctx, indexes)
		if err != nil {
			return nil, fmt.Errorf("read the tree's hashes: %w", err)
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
				return nil, fmt.Errorf("the tree has no stored hash %d", x)
			}
			out[i] = h
		}
		return out, nil
	})
}

// Epochs returns the tree's epochs after the tree had after leaves,
// oldest first.
func (t *Tree) Epochs(ctx context.Context, after int64) ([]transparency.Epoch, error) {
	return LogEpochs(ctx, db.New(t.pool), after)
}

// LogEpochs returns the epochs of the tree q reads after the tree had
// after leaves, oldest first.
func LogEpochs(ctx context.Context, q *db.Queries, after int64) ([]transparency.Epoch, error) {
	rows, err := q.LogEpochs(ctx, after)
	if err != nil {
		return nil, fmt.Errorf("read the epochs: %w", err)
	}
	out := make([]transparency.Epoch, len(rows))
	for i, r := range rows {
		e := transparency.Epoch{From: r.FromSize, Size: r.Size, Ends: map[int32]int64{}}
		copy(e.Root[:], r.Root)
		for j, p := range r.Partitions {
			e.Ends[p] = r.NextOffsets[j]
		}
		out[i] = e
	}
	return out, nil
}

// CompareTrees compares two projections' trees at the size both have
// reached, and describes how they differ: equal decisions give equal
// roots, so a difference is a difference in what was decided, in order.
// It returns 1 when it compared two non-empty trees.
func CompareTrees(ctx context.Context, a, b *db.Queries) ([]string, int, error) {
	ha, err := LogHead(ctx, a)
	if err != nil {
		return nil, 0, err
	}
	hb, err := LogHead(ctx, b)
	if err != nil {
		return nil, 0, err
	}
	var diffs []string
	if hb.N < ha.N {
		// The live tree holds decisions the rebuilt one does not.
		diffs = append(diffs, fmt.Sprintf("the live tree has %d leaves, the rebuilt %d", ha.N, hb.N))
	}
	n := min(ha.N, hb.N)
	if n == 0 {
		return diffs, 0, nil
	}
	ra, err := tlog.TreeHash(n, HashReader(ctx, a))
	if err != nil {
		return nil, 0, err
	}
	rb, err := tlog.TreeHash(n, HashReader(ctx, b))
	if err != nil {
		return nil, 0, err
	}
	if ra != rb {
		diffs = append(diffs, fmt.Sprintf("at %d leaves the live root is %s, the rebuilt %s", n, ra, rb))
	}
	return diffs, 1, nil
}

// HashReader reads the tree's stored hashes, for proofs.
func (t *Tree) HashReader(ctx context.Context) tlog.HashReader {
	return HashReader(ctx, db.New(t.pool))
}

// decide reads what the projection made of each vote.
func (t *Tree) decide(ctx context.Context, votes []domain.Vote) (map[transparency.VoteKey]transparency.Decision, error) {
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

// seen reports which vote_ids the tree already has a deciding leaf for.
func (t *Tree) seen(ctx context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	byRef := make(map[string]string, len(ids))
	for start := 0; start < len(ids); start += 8192 {
		chunk := ids[start:min(start+8192, len(ids))]
		refs := make([][]byte, len(chunk))
		for i, id := range chunk {
			r := sha256.Sum256([]byte(id))
			refs[i] = r[:]
			byRef[string(r[:])] = id
		}
		rows, err := db.New(t.pool).VoteRefsInLog(ctx, refs)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			out[byRef[string(r)]] = true
		}
	}
	return out, nil
}

// appliedOthers reports which schedules and dead letters of a votes
// partition between two offsets the projection has applied.
func (t *Tree) appliedOthers(ctx context.Context, partition int32, from, to int64) (func(int64) bool, error) {
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

// Snapshot reads, in one snapshot, what a checkpoint of the tree states:
// its size and root, and the keyed digest of what its leaves decide.
func (t *Tree) Snapshot(ctx context.Context, origin string) (transparency.Checkpoint, error) {
	c := transparency.Checkpoint{Origin: origin}
	err := pgx.BeginTxFunc(ctx, t.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		q := db.New(tx)
		head, err := LogHead(ctx, q)
		if err != nil {
			return err
		}
		c.Size, c.Root = head.N, head.Hash
		counts, err := logCounts(ctx, q, head.N)
		if err != nil {
			return err
		}
		c.Tallies = counts.KeyedDigest(t.secret)
		return tx.QueryRow(ctx, "SELECT now()").Scan(&c.Time)
	})
	if err != nil {
		return c, fmt.Errorf("read the checkpoint's state: %w", err)
	}
	c.Time = c.Time.UTC().Truncate(time.Millisecond)
	return c, nil
}

func logCounts(ctx context.Context, q *db.Queries, size int64) (transparency.Counts, error) {
	rows, err := q.LogCountsUpTo(ctx, size)
	if err != nil {
		return nil, fmt.Errorf("read the tree's counts: %w", err)
	}
	counts := transparency.Counts{}
	for _, r := range rows {
		counts[transparency.Tally{Kind: r.Kind, Contest: r.Contest, Region: r.Region, Choice: r.Choice}] = r.N
	}
	return counts, nil
}

// RecordCheckpoint keeps a signed checkpoint, to serve it.
func (t *Tree) RecordCheckpoint(ctx context.Context, c transparency.Checkpoint, signed []byte, verifierKey string) error {
	if err := db.New(t.pool).InsertLogCheckpoint(ctx, db.InsertLogCheckpointParams{
		Size: c.Size, CreatedAt: c.Time, Note: string(signed), VerifierKey: verifierKey,
	}); err != nil {
		return fmt.Errorf("record the checkpoint: %w", err)
	}
	return nil
}

// misrouted reports which votes of a votes partition between two offsets
// the projection refused as misrouted (domain rule 0).
func (t *Tree) misrouted(ctx context.Context, partition int32, from, to int64) (func(int64) bool, error) {
	offsets, err := db.New(t.pool).MisroutedVotePositions(ctx, db.MisroutedVotePositionsParams{VotePartition: partition, FromOffset: from, ToOffset: to})
	if err != nil {
		return nil, err
	}
	out := make(map[int64]bool, len(offsets))
	for _, o := range offsets {
		out[o] = true
	}
	return func(o int64) bool { return out[o] }, nil
}
