package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/outbox"
	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/read"
	"github.com/votewatch/votewatch/projections/rebuild"
)

// AdminDatabase locates the database of the maintenance commands.
type AdminDatabase struct {
	// URL is the database; empty attaches to the running demo's private
	// cluster under DataDir (default: the user cache dir).
	URL     string
	DataDir string
}

// OpenAdminDatabase connects Pool for a maintenance command and returns the
// DSN it used.
func (a *App) OpenAdminDatabase(ctx context.Context, cfg AdminDatabase) (string, error) {
	dsn := cfg.URL
	if dsn == "" {
		dir := cfg.DataDir
		if dir == "" {
			var err error
			if dir, err = postgres.DefaultDir(); err != nil {
				return "", err
			}
		}
		var err error
		if dsn, err = postgres.AttachCluster(dir + "/postgres"); err != nil {
			return "", fmt.Errorf("DATABASE_URL is not set and %w", err)
		}
	}
	pool, err := postgres.Connect(ctx, dsn, 8)
	if err != nil {
		return "", err
	}
	a.OnClose(pool.Close)
	a.Pool = pool
	return dsn, nil
}

// ReplayLog reads the log for a replay or a recount through the Kafka
// infrastructure.
type ReplayLog struct {
	Config kafka.Config
	Log    *kafka.Log
}

// HighWatermarks returns where each partition of topic ends.
func (l ReplayLog) HighWatermarks(ctx context.Context, topic string) (map[int32]int64, error) {
	return l.Log.HighWatermarks(ctx, topic)
}

// LowWatermarks returns where each partition of topic starts.
func (l ReplayLog) LowWatermarks(ctx context.Context, topic string) (map[int32]int64, error) {
	return l.Log.LowWatermarks(ctx, topic)
}

// ReadRange reads topic's records from from up to to, in batches.
func (l ReplayLog) ReadRange(ctx context.Context, topic string, from, to map[int32]int64, fn func([]projections.LogRecord) error) error {
	buf := make([]projections.LogRecord, 0, 8192)
	return kafka.ReadRange(ctx, l.Config, topic, from, to, func(recs []kafka.Record) error {
		buf = buf[:0]
		for _, r := range recs {
			buf = append(buf, projections.LogRecord(r))
		}
		return fn(buf)
	})
}

// ReplayLog is a's log for a replay or a recount (after OpenLog).
func (a *App) ReplayLog() ReplayLog { return ReplayLog{a.Kafka, a.KafkaLog} }

// NewRebuilder wires a Rebuilder to the database and the log.
func NewRebuilder(log *slog.Logger, pool *pgxpool.Pool, dsn string, kcfg kafka.Config, klog *kafka.Log) (*rebuild.Rebuilder, error) {
	open := func(ctx context.Context, schema string) (*pgxpool.Pool, error) {
		p, err := postgres.ConnectSchema(ctx, dsn, schema, 4)
		if err != nil {
			return nil, err
		}
		if err := Migrate(ctx, log, p); err != nil {
			p.Close()
			return nil, err
		}
		return p, nil
	}
	return rebuild.NewRebuilder(pool, postgres.Schema, open, ReplayLog{kcfg, klog}, log)
}

// IntakeCheck reconciles the intake with the log, both ways (skipped
// reports a database without the intake): every vote it accepted is in the
// log or pending, and, once it serves stations, every station-stamped vote
// in the log is one it accepted (by its keyed digest, given digestKey). It
// connects to Kafka only if there is something to look for: verifying a
// database whose intake took nothing needs no broker.
func (a *App) IntakeCheck(ctx context.Context, kcfg kafka.Config, digestKey []byte) (checks []read.Check, skipped bool) {
	accepted := read.Check{Name: "every vote the intake accepted is in the votes topic or pending in the outbox"}
	stamped := read.Check{Name: "every vote in the log stamped with a station was accepted by the intake"}
	if len(digestKey) > 0 {
		stamped.Name += ", as the intake's keyed digest of it says"
	}
	rec, err := outbox.Reconcile(ctx, a.Pool, &lazyVotesLog{cfg: kcfg, app: a}, digestKey)
	switch {
	case err != nil:
		accepted.Detail = err.Error()
		return []read.Check{accepted}, false
	case !rec.Deployed:
		accepted.Detail = "skipped: no intake schema"
		return []read.Check{accepted}, true
	case rec.Lost > 0:
		accepted.Detail = fmt.Sprintf("%d of %d accepted votes are neither in the votes topic nor in the outbox (%d still pending there), e.g. %s",
			rec.Lost, rec.Accepted, rec.Pending, strings.Join(rec.Examples, ", "))
	default:
		accepted.OK = true
	}
	if rec.Served == 0 {
		return []read.Check{accepted}, false
	}
	var problems []string
	if rec.Unaccepted > 0 {
		problems = append(problems, fmt.Sprintf("%d votes in the log bear a station but were never accepted by the intake (or differ from what it accepted), e.g. %s",
			rec.Unaccepted, strings.Join(rec.UnacceptedExamples, ", ")))
	}
	if rec.Unserved > 0 {
		problems = append(problems, fmt.Sprintf("%d station openings or closes in the log name a station the intake does not serve, e.g. %s",
			rec.Unserved, strings.Join(rec.UnservedExamples, ", ")))
	}
	stamped.Detail, stamped.OK = strings.Join(problems, "; "), len(problems) == 0
	return []read.Check{accepted, stamped}, false
}

// lazyVotesLog connects to Kafka on first use.
type lazyVotesLog struct {
	cfg kafka.Config
	app *App
}

func (l *lazyVotesLog) connect() (*kafka.Log, error) {
	if l.app.KafkaLog == nil {
		if err := l.app.OpenLog(l.cfg); err != nil {
			return nil, err
		}
	}
	return l.app.KafkaLog, nil
}

func (l *lazyVotesLog) LowWatermarks(ctx context.Context, topic string) (map[int32]int64, error) {
	klog, err := l.connect()
	if err != nil {
		return nil, err
	}
	return klog.LowWatermarks(ctx, topic)
}

func (l *lazyVotesLog) HighWatermarks(ctx context.Context, topic string) (map[int32]int64, error) {
	klog, err := l.connect()
	if err != nil {
		return nil, err
	}
	return klog.HighWatermarks(ctx, topic)
}

func (l *lazyVotesLog) ReadRange(ctx context.Context, topic string, from, to map[int32]int64, fn func([]kafka.Record) error) error {
	return kafka.ReadRange(ctx, l.cfg, topic, from, to, fn)
}

// RecordAction appends an operator action to the operator actions topic.
func RecordAction(kcfg kafka.Config, action, detail string) error {
	pub, err := kafka.NewPublisher(kcfg)
	if err != nil {
		return err
	}
	defer pub.Close()
	return kafka.RecordAction(pub, action, detail, "ok")
}
