// Package outbox is the write side's durable front door: votes accepted
// from polling stations are written, in the request's own transaction, to
// the intake's vote_id register and to a transactional outbox in
// PostgreSQL (watermill-sql); Watermill's forwarder relays the outbox to
// the Kafka votes topic. An accepted vote survives Kafka being down and the
// process crashing; a retried request is recognised and changes nothing.
package outbox

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/outbox/internal/db"
	"github.com/votewatch/votewatch/sql/schema"
)

// forwarderTopic is the SQL-side topic the forwarder listens on; every
// topic maps to the one outbox table.
const forwarderTopic = "votes_outbox"

func tableName(string) string { return schema.IntakeSchema + ".outbox" }

// Outbox accepts votes durably. Safe for concurrent use.
type Outbox struct {
	pool   *pgxpool.Pool
	schema wmsql.PostgreSQLQueueSchema
	log    watermill.LoggerAdapter
	cfg    Config
}

// MinDigestKeySize is the shortest digest key accepted, in bytes.
const MinDigestKeySize = 32

// Config is what the outbox needs to keep no choice anywhere it writes.
type Config struct {
	// DigestKey keys the HMAC kept per accepted vote_id to tell a retry
	// from a vote_id reused for another voter (at least MinDigestKeySize
	// bytes). It lives in a 0600 file, never in the database: without it
	// the stored MACs say nothing. Every intake process of an election
	// must share it. Empty: no MAC is kept, and every known vote_id is a
	// retry (the first vote stands).
	DigestKey []byte
	// TallyKey seals each vote's choice before it is stored (contract v2):
	// the outbox, and so the log, never hold it in clear. The zero key
	// stores and publishes clear v1 votes (what a clear log exposes:
	// README, "Secrecy").
	TallyKey domain.TallyPublicKey
	// VotePartitions tells the votes topic's partition count, for a
	// station's close markers (CloseStation); nil: stations cannot close.
	VotePartitions func() (int, error)
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if len(c.DigestKey) > 0 && len(c.DigestKey) < MinDigestKeySize {
		return fmt.Errorf("outbox: the digest key must be at least %d bytes (got %d)", MinDigestKeySize, len(c.DigestKey))
	}
	return nil
}

// New returns an outbox over pool (the intake migrations must be applied).
func New(pool *pgxpool.Pool, log watermill.LoggerAdapter, cfg Config) (*Outbox, error) {
	if pool == nil || log == nil {
		return nil, errors.New("new outbox: nil pool or logger")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Outbox{pool: pool, log: log, cfg: cfg, schema: wmsql.PostgreSQLQueueSchema{GenerateMessagesTableName: tableName}}, nil
}

// macPrefix versions what the MAC covers.
const macPrefix = "votewatch intake v2"

// mac is the keyed digest of what the station knows about a vote and the
// intake must hold it to on a retry: never the choice, so that neither the
// table nor the answer to a re-post depends on it.
func (o *Outbox) mac(v domain.Vote) []byte { return voteMAC(o.cfg.DigestKey, v) }

// voteMAC is the keyed digest of v under key (nil without a key): what the
// intake keeps of an accepted vote, and what Reconcile checks a vote in
// the log against.
func voteMAC(key []byte, v domain.Vote) []byte {
	if len(key) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, key)
	for _, p := range []string{macPrefix, v.ID(), v.VoterID(), v.ContestID(), v.CastAt().Format(time.RFC3339Nano), v.Station().ID()} {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// Accept stores votes from station and returns how many were new; the
// others had been accepted before (a retry). Either every vote is stored
// or none is. Each choice is sealed to the tally key (one encapsulation
// per call) before anything is written; votes a station sealed itself
// must be sealed to the same key.
//
// A known vote_id is a retry whatever choice it carries: the first one
// stands, and the answer does not depend on the choice (no oracle). A
// vote_id already accepted for another voter, contest, cast_at or station
// fails the whole call with domain.ErrVoteIDReused.
func (o *Outbox) Accept(ctx context.Context, station string, votes []domain.VoteCast) (int, error) {
	if len(votes) == 0 {
		return 0, nil
	}
	var sealer *domain.Sealer
	if !o.cfg.TallyKey.IsZero() {
		var err error
		if sealer, err = domain.NewSealer(o.cfg.TallyKey); err != nil {
			return 0, fmt.Errorf("accept votes: %w", err)
		}
	}
	params := db.InsertIntakeVotesParams{Station: station}
	payloads := make(map[string][]byte, len(votes))
	macs := make(map[string][]byte, len(votes))
	for i, v := range votes {
		id := v.Vote.ID()
		mac := o.mac(v.Vote)
		if prev, ok := macs[id]; ok {
			if prev != nil && !hmac.Equal(prev, mac) {
				return 0, fmt.Errorf("votes[%d].vote_id %s: %w", i, id, domain.ErrVoteIDReused)
			}
			continue // a vote repeated within the request: the first stands
		}
		if sealed, ok := v.Vote.Sealed(); ok && sealed.KeyID != o.cfg.TallyKey.ID() {
			problem := fmt.Sprintf("is sealed to tally key %q; this election's is %q (GET /api/v1/tally-key)", sealed.KeyID, o.cfg.TallyKey.ID())
			if o.cfg.TallyKey.IsZero() {
				problem = "is sealed, and this intake has no tally key to check it against: send candidate_id"
			}
			return 0, &domain.ValidationError{Field: fmt.Sprintf("votes[%d].sealed_choice", i), Problem: problem}
		}
		if sealer != nil {
			var err error
			if v.Vote, err = sealer.Seal(v.Vote); err != nil {
				return 0, fmt.Errorf("accept votes: %w", err)
			}
		}
		payload, err := json.Marshal(v)
		if err != nil {
			return 0, fmt.Errorf("encode vote %d: %w", i, err)
		}
		payloads[id], macs[id] = payload, mac
		params.VoteIDs = append(params.VoteIDs, id)
		params.Macs = append(params.Macs, mac)
	}

	// Read committed, whatever the server's default: the closed check
	// below must see a close committed while this waited for the lock.
	tx, err := o.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return 0, fmt.Errorf("accept votes: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	q := db.New(tx)
	// A station's close waits for this, and this sees a close committed
	// before it: no vote of a closed station is accepted, and every vote
	// accepted reaches the outbox before the close's markers.
	if err := q.LockIntakeStationShared(ctx, station); err != nil {
		return 0, fmt.Errorf("accept votes: lock the station: %w", err)
	}
	closed, err := q.IntakeStationClosed(ctx, station)
	if err != nil {
		return 0, fmt.Errorf("accept votes: station closed: %w", err)
	}
	if closed {
		// A retry of votes accepted before the close (its answer was
		// lost) is answered as a retry: they count, and the terminal
		// must not record them as refused.
		retried, err := o.acceptedBefore(ctx, q, params)
		if err != nil {
			return 0, err
		}
		if retried {
			return 0, nil
		}
		return 0, fmt.Errorf("station %s: %w", station, domain.ErrStationClosed)
	}
	inserted, err := q.InsertIntakeVotes(ctx, params)
	if err != nil {
		return 0, fmt.Errorf("accept votes: record: %w", err)
	}
	isNew := make(map[string]bool, len(inserted))
	for _, id := range inserted {
		isNew[id] = true
	}
	if err := o.checkRetries(ctx, q, params, isNew); err != nil {
		return 0, err
	}

	var msgs []*message.Message
	for _, v := range votes {
		id := v.Vote.ID()
		if !isNew[id] {
			continue
		}
		delete(isNew, id) // a vote repeated within the request goes out once
		msgs = append(msgs, kafka.KeyedMessage(v.Key(), payloads[id]))
	}
	clear(payloads)
	if len(msgs) == 0 {
		return 0, nil // every vote was a retry: nothing to store
	}
	if err := o.write(tx, domain.TopicVotes, msgs...); err != nil {
		return 0, fmt.Errorf("accept votes: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("accept votes: commit: %w", err)
	}
	return len(msgs), nil
}

// Serve opens the stations this intake serves (its station tokens, with
// their regions), before it takes any vote: in one transaction it records
// them, so that every vote in the log stamped with a station must then
// have been accepted by it (Reconcile), and writes to the outbox their
// opening on every votes partition (the rule's stations register, rule 7),
// ahead of every vote it accepts from now on. Serving again (a restart)
// opens them again, which changes nothing.
func (o *Outbox) Serve(ctx context.Context, stations []domain.Station) error {
	if len(stations) == 0 {
		return nil
	}
	opening, err := domain.NewStationOpened(time.Now(), stations...)
	if err != nil {
		return fmt.Errorf("serve stations: %w", err)
	}
	markers, err := o.onEveryVotesPartition(opening)
	if err != nil {
		return fmt.Errorf("serve stations: %w", err)
	}
	params := db.ServeIntakeStationsParams{}
	for _, s := range stations {
		params.Stations = append(params.Stations, s.ID())
		params.Regions = append(params.Regions, s.Region().String())
	}
	tx, err := o.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("serve stations: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	moved, err := db.New(tx).ServeIntakeStations(ctx, params)
	if err != nil {
		return fmt.Errorf("serve stations: record them: %w", err)
	}
	if len(moved) > 0 {
		// Its first opening fixed its region (rule 7): served under
		// another, every vote would be unknown_station.
		m := moved[0]
		return fmt.Errorf("serve stations: station %s opened in %s, and the tokens file now says %s: a station's region is fixed for the election, so give the terminal a new station name (and revoke the old token): %w",
			m.Station, m.ServedRegion, m.AskedRegion, domain.ErrInvalid)
	}
	if err := o.write(tx, domain.TopicVotes, markers...); err != nil {
		return fmt.Errorf("serve stations: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("serve stations: commit: %w", err)
	}
	return nil
}

// CloseStation closes station for good (issue 24 §2) and reports whether
// this call closed it (false: it was closed before, and nothing more is
// written). In one transaction, after every vote accepted from the station
// (LockIntakeStation), it records the close, so that the intake refuses
// the station's votes from now on, and writes to the outbox, in order: a
// close marker on every votes partition (the rule's: a vote of the station
// after it is after_station_close), the station's close report (report,
// for reporting and the canvass) and the operator action.
func (o *Outbox) CloseStation(ctx context.Context, station string, report domain.StationReported) (bool, error) {
	if !report.Closed() || report.Station().ID() != station {
		return false, fmt.Errorf("close station %s: the report is not its close report", station)
	}
	marker, err := domain.NewStationClosed(report.ReportedAt(), station)
	if err != nil {
		return false, fmt.Errorf("close station %s: %w", station, err)
	}
	markers, err := o.onEveryVotesPartition(marker)
	if err != nil {
		return false, fmt.Errorf("close station %s: %w", station, err)
	}
	rep, err := kafka.EventMessage(report)
	if err != nil {
		return false, fmt.Errorf("close station %s: %w", station, err)
	}
	detail := "station " + station + " reported closed"
	if n, ok := report.Ballots(); ok {
		detail += fmt.Sprintf(", %d ballots", n)
	}
	action, err := kafka.ActionMessage(domain.ActionStationClosed, detail, "ok")
	if err != nil {
		return false, fmt.Errorf("close station %s: %w", station, err)
	}

	tx, err := o.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return false, fmt.Errorf("close station %s: begin: %w", station, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	q := db.New(tx)
	if err := q.LockIntakeStation(ctx, station); err != nil {
		return false, fmt.Errorf("close station %s: lock: %w", station, err)
	}
	var ballots pgtype.Int8
	if n, ok := report.Ballots(); ok {
		ballots = pgtype.Int8{Int64: n, Valid: true}
	}
	closed, err := q.CloseIntakeStation(ctx, db.CloseIntakeStationParams{Station: station, Ballots: ballots})
	if err != nil {
		return false, fmt.Errorf("close station %s: record: %w", station, err)
	}
	if len(closed) == 0 {
		return false, nil // closed before: its close is on its way or in the log
	}
	for _, m := range []struct {
		topic string
		msgs  []*message.Message
	}{{domain.TopicVotes, markers}, {domain.TopicStations, []*message.Message{rep}}, {domain.TopicOperatorActions, []*message.Message{action}}} {
		if err := o.write(tx, m.topic, m.msgs...); err != nil {
			return false, fmt.Errorf("close station %s: %w", station, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("close station %s: commit: %w", station, err)
	}
	return true, nil
}

// write adds msgs for topic to the outbox in tx: the relay forwards them,
// in the order written, once tx commits.
func (o *Outbox) write(tx pgx.Tx, topic string, msgs ...*message.Message) error {
	pub, err := wmsql.NewPublisher(wmsql.TxFromPgx(tx), wmsql.PublisherConfig{SchemaAdapter: o.schema}, o.log)
	if err != nil {
		return fmt.Errorf("outbox publisher: %w", err)
	}
	if err := forwarder.NewPublisher(pub, forwarder.PublisherConfig{ForwarderTopic: forwarderTopic}).Publish(topic, msgs...); err != nil {
		return fmt.Errorf("write outbox: %w", err)
	}
	return nil
}

// onEveryVotesPartition is a control event's message for each partition
// of the votes topic (a station's opening or close marker).
func (o *Outbox) onEveryVotesPartition(control interface{ MarshalJSON() ([]byte, error) }) ([]*message.Message, error) {
	if o.cfg.VotePartitions == nil {
		return nil, errors.New("the outbox does not know the votes topic's partitions")
	}
	parts, err := o.cfg.VotePartitions()
	if err != nil {
		return nil, err
	}
	body, err := control.MarshalJSON()
	if err != nil {
		return nil, err
	}
	msgs := make([]*message.Message, parts)
	for p := range parts {
		msgs[p] = kafka.PartitionedMessage(p, body)
	}
	return msgs, nil
}

// acceptedBefore reports whether every vote of params was accepted before,
// as the same vote (its keyed digest, where one was kept).
func (o *Outbox) acceptedBefore(ctx context.Context, q *db.Queries, params db.InsertIntakeVotesParams) (bool, error) {
	rows, err := q.IntakeMACs(ctx, params.VoteIDs)
	if err != nil {
		return false, fmt.Errorf("accept votes: read earlier votes: %w", err)
	}
	stored := make(map[string][]byte, len(rows))
	for _, r := range rows {
		stored[r.VoteID] = r.Mac
	}
	for i, id := range params.VoteIDs {
		prev, known := stored[id]
		if !known || (prev != nil && !hmac.Equal(prev, params.Macs[i])) {
			return false, nil
		}
	}
	return true, nil
}

// checkRetries confirms that every vote not newly recorded was recorded
// before for the same voter, contest, time and station (the MAC never
// covers the choice). A row older than the keyed MAC has none: a retry.
func (o *Outbox) checkRetries(ctx context.Context, q *db.Queries, params db.InsertIntakeVotesParams, isNew map[string]bool) error {
	var known []string
	for _, id := range params.VoteIDs {
		if !isNew[id] {
			known = append(known, id)
		}
	}
	if len(known) == 0 {
		return nil
	}
	rows, err := q.IntakeMACs(ctx, known)
	if err != nil {
		return fmt.Errorf("accept votes: read earlier votes: %w", err)
	}
	stored := make(map[string][]byte, len(rows))
	for _, r := range rows {
		stored[r.VoteID] = r.Mac
	}
	for i, id := range params.VoteIDs {
		if prev := stored[id]; !isNew[id] && prev != nil && !hmac.Equal(prev, params.Macs[i]) {
			return fmt.Errorf("votes[%d].vote_id %s: %w", i, id, domain.ErrVoteIDReused)
		}
	}
	return nil
}

// Backlog returns how many accepted votes wait to be relayed to Kafka and
// how long the oldest has waited.
func (o *Outbox) Backlog(ctx context.Context) (int64, time.Duration, error) {
	row, err := db.New(o.pool).OutboxBacklog(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("outbox backlog: %w", err)
	}
	return row.Pending, time.Duration(row.OldestSeconds * float64(time.Second)), nil
}

// ackedRowsOnly deletes only the outbox rows Kafka has taken.
//
// watermill-sql v4.1.2's subscriber reads a batch of rows, hands them over
// one by one and stops at the first that is not acknowledged (the ack
// deadline passed while Kafka was down, or the relay is closing); then it
// acknowledges the batch passing every row it read in Rows, and
// PostgreSQLQueueOffsetsAdapter deletes all of them: votes answered 202
// would vanish without reaching the log (see
// docs/upstream/watermill-sql-queue-ack.md). The rows handed over are a
// prefix of Rows ending at LastRow, the last one acknowledged, so only that
// prefix is passed on; the rest stay and are read again.
type ackedRowsOnly struct {
	wmsql.PostgreSQLQueueOffsetsAdapter
}

func (a ackedRowsOnly) AckMessageQuery(params wmsql.AckMessageQueryParams) (wmsql.Query, error) {
	acked := 0 // LastRow missing from Rows: delete nothing rather than guess
	for i, row := range params.Rows {
		if row.Offset == params.LastRow.Offset {
			acked = i + 1
			break
		}
	}
	params.Rows = params.Rows[:acked]
	return a.PostgreSQLQueueOffsetsAdapter.AckMessageQuery(params)
}

// RelayConfig tunes the relay.
type RelayConfig struct {
	// AckDeadline is how long the relay waits for Kafka to take one
	// outbox row before it gives the row back and reads again (default
	// 30 s, watermill-sql's). It bounds how long a read batch holds its
	// transaction and row locks while Kafka is unreachable.
	AckDeadline time.Duration
}

func (c *RelayConfig) setDefaults() {
	if c.AckDeadline == 0 {
		c.AckDeadline = 30 * time.Second
	}
}

// Validate reports a configuration that cannot work.
func (c RelayConfig) Validate() error {
	if c.AckDeadline < 0 {
		return errors.New("outbox relay: ack deadline must not be negative")
	}
	return nil
}

// NewRelay returns Watermill's forwarder draining the outbox to pub (the
// Kafka publisher): in order, deleting each row once pub has it, retrying
// while Kafka is unreachable. Several relays may run (one per intake
// process): rows are locked while being forwarded.
func (o *Outbox) NewRelay(pub message.Publisher, cfg RelayConfig) (*forwarder.Forwarder, error) {
	if pub == nil {
		return nil, errors.New("outbox relay: nil publisher")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sub, err := wmsql.NewSubscriber(wmsql.BeginnerFromPgx(o.pool), wmsql.SubscriberConfig{
		SchemaAdapter:  o.schema,
		OffsetsAdapter: ackedRowsOnly{wmsql.PostgreSQLQueueOffsetsAdapter{DeleteOnAck: true, GenerateMessagesTableName: tableName}},
		AckDeadline:    &cfg.AckDeadline,
		PollInterval:   50 * time.Millisecond,
		ResendInterval: 500 * time.Millisecond,
	}, o.log)
	if err != nil {
		return nil, fmt.Errorf("outbox relay: subscriber: %w", err)
	}
	fwd, err := forwarder.NewForwarder(sub, pub, o.log, forwarder.Config{ForwarderTopic: forwarderTopic, CloseTimeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("outbox relay: %w", err)
	}
	return fwd, nil
}
