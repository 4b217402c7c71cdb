package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/sql/db"
	"github.com/votewatch/votewatch/transparency"
)

// MaxCheckpoints bounds one CheckpointsSince answer: at one checkpoint
// every few seconds a day of them is tens of thousands, so an observer
// pages on from the last one's time.
const MaxCheckpoints = 256

// SignedCheckpoint is a checkpoint as the checkpointer signed and recorded
// it.
type SignedCheckpoint struct {
	ID        int64
	CreatedAt time.Time
	// Note is the signed note, byte for byte as signed.
	Note string
	// VerifierKey checks Note (sumdb/note verifier key text).
	VerifierKey string
}

func signedCheckpoint(c db.Checkpoint) SignedCheckpoint {
	return SignedCheckpoint{ID: c.ID, CreatedAt: c.CreatedAt.UTC(), Note: c.Note, VerifierKey: c.VerifierKey}
}

// LatestCheckpoint returns the newest signed checkpoint, or ErrNotFound
// before the first.
func (r *Results) LatestCheckpoint(ctx context.Context) (SignedCheckpoint, error) {
	var out SignedCheckpoint
	err := r.snapshot(ctx, func(q *db.Queries) error {
		var err error
		out, err = latestCheckpoint(ctx, q)
		return err
	})
	return out, err
}

func latestCheckpoint(ctx context.Context, q *db.Queries) (SignedCheckpoint, error) {
	rows, err := q.LatestCheckpoint(ctx)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("read the latest checkpoint: %w", err)
	}
	if len(rows) == 0 {
		return SignedCheckpoint{}, fmt.Errorf("checkpoint: %w", ErrNotFound)
	}
	return signedCheckpoint(rows[0]), nil
}

// CheckpointsSince returns the checkpoints recorded after since, oldest
// first, at most MaxCheckpoints of them.
func (r *Results) CheckpointsSince(ctx context.Context, since time.Time) ([]SignedCheckpoint, error) {
	var out []SignedCheckpoint
	err := r.snapshot(ctx, func(q *db.Queries) error {
		rows, err := q.CheckpointsSince(ctx, db.CheckpointsSinceParams{Since: since, MaxRows: MaxCheckpoints})
		if err != nil {
			return fmt.Errorf("read the checkpoints since %s: %w", since.Format(time.RFC3339), err)
		}
		out = make([]SignedCheckpoint, len(rows))
		for i, c := range rows {
			out[i] = signedCheckpoint(c)
		}
		return nil
	})
	return out, err
}

// InclusionProof proves that a ballot's leaf is in a signed tree: the
// RFC 6962 record proof of leaf LeafIndex in Partition's tree of TreeSize
// leaves with root Root (tlog.CheckRecord).
type InclusionProof struct {
	Partition int32
	LeafIndex int64
	// Leaf is the leaf's body (transparency.Leaf.Body): its hash is the
	// record hash proved.
	Leaf     string
	TreeSize int64
	Root     tlog.Hash
	Hashes   tlog.RecordProof
}

// Ballot returns what became of the vote with voteID, or ErrNotFound for
// a vote_id not in the projection (never seen, or accepted by the intake
// and not projected yet). Its status comes from ballot_statuses, the one
// way the reader role sees anything of a single vote; its proof from the
// transparency log, whose leaves name no candidate, voter or region.
//
// The proof, with the checkpoint it is against, is there once the vote's
// leaf is inside the latest checkpoint's tree of its partition: a voter
// checks it against that signed checkpoint. A vote decided since, or
// behind a pending one in its partition, has a status and no proof yet.
func (r *Results) Ballot(ctx context.Context, voteID string) (BallotStatus, error) {
	var out BallotStatus
	err := r.snapshot(ctx, func(q *db.Queries) error {
		rows, err := q.BallotStatus(ctx, voteID)
		if err != nil {
			return fmt.Errorf("ballot status: %w", err)
		}
		if len(rows) == 0 {
			return fmt.Errorf("vote %s: %w", voteID, ErrNotFound)
		}
		out = BallotStatus{Status: rows[0].Status, Reason: rows[0].Reason}
		out.Checkpoint, out.Proof, err = ballotProof(ctx, q, voteID, out)
		return err
	})
	return out, err
}

// ballotProof proves voteID's leaf against the latest checkpoint, or
// returns nothing when there is no checkpoint or the leaf is not in it.
func ballotProof(ctx context.Context, q *db.Queries, voteID string, status BallotStatus) (string, *InclusionProof, error) {
	leaves, err := q.TreeLeafOf(ctx, voteID)
	if err != nil {
		return "", nil, fmt.Errorf("read vote %s's leaf: %w", voteID, err)
	}
	if len(leaves) == 0 {
		return "", nil, nil
	}
	signed, err := latestCheckpoint(ctx, q)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return "", nil, nil
		}
		return "", nil, err
	}
	cp, err := transparency.Open([]byte(signed.Note), signed.VerifierKey)
	if err != nil {
		return "", nil, fmt.Errorf("open checkpoint %d: %w", signed.ID, err)
	}
	leaf, ok := provenLeaf(leaves, cp, status)
	if !ok {
		return "", nil, nil
	}
	head := cp.Trees[leaf.Partition]
	hashes, err := tlog.ProveRecord(head.Size, leaf.Leaf, hashReader(ctx, q, leaf.Partition))
	if err != nil {
		return "", nil, fmt.Errorf("prove vote %s's leaf %d in partition %d's tree of %d: %w", voteID, leaf.Leaf, leaf.Partition, head.Size, err)
	}
	return signed.Note, &InclusionProof{Partition: leaf.Partition, LeafIndex: leaf.Leaf, Leaf: leaf.Body,
		TreeSize: head.Size, Root: head.Root, Hashes: hashes}, nil
}

// provenLeaf picks, among the leaves naming a vote_id (a vote_id sent
// twice has two), one inside the checkpoint's trees: the one whose
// decision is the status told, if any, else the first.
func provenLeaf(leaves []db.TreeLeafOfRow, cp transparency.Checkpoint, status BallotStatus) (db.TreeLeafOfRow, bool) {
	want := status.Status
	if status.Reason != "" {
		want += " " + status.Reason
	}
	var found *db.TreeLeafOfRow
	for i, l := range leaves {
		if l.Leaf >= cp.Trees[l.Partition].Size {
			continue
		}
		if strings.Contains(l.Body, "\ndecision "+want+"\n") {
			return l, true
		}
		if found == nil {
			found = &leaves[i]
		}
	}
	if found == nil {
		return db.TreeLeafOfRow{}, false
	}
	return *found, true
}
