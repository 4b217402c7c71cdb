// Package domain holds the election's types, its events and their JSON
// contract, and the rules that decide which votes count. It does no I/O.
package domain

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched (errors.Is) by every validation failure, so callers
// can tell input that can never be accepted from a transient failure.
var ErrInvalid = errors.New("invalid")

// ValidationError names the field that failed validation and why.
type ValidationError struct {
	Field   string
	Problem string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("%s: %s", e.Field, e.Problem)
}

// Is reports that a ValidationError is an ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// ErrVoteIDReused is returned when a vote_id already accepted arrives with
// different content: a retry must repeat the vote exactly.
var ErrVoteIDReused = errors.New("vote_id was already used for a different vote")

// ErrStationClosed is returned when a station that reported closed submits
// votes: the rule would reject them (after_station_close), so the intake
// refuses them at once.
var ErrStationClosed = errors.New("has reported closed and takes no more votes (a vote after its close is rejected as after_station_close): upload every vote before closing")
