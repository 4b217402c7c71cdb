// Package postgres connects to PostgreSQL, applies the schema migrations and,
// when no database is configured, runs a private cluster from the installed
// server binaries.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// Migrator applies the embedded schema migrations to the pool's schema.
type Migrator struct {
	db       *sql.DB
	provider *goose.Provider
	schema   string
}

// NewMigrator returns a migrator over pool. Concurrent migrators (several
// processes starting at once) serialise on a Postgres advisory lock.
func NewMigrator(pool *pgxpool.Pool) (*Migrator, error) {
	if pool == nil {
		return nil, errors.New("new migrator: nil pool")
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("new migrator: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	provider, err := goose.NewProvider(goose.DialectPostgres, db, schema.Migrations, goose.WithSessionLocker(locker))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("new migrator: %w", err)
	}
	target := pool.Config().ConnConfig.RuntimeParams["search_path"]
	if target == "" {
		target = pgx.Identifier{Schema}.Sanitize()
	}
	return &Migrator{db: db, provider: provider, schema: target}, nil
}

// Up creates the pool's schema if needed, applies every pending migration
// in it and returns how many ran.
func (m *Migrator) Up(ctx context.Context) (int, error) {
	if _, err := m.db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+m.schema); err != nil {
		return 0, fmt.Errorf("create schema: %w", err)
	}
	results, err := m.provider.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate up: %w", err)
	}
	return len(results), nil
}

// Pending reports whether migrations remain to be applied.
func (m *Migrator) Pending(ctx context.Context) (bool, error) {
	pending, err := m.provider.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("check migrations: %w", err)
	}
	return pending, nil
}

// Close releases the migrator's connection handle (not the pool).
func (m *Migrator) Close() error { return m.db.Close() }
