package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/internal/testutil"
)

const (
	stationToken = "station-token-north-0123456789"
	revokedToken = "station-token-stolen-0123456789"
)

var testStations = []handlers.Station{
	{Name: "north-1", Token: stationToken},
	{Name: "lost-terminal", Token: revokedToken, Revoked: true},
}

// post sends body to the intake API with token (none when empty) and
// returns the status, the decoded JSON answer and the response.
func (p *pipeline) post(t *testing.T, path, token, contentType, body string) (int, map[string]any, *http.Response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.api+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := apiClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST %s: %d, not JSON: %s", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out, resp
}

func intakeVote(n int, voter, candidate string) string {
	b, _ := json.Marshal(vote(n, voter, candidate))
	return string(b)
}

func batchOf(votes ...string) string {
	return `{"votes":[` + strings.Join(votes, ",") + `]}`
}

func TestIntakeRefusesBadRequestsNamingTheProblem(t *testing.T) {
	p := startSystem(t, system{partitions: 4, projector: true, stations: testStations})
	good := intakeVote(1, "voter-001", "c-ada")
	const js = "application/json"
	huge := batchOf(strings.Repeat(good+",", 1001) + good)
	tests := []struct {
		name, path, token, contentType, body string
		status                               int
		code, field                          string
	}{
		{"no token", "/api/v1/votes", "", js, good, 401, "unauthorized", "Authorization"},
		{"unknown token", "/api/v1/votes", "not-a-station-token-at-all", js, good, 401, "unauthorized", "Authorization"},
		{"revoked station", "/api/v1/votes", revokedToken, js, good, 403, "forbidden", "Authorization"},
		{"wrong content type", "/api/v1/votes", stationToken, "text/plain", good, 415, "unsupported_media_type", "Content-Type"},
		{"not JSON", "/api/v1/votes", stationToken, js, `{{`, 400, "invalid", "body"},
		{"empty body", "/api/v1/votes", stationToken, js, ``, 400, "invalid", "body"},
		{"unknown field", "/api/v1/votes", stationToken, js, `{"vote_id":"01900000-0000-7000-8000-000000000001","voter_id":"voter-001","candidate":"c-ada","cast_at":"2026-11-03T15:04:05Z"}`, 400, "invalid", "candidate"},
		{"bad vote id", "/api/v1/votes", stationToken, js, strings.Replace(good, "01900000-0000-7000-8000-000000000001", "nope", 1), 400, "invalid", "vote_id"},
		{"SQL-looking voter", "/api/v1/votes", stationToken, js, strings.Replace(good, "voter-001", "x'; DROP TABLE ballots; --", 1), 400, "invalid", "voter_id"},
		{"missing cast_at", "/api/v1/votes", stationToken, js, `{"vote_id":"01900000-0000-7000-8000-000000000002","voter_id":"voter-002","candidate_id":"c-ada"}`, 400, "invalid", "cast_at"},
		{"wrong type", "/api/v1/votes", stationToken, js, `{"vote_id":"01900000-0000-7000-8000-000000000002","voter_id":7,"candidate_id":"c-ada","cast_at":"2026-11-03T15:04:05Z"}`, 400, "invalid", "voter_id"},
		{"trailing data", "/api/v1/votes", stationToken, js, good + `{}`, 400, "invalid", "body"},
		{"too large", "/api/v1/votes", stationToken, js, `{"voter_id":"` + strings.Repeat("x", 9000) + `"}`, 413, "too_large", "body"},
		{"bad item in batch", "/api/v1/votes:batch", stationToken, js, batchOf(good, strings.Replace(intakeVote(3, "voter-003", "c-bob"), "2026-11-03T15:04:05Z", "yesterday", 1)), 400, "invalid", "votes[1].cast_at"},
		{"non-object in batch", "/api/v1/votes:batch", stationToken, js, batchOf(good, `7`), 400, "invalid", "votes[1]"},
		{"empty batch", "/api/v1/votes:batch", stationToken, js, `{"votes":[]}`, 400, "invalid", "votes"},
		{"batch over 1000", "/api/v1/votes:batch", stationToken, js, huge, 400, "invalid", "votes"},
		{"vote_id reused for another choice", "/api/v1/votes", stationToken, js, intakeVote(1, "voter-001", "c-bob"), 409, "conflict", ""},
	}
	// The first good vote is accepted before the table runs, so the reuse
	// case has something to conflict with.
	if code, body, _ := p.post(t, "/api/v1/votes", stationToken, js, good); code != http.StatusAccepted || body["status"] != "accepted" {
		t.Fatalf("good vote: %d %v", code, body)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, resp := p.post(t, tc.path, tc.token, tc.contentType, tc.body)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %v", code, tc.status, body)
			}
			if tc.code == "" {
				return
			}
			e, _ := body["error"].(map[string]any)
			if e["code"] != tc.code || (tc.field != "" && e["field"] != tc.field) {
				t.Errorf("error %v, want code %s field %s", e, tc.code, tc.field)
			}
			if msg, _ := e["message"].(string); msg == "" || strings.Contains(msg, stationToken) {
				t.Errorf("message %q: empty or leaks the token", msg)
			}
			if code == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if code, _, _ := p.post(t, "/api/v1/votes", stationToken, js, good); code != http.StatusAccepted {
		t.Errorf("the same vote again: %d, want 202 (a retry is harmless)", code)
	}
	req, _ := http.NewRequest(http.MethodGet, p.api+"/api/v1/votes", nil)
	resp, err := apiClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("GET /api/v1/votes: %d %s, want a JSON 405", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestIntakeRateLimitsEachStation(t *testing.T) {
	p := startSystem(t, system{partitions: 4, stations: testStations, stationRate: 1})
	var votes []string
	for i := range 1000 {
		votes = append(votes, intakeVote(i+1, fmt.Sprintf("voter-%04d", i), "c-ada"))
	}
	if code, body, _ := p.post(t, "/api/v1/votes:batch", stationToken, "application/json", batchOf(votes...)); code != http.StatusAccepted || body["accepted"] != float64(1000) {
		t.Fatalf("a full batch within the burst: %d %v", code, body)
	}
	code, body, resp := p.post(t, "/api/v1/votes", stationToken, "application/json", intakeVote(5000, "voter-5000", "c-ada"))
	if code != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the rate: %d %v (Retry-After %q), want 429 with Retry-After", code, body, resp.Header.Get("Retry-After"))
	}
}

// The intake's promise: a vote answered 202 is never lost, even when Kafka
// is down at the time; it reaches the tallies once Kafka is back, and a
// station retrying changes nothing.
func TestIntakeKeepsAcceptingWhileKafkaIsDownAndLosesNothing(t *testing.T) {
	brokerDir := t.TempDir()
	broker, err := kafka.StartBroker(kafka.BrokerConfig{DataDir: brokerDir}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	addr := broker.Addr()
	kcfg := kafka.Config{Brokers: []string{addr}, Partitions: 4}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, kcfg, kafka.EventTopics(4)); err != nil {
		t.Fatal(err)
	}
	defer func() { broker.Close() }()
	p := startSystem(t, system{projector: true, kafka: &kcfg, stations: testStations})

	e := p.registerElection(t, 400)
	candidates := e.Candidates
	var votes []string
	for i, v := range e.Voters[:150] {
		votes = append(votes, intakeVote(i+1, v.Voter.ID(), candidates[i%len(candidates)].Candidate.ID()))
	}
	send := func(from, to int) {
		t.Helper()
		if code, body, _ := p.post(t, "/api/v1/votes:batch", stationToken, "application/json", batchOf(votes[from:to]...)); code != http.StatusAccepted {
			t.Fatalf("batch %d–%d: %d %v", from, to, code, body)
		}
	}
	send(0, 50)
	waitForVotes(t, p, 50)

	broker.Close()
	// Kafka is gone: stations keep voting, one by one and in batches.
	for i := 50; i < 100; i++ {
		if code, body, _ := p.post(t, "/api/v1/votes", stationToken, "application/json", votes[i]); code != http.StatusAccepted {
			t.Fatalf("vote %d while Kafka is down: %d %v", i, code, body)
		}
	}
	send(100, 150)
	send(0, 150) // a station that never saw its answers retries everything
	var pending int64
	if err := p.pool.QueryRow(context.Background(), "SELECT count(*) FROM intake.outbox").Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending == 0 {
		t.Error("the outbox is empty while Kafka is down: where did the votes go?")
	}
	if got := scrape(t, p.api+"/metrics")["votewatch_outbox_pending"]; got != float64(pending) {
		t.Errorf("votewatch_outbox_pending = %v, want %d", got, pending)
	}

	if broker, err = kafka.StartBroker(kafka.BrokerConfig{Port: portOf(t, addr), DataDir: brokerDir}, testLogger()); err != nil {
		t.Fatal(err)
	}
	waitForVotes(t, p, 150)
	testutil.Eventually(t, 30*time.Second, "the outbox drained", func() (bool, string) {
		err := p.pool.QueryRow(context.Background(), "SELECT count(*) FROM intake.outbox").Scan(&pending)
		return err == nil && pending == 0, fmt.Sprintf("%d pending, %v", pending, err)
	})
	time.Sleep(500 * time.Millisecond)
	var s summaryResp
	p.get(t, "/api/v1/summary", &s)
	if s.VotesCast != 150 || s.Rejected["duplicate_voter"] != 0 {
		t.Errorf("after the outage: %+v, want 150 votes and no duplicates", s)
	}
	if code, out := p.cli(t, "replay", "--verify"); code != 0 {
		t.Errorf("replay --verify = %d:\n%s", code, out)
	}
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	var port int
	if _, err := fmt.Sscanf(addr[strings.LastIndexByte(addr, ':')+1:], "%d", &port); err != nil {
		t.Fatal(err)
	}
	return port
}
