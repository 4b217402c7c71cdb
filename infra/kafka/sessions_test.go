package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/votewatch/votewatch/internal/testutil/wait"
)

// rawMember speaks the classic group protocol (the versions sarama sends
// at protocol 2.1) on its own connection, one request at a time, so a test
// decides exactly when it waits, stays silent or dies.
type rawMember struct {
	t       *testing.T
	conn    net.Conn
	corr    int32
	fmt     *kmsg.RequestFormatter
	group   string
	session time.Duration
	id      string
	gen     int32
}

func dialMember(t *testing.T, addr, group string, session time.Duration) *rawMember {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawMember{t: t, conn: conn, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")), group: group, session: session}
}

func (m *rawMember) send(req kmsg.Request) {
	m.t.Helper()
	m.corr++
	if _, err := m.conn.Write(m.fmt.AppendRequest(nil, req, m.corr)); err != nil {
		m.t.Fatal(err)
	}
}

// recv reads the answer to req, or fails after timeout.
func (m *rawMember) recv(req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	_ = m.conn.SetReadDeadline(time.Now().Add(timeout))
	var size [4]byte
	if _, err := io.ReadFull(m.conn, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(m.conn, body); err != nil {
		return nil, err
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body[4:]); err != nil { // after the correlation id
		return nil, err
	}
	return resp, nil
}

const rawTopic = "t"

func (m *rawMember) joinRequest() *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 3
	req.Group = m.group
	req.MemberID = m.id
	req.SessionTimeoutMillis = int32(m.session / time.Millisecond)
	// As the projector's subscriber sets it.
	req.RebalanceTimeoutMillis = int32((m.session + 2*time.Second) / time.Millisecond)
	req.ProtocolType = "consumer"
	meta := kmsg.ConsumerMemberMetadata{Topics: []string{rawTopic}}
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	return req
}

// awaitJoin reads the answer to a JoinGroup already sent.
func (m *rawMember) awaitJoin(req *kmsg.JoinGroupRequest, timeout time.Duration) (*kmsg.JoinGroupResponse, error) {
	r, err := m.recv(req, timeout)
	if err != nil {
		return nil, err
	}
	resp := r.(*kmsg.JoinGroupResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	m.id, m.gen = resp.MemberID, resp.Generation
	return resp, nil
}

func (m *rawMember) join() *kmsg.JoinGroupResponse {
	m.t.Helper()
	req := m.joinRequest()
	m.send(req)
	resp, err := m.awaitJoin(req, 30*time.Second)
	if err != nil {
		m.t.Fatalf("join: %v", err)
	}
	return resp
}

// sync syncs; a leader gives each member one partition of its own.
func (m *rawMember) sync(join *kmsg.JoinGroupResponse) {
	m.t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 2
	req.Group, req.MemberID, req.Generation = m.group, m.id, m.gen
	if join.LeaderID == m.id {
		for i, member := range join.Members {
			a := kmsg.ConsumerMemberAssignment{Topics: []kmsg.ConsumerMemberAssignmentTopic{{Topic: rawTopic, Partitions: []int32{int32(i)}}}}
			req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: member.MemberID, MemberAssignment: a.AppendTo(nil)})
		}
	}
	m.send(req)
	r, err := m.recv(req, 30*time.Second)
	if err != nil {
		m.t.Fatalf("sync: %v", err)
	}
	if err := kerr.ErrorForCode(r.(*kmsg.SyncGroupResponse).ErrorCode); err != nil {
		m.t.Fatalf("sync: %v", err)
	}
}

func (m *rawMember) heartbeat() error {
	m.t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 2
	req.Group, req.MemberID, req.Generation = m.group, m.id, m.gen
	m.send(req)
	r, err := m.recv(req, 30*time.Second)
	if err != nil {
		m.t.Fatalf("heartbeat: %v", err)
	}
	return kerr.ErrorForCode(r.(*kmsg.HeartbeatResponse).ErrorCode)
}

// untilRebalance heartbeats until the answer says a rebalance began.
func (m *rawMember) untilRebalance() {
	m.t.Helper()
	wait.For(m.t, 5*time.Second, "a heartbeat answered REBALANCE_IN_PROGRESS", func() (bool, string) {
		err := m.heartbeat()
		if err != nil && !errors.Is(err, kerr.RebalanceInProgress) {
			m.t.Fatalf("heartbeat: %v, want REBALANCE_IN_PROGRESS", err)
		}
		return err != nil, fmt.Sprintf("heartbeat: %v", err)
	})
}

func members(i *kfake.GroupInfo) string {
	if i == nil {
		return "no group"
	}
	var s []string
	for _, m := range i.Members {
		s = append(s, fmt.Sprintf("%s%v", m.MemberID, m.Assignment))
	}
	return i.State + ": " + strings.Join(s, " ")
}

type groupInfoFunc func(group string) *kfake.GroupInfo

// loseJoinAnswer builds the state a process killed while waiting in
// JoinGroup leaves: a survivor that leads, and the dead member, which the
// survivor gives a partition. It then keeps the survivor's session alive
// and returns how long until the dead member left the group, or false if
// it was still there, holding its partition, after two session timeouts.
//
// kfake drops a dead member's answer (and with it starts no session timer)
// only when its select picks the closed connection over the buffered reply
// channel, about one time in two; otherwise the member expires normally.
func loseJoinAnswer(t *testing.T, addr, group string, info groupInfoFunc, session time.Duration) (time.Duration, bool) {
	t.Helper()
	survivor := dialMember(t, addr, group, session)
	survivor.sync(survivor.join())

	doomed := dialMember(t, addr, group, session)
	doomed.send(doomed.joinRequest())
	wait.For(t, 5*time.Second, "the second member waiting in join", func() (bool, string) {
		i := info(group)
		return i != nil && len(i.Members) == 2, members(i)
	})
	_ = doomed.conn.Close() // SIGKILL: no LeaveGroup
	// The fault is the kill landing a beat before the rebalance ends, as
	// a process's death precedes its group's next round: kfake shows no
	// sign of having read the close, so the beat is slept.
	time.Sleep(50 * time.Millisecond)

	if err := survivor.heartbeat(); !errors.Is(err, kerr.RebalanceInProgress) {
		t.Fatalf("heartbeat during the rebalance: %v, want REBALANCE_IN_PROGRESS", err)
	}
	join := survivor.join()
	if len(join.Members) != 2 || join.LeaderID != survivor.id {
		t.Fatalf("rejoin: %d members, leader %s (survivor %s)", len(join.Members), join.LeaderID, survivor.id)
	}
	survivor.sync(join)

	// The survivor heartbeats, keeping its session, until an answer says
	// the group rebalances: the dead member has left.
	start := time.Now()
	left := wait.Until(2*session, func() bool {
		err := survivor.heartbeat()
		if err != nil && !errors.Is(err, kerr.RebalanceInProgress) {
			t.Fatalf("survivor heartbeat: %v", err)
		}
		return err != nil
	})
	if !left {
		return 0, false
	}
	return time.Since(start), true
}

// slowRejoin builds a rebalance that outlasts the session of the member
// that rejoined first: a new member joins a stable group of two; one member
// rejoins at once, the other keeps heartbeating for one and a half session
// timeouts (finishing its work, as a consumer may) before it rejoins too.
// It returns the first member's answer, or the error it got waiting.
func slowRejoin(t *testing.T, addr, group string, session time.Duration) error {
	t.Helper()
	first := dialMember(t, addr, group, session)
	first.sync(first.join())
	slow := dialMember(t, addr, group, session)
	slowJoin := slow.joinRequest()
	slow.send(slowJoin)
	first.untilRebalance()
	join := first.join()
	slowResp, err := slow.awaitJoin(slowJoin, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); slow.sync(slowResp) }()
	first.sync(join)
	<-done

	newcomer := dialMember(t, addr, group, session)
	newcomer.send(newcomer.joinRequest())
	first.untilRebalance()
	firstJoin := first.joinRequest()
	first.send(firstJoin)
	for start := time.Now(); time.Since(start) < 3*session/2; {
		// The fault itself: the slow member takes one and a half session
		// timeouts to rejoin, heartbeating as a busy consumer does.
		time.Sleep(session / 4)
		_ = slow.heartbeat()
	}
	slow.send(slow.joinRequest())
	_, err = first.awaitJoin(firstJoin, 3*time.Second+session)
	return err
}

// Upstream defects, reproduced on a bare kfake cluster
// (docs/upstream/kfake-group-sessions.md). When a test here fails, kfake
// has fixed that defect and the embedded broker's groupSessions rule for
// it can go.

// A member whose JoinGroup answer was lost never expires: it keeps the
// partition the leader gave it, unread, for as long as the broker runs.
func TestKfakeKeepsAMemberWhoseJoinAnswerWasLost(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for attempt := range 12 {
		if _, left := loseJoinAnswer(t, c.ListenAddrs()[0], fmt.Sprintf("g%d", attempt), c.GroupInfo, time.Second); !left {
			t.Logf("attempt %d: after two session timeouts the dead member still holds its partition: %s", attempt+1, members(c.GroupInfo(fmt.Sprintf("g%d", attempt))))
			return
		}
	}
	t.Fatal("in 12 attempts kfake always expired the dead member: fixed upstream?")
}

// A member waiting in JoinGroup is expired like a silent one, and its
// JoinGroup is never answered: the client reads until it times out.
func TestKfakeNeverAnswersAJoinWhoseMemberItExpired(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = slowRejoin(t, c.ListenAddrs()[0], "g", time.Second)
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Fatalf("the first member's join: %v, want a read timeout (fixed upstream?)", err)
	}
	t.Logf("the first member's JoinGroup was never answered: %v", err)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startBrokerLogging(t *testing.T) (*Broker, *lockedBuffer) {
	t.Helper()
	var logs lockedBuffer
	b, err := StartBroker(BrokerConfig{}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, &logs
}

// The embedded broker expires a member whose join answer was lost, within
// a session timeout, as Kafka would.
func TestBrokerExpiresAMemberWhoseJoinAnswerWasLost(t *testing.T) {
	b, logs := startBrokerLogging(t)
	const session = time.Second
	for attempt := range 12 {
		took, left := loseJoinAnswer(t, b.Addr(), fmt.Sprintf("g%d", attempt), b.cluster.GroupInfo, session)
		if !left {
			t.Fatalf("attempt %d: the dead member outlived two session timeouts: %s", attempt+1, members(b.cluster.GroupInfo(fmt.Sprintf("g%d", attempt))))
		}
		if took > session+sessionGrace {
			t.Fatalf("attempt %d: the dead member left %v after the rebalance, want within a session timeout", attempt+1, took)
		}
		if strings.Contains(logs.String(), "expired group members") {
			t.Logf("attempt %d: the broker expired the dead member %v after the rebalance", attempt+1, took.Round(10*time.Millisecond))
			return
		}
		t.Logf("attempt %d: kfake's own timer expired the dead member after %v", attempt+1, took.Round(10*time.Millisecond))
	}
	t.Fatal("in 12 attempts no member lost its join answer")
}

// The embedded broker keeps a member alive while it waits for its join
// answer, so the answer comes.
func TestBrokerAnswersAJoinThatOutlastsTheSession(t *testing.T) {
	b, _ := startBrokerLogging(t)
	if err := slowRejoin(t, b.Addr(), "g", time.Second); err != nil {
		t.Fatalf("the first member's join: %v", err)
	}
}
