package rebuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/audit"
	"github.com/votewatch/votewatch/projections/internal/db"
	"github.com/votewatch/votewatch/projections/internal/dbutil"
	"github.com/votewatch/votewatch/projections/read"
	"github.com/votewatch/votewatch/projections/trees"
	"github.com/votewatch/votewatch/projections/write"
	"github.com/votewatch/votewatch/transparency"
)

// ErrReplayRunning is returned when another replay holds the replay lock.
var ErrReplayRunning = errors.New("another replay is running")

// replayLockKey serialises replays (a session lock: a killed replay
// releases it with its connection).
const replayLockKey int64 = 0x766f7465_7265706c // "votereplay"

// SchemaOpener opens a pool whose sessions use schema, creating and
// migrating the schema first.
type SchemaOpener func(ctx context.Context, schema string) (*pgxpool.Pool, error)

// ReplayMode says what a replay does with the projection it rebuilt.
type ReplayMode int

const (
	// ReplaySwap makes the rebuilt projection the live one.
	ReplaySwap ReplayMode = iota
	// ReplayVerify compares the rebuilt projection with the live one and
	// changes nothing.
	ReplayVerify
)

// ReplayOptions tune one replay.
type ReplayOptions struct {
	Mode ReplayMode
	// KeepRetired keeps the replaced projection (as <schema>_retired_<time>)
	// after a swap, for inspection or rollback.
	KeepRetired bool
	// KeepRebuilt keeps a verify run's rebuilt schema.
	KeepRebuilt bool
	// Progress is called as events are read, with the total to read.
	Progress func(done, total int64)
	// AllowTruncatedLog rebuilds even when a topic no longer starts at
	// offset 0 (ErrTruncatedLog): the result then misses the lost events.
	AllowTruncatedLog bool
	// Secret, when set, rebuilds the transparency tree too, by the epochs
	// the checkpoints topic records, and compares its root with the live
	// one's. Without it the rebuilt projection has no tree.
	Secret transparency.Secret
	// AcceptDiff swaps even when the trees' roots differ (ErrRootsDiffer):
	// the published history changes, and the caller records that as an
	// operator action.
	AcceptDiff bool
}

// ErrRootsDiffer refuses a swap that would change the published history:
// the rebuilt trees' roots differ from the live ones' at the same size.
var ErrRootsDiffer = errors.New("the rebuilt transparency trees differ from the live ones (--accept-diff swaps anyway, and records it)")

// ReplayReport says what a replay did.
type ReplayReport struct {
	Schema        string
	EventsRead    map[string]int64
	Ballots       int64
	Rejected      map[string]int64
	DeadLettered  int64
	CaughtUp      int64
	Duration      time.Duration
	BulkVotes     int64
	BulkVoteTime  time.Duration
	Swapped       bool
	Retired       string
	Differences   []projections.TableDiff
	Watermarks    map[string]map[int32]int64
	LockedFor     time.Duration
	VerifiedTable int
	// TreeDiffs describes how the rebuilt tree differs from the live
	// one; TreesCompared is 1 when two non-empty trees were compared (0
	// without a secret).
	TreeDiffs     []string
	TreesCompared int
}

// Rate is events read per second over the whole replay.
func (r ReplayReport) Rate() float64 {
	var n int64
	for _, v := range r.EventsRead {
		n += v
	}
	return float64(n) / r.Duration.Seconds()
}

// Rebuilder rebuilds the projection from the log into a fresh schema while
// the live one keeps serving, then verifies it against the live one or
// swaps it in.
type Rebuilder struct {
	live       *pgxpool.Pool
	liveSchema string
	open       SchemaOpener
	// events is the Kafka log replayed; log the slog logger, as everywhere.
	events projections.ReplayLog
	log    *slog.Logger
	// opener decodes votes as the live projector does (domain.Opener):
	// sealed choices opened, clear ones refused if sealing is required.
	opener *domain.Opener
}

// OpenWith has the replay decode votes through o, which must be set as the
// live projector's is (the same tally key and require-sealed setting), or
// the replay decides differently. Call it before Run.
func (r *Rebuilder) OpenWith(o *domain.Opener) { r.opener = o }

// NewRebuilder returns a rebuilder for the projection in liveSchema, read
// and swapped through live.
func NewRebuilder(live *pgxpool.Pool, liveSchema string, open SchemaOpener, events projections.ReplayLog, log *slog.Logger) (*Rebuilder, error) {
	if live == nil || open == nil || events == nil || log == nil || liveSchema == "" {
		return nil, errors.New("new rebuilder: missing pool, schema, opener, event log or logger")
	}
	return &Rebuilder{live: live, liveSchema: liveSchema, open: open, events: events, log: log}, nil
}

// Run rebuilds the projection from offset 0 up to the end of the log as of
// its start, catches up with what arrived meanwhile, and then swaps or
// verifies (opt.Mode). The live projection is untouched until the swap,
// which is one transaction: a replay that fails or is killed at any point
// leaves it as it was, and the next replay starts over.
func (r *Rebuilder) Run(ctx context.Context, opt ReplayOptions) (ReplayReport, error) {
	start := time.Now()
	rep := ReplayReport{EventsRead: map[string]int64{}, Rejected: map[string]int64{}}
	if !opt.AllowTruncatedLog {
		if err := audit.CheckLogComplete(ctx, r.events); err != nil {
			return rep, fmt.Errorf("replay: %w (--allow-truncated-log rebuilds what is left)", err)
		}
	}

	lock, err := r.live.Acquire(ctx)
	if err != nil {
		return rep, fmt.Errorf("replay: %w", err)
	}
	defer lock.Release()
	var got bool
	if err := lock.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", replayLockKey).Scan(&got); err != nil {
		return rep, fmt.Errorf("replay lock: %w", err)
	}
	if !got {
		return rep, ErrReplayRunning
	}
	defer func() { _, _ = lock.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", replayLockKey) }()

	if err := r.dropSchemas(ctx, r.liveSchema+"_replay_%"); err != nil {
		return rep, err
	}
	rep.Schema = fmt.Sprintf("%s_replay_%s", r.liveSchema, time.Now().UTC().Format("20060102_150405"))
	pool, err := r.open(ctx, rep.Schema)
	if err != nil {
		return rep, fmt.Errorf("create %s: %w", rep.Schema, err)
	}
	keep := false
	defer func() {
		pool.Close()
		if !keep {
			if err := r.dropSchema(context.WithoutCancel(ctx), rep.Schema); err != nil {
				r.log.Warn("drop rebuilt schema", "schema", rep.Schema, "err", err)
			}
		}
	}()
	store := write.NewRebuildStore(pool, r.opener)
	// The voters the registrations register, kept for deciding the votes
	// (loadVotes checks they are the whole register).
	kept := map[string]domain.Voter{}
	store.OnRegistered(func(rows []db.ApplyVotersRow) {
		for _, v := range rows {
			kept[v.VoterID] = domain.UnmarshalVoterFromDatabase(v.VoterID, v.Gender, v.BirthDate.Time, v.Region)
		}
	})
	r.log.Debug("replay step", "step", "schema created", "schema", rep.Schema, "since start", time.Since(start))

	// The log's end now is what this replay rebuilds; whatever arrives
	// later is caught up incrementally.
	low := map[string]map[int32]int64{}
	rep.Watermarks = map[string]map[int32]int64{}
	var total int64
	for _, t := range domain.EventTopics {
		if low[t], err = r.events.LowWatermarks(ctx, t); err != nil {
			return rep, err
		}
		if rep.Watermarks[t], err = r.events.HighWatermarks(ctx, t); err != nil {
			return rep, err
		}
		for p, h := range rep.Watermarks[t] {
			total += h - low[t][p]
		}
	}
	var done atomic.Int64
	progress := func(n int) {
		v := done.Add(int64(n))
		if opt.Progress != nil {
			opt.Progress(v, total)
		}
	}
	progress(0)

	// Registrations first: a vote is decided against the full register.
	for _, t := range domain.RegistrationTopics {
		n, err := r.applyRange(ctx, store, t, low[t], rep.Watermarks[t], progress)
		if err != nil {
			return rep, err
		}
		rep.EventsRead[t] = n
	}
	bulkStart := time.Now()
	r.log.Debug("replay step", "step", "registrations replayed", "since start", time.Since(start))
	// Catch-up decides with the same rule 0 as the load: the topic's
	// partition count is the log's.
	store.SetVotePartitions(len(rep.Watermarks[domain.TopicVotes]))
	store.OnRegistered(nil) // catch-up registers through the live path's facts
	n, err := r.loadVotes(ctx, pool, store, kept, low[domain.TopicVotes], rep.Watermarks[domain.TopicVotes], progress)
	if err != nil {
		return rep, err
	}
	rep.EventsRead[domain.TopicVotes] = n
	// Station reports and operator actions decide no vote: after the
	// votes, each in its own order.
	for _, t := range []string{domain.TopicStations, domain.TopicOperatorActions} {
		if rep.EventsRead[t], err = r.applyRange(ctx, store, t, low[t], rep.Watermarks[t], progress); err != nil {
			return rep, err
		}
	}
	rep.BulkVotes, rep.BulkVoteTime = n, time.Since(bulkStart)
	r.log.Debug("replay step", "step", "votes replayed", "since start", time.Since(start))

	// Catch up with events published during the rebuild, a few rounds, so
	// the last step, done under the swap lock, is short.
	for round := 0; round < 5; round++ {
		n, err := r.catchUp(ctx, pool, store, nil)
		if err != nil {
			return rep, err
		}
		rep.CaughtUp += n
		if n < 2000 {
			break
		}
	}

	if opt.Mode == ReplayVerify {
		if err := r.waitForLive(ctx, pool); err != nil {
			return rep, err
		}
	}
	var tree *trees.Tree
	var treeDiff string
	if len(opt.Secret) > 0 {
		// Most of the tree now, outside the swap lock, by the epochs
		// the log records.
		if tree, treeDiff, err = r.rebuildTree(ctx, pool, opt.Secret); err != nil {
			return rep, err
		}
	}
	// The final step: with every live reader and writer held off, bring the
	// rebuilt projection exactly to where the live one is, then compare or
	// swap.
	tx, err := r.live.Begin(ctx)
	if err != nil {
		return rep, fmt.Errorf("begin swap: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	lockedAt := time.Now()
	r.log.Debug("replay step", "step", "caught up, swap lock asked", "since start", time.Since(start))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", dbutil.SwapLockKey); err != nil {
		return rep, fmt.Errorf("take swap lock: %w", err)
	}
	liveOffsets, err := dbutil.AppliedOffsets(ctx, db.New(tx))
	if err != nil {
		return rep, err
	}
	n, err = r.catchUp(ctx, pool, store, liveOffsets)
	if err != nil {
		return rep, err
	}
	rep.CaughtUp += n
	if err := r.summarise(ctx, pool, &rep); err != nil {
		return rep, err
	}
	if tree != nil {
		if rep.TreeDiffs, rep.TreesCompared, err = r.finishTree(ctx, tx, pool, tree, treeDiff); err != nil {
			return rep, err
		}
	}

	if opt.Mode == ReplayVerify {
		rep.Differences, rep.VerifiedTable, err = compareProjections(ctx, tx, r.liveSchema, rep.Schema)
		rep.LockedFor = time.Since(lockedAt)
		keep = opt.KeepRebuilt
		rep.Duration = time.Since(start)
		return rep, err
	}

	if tree == nil {
		// Without the secret the rebuilt projection has no tree: the
		// live checkpointer would regrow it from the rebuilt decisions,
		// unchecked against what was published.
		live, err := liveTreeSize(ctx, tx)
		if err != nil {
			return rep, fmt.Errorf("read the live tree: %w", err)
		}
		if live > 0 {
			rep.TreeDiffs = append(rep.TreeDiffs, fmt.Sprintf("the live tree of %d leaves not rebuilt: no election secret to rebuild its leaves", live))
		}
	}
	if len(rep.TreeDiffs) > 0 && !opt.AcceptDiff {
		rep.Duration = time.Since(start)
		return rep, ErrRootsDiffer
	}
	// The checkpoints published stay published: the rebuilt projection
	// serves them too.
	if err := carryCheckpoints(ctx, tx, rep.Schema, r.liveSchema); err != nil {
		return rep, err
	}
	// So do the released figures: the rebuilt projection's releaser steps
	// on from what was published, never by less than k (README, "What is
	// published").
	if err := write.CarryReleased(ctx, tx, r.liveSchema, rep.Schema); err != nil {
		return rep, err
	}
	marks, _ := json.Marshal(rep.Watermarks)
	if err := db.New(pool).MarkBuilt(ctx, db.MarkBuiltParams{BuiltBy: "replay", Watermarks: marks}); err != nil {
		return rep, fmt.Errorf("mark rebuilt projection: %w", err)
	}
	rep.Retired = fmt.Sprintf("%s_retired_%s", r.liveSchema, time.Now().UTC().Format("20060102_150405"))
	if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER SCHEMA %s RENAME TO %s; ALTER SCHEMA %s RENAME TO %s",
		dbutil.Ident(r.liveSchema), dbutil.Ident(rep.Retired), dbutil.Ident(rep.Schema), dbutil.Ident(r.liveSchema))); err != nil {
		return rep, fmt.Errorf("swap schemas: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return rep, fmt.Errorf("commit swap: %w", err)
	}
	rep.LockedFor = time.Since(lockedAt)
	rep.Swapped, keep = true, true // the rebuilt schema is live now
	if !opt.KeepRetired {
		if err := r.dropSchema(ctx, rep.Retired); err != nil {
			return rep, err
		}
		rep.Retired = ""
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

func (r *Rebuilder) dropSchema(ctx context.Context, schema string) error {
	if _, err := r.live.Exec(ctx, "DROP SCHEMA IF EXISTS "+dbutil.Ident(schema)+" CASCADE"); err != nil {
		return fmt.Errorf("drop schema %s: %w", schema, err)
	}
	return nil
}

// dropSchemas removes what killed replays left behind.
func (r *Rebuilder) dropSchemas(ctx context.Context, like string) error {
	rows, err := r.live.Query(ctx, "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", like)
	if err != nil {
		return fmt.Errorf("list stale schemas: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list stale schemas: %w", err)
	}
	for _, n := range names {
		r.log.Info("dropping what an earlier replay left", "schema", n)
		if err := r.dropSchema(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// catchUp applies, topic by topic (registrations first), what lies between
// the rebuilt projection's applied offsets and to (the log's end when nil).
func (r *Rebuilder) catchUp(ctx context.Context, pool *pgxpool.Pool, store *write.Store, to map[string]map[int32]int64) (int64, error) {
	var total int64
	for _, t := range domain.EventTopics {
		from, err := dbutil.AppliedOffsets(ctx, db.New(pool))
		if err != nil {
			return total, err
		}
		end := map[int32]int64{}
		if to != nil {
			end = to[t]
		} else if end, err = r.events.HighWatermarks(ctx, t); err != nil {
			return total, err
		}
		n, err := r.applyRange(ctx, store, t, from[t], end, func(int) {})
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// waitForLive waits until the live projection has applied at least what
// the rebuilt one has, so the two can be compared at the same position.
func (r *Rebuilder) waitForLive(ctx context.Context, pool *pgxpool.Pool) error {
	rebuilt, err := dbutil.AppliedOffsets(ctx, db.New(pool))
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		live, err := dbutil.AppliedOffsets(ctx, db.New(r.live))
		if err != nil {
			return err
		}
		behind := 0
		for t, parts := range rebuilt {
			for p, off := range parts {
				if live[t][p] < off {
					behind++
				}
			}
		}
		if behind == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the live projection is behind the log on %d partitions and not catching up; is the projector running? (compare needs both at one position)", behind)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// applyRange applies a topic's events between offsets through store, in
// the live path's batches, and returns how many it read. Two stages
// overlap: reading and decoding a chunk (Go) runs ahead of applying the
// one before (the database), which applies the chunks one by one, in
// log order.
func (r *Rebuilder) applyRange(ctx context.Context, store *write.Store, topic string, from, to map[int32]int64, progress func(int)) (int64, error) {
	var n int64
	prepared := make(chan preparedChunk, 2)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(prepared)
		return r.events.ReadRange(gctx, topic, from, to, func(recs []projections.LogRecord) error {
			n += int64(len(recs))
			for chunk := range slices.Chunk(recs, 5000) {
				// A copy: ReadRange reuses recs, and the chunk is applied
				// after this returns.
				c := r.prepare(topic, slices.Clone(chunk))
				select {
				case prepared <- c:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
	})
	var applying, waiting time.Duration
	g.Go(func() error {
		for {
			t := time.Now()
			c, ok := <-prepared
			waiting += time.Since(t)
			if !ok {
				return nil
			}
			t = time.Now()
			if err := c.apply(gctx, store); err != nil {
				return err
			}
			applying += time.Since(t)
			progress(c.n)
		}
	})
	if err := g.Wait(); err != nil {
		return n, fmt.Errorf("replay %s: %w", topic, err)
	}
	if n > 0 {
		r.log.Debug("replayed a topic", "topic", topic, "events", n, "applying", applying, "waiting for decoded events", waiting)
	}
	return n, nil
}

// preparedChunk is a chunk of n records, decoded where that is worth
// doing ahead, and what applies it.
type preparedChunk struct {
	n     int
	apply func(ctx context.Context, store *write.Store) error
}

// prepare decodes a registration topic's records ahead (the replay's
// bulk of them); the other topics' few records are decoded as they are
// applied.
func (r *Rebuilder) prepare(topic string, recs []projections.LogRecord) preparedChunk {
	c := preparedChunk{n: len(recs)}
	switch topic {
	case domain.TopicContests:
		c.apply = applyRegistrations(r.events, topic, recs, domain.DecodeContestRegistered,
			func(ctx context.Context, store *write.Store, batch []projections.Envelope[domain.ContestRegistered]) error {
				_, err := store.ApplyContests(ctx, batch)
				return err
			})
	case domain.TopicCandidates:
		c.apply = applyRegistrations(r.events, topic, recs, domain.DecodeCandidateRegistered,
			func(ctx context.Context, store *write.Store, batch []projections.Envelope[domain.CandidateRegistered]) error {
				_, err := store.ApplyCandidates(ctx, batch)
				return err
			})
	case domain.TopicVoters:
		c.apply = applyRegistrations(r.events, topic, recs, domain.DecodeVoterRegistered,
			func(ctx context.Context, store *write.Store, batch []projections.Envelope[domain.VoterRegistered]) error {
				_, err := store.ApplyVoters(ctx, batch)
				return err
			})
	default:
		c.apply = func(ctx context.Context, store *write.Store) error { return r.applyRecords(ctx, store, topic, recs) }
	}
	return c
}

// applyRecords applies records of the topics prepare does not decode
// ahead.
func (r *Rebuilder) applyRecords(ctx context.Context, store *write.Store, topic string, recs []projections.LogRecord) error {
	switch topic {
	case domain.TopicStations:
		batch, err := decodeRecords(ctx, store, topic, recs, domain.DecodeStationReported)
		if err != nil || len(batch) == 0 {
			return err
		}
		return store.ApplyStationReports(ctx, batch)
	case domain.TopicOperatorActions:
		batch, err := decodeRecords(ctx, store, topic, recs, domain.DecodeOperatorActed)
		if err != nil || len(batch) == 0 {
			return err
		}
		return store.RecordOperatorActions(ctx, batch)
	default:
		return applyVotes(ctx, r.opener, store, recs)
	}
}

// applyVotes applies votes in batches cut at each control event (a
// schedule, a station's close marker), so that it is recorded before the
// votes that follow it.
func applyVotes(ctx context.Context, opener *domain.Opener, store *write.Store, recs []projections.LogRecord) error {
	flush := func(recs []projections.LogRecord) error {
		batch, err := decodeRecords(ctx, store, domain.TopicVotes, recs, opener.DecodeVoteCast)
		if err != nil || len(batch) == 0 {
			return err
		}
		_, err = store.ApplyVotes(ctx, batch)
		return err
	}
	start := 0
	for i, rec := range recs {
		control, ok, err := domain.DecodeVotesControl(rec.Value)
		if !ok {
			continue
		}
		if err := flush(recs[start:i]); err != nil {
			return err
		}
		start = i + 1
		pos := projections.Position{Topic: domain.TopicVotes, Partition: rec.Partition, Offset: rec.Offset, Time: rec.Time}
		if err != nil {
			if err := store.RecordDeadLetter(ctx, pos, err.Error(), rec.Value); err != nil {
				return err
			}
			continue
		}
		if err := store.RecordVotesControl(ctx, pos, control); err != nil {
			return err
		}
	}
	return flush(recs[start:])
}

// registrationRecord is a registration topic's record decoded: a close
// marker, an event, or what makes it a dead letter.
type registrationRecord[E any] struct {
	pos      projections.Position
	value    []byte
	isMarker bool
	marker   domain.RegistrationClosed
	event    E
	err      error
}

// applyRegistrations decodes a registration topic's records now and
// returns what applies them: in batches cut at each close marker, so that
// the marker is recorded before anything that follows it and a late
// registration is refused as it is live.
func applyRegistrations[E any](events projections.ReplayLog, topic string, recs []projections.LogRecord,
	decode func([]byte) (E, error), apply func(context.Context, *write.Store, []projections.Envelope[E]) error,
) func(context.Context, *write.Store) error {
	decoded := make([]registrationRecord[E], len(recs))
	for i, rec := range recs {
		d := &decoded[i]
		d.pos, d.value = projections.Position{Topic: topic, Partition: rec.Partition, Offset: rec.Offset, Time: rec.Time}, rec.Value
		if d.marker, d.isMarker, d.err = domain.DecodeRegistrationClosed(rec.Value); !d.isMarker {
			d.event, d.err = decode(rec.Value)
		}
	}
	return func(ctx context.Context, store *write.Store) error {
		// flush records the segment's dead letters, then applies its
		// events in one batch.
		flush := func(seg []registrationRecord[E]) error {
			batch := make([]projections.Envelope[E], 0, len(seg))
			for _, d := range seg {
				if errors.Is(d.err, domain.ErrTallyKey) {
					return d.err // not the message's fault: no dead letter
				}
				if d.err != nil {
					if err := store.RecordDeadLetter(ctx, d.pos, d.err.Error(), d.value); err != nil {
						return err
					}
					continue
				}
				batch = append(batch, projections.Envelope[E]{Event: d.event, Position: d.pos})
			}
			if len(batch) == 0 {
				return nil
			}
			return apply(ctx, store, batch)
		}
		start := 0
		for i, d := range decoded {
			if !d.isMarker {
				continue
			}
			if err := flush(decoded[start:i]); err != nil {
				return err
			}
			start = i + 1
			if d.err != nil {
				if err := store.RecordDeadLetter(ctx, d.pos, d.err.Error(), d.value); err != nil {
					return err
				}
				continue
			}
			ends, err := events.HighWatermarks(ctx, topic)
			if err != nil {
				return err
			}
			if _, err := store.CloseRegistration(ctx, d.pos, d.marker, len(ends)); err != nil {
				return err
			}
		}
		return flush(decoded[start:])
	}
}

// decodeRecords decodes records, recording undecodable ones as dead
// letters (not republished: the dead-letter topic already holds them).
func decodeRecords[E any](ctx context.Context, store *write.Store, topic string, recs []projections.LogRecord, decode func([]byte) (E, error)) ([]projections.Envelope[E], error) {
	out := make([]projections.Envelope[E], 0, len(recs))
	for _, rec := range recs {
		pos := projections.Position{Topic: topic, Partition: rec.Partition, Offset: rec.Offset, Time: rec.Time}
		ev, err := decode(rec.Value)
		if errors.Is(err, domain.ErrTallyKey) {
			return nil, err // not the message's fault: no dead letter
		}
		if err != nil {
			if err := store.RecordDeadLetter(ctx, pos, err.Error(), rec.Value); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, projections.Envelope[E]{Event: ev, Position: pos})
	}
	return out, nil
}

func (r *Rebuilder) summarise(ctx context.Context, pool *pgxpool.Pool, rep *ReplayReport) error {
	q := db.New(pool)
	t, err := q.GetTotals(ctx)
	if err != nil {
		return fmt.Errorf("summarise rebuilt projection: %w", err)
	}
	rep.Ballots, rep.DeadLettered = t.VotesCast, t.DeadLettered
	rows, err := q.ListRejectionTallies(ctx)
	if err != nil {
		return fmt.Errorf("summarise rebuilt projection: %w", err)
	}
	if rep.Rejected, err = read.RejectionCounts(rows); err != nil {
		return fmt.Errorf("summarise rebuilt projection: %w", err)
	}
	return nil
}

// compareProjections diffs every compared table (projections.Tables) of
// two projection schemas.
func compareProjections(ctx context.Context, tx pgx.Tx, live, rebuilt string) ([]projections.TableDiff, int, error) {
	var (
		diffs    []projections.TableDiff
		compared int
	)
	for _, c := range projections.Tables() {
		if c.Compare == "" {
			continue
		}
		compared++
		from := c.Source()
		a, b := dbutil.Ident(live)+"."+dbutil.Ident(from), dbutil.Ident(rebuilt)+"."+dbutil.Ident(from)
		q := fmt.Sprintf(`SELECT 'live', row(x.*)::text FROM (SELECT %[1]s FROM %[2]s EXCEPT ALL SELECT %[1]s FROM %[3]s) x
			UNION ALL SELECT 'rebuilt', row(y.*)::text FROM (SELECT %[1]s FROM %[3]s EXCEPT ALL SELECT %[1]s FROM %[2]s) y`, c.Compare, a, b)
		rows, err := tx.Query(ctx, q)
		if err != nil {
			return nil, 0, fmt.Errorf("compare %s: %w", c.Name, err)
		}
		d := projections.TableDiff{Table: c.Name}
		for rows.Next() {
			var side, row string
			if err := rows.Scan(&side, &row); err != nil {
				rows.Close()
				return nil, 0, fmt.Errorf("compare %s: %w", c.Name, err)
			}
			if side == "live" {
				d.OnlyLive++
			} else {
				d.OnlyRebuilt++
			}
			if len(d.Examples) < 5 {
				d.Examples = append(d.Examples, side+": "+row)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, 0, fmt.Errorf("compare %s: %w", c.Name, err)
		}
		if d.OnlyLive+d.OnlyRebuilt > 0 {
			diffs = append(diffs, d)
		}
	}
	return diffs, compared, nil
}
