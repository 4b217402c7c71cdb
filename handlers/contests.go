package handlers

import (
	"net/http"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections/read"
)

type contestSummaryJSON struct {
	ContestID         string  `json:"contest_id"`
	Name              string  `json:"name"`
	Kind              string  `json:"kind"`
	VotesCast         int64   `json:"votes_cast"`
	EligibleVoters    int64   `json:"eligible_voters"`
	Turnout           float64 `json:"turnout"`
	LeaderCandidateID *string `json:"leader_candidate_id"`
	Decided           bool    `json:"decided"`
}

type contestRegionJSON struct {
	Region            string        `json:"region"`
	EligibleVoters    int64         `json:"eligible_voters"`
	VotesCast         int64         `json:"votes_cast"`
	Turnout           float64       `json:"turnout"`
	LeaderCandidateID *string       `json:"leader_candidate_id"`
	Decided           bool          `json:"decided"`
	Tallies           []tallyJSON   `json:"tallies"`
	Reporting         reportingJSON `json:"reporting"`
	Withheld          bool          `json:"withheld"`
}

// reportingJSON is how far the stations have reported closing: closed
// over registered. Without stations it says so instead of showing 0 %.
type reportingJSON struct {
	Available      bool   `json:"available"`
	StationsClosed int64  `json:"stations_closed"`
	Stations       int64  `json:"stations"`
	Note           string `json:"note,omitempty"`
}

func reporting(closed, total int64) reportingJSON {
	if total == 0 {
		return reportingJSON{Note: "no polling station has registered: reporting progress is unknown"}
	}
	return reportingJSON{Available: true, StationsClosed: closed, Stations: total}
}

type contestJSON struct {
	ContestID         string                  `json:"contest_id"`
	Name              string                  `json:"name"`
	Kind              string                  `json:"kind"`
	Candidates        []candidateJSON         `json:"candidates"`
	Regions           []contestRegionJSON     `json:"regions"`
	Rejected          map[string]int64        `json:"rejected"`
	EligibleVoters    int64                   `json:"eligible_voters"`
	VotesCast         int64                   `json:"votes_cast"`
	Turnout           float64                 `json:"turnout"`
	Decided           bool                    `json:"decided"`
	DecidedAt         *time.Time              `json:"decided_at"`
	WinnerCandidateID *string                 `json:"winner_candidate_id"`
	Reporting         reportingJSON           `json:"reporting"`
	Breakdowns        map[string][]bucketJSON `json:"breakdowns"`
	PollsClosed       bool                    `json:"polls_closed"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (a *API) contests(w http.ResponseWriter, r *http.Request) {
	if !allowQuery(w, r, a.log) {
		return
	}
	all, err := a.results.Contests(r.Context())
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	out := struct {
		Contests []contestSummaryJSON `json:"contests"`
	}{Contests: make([]contestSummaryJSON, 0, len(all))}
	for _, c := range all {
		out.Contests = append(out.Contests, contestSummaryJSON{
			ContestID: c.ContestID, Name: c.Name, Kind: c.Kind, VotesCast: c.VotesCast, EligibleVoters: c.EligibleVoters,
			Turnout: c.Turnout, LeaderCandidateID: optional(c.Leader), Decided: c.Decided,
		})
	}
	writeJSON(w, r, a.log, out)
}

func (a *API) contest(w http.ResponseWriter, r *http.Request) {
	if !allowQuery(w, r, a.log) {
		return
	}
	id := r.PathValue("contest")
	if _, err := domain.NewContest(id, "x", domain.KindCandidate, nil); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	c, err := a.results.Contest(r.Context(), id)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, r, a.log, toContestJSON(c))
}

func toContestJSON(c read.ContestResult) contestJSON {
	out := contestJSON{
		ContestID: c.ContestID, Name: c.Name, Kind: c.Kind, Rejected: c.Rejected,
		EligibleVoters: c.EligibleVoters, VotesCast: c.VotesCast, Turnout: c.Turnout, Decided: c.Decided,
		Candidates: make([]candidateJSON, 0, len(c.Candidates)), Regions: make([]contestRegionJSON, 0, len(c.Regions)),
		Reporting:   reporting(c.StationsClosed, c.Stations),
		Breakdowns:  toBreakdownsJSON(c.Demographics),
		PollsClosed: c.PollsClosed,
	}
	if c.Decided {
		out.WinnerCandidateID = optional(c.Leader)
		if !c.DecidedAt.IsZero() {
			at := c.DecidedAt
			out.DecidedAt = &at
		}
	}
	for _, cand := range c.Candidates {
		out.Candidates = append(out.Candidates, candidateJSON{CandidateID: cand.CandidateID, Name: cand.Name, Party: cand.Party, Votes: cand.Votes, Share: cand.Share})
	}
	for _, g := range c.Regions {
		rj := contestRegionJSON{Region: g.Region, EligibleVoters: g.EligibleVoters, VotesCast: g.VotesCast, Turnout: g.Turnout,
			LeaderCandidateID: optional(g.Leader), Decided: g.Decided, Tallies: make([]tallyJSON, 0, len(g.Tallies)),
			Reporting: reporting(g.StationsClosed, g.Stations), Withheld: g.Withheld}
		for _, t := range g.Tallies {
			rj.Tallies = append(rj.Tallies, tallyJSON{CandidateID: t.CandidateID, Votes: t.Votes})
		}
		out.Regions = append(out.Regions, rj)
	}
	return out
}
