package read

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections/internal/db"
)

// Dashboard is everything the live page shows, all read in one snapshot.
type Dashboard struct {
	// Watermark is the state of the projection every part was read at.
	Watermark    Watermark
	Summary      Summary
	Candidates   []CandidateResult
	Regions      []RegionResult
	Parties      []PartyResult
	Demographics []DemographicTally
	Timeline     []TimelinePoint
	Rejections   []RecentRejection
	DeadLetters  []RecentDeadLetter
}

// PartyResult is a party's total over its candidates.
type PartyResult struct {
	Party      string
	Candidates int64
	Votes      int64
	Share      float64
}

// DemographicTally counts votes for a candidate from voters in one bucket
// of a dimension ("gender" or "age_band").
type DemographicTally struct {
	Dimension, Bucket, CandidateID string
	Votes                          int64
}

// TimelinePoint counts a candidate's votes cast in one minute.
type TimelinePoint struct {
	Minute      time.Time
	CandidateID string
	Votes       int64
}

// RecentRejection is a rejection as the public may see it: why and when,
// to the minute, never who or for whom. A time to the second could tell,
// next to a station's queue, whose vote was rejected.
type RecentRejection struct {
	Reason     string
	CastAt     time.Time
	RecordedAt time.Time
}

// RecentDeadLetter is a message that could not be applied; ReceivedAt is
// to the minute, as for rejections.
type RecentDeadLetter struct {
	Topic      string
	Partition  int32
	Offset     int64
	Reason     string
	ReceivedAt time.Time
}

// DashboardOptions bound the lists a dashboard holds.
type DashboardOptions struct {
	TimelineMinutes int
	Recent          int
}

// Watermark names a state of the projection: it changes whenever a batch
// is applied. Polling it is how live clients learn that there is something
// new, without touching the tallies.
type Watermark struct {
	// UpdatedAt is when the newest batch began (the epoch before any).
	UpdatedAt time.Time
	// Applied is the sum of every partition's next offset.
	Applied int64
	// Batches counts the batches applied. Only it is sure to move with
	// every batch: one applied out of order within its partition (the
	// pipelined consumer) moves no next offset, and may have begun before
	// the newest UpdatedAt.
	Batches int64
}

// Equal reports whether w and o name the same state.
func (w Watermark) Equal(o Watermark) bool {
	return w.UpdatedAt.Equal(o.UpdatedAt) && w.Applied == o.Applied && w.Batches == o.Batches
}

func readWatermark(ctx context.Context, q *db.Queries) (Watermark, error) {
	row, err := q.GetWatermark(ctx)
	if err != nil {
		return Watermark{}, fmt.Errorf("read watermark: %w", err)
	}
	return Watermark{UpdatedAt: row.UpdatedAt, Applied: row.Applied, Batches: row.Batches}, nil
}

// Watermark reads the projection's current watermark. A public reader's
// also moves when tallies are released (publicWatermark).
func (r *Results) Watermark(ctx context.Context) (Watermark, error) {
	if r.public {
		q := db.New(r.pool)
		st, err := q.GetReleaseState(ctx)
		if err != nil {
			return Watermark{}, fmt.Errorf("read release state: %w", err)
		}
		w, err := readWatermark(ctx, q)
		if err != nil {
			return Watermark{}, err
		}
		return publicWatermark(st, w), nil
	}
	return readWatermark(ctx, db.New(r.pool))
}

// Dashboard reads the page's data, and the watermark it was read at, in one
// read-only REPEATABLE READ transaction: every part, and so every answer
// built from it, shows the same state of the projection.
func (r *Results) Dashboard(ctx context.Context, opt DashboardOptions) (Dashboard, error) {
	var d Dashboard
	err := r.snapshot(ctx, func(q *db.Queries) error {
		if r.public {
			return readPublicDashboard(ctx, q, r.rule, opt, &d)
		}
		var err error
		if d.Watermark, err = readWatermark(ctx, q); err != nil {
			return err
		}
		if d.Candidates, err = readCandidates(ctx, q); err != nil {
			return err
		}
		if d.Summary, err = readSummary(ctx, q, d.Candidates); err != nil {
			return err
		}
		if d.Regions, err = readRegions(ctx, q); err != nil {
			return err
		}
		if d.Timeline, err = readTimeline(ctx, q, opt.TimelineMinutes); err != nil {
			return err
		}
		parties, err := q.ListPartyResults(ctx)
		if err != nil {
			return err
		}
		var total int64
		for _, p := range parties {
			total += p.Votes
		}
		d.Parties = make([]PartyResult, 0, len(parties))
		for _, p := range parties {
			d.Parties = append(d.Parties, PartyResult{p.Party, p.Candidates, p.Votes, ratio(p.Votes, total)})
		}
		demo, err := q.ListDemographicTallies(ctx)
		if err != nil {
			return err
		}
		d.Demographics = make([]DemographicTally, 0, len(demo))
		for _, x := range demo {
			d.Demographics = append(d.Demographics, DemographicTally{x.Dimension, x.Bucket, x.CandidateID, x.Votes})
		}
		return readRecent(ctx, q, opt, &d)
	})
	if err != nil {
		return Dashboard{}, fmt.Errorf("read dashboard: %w", err)
	}
	return d, nil
}

// Timeline returns votes per minute per candidate over the last minutes
// that have votes (up to 24 hours).
func (r *Results) Timeline(ctx context.Context, minutes int) ([]TimelinePoint, error) {
	if r.public {
		var out []TimelinePoint
		err := r.snapshot(ctx, func(q *db.Queries) error {
			v, err := readPublicView(ctx, q, r.rule)
			if err == nil {
				out = lastMinutes(v.timelineOf(domain.DefaultContest), minutes)
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read timeline: %w", err)
		}
		return out, nil
	}
	return readTimeline(ctx, db.New(r.pool), minutes)
}

func readTimeline(ctx context.Context, q *db.Queries, minutes int) ([]TimelinePoint, error) {
	minutes = min(max(minutes, 1), 24*60)
	rows, err := q.ListTimeline(ctx, int32(minutes))
	if err != nil {
		return nil, fmt.Errorf("read timeline: %w", err)
	}
	out := make([]TimelinePoint, 0, len(rows))
	for _, x := range rows {
		out = append(out, TimelinePoint{x.Minute, x.CandidateID, x.Votes})
	}
	return out, nil
}

// ResultRow is one region × candidate line of the results export.
type ResultRow struct {
	Contest, Region, CandidateID, Name, Party      string
	Votes, RegionVotesCast, RegionRegisteredVoters int64
	// Withheld is set when the region's votes in the contest are too few
	// to publish; Votes and RegionVotesCast are then zero.
	Withheld bool
}

// ResultRows returns every region × candidate of the default contest (or,
// with everyContest, of every contest in its regions), zeros included, in
// one snapshot.
func (r *Results) ResultRows(ctx context.Context, everyContest bool) ([]ResultRow, error) {
	var out []ResultRow
	err := r.snapshot(ctx, func(q *db.Queries) error {
		if r.public {
			v, err := readPublicView(ctx, q, r.rule)
			if err == nil {
				out = v.resultRows(everyContest)
			}
			return err
		}
		rows, err := q.ListResultRows(ctx, everyContest)
		if err != nil {
			return err
		}
		out = make([]ResultRow, 0, len(rows))
		for _, x := range rows {
			out = append(out, ResultRow{Contest: x.ContestID, Region: x.Region, CandidateID: x.CandidateID, Name: x.Name, Party: x.Party,
				Votes: x.Votes, RegionVotesCast: x.VotesCast, RegionRegisteredVoters: x.RegisteredVoters})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	return out, nil
}

// readPublicDashboard fills d with what is published (NewPublicResults).
func readPublicDashboard(ctx context.Context, q *db.Queries, rule domain.Disclosure, opt DashboardOptions, d *Dashboard) error {
	v, err := readPublicView(ctx, q, rule)
	if err != nil {
		return err
	}
	d.Watermark = v.watermark()
	if d.Summary, d.Candidates, err = v.summary(); err != nil {
		return err
	}
	d.Regions = v.regions()
	d.Timeline = lastMinutes(v.timelineOf(domain.DefaultContest), opt.TimelineMinutes)
	byParty := map[string]*PartyResult{}
	var order []string
	var total int64
	for _, c := range d.Candidates {
		p := byParty[c.Party]
		if p == nil {
			p = &PartyResult{Party: c.Party}
			byParty[c.Party] = p
			order = append(order, c.Party)
		}
		p.Candidates++
		p.Votes += c.Votes
		total += c.Votes
	}
	d.Parties = make([]PartyResult, 0, len(order))
	for _, name := range order {
		p := *byParty[name]
		p.Share = ratio(p.Votes, total)
		d.Parties = append(d.Parties, p)
	}
	slices.SortStableFunc(d.Parties, func(a, b PartyResult) int {
		if a.Votes != b.Votes {
			return int(b.Votes - a.Votes)
		}
		return compareStrings(a.Party, b.Party)
	})
	d.Demographics = v.demographicsOf(domain.DefaultContest)
	return readRecent(ctx, q, opt, d)
}

// readRecent reads the recent rejections and dead letters, which carry no
// choice (to the minute, 00005).
func readRecent(ctx context.Context, q *db.Queries, opt DashboardOptions, d *Dashboard) error {
	rej, err := q.ListRecentRejections(ctx, int32(opt.Recent))
	if err != nil {
		return err
	}
	d.Rejections = make([]RecentRejection, 0, len(rej))
	for _, x := range rej {
		d.Rejections = append(d.Rejections, RecentRejection{x.Reason, x.CastMinute, x.RecordedMinute})
	}
	dead, err := q.ListRecentDeadLetters(ctx, int32(opt.Recent))
	if err != nil {
		return err
	}
	d.DeadLetters = make([]RecentDeadLetter, 0, len(dead))
	for _, x := range dead {
		d.DeadLetters = append(d.DeadLetters, RecentDeadLetter{x.Topic, x.Partition, x.Offset, x.Reason, x.ReceivedMinute})
	}
	return nil
}
