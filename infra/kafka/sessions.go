package kafka

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupSessions gives the embedded broker's consumer groups the session
// rules Kafka has and kfake's classic group coordinator lacks
// (docs/upstream/kfake-group-sessions.md). Without them a projector
// SIGKILLed several times in quick succession wedges its groups:
//
//   - kfake starts a member's session timer only when its JoinGroup answer
//     is delivered. A process killed while waiting in JoinGroup stays a
//     member for as long as the broker runs, and keeps whatever partitions
//     the leader gave it: nobody reads them again. Kafka expires such a
//     member one session timeout after the rebalance.
//     So: a member that has not said a word in the new generation (no
//     SyncGroup, heartbeat or commit of it) a moment after the generation
//     began lost its answer, since a live member syncs as soon as it has
//     it: it is removed (a LeaveGroup on its behalf). The moment is a
//     third of the session timeout (at least half a second), the interval
//     at which consumers heartbeat. That is sooner than Kafka would expire
//     it, which matters: rapid crashes leave several such members, and
//     each costs the group a rebalance. And, as a backstop, a member of a
//     stable group silent for longer than its session timeout is removed.
//   - kfake expires a member that waits in JoinGroup (or in SyncGroup) like
//     any other, and never answers the request it removed it with: the
//     client waits for its read timeout (sarama: 30 s, the "i/o timeout"
//     of the report) and starts over. That happens whenever a rebalance
//     outlasts the session of a member that rejoined early, which a dead
//     member without a timer guarantees. Kafka keeps a member alive while
//     it awaits its join or sync answer.
//     So: while a member awaits an answer, it is heartbeated on its behalf.
//
// The coordinator's state is only observed (request control functions that
// handle nothing, and GroupInfo); every change goes through the protocol.
type groupSessions struct {
	cluster *kfake.Cluster
	client  *kgo.Client
	log     *slog.Logger
	tick    time.Duration

	mu     sync.Mutex
	groups map[string]*groupSession

	stop chan struct{}
	done chan struct{}
}

type groupSession struct {
	// session is the longest session timeout a member asked for.
	session time.Duration
	members map[string]*memberSession
	// epoch is the generation last seen, since when.
	epoch int32
	since time.Time
}

type memberSession struct {
	// heard is when a request naming the member last arrived (or when it
	// was first seen in the group).
	heard time.Time
	// awaiting is the request whose answer the member waits for: a
	// JoinGroup or a SyncGroup; 0 when none.
	awaiting int16
	// gen is the latest generation the member has spoken in; firstEpoch
	// the generation current when it was first seen.
	gen        int32
	firstEpoch int32
	// kept is when it was last heartbeated on its behalf; ours counts how
	// many of those are in flight, so they are not taken for its own.
	kept time.Time
	ours int
}

// sessionGrace lets kfake's own session timer act first where it has one.
const sessionGrace = 500 * time.Millisecond

func startGroupSessions(c *kfake.Cluster, log *slog.Logger) (*groupSessions, error) {
	client, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ClientID("votewatch-broker-sessions"))
	if err != nil {
		return nil, err
	}
	s := &groupSessions{
		cluster: c, client: client, log: log, tick: 100 * time.Millisecond,
		groups: map[string]*groupSession{}, stop: make(chan struct{}), done: make(chan struct{}),
	}
	for _, key := range []kmsg.Key{kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.OffsetCommit, kmsg.LeaveGroup} {
		c.ControlKey(int16(key), s.observe)
	}
	go s.run()
	return s, nil
}

func (s *groupSessions) close() {
	close(s.stop)
	<-s.done
	s.client.Close()
}

func (s *groupSessions) group(name string) *groupSession {
	g := s.groups[name]
	if g == nil {
		g = &groupSession{members: map[string]*memberSession{}}
		s.groups[name] = g
	}
	return g
}

func (s *groupSessions) member(group, id string) *memberSession {
	g := s.group(group)
	m := g.members[id]
	if m == nil {
		// Known by its ID, so answered before; when, is known only once
		// the group has been looked at.
		m = &memberSession{firstEpoch: g.epoch}
		if g.since.IsZero() {
			m.firstEpoch = math.MaxInt32
		}
		g.members[id] = m
	}
	return m
}

// observe runs on the broker's loop for every group request; it only takes
// notes and never handles the request.
func (s *groupSessions) observe(req kmsg.Request) (kmsg.Response, error, bool) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	heard := func(group, id string, awaiting int16, gen int32) {
		if id == "" {
			return
		}
		m := s.member(group, id)
		if awaiting == 0 && m.ours > 0 {
			m.ours-- // our own heartbeat
			return
		}
		m.heard, m.awaiting = now, awaiting
		m.gen = max(m.gen, gen)
	}
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		// A group is known from its first join.
		if g, d := s.group(r.Group), time.Duration(r.SessionTimeoutMillis)*time.Millisecond; d > g.session {
			g.session = d
		}
		heard(r.Group, r.MemberID, int16(kmsg.JoinGroup), 0)
	case *kmsg.SyncGroupRequest:
		heard(r.Group, r.MemberID, int16(kmsg.SyncGroup), r.Generation)
	case *kmsg.HeartbeatRequest:
		heard(r.Group, r.MemberID, 0, r.Generation)
	case *kmsg.OffsetCommitRequest:
		heard(r.Group, r.MemberID, 0, r.Generation)
	case *kmsg.LeaveGroupRequest:
		if g := s.groups[r.Group]; g != nil {
			delete(g.members, r.MemberID)
			for _, m := range r.Members {
				delete(g.members, m.MemberID)
			}
		}
	}
	return nil, nil, false
}

func (s *groupSessions) run() {
	defer close(s.done)
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		names := make([]string, 0, len(s.groups))
		for name := range s.groups {
			names = append(names, name)
		}
		s.mu.Unlock()
		for _, name := range names {
			s.enforce(name)
		}
	}
}

// enforce applies the two rules to one group.
func (s *groupSessions) enforce(name string) {
	info := s.cluster.GroupInfo(name) // not under s.mu: it waits for the broker's loop
	now := time.Now()
	var keep []string
	var expire []string
	var gen int32
	s.mu.Lock()
	g := s.groups[name]
	if info == nil || g == nil {
		// Not created yet (its first JoinGroup is seen before it is
		// handled), or deleted: nothing to enforce.
		s.mu.Unlock()
		return
	}
	if info.Epoch != g.epoch {
		g.epoch, g.since = info.Epoch, now
	}
	settled := info.State == "CompletingRebalance" || info.State == "Stable"
	lostAfter := max(g.session/3, 500*time.Millisecond)
	present := map[string]bool{}
	for _, im := range info.Members {
		present[im.MemberID] = true
		m := g.members[im.MemberID]
		if m == nil {
			m = &memberSession{heard: now, firstEpoch: info.Epoch}
			g.members[im.MemberID] = m
		}
		// Every member present when the generation began was sent its
		// answer; one that has not spoken in it since has lost it. While
		// the next rebalance is prepared, members that arrived after the
		// generation began are waiting for their first answer, not lost.
		rejoining := m.awaiting == int16(kmsg.JoinGroup) && !m.heard.Before(g.since)
		lost := g.session > 0 && m.gen < info.Epoch && now.Sub(g.since) > lostAfter && now.Sub(m.heard) > lostAfter && !rejoining &&
			(settled || info.State == "PreparingRebalance" && m.firstEpoch < info.Epoch)
		silent := info.State == "Stable" && g.session > 0 && now.Sub(m.heard) > g.session+sessionGrace
		switch {
		case lost || silent:
			expire = append(expire, im.MemberID)
			delete(g.members, im.MemberID)
		case info.State == "PreparingRebalance" && m.awaiting == int16(kmsg.JoinGroup),
			info.State == "CompletingRebalance" && m.awaiting == int16(kmsg.SyncGroup) && m.gen == info.Epoch:
			if now.Sub(m.kept) >= g.session/3 {
				m.kept = now
				m.ours++
				keep = append(keep, im.MemberID)
			}
		}
	}
	for id := range g.members {
		if !present[id] {
			delete(g.members, id)
		}
	}
	gen = info.Epoch
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, id := range keep {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.MemberID, req.Generation = name, id, gen
		if _, err := req.RequestWith(ctx, s.client); err != nil {
			s.log.Debug("heartbeat on behalf of a waiting member", "group", name, "member", id, "err", err)
			s.mu.Lock()
			if m := g.members[id]; m != nil && m.ours > 0 {
				m.ours--
			}
			s.mu.Unlock()
		}
	}
	if len(expire) > 0 {
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group = name
		for _, id := range expire {
			req.Members = append(req.Members, kmsg.LeaveGroupRequestMember{MemberID: id})
		}
		if _, err := req.RequestWith(ctx, s.client); err != nil {
			s.log.Warn("cannot expire silent group members", "group", name, "members", expire, "err", err)
			return
		}
		s.log.Info("expired group members that lost their join answer or fell silent", "group", name, "members", len(expire), "session_timeout", g.session)
	}
}
