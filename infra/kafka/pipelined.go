package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AnnotateFunc puts a consumed record's place in the log on the context
// its message is handled with. watermill-kafka's own context setters are
// unexported, so whoever reads these values (the event handlers) supplies
// the setter.
type AnnotateFunc func(ctx context.Context, partition int32, offset int64, at time.Time, key []byte) context.Context

// PipelinedConfig tunes the pipelined subscriber.
type PipelinedConfig struct {
	// SubscriberConfig: Group, SessionTimeout, CommitInterval,
	// NackResendSleep and Applied mean what they mean for NewSubscriber.
	SubscriberConfig
	// PartitionInFlight is how many records of one partition may be held
	// (handed out or waiting their turn) before that partition's fetching
	// pauses (default 1024).
	PartitionInFlight int
	// MaxInFlight is how many records the whole subscription may hold
	// (default 8192); polling stops at it.
	MaxInFlight int
	// Annotate, when set, adds each record's partition, offset, timestamp
	// and key to its message's context.
	Annotate AnnotateFunc
}

func (pc *PipelinedConfig) setDefaults() {
	pc.SubscriberConfig.setDefaults()
	if pc.MaxInFlight <= 0 {
		pc.MaxInFlight = 8192
	}
	if pc.PartitionInFlight <= 0 {
		pc.PartitionInFlight = 1024
	}
	pc.PartitionInFlight = min(pc.PartitionInFlight, pc.MaxInFlight)
}

// Pipelined is a Watermill subscriber on franz-go that keeps many messages
// of a partition in flight at once, never two with the same key: the
// "ordered by key" mode of Confluent's Parallel Consumer. Within a
// partition, messages with the same key are handed out in log order, each
// only after the one before it was acked, so anything decided by the
// order of one key's messages (first vote wins: votes are keyed by
// voter_id) comes out as with one message per partition.
//
// Barriers. A message whose key is empty, or whose payload mentions a
// "control" member (registration close markers, schedules: see
// domain.DecodeRegistrationClosed, which looks no further than that
// either), is handed out only once everything before it in its partition
// is acked, and nothing after it before it is acked. An empty key is a
// barrier because it says nothing about what the message may depend on:
// a producer that leaves keys out cannot be reordered safely.
//
// Offsets. Per partition it commits the offset after the longest
// acknowledged prefix of what it read, never past an unacknowledged
// message (manual commits every CommitInterval and on revocation). The
// projection's applied offsets remain the truth: on every assignment each
// partition starts at the group's commit where it is not ahead of the
// applied offset, else 2 × MaxInFlight before the applied offset (which
// may lie past messages that were in flight), from offset 0 where nothing
// was applied (see resume).
//
// Nack. A nacked message is handed out again after NackResendSleep; its
// key stays taken meanwhile, so later messages with that key wait.
//
// Rebalance. The group uses the eager protocol (sticky, then range, the
// strategy sarama's members offer). On revocation a partition hands out
// nothing more, waits up to half the session timeout for what is in
// flight, commits its acknowledged prefix and is dropped; what is still in
// flight is abandoned, and its late acks are ignored. Abandoned messages
// lie past the commit, so the next owner reads them again, and applying is
// idempotent. Lost partitions are dropped at once, uncommitted.
//
// Memory. A subscription holds at most MaxInFlight records (polling asks
// for no more than the room left), a partition at most PartitionInFlight
// plus one poll's worth before its fetching pauses, and franz-go buffers at
// most one fetch response per broker (16 MiB). So memory is bounded by
// MaxInFlight × the record size + 16 MiB per broker, whatever the lag.
type Pipelined struct {
	cfg Config
	pc  PipelinedConfig
	log watermill.LoggerAdapter

	mu     sync.Mutex
	closed bool
	subs   []*pipeSub
}

// NewPipelinedSubscriber returns a pipelined subscriber for consumer group
// pc.Group. It connects on Subscribe.
func NewPipelinedSubscriber(cfg Config, pc PipelinedConfig, logger watermill.LoggerAdapter) (*Pipelined, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pc.Group == "" {
		return nil, errors.New("kafka pipelined subscriber: no consumer group")
	}
	pc.setDefaults()
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return &Pipelined{cfg: cfg, pc: pc, log: logger}, nil
}

// Subscribe joins the group on topic. The channel closes when ctx ends or
// the subscriber is closed. Each message must be acked or nacked.
func (s *Pipelined) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("kafka pipelined subscriber: closed")
	}
	sub := &pipeSub{
		topic: topic, pc: s.pc, log: s.log,
		out:    make(chan *message.Message),
		parts:  map[int32]*partState{},
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	sub.ctx, sub.cancel = context.WithCancel(ctx)
	sub.cond = sync.NewCond(&sub.mu)
	opts := []kgo.Opt{
		kgo.ConsumerGroup(s.pc.Group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.Balancers(kgo.StickyBalancer(), kgo.RangeBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(s.pc.SessionTimeout),
		kgo.HeartbeatInterval(s.pc.SessionTimeout / 3),
		kgo.RebalanceTimeout(s.pc.SessionTimeout + 2*time.Second),
		kgo.FetchMaxBytes(16 << 20),
		kgo.FetchMaxPartitionBytes(1 << 20),
		// A resumed partition joins the next fetch only: the one under
		// way (for partitions with nothing new) lasts up to this long.
		kgo.FetchMaxWait(250 * time.Millisecond),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			sub.revoked(ctx, cl, m[topic], true)
		}),
		kgo.OnPartitionsLost(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			sub.revoked(ctx, cl, m[topic], false)
		}),
	}
	if s.pc.Applied != nil {
		opts = append(opts, kgo.AdjustFetchOffsetsFn(sub.resume))
	}
	cl, err := kgo.NewClient(s.cfg.kgoOpts(opts...)...)
	if err != nil {
		sub.cancel()
		return nil, fmt.Errorf("pipelined subscriber for group %s: %w", s.pc.Group, err)
	}
	sub.cl = cl
	stop := context.AfterFunc(sub.ctx, func() {
		sub.mu.Lock()
		sub.cond.Broadcast()
		sub.mu.Unlock()
	})
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); sub.poll() }()
	go func() { defer wg.Done(); sub.dispatch() }()
	go func() { defer wg.Done(); sub.commitLoop() }()
	go func() {
		wg.Wait()
		stop()
		// Drain and commit before leaving: the revocation Close runs
		// gets a context that is already done.
		finish, cancel := context.WithTimeout(context.Background(), s.pc.SessionTimeout)
		sub.mu.Lock()
		all := make([]int32, 0, len(sub.parts))
		for p := range sub.parts {
			all = append(all, p)
		}
		sub.mu.Unlock()
		sub.revoked(finish, cl, all, true)
		cancel()
		cl.Close()
		close(sub.done)
		close(sub.out)
	}()
	s.subs = append(s.subs, sub)
	return sub.out, nil
}

// Close ends every subscription and waits until each has left its group.
func (s *Pipelined) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	subs := s.subs
	s.mu.Unlock()
	for _, sub := range subs {
		sub.cancel()
	}
	for _, sub := range subs {
		<-sub.done
	}
	return nil
}

// pipeSub is one topic's subscription. Its mu guards parts, held, ready
// and every partState and entry.
type pipeSub struct {
	topic  string
	pc     PipelinedConfig
	log    watermill.LoggerAdapter
	cl     *kgo.Client
	ctx    context.Context
	cancel context.CancelFunc
	out    chan *message.Message
	notify chan struct{}
	done   chan struct{}

	pauseMu sync.Mutex // orders the pause and resume calls into the client

	mu    sync.Mutex
	cond  *sync.Cond // signalled when room is made or a partition settles
	parts map[int32]*partState
	held  int      // records held, all partitions
	ready []*entry // handed out, not yet sent to the router
}

// partState is what one assigned partition holds.
type partState struct {
	partition int32
	pending   []*entry // every held record, in log order; [head:] are live
	head      int
	waiting   []*entry // not handed out, in log order
	busy      map[string]struct{}
	inFlight  int  // handed out, not yet acked (a nacked one counts until resent)
	barrier   bool // a barrier is in flight
	revoking  bool // hand nothing more out
	gone      bool // revoked: late acks are ignored
	paused    bool
	next      int64 // offset after the acknowledged prefix; -1 before any
	epoch     int32
	committed int64
}

type entry struct {
	ps      *partState
	rec     *kgo.Record
	key     string
	barrier bool
	done    bool
}

func isBarrier(r *kgo.Record) bool {
	return len(r.Key) == 0 || bytes.Contains(r.Value, []byte(`"control"`))
}

func (s *pipeSub) poll() {
	for {
		s.mu.Lock()
		for s.held >= s.pc.MaxInFlight && s.ctx.Err() == nil {
			s.cond.Wait()
		}
		room := s.pc.MaxInFlight - s.held
		s.mu.Unlock()
		if s.ctx.Err() != nil {
			return
		}
		fetches := s.cl.PollRecords(s.ctx, room)
		if fetches.IsClientClosed() || s.ctx.Err() != nil {
			s.cl.AllowRebalance()
			return
		}
		fetches.EachError(func(t string, p int32, err error) {
			s.log.Error("Fetch failed; retrying", err, watermill.LogFields{"topic": t, "partition": p, "consumer_group": s.pc.Group})
		})
		var pause []int32
		s.mu.Lock()
		touched := map[*partState]bool{}
		fetches.EachRecord(func(r *kgo.Record) {
			ps := s.parts[r.Partition]
			if ps == nil {
				ps = &partState{partition: r.Partition, busy: map[string]struct{}{}, next: -1, committed: -1}
				s.parts[r.Partition] = ps
			}
			e := &entry{ps: ps, rec: r, key: string(r.Key), barrier: isBarrier(r)}
			ps.pending = append(ps.pending, e)
			ps.waiting = append(ps.waiting, e)
			s.held++
			touched[ps] = true
			if !ps.paused && len(ps.pending)-ps.head >= s.pc.PartitionInFlight {
				ps.paused = true
				pause = append(pause, ps.partition)
			}
		})
		for ps := range touched {
			s.schedule(ps)
		}
		s.mu.Unlock()
		// Revocation waits for this: records polled are in parts before
		// a revocation can drop them.
		s.cl.AllowRebalance()
		for _, p := range pause {
			s.syncPause(p)
		}
	}
}

// schedule hands out every waiting record of ps that may go now. Called
// with mu held.
func (s *pipeSub) schedule(ps *partState) {
	if ps.barrier || ps.revoking || ps.gone {
		return
	}
	var seen map[string]struct{}
	kept := ps.waiting[:0]
	blocked := false
	for _, e := range ps.waiting {
		switch {
		case blocked:
			kept = append(kept, e)
		case e.barrier:
			blocked = true
			if len(kept) == 0 && ps.inFlight == 0 {
				ps.barrier = true
				s.handOut(e)
				continue
			}
			kept = append(kept, e)
		default:
			_, taken := ps.busy[e.key]
			if _, earlier := seen[e.key]; taken || earlier {
				if seen == nil {
					seen = map[string]struct{}{}
				}
				seen[e.key] = struct{}{}
				kept = append(kept, e)
				continue
			}
			ps.busy[e.key] = struct{}{}
			s.handOut(e)
		}
	}
	clear(ps.waiting[len(kept):])
	ps.waiting = kept
}

func (s *pipeSub) handOut(e *entry) {
	e.ps.inFlight++
	s.ready = append(s.ready, e)
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// dispatch sends handed-out records to the router, one message each time
// a record is handed out (a nacked record gets a new message).
func (s *pipeSub) dispatch() {
	for {
		s.mu.Lock()
		batch := s.ready
		s.ready = nil
		s.mu.Unlock()
		for _, e := range batch {
			msg, err := s.message(e)
			if err != nil {
				// DefaultMarshaler.Unmarshal fails on nothing it is given
				// today; should it, the record is not lost: it stays
				// unacknowledged and is read again after a restart.
				s.log.Error("Cannot build message", err, watermill.LogFields{"topic": s.topic, "partition": e.rec.Partition, "offset": e.rec.Offset})
				continue
			}
			select {
			case s.out <- msg:
			case <-s.ctx.Done():
				return
			}
			go s.await(e, msg)
		}
		select {
		case <-s.notify:
		case <-s.ctx.Done():
			return
		}
	}
}

func (s *pipeSub) message(e *entry) (*message.Message, error) {
	r := e.rec
	cm := &sarama.ConsumerMessage{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Key: r.Key, Value: r.Value, Timestamp: r.Timestamp,
	}
	for _, h := range r.Headers {
		cm.Headers = append(cm.Headers, &sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	msg, err := wmkafka.DefaultMarshaler{}.Unmarshal(cm)
	if err != nil {
		return nil, fmt.Errorf("unmarshal %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	ctx := s.ctx
	if s.pc.Annotate != nil {
		ctx = s.pc.Annotate(ctx, r.Partition, r.Offset, r.Timestamp, r.Key)
	}
	msg.SetContext(ctx)
	return msg, nil
}

func (s *pipeSub) await(e *entry, msg *message.Message) {
	select {
	case <-msg.Acked():
		s.acked(e)
	case <-msg.Nacked():
		select {
		case <-time.After(s.pc.NackResendSleep):
		case <-s.done:
			return
		}
		s.nacked(e)
	case <-s.done:
	}
}

func (s *pipeSub) acked(e *entry) {
	ps := e.ps
	var resume bool
	s.mu.Lock()
	if ps.gone || e.done {
		s.mu.Unlock()
		return
	}
	e.done = true
	s.release(e)
	for ps.head < len(ps.pending) && ps.pending[ps.head].done {
		r := ps.pending[ps.head].rec
		ps.next, ps.epoch = r.Offset+1, r.LeaderEpoch
		ps.pending[ps.head] = nil
		ps.head++
		s.held--
	}
	if ps.head > 1024 && ps.head*2 > len(ps.pending) {
		ps.pending = append([]*entry(nil), ps.pending[ps.head:]...)
		ps.head = 0
	}
	if ps.paused && len(ps.pending)-ps.head <= s.pc.PartitionInFlight/2 {
		ps.paused, resume = false, true
	}
	s.schedule(ps)
	s.cond.Broadcast()
	s.mu.Unlock()
	if resume {
		s.syncPause(ps.partition)
	}
}

// syncPause makes franz-go's pause of partition p match what parts says
// now (paused only while its state holds too many records). Deciding and
// calling under pauseMu keeps a pause decided before a resume from being
// applied after it; s.mu is not held across the call into the client,
// whose rebalance callbacks take s.mu.
func (s *pipeSub) syncPause(p int32) {
	s.pauseMu.Lock()
	defer s.pauseMu.Unlock()
	s.mu.Lock()
	ps := s.parts[p]
	paused := ps != nil && ps.paused
	s.mu.Unlock()
	if paused {
		s.cl.PauseFetchPartitions(map[string][]int32{s.topic: {p}})
	} else {
		s.cl.ResumeFetchPartitions(map[string][]int32{s.topic: {p}})
	}
}

// nacked puts e back among the waiting, ahead of its key's later records.
func (s *pipeSub) nacked(e *entry) {
	ps := e.ps
	s.mu.Lock()
	defer s.mu.Unlock()
	if ps.gone || e.done {
		return
	}
	s.release(e)
	i := sort.Search(len(ps.waiting), func(i int) bool { return ps.waiting[i].rec.Offset > e.rec.Offset })
	ps.waiting = append(ps.waiting, nil)
	copy(ps.waiting[i+1:], ps.waiting[i:])
	ps.waiting[i] = e
	s.schedule(ps)
	s.cond.Broadcast()
}

func (s *pipeSub) release(e *entry) {
	e.ps.inFlight--
	if e.barrier {
		e.ps.barrier = false
	} else {
		delete(e.ps.busy, e.key)
	}
}

// commitLoop commits the acknowledged prefixes every CommitInterval.
func (s *pipeSub) commitLoop() {
	t := time.NewTicker(s.pc.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.commit(s.ctx, nil)
	}
}

// commit commits the acknowledged prefix of partitions (all when nil).
func (s *pipeSub) commit(ctx context.Context, partitions []int32) {
	s.mu.Lock()
	offsets := map[int32]kgo.EpochOffset{}
	states := map[int32]*partState{}
	add := func(ps *partState) {
		if ps != nil && ps.next > ps.committed {
			offsets[ps.partition] = kgo.EpochOffset{Epoch: ps.epoch, Offset: ps.next}
			states[ps.partition] = ps
		}
	}
	if partitions == nil {
		for _, ps := range s.parts {
			add(ps)
		}
	} else {
		for _, p := range partitions {
			add(s.parts[p])
		}
	}
	s.mu.Unlock()
	if len(offsets) == 0 {
		return
	}
	s.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{s.topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				// The next commit carries the same or a later offset.
				if ctx.Err() == nil {
					s.log.Debug("Commit failed", watermill.LogFields{"consumer_group": s.pc.Group, "err": err.Error()})
				}
				return
			}
			ok := committedPartitions(resp, s.topic)
			s.mu.Lock()
			defer s.mu.Unlock()
			for p, eo := range offsets {
				if ps := states[p]; ok[p] && eo.Offset > ps.committed {
					ps.committed = eo.Offset
				}
			}
		})
}

// revoked drops partitions; when they were revoked (not lost) it first
// drains them and commits their acknowledged prefixes.
func (s *pipeSub) revoked(ctx context.Context, _ *kgo.Client, partitions []int32, drainFirst bool) {
	if len(partitions) == 0 {
		return
	}
	s.mu.Lock()
	for _, p := range partitions {
		if ps := s.parts[p]; ps != nil {
			ps.revoking = true
		}
	}
	deadline := time.Now().Add(s.pc.SessionTimeout / 2)
	wake := time.AfterFunc(s.pc.SessionTimeout/2, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	drain := func() bool {
		for _, p := range partitions {
			if ps := s.parts[p]; ps != nil && ps.inFlight > 0 {
				return true
			}
		}
		return false
	}
	abandoned := 0
	for drainFirst && drain() && time.Now().Before(deadline) && ctx.Err() == nil {
		s.cond.Wait()
	}
	wake.Stop()
	for _, p := range partitions {
		if ps := s.parts[p]; ps != nil {
			abandoned += ps.inFlight
		}
	}
	s.mu.Unlock()
	if drainFirst && ctx.Err() == nil {
		s.commit(ctx, partitions)
	}
	s.mu.Lock()
	var paused []int32
	for _, p := range partitions {
		ps := s.parts[p]
		if ps == nil {
			continue
		}
		ps.gone = true
		s.held -= len(ps.pending) - ps.head
		if ps.paused {
			paused = append(paused, p)
		}
		delete(s.parts, p)
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	// Not from inside the client's callback: syncPause may wait for a
	// pause call that waits for this rebalance. It reads the state when it
	// runs, so it resumes the partition unless it was assigned and paused
	// again meanwhile.
	for _, p := range paused {
		go s.syncPause(p)
	}
	s.log.Debug("Partitions revoked", watermill.LogFields{
		"consumer_group": s.pc.Group, "topic": s.topic, "partitions": len(partitions), "abandoned": abandoned,
	})
}

// resume starts each assigned partition where nothing before it can be
// unapplied (offset 0 when nothing of the partition is applied). See
// resumeHandler for why the projection's offsets count.
func (s *pipeSub) resume(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	parts := offsets[s.topic]
	if len(parts) == 0 {
		return offsets, nil
	}
	applied, err := readApplied(ctx, s.pc.Applied, s.pc.Group, s.topic, s.pc.SessionTimeout, s.log)
	if err != nil {
		return nil, err
	}
	// applied_offsets advances to the highest offset applied (GREATEST),
	// and this consumer applies a partition out of order across keys, so
	// the stored offset may lie past messages still in flight when it was
	// written: by at most the records a subscription holds. The group's
	// commit never passes a gap. So: the commit where it is not ahead of
	// the projection; otherwise (no commit, or a projection behind the
	// group: restored, recreated) the applied offset less that margin.
	// Re-reading applied messages changes nothing.
	margin := int64(2 * s.pc.MaxInFlight)
	for p, o := range parts {
		a, ok := applied[p]
		parts[p] = kgo.NewOffset().At(resumeAt(a, ok, o.EpochOffset().Offset, margin))
	}
	s.log.Debug("Partitions resume from the projection's offsets", watermill.LogFields{
		"consumer_group": s.pc.Group, "topic": s.topic, "partitions": len(parts),
	})
	return offsets, nil
}

// committedPartitions are the partitions of topic a commit succeeded for.
func committedPartitions(resp *kmsg.OffsetCommitResponse, topic string) map[int32]bool {
	ok := map[int32]bool{}
	if resp == nil {
		return ok
	}
	for _, t := range resp.Topics {
		if t.Topic != topic {
			continue
		}
		for _, p := range t.Partitions {
			if kerr.ErrorForCode(p.ErrorCode) == nil {
				ok[p.Partition] = true
			}
		}
	}
	return ok
}

// resumeAt is where a partition starts: applied is the projection's offset
// (hasApplied false: it applied nothing there), committed the group's
// commit (negative: none), margin how far applied may lie past a message
// not applied.
func resumeAt(applied int64, hasApplied bool, committed, margin int64) int64 {
	switch {
	case !hasApplied:
		return 0
	case committed >= 0 && committed <= applied:
		return committed
	default:
		return max(0, applied-margin)
	}
}
