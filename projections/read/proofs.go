package read

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/internal/db"
	"github.com/votewatch/votewatch/projections/trees"
	"github.com/votewatch/votewatch/transparency"
)

// SignedCheckpoint is a checkpoint as served: the note as the log signed
// it, followed by the witnesses' cosignature lines.
type SignedCheckpoint struct {
	Size      int64
	CreatedAt time.Time
	// Note is the signed note with its cosignatures, byte for byte.
	Note string
	// VerifierKey checks the log's signature on Note (sumdb/note verifier
	// key text).
	VerifierKey string
}

// LatestCheckpoint returns the newest checkpoint recorded (with
// witnesses, the newest that reached its quorum) with its cosignatures,
// or projections.ErrNotFound before the first.
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
	row, err := trees.LatestCheckpointRow(ctx, q)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	if row == nil {
		return SignedCheckpoint{}, fmt.Errorf("checkpoint: %w", projections.ErrNotFound)
	}
	cosigs, err := q.Cosignatures(ctx, row.Size)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("read checkpoint %d's cosignatures: %w", row.Size, err)
	}
	var b strings.Builder
	b.WriteString(row.Note)
	for _, c := range cosigs {
		b.WriteString(c.Line)
	}
	return SignedCheckpoint{Size: row.Size, CreatedAt: row.CreatedAt.UTC(), Note: b.String(), VerifierKey: row.VerifierKey}, nil
}

// Tile returns a tile of the tree in the served checkpoint (c2sp.org/tlog-tiles):
// a hash tile (t.L >= 0) or an entry bundle (t.L == -1, each leaf as a
// 2-byte big-endian length and its bytes). It returns projections.ErrNotFound for a
// tile the served tree does not hold whole.
func (r *Results) Tile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	var out []byte
	err := r.snapshot(ctx, func(q *db.Queries) error {
		row, err := trees.LatestCheckpointRow(ctx, q)
		if err != nil {
			return err
		}
		if row == nil {
			return fmt.Errorf("tile: %w", projections.ErrNotFound)
		}
		level := max(t.L, 0)
		// The leaves the tile covers must all be in the served tree.
		end := (t.N*(1<<t.H) + int64(t.W)) << (uint(level) * uint(t.H))
		if t.W <= 0 || end > row.Size {
			return fmt.Errorf("tile %s beyond the served tree of %d leaves: %w", t.Path(), row.Size, projections.ErrNotFound)
		}
		if t.L >= 0 {
			out, err = tlog.ReadTileData(t, trees.HashReader(ctx, q))
			return err
		}
		first := t.N * (1 << t.H)
		rows, err := q.LogLeafBodies(ctx, db.LogLeafBodiesParams{First: first, Last: first + int64(t.W)})
		if err != nil {
			return fmt.Errorf("read the leaves of %s: %w", t.Path(), err)
		}
		if len(rows) != t.W {
			return fmt.Errorf("entries %s: %d leaves stored of %d", t.Path(), len(rows), t.W)
		}
		for _, l := range rows {
			if out, err = appendEntry(out, []byte(l.Body)); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// appendEntry appends an entry to an entry bundle.
func appendEntry(bundle, entry []byte) ([]byte, error) {
	if len(entry) > 0xFFFF {
		return nil, fmt.Errorf("entry of %d bytes: too long for a bundle", len(entry))
	}
	return append(append(bundle, byte(len(entry)>>8), byte(len(entry))), entry...), nil
}

// InclusionProof proves that a ballot's leaf is in a signed tree: the
// RFC 6962 record proof of leaf LeafIndex in the tree of TreeSize leaves
// with root Root (tlog.CheckRecord).
type InclusionProof struct {
	LeafIndex int64
	// Leaf is the leaf's body (transparency.Leaf.Body): its hash is the
	// record hash proved.
	Leaf     string
	TreeSize int64
	Root     tlog.Hash
	Hashes   tlog.RecordProof
}

// Ballot returns what became of the vote with voteID, or projections.ErrNotFound for
// a vote_id not in the projection (never seen, or accepted by the intake
// and not projected yet). Its status comes from ballot_statuses, the one
// way the reader role sees anything of a single vote; its proof from the
// transparency log, whose leaves name no vote_id, candidate, voter or
// region.
//
// The proof, with the checkpoint it is against, is there once the vote's
// leaf is inside the served checkpoint's tree: a voter checks it against
// that cosigned checkpoint. A vote decided since, or behind a pending one
// in its partition, has a status and no proof yet.
func (r *Results) Ballot(ctx context.Context, voteID string) (BallotStatus, error) {
	var out BallotStatus
	err := r.snapshot(ctx, func(q *db.Queries) error {
		rows, err := q.BallotStatus(ctx, voteID)
		if err != nil {
			return fmt.Errorf("ballot status: %w", err)
		}
		if len(rows) == 0 {
			return fmt.Errorf("vote %s: %w", voteID, projections.ErrNotFound)
		}
		out = BallotStatus{Status: rows[0].Status, Reason: rows[0].Reason}
		out.Checkpoint, out.Proof, err = ballotProof(ctx, q, voteID)
		return err
	})
	return out, err
}

// ballotProof proves voteID's leaf against the served checkpoint, or
// returns nothing when there is no checkpoint or the leaf is not in it.
// Of a vote_id sent more than once, the leaf carrying the decision is
// proved.
func ballotProof(ctx context.Context, q *db.Queries, voteID string) (string, *InclusionProof, error) {
	ref := sha256.Sum256([]byte(voteID))
	leaves, err := q.LogLeafOf(ctx, ref[:])
	if err != nil {
		return "", nil, fmt.Errorf("read vote %s's leaf: %w", voteID, err)
	}
	if len(leaves) == 0 {
		return "", nil, nil
	}
	signed, err := latestCheckpoint(ctx, q)
	if err != nil {
		if errors.Is(err, projections.ErrNotFound) {
			return "", nil, nil
		}
		return "", nil, err
	}
	cp, err := transparency.Open([]byte(signed.Note), signed.VerifierKey)
	if err != nil {
		return "", nil, fmt.Errorf("open checkpoint %d: %w", signed.Size, err)
	}
	leaf := leaves[0]
	if leaf.Leaf >= cp.Size {
		return "", nil, nil
	}
	hashes, err := tlog.ProveRecord(cp.Size, leaf.Leaf, trees.HashReader(ctx, q))
	if err != nil {
		return "", nil, fmt.Errorf("prove vote %s's leaf %d in the tree of %d: %w", voteID, leaf.Leaf, cp.Size, err)
	}
	return signed.Note, &InclusionProof{LeafIndex: leaf.Leaf, Leaf: leaf.Body, TreeSize: cp.Size, Root: cp.Root, Hashes: hashes}, nil
}
