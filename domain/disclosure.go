package domain

import (
	"slices"
	"time"
)

// DefaultMinCell is the least number of votes a published cell holds, and
// the least by which a published cell moves while the polls are open
// (README, "What is published"). Census and election offices publish with
// k between 5 and 10.
const DefaultMinCell = 10

// Disclosure is the rule for what of the count may be published: no cell
// (a region in a contest, a gender or age band in a contest) is shown
// with fewer than k votes, and while the polls are open a cell's figures
// move only in steps of at least k votes. The rule is written here once;
// the releaser (write.Releaser) and every public reader apply it.
type Disclosure struct{ k int64 }

// NewDisclosure returns the rule for a minimum cell size k (at least 1;
// k = 1 publishes every vote as it is counted, which gives ballot secrecy
// up to what one vote's move reveals: use it only in tests).
func NewDisclosure(k int) (Disclosure, error) {
	if k < 1 {
		return Disclosure{}, invalid("min_cell", "must be at least 1, got %d", k)
	}
	return Disclosure{k: int64(k)}, nil
}

// K returns the minimum cell size.
func (d Disclosure) K() int64 { return d.k }

// PublishesBreakdowns reports whether the breakdowns of a contest by
// gender and age band may be published: once the polls are closed, and
// not before (unless k is 1, which protects nothing anyway). Each
// breakdown's rows are released on their own, and the regions' on their
// own, so while the polls are open a breakdown's per-candidate sums and
// the contest's differ by the votes released in one and not yet in the
// other: subtracting them tells those few votes' choices apart, whatever
// k is. Breakdowns are a canvass's figures, not election night's.
func (d Disclosure) PublishesBreakdowns(pollsClosed bool) bool {
	return pollsClosed || d.k <= 1
}

// PublishesStationCount reports whether the number of ballots counted
// from a polling station may be published: once it has reported closing
// (the canvass's figure), and not while it is open, when each move of the
// count would time a vote to the station (unless k is 1).
func (d Disclosure) PublishesStationCount(stationClosed bool) bool {
	return stationClosed || d.k <= 1
}

// ReleaseDue reports whether a cell (a row of candidates' counts, all
// released together) moves from its released counts to its exact ones
// now. While the polls are open it moves once the exact counts stand at
// least k votes away from the released ones (summed over the row), so a
// change never shows fewer than k votes; once they are closed every
// difference is released, and the figures become exact. released and
// exact are indexed alike; a missing count is zero.
func (d Disclosure) ReleaseDue(released, exact []int64, pollsClosed bool) bool {
	var moved int64
	for i := range max(len(released), len(exact)) {
		var r, e int64
		if i < len(released) {
			r = released[i]
		}
		if i < len(exact) {
			e = exact[i]
		}
		if e > r {
			moved += e - r
		} else {
			moved += r - e
		}
	}
	if pollsClosed {
		return moved > 0
	}
	return d.k > 0 && moved >= d.k
}

// Withhold decides which rows of a breakdown are withheld, given each
// row's total: every row with fewer than k votes (and more than none),
// and then, while the withheld rows together hold fewer than k votes, the
// smallest shown row too. What is withheld is published only as their
// sum, which is then 0 or at least k: subtracting the shown rows from a
// published total gives no cell under k. When even all rows together hold
// fewer than k votes, every row is withheld.
func (d Disclosure) Withhold(totals []int64) []bool {
	out := make([]bool, len(totals))
	var withheld int64
	for i, t := range totals {
		if t > 0 && t < d.k {
			out[i] = true
			withheld += t
		}
	}
	for withheld > 0 && withheld < d.k {
		best := -1
		for i, t := range totals {
			if !out[i] && t > 0 && (best < 0 || t < totals[best]) {
				best = i
			}
		}
		if best < 0 {
			break // every non-empty row is already withheld
		}
		out[best] = true
		withheld += totals[best]
	}
	return out
}

// PollsClosed reports whether the polls are closed at now: an operator
// closed them (the close_polls action), or the election is scheduled and
// now is at or after every partition's latest schedule's close.
// latestCloses holds the latest schedule's close of each partition that
// has one.
func PollsClosed(now time.Time, latestCloses []time.Time, closedByOperator bool) bool {
	if closedByOperator {
		return true
	}
	if len(latestCloses) == 0 {
		return false
	}
	return !now.Before(slices.MaxFunc(latestCloses, func(a, b time.Time) int { return a.Compare(b) }))
}
