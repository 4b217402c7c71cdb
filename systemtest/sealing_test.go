package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/internal/testutil"
)

// The secrecy suite's parties that sealing answers (issue 21): someone who
// reads Kafka, and a station holding receipts. Each test tries what the
// review tried and asserts it learns nothing.

// readTopic returns every record of topic, read with a plain Kafka client
// as any reader of the log (or of a backup of it) would.
func (p *pipeline) readTopic(t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	ends, err := p.klog.HighWatermarks(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(0)
	for _, end := range ends {
		want += end
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(p.kafka.Brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	for int64(len(out)) < want {
		fetches := client.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: %d of %d records: %v", topic, len(out), want, err)
		}
		out = append(out, fetches.Records()...)
	}
	return out
}

// candidateIDs are the election's candidates, what a reader would look for.
func candidateIDs(t *testing.T, p *pipeline, voters int) (local []string, candidates []string) {
	t.Helper()
	e := p.registerElection(t, voters)
	for _, c := range e.Candidates {
		candidates = append(candidates, c.Candidate.ID())
	}
	return votersOf(e, testRegion), candidates
}

// TestKafkaReaderLearnsNoChoice: votes taken in by the intake reach the log
// sealed, and the projector still counts each for its candidate.
func TestKafkaReaderLearnsNoChoice(t *testing.T) {
	p := startSystem(t, system{partitions: 4, projector: true, stations: testStations})
	local, candidates := candidateIDs(t, p, 600)
	const n = 20
	var votes []string
	want := map[string]int64{}
	for i := range n {
		c := candidates[i%len(candidates)]
		want[c]++
		votes = append(votes, intakeVote(i+1, local[i], c))
	}
	// One more, sealed by the station itself with the key the intake
	// serves (contract v2).
	var served struct {
		Key string `json:"key"`
	}
	if code := p.get(t, "/api/v1/tally-key", &served); code != http.StatusOK {
		t.Fatalf("GET /api/v1/tally-key: %d", code)
	}
	pub, err := domain.ParseTallyPublicKey(served.Key)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := domain.NewSealer(pub)
	if err != nil {
		t.Fatal(err)
	}
	at, _ := time.Parse(time.RFC3339, testCastAt)
	own, err := domain.NewVote(fmt.Sprintf("01900000-0000-7000-8000-%012d", n+1), local[n], candidates[0], at)
	if err == nil {
		own, err = sealer.Seal(own)
	}
	if err != nil {
		t.Fatal(err)
	}
	ownJSON, _ := json.Marshal(domain.VoteCast{Vote: own})
	want[candidates[0]]++
	votes = append(votes, string(ownJSON))
	if code, body, _ := p.post(t, "/api/v1/votes:batch", stationToken, "application/json", batchOf(votes...)); code != http.StatusAccepted {
		t.Fatalf("batch: %d %v", code, body)
	}
	const all = n + 1
	testutil.Eventually(t, 60*time.Second, "every sealed vote counted", func() (bool, string) {
		var s summaryResp
		p.get(t, "/api/v1/summary", &s)
		return s.VotesCast == all, fmt.Sprintf("%+v", s)
	})
	// The projector opened each choice: the tallies are the votes'.
	var s summaryResp
	p.get(t, "/api/v1/summary", &s)
	if len(s.Rejected) > 0 && sum(s.Rejected) > 0 || s.DeadLettered > 0 {
		t.Fatalf("sealed votes rejected or dead-lettered: %+v", s)
	}
	if s.Leader == nil || s.Leader.Votes != maxOf(want) {
		t.Errorf("leader %+v, want %d votes", s.Leader, maxOf(want))
	}

	// The votes, and the control events beside them (the intake's
	// stations opening on every partition), which carry no choice either.
	var recs []*kgo.Record
	for _, r := range p.readTopic(t, domain.TopicVotes) {
		if _, control, _ := domain.DecodeVotesControl(r.Value); !control {
			recs = append(recs, r)
		}
	}
	if len(recs) != all {
		t.Fatalf("%d votes in the votes topic, want %d", len(recs), all)
	}
	for _, r := range recs {
		var fields map[string]any
		if err := json.Unmarshal(r.Value, &fields); err != nil {
			t.Fatalf("record %d/%d: %v", r.Partition, r.Offset, err)
		}
		if _, ok := fields["candidate_id"]; ok {
			t.Errorf("record %d/%d has a clear candidate_id: %s", r.Partition, r.Offset, r.Value)
		}
		if _, ok := fields["sealed_choice"]; !ok {
			t.Errorf("record %d/%d is not sealed: %s", r.Partition, r.Offset, r.Value)
		}
		for _, c := range candidates {
			if strings.Contains(string(r.Value), c) || strings.Contains(string(r.Key), c) {
				t.Errorf("record %d/%d names candidate %s: %s", r.Partition, r.Offset, c, r.Value)
			}
		}
		for _, h := range r.Headers {
			for _, c := range candidates {
				if strings.Contains(string(h.Value), c) {
					t.Errorf("record %d/%d header %s names candidate %s", r.Partition, r.Offset, h.Key, c)
				}
			}
		}
	}
	// Nor does the intake's own store, for any login that reads it.
	for _, table := range []string{"intake.votes", "intake.outbox"} {
		var text string
		if err := p.pool.QueryRow(context.Background(), "SELECT coalesce(string_agg(t::text, ' '), '') FROM "+table+" t").Scan(&text); err != nil {
			t.Fatal(err)
		}
		for _, c := range candidates {
			if strings.Contains(text, c) {
				t.Errorf("%s names candidate %s", table, c)
			}
		}
	}
	// The replay and the audit's recount open them as live did.
	if code, out := p.cli(t, "replay", "--verify"); code != 0 {
		t.Errorf("replay --verify = %d:\n%s", code, out)
	}
	if code, out := p.cli(t, "audit"); code != 0 {
		t.Errorf("audit = %d:\n%s", code, out)
	}
	// Without the key a replay stops and says why: it dead-letters nothing.
	code, out := testutil.Run(t, "--log-level", "warn", "replay", "--verify",
		"--database-url", p.dsn, "--kafka-brokers", strings.Join(p.kafka.Brokers, ","))
	if code == 0 || !strings.Contains(out, "--tally-key") {
		t.Errorf("replay --verify without the tally key = %d, want a failure naming --tally-key:\n%s", code, out)
	}
}

// TestStationRepostingGuessedChoicesLearnsNothing: a station holding a
// receipt re-posts its vote_id with every candidate in turn; right and
// wrong guesses get the same answer.
func TestStationRepostingGuessedChoicesLearnsNothing(t *testing.T) {
	p := startSystem(t, system{partitions: 4, projector: true, stations: testStations})
	local, candidates := candidateIDs(t, p, 300)
	secret := candidates[1]
	if code, body, _ := p.post(t, "/api/v1/votes", stationToken, "application/json", intakeVote(1, local[0], secret)); code != http.StatusAccepted {
		t.Fatalf("vote: %d %v", code, body)
	}
	answers := map[string]string{}
	for _, guess := range candidates {
		code, body, _ := p.post(t, "/api/v1/votes", stationToken, "application/json", intakeVote(1, local[0], guess))
		answers[guess] = fmt.Sprintf("%d %v", code, body)
		code, body, _ = p.post(t, "/api/v1/votes:batch", stationToken, "application/json", batchOf(intakeVote(1, local[0], guess)))
		answers[guess] += fmt.Sprintf(" / batch %d %v", code, body)
	}
	for guess, a := range answers {
		if a != answers[secret] {
			t.Errorf("guessing %s answers %q; the right choice answers %q", guess, a, answers[secret])
		}
	}
	testutil.Eventually(t, 30*time.Second, "the first vote counted, once", func() (bool, string) {
		var s summaryResp
		p.get(t, "/api/v1/summary", &s)
		return s.VotesCast == 1 && s.Leader != nil && s.Leader.CandidateID == secret, fmt.Sprintf("%+v", s)
	})
}

// TestRequireSealedDeadLettersClearVotesLiveAndInReplay: under
// --require-sealed a clear vote produced straight to Kafka is a dead
// letter, and a replay with the same setting decides it the same.
func TestRequireSealedDeadLettersClearVotesLiveAndInReplay(t *testing.T) {
	p := startSystem(t, system{partitions: 4, projector: true, stations: testStations, requireSealed: true})
	local, candidates := candidateIDs(t, p, 300)
	p.produce(t, record(domain.TopicVotes, local[0], vote(1, local[0], candidates[0])))
	if code, body, _ := p.post(t, "/api/v1/votes", stationToken, "application/json", intakeVote(2, local[1], candidates[0])); code != http.StatusAccepted {
		t.Fatalf("vote: %d %v", code, body)
	}
	testutil.Eventually(t, 30*time.Second, "the sealed vote counted, the clear one dead-lettered", func() (bool, string) {
		var s summaryResp
		p.get(t, "/api/v1/summary", &s)
		return s.VotesCast == 1 && s.DeadLettered == 1, fmt.Sprintf("%+v", s)
	})
	if code, out := p.cli(t, "replay", "--verify"); code != 0 {
		t.Errorf("replay --verify = %d:\n%s", code, out)
	}
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func maxOf(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n = max(n, v)
	}
	return n
}
