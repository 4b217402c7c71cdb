package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The benchmark's database work (cmd votewatch bench, internal/bench):
// statements on schemas named at run time, which sqlc cannot express.

// DropSchemas drops each schema with everything in it, if it exists.
func DropSchemas(ctx context.Context, pool *pgxpool.Pool, schemas ...string) error {
	var b strings.Builder
	for _, s := range schemas {
		fmt.Fprintf(&b, "DROP SCHEMA IF EXISTS %s CASCADE;", pgx.Identifier{s}.Sanitize())
	}
	if _, err := pool.Exec(ctx, b.String()); err != nil {
		return fmt.Errorf("drop schemas %v: %w", schemas, err)
	}
	return nil
}

// CopyRegister copies the projection's register (candidates, voters,
// regions, and the registration topics' applied
// offsets) into schema, a freshly migrated projection, so a projector there
// starts at the votes.
func CopyRegister(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	l, n := Schema, pgx.Identifier{schema}.Sanitize()
	if _, err := pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %[2]s.candidates SELECT * FROM %[1]s.candidates;
		INSERT INTO %[2]s.voters SELECT * FROM %[1]s.voters;
		INSERT INTO %[2]s.regions (region, registered_voters) SELECT region, registered_voters FROM %[1]s.regions;
		INSERT INTO %[2]s.applied_offsets SELECT * FROM %[1]s.applied_offsets WHERE topic <> 'votes'`, l, n)); err != nil {
		return fmt.Errorf("copy the register: %w", err)
	}
	return nil
}
