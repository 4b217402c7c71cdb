package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections/read"
)

// contestElection is a general election in miniature: the default
// (presidential) race everywhere, a senate race in North only, and a
// measure everywhere; voters n-1..n-4 in North and s-1..s-2 in South.
type contestElection struct {
	t    *testing.T
	pool *pgxpool.Pool
	seed *testutil.Seeder
	srv  *httptest.Server
	n    int // votes cast
	// payloads are the votes topic's messages (partition 0) by offset.
	payloads map[int64][]byte
}

var contestAt = time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)

func newContestElection(t *testing.T) *contestElection {
	t.Helper()
	e := openContestElection(t)
	e.closeRegistration()
	return e
}

// openContestElection is the election with its registration still open:
// a vote from an unknown voter is held (pending), not rejected.
func openContestElection(t *testing.T) *contestElection {
	t.Helper()
	pool := testutil.Pool(t)
	seed := testutil.NewSeeder(t, pool)
	e := &contestElection{t: t, pool: pool, seed: seed, payloads: map[int64][]byte{}}
	north, _ := domain.NewRegion("North")
	senate, _ := domain.NewContest("senate-north", "Senate (North)", domain.KindCandidate, []domain.Region{north})
	measure, _ := domain.NewContest("measure-1", "Measure 1", domain.KindMeasure, nil)
	seed.Contests(t, senate, measure)
	var cands []domain.Candidate
	for _, pick := range []struct{ id, contest string }{
		{"p-ada", domain.DefaultContest}, {"p-bob", domain.DefaultContest},
		{"s-cy", "senate-north"}, {"s-di", "senate-north"},
		{"m-yes", "measure-1"}, {"m-no", "measure-1"},
	} {
		cands = append(cands, testutil.Candidate(t, pick.id, "Name "+pick.id, "Civic", pick.contest))
	}
	seed.Candidates(t, cands...)
	var voters []domain.Voter
	for _, id := range []string{"n-1", "n-2", "n-3", "n-4", "s-1", "s-2"} {
		voters = append(voters, testutil.Voter(t, id, "Voter", map[byte]string{'n': "North", 's': "South"}[id[0]], "Town", contestAt.AddDate(-30, 0, 0), contestAt.AddDate(0, -1, 0)))
	}
	seed.Voters(t, voters...)
	results, err := read.NewResults(pool)
	if err != nil {
		t.Fatal(err)
	}
	api, err := handlers.NewAPI(results, func(context.Context) error { return nil }, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *contestElection) closeRegistration() {
	e.t.Helper()
	for _, topic := range domain.RegistrationTopics {
		e.seed.CloseRegistration(e.t, topic, contestAt)
	}
}

// vote casts voter's vote for candidate in contest.
func (e *contestElection) vote(voter, contest, candidate string) {
	e.t.Helper()
	e.n++
	v := e.seed.Vote(e.t, e.n, voter, candidate, contest, contestAt)
	b, err := v.Event.MarshalJSON()
	if err != nil {
		e.t.Fatal(err)
	}
	e.payloads[v.Position.Offset] = b
	e.seed.ApplyVotes(e.t, v)
}

type contestBody struct {
	VotesCast      int64 `json:"votes_cast"`
	EligibleVoters int64 `json:"eligible_voters"`
	Candidates     []struct {
		CandidateID string `json:"candidate_id"`
		Votes       int64  `json:"votes"`
	} `json:"candidates"`
	Regions []struct {
		Region  string `json:"region"`
		Decided bool   `json:"decided"`
	} `json:"regions"`
	Rejected   map[string]int64 `json:"rejected"`
	Breakdowns map[string][]struct {
		Bucket string `json:"bucket"`
		Votes  int64  `json:"votes"`
	} `json:"breakdowns"`
	Reporting struct {
		Available bool `json:"available"`
	} `json:"reporting"`
	Decided           bool       `json:"decided"`
	DecidedAt         *time.Time `json:"decided_at"`
	WinnerCandidateID *string    `json:"winner_candidate_id"`
}

func (e *contestElection) contest(id string) contestBody {
	e.t.Helper()
	resp, err := contractClient(e.t).Get(e.srv.URL + "/api/v1/contests/" + id)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET contest %s: %d", id, resp.StatusCode)
	}
	var c contestBody
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func votesOf(c contestBody) map[string]int64 {
	out := map[string]int64{}
	for _, cand := range c.Candidates {
		out[cand.CandidateID] = cand.Votes
	}
	return out
}

func TestContestsCountEachRaceOnItsOwn(t *testing.T) {
	t.Parallel()
	e := newContestElection(t)
	// First vote wins per voter per contest: n-1 votes once in each race,
	// and its second presidential vote is a duplicate.
	e.vote("n-1", domain.DefaultContest, "p-ada")
	e.vote("n-1", "senate-north", "s-cy")
	e.vote("n-1", "measure-1", "m-yes")
	e.vote("n-1", domain.DefaultContest, "p-bob")
	// A South voter may not vote in North's senate race.
	e.vote("s-1", "senate-north", "s-di")
	// A candidate of another contest is unknown in this one.
	e.vote("n-2", "senate-north", "p-bob")
	// A contest nobody registered: rejected (unknown_contest, counted
	// under that contest), and counted nowhere.
	e.vote("n-3", "house-9", "p-ada")

	president, senate, measure := e.contest(domain.DefaultContest), e.contest("senate-north"), e.contest("measure-1")
	if got := votesOf(president); got["p-ada"] != 1 || got["p-bob"] != 0 || president.Rejected["duplicate_voter"] != 1 {
		t.Errorf("president: votes %v, rejected %v; want p-ada 1 and one duplicate", got, president.Rejected)
	}
	if got := votesOf(senate); got["s-cy"] != 1 || got["s-di"] != 0 {
		t.Errorf("senate votes %v, want s-cy 1", got)
	}
	if senate.Rejected["not_eligible"] != 1 || senate.Rejected["unknown_candidate"] != 1 {
		t.Errorf("senate rejected %v, want not_eligible 1 and unknown_candidate 1", senate.Rejected)
	}
	if senate.Reporting.Available {
		t.Errorf("no station has registered, yet reporting is available: it must say so, not show 0 %%")
	}
	if len(senate.Regions) != 1 || senate.Regions[0].Region != "North" || senate.EligibleVoters != 4 {
		t.Errorf("senate regions %+v (eligible %d), want North only with 4 voters", senate.Regions, senate.EligibleVoters)
	}
	if g := senate.Breakdowns["gender"]; len(g) != 1 || g[0].Votes != 1 {
		t.Errorf("senate breakdown by gender %+v, want its one vote", g)
	}
	if got := votesOf(measure); got["m-yes"] != 1 || measure.EligibleVoters != 6 {
		t.Errorf("measure votes %v, eligible %d; want m-yes 1 of 6 eligible", got, measure.EligibleVoters)
	}
	if president.Rejected["unknown_contest"] != 0 || votesOf(president)["p-ada"] != 1 {
		t.Errorf("a vote for an unregistered contest leaked into the default contest: %v", president.Rejected)
	}

	// The routes of contract v1 answer for the default contest alone.
	sresp, err := contractClient(t).Get(e.srv.URL + "/api/v1/summary")
	if err != nil {
		t.Fatal(err)
	}
	var summary struct {
		VotesCast  int64            `json:"votes_cast"`
		Candidates int64            `json:"candidates"`
		Contests   int64            `json:"contests"`
		Rejected   map[string]int64 `json:"rejected"`
	}
	if err := json.NewDecoder(sresp.Body).Decode(&summary); err != nil {
		t.Fatal(err)
	}
	sresp.Body.Close()
	if summary.VotesCast != 1 || summary.Candidates != 2 || summary.Contests != 3 || summary.Rejected["not_eligible"] != 0 {
		t.Errorf("summary %+v, want the default contest's 1 vote of 2 candidates, 3 contests, no senate rejection", summary)
	}
	cresp, err := contractClient(t).Get(e.srv.URL + "/api/v1/results.csv?contest=all")
	if err != nil {
		t.Fatal(err)
	}
	csvBody, _ := io.ReadAll(cresp.Body)
	cresp.Body.Close()
	if lines := strings.Split(strings.TrimSpace(string(csvBody)), "\n"); !strings.HasPrefix(lines[0], "contest,region,") ||
		!strings.Contains(string(csvBody), "senate-north,North,s-cy") || strings.Contains(string(csvBody), "senate-north,South") {
		t.Errorf("results.csv?contest=all:\n%s\nwant a contest column and each contest in its own regions", csvBody)
	}

	resp, err := contractClient(t).Get(e.srv.URL + "/api/v1/contests")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Contests []struct {
			ContestID string `json:"contest_id"`
		} `json:"contests"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(list.Contests) != 3 || list.Contests[0].ContestID != domain.DefaultContest {
		t.Errorf("contests %+v, want three with default first", list.Contests)
	}
	if resp, err := contractClient(t).Get(e.srv.URL + "/api/v1/contests/nope"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown contest: %v %v, want 404", resp.StatusCode, err)
	}
}

// Decided is true exactly when certain: in North's senate race (4 eligible
// voters), 2–0 with 2 out is not decided, 3–0 with 1 out is.
func TestAContestIsDecidedExactlyWhenCertain(t *testing.T) {
	t.Parallel()
	e := newContestElection(t)
	e.vote("n-1", "senate-north", "s-cy")
	e.vote("n-2", "senate-north", "s-cy")
	if c := e.contest("senate-north"); c.Decided || c.WinnerCandidateID != nil || c.Regions[0].Decided {
		t.Fatalf("2–0 with 2 votes out: decided %v (winner %v), want not yet", c.Decided, c.WinnerCandidateID)
	}
	e.vote("n-3", "senate-north", "s-cy")
	c := e.contest("senate-north")
	if !c.Decided || c.WinnerCandidateID == nil || *c.WinnerCandidateID != "s-cy" || !c.Regions[0].Decided {
		t.Fatalf("3–0 with 1 vote out: decided %v (winner %v), want decided for s-cy", c.Decided, c.WinnerCandidateID)
	}
	if c.DecidedAt == nil || !c.DecidedAt.Equal(contestAt) {
		t.Errorf("decided at %v, want the minute of the deciding vote, %v", c.DecidedAt, contestAt)
	}
}

// The CDF export is an ElectionReport the NIST SP 1500-100 V2 JSON schema
// accepts, with every contest, a VoteCounts per selection per region and
// for the district, BallotName the candidate's name and Selection the
// measure choice's name.
func TestResultsExportValidatesAgainstTheNISTSchema(t *testing.T) {
	t.Parallel()
	e := newContestElection(t)
	e.vote("n-1", domain.DefaultContest, "p-ada")
	e.vote("s-1", domain.DefaultContest, "p-bob")
	e.vote("n-1", "senate-north", "s-cy")
	e.vote("n-2", "measure-1", "m-yes")
	e.vote("s-2", "measure-1", "m-no")

	raw := e.cdfReport()

	var doc struct {
		GpUnit []struct {
			ID string `json:"@id"`
		} `json:"GpUnit"`
		Election []struct {
			Candidate []struct {
				ID         string `json:"@id"`
				BallotName struct {
					Text []struct{ Content string } `json:"Text"`
				} `json:"BallotName"`
			} `json:"Candidate"`
			Contest []struct {
				Type             string `json:"@type"`
				Name             string `json:"Name"`
				ContestSelection []struct {
					Selection *struct {
						Text []struct{ Content string } `json:"Text"`
					} `json:"Selection"`
					VoteCounts []struct {
						GpUnitID string `json:"GpUnitId"`
						Count    int64  `json:"Count"`
					} `json:"VoteCounts"`
				} `json:"ContestSelection"`
			} `json:"Contest"`
		} `json:"Election"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	units := map[string]bool{}
	for _, u := range doc.GpUnit {
		units[u.ID] = true
	}
	if !units["gpu-election"] || !units["gpu-region-North"] || !units["gpu-region-South"] {
		t.Errorf("GpUnits %v, want the election and each region", units)
	}
	kinds := map[string]string{}
	for _, contest := range doc.Election[0].Contest {
		kinds[contest.Name] = contest.Type
		for _, sel := range contest.ContestSelection {
			if len(sel.VoteCounts) < 2 {
				t.Errorf("%s: a selection with %d VoteCounts, want the district and its regions", contest.Name, len(sel.VoteCounts))
			}
		}
		if contest.Type == "ElectionResults.BallotMeasureContest" {
			for _, sel := range contest.ContestSelection {
				if sel.Selection == nil || sel.Selection.Text[0].Content == "" || !strings.HasPrefix(sel.Selection.Text[0].Content, "Name m-") {
					t.Errorf("a measure selection without its choice's name: %+v", sel.Selection)
				}
			}
		}
	}
	if kinds["Measure 1"] != "ElectionResults.BallotMeasureContest" || kinds["Senate (North)"] != "ElectionResults.CandidateContest" || kinds["default"] != "ElectionResults.CandidateContest" {
		t.Errorf("contests %v, want the default race, the senate race and the measure", kinds)
	}
	for _, cand := range doc.Election[0].Candidate {
		if cand.BallotName.Text[0].Content != "Name "+strings.TrimPrefix(cand.ID, "cand-") {
			t.Errorf("candidate %s has BallotName %q, want its name", cand.ID, cand.BallotName.Text[0].Content)
		}
	}
}

// cdfReport gets the CDF export and checks it against the NIST SP 1500-100
// V2 JSON schema.
func (e *contestElection) cdfReport() []byte {
	t := e.t
	t.Helper()
	resp, err := contractClient(t).Get(e.srv.URL + "/api/v1/results.cdf.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET results.cdf.json: %d %v", resp.StatusCode, err)
	}
	schemaFile, err := os.Open("testdata/NIST_V2_election_results_reporting.json")
	if err != nil {
		t.Fatal(err)
	}
	defer schemaFile.Close()
	schemaDoc, err := jsonschema.UnmarshalJSON(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("nist.json", schemaDoc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("nist.json")
	if err != nil {
		t.Fatal(err)
	}
	report, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(report); err != nil {
		t.Fatalf("the export is not a valid NIST V2 ElectionReport: %v\n%s", err, raw)
	}
	return raw
}

// An independent candidate and a measure's choices stand for no party
// (issue 24 §4): the independent is registered, counted and exported to
// the CDF without a PartyId, and no party is made up for either.
func TestAnIndependentCandidateCountsAndExportsWithoutAParty(t *testing.T) {
	t.Parallel()
	e := openContestElection(t)
	measure, _ := domain.NewContest("measure-2", "Measure 2", domain.KindMeasure, nil)
	e.seed.Contests(t, measure)
	e.seed.Candidates(t, testutil.Candidate(t, "p-ind", "Name p-ind", "", domain.DefaultContest),
		testutil.Candidate(t, "m2-yes", "Name m2-yes", "", "measure-2"), testutil.Candidate(t, "m2-no", "Name m2-no", "", "measure-2"))
	e.closeRegistration()
	e.vote("n-1", domain.DefaultContest, "p-ind")
	e.vote("s-1", domain.DefaultContest, "p-ada")
	e.vote("n-1", "measure-2", "m2-yes")

	got := map[string]int64{}
	for _, c := range e.contest(domain.DefaultContest).Candidates {
		got[c.CandidateID] = c.Votes
	}
	if got["p-ind"] != 1 || got["p-ada"] != 1 {
		t.Errorf("default contest votes %v, want p-ind 1 and p-ada 1", got)
	}
	var doc struct {
		Party []struct {
			ID   string `json:"@id"`
			Name struct {
				Text []struct{ Content string } `json:"Text"`
			} `json:"Name"`
		} `json:"Party"`
		Election []struct {
			Candidate []struct {
				ID      string  `json:"@id"`
				PartyID *string `json:"PartyId"`
			} `json:"Candidate"`
		} `json:"Election"`
	}
	if err := json.Unmarshal(e.cdfReport(), &doc); err != nil {
		t.Fatal(err)
	}
	var parties []string
	for _, p := range doc.Party {
		parties = append(parties, p.Name.Text[0].Content)
	}
	if len(parties) != 1 || parties[0] != "Civic" {
		t.Errorf("CDF parties %q, want only Civic", parties)
	}
	seen := false
	for _, c := range doc.Election[0].Candidate {
		switch c.ID {
		case "cand-p-ind":
			seen = true
			if c.PartyID != nil {
				t.Errorf("the independent's PartyId = %q, want none", *c.PartyID)
			}
		case "cand-p-ada":
			if c.PartyID == nil || *c.PartyID != doc.Party[0].ID {
				t.Errorf("p-ada's PartyId = %v, want %s", c.PartyID, doc.Party[0].ID)
			}
		}
	}
	if !seen {
		t.Errorf("the independent is not among the CDF's candidates: %+v", doc.Election[0].Candidate)
	}
}

// A voter holding a receipt learns whether the vote was counted, rejected
// (and why) or is pending; a vote_id never seen is 404. No answer carries
// the candidate, the voter, the region or the contest, and the answers for
// votes for different candidates are indistinguishable but for the id.
func TestBallotTrackingTellsTheStatusAndNeverTheChoice(t *testing.T) {
	t.Parallel()
	e := newContestElection(t)
	e.vote("n-1", domain.DefaultContest, "p-ada")              // 1: counted
	e.vote("n-2", domain.DefaultContest, "p-bob")              // 2: counted
	e.vote("n-1", domain.DefaultContest, "p-bob")              // 3: duplicate
	e.vote("s-1", "senate-north", "s-cy")                      // 4: not eligible
	e.vote("n-9-unregistered", domain.DefaultContest, "p-ada") // 5: unknown voter (registration closed)
	get := func(id string) (int, map[string]any, string) {
		t.Helper()
		resp, err := contractClient(t).Get(e.srv.URL + "/api/v1/ballots/" + id)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		return resp.StatusCode, body, string(raw)
	}
	id := func(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }
	for n, want := range map[int][2]string{1: {"counted", ""}, 2: {"counted", ""}, 3: {"rejected", "duplicate_voter"},
		4: {"rejected", "not_eligible"}, 5: {"rejected", "unknown_voter"}} {
		code, body, raw := get(id(n))
		if code != http.StatusOK || body["status"] != want[0] || (want[1] != "" && body["reason"] != want[1]) {
			t.Errorf("ballot %d: %d %s, want %v", n, code, raw, want)
		}
		for _, leak := range []string{"p-ada", "p-bob", "s-cy", "n-1", "n-2", "s-1", "North", "South", "senate"} {
			if strings.Contains(raw, leak) {
				t.Errorf("ballot %d's answer names %q: %s", n, leak, raw)
			}
		}
	}
	// Two counted votes for different candidates answer alike.
	_, a, _ := get(id(1))
	_, b, _ := get(id(2))
	delete(a, "vote_id")
	delete(b, "vote_id")
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("counted votes for different candidates answer differently: %v vs %v", a, b)
	}
	if code, _, _ := get(id(99)); code != http.StatusNotFound {
		t.Errorf("a vote_id never seen: %d, want 404", code)
	}
	if code, _, _ := get("not-a-uuid"); code != http.StatusBadRequest {
		t.Errorf("not a vote_id: %d, want 400", code)
	}
	// A scraper is slowed down: the budget is 30 lookups per address.
	limited := false
	for range 40 {
		if code, _, _ := get(id(99)); code == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Error("40 more lookups from one address were never limited")
	}
}
