package write_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/read"
	"github.com/votewatch/votewatch/projections/write"
)

// published is what an observer of the public reader records of one
// snapshot: each breakdown row's total, by name. A row is the group of
// voters a cell describes (its candidates' counts are released together):
// a candidate's count within a row of k votes may be under k, as in any
// published table; the group of voters behind it is not.
type published map[string]int64

func observe(t *testing.T, pub *read.Results) (published, read.ContestResult) {
	t.Helper()
	c, err := pub.Contest(context.Background(), domain.DefaultContest)
	if err != nil {
		t.Fatal(err)
	}
	out := published{}
	var total int64
	for _, cand := range c.Candidates {
		total += cand.Votes
	}
	out["contest"] = total
	for _, g := range c.Regions {
		if !g.Withheld {
			out["region "+g.Region] = g.VotesCast
		}
	}
	for _, d := range c.Demographics {
		out[d.Dimension+" "+d.Bucket] += d.Votes
	}
	return out, c
}

// TestNoPublishedSnapshotRevealsASmallGroup is the property test of issue
// 21 over random elections: after every batch of one to three votes and
// a release, no published row (a region, a gender, an age band of the
// contest) holds fewer than k votes, no row moved by fewer than k since
// the previous snapshot while the polls are open, and after the polls
// close every figure is exact.
func TestNoPublishedSnapshotRevealsASmallGroup(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(2026, 21))
	for round := range 4 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			k := 2 + rng.IntN(9)
			regions := 1 + rng.IntN(4)
			voters := 20 + rng.IntN(60)
			rule, err := domain.NewDisclosure(k)
			if err != nil {
				t.Fatal(err)
			}
			pool := testutil.Pool(t)
			seed := testutil.NewSeeder(t, pool)
			seed.Candidates(t, testutil.Candidate(t, "c1", "C One", "P1", ""), testutil.Candidate(t, "c2", "C Two", "P2", ""),
				testutil.Candidate(t, "c3", "C Three", "P3", ""))
			genders := []string{"female", "male", "nonbinary", "unspecified"}
			for i := range voters {
				region, _ := domain.NewRegion(fmt.Sprintf("R%d", rng.IntN(regions)))
				v, err := domain.NewVoter(fmt.Sprintf("v%d", i), "V", genders[rng.IntN(len(genders))],
					castAt.AddDate(-18-rng.IntN(70), 0, 0), region, "Town", castAt.AddDate(0, -1, 0))
				if err != nil {
					t.Fatal(err)
				}
				seed.Voters(t, v)
			}
			now := castAt
			rel, err := write.NewReleaser(pool, rule, write.ReleaserConfig{Now: func() time.Time { return now }}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			pub, err := read.NewPublicResults(pool, rule)
			if err != nil {
				t.Fatal(err)
			}
			prev, _ := observe(t, pub)
			for n := 0; n < voters; {
				var batch []projections.Envelope[domain.VoteCast]
				for range 1 + rng.IntN(3) {
					if n == voters {
						break
					}
					batch = append(batch, seed.Vote(t, n, fmt.Sprintf("v%d", n), fmt.Sprintf("c%d", 1+rng.IntN(3)), "", castAt))
					n++
				}
				seed.ApplyVotes(t, batch...)
				if _, err := rel.Release(context.Background()); err != nil {
					t.Fatal(err)
				}
				cur, c := observe(t, pub)
				if c.PollsClosed {
					t.Fatal("polls closed before any schedule or operator closed them")
				}
				for name, v := range cur {
					if v > 0 && v < int64(k) {
						t.Fatalf("k=%d, after %d votes: %s is published with %d votes", k, n, name, v)
					}
					if d := v - prev[name]; d != 0 && d < int64(k) && d > -int64(k) {
						t.Fatalf("k=%d, after %d votes: %s moved from %d to %d while the polls are open", k, n, name, prev[name], v)
					}
				}
				sameTotalsAcrossBreakdowns(t, k, n, c)
				prev = cur
			}

			// The polls close (an operator, or the schedule's close passing).
			if round%2 == 0 {
				if err := seed.Store.RecordOperatorActions(context.Background(), []projections.Envelope[domain.OperatorActed]{operatorAction(t, seed)}); err != nil {
					t.Fatal(err)
				}
			} else {
				s, err := domain.NewElectionScheduled(castAt.Add(-time.Hour), castAt.Add(time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				if err := seed.Store.RecordSchedule(context.Background(), seed.Take(domain.TopicVotes), s); err != nil {
					t.Fatal(err)
				}
				if _, err := rel.Release(context.Background()); err != nil {
					t.Fatal(err)
				}
				if _, c := observe(t, pub); c.PollsClosed {
					t.Fatal("polls closed before the schedule's close")
				}
				now = castAt.Add(time.Hour)
			}
			if _, err := rel.Release(context.Background()); err != nil {
				t.Fatal(err)
			}
			_, c := observe(t, pub)
			exact, err := seed.Results.Contest(context.Background(), domain.DefaultContest)
			if err != nil {
				t.Fatal(err)
			}
			if !c.PollsClosed {
				t.Fatal("the polls are closed but the published contest says open")
			}
			if c.VotesCast != exact.VotesCast || fmt.Sprint(c.Candidates) != fmt.Sprint(exact.Candidates) {
				t.Fatalf("after the close: published %d votes %v, exact %d %v", c.VotesCast, c.Candidates, exact.VotesCast, exact.Candidates)
			}
			var withheld int64
			for i, g := range c.Regions {
				want := exact.Regions[i]
				if g.Withheld {
					withheld += want.VotesCast
					continue
				}
				if g.VotesCast != want.VotesCast || g.VotesCast < int64(k) {
					t.Fatalf("after the close, k=%d: region %s published %d, exact %d", k, g.Region, g.VotesCast, want.VotesCast)
				}
			}
			if withheld > 0 && withheld < int64(k) && withheld != exact.VotesCast {
				t.Fatalf("after the close, k=%d: the withheld regions hold %d together (the contest minus the shown regions)", k, withheld)
			}
			// The export (CSV, and the CDF from Contests) agrees: a
			// withheld region carries no count.
			rows, err := pub.ResultRows(context.Background(), true)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if r.Withheld && (r.Votes != 0 || r.RegionVotesCast != 0) {
					t.Fatalf("after the close: the export gives withheld region %s %d of %d votes", r.Region, r.Votes, r.RegionVotesCast)
				}
				if !r.Withheld && r.RegionVotesCast > 0 && r.RegionVotesCast < int64(k) {
					t.Fatalf("after the close, k=%d: the export shows region %s with %d votes", k, r.Region, r.RegionVotesCast)
				}
			}
		})
	}
}

func operatorAction(t *testing.T, seed *testutil.Seeder) projections.Envelope[domain.OperatorActed] {
	t.Helper()
	a, err := domain.NewOperatorActed(domain.ActionClosePolls, "tester", "host", "test", "ok", castAt)
	if err != nil {
		t.Fatal(err)
	}
	return projections.Envelope[domain.OperatorActed]{Event: a, Position: seed.Take(domain.TopicOperatorActions)}
}

// TestReleasedFiguresSurviveANewReleaser checks that what was released is
// kept in the database: a second releaser (another projector, or this one
// restarted) neither re-releases nor shrinks anything.
func TestReleasedFiguresSurviveANewReleaser(t *testing.T) {
	t.Parallel()
	rule, _ := domain.NewDisclosure(3)
	pool := testutil.Pool(t)
	seed := testutil.NewSeeder(t, pool)
	seed.Candidates(t, testutil.Candidate(t, "c1", "C One", "P1", ""))
	for i := range 4 {
		seed.Voters(t, testutil.Voter(t, fmt.Sprintf("v%d", i), "V", "North", "Town", castAt.AddDate(-30, 0, 0), castAt.AddDate(0, -1, 0)))
	}
	pub, _ := read.NewPublicResults(pool, rule)
	release := func() {
		t.Helper()
		r, err := write.NewReleaser(pool, rule, write.ReleaserConfig{}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		seed.ApplyVotes(t, seed.Vote(t, i, fmt.Sprintf("v%d", i), "c1", "", castAt))
	}
	release()
	seed.ApplyVotes(t, seed.Vote(t, 3, "v3", "c1", "", castAt))
	release()
	s, err := pub.Summary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.VotesCast != 3 {
		t.Fatalf("published %d votes after a second releaser; want the 3 released, not the fourth", s.VotesCast)
	}
}

// TestCarryReleasedKeepsWhatWasPublished copies the released tallies into
// a freshly migrated schema, as a replay's swap must: the rebuilt schema
// then publishes what the live one did, and its next release moves only
// by k.
func TestCarryReleasedKeepsWhatWasPublished(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rule, _ := domain.NewDisclosure(2)
	pool := testutil.Pool(t)
	seed := testutil.NewSeeder(t, pool)
	seed.Candidates(t, testutil.Candidate(t, "c1", "C One", "P1", ""))
	for i := range 2 {
		seed.Voters(t, testutil.Voter(t, fmt.Sprintf("v%d", i), "V", "North", "Town", castAt.AddDate(-30, 0, 0), castAt.AddDate(0, -1, 0)))
		seed.ApplyVotes(t, seed.Vote(t, i, fmt.Sprintf("v%d", i), "c1", "", castAt))
	}
	rel, _ := write.NewReleaser(pool, rule, write.ReleaserConfig{}, slog.New(slog.DiscardHandler))
	if _, err := rel.Release(ctx); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := postgres.ConnectSchema(ctx, pool.Config().ConnString(), "rebuilt_release", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer rebuilt.Close()
	if err := app.Migrate(ctx, slog.New(slog.DiscardHandler), rebuilt); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := write.CarryReleased(ctx, tx, postgres.Schema, "rebuilt_release"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var cells, releases int64
	if err := rebuilt.QueryRow(ctx, "SELECT (SELECT sum(votes) FROM released_cells WHERE dimension = 'region'), (SELECT releases FROM release_state)").Scan(&cells, &releases); err != nil {
		t.Fatal(err)
	}
	if cells != 2 || releases != 1 {
		t.Fatalf("rebuilt schema: %d region votes released in %d releases; want 2 in 1", cells, releases)
	}
}

// TestPublicReaderAgreesWithTheCountOnceAllIsReleased checks the public
// reader against the exact one: with k = 1 and everything released they
// give the same figures, route by route.
func TestPublicReaderAgreesWithTheCountOnceAllIsReleased(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rule, _ := domain.NewDisclosure(1)
	pool := testutil.Pool(t)
	seed := testutil.NewSeeder(t, pool)
	seed.Candidates(t, testutil.Candidate(t, "c1", "C One", "P1", ""), testutil.Candidate(t, "c2", "C Two", "P2", ""),
		testutil.Candidate(t, "c3", "C Three", "P1", ""))
	rng := rand.New(rand.NewPCG(7, 7))
	var votes []projections.Envelope[domain.VoteCast]
	for i := range 40 {
		region, _ := domain.NewRegion([]string{"North", "South", "East"}[rng.IntN(3)])
		v, err := domain.NewVoter(fmt.Sprintf("v%d", i), "V", []string{"female", "male", "other"}[rng.IntN(3)],
			castAt.AddDate(-18-rng.IntN(60), 0, 0), region, "Town", castAt.AddDate(0, -1, 0))
		if err != nil {
			t.Fatal(err)
		}
		seed.Voters(t, v)
		if i < 35 {
			votes = append(votes, seed.Vote(t, i, v.ID(), fmt.Sprintf("c%d", 1+rng.IntN(3)), "", castAt))
		}
	}
	seed.ApplyVotes(t, votes...)
	rel, _ := write.NewReleaser(pool, rule, write.ReleaserConfig{}, slog.New(slog.DiscardHandler))
	if _, err := rel.Release(ctx); err != nil {
		t.Fatal(err)
	}
	pub, _ := read.NewPublicResults(pool, rule)
	exact := seed.Results
	same := func(what string, a, b any, err1, err2 error) {
		t.Helper()
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if fmt.Sprintf("%+v", a) != fmt.Sprintf("%+v", b) {
			t.Errorf("%s: public\n%+v\nexact\n%+v", what, a, b)
		}
	}
	pc, e1 := pub.Candidates(ctx)
	ec, e2 := exact.Candidates(ctx)
	same("candidates", pc, ec, e1, e2)
	pr, e1 := pub.Regions(ctx)
	er, e2 := exact.Regions(ctx)
	same("regions", pr, er, e1, e2)
	pd, e1 := pub.Dashboard(ctx, read.DashboardOptions{TimelineMinutes: 60, Recent: 10})
	ed, e2 := exact.Dashboard(ctx, read.DashboardOptions{TimelineMinutes: 60, Recent: 10})
	same("parties", pd.Parties, ed.Parties, e1, e2)
	same("demographics", pd.Demographics, ed.Demographics, e1, e2)
	if pd.Summary.Leader == nil || ed.Summary.Leader == nil {
		t.Fatalf("no leader: public %v, exact %v", pd.Summary.Leader, ed.Summary.Leader)
	}
	same("summary votes", [2]any{pd.Summary.VotesCast, *pd.Summary.Leader}, [2]any{ed.Summary.VotesCast, *ed.Summary.Leader}, e1, e2)
	prows, e1 := pub.ResultRows(ctx, true)
	erows, e2 := exact.ResultRows(ctx, true)
	same("result rows", prows, erows, e1, e2)
	pk, e1 := pub.Contest(ctx, domain.DefaultContest)
	ek, e2 := exact.Contest(ctx, domain.DefaultContest)
	same("contest regions", pk.Regions, ek.Regions, e1, e2)
	same("contest candidates", pk.Candidates, ek.Candidates, e1, e2)
	same("contest decided", [3]any{pk.Decided, pk.VotesCast, pk.Leader}, [3]any{ek.Decided, ek.VotesCast, ek.Leader}, e1, e2)
}

// TestPublicReaderRefusesSmallerSteps: a read API whose k is larger than
// the releaser's would publish the releaser's small steps; it refuses,
// naming both.
func TestPublicReaderRefusesSmallerSteps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testutil.Pool(t)
	seed := testutil.NewSeeder(t, pool)
	seed.Candidates(t, testutil.Candidate(t, "c1", "C One", "P1", ""))
	seed.Voters(t, testutil.Voter(t, "v0", "V", "North", "Town", castAt.AddDate(-30, 0, 0), castAt.AddDate(0, -1, 0)))
	seed.ApplyVotes(t, seed.Vote(t, 0, "v0", "c1", "", castAt))
	two, _ := domain.NewDisclosure(2)
	rel, _ := write.NewReleaser(pool, two, write.ReleaserConfig{}, slog.New(slog.DiscardHandler))
	if _, err := rel.Release(ctx); err != nil {
		t.Fatal(err)
	}
	five, _ := domain.NewDisclosure(5)
	strict, _ := read.NewPublicResults(pool, five)
	if _, err := strict.Summary(ctx); !errors.Is(err, read.ErrDisclosureMismatch) {
		t.Fatalf("a reader with k=5 over releases in steps of 2: %v, want ErrDisclosureMismatch", err)
	}
	same, _ := read.NewPublicResults(pool, two)
	if _, err := same.Summary(ctx); err != nil {
		t.Fatalf("a reader with the releaser's k: %v", err)
	}
	// A releaser with k=5 taking over does not launder the steps of 2
	// already published (review finding: it overwrote the recorded k).
	relFive, _ := write.NewReleaser(pool, five, write.ReleaserConfig{}, slog.New(slog.DiscardHandler))
	if _, err := relFive.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := strict.Summary(ctx); !errors.Is(err, read.ErrDisclosureMismatch) {
		t.Fatalf("a reader with k=5 after a k=5 releaser followed one of k=2: %v, want ErrDisclosureMismatch", err)
	}
}

// sameTotalsAcrossBreakdowns fails when a breakdown published while the
// polls are open adds up, per candidate, to other figures than the
// contest's candidates do: each dimension's rows are released on their
// own, so subtracting one sum from the other would give the choices of
// the few votes released in one and not yet in the other (the review's
// attack: totals {A:20} beside genders {A:19, B:1} tell two votes apart).
func sameTotalsAcrossBreakdowns(t *testing.T, k, n int, c read.ContestResult) {
	t.Helper()
	totals := map[string]int64{}
	for _, cand := range c.Candidates {
		if cand.Votes > 0 {
			totals[cand.CandidateID] = cand.Votes
		}
	}
	sums := map[string]map[string]int64{}
	for _, d := range c.Demographics {
		if sums[d.Dimension] == nil {
			sums[d.Dimension] = map[string]int64{}
		}
		if d.Votes > 0 {
			sums[d.Dimension][d.CandidateID] += d.Votes
		}
	}
	for dim, sum := range sums {
		if !maps.Equal(sum, totals) {
			t.Fatalf("k=%d, after %d votes: the %s breakdown adds up to %v, the contest to %v: the difference is single votes", k, n, dim, sum, totals)
		}
	}
}
