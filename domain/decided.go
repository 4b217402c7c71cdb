package domain

import "slices"

// Decided reports whether a contest (or one region of it) is
// mathematically certain: the leader's lead over the runner-up is larger
// than the number of eligible voters who have not yet cast a counted vote
// in it, so no way the remaining votes fall can change the leader. It is
// arithmetic, not a projection and not a race call. votes are the
// candidates' counts in any order.
func Decided(votes []int64, eligible, cast int64) bool {
	if len(votes) == 0 {
		return false
	}
	sorted := slices.Clone(votes)
	slices.SortFunc(sorted, func(a, b int64) int { return int(b - a) })
	lead := sorted[0]
	if len(sorted) > 1 {
		lead -= sorted[1]
	}
	remaining := max(eligible-cast, 0)
	return sorted[0] > 0 && lead > remaining
}
