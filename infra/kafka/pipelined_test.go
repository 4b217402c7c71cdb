package kafka_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/internal/testutil"
)

// mix says what the log of a run holds, out of 100 records.
type mix struct {
	control  int // control events (`{"control":...}`)
	keyless  int // records without a key
	keys     int // distinct keys
	records  int
	nackRate float64
}

// TestPipelinedKeyOrderAndGapSafeCommits runs the subscriber against the
// in-process broker with handlers that finish in random order and nack at
// random, and checks on every delivery and every commit:
//   - never two messages of one key (in one partition) in flight;
//   - a key's messages are delivered in log order, a nacked one again
//     before any later one of its key;
//   - the group's commit never passes an unacknowledged offset;
//   - in the end everything is acked and committed,
//
// and that messages of one partition do run side by side.
func TestPipelinedKeyOrderAndGapSafeCommits(t *testing.T) {
	cfg := testutil.Kafka(t, 4)
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			h := runPipelined(t, cfg, fmt.Sprintf("votes-%d", seed), seed, mix{control: 0, keyless: 0, keys: 40, records: 600, nackRate: 0.2})
			if h.maxParallel < 2 {
				t.Errorf("at most %d messages of a partition in flight: not pipelined", h.maxParallel)
			}
		})
	}
}

// TestPipelinedControlEventsAreBarriers: a control event (and a record with
// no key) is handed out only when everything before it in its partition is
// acked, and nothing after it until it is acked.
func TestPipelinedControlEventsAreBarriers(t *testing.T) {
	cfg := testutil.Kafka(t, 2)
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			h := runPipelined(t, cfg, fmt.Sprintf("barriers-%d", seed), seed, mix{control: 8, keyless: 4, keys: 30, records: 400, nackRate: 0.15})
			if h.barriers == 0 {
				t.Fatal("no barrier delivered")
			}
		})
	}
}

type harness struct {
	t  *testing.T
	mu sync.Mutex
	// per partition: the records in log order
	log map[int32][]rec
	// per partition and offset
	acked     map[int32]map[int64]bool
	inFlight  map[int32]map[int64]bool
	keyBusy   map[int32]map[string]bool
	delivered map[int32]map[int64]bool // delivered at least once
	ackCount  int
	total     int
	allAcked  chan struct{}

	maxParallel int
	barriers    int
}

type rec struct {
	offset  int64
	key     string
	barrier bool
}

func runPipelined(t *testing.T, cfg kafka.Config, topic string, seed uint64, m mix) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	admin := kadm.NewClient(adm)
	if _, err := admin.CreateTopic(ctx, cfg.Partitions, 1, nil, topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}

	rnd := rand.New(rand.NewPCG(seed, 99))
	h := &harness{t: t, log: map[int32][]rec{}, acked: map[int32]map[int64]bool{}, inFlight: map[int32]map[int64]bool{},
		keyBusy: map[int32]map[string]bool{}, delivered: map[int32]map[int64]bool{}, total: m.records, allAcked: make(chan struct{})}
	var records []*kgo.Record
	for i := range m.records {
		p := int32(rnd.IntN(int(cfg.Partitions)))
		r := &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprintf("k%d", rnd.IntN(m.keys))), Value: []byte(fmt.Sprintf(`{"n":%d}`, i))}
		switch roll := rnd.IntN(100); {
		case roll < m.control:
			r.Value = []byte(`{"control":"registration_closed","partitions":4,"closed_at":"2026-01-01T00:00:00Z"}`)
		case roll < m.control+m.keyless:
			r.Key = nil
		}
		records = append(records, r)
	}
	if err := adm.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	for _, r := range records {
		h.log[r.Partition] = append(h.log[r.Partition], rec{offset: r.Offset, key: string(r.Key), barrier: len(r.Key) == 0 || r.Value[2] == 'c'})
	}
	for p := range cfg.Partitions {
		h.acked[p], h.inFlight[p], h.keyBusy[p], h.delivered[p] = map[int64]bool{}, map[int64]bool{}, map[string]bool{}, map[int64]bool{}
	}

	group := "g-" + topic
	sub, err := kafka.NewPipelinedSubscriber(cfg, kafka.PipelinedConfig{
		SubscriberConfig: kafka.SubscriberConfig{Group: group, SessionTimeout: 3 * time.Second, CommitInterval: 20 * time.Millisecond, NackResendSleep: time.Millisecond},
		// Small caps: backpressure and pausing are exercised too.
		PartitionInFlight: 16, MaxInFlight: 48,
		Annotate: annotate,
	}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}

	// Commits are checked while the run goes on.
	checkDone := make(chan struct{})
	var checks sync.WaitGroup
	checks.Add(1)
	go func() {
		defer checks.Done()
		for {
			select {
			case <-checkDone:
				return
			case <-time.After(15 * time.Millisecond):
			}
			h.checkCommits(ctx, admin, group, topic)
		}
	}()

	var handlers sync.WaitGroup
	var rmu sync.Mutex
	total := len(records)
	for h.acks() < total {
		var msg *message.Message
		select {
		case msg = <-msgs:
		case <-h.allAcked:
			continue
		case <-ctx.Done():
			t.Fatalf("only %d of %d acked", h.acks(), total)
		}
		p, off := recordOf(msg)
		h.deliver(p, off)
		rmu.Lock()
		delay := time.Duration(rnd.IntN(2000)) * time.Microsecond
		nack := rnd.Float64() < m.nackRate
		rmu.Unlock()
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			// The fault under test: handlers finishing out of order, after
			// work of random length.
			time.Sleep(delay)
			h.finish(p, off, !nack)
			if nack {
				msg.Nack()
			} else {
				msg.Ack()
			}
		}()
	}
	handlers.Wait()
	testutil.Eventually(t, 30*time.Second, "everything committed", func() (bool, string) {
		h.checkCommits(ctx, admin, group, topic)
		commits, err := admin.FetchOffsets(ctx, group)
		if err != nil {
			return false, err.Error()
		}
		for p, recs := range h.log {
			c, _ := commits.Lookup(topic, p)
			if want := recs[len(recs)-1].offset + 1; c.At != want {
				return false, fmt.Sprintf("partition %d committed %d, want %d", p, c.At, want)
			}
		}
		return true, ""
	})
	close(checkDone)
	checks.Wait()
	cancel()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	return h
}

type ctxKey struct{}

type position struct {
	partition int32
	offset    int64
}

func annotate(ctx context.Context, partition int32, offset int64, _ time.Time, _ []byte) context.Context {
	return context.WithValue(ctx, ctxKey{}, position{partition, offset})
}

func recordOf(msg *message.Message) (int32, int64) {
	pos := msg.Context().Value(ctxKey{}).(position)
	return pos.partition, pos.offset
}

func (h *harness) find(p int32, off int64) (int, rec) {
	for i, r := range h.log[p] {
		if r.offset == off {
			return i, r
		}
	}
	h.t.Fatalf("delivered %d@%d, which was never produced", p, off)
	return 0, rec{}
}

// deliver checks a delivery against the rules.
func (h *harness) deliver(p int32, off int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	i, r := h.find(p, off)
	if h.acked[p][off] {
		h.t.Errorf("%d@%d delivered again after its ack", p, off)
	}
	if h.inFlight[p][off] {
		h.t.Errorf("%d@%d delivered while in flight", p, off)
	}
	for _, earlier := range h.log[p][:i] {
		if h.acked[p][earlier.offset] {
			continue
		}
		if r.barrier {
			h.t.Errorf("barrier %d@%d delivered before %d@%d was acked", p, off, p, earlier.offset)
		}
		if earlier.barrier {
			h.t.Errorf("%d@%d delivered before the barrier %d@%d was acked", p, off, p, earlier.offset)
		}
		if earlier.key == r.key {
			h.t.Errorf("%d@%d (key %s) delivered before %d@%d of the same key was acked", p, off, r.key, p, earlier.offset)
		}
	}
	if r.barrier {
		h.barriers++
		if len(h.inFlight[p]) > 0 {
			h.t.Errorf("barrier %d@%d delivered while %d messages of its partition are in flight", p, off, len(h.inFlight[p]))
		}
	} else if h.keyBusy[p][r.key] {
		h.t.Errorf("%d@%d: key %s already in flight", p, off, r.key)
	}
	h.inFlight[p][off] = true
	h.keyBusy[p][r.key] = true
	h.delivered[p][off] = true
	h.maxParallel = max(h.maxParallel, len(h.inFlight[p]))
}

// finish records the outcome before the subscriber learns it.
func (h *harness) finish(p int32, off int64, ack bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, r := h.find(p, off)
	delete(h.inFlight[p], off)
	delete(h.keyBusy[p], r.key)
	if ack {
		h.acked[p][off] = true
		h.ackCount++
		if h.ackCount == h.total {
			close(h.allAcked)
		}
	}
}

func (h *harness) acks() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ackCount
}

// checkCommits fails when a committed offset passes an unacked message.
func (h *harness) checkCommits(ctx context.Context, admin *kadm.Client, group, topic string) {
	commits, err := admin.FetchOffsets(ctx, group)
	if err != nil {
		return // the group may be rebalancing
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for p, recs := range h.log {
		c, ok := commits.Lookup(topic, p)
		if !ok {
			continue
		}
		for _, r := range recs {
			if r.offset < c.At && !h.acked[p][r.offset] {
				h.t.Errorf("partition %d committed at %d past unacked %d", p, c.At, r.offset)
				return
			}
		}
	}
}

// TestPipelinedRebalanceRedeliversAbandonedMessages: a member holding
// messages it never acknowledges loses them at a rebalance (the drain
// gives up), and they are delivered again, to whichever member owns their
// partition next; the group's commit never passes them, and the late ack
// of an abandoned message changes nothing.
func TestPipelinedRebalanceRedeliversAbandonedMessages(t *testing.T) {
	cfg := testutil.Kafka(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic, group = "rebalance", "g-rebalance"
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)
	if _, err := admin.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	var records []*kgo.Record
	for i := range 20 {
		records = append(records, &kgo.Record{Topic: topic, Partition: int32(i % 2), Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(`{}`)})
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	newSub := func() (*kafka.Pipelined, <-chan *message.Message) {
		sub, err := kafka.NewPipelinedSubscriber(cfg, kafka.PipelinedConfig{
			SubscriberConfig: kafka.SubscriberConfig{Group: group, SessionTimeout: 3 * time.Second, CommitInterval: 20 * time.Millisecond},
			Annotate:         annotate,
		}, watermill.NopLogger{})
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := sub.Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		return sub, msgs
	}
	a, aMsgs := newSub()
	defer a.Close()
	// A holds offset 0 of each partition and acks everything else.
	held := map[int32]*message.Message{}
	for acked := 0; len(held) < 2 || acked < 18; {
		select {
		case msg := <-aMsgs:
			p, off := recordOf(msg)
			if off == 0 {
				held[p] = msg
				continue
			}
			msg.Ack()
			acked++
		case <-ctx.Done():
			t.Fatalf("held %d, acked %d", len(held), acked)
		}
	}
	b, bMsgs := newSub()
	defer b.Close()
	// After the rebalance each held offset is delivered again.
	again := map[int32]bool{}
	for len(again) < 2 {
		var msg *message.Message
		select {
		case msg = <-aMsgs:
		case msg = <-bMsgs:
		case <-ctx.Done():
			t.Fatalf("redelivered %v of the 2 abandoned messages", again)
		}
		p, off := recordOf(msg)
		if off == 0 {
			again[p] = true
		}
		msg.Ack()
	}
	// The abandoned deliveries' acks come too late to count for anything.
	for _, msg := range held {
		msg.Ack()
	}
	// The rest of both partitions is read again from the commit (offset
	// 0): keep acking.
	drainCtx, stopDrain := context.WithCancel(ctx)
	defer stopDrain()
	for _, msgs := range []<-chan *message.Message{aMsgs, bMsgs} {
		go func() {
			for {
				select {
				case msg, ok := <-msgs:
					if !ok {
						return
					}
					msg.Ack()
				case <-drainCtx.Done():
					return
				}
			}
		}()
	}
	testutil.Eventually(t, 20*time.Second, "both partitions committed at their end", func() (bool, string) {
		commits, err := admin.FetchOffsets(ctx, group)
		if err != nil {
			return false, err.Error()
		}
		for p := range int32(2) {
			if c, _ := commits.Lookup(topic, p); c.At != 10 {
				return false, fmt.Sprintf("partition %d committed at %d", p, c.At)
			}
		}
		return true, ""
	})
}
