package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/read"
)

// The canvass (issue 24 §2): a station's close report may say how many
// ballots it cast; reporting sets that beside the ballots counted from the
// station (voters, not votes: a ballot holds a vote per contest) and flags
// a difference. The first close report's count stands.
func TestTheCanvassFlagsAStationWhoseCountDiffers(t *testing.T) {
	t.Parallel()
	e := newContestElection(t)
	north, _ := domain.NewRegion("North")
	south, _ := domain.NewRegion("South")
	station := func(id string, region domain.Region) domain.Station {
		s, err := domain.NewStation(id, region)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	n1, n2, n3, s1 := station("north-1", north), station("north-2", north), station("north-3", north), station("south-1", south)
	report := func(s domain.Station, closed bool, ballots int64) {
		t.Helper()
		r, err := domain.NewStationReport(s, closed, contestAt)
		if err == nil && ballots >= 0 {
			r, err = r.WithBallots(ballots)
		}
		if err != nil {
			t.Fatal(err)
		}
		env := projections.Envelope[domain.StationReported]{Event: r, Position: e.seed.Take(domain.TopicStations)}
		if err := e.seed.Store.ApplyStationReports(context.Background(), []projections.Envelope[domain.StationReported]{env}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []domain.Station{n1, n2, n3, s1} {
		report(s, false, -1)
	}
	e.seed.OpenStations(t, n1, n2, n3, s1)
	vote := func(s domain.Station, voter, contest, candidate string) {
		t.Helper()
		e.n++
		v := e.seed.Vote(t, e.n, voter, candidate, contest, contestAt)
		v.Event.Vote = v.Event.Vote.WithStation(s)
		e.seed.ApplyVotes(t, v)
	}
	// north-1: three voters, one of whom also votes in the senate race.
	vote(n1, "n-1", domain.DefaultContest, "p-ada")
	vote(n1, "n-1", "senate-north", "s-cy")
	vote(n1, "n-2", domain.DefaultContest, "p-bob")
	vote(n1, "n-3", domain.DefaultContest, "p-ada")
	// north-3: open, with a vote counted that is not published yet.
	vote(n3, "n-2", "senate-north", "s-di")
	// north-2: one voter counted, though it will report two ballots.
	vote(n2, "n-4", domain.DefaultContest, "p-bob")
	vote(s1, "s-1", domain.DefaultContest, "p-bob")

	report(n1, true, 3)
	report(n1, true, 99) // a second close changes nothing
	report(n2, true, 2)
	report(s1, true, -1) // closes without a count

	resp, err := contractClient(t).Get(e.srv.URL + "/api/v1/stations")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/stations: %d", resp.StatusCode)
	}
	var body struct {
		Flagged  int `json:"flagged"`
		Stations []struct {
			StationID       string     `json:"station_id"`
			Region          string     `json:"region"`
			Closed          bool       `json:"closed"`
			ClosedAt        *time.Time `json:"closed_at"`
			ReportedBallots *int64     `json:"reported_ballots"`
			CountedBallots  *int64     `json:"counted_ballots"`
			Difference      *int64     `json:"difference"`
			Flagged         bool       `json:"flagged"`
		} `json:"stations"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	type row struct {
		closed             bool
		reported, counted  int64
		difference         int64
		hasReport, flagged bool
		hasCount           bool
	}
	got := map[string]row{}
	for _, s := range body.Stations {
		r := row{closed: s.Closed, flagged: s.Flagged}
		if s.CountedBallots != nil {
			r.counted, r.hasCount = *s.CountedBallots, true
		}
		if s.ReportedBallots != nil {
			r.reported, r.hasReport = *s.ReportedBallots, true
		}
		if s.Difference != nil {
			r.difference = *s.Difference
		}
		got[s.StationID] = r
	}
	want := map[string]row{
		"north-1": {closed: true, reported: 3, counted: 3, hasReport: true, hasCount: true},
		"north-2": {closed: true, reported: 2, counted: 1, difference: -1, hasReport: true, flagged: true, hasCount: true},
		"north-3": {counted: 1, hasCount: true},
		"south-1": {closed: true, counted: 1, hasCount: true},
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %+v, want %+v", id, got[id], w)
		}
	}
	if len(got) != len(want) || body.Flagged != 1 {
		t.Errorf("%d stations, %d flagged; want %d and 1", len(got), body.Flagged, len(want))
	}

	// What the public reader gives: an open station's count would time
	// each vote to it, so it comes only with the close.
	rule, err := domain.NewDisclosure(domain.DefaultMinCell)
	if err != nil {
		t.Fatal(err)
	}
	public, err := read.NewPublicResults(e.pool, rule)
	if err != nil {
		t.Fatal(err)
	}
	canvass, err := public.Canvass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range canvass {
		if open := s.ClosedAt == nil; open != (s.CountedBallots == nil) {
			t.Errorf("public canvass of %s (open: %v): counted %v, want a count only once it closed", s.StationID, open, s.CountedBallots)
		}
	}
}

// POST /api/v1/stations/close takes the ballots the station cast, or
// nothing; a bad count is refused naming the field, and nothing is
// published.
func TestAStationCloseMayCarryItsBallots(t *testing.T) {
	t.Parallel()
	closer := &closingIntake{}
	in, err := handlers.NewIntake(closer, handlers.IntakeConfig{
		Stations: []handlers.Station{{Name: "north-1", Token: "canvass-station-token-01", Region: fuzzRegion}},
		Rate:     1e6,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	in.Register(mux)
	for _, c := range []struct {
		body, field string
		status      int
		ballots     int64
		hasBallots  bool
	}{
		{`{"ballots":412}`, "", http.StatusAccepted, 412, true},
		{`{}`, "", http.StatusAccepted, 0, false},
		{``, "", http.StatusAccepted, 0, false},
		{`{"ballots":0}`, "", http.StatusAccepted, 0, true},
		{`{"ballots":-3}`, "ballots", http.StatusBadRequest, 0, false},
		{`{"ballots":"12"}`, "ballots", http.StatusBadRequest, 0, false},
		{`{"ballots":1.5}`, "ballots", http.StatusBadRequest, 0, false},
		{`{"ballot":12}`, "ballot", http.StatusBadRequest, 0, false},
	} {
		closer.mu.Lock()
		closer.reports = nil // each case closes anew
		closer.mu.Unlock()
		rec := serve(mux, "POST", "/api/v1/stations/close", "192.0.2.1:1", "canvass-station-token-01", c.body)
		if rec.Code != c.status {
			t.Errorf("close %q: %d %s, want %d", c.body, rec.Code, rec.Body, c.status)
			continue
		}
		closer.mu.Lock()
		got := closer.reports
		closer.mu.Unlock()
		if c.status != http.StatusAccepted {
			var e struct {
				Error struct{ Field string } `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Field != c.field || len(got) != 0 {
				t.Errorf("close %q: %s (published %d), want an error naming %s and nothing published", c.body, rec.Body, len(got), c.field)
			}
			continue
		}
		if len(got) != 1 || !got[0].Closed() {
			t.Fatalf("close %q published %+v, want one close report", c.body, got)
		}
		if n, ok := got[0].Ballots(); n != c.ballots || ok != c.hasBallots {
			t.Errorf("close %q: ballots %d, %v; want %d, %v", c.body, n, ok, c.ballots, c.hasBallots)
		}
	}
}

// Once a station has reported closed, the intake refuses its votes at once
// (409 station_closed), single or batched, and stores none: the rule would
// reject them after_station_close (issue 24 §2). Another station still
// votes.
func TestIntakeRefusesAClosedStationsVotes(t *testing.T) {
	t.Parallel()
	var stored atomic.Int64
	in, err := handlers.NewIntake(&closingIntake{stored: &stored}, handlers.IntakeConfig{
		Stations: []handlers.Station{{Name: "north-1", Token: "closing-station-token-01", Region: fuzzRegion},
			{Name: "north-2", Token: "open-station-token-0002", Region: fuzzRegion}},
		Rate: 1e6,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	in.Register(mux)
	if rec := serve(mux, "POST", "/api/v1/votes", "192.0.2.1:1", "closing-station-token-01", goodVote(1)); rec.Code != http.StatusAccepted {
		t.Fatalf("vote before the close: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(mux, "POST", "/api/v1/stations/close", "192.0.2.1:1", "closing-station-token-01", `{"ballots":1}`); rec.Code != http.StatusAccepted {
		t.Fatalf("close: %d %s", rec.Code, rec.Body)
	}
	for _, c := range []struct{ path, body string }{
		{"/api/v1/votes", goodVote(2)},
		{"/api/v1/votes:batch", `{"votes":[` + goodVote(3) + `]}`},
	} {
		rec := serve(mux, "POST", c.path, "192.0.2.1:1", "closing-station-token-01", c.body)
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if rec.Code != http.StatusConflict || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error.Code != "station_closed" || !strings.Contains(e.Error.Message, "north-1") {
			t.Errorf("%s after the close: %d %s, want 409 station_closed naming the station", c.path, rec.Code, rec.Body)
		}
	}
	if rec := serve(mux, "POST", "/api/v1/votes", "192.0.2.2:1", "open-station-token-0002", goodVote(4)); rec.Code != http.StatusAccepted {
		t.Errorf("another station's vote: %d %s", rec.Code, rec.Body)
	}
	if n := stored.Load(); n != 2 {
		t.Errorf("%d votes stored, want 2 (one before the close, one from the open station)", n)
	}
}

// closingIntake counts the votes it stores and keeps the close reports,
// refusing a closed station's votes as the outbox does (the outbox's own
// test holds it to that against PostgreSQL).
type closingIntake struct {
	stored  *atomic.Int64
	mu      sync.Mutex
	reports []domain.StationReported
}

func (c *closingIntake) Accept(_ context.Context, station string, votes []domain.VoteCast) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.reports {
		if r.Station().ID() == station {
			return 0, fmt.Errorf("station %s: %w", station, domain.ErrStationClosed)
		}
	}
	if c.stored != nil {
		c.stored.Add(int64(len(votes)))
	}
	return len(votes), nil
}

func (c *closingIntake) CloseStation(_ context.Context, station string, r domain.StationReported) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, prev := range c.reports {
		if prev.Station().ID() == station {
			return false, nil
		}
	}
	c.reports = append(c.reports, r)
	return true, nil
}
