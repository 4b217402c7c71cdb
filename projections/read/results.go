package read

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections/internal/db"
	"github.com/votewatch/votewatch/projections/internal/dbutil"
)

// Summary is the election at a glance.
type Summary struct {
	RegisteredVoters int64
	Candidates       int64
	VotesCast        int64
	// Turnout is VotesCast / RegisteredVoters (0 when nobody is registered).
	Turnout float64
	// Rejected counts rejected votes by reason; every reason is present.
	Rejected     map[domain.RejectionReason]int64
	DeadLettered int64
	// Leader is nil until a vote has been counted.
	Leader *CandidateResult
	// UpdatedAt is when the projection last applied an event (zero if never).
	UpdatedAt time.Time
	// Contests counts the contests on the ballot (the figures above are
	// the default contest's).
	Contests int64
}

// CandidateResult is one candidate's standing.
type CandidateResult struct {
	CandidateID string
	Name        string
	Party       string
	Votes       int64
	// Share is Votes / all counted votes (0 when none are counted).
	Share float64
}

// RegionResult is one region's turnout and tallies.
type RegionResult struct {
	Region           string
	RegisteredVoters int64
	VotesCast        int64
	Turnout          float64
	// LeaderCandidateID is empty until a vote is counted in the region.
	LeaderCandidateID string
	// Tallies are sorted by votes, descending, then candidate_id.
	Tallies []Tally
	// Withheld is set when the region's votes are too few to publish
	// (domain.Disclosure.Withhold); VotesCast and Tallies are then empty.
	Withheld bool
}

// Tally is a candidate's vote count within some scope.
type Tally struct {
	CandidateID string
	Votes       int64
}

// Results reads the projection. Each method reads one consistent snapshot,
// so a response never mixes tallies from before and after a batch.
type Results struct {
	pool *pgxpool.Pool
	// public readers (NewPublicResults) read only the released tallies,
	// under rule.
	public bool
	rule   domain.Disclosure
}

// NewResults returns a reader of the exact count over pool, for operators
// and tests: what it returns may reveal single votes, so nothing public
// reads through it (NewPublicResults).
func NewResults(pool *pgxpool.Pool) (*Results, error) {
	if pool == nil {
		return nil, errors.New("new results: nil pool")
	}
	return &Results{pool: pool}, nil
}

func (r *Results) snapshot(ctx context.Context, fn func(q *db.Queries) error) error {
	return pgx.BeginTxFunc(ctx, r.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error {
			if err := dbutil.HoldSwapLock(ctx, tx); err != nil {
				return err
			}
			return fn(db.New(tx))
		})
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Summary returns the totals, rejections and the leader.
func (r *Results) Summary(ctx context.Context) (Summary, error) {
	var s Summary
	err := r.snapshot(ctx, func(q *db.Queries) error {
		if r.public {
			v, err := readPublicView(ctx, q, r.rule)
			if err != nil {
				return err
			}
			s, _, err = v.summary()
			return err
		}
		cands, err := readCandidates(ctx, q)
		if err != nil {
			return err
		}
		s, err = readSummary(ctx, q, cands)
		return err
	})
	if err != nil {
		return Summary{}, fmt.Errorf("read summary: %w", err)
	}
	return s, nil
}

// readSummary reads the totals and rejections; cands, read in the same
// transaction, name the leader.
func readSummary(ctx context.Context, q *db.Queries, cands []CandidateResult) (Summary, error) {
	t, err := q.GetTotals(ctx)
	if err != nil {
		return Summary{}, err
	}
	s := Summary{
		RegisteredVoters: t.RegisteredVoters, Candidates: t.Candidates, VotesCast: t.VotesCast,
		Turnout: ratio(t.VotesCast, t.RegisteredVoters), DeadLettered: t.DeadLettered, Contests: t.Contests,
		Rejected: map[domain.RejectionReason]int64{},
	}
	if !t.UpdatedAt.IsZero() {
		s.UpdatedAt = t.UpdatedAt
	}
	rows, err := q.ListRejectionTallies(ctx)
	if err != nil {
		return Summary{}, err
	}
	counts, err := RejectionCounts(rows)
	if err != nil {
		return Summary{}, err
	}
	for code, n := range counts {
		reason, _ := domain.ParseRejectionReason(code) // checked by RejectionCounts
		s.Rejected[reason] = n
	}
	if len(cands) > 0 && cands[0].Votes > 0 {
		// votes_cast is the sum of the candidates' tallies, so the
		// leader's share is the same as in the candidates list.
		leader := cands[0]
		s.Leader = &leader
	}
	return s, nil
}

// Candidates returns every registered candidate, most votes first.
func (r *Results) Candidates(ctx context.Context) ([]CandidateResult, error) {
	var out []CandidateResult
	err := r.snapshot(ctx, func(q *db.Queries) error {
		if r.public {
			v, err := readPublicView(ctx, q, r.rule)
			if err == nil {
				out = v.candidatesOf(domain.DefaultContest)
			}
			return err
		}
		var err error
		out, err = readCandidates(ctx, q)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read candidates: %w", err)
	}
	return out, nil
}

func readCandidates(ctx context.Context, q *db.Queries) ([]CandidateResult, error) {
	rows, err := q.ListCandidateResults(ctx)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, c := range rows {
		total += c.Votes
	}
	out := make([]CandidateResult, 0, len(rows))
	for _, c := range rows {
		out = append(out, CandidateResult{c.CandidateID, c.Name, c.Party, c.Votes, ratio(c.Votes, total)})
	}
	return out, nil
}

// Regions returns every region with a registered voter, by name.
func (r *Results) Regions(ctx context.Context) ([]RegionResult, error) {
	var out []RegionResult
	err := r.snapshot(ctx, func(q *db.Queries) error {
		if r.public {
			v, err := readPublicView(ctx, q, r.rule)
			if err == nil {
				out = v.regions()
			}
			return err
		}
		var err error
		out, err = readRegions(ctx, q)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read regions: %w", err)
	}
	return out, nil
}

func readRegions(ctx context.Context, q *db.Queries) ([]RegionResult, error) {
	regions, err := q.ListRegions(ctx)
	if err != nil {
		return nil, err
	}
	tallies, err := q.ListRegionTallies(ctx)
	if err != nil {
		return nil, err
	}
	byRegion := map[string][]Tally{}
	for _, t := range tallies {
		byRegion[t.Region] = append(byRegion[t.Region], Tally{t.CandidateID, t.Votes})
	}
	out := make([]RegionResult, 0, len(regions))
	for _, g := range regions {
		out = append(out, regionResult(g.Region, g.RegisteredVoters, g.VotesCast, byRegion[g.Region]))
	}
	return out, nil
}

func regionResult(name string, registered, cast int64, tallies []Tally) RegionResult {
	if tallies == nil {
		tallies = []Tally{}
	}
	g := RegionResult{Region: name, RegisteredVoters: registered, VotesCast: cast, Turnout: ratio(cast, registered), Tallies: tallies}
	if len(tallies) > 0 && tallies[0].Votes > 0 {
		g.LeaderCandidateID = tallies[0].CandidateID
	}
	return g
}

// RejectionCounts is the one place a rejection map is filled: every reason
// present (zero when none), then the counted ones. It returns an error
// for a reason the domain does not know.
func RejectionCounts(rows []db.ListRejectionTalliesRow) (map[string]int64, error) {
	out := make(map[string]int64, len(domain.RejectionReasons()))
	for _, reason := range domain.RejectionReasons() {
		out[reason.String()] = 0
	}
	for _, row := range rows {
		if _, err := domain.ParseRejectionReason(row.Reason); err != nil {
			return nil, err
		}
		out[row.Reason] += row.Count
	}
	return out, nil
}
