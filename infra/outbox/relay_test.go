package outbox_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/outbox"
	"github.com/votewatch/votewatch/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// The relay's ack deadline in these tests: short, so a fault outlasts it
// in a second or two.
const ackDeadline = 300 * time.Millisecond

// rig is one test's intake: a fresh database with the outbox, and Kafka.
type rig struct {
	pool *pgxpool.Pool
	box  *outbox.Outbox
	kcfg kafka.Config
}

func newRig(t *testing.T, kcfg kafka.Config) *rig {
	t.Helper()
	pool := testutil.Pool(t)
	tally, err := domain.GenerateTallyKey()
	if err != nil {
		t.Fatal(err)
	}
	box, err := outbox.New(pool, watermill.NopLogger{}, outbox.Config{DigestKey: []byte(rand.Text() + rand.Text()), TallyKey: tally.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{pool: pool, box: box, kcfg: kcfg}
}

// accept has n votes accepted into the outbox, as the intake API does.
func (r *rig) accept(t *testing.T, n int) {
	t.Helper()
	castAt := time.Date(2026, 11, 3, 15, 4, 5, 0, time.UTC)
	var batch []domain.VoteCast
	flush := func() {
		if _, err := r.box.Accept(context.Background(), "north-1", batch); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range n {
		v, err := domain.NewVote(fmt.Sprintf("01900000-0000-7000-8000-%012d", i+1), fmt.Sprintf("voter-%05d", i), "c-ada", castAt)
		if err != nil {
			t.Fatal(err)
		}
		if batch = append(batch, domain.VoteCast{Vote: v}); len(batch) == 250 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
}

// relay runs a relay to pub until the returned stop is called.
func (r *rig) relay(t *testing.T, pub message.Publisher) (fwdClose func() error, stop func()) {
	t.Helper()
	fwd, err := r.box.NewRelay(pub, outbox.RelayConfig{AckDeadline: ackDeadline})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fwd.Run(ctx) }()
	<-fwd.Running()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("relay: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return fwd.Close, stop
}

func (r *rig) pending(t *testing.T) int {
	t.Helper()
	var n int
	if err := r.pool.QueryRow(context.Background(), "SELECT count(*) FROM intake.outbox").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (r *rig) waitDrained(t *testing.T) {
	t.Helper()
	testutil.Eventually(t, 60*time.Second, "the outbox drained", func() (bool, string) {
		n := r.pending(t)
		return n == 0, fmt.Sprintf("%d pending", n)
	})
}

// assertNoneLost checks the intake's promise against the real topic: every
// vote_id accepted into intake.votes is in the votes topic or still in the
// outbox.
func (r *rig) assertNoneLost(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	accepted := r.column(t, "SELECT vote_id::text FROM intake.votes")
	// The outbox row is Watermill's forwarder envelope, whose payload (the
	// vote as published) is base64 in JSON.
	pending := r.column(t, `SELECT convert_from(decode(payload->>'payload', 'base64'), 'UTF8')::json->>'vote_id' FROM intake.outbox`)
	klog, err := kafka.NewLog(r.kcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer klog.Close()
	ends, err := klog.HighWatermarks(ctx, domain.TopicVotes)
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]bool{}
	err = kafka.ReadRange(ctx, r.kcfg, domain.TopicVotes, nil, ends, func(recs []kafka.Record) error {
		for _, rec := range recs {
			var v struct {
				VoteID string `json:"vote_id"`
			}
			if err := json.Unmarshal(rec.Value, &v); err != nil {
				return fmt.Errorf("%d/%d: %w", rec.Partition, rec.Offset, err)
			}
			logged[v.VoteID] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var lost []string
	for _, id := range accepted {
		if !logged[id] && !slices.Contains(pending, id) {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d accepted votes are neither in the votes topic (%d records) nor in the outbox (%d rows), e.g. %v",
			len(lost), len(accepted), len(logged), len(pending), lost[:min(len(lost), 5)])
	}
	// votewatch verify's check must see the same.
	rec, err := outbox.Reconcile(ctx, r.pool, votesLog{r.kcfg, klog}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Lost != len(lost) || rec.Accepted != len(accepted) {
		t.Errorf("Reconcile: %d of %d accepted votes lost, want %d of %d", rec.Lost, rec.Accepted, len(lost), len(accepted))
	}
}

// votesLog reads the log with the project's reader, as verify does.
type votesLog struct {
	cfg kafka.Config
	*kafka.Log
}

func (l votesLog) ReadRange(ctx context.Context, topic string, from, to map[int32]int64, fn func([]kafka.Record) error) error {
	return kafka.ReadRange(ctx, l.cfg, topic, from, to, fn)
}

func (r *rig) column(t *testing.T, query string) []string {
	t.Helper()
	rows, err := r.pool.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// faultyPublisher hands messages to next, or fails them as fault decides
// (given the 1-based number of the Publish call and the message).
type faultyPublisher struct {
	next  message.Publisher
	mu    sync.Mutex
	calls int
	fault func(call int, msg *message.Message) error
}

func (p *faultyPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	p.calls++
	call := p.calls
	p.mu.Unlock()
	if err := p.fault(call, msgs[0]); err != nil {
		return err
	}
	return p.next.Publish(topic, msgs...)
}

func (p *faultyPublisher) Close() error { return nil }

func kafkaPublisher(t *testing.T, kcfg kafka.Config) *kafka.Publisher {
	t.Helper()
	pub, err := kafka.NewPublisher(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

var errKafkaDown = errors.New("kafka: broker unreachable (injected)")

// Kafka takes the first vote, then refuses every vote for five ack
// deadlines; the relay must give the batch's unsent rows back, not delete
// them.
func TestRelayLosesNoVoteWhenKafkaFailsLongerThanTheAckDeadline(t *testing.T) {
	r := newRig(t, testutil.Kafka(t, 4))
	r.accept(t, 250)
	var mu sync.Mutex
	var downUntil time.Time
	pub := &faultyPublisher{next: kafkaPublisher(t, r.kcfg), fault: func(call int, _ *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if call == 1 {
			return nil
		}
		if downUntil.IsZero() {
			downUntil = time.Now().Add(5 * ackDeadline)
		}
		if time.Now().Before(downUntil) {
			return errKafkaDown
		}
		return nil
	}}
	r.relay(t, pub)
	r.waitDrained(t)
	r.assertNoneLost(t)
}

// The broker itself dies mid-relay, stays down well past the ack deadline
// and comes back on the same port and log.
func TestRelayLosesNoVoteWhenTheBrokerDiesMidRelay(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.DiscardHandler)
	broker, err := kafka.StartBroker(kafka.BrokerConfig{DataDir: dir}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { broker.Close() }()
	addr := broker.Addr()
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	kcfg := kafka.Config{Brokers: []string{addr}, Partitions: 4}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, kcfg, kafka.EventTopics(4)); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, kcfg)
	const n = 1000
	r.accept(t, n)
	r.relay(t, kafkaPublisher(t, kcfg))

	// Kill it in the middle of a read batch (the relay reads 100 rows at
	// a time): once the first batch is in and some of the second.
	klog, err := kafka.NewLog(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	for relayed := int64(0); relayed < 110; {
		ends, err := klog.HighWatermarks(ctx, domain.TopicVotes)
		if err != nil {
			t.Fatal(err)
		}
		relayed = 0
		for _, e := range ends {
			relayed += e
		}
	}
	_ = klog.Close()
	broker.Close()
	// The outage itself: ten ack deadlines.
	time.Sleep(10 * ackDeadline)
	if got := r.pending(t); got == 0 {
		t.Errorf("the outbox emptied while the broker was down")
	}
	var p int
	if _, err := fmt.Sscan(port, &p); err != nil {
		t.Fatal(err)
	}
	if broker, err = kafka.StartBroker(kafka.BrokerConfig{Port: p, DataDir: dir}, quiet); err != nil {
		t.Fatal(err)
	}
	r.waitDrained(t)
	r.assertNoneLost(t)
}

// The relay is stopped (its context cancelled, or the forwarder closed)
// while a vote is on its way to Kafka in the middle of a batch; a new
// relay then finishes the work.
func TestRelayLosesNoVoteWhenStoppedMidBatch(t *testing.T) {
	kcfg := testutil.Kafka(t, 4)
	for _, how := range []string{"context cancelled", "forwarder closed"} {
		t.Run(how, func(t *testing.T) {
			r := newRig(t, kcfg)
			r.accept(t, 250)
			blocked := make(chan struct{})
			var once sync.Once
			pub := &faultyPublisher{next: kafkaPublisher(t, kcfg), fault: func(call int, msg *message.Message) error {
				if call <= 10 {
					return nil
				}
				// Kafka hangs: the publish waits until the relay gives up
				// the message.
				once.Do(func() { close(blocked) })
				<-msg.Context().Done()
				return msg.Context().Err()
			}}
			fwdClose, stop := r.relay(t, pub)
			<-blocked
			if how == "forwarder closed" {
				if err := fwdClose(); err != nil {
					t.Errorf("close relay: %v", err)
				}
			}
			stop()
			if got := r.pending(t); got == 0 {
				t.Errorf("the outbox is empty after a stop with votes unsent")
			}
			r.relay(t, kafkaPublisher(t, kcfg))
			r.waitDrained(t)
			r.assertNoneLost(t)
		})
	}
}
