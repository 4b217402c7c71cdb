package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/votewatch/votewatch/sql/db"
)

// BallotStatus is what became of one vote, as its receipt holder may
// learn it: never the candidate, the voter or the region.
type BallotStatus struct {
	// Status is counted, rejected or pending (held for a registration, or
	// accepted by the intake and not yet projected).
	Status string
	// Reason is a rejection's reason.
	Reason string
	// DecidedAt is when it was counted or rejected (zero while pending).
	DecidedAt time.Time
}

// Ballot returns the status of the vote with voteID, or ErrNotFound for a
// vote_id never seen. It reads through ballot_status, the one way the
// reader role sees anything of a single vote.
func (r *Results) Ballot(ctx context.Context, voteID string) (BallotStatus, error) {
	rows, err := db.New(r.pool).BallotStatus(ctx, voteID)
	if err != nil {
		return BallotStatus{}, fmt.Errorf("ballot status: %w", err)
	}
	if len(rows) == 0 {
		return BallotStatus{}, fmt.Errorf("vote %s: %w", voteID, ErrNotFound)
	}
	return BallotStatus{Status: rows[0].Status, Reason: rows[0].Reason, DecidedAt: rows[0].DecidedAt.Time}, nil
}
