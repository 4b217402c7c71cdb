package domain_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
)

func TestNormalizeGenderKeepsTheVocabularyClosed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"female", "female"}, {" Female ", "female"}, {"M", "male"}, {"male", "male"},
		{"nonbinary", "other"}, {"Non-Binary", "other"}, {"x", "other"}, {"two-spirit", "other"},
		{"a very long description of a gender that no register uses", "other"},
		{"unknown", "unspecified"}, {"prefer not to say", "unspecified"},
	} {
		got, err := domain.NormalizeGender(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeGender(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "   ", "\xff"} {
		if _, err := domain.NormalizeGender(bad); err == nil {
			t.Errorf("NormalizeGender(%q): no error", bad)
		}
	}
}

func TestVoterGenderIsAlwaysInTheVocabulary(t *testing.T) {
	t.Parallel()
	region, _ := domain.NewRegion("North")
	at := time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)
	for _, g := range []string{"nonbinary", "Femme", "F", "agender"} {
		v, err := domain.NewVoter("v-1", "Ann", g, at.AddDate(-30, 0, 0), region, "Town", at)
		if err != nil {
			t.Fatalf("NewVoter(gender %q): %v (a registration must not be lost for its gender's spelling)", g, err)
		}
		found := false
		for _, want := range domain.Genders() {
			found = found || v.Gender() == want
		}
		if !found {
			t.Errorf("NewVoter(gender %q).Gender() = %q, not in %v", g, v.Gender(), domain.Genders())
		}
	}
}

func TestNewDisclosureRefusesKBelowOne(t *testing.T) {
	t.Parallel()
	if _, err := domain.NewDisclosure(0); err == nil {
		t.Fatal("NewDisclosure(0): no error")
	}
}

// TestReleaseStepsAreNeverSmallerThanK drives random rows of counts vote
// by vote, releasing as ReleaseDue says after each vote: while the polls
// are open no released row moves by fewer than k votes (the first release
// included), and at the close every row is exact.
func TestReleaseStepsAreNeverSmallerThanK(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(21, 3))
	for round := range 200 {
		k := 1 + rng.IntN(12)
		d, err := domain.NewDisclosure(k)
		if err != nil {
			t.Fatal(err)
		}
		rows, cands := 1+rng.IntN(6), 1+rng.IntN(4)
		exact := make([][]int64, rows)
		released := make([][]int64, rows)
		for r := range rows {
			exact[r], released[r] = make([]int64, cands), make([]int64, cands)
		}
		votes := rng.IntN(300)
		for range votes {
			r := rng.IntN(rows)
			exact[r][rng.IntN(cands)]++
			for r := range rows {
				if !d.ReleaseDue(released[r], exact[r], false) {
					continue
				}
				var moved int64
				for c := range cands {
					moved += exact[r][c] - released[r][c]
				}
				if moved < int64(k) {
					t.Fatalf("round %d: row %d moved by %d < k=%d", round, r, moved, k)
				}
				copy(released[r], exact[r])
			}
		}
		for r := range rows {
			if d.ReleaseDue(released[r], exact[r], true) {
				copy(released[r], exact[r])
			}
			for c := range cands {
				if released[r][c] != exact[r][c] {
					t.Fatalf("round %d: after the close row %d is %v, exact %v", round, r, released[r], exact[r])
				}
			}
		}
	}
}

// TestWithheldRowsCannotBeRecoveredBySubtraction checks on random
// breakdowns that every shown row holds at least k votes, and that the
// withheld rows together (what subtracting the shown rows from the total
// gives) hold none or at least k.
func TestWithheldRowsCannotBeRecoveredBySubtraction(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(21, 4))
	for range 2000 {
		k := 1 + rng.IntN(12)
		d, _ := domain.NewDisclosure(k)
		totals := make([]int64, rng.IntN(8))
		for i := range totals {
			totals[i] = int64(rng.IntN(3 * k))
		}
		out := d.Withhold(totals)
		var withheld, all int64
		for _, t := range totals {
			all += t
		}
		for i, w := range out {
			if w {
				withheld += totals[i]
			} else if totals[i] > 0 && totals[i] < int64(k) {
				t.Fatalf("k=%d %v: row %d shown with %d", k, totals, i, totals[i])
			}
		}
		// All of a breakdown under k is withheld whole: the breakdown
		// then shows nothing below its total.
		if withheld > 0 && withheld < int64(k) && withheld != all {
			t.Fatalf("k=%d %v: withheld %v together hold %d", k, totals, out, withheld)
		}
	}
}

func TestPollsClosedBySchedule(t *testing.T) {
	t.Parallel()
	now := time.Now()
	if domain.PollsClosed(now, nil, false) {
		t.Error("no schedule, no operator: closed")
	}
	if !domain.PollsClosed(now, nil, true) {
		t.Error("closed by the operator: open")
	}
	if domain.PollsClosed(now, []time.Time{now.Add(-time.Hour), now.Add(time.Minute)}, false) {
		t.Error("one partition's schedule still open: closed")
	}
	if !domain.PollsClosed(now, []time.Time{now.Add(-time.Hour), now}, false) {
		t.Error("every schedule closed: open")
	}
}

// Breakdowns wait for the polls to close: released apart from the
// regions, they would differ from the contest's totals by single votes.
func TestBreakdownsArePublishedOnlyOnceThePollsClose(t *testing.T) {
	for _, c := range []struct {
		k      int
		closed bool
		want   bool
	}{{10, false, false}, {10, true, true}, {2, false, false}, {1, false, true}} {
		d, err := domain.NewDisclosure(c.k)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.PublishesBreakdowns(c.closed); got != c.want {
			t.Errorf("k=%d, polls closed %v: publishes breakdowns = %v, want %v", c.k, c.closed, got, c.want)
		}
	}
}
