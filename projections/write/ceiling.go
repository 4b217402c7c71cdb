package write

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/projections/internal/db"
)

// CeilingBallot is one ballot row for CopyBallotsCeiling.
type CeilingBallot struct {
	VoterID, Region string
	VoteID          uuid.UUID
	CastAt          time.Time
}

// CopyBallotsCeiling COPYs rows into target.ballots, a new table with the
// same columns and indexes as the ballots of the projection in schema
// live, and returns how many it wrote: the rate at which this PostgreSQL
// can write the projection's rows at all (votewatch bench's ceiling).
func CopyBallotsCeiling(ctx context.Context, pool *pgxpool.Pool, live, target string, rows []CeilingBallot) (int64, error) {
	t := pgx.Identifier{target}.Sanitize()
	if _, err := pool.Exec(ctx, fmt.Sprintf(`CREATE SCHEMA %[1]s; CREATE TABLE %[1]s.ballots (LIKE %[2]s.ballots INCLUDING ALL)`, t, pgx.Identifier{live}.Sanitize())); err != nil {
		return 0, fmt.Errorf("create copy target: %w", err)
	}
	params := make([]db.CopyCeilingBallotsParams, len(rows))
	for i, r := range rows {
		params[i] = db.CopyCeilingBallotsParams{VoterID: r.VoterID, VoteID: pgtype.UUID{Bytes: r.VoteID, Valid: true}, Region: r.Region, CastAt: r.CastAt}
	}
	// sqlc's COPY names the table unqualified: the transaction's
	// search_path says which schema's ballots it is.
	var n int64
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL search_path = "+t); err != nil {
			return err
		}
		var err error
		n, err = db.New(tx).CopyCeilingBallots(ctx, params)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("copy ballots: %w", err)
	}
	return n, nil
}
