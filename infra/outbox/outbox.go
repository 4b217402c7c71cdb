// Package outbox is the write side's durable front door: votes accepted
// from polling stations are written, in the request's own transaction, to
// the intake's vote_id register and to a transactional outbox in
// PostgreSQL (watermill-sql); Watermill's forwarder relays the outbox to
// the Kafka votes topic. An accepted vote survives Kafka being down and the
// process crashing; a retried request is recognised and changes nothing.
package outbox

import (
	"bytes"
	"context"
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
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/sql/db"
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
}

// New returns an outbox over pool (the intake migrations must be applied).
func New(pool *pgxpool.Pool, log watermill.LoggerAdapter) (*Outbox, error) {
	if pool == nil || log == nil {
		return nil, errors.New("new outbox: nil pool or logger")
	}
	return &Outbox{pool: pool, log: log, schema: wmsql.PostgreSQLQueueSchema{GenerateMessagesTableName: tableName}}, nil
}

// Accept stores votes from station and returns how many were new; the
// others had been accepted before (the same vote_id with the same content).
// Either every vote is stored or none is. A vote_id already accepted with
// different content fails the whole call with domain.ErrVoteIDReused.
func (o *Outbox) Accept(ctx context.Context, station string, votes []domain.VoteCast) (int, error) {
	if len(votes) == 0 {
		return 0, nil
	}
	params := db.InsertIntakeVotesParams{Station: station}
	payloads := make(map[string][]byte, len(votes))
	for i, v := range votes {
		payload, err := json.Marshal(v)
		if err != nil {
			return 0, fmt.Errorf("encode vote %d: %w", i, err)
		}
		digest := sha256.Sum256(payload)
		id := v.Vote.ID()
		if prev, ok := payloads[id]; ok && !bytes.Equal(prev, payload) {
			return 0, fmt.Errorf("votes[%d].vote_id %s: %w", i, id, domain.ErrVoteIDReused)
		}
		payloads[id] = payload
		params.VoteIDs = append(params.VoteIDs, id)
		params.Digests = append(params.Digests, digest[:])
	}

	tx, err := o.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, fmt.Errorf("accept votes: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	q := db.New(tx)
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

	pub, err := wmsql.NewPublisher(wmsql.TxFromPgx(tx), wmsql.PublisherConfig{SchemaAdapter: o.schema}, o.log)
	if err != nil {
		return 0, fmt.Errorf("accept votes: outbox publisher: %w", err)
	}
	outbox := forwarder.NewPublisher(pub, forwarder.PublisherConfig{ForwarderTopic: forwarderTopic})
	var msgs []*message.Message
	for _, v := range votes {
		id := v.Vote.ID()
		if !isNew[id] {
			continue
		}
		delete(isNew, id) // a vote repeated within the request goes out once
		msgs = append(msgs, kafka.KeyedMessage(v.Key(), payloads[id]))
	}
	if len(msgs) == 0 {
		return 0, nil // every vote was a retry: nothing to store
	}
	if err := outbox.Publish(domain.TopicVotes, msgs...); err != nil {
		return 0, fmt.Errorf("accept votes: write outbox: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("accept votes: commit: %w", err)
	}
	return len(msgs), nil
}

// checkRetries confirms that every vote not newly recorded was recorded
// before with the same content.
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
	rows, err := q.IntakeDigests(ctx, known)
	if err != nil {
		return fmt.Errorf("accept votes: read earlier votes: %w", err)
	}
	stored := make(map[string][]byte, len(rows))
	for _, r := range rows {
		stored[r.VoteID] = r.Digest
	}
	for i, id := range params.VoteIDs {
		if !isNew[id] && !bytes.Equal(stored[id], params.Digests[i]) {
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
