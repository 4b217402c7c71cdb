package kafka

import "testing"

// The projection's applied offset is the highest offset applied, and the
// pipelined consumer applies out of order across keys: it may lie past
// messages that were in flight. Only the group's commit (never past a
// gap) may be trusted as is; without one, or with one ahead of the
// projection, the start moves back by the margin.
func TestResumeNeverStartsPastAnUnappliedMessage(t *testing.T) {
	const margin = 100
	for _, tc := range []struct {
		name       string
		applied    int64
		hasApplied bool
		committed  int64
		want       int64
	}{
		{"nothing applied", 0, false, 500, 0},
		{"nothing applied, no commit", 0, false, -2, 0},
		{"commit behind the projection", 1000, true, 900, 900},
		{"commit equal to the projection", 1000, true, 1000, 1000},
		{"no commit: applied less the margin", 1000, true, -2, 900},
		{"projection behind the group (restored)", 1000, true, 5000, 900},
		{"margin below the log's start", 50, true, -1, 0},
	} {
		if got := resumeAt(tc.applied, tc.hasApplied, tc.committed, margin); got != tc.want {
			t.Errorf("%s: resumeAt(%d, %v, %d) = %d, want %d", tc.name, tc.applied, tc.hasApplied, tc.committed, got, tc.want)
		}
	}
}
