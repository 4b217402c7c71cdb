package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/metrics"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/internal/openapitest"
	"github.com/votewatch/votewatch/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// pipeline is the live system of one test: embedded broker, real
// Postgres, the projector and the API, wired as the demo wires them.
type pipeline struct {
	kafka kafka.Config
	dsn   string
	pool  *pgxpool.Pool
	klog  *kafka.Log
	api   string
	// ops serves /metrics, /healthz and /readyz apart from the API, as
	// --metrics-addr does.
	ops string
	// metrics is the registry shared by the projector and the API, as in
	// the demo.
	metrics *metrics.Metrics
	// tallyKey is the system's tally private key file, and opener decodes
	// votes with it, as the projector does: the intake seals every vote.
	tallyKey string
	opener   *domain.Opener
}

func startPipeline(t *testing.T, partitions int32) *pipeline {
	t.Helper()
	return startSystem(t, system{partitions: partitions, projector: true})
}

// system says what startSystem runs.
type system struct {
	partitions int32
	// projector runs the projector in-process (tests of projector
	// processes run their own).
	projector bool
	// kafka is a broker the test manages (default: a fresh one).
	kafka *kafka.Config
	// stations enable the intake API.
	stations []handlers.Station
	// stationRate is each station's votes/s (default 1000).
	stationRate float64
	// minCell is the disclosure rule's k for the projector and the API
	// (default 1: every vote is published within a release tick, so tests
	// of the pipeline read exact figures; the secrecy tests set 10).
	minCell int
	// dsn is a database the test manages (default: a fresh one).
	dsn string
	// logs receives every log line, debug included.
	logs io.Writer
	// transparency turns the in-process projector's transparency log on.
	transparency *app.TransparencyConfig
	// requireSealed makes clear votes dead letters (--require-sealed).
	requireSealed bool
}

// startSystem starts the database and the read API, the broker unless the
// test brings one, and what sys asks for, wired as the demo wires them.
func startSystem(t *testing.T, sys system) *pipeline {
	t.Helper()
	p := &pipeline{dsn: sys.dsn}
	if p.dsn == "" {
		p.dsn = testutil.DatabaseURL(t)
	}
	if sys.kafka != nil {
		p.kafka = *sys.kafka
	} else {
		p.kafka = testutil.Kafka(t, sys.partitions)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if sys.logs != nil {
		log = slog.New(slog.NewTextHandler(sys.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	// The system is one App, as in every command (wild-workouts'
	// NewComponentTestApplication): the test's cleanup stops it, then closes
	// what it opened.
	a := app.New(log)
	t.Cleanup(a.Close)
	ctx := context.Background()
	if _, err := a.OpenDatabase(ctx, app.DatabaseConfig{URL: p.dsn, MaxConns: 16}); err != nil {
		t.Fatal(err)
	}
	if err := a.OpenLog(p.kafka); err != nil {
		t.Fatal(err)
	}
	p.pool, p.klog, p.metrics = a.Pool, a.KafkaLog, a.Metrics
	if err := a.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if sys.minCell == 0 {
		sys.minCell = 1
	}
	a.MinCell = sys.minCell
	// Every system seals: the intake seals each vote to a tally key made
	// for the test, whose private half the projector opens them with.
	keys := t.TempDir()
	p.tallyKey = filepath.Join(keys, "tally.key")
	if err := a.UseSealing(app.SealingConfig{TallyKey: p.tallyKey, DigestKey: filepath.Join(keys, "intake.key"), RequireSealed: sys.requireSealed}, true); err != nil {
		t.Fatal(err)
	}
	p.opener = a.Sealing.Opener
	if sys.projector {
		cfg := app.ProjectorConfig{Group: "test-projector", BatchSize: 100, Writers: 2, Linger: time.Millisecond, SessionTimeout: 6 * time.Second, MinCell: sys.minCell}
		if sys.transparency != nil {
			cfg.Transparency = *sys.transparency
		}
		if _, err := a.StartProjector(cfg); err != nil {
			t.Fatal(err)
		}
	}
	if sys.stationRate == 0 {
		sys.stationRate = 1000
	}
	intake, err := a.StartIntake(app.IntakeConfig{Stations: sys.stations, Rate: sys.stationRate, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := a.ServeAPI("127.0.0.1:0", intake)
	if err != nil {
		t.Fatal(err)
	}
	p.api = "http://" + srv.Addr()
	ops, err := a.ServeOps("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.ops = "http://" + ops.Addr()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("system: %v", err)
		}
	})
	return p
}

// produce publishes records with a plain Kafka client (franz-go, murmur2
// partitioning like the Java client), as any external producer would.
func (p *pipeline) produce(t *testing.T, records ...*kgo.Record) {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(p.kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// produceElection publishes e's records, then closes registration, as a
// real election does before its count is final: votes for anyone not
// registered are held until then, and rejected after.
func (p *pipeline) produceElection(t *testing.T, e *election) {
	t.Helper()
	p.produce(t, e.records...)
	p.closeRegistration(t)
}

func (p *pipeline) closeRegistration(t *testing.T) {
	t.Helper()
	pub, err := kafka.NewPublisher(p.kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := kafka.CloseRegistration(pub, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func record(topic, key string, payload any) *kgo.Record {
	var value []byte
	switch v := payload.(type) {
	case string:
		value = []byte(v)
	default:
		value, _ = json.Marshal(v)
	}
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: value}
}

// apiClient checks every exchange against the OpenAPI document
// (handlers/openapi.yaml): a response that drifts from it fails the request.
func apiClient(t testing.TB) *http.Client { return openapitest.Load(t).Client() }

func (p *pipeline) get(t *testing.T, path string, into any) int {
	t.Helper()
	resp, err := apiClient(t).Get(p.api + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET %s: Content-Type %q, want JSON", path, ct)
	}
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	return resp.StatusCode
}

type summaryResp struct {
	RegisteredVoters int64            `json:"registered_voters"`
	Candidates       int64            `json:"candidates"`
	VotesCast        int64            `json:"votes_cast"`
	Turnout          float64          `json:"turnout"`
	Rejected         map[string]int64 `json:"rejected"`
	DeadLettered     int64            `json:"dead_lettered"`
	Leader           *struct {
		CandidateID string `json:"candidate_id"`
		Votes       int64  `json:"votes"`
	} `json:"leader"`
	UpdatedAt *time.Time `json:"updated_at"`
}

type regionResp struct {
	Region            string  `json:"region"`
	RegisteredVoters  int64   `json:"registered_voters"`
	VotesCast         int64   `json:"votes_cast"`
	Turnout           float64 `json:"turnout"`
	LeaderCandidateID *string `json:"leader_candidate_id"`
	Tallies           []struct {
		CandidateID string `json:"candidate_id"`
		Votes       int64  `json:"votes"`
	} `json:"tallies"`
}

// election is a test election's messages and their ground truth.
type election struct {
	truth
	records  []*kgo.Record
	voterIDs []string
}

// testCastAt is when the tests' votes are cast: an hour before they are
// published, as a real station's upload lags; a vote dated far from when
// it reaches the log is refused (domain.CheckCastTime).
var testCastAt = time.Now().UTC().Add(-time.Hour).Truncate(time.Minute).Format(time.RFC3339)

func vote(n int, voter, candidate string) map[string]string {
	return map[string]string{
		"vote_id": fmt.Sprintf("01900000-0000-7000-8000-%012d", n), "voter_id": voter,
		"candidate_id": candidate, "cast_at": testCastAt,
	}
}

// buildElection makes candidates, voters in four regions and votes with
// every kind of trouble: redeliveries, second votes, unknown voters and
// candidates, and malformed messages on every topic.
func buildElection() *election {
	e := &election{truth: newTruth()}
	candidates := []string{"c-ada", "c-bob", "c-cy"}
	regions := []string{"North", "South", "East", "West"}
	for _, c := range candidates {
		e.records = append(e.records, record("candidates", c, map[string]string{
			"candidate_id": c, "name": "Candidate " + c, "party": "Party of " + c,
			"biography": "", "platform": "", "photo_url": "",
		}))
		e.perCandidate[c] = 0
	}
	e.records = append(e.records, record("candidates", "broken", `{"candidate_id": 7}`))
	e.deadLettered["candidates"]++

	regionOf := map[string]string{}
	for i := range 240 {
		id := fmt.Sprintf("voter-%03d", i)
		region := regions[i%len(regions)]
		regionOf[id] = region
		e.registered[region]++
		e.voterIDs = append(e.voterIDs, id)
		e.records = append(e.records, record("voters", id, map[string]string{
			"voter_id": id, "name": "Person " + id, "gender": []string{"female", "male"}[i%2],
			"birth_date": "1980-05-17", "region": region, "city": "Town", "registered_at": "2026-10-01T09:00:00Z",
		}))
	}
	e.records = append(e.records, record("voters", "bad", `not json at all`))
	e.deadLettered["voters"]++

	n := 0
	cast := func(voter, candidate string) *kgo.Record {
		n++
		r := record("votes", voter, vote(n, voter, candidate))
		e.records = append(e.records, r)
		return r
	}
	for i, voter := range e.voterIDs[:200] {
		c := candidates[(i*i+i/7)%len(candidates)]
		r := cast(voter, c)
		e.perCandidate[c]++
		if e.perRegion[regionOf[voter]] == nil {
			e.perRegion[regionOf[voter]] = map[string]int64{}
		}
		e.perRegion[regionOf[voter]][c]++
		e.counted++
		switch {
		case i%17 == 0: // redelivered: the same message again
			e.records = append(e.records, r)
		case i%23 == 0: // a second vote by the same voter
			cast(voter, candidates[(i+1)%len(candidates)])
			e.rejected["duplicate_voter"]++
		case i%29 == 0:
			cast(fmt.Sprintf("stranger-%d", i), c)
			e.rejected["unknown_voter"]++
		case i%31 == 0:
			cast(voter, "c-nobody")
			// The candidate is checked before the voter's earlier ballot.
			e.rejected["unknown_candidate"]++
			cast(e.voterIDs[200+i%40], "c-nobody")
			e.rejected["unknown_candidate"]++
		case i%37 == 0:
			e.records = append(e.records, record("votes", voter, `{"vote_id": "nope", "voter_id": "`+voter+`"}`))
			e.deadLettered["votes"]++
		case i%41 == 0:
			e.records = append(e.records, record("votes", voter, `{{{`))
			e.deadLettered["votes"]++
		}
	}
	return e
}

func TestPipelineProjectsEveryVoteExactlyOnce(t *testing.T) {
	p := startPipeline(t, 8)
	e := buildElection()
	// Everything is published at once: votes reach the projector while
	// registrations are still being applied, which must not turn a valid
	// vote into an unknown_voter rejection.
	p.produceElection(t, e)

	var wantDead int64
	for _, n := range e.deadLettered {
		wantDead += int64(n)
	}
	var s summaryResp
	testutil.Eventually(t, 60*time.Second, "every event projected", func() (bool, string) {
		s = summaryResp{}
		p.get(t, "/api/v1/summary", &s)
		var rejected int64
		for _, n := range s.Rejected {
			rejected += n
		}
		var wantRejected int64
		for _, n := range e.rejected {
			wantRejected += n
		}
		return s.VotesCast == e.counted && rejected == wantRejected && s.DeadLettered == wantDead,
			fmt.Sprintf("%+v", s)
	})

	if got, want := s.RegisteredVoters, int64(len(e.voterIDs)); got != want {
		t.Errorf("registered voters = %d, want %d", got, want)
	}
	if got, want := s.Candidates, int64(3); got != want {
		t.Errorf("candidates = %d, want %d", got, want)
	}
	for reason, want := range e.rejected {
		if got := s.Rejected[reason]; got != want {
			t.Errorf("rejected[%s] = %d, want %d", reason, got, want)
		}
	}
	if got, want := s.Turnout, float64(e.counted)/float64(len(e.voterIDs)); got != want {
		t.Errorf("turnout = %v, want %v", got, want)
	}
	if s.UpdatedAt == nil {
		t.Error("updated_at is null after events were applied")
	}

	var cands struct {
		Candidates []struct {
			CandidateID string  `json:"candidate_id"`
			Votes       int64   `json:"votes"`
			Share       float64 `json:"share"`
		} `json:"candidates"`
	}
	p.get(t, "/api/v1/candidates", &cands)
	if len(cands.Candidates) != 3 {
		t.Fatalf("candidates: %+v", cands)
	}
	for i, c := range cands.Candidates {
		if got, want := c.Votes, e.perCandidate[c.CandidateID]; got != want {
			t.Errorf("candidate %s votes = %d, want %d", c.CandidateID, got, want)
		}
		if i > 0 && c.Votes > cands.Candidates[i-1].Votes {
			t.Errorf("candidates not sorted by votes: %+v", cands.Candidates)
		}
	}
	if s.Leader == nil || s.Leader.CandidateID != cands.Candidates[0].CandidateID || s.Leader.Votes != cands.Candidates[0].Votes {
		t.Errorf("leader = %+v, want the top candidate %+v", s.Leader, cands.Candidates[0])
	}

	var regions struct {
		Regions []regionResp `json:"regions"`
	}
	p.get(t, "/api/v1/regions", &regions)
	if len(regions.Regions) != 4 {
		t.Fatalf("regions: %+v", regions)
	}
	for _, r := range regions.Regions {
		var one regionResp
		if code := p.get(t, "/api/v1/regions/"+r.Region, &one); code != http.StatusOK {
			t.Errorf("GET region %s: %d", r.Region, code)
		}
		for _, got := range []regionResp{r, one} {
			if got.RegisteredVoters != e.registered[r.Region] {
				t.Errorf("region %s registered = %d, want %d", r.Region, got.RegisteredVoters, e.registered[r.Region])
			}
			var cast int64
			for _, tl := range got.Tallies {
				cast += tl.Votes
				if want := e.perRegion[r.Region][tl.CandidateID]; tl.Votes != want {
					t.Errorf("region %s candidate %s = %d, want %d", r.Region, tl.CandidateID, tl.Votes, want)
				}
			}
			if got.VotesCast != cast {
				t.Errorf("region %s votes_cast %d != sum of tallies %d", r.Region, got.VotesCast, cast)
			}
			if got.LeaderCandidateID == nil || *got.LeaderCandidateID != got.Tallies[0].CandidateID {
				t.Errorf("region %s leader = %v, want %s", r.Region, got.LeaderCandidateID, got.Tallies[0].CandidateID)
			}
		}
	}

	for topic, want := range e.deadLettered {
		dlq := testutil.ReadTopic(t, p.kafka, topic+".dlq", want, 10*time.Second)
		if len(dlq) != want {
			t.Errorf("%s.dlq holds %d messages, want %d", topic, len(dlq), want)
		}
		for _, r := range dlq {
			if reason := header(r, "reason_poisoned"); reason == "" {
				t.Errorf("%s.dlq message without a reason: %s", topic, r.Value)
			}
		}
	}
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestFailedBatchIsNotAckedAndIsRedelivered(t *testing.T) {
	p := startPipeline(t, 4)
	ctx := context.Background()
	// A switch that makes every ballot insert fail, as a lost connection
	// or a full disk would, until it is turned off.
	_, err := p.pool.Exec(ctx, `
		CREATE TABLE fail_switch (on_ boolean);
		INSERT INTO fail_switch VALUES (true);
		CREATE FUNCTION fail_ballots() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF EXISTS (SELECT 1 FROM fail_switch) THEN RAISE EXCEPTION 'injected failure'; END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER fail_ballots BEFORE INSERT ON ballots FOR EACH ROW EXECUTE FUNCTION fail_ballots();`)
	if err != nil {
		t.Fatal(err)
	}
	recs := []*kgo.Record{
		record("candidates", "c1", map[string]string{"candidate_id": "c1", "name": "One", "party": "P"}),
	}
	for i := range 20 {
		id := fmt.Sprintf("v%d", i)
		recs = append(recs, record("voters", id, map[string]string{
			"voter_id": id, "name": "N", "gender": "f", "birth_date": "1990-01-01", "region": "R", "city": "C",
			"registered_at": "2026-10-01T00:00:00Z",
		}))
	}
	for i := range 20 {
		recs = append(recs, record("votes", fmt.Sprintf("v%d", i), vote(i, fmt.Sprintf("v%d", i), "c1")))
	}
	p.produce(t, recs...)

	// While inserts fail nothing is counted, and the projector keeps
	// retrying rather than dropping or dead-lettering the votes.
	p.waitFailing(t, 0, 3, "the projector retrying the failing batches")
	var s summaryResp
	p.get(t, "/api/v1/summary", &s)
	if s.VotesCast != 0 || s.DeadLettered != 0 {
		t.Fatalf("while failing: votes_cast %d, dead_lettered %d; want 0, 0", s.VotesCast, s.DeadLettered)
	}
	if _, err := p.pool.Exec(ctx, "DELETE FROM fail_switch"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "redelivered votes counted", func() (bool, string) {
		s = summaryResp{}
		p.get(t, "/api/v1/summary", &s)
		return s.VotesCast == 20, fmt.Sprintf("%+v", s)
	})
	p.waitQuiet(t, "test-projector")
	p.get(t, "/api/v1/summary", &s)
	if s.VotesCast != 20 || s.Rejected["duplicate_voter"] != 0 {
		t.Errorf("after recovery: votes_cast %d, duplicate_voter %d; want 20, 0", s.VotesCast, s.Rejected["duplicate_voter"])
	}
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

func TestReadAPIServesSnapshotsWithETags(t *testing.T) {
	p := startPipeline(t, 4)
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)
	for _, path := range []string{"/api/v1/summary", "/api/v1/candidates", "/api/v1/regions", "/api/v1/regions/North"} {
		resp, err := apiClient(t).Get(p.api + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		etag := resp.Header.Get("ETag")
		if resp.StatusCode != http.StatusOK || etag == "" || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age") {
			t.Fatalf("GET %s: %d, ETag %q, Cache-Control %q", path, resp.StatusCode, etag, resp.Header.Get("Cache-Control"))
		}
		req, _ := http.NewRequest(http.MethodGet, p.api+path, nil)
		req.Header.Set("If-None-Match", etag)
		resp, err = apiClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", path, resp.StatusCode)
		}
	}
	// A new vote changes the snapshot, and so the ETag.
	var before summaryResp
	resp, _ := http.Get(p.api + "/api/v1/summary")
	old := resp.Header.Get("ETag")
	resp.Body.Close()
	p.get(t, "/api/v1/summary", &before)
	p.produce(t, record("votes", e.voterIDs[239], vote(77_777, e.voterIDs[239], "c-ada")))
	testutil.Eventually(t, 10*time.Second, "a new ETag after a vote", func() (bool, string) {
		resp, err := http.Get(p.api + "/api/v1/summary")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.Header.Get("ETag") != old, resp.Header.Get("ETag")
	})
}
