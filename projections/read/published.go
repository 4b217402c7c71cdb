package read

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections/internal/db"
)

// ErrDisclosureMismatch is returned by a public reader whose minimum cell
// size is larger than the one the releaser stepped by.
var ErrDisclosureMismatch = errors.New("disclosure rule mismatch")

// WithheldBucket is the bucket under which a breakdown publishes the
// withheld buckets' votes together (domain.Disclosure.Withhold): their sum
// is none or at least k, so it can be shown, and the breakdown still adds
// up to the contest's totals.
const WithheldBucket = "withheld"

// NewPublicResults returns a reader of what is published, for the read
// API, its live stream, exports and public metrics. Every candidate figure
// it returns comes from the released tallies (Releaser), never from the
// exact count, and the breakdowns withhold every bucket under rule's k:
// nothing it returns moves by one vote while the polls are open. Rejection
// and dead-letter counts, registers and stations are read as they are
// (they carry no choice).
func NewPublicResults(pool *pgxpool.Pool, rule domain.Disclosure) (*Results, error) {
	if pool == nil {
		return nil, errors.New("new public results: nil pool")
	}
	if rule.K() < 1 {
		return nil, errors.New("new public results: no disclosure rule (domain.NewDisclosure)")
	}
	return &Results{pool: pool, public: true, rule: rule}, nil
}

// publicView is what the public reads, from one snapshot: the register,
// and the released tallies (no exact one).
// cellKey names a released row: a breakdown's bucket in a contest (the
// Releaser keys its rows the same way).
type cellKey struct{ contest, dimension, bucket string }

type publicView struct {
	rule       domain.Disclosure
	state      db.GetReleaseStateRow
	applied    Watermark
	totals     db.GetPublicTotalsRow
	contests   []db.Contest
	candidates []db.ListCandidatesPublicRow
	registered []db.Region
	stations   map[string][2]int64
	rejections []db.RejectionTalliesSummed
	cells      map[cellKey]map[string]int64
	steps      []db.ReleasedStep
}

func readPublicView(ctx context.Context, q *db.Queries, rule domain.Disclosure) (*publicView, error) {
	v := &publicView{rule: rule, cells: map[cellKey]map[string]int64{}, stations: map[string][2]int64{}}
	var err error
	if v.state, err = q.GetReleaseState(ctx); err != nil {
		return nil, err
	}
	if k := int64(v.state.MinCell); k > 0 && k < rule.K() {
		// The releaser stepped by less than this reader's k: what it
		// released would show moves this reader must not publish.
		return nil, fmt.Errorf("%w: the projector releases tallies in steps of %d votes, fewer than this read API's minimum cell size %d; run both with the same --min-cell",
			ErrDisclosureMismatch, k, rule.K())
	}
	if v.applied, err = readWatermark(ctx, q); err != nil {
		return nil, err
	}
	if v.totals, err = q.GetPublicTotals(ctx); err != nil {
		return nil, err
	}
	if v.contests, err = q.ListContests(ctx); err != nil {
		return nil, err
	}
	if v.candidates, err = q.ListCandidatesPublic(ctx); err != nil {
		return nil, err
	}
	if v.registered, err = q.ListRegisteredByRegion(ctx); err != nil {
		return nil, err
	}
	reporting, err := q.ListStationsByRegion(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range reporting {
		v.stations[r.Region] = [2]int64{r.Total, r.Closed}
	}
	if v.rejections, err = q.ListContestRejections(ctx); err != nil {
		return nil, err
	}
	cells, err := q.ListReleasedCells(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range cells {
		k := cellKey{c.ContestID, c.Dimension, c.Bucket}
		if v.cells[k] == nil {
			v.cells[k] = map[string]int64{}
		}
		v.cells[k][c.CandidateID] = c.Votes
	}
	if v.steps, err = q.ListReleasedSteps(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *publicView) watermark() Watermark { return publicWatermark(v.state, v.applied) }

// publicWatermark moves with every applied batch (a rejection or a dead
// letter changes what is published without any release) and every
// release. A batch that changes nothing published rebuilds the snapshot
// to the same content, which the cache keeps as it was and the live
// stream does not push (handlers.Snapshots).
func publicWatermark(st db.GetReleaseStateRow, applied Watermark) Watermark {
	return Watermark{UpdatedAt: st.ReleasedAt, Applied: applied.Applied, Batches: applied.Batches + st.Releases}
}

// contestList is the contests in the order the API lists them: the default
// first, then by id (ListContests' order, as the exact reader's).
func (v *publicView) contestList() []db.Contest { return v.contests }

// candidatesOf returns a contest's candidates with their released votes
// (the sum of its released region rows), most votes first.
func (v *publicView) candidatesOf(contest string) []CandidateResult {
	var out []CandidateResult
	var total int64
	for _, c := range v.candidates {
		if c.ContestID != contest {
			continue
		}
		var n int64
		for k, m := range v.cells {
			if k.contest == contest && k.dimension == "region" {
				n += m[c.CandidateID]
			}
		}
		total += n
		out = append(out, CandidateResult{CandidateID: c.CandidateID, Name: c.Name, Party: c.Party, Votes: n})
	}
	for i := range out {
		out[i].Share = ratio(out[i].Votes, total)
	}
	slices.SortStableFunc(out, func(a, b CandidateResult) int {
		if a.Votes != b.Votes {
			return int(b.Votes - a.Votes)
		}
		return compareStrings(a.CandidateID, b.CandidateID)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// bucketRow is one bucket of a breakdown as published.
type bucketRow struct {
	bucket   string
	total    int64
	tallies  []Tally // most votes first; empty when withheld
	withheld bool
}

// breakdown returns a contest's buckets of dimension, in the order given,
// with those the rule withholds marked and emptied.
func (v *publicView) breakdown(contest, dimension string, buckets []string) []bucketRow {
	rows := make([]bucketRow, len(buckets))
	totals := make([]int64, len(buckets))
	for i, b := range buckets {
		rows[i].bucket = b
		for cand, n := range v.cells[cellKey{contest, dimension, b}] {
			rows[i].total += n
			if n > 0 {
				rows[i].tallies = append(rows[i].tallies, Tally{CandidateID: cand, Votes: n})
			}
		}
		totals[i] = rows[i].total
		slices.SortFunc(rows[i].tallies, func(a, b Tally) int {
			if a.Votes != b.Votes {
				return int(b.Votes - a.Votes)
			}
			return compareStrings(a.CandidateID, b.CandidateID)
		})
	}
	for i, w := range v.rule.Withhold(totals) {
		if w {
			rows[i].withheld, rows[i].total, rows[i].tallies = true, 0, nil
		}
	}
	return rows
}

// withheldSum adds up the withheld buckets of a breakdown per candidate.
func (v *publicView) withheldSum(contest, dimension string, rows []bucketRow) map[string]int64 {
	sum := map[string]int64{}
	for _, r := range rows {
		if r.withheld {
			for cand, n := range v.cells[cellKey{contest, dimension, r.bucket}] {
				sum[cand] += n
			}
		}
	}
	return sum
}

// regionsOf returns a contest's regions (all registered ones when it is
// open everywhere) as published.
func (v *publicView) regionsOf(c db.Contest) []ContestRegion {
	open := map[string]bool{}
	for _, name := range c.Regions {
		open[name] = true
	}
	var names []string
	registered := map[string]int64{}
	for _, g := range v.registered {
		if len(open) > 0 && !open[g.Region] {
			continue
		}
		names = append(names, g.Region)
		registered[g.Region] = g.RegisteredVoters
	}
	rows := v.breakdown(c.ContestID, "region", names)
	out := make([]ContestRegion, 0, len(rows))
	for _, r := range rows {
		cr := ContestRegion{Region: r.bucket, EligibleVoters: registered[r.bucket], VotesCast: r.total, Tallies: r.tallies,
			Withheld: r.withheld, Stations: v.stations[r.bucket][0], StationsClosed: v.stations[r.bucket][1]}
		if cr.Tallies == nil {
			cr.Tallies = []Tally{}
		}
		cr.Turnout = ratio(cr.VotesCast, cr.EligibleVoters)
		if len(cr.Tallies) > 0 {
			cr.Leader = cr.Tallies[0].CandidateID
		}
		out = append(out, cr)
	}
	return out
}

// demographicsOf returns a contest's released votes by gender and age
// band, once the rule publishes breakdowns (domain.Disclosure); each
// dimension's withheld buckets are published together as WithheldBucket.
func (v *publicView) demographicsOf(contest string) []DemographicTally {
	out := []DemographicTally{}
	if !v.rule.PublishesBreakdowns(v.state.PollsClosed) {
		return out
	}
	for _, dim := range []string{"age_band", "gender"} {
		var buckets []string
		for k := range v.cells {
			if k.contest == contest && k.dimension == dim {
				buckets = append(buckets, k.bucket)
			}
		}
		slices.Sort(buckets)
		rows := v.breakdown(contest, dim, buckets)
		for _, r := range rows {
			if r.withheld {
				continue
			}
			cands := make([]string, 0, len(r.tallies))
			votes := map[string]int64{}
			for _, t := range r.tallies {
				cands = append(cands, t.CandidateID)
				votes[t.CandidateID] = t.Votes
			}
			slices.Sort(cands)
			for _, cand := range cands {
				out = append(out, DemographicTally{Dimension: dim, Bucket: r.bucket, CandidateID: cand, Votes: votes[cand]})
			}
		}
		withheld := v.withheldSum(contest, dim, rows)
		cands := make([]string, 0, len(withheld))
		for cand, n := range withheld {
			if n > 0 {
				cands = append(cands, cand)
			}
		}
		slices.Sort(cands)
		for _, cand := range cands {
			out = append(out, DemographicTally{Dimension: dim, Bucket: WithheldBucket, CandidateID: cand, Votes: withheld[cand]})
		}
	}
	return out
}

// timelineOf returns a contest's votes released per minute, oldest first.
// A minute that released fewer than k votes (the polls' close releases
// what is left, however little) is folded into the minute before it, so
// no point shows a small group of votes.
func (v *publicView) timelineOf(contest string) []TimelinePoint {
	type minute struct {
		at    time.Time
		votes map[string]int64
		total int64
	}
	var minutes []*minute
	for _, s := range v.steps {
		if s.ContestID != contest {
			continue
		}
		if len(minutes) == 0 || !minutes[len(minutes)-1].at.Equal(s.Minute) {
			minutes = append(minutes, &minute{at: s.Minute, votes: map[string]int64{}})
		}
		m := minutes[len(minutes)-1]
		m.votes[s.CandidateID] += s.Votes
		m.total += s.Votes
	}
	var kept []*minute
	var carry *minute
	for _, m := range minutes {
		if carry != nil {
			for c, n := range carry.votes {
				m.votes[c] += n
			}
			m.total += carry.total
			carry = nil
		}
		switch {
		case m.total >= v.rule.K():
			kept = append(kept, m)
		case len(kept) > 0:
			last := kept[len(kept)-1]
			for c, n := range m.votes {
				last.votes[c] += n
			}
			last.total += m.total
		default:
			carry = m
		}
	}
	out := []TimelinePoint{}
	for _, m := range kept {
		cands := make([]string, 0, len(m.votes))
		for c := range m.votes {
			cands = append(cands, c)
		}
		slices.Sort(cands)
		for _, c := range cands {
			out = append(out, TimelinePoint{Minute: m.at, CandidateID: c, Votes: m.votes[c]})
		}
	}
	return out
}

func (v *publicView) rejectedOf(contest string) (map[string]int64, error) {
	var own []db.ListRejectionTalliesRow
	for _, rj := range v.rejections {
		if rj.ContestID == contest {
			own = append(own, db.ListRejectionTalliesRow{Reason: rj.Reason, Count: rj.Count})
		}
	}
	return RejectionCounts(own)
}

func (v *publicView) summary() (Summary, []CandidateResult, error) {
	cands := v.candidatesOf(domain.DefaultContest)
	s := Summary{RegisteredVoters: v.totals.RegisteredVoters, Candidates: int64(len(cands)), DeadLettered: v.totals.DeadLettered,
		Contests: v.totals.Contests, Rejected: map[domain.RejectionReason]int64{}}
	for _, c := range cands {
		s.VotesCast += c.Votes
	}
	s.Turnout = ratio(s.VotesCast, s.RegisteredVoters)
	if v.state.Releases > 0 {
		s.UpdatedAt = v.state.ReleasedAt
	}
	counts, err := v.rejectedOf(domain.DefaultContest)
	if err != nil {
		return Summary{}, nil, err
	}
	for code, n := range counts {
		reason, _ := domain.ParseRejectionReason(code) // checked by RejectionCounts
		s.Rejected[reason] = n
	}
	if len(cands) > 0 && cands[0].Votes > 0 {
		leader := cands[0]
		s.Leader = &leader
	}
	return s, cands, nil
}

// regions returns the default contest's regions as contract v1's /regions
// gives them: every registered region.
func (v *publicView) regions() []RegionResult {
	def := db.Contest{ContestID: domain.DefaultContest}
	out := []RegionResult{}
	for _, g := range v.regionsOf(def) {
		r := regionResult(g.Region, g.EligibleVoters, g.VotesCast, g.Tallies)
		r.Withheld = g.Withheld
		out = append(out, r)
	}
	return out
}

func (v *publicView) contestResults() ([]ContestResult, error) {
	var out []ContestResult
	for _, row := range v.contestList() {
		c := ContestResult{ContestID: row.ContestID, Name: row.Name, Kind: row.Kind, Candidates: v.candidatesOf(row.ContestID),
			Regions: v.regionsOf(row), Demographics: v.demographicsOf(row.ContestID), PollsClosed: v.state.PollsClosed}
		var err error
		if c.Rejected, err = v.rejectedOf(row.ContestID); err != nil {
			return nil, err
		}
		votes := make([]int64, 0, len(c.Candidates))
		for _, cand := range c.Candidates {
			votes = append(votes, cand.Votes)
			c.VotesCast += cand.Votes
		}
		for i, cr := range c.Regions {
			c.Stations += cr.Stations
			c.StationsClosed += cr.StationsClosed
			c.EligibleVoters += cr.EligibleVoters
			regionVotes := make([]int64, len(c.Candidates))
			for j, t := range cr.Tallies {
				regionVotes[j] = t.Votes
			}
			if !cr.Withheld {
				c.Regions[i].Decided = domain.Decided(regionVotes, cr.EligibleVoters, cr.VotesCast)
			}
		}
		c.Turnout = ratio(c.VotesCast, c.EligibleVoters)
		if len(c.Candidates) > 0 && c.Candidates[0].Votes > 0 {
			c.Leader = c.Candidates[0].CandidateID
		}
		c.Decided = domain.Decided(votes, c.EligibleVoters, c.VotesCast)
		if c.Decided {
			var timeline []db.TimelineSummed
			for _, p := range v.timelineOf(row.ContestID) {
				timeline = append(timeline, db.TimelineSummed{Minute: p.Minute, CandidateID: p.CandidateID, Votes: p.Votes})
			}
			c.DecidedAt = decidedAt(timeline, len(c.Candidates), c.EligibleVoters)
		}
		out = append(out, c)
	}
	return out, nil
}

func (v *publicView) resultRows(everyContest bool) []ResultRow {
	var out []ResultRow
	for _, row := range v.contestList() {
		if row.ContestID != domain.DefaultContest && !everyContest {
			continue
		}
		var cands []db.ListCandidatesPublicRow
		for _, c := range v.candidates {
			if c.ContestID == row.ContestID {
				cands = append(cands, c)
			}
		}
		for _, g := range v.regionsOf(row) {
			votes := map[string]int64{}
			for _, t := range g.Tallies {
				votes[t.CandidateID] = t.Votes
			}
			lines := make([]ResultRow, 0, len(cands))
			for _, c := range cands {
				lines = append(lines, ResultRow{Contest: row.ContestID, Region: g.Region, CandidateID: c.CandidateID, Name: c.Name, Party: c.Party,
					Votes: votes[c.CandidateID], RegionVotesCast: g.VotesCast, RegionRegisteredVoters: g.EligibleVoters, Withheld: g.Withheld})
			}
			slices.SortStableFunc(lines, func(a, b ResultRow) int {
				if a.Votes != b.Votes {
					return int(b.Votes - a.Votes)
				}
				return compareStrings(a.CandidateID, b.CandidateID)
			})
			out = append(out, lines...)
		}
	}
	return out
}

// lastMinutes keeps the points of the last minutes minutes that have any.
func lastMinutes(points []TimelinePoint, minutes int) []TimelinePoint {
	if len(points) == 0 {
		return points
	}
	minutes = min(max(minutes, 1), 24*60)
	from := points[len(points)-1].Minute.Add(-time.Duration(minutes) * time.Minute)
	out := []TimelinePoint{}
	for _, p := range points {
		if p.Minute.After(from) {
			out = append(out, p)
		}
	}
	return out
}
