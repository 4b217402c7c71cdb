package projections

import (
	"context"
	"fmt"

	"github.com/votewatch/votewatch/sql/db"
)

// BallotStatus is what became of one vote, as its receipt holder may
// learn it: never the candidate, the voter, the region, nor when (a time
// beside the public per-minute tallies could betray the choice).
type BallotStatus struct {
	// Status is counted, rejected or pending (held for a registration).
	Status string
	// Reason is a rejection's reason.
	Reason string
}

// Ballot returns the status of the vote with voteID, or ErrNotFound for a
// vote_id not in the projection (never seen, or accepted by the intake
// and not projected yet). It reads ballot_statuses, the one way the
// reader role sees anything of a single vote.
func (r *Results) Ballot(ctx context.Context, voteID string) (BallotStatus, error) {
	rows, err := db.New(r.pool).BallotStatus(ctx, voteID)
	if err != nil {
		return BallotStatus{}, fmt.Errorf("ballot status: %w", err)
	}
	if len(rows) == 0 {
		return BallotStatus{}, fmt.Errorf("vote %s: %w", voteID, ErrNotFound)
	}
	return BallotStatus{Status: rows[0].Status, Reason: rows[0].Reason}, nil
}
