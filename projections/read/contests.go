package read

import (
	"context"
	"fmt"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/internal/db"
)

// ContestResult is one contest's results.
type ContestResult struct {
	ContestID, Name, Kind string
	// Regions are the contest's regions (all registered ones when it is
	// open everywhere), with their results.
	Regions        []ContestRegion
	Candidates     []CandidateResult
	EligibleVoters int64
	VotesCast      int64
	Turnout        float64
	// Leader is the candidate with the most votes ("" before any).
	Leader string
	// Decided is domain.Decided for the whole contest; DecidedAt is the
	// minute (by cast time) of the vote that made it certain, zero when not
	// decided.
	Decided   bool
	DecidedAt time.Time
	// Rejected counts the contest's rejected votes by reason.
	Rejected map[string]int64
	// Stations counts the polling stations of the contest's regions, and
	// StationsClosed those that reported closing.
	Stations, StationsClosed int64
	// Demographics are the contest's votes by gender and age band.
	Demographics []DemographicTally
	// PollsClosed is set, on what is published, once the polls closed
	// and every figure is exact.
	PollsClosed bool
}

// ContestRegion is a contest's result in one region.
type ContestRegion struct {
	Region         string
	EligibleVoters int64
	VotesCast      int64
	Turnout        float64
	Leader         string
	Decided        bool
	Tallies        []Tally
	// Stations and StationsClosed: the region's reporting progress.
	Stations, StationsClosed int64
	// Withheld is set when the region's votes in the contest are too few
	// to publish (domain.Disclosure.Withhold): VotesCast, Turnout and
	// Tallies are then empty, and the contest's totals minus its shown
	// regions is what the withheld ones hold together.
	Withheld bool
}

// Contests returns every contest's results, the default contest first,
// from one snapshot.
func (r *Results) Contests(ctx context.Context) ([]ContestResult, error) {
	var out []ContestResult
	err := r.snapshot(ctx, func(q *db.Queries) error {
		if r.public {
			v, err := readPublicView(ctx, q, r.rule)
			if err != nil {
				return err
			}
			out, err = v.contestResults()
			return err
		}
		var err error
		out, err = contests(ctx, q)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read contests: %w", err)
	}
	return out, nil
}

// Contest returns one contest's results, or projections.ErrNotFound.
func (r *Results) Contest(ctx context.Context, id string) (ContestResult, error) {
	all, err := r.Contests(ctx)
	if err != nil {
		return ContestResult{}, err
	}
	for _, c := range all {
		if c.ContestID == id {
			return c, nil
		}
	}
	return ContestResult{}, fmt.Errorf("contest %q: %w", id, projections.ErrNotFound)
}

func contests(ctx context.Context, q *db.Queries) ([]ContestResult, error) {
	rows, err := q.ListContests(ctx)
	if err != nil {
		return nil, err
	}
	candidates, err := q.ListContestCandidates(ctx)
	if err != nil {
		return nil, err
	}
	turnout, err := q.ListContestTurnout(ctx)
	if err != nil {
		return nil, err
	}
	registered, err := q.ListRegisteredByRegion(ctx)
	if err != nil {
		return nil, err
	}
	tallies, err := q.ListContestRegionTallies(ctx)
	if err != nil {
		return nil, err
	}
	rejections, err := q.ListContestRejections(ctx)
	if err != nil {
		return nil, err
	}
	reporting, err := q.ListStationsByRegion(ctx)
	if err != nil {
		return nil, err
	}
	stations := map[string][2]int64{}
	for _, r := range reporting {
		stations[r.Region] = [2]int64{r.Total, r.Closed}
	}
	cast := map[[2]string]int64{}
	for _, t := range turnout {
		cast[[2]string{t.ContestID, t.Region}] = t.VotesCast
	}
	regionTallies := map[[2]string][]Tally{}
	for _, t := range tallies {
		k := [2]string{t.ContestID, t.Region}
		regionTallies[k] = append(regionTallies[k], Tally{CandidateID: t.CandidateID, Votes: t.Votes})
	}
	out := make([]ContestResult, 0, len(rows))
	for _, row := range rows {
		c := ContestResult{ContestID: row.ContestID, Name: row.Name, Kind: row.Kind}
		var own []db.ListRejectionTalliesRow
		for _, rj := range rejections {
			if rj.ContestID == c.ContestID {
				own = append(own, db.ListRejectionTalliesRow{Reason: rj.Reason, Count: rj.Count})
			}
		}
		if c.Rejected, err = RejectionCounts(own); err != nil {
			return nil, err
		}
		open := map[string]bool{}
		for _, name := range row.Regions {
			open[name] = true
		}
		var votes []int64
		for _, cand := range candidates {
			if cand.ContestID == c.ContestID {
				c.Candidates = append(c.Candidates, CandidateResult{CandidateID: cand.CandidateID, Name: cand.Name, Party: cand.Party, Votes: cand.Votes})
				votes = append(votes, cand.Votes)
			}
		}
		for _, reg := range registered {
			if len(open) > 0 && !open[reg.Region] {
				continue
			}
			k := [2]string{c.ContestID, reg.Region}
			cr := ContestRegion{Region: reg.Region, EligibleVoters: reg.RegisteredVoters, VotesCast: cast[k], Tallies: regionTallies[k],
				Stations: stations[reg.Region][0], StationsClosed: stations[reg.Region][1]}
			c.Stations += cr.Stations
			c.StationsClosed += cr.StationsClosed
			cr.Turnout = ratio(cr.VotesCast, cr.EligibleVoters)
			var regionVotes []int64
			for _, t := range cr.Tallies {
				regionVotes = append(regionVotes, t.Votes)
			}
			if len(cr.Tallies) > 0 && cr.Tallies[0].Votes > 0 {
				cr.Leader = cr.Tallies[0].CandidateID
			}
			// Candidates without a vote in the region still stand in it.
			for len(regionVotes) < len(c.Candidates) {
				regionVotes = append(regionVotes, 0)
			}
			cr.Decided = domain.Decided(regionVotes, cr.EligibleVoters, cr.VotesCast)
			c.EligibleVoters += cr.EligibleVoters
			c.VotesCast += cr.VotesCast
			c.Regions = append(c.Regions, cr)
		}
		c.Turnout = ratio(c.VotesCast, c.EligibleVoters)
		for i := range c.Candidates {
			c.Candidates[i].Share = ratio(c.Candidates[i].Votes, c.VotesCast)
		}
		if len(c.Candidates) > 0 && c.Candidates[0].Votes > 0 {
			c.Leader = c.Candidates[0].CandidateID
		}
		c.Decided = domain.Decided(votes, c.EligibleVoters, c.VotesCast)
		demo, err := q.ListContestDemographics(ctx, c.ContestID)
		if err != nil {
			return nil, err
		}
		for _, x := range demo {
			c.Demographics = append(c.Demographics, DemographicTally{x.Dimension, x.Bucket, x.CandidateID, x.Votes})
		}
		if c.Decided {
			timeline, err := q.ListContestTimeline(ctx, c.ContestID)
			if err != nil {
				return nil, err
			}
			c.DecidedAt = decidedAt(timeline, len(c.Candidates), c.EligibleVoters)
		}
		out = append(out, c)
	}
	return out, nil
}

// decidedAt walks a contest's votes minute by minute, by cast time, and
// returns the first minute after which the contest was certain.
func decidedAt(timeline []db.TimelineSummed, candidates int, eligible int64) time.Time {
	counts := map[string]int64{}
	var cast int64
	for i, p := range timeline {
		counts[p.CandidateID] += p.Votes
		cast += p.Votes
		if i+1 < len(timeline) && timeline[i+1].Minute.Equal(p.Minute) {
			continue // the rest of this minute first
		}
		votes := make([]int64, 0, max(len(counts), candidates))
		for _, n := range counts {
			votes = append(votes, n)
		}
		for len(votes) < candidates {
			votes = append(votes, 0)
		}
		if domain.Decided(votes, eligible, cast) {
			return p.Minute
		}
	}
	return time.Time{}
}
