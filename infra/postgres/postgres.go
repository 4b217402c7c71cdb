// Package postgres connects to PostgreSQL, applies the schema migrations and,
// when no database is configured, runs a private cluster from the installed
// server binaries.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/votewatch/votewatch/sql/schema"
)

// Schema is where the live projection's tables live. A replay builds a
// new projection in another schema and swaps the two names.
const Schema = "votewatch"

// Connect opens a pool to dsn whose sessions use the live projection
// schema, and checks that the server answers.
func Connect(ctx context.Context, dsn string, maxConns int32) (*pgxpool.Pool, error) {
	return ConnectSchema(ctx, dsn, Schema, maxConns)
}

// ConnectSchema opens a pool whose sessions resolve table names in schema.
// Sessions run in UTC so timestamps group into the same minutes wherever
// the server runs.
func ConnectSchema(ctx context.Context, dsn, schema string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	cfg.ConnConfig.RuntimeParams["application_name"] = "votewatch"
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return pool, nil
}

// Migrator applies the embedded schema migrations: the projection's, to
// the pool's schema, and the intake's, to its own schema (which a replay
// never rebuilds).
type Migrator struct {
	db         *sql.DB
	projection *goose.Provider
	intake     *goose.Provider
	schema     string
}

// NewMigrator returns a migrator over pool. Concurrent migrators (several
// processes starting at once) serialise on a Postgres advisory lock.
func NewMigrator(pool *pgxpool.Pool) (*Migrator, error) {
	if pool == nil {
		return nil, errors.New("new migrator: nil pool")
	}
	db := stdlib.OpenDBFromPool(pool)
	provider := func(fsys fs.FS, opts ...goose.ProviderOption) (*goose.Provider, error) {
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		return goose.NewProvider(goose.DialectPostgres, db, fsys, append(opts, goose.WithSessionLocker(locker))...)
	}
	projection, err := provider(schema.Migrations)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("new migrator: %w", err)
	}
	intakeFS, err := schema.IntakeMigrations()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("new migrator: intake: %w", err)
	}
	intake, err := provider(intakeFS, goose.WithTableName(schema.IntakeSchema+".goose_db_version"))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("new migrator: intake: %w", err)
	}
	target := pool.Config().ConnConfig.RuntimeParams["search_path"]
	if target == "" {
		target = pgx.Identifier{Schema}.Sanitize()
	}
	return &Migrator{db: db, projection: projection, intake: intake, schema: target}, nil
}

// Up creates the schemas if needed, applies every pending migration and
// returns how many ran. With nothing pending it changes nothing, so a
// role that may not create objects (the projector's) can call it.
func (m *Migrator) Up(ctx context.Context) (int, error) {
	var ready bool
	err := m.db.QueryRowContext(ctx, "SELECT to_regclass($1 || '.goose_db_version') IS NOT NULL AND to_regclass($2 || '.goose_db_version') IS NOT NULL",
		m.schema, pgx.Identifier{schema.IntakeSchema}.Sanitize()).Scan(&ready)
	if err != nil {
		return 0, fmt.Errorf("check migrations: %w", err)
	}
	if ready {
		if pending, err := m.Pending(ctx); err == nil && !pending {
			return 0, nil
		}
	}
	n := 0
	for _, step := range []struct {
		schema   string
		provider *goose.Provider
	}{{m.schema, m.projection}, {pgx.Identifier{schema.IntakeSchema}.Sanitize(), m.intake}} {
		if _, err := m.db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+step.schema); err != nil {
			return n, fmt.Errorf("create schema %s: %w", step.schema, err)
		}
		results, err := step.provider.Up(ctx)
		if err != nil {
			return n, fmt.Errorf("migrate %s up: %w", step.schema, err)
		}
		n += len(results)
	}
	return n, nil
}

// Pending reports whether migrations remain to be applied.
func (m *Migrator) Pending(ctx context.Context) (bool, error) {
	for _, p := range []*goose.Provider{m.projection, m.intake} {
		pending, err := p.HasPending(ctx)
		if err != nil {
			return false, fmt.Errorf("check migrations: %w", err)
		}
		if pending {
			return true, nil
		}
	}
	return false, nil
}

// Close releases the migrator's connection handle (not the pool).
func (m *Migrator) Close() error { return m.db.Close() }
