package domain_test

import (
	"testing"

	"github.com/votewatch/votewatch/domain"
)

func TestDecidedExactlyWhenCertain(t *testing.T) {
	tests := []struct {
		name           string
		votes          []int64
		eligible, cast int64
		want           bool
	}{
		{"lead equals the votes still out: not yet", []int64{6, 3}, 12, 9, false},
		{"one more vote for the leader: certain", []int64{7, 3}, 12, 10, true},
		{"every vote in, any lead", []int64{5, 4}, 9, 9, true},
		{"every vote in, a tie", []int64{5, 5}, 10, 10, false},
		{"no votes", []int64{0, 0}, 10, 0, false},
		{"a single candidate with one vote and nobody left", []int64{1}, 1, 1, true},
		{"order does not matter", []int64{3, 7}, 12, 10, true},
		{"more cast than eligible (registrations refused later): nothing out", []int64{2, 1}, 2, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.Decided(tt.votes, tt.eligible, tt.cast); got != tt.want {
				t.Errorf("Decided(%v, %d eligible, %d cast) = %v, want %v", tt.votes, tt.eligible, tt.cast, got, tt.want)
			}
		})
	}
}
