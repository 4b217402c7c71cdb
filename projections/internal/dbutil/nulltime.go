package dbutil

import "time"

// sqlc reads a nullable timestamptz as *time.Time; the domain says "not
// known" with Go's zero time. These two convert, in one place.

// TimeOrZero reads a nullable column: Go's zero time where it is NULL.
func TimeOrZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// KnownTime is t for a nullable column: NULL where t is zero.
func KnownTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
