package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/outbox"
	"github.com/votewatch/votewatch/infra/simulator"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/internal/testutil"
)

const (
	stationToken = "station-token-north-0123456789"
	revokedToken = "station-token-stolen-0123456789"
)

// testRegion is the region the test stations serve: the default
// election's largest, so a few hundred voters include enough of its own.
var testRegion, _ = domain.NewRegion("CA")

var testStations = []handlers.Station{
	{Name: "north-1", Token: stationToken, Region: testRegion},
	{Name: "lost-terminal", Token: revokedToken, Region: testRegion, Revoked: true},
}

// votersOf returns the ids of e's voters registered in region.
func votersOf(e *simulator.Election, region domain.Region) []string {
	var ids []string
	for _, v := range e.Voters {
		if v.Voter.Region() == region {
			ids = append(ids, v.Voter.ID())
		}
	}
	return ids
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
	// The intake started with a revoked token: an operator action.
	p.waitForAction(t, domain.ActionStationRevoked, 1)
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
		{"bad item in batch", "/api/v1/votes:batch", stationToken, js, batchOf(good, strings.Replace(intakeVote(3, "voter-003", "c-bob"), testCastAt, "yesterday", 1)), 400, "invalid", "votes[1].cast_at"},
		{"non-object in batch", "/api/v1/votes:batch", stationToken, js, batchOf(good, `7`), 400, "invalid", "votes[1]"},
		{"empty batch", "/api/v1/votes:batch", stationToken, js, `{"votes":[]}`, 400, "invalid", "votes"},
		{"batch over 1000", "/api/v1/votes:batch", stationToken, js, huge, 400, "invalid", "votes"},
		// No oracle: a reused vote_id answers as a retry whatever its choice
		// (the first vote stands); only what the station knows conflicts.
		{"vote_id reused for another choice", "/api/v1/votes", stationToken, js, intakeVote(1, "voter-001", "c-bob"), 202, "", ""},
		{"vote_id reused for another voter", "/api/v1/votes", stationToken, js, intakeVote(1, "voter-009", "c-ada"), 409, "conflict", ""},
		{"station named by the client", "/api/v1/votes", stationToken, js, strings.Replace(good, `"voter_id"`, `"station_id":"elsewhere","voter_id"`, 1), 400, "invalid", "station_id"},
		{"bad contest", "/api/v1/votes", stationToken, js, strings.Replace(intakeVote(4, "voter-004", "c-ada"), `"voter_id"`, `"contest_id":"no spaces allowed","voter_id"`, 1), 400, "invalid", "contest_id"},
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
	// Contract v1.2: a station votes in any contest.
	inContest := strings.Replace(intakeVote(5, "voter-005", "s-cy"), `"voter_id"`, `"contest_id":"senate-north","voter_id"`, 1)
	if code, body, _ := p.post(t, "/api/v1/votes", stationToken, js, inContest); code != http.StatusAccepted {
		t.Errorf("a vote in a contest: %d %v, want 202", code, body)
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

	e := p.registerElection(t, 2500)
	candidates := e.Candidates
	local := votersOf(e, testRegion)
	if len(local) < 150 {
		t.Fatalf("only %d voters in %s", len(local), testRegion)
	}
	var votes []string
	for i, id := range local[:150] {
		votes = append(votes, intakeVote(i+1, id, candidates[i%len(candidates)].Candidate.ID()))
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
	if got := scrape(t, p.ops+"/metrics")["votewatch_outbox_pending"]; got != float64(pending) {
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
	p.waitQuiet(t, "test-projector")
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

// A station serves its own region: its vote for a voter elsewhere is
// rejected as wrong_station, and every decision is counted per station.
func TestIntakeBindsStationsToTheirRegion(t *testing.T) {
	p := startSystem(t, system{partitions: 4, projector: true, stations: testStations})
	e := p.registerElection(t, 600)
	local := votersOf(e, testRegion)
	var elsewhere string
	for _, v := range e.Voters {
		if v.Voter.Region() != testRegion {
			elsewhere = v.Voter.ID()
			break
		}
	}
	candidate := e.Candidates[0].Candidate.ID()
	for i, voter := range []string{local[0], elsewhere} {
		if code, body, _ := p.post(t, "/api/v1/votes", stationToken, "application/json", intakeVote(i+1, voter, candidate)); code != http.StatusAccepted {
			t.Fatalf("vote %d: %d %v", i, code, body)
		}
	}
	testutil.Eventually(t, 30*time.Second, "both votes decided", func() (bool, string) {
		var s summaryResp
		p.get(t, "/api/v1/summary", &s)
		return s.VotesCast == 1 && s.Rejected["wrong_station"] == 1, fmt.Sprintf("%+v", s)
	})
	m := scrape(t, p.ops+"/metrics")
	for series, want := range map[string]float64{
		`votewatch_projection_station_votes{outcome="counted",station="north-1"}`:       1,
		`votewatch_projection_station_votes{outcome="wrong_station",station="north-1"}`: 1,
	} {
		if got := m[series]; got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if code, out := p.cli(t, "replay", "--verify"); code != 0 {
		t.Errorf("replay --verify = %d:\n%s", code, out)
	}
}

func TestIntakeLimitsFailedAuthenticationPerAddress(t *testing.T) {
	p := startSystem(t, system{partitions: 4, stations: testStations})
	good := intakeVote(1, "voter-001", "c-ada")
	for i := range 10 {
		if code, body, _ := p.post(t, "/api/v1/votes", "guessed-token-000000000"+fmt.Sprint(i), "application/json", good); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %v, want 401", i, code, body)
		}
	}
	// The address's guesses are refused for a while; a station with a good
	// token behind the same address is not held up.
	code, body, _ := p.post(t, "/api/v1/votes", "guessed-token-0000000099", "application/json", good)
	if e, _ := body["error"].(map[string]any); code != http.StatusTooManyRequests || e["code"] != "rate_limited" {
		t.Errorf("an 11th guess: %d %v, want 429 rate_limited", code, body)
	}
	if code, body, _ := p.post(t, "/api/v1/votes", stationToken, "application/json", good); code != http.StatusAccepted {
		t.Errorf("a good token after 10 guesses from its address: %d %v, want 202", code, body)
	}
}

func TestPlaceholderTokensAreRefusedAtStartUp(t *testing.T) {
	stations, err := app.ReadStations(nil, "../deploy/station-tokens.example")
	if err != nil {
		t.Fatalf("the example file does not parse: %v", err)
	}
	if len(stations) != 2 || stations[0].Region.String() != "North" {
		t.Fatalf("stations = %+v", stations)
	}
	_, err = handlers.NewIntake(nopIntake{}, handlers.IntakeConfig{Stations: stations, Rate: 1}, testLogger())
	if err == nil || !strings.Contains(err.Error(), "placeholder") {
		t.Errorf("NewIntake with the example's tokens: %v, want a placeholder error", err)
	}
}

type nopIntake struct{}

func (nopIntake) Accept(context.Context, string, []domain.VoteCast) (int, error) { return 0, nil }

func (nopIntake) CloseStation(context.Context, string, domain.StationReported) (bool, error) {
	return true, nil
}

// `votewatch verify` holds the intake to its promise: every vote answered
// 202 is in the votes topic or still pending in the outbox. It passes when
// the relay did its work, names a vote whose outbox row was deleted before
// it was relayed, and says so when there is no intake to check.
func TestVerifyReconcilesTheIntakeWithTheLog(t *testing.T) {
	p := startSystem(t, system{partitions: 4, projector: true})
	box, err := outbox.New(p.pool, watermill.NopLogger{}, outbox.Config{DigestKey: bytes.Repeat([]byte{7}, outbox.MinDigestKeySize)})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kafka.NewPublisher(p.kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	next := 0
	accept := func(n int) {
		t.Helper()
		var votes []domain.VoteCast
		for range n {
			next++
			v, err := domain.NewVote(fmt.Sprintf("01900000-0000-7000-8000-%012d", next), fmt.Sprintf("voter-%03d", next), "c-ada", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			votes = append(votes, domain.VoteCast{Vote: v})
		}
		if _, err := box.Accept(context.Background(), "north-1", votes); err != nil {
			t.Fatal(err)
		}
	}
	relay := func() {
		t.Helper()
		fwd, err := box.NewRelay(pub, outbox.RelayConfig{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- fwd.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("relay: %v", err)
			}
		}()
		testutil.Eventually(t, 30*time.Second, "the outbox drained", func() (bool, string) {
			var pending int
			err := p.pool.QueryRow(context.Background(), "SELECT count(*) FROM intake.outbox").Scan(&pending)
			return err == nil && pending == 0, fmt.Sprintf("%d pending, %v", pending, err)
		})
	}
	const check = "every vote the intake accepted is in the votes topic or pending in the outbox"

	accept(20)
	if code, out := p.cli(t, "verify"); code != 0 || !strings.Contains(out, "ok    "+check) {
		t.Errorf("verify with 20 votes pending = %d, want 0 and the check passed:\n%s", code, out)
	}
	relay()
	if code, out := p.cli(t, "verify"); code != 0 || !strings.Contains(out, "ok    "+check) {
		t.Errorf("verify with every vote relayed = %d, want 0 and the check passed:\n%s", code, out)
	}

	accept(20)
	var lost string
	err = p.pool.QueryRow(context.Background(), `
		DELETE FROM intake.outbox WHERE "offset" = (SELECT max("offset") FROM intake.outbox)
		RETURNING convert_from(decode(payload->>'payload', 'base64'), 'UTF8')::json->>'vote_id'`).Scan(&lost)
	if err != nil {
		t.Fatal(err)
	}
	relay()
	code, out := p.cli(t, "verify")
	if code == 0 || !strings.Contains(out, "FAIL  "+check) || !strings.Contains(out, "1 of 40 accepted votes are neither in the votes topic nor in the outbox") || !strings.Contains(out, lost) {
		t.Errorf("verify with %s deleted from the outbox = %d, want a failed check naming it:\n%s", lost, code, out)
	}

	if _, err := p.pool.Exec(context.Background(), "DROP SCHEMA intake CASCADE"); err != nil {
		t.Fatal(err)
	}
	if code, out := p.cli(t, "verify"); code != 0 || !strings.Contains(out, "skip  "+check+"\n      skipped: no intake schema") {
		t.Errorf("verify without an intake = %d, want 0 and the check skipped:\n%s", code, out)
	}
}

// Reporting progress: the intake registers its stations at start-up, a
// station reports closing through the API, and each contest shows its
// regions' stations reporting, closed over registered.
func TestStationsReportClosing(t *testing.T) {
	p := startSystem(t, system{partitions: 4, projector: true, stations: testStations})
	e := p.registerElection(t, 300)
	local := votersOf(e, testRegion)
	if code, body, _ := p.post(t, "/api/v1/votes", stationToken, "application/json", intakeVote(1, local[0], e.Candidates[0].Candidate.ID())); code != http.StatusAccepted {
		t.Fatalf("vote: %d %v", code, body)
	}
	type reporting struct {
		Available      bool  `json:"available"`
		StationsClosed int64 `json:"stations_closed"`
		Stations       int64 `json:"stations"`
	}
	var contest struct {
		Reporting reporting `json:"reporting"`
		Regions   []struct {
			Region    string    `json:"region"`
			Reporting reporting `json:"reporting"`
		} `json:"regions"`
	}
	regionReport := func() reporting {
		for _, r := range contest.Regions {
			if r.Region == testRegion.String() {
				return r.Reporting
			}
		}
		return reporting{}
	}
	// The simulated election registers one station per region; the
	// intake adds north-1 in CA (the revoked terminal is not a station
	// that reports).
	regions := int64(len(votersByRegion(e)))
	testutil.Eventually(t, 30*time.Second, "the stations registered", func() (bool, string) {
		p.get(t, "/api/v1/contests/default", &contest)
		return contest.Reporting == reporting{true, 0, regions + 1} && regionReport() == reporting{true, 0, 2}, fmt.Sprintf("%+v", contest.Reporting)
	})
	// The station says it cast two ballots; one was counted. Closing twice
	// changes nothing: the first close report's count stands.
	for _, body := range []string{`{"ballots":2}`, `{}`} {
		if code, resp, _ := p.post(t, "/api/v1/stations/close", stationToken, "application/json", body); code != http.StatusAccepted {
			t.Fatalf("close %s: %d %v", body, code, resp)
		}
	}
	if code, _, _ := p.post(t, "/api/v1/stations/close", revokedToken, "application/json", `{}`); code != http.StatusForbidden {
		t.Errorf("a revoked station closing: %d, want 403", code)
	}
	testutil.Eventually(t, 30*time.Second, "the station closed", func() (bool, string) {
		p.get(t, "/api/v1/contests/default", &contest)
		return contest.Reporting == reporting{true, 1, regions + 1} && regionReport() == reporting{true, 1, 2}, fmt.Sprintf("%+v", contest.Reporting)
	})
	// The canvass sets the station's count beside what was counted from it
	// and flags the difference; the close is on record.
	testutil.Eventually(t, 30*time.Second, "the canvass flags north-1", func() (bool, string) {
		var canvass struct {
			Flagged  int `json:"flagged"`
			Stations []struct {
				StationID       string `json:"station_id"`
				ReportedBallots *int64 `json:"reported_ballots"`
				CountedBallots  int64  `json:"counted_ballots"`
				Flagged         bool   `json:"flagged"`
			} `json:"stations"`
		}
		p.get(t, "/api/v1/stations", &canvass)
		for _, s := range canvass.Stations {
			if s.StationID == "north-1" {
				return s.ReportedBallots != nil && *s.ReportedBallots == 2 && s.CountedBallots == 1 && s.Flagged && canvass.Flagged == 1, fmt.Sprintf("%+v", canvass)
			}
		}
		return false, fmt.Sprintf("%+v", canvass)
	})
	testutil.Eventually(t, 30*time.Second, "the close on record", func() (bool, string) {
		var audit struct {
			Actions []struct{ Action, Detail, Result string } `json:"actions"`
		}
		p.get(t, "/api/v1/audit", &audit)
		n := 0
		for _, a := range audit.Actions {
			if a.Action == "station_closed" && strings.Contains(a.Detail, "north-1") && a.Result == "ok" {
				n++
			}
		}
		return n == 1, fmt.Sprintf("%+v", audit.Actions) // the second close changed nothing, so records nothing
	})
	if code, out := p.cli(t, "replay", "--verify"); code != 0 {
		t.Errorf("replay --verify = %d:\n%s", code, out)
	}
}

func votersByRegion(e *simulator.Election) map[domain.Region]int {
	out := map[domain.Region]int{}
	for _, v := range e.Voters {
		out[v.Voter.Region()]++
	}
	return out
}

// Issue 24's done-when, as `votewatch verify` says it: once the intake
// serves stations, a vote in the log stamped with a station it never
// accepted (a ghost station's, written past the intake) fails the second
// reconciliation, named.
func TestVerifyNamesAGhostStationsVote(t *testing.T) {
	p := startSystem(t, system{partitions: 2, projector: true})
	pub, err := kafka.NewPublisher(p.kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	box, err := outbox.New(p.pool, watermill.NopLogger{}, outbox.Config{DigestKey: bytes.Repeat([]byte{7}, outbox.MinDigestKeySize),
		VotePartitions: func() (int, error) { return pub.Partitions(domain.TopicVotes) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	north, _ := domain.NewRegion("North")
	station, _ := domain.NewStation("north-1", north)
	if err := box.Serve(ctx, []domain.Station{station}); err != nil {
		t.Fatal(err)
	}
	v, _ := domain.NewVote("01900000-0000-7000-8000-000000000001", "voter-001", "c-ada", time.Now())
	if _, err := box.Accept(ctx, "north-1", []domain.VoteCast{{Vote: v.WithStation(station)}}); err != nil {
		t.Fatal(err)
	}
	fwd, err := box.NewRelay(pub, outbox.RelayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fwd.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	testutil.Eventually(t, 30*time.Second, "the outbox drained", func() (bool, string) {
		var pending int
		err := p.pool.QueryRow(ctx, "SELECT count(*) FROM intake.outbox").Scan(&pending)
		return err == nil && pending == 0, fmt.Sprintf("%d pending, %v", pending, err)
	})
	const check = "every vote in the log stamped with a station was accepted by the intake"
	if code, out := p.cli(t, "verify"); !strings.Contains(out, "ok    "+check) {
		t.Errorf("verify before the ghost's vote = %d, want the check passed:\n%s", code, out)
	}

	ghostStation, _ := domain.NewStation("ghost-station", north)
	ghost, _ := domain.NewVote("01900000-0000-7000-8000-000000000666", "voter-ghost", "c-ada", time.Now())
	msg, err := kafka.EventMessage(domain.VoteCast{Vote: ghost.WithStation(ghostStation)})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(domain.TopicVotes, msg); err != nil {
		t.Fatal(err)
	}
	code, out := p.cli(t, "verify")
	if code == 0 || !strings.Contains(out, "FAIL  "+check) || !strings.Contains(out, ghost.ID()) || !strings.Contains(out, "ghost-station") {
		t.Errorf("verify with a ghost station's vote = %d, want a failed check naming it:\n%s", code, out)
	}
}
