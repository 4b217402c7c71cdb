package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The database of realtime_voting (the project votewatch began as a Go
// implementation of), read by `votewatch import --from-seed-db`. Its
// tables are that project's, created by its main.py, not votewatch's
// schema, so these few reads are plain pgx rather than sqlc queries over
// sql/schema (which describes only votewatch's own tables).

// SeedCandidate is a row of realtime_voting's candidates table.
type SeedCandidate struct {
	CandidateID, CandidateName, PartyAffiliation, Biography, CampaignPlatform, PhotoURL string
}

// SeedVoter is the part of a row of realtime_voting's voters table that
// votewatch reads: nothing of email, phone, cell, picture, street,
// country, postcode, nationality or registration_number is selected.
type SeedVoter struct {
	VoterID, VoterName, DateOfBirth, Gender, AddressCity, AddressState string
	// RegisteredDate is set when the table has a registered_date column
	// (some copies of the scripts add one; the original has none).
	RegisteredDate *time.Time
}

// SeedDB is what a realtime_voting database holds of an election.
type SeedDB struct {
	Candidates []SeedCandidate
	Voters     []SeedVoter
	// HasVoters is false when the database has no voters table.
	HasVoters bool
}

// ReadSeedDB reads the candidates and, when the table exists, the voters
// of the realtime_voting database at dsn (its own search_path: the tables
// main.py creates), in id order, in one read-only snapshot.
func ReadSeedDB(ctx context.Context, dsn string) (SeedDB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return SeedDB{}, fmt.Errorf("parse the realtime_voting database's url: %w", err)
	}
	// In UTC, so a time without a zone (voting.py writes UTC) reads as UTC.
	cfg.RuntimeParams["timezone"] = "UTC"
	cfg.RuntimeParams["application_name"] = "votewatch-import"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return SeedDB{}, fmt.Errorf("connect to the realtime_voting database: %w", err)
	}
	defer conn.Close(ctx)
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return SeedDB{}, fmt.Errorf("read the realtime_voting database: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()

	var db SeedDB
	rows, err := tx.Query(ctx, `SELECT candidate_id::text, coalesce(candidate_name::text, ''), coalesce(party_affiliation::text, ''),
		coalesce(biography::text, ''), coalesce(campaign_platform::text, ''), coalesce(photo_url::text, '')
		FROM candidates ORDER BY candidate_id`)
	if err != nil {
		return SeedDB{}, fmt.Errorf("read realtime_voting's candidates table: %w", err)
	}
	db.Candidates, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (SeedCandidate, error) {
		var c SeedCandidate
		err := r.Scan(&c.CandidateID, &c.CandidateName, &c.PartyAffiliation, &c.Biography, &c.CampaignPlatform, &c.PhotoURL)
		return c, err
	})
	if err != nil {
		return SeedDB{}, fmt.Errorf("read realtime_voting's candidates table: %w", err)
	}

	var hasVoters, hasRegisteredDate bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('voters') IS NOT NULL,
		EXISTS (SELECT 1 FROM information_schema.columns
		        WHERE table_schema = current_schema() AND table_name = 'voters' AND column_name = 'registered_date')`).
		Scan(&hasVoters, &hasRegisteredDate); err != nil {
		return SeedDB{}, fmt.Errorf("look for realtime_voting's voters table: %w", err)
	}
	if !hasVoters {
		return db, nil
	}
	db.HasVoters = true
	registered := "NULL::timestamptz"
	if hasRegisteredDate {
		// VARCHAR in some copies, TIMESTAMP in others; without a zone it
		// is UTC (the session's zone).
		registered = "registered_date::text::timestamptz"
	}
	rows, err = tx.Query(ctx, `SELECT voter_id::text, coalesce(voter_name::text, ''), coalesce(date_of_birth::text, ''),
		coalesce(gender::text, ''), coalesce(address_city::text, ''), coalesce(address_state::text, ''), `+registered+`
		FROM voters ORDER BY voter_id`)
	if err != nil {
		return SeedDB{}, fmt.Errorf("read realtime_voting's voters table: %w", err)
	}
	db.Voters, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (SeedVoter, error) {
		var v SeedVoter
		err := r.Scan(&v.VoterID, &v.VoterName, &v.DateOfBirth, &v.Gender, &v.AddressCity, &v.AddressState, &v.RegisteredDate)
		return v, err
	})
	if err != nil {
		return SeedDB{}, fmt.Errorf("read realtime_voting's voters table: %w", err)
	}
	return db, nil
}
