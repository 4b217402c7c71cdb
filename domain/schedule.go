package domain

import (
	"bytes"
	"encoding/json"
	"time"
)

// ElectionScheduled is the control event that sets the polls' window on
// one partition of the votes topic (contract v1.1). Its publisher writes
// one to every partition; a vote is checked against the latest schedule
// before it in its own partition, so the check depends only on the log,
// and changing the schedule affects only votes after the change.
type ElectionScheduled struct {
	pollsOpen, pollsClose time.Time
}

// NewElectionScheduled validates a schedule: the polls close after they
// open.
func NewElectionScheduled(pollsOpen, pollsClose time.Time) (ElectionScheduled, error) {
	if pollsOpen.IsZero() {
		return ElectionScheduled{}, invalid("polls_open", "is required")
	}
	// Microseconds, as the projection keeps times: live compares with the
	// stored schedule, replay and the recount with this one.
	pollsOpen, pollsClose = pollsOpen.UTC().Truncate(time.Microsecond), pollsClose.UTC().Truncate(time.Microsecond)
	if !pollsClose.After(pollsOpen) {
		return ElectionScheduled{}, invalid("polls_close", "must be after polls_open")
	}
	return ElectionScheduled{pollsOpen: pollsOpen, pollsClose: pollsClose}, nil
}

// PollsOpen returns when the polls open.
func (e ElectionScheduled) PollsOpen() time.Time { return e.pollsOpen }

// PollsClose returns when the polls close (a vote cast at that instant is
// too late).
func (e ElectionScheduled) PollsClose() time.Time { return e.pollsClose }

// Key returns the message key. Schedules are written to chosen
// partitions, not partitioned by key.
func (e ElectionScheduled) Key() string { return controlElectionScheduled }

const controlElectionScheduled = "election_scheduled"

type scheduleWire struct {
	Control    string `json:"control"`
	PollsOpen  string `json:"polls_open"`
	PollsClose string `json:"polls_close"`
}

// MarshalJSON encodes the schedule as the contract gives it:
// {"control":"election_scheduled","polls_open":RFC3339,"polls_close":RFC3339}.
func (e ElectionScheduled) MarshalJSON() ([]byte, error) {
	return json.Marshal(scheduleWire{controlElectionScheduled, e.pollsOpen.Format(time.RFC3339Nano), e.pollsClose.Format(time.RFC3339Nano)})
}

// DecodeElectionScheduled reads a schedule from the votes topic. ok is
// false when payload is not a control event (a vote, or garbage for the
// vote decoder to refuse); a control event that is not a valid schedule is
// an error matching ErrInvalid.
func DecodeElectionScheduled(payload []byte) (e ElectionScheduled, ok bool, err error) {
	if !isControl(payload) {
		return ElectionScheduled{}, false, nil
	}
	var w scheduleWire
	if err := decodeStrict(payload, &w); err != nil {
		return ElectionScheduled{}, true, err
	}
	if w.Control != controlElectionScheduled {
		return ElectionScheduled{}, true, invalid("control", "unknown control event %q on the votes topic", w.Control)
	}
	open, err := parseTimestamp("polls_open", w.PollsOpen)
	if err != nil {
		return ElectionScheduled{}, true, err
	}
	closes, err := parseTimestamp("polls_close", w.PollsClose)
	if err != nil {
		return ElectionScheduled{}, true, err
	}
	e, err = NewElectionScheduled(open, closes)
	return e, true, err
}

// isControl reports whether payload is a JSON object with a "control"
// member: a control event rather than a domain event.
func isControl(payload []byte) bool {
	// Events never have a "control" member; only look closer when the
	// payload mentions one.
	if !bytes.Contains(payload, []byte(`"control"`)) {
		return false
	}
	var probe struct {
		Control *string `json:"control"`
	}
	return json.Unmarshal(payload, &probe) == nil && probe.Control != nil
}

// How far a vote's cast_at may stand from the time its message was
// appended to the log (the Kafka record timestamp). Stations' clocks drift
// and terminals upload late, but a vote dated years away is an error or an
// attack: it would stretch the timeline and dodge the polls' window.
const (
	MaxCastAhead  = 15 * time.Minute
	MaxCastBehind = 7 * 24 * time.Hour
)

// CheckCastTime is the vote's time rule, applied before any other and
// independently of the register: a cast_at more than MaxCastAhead after
// or MaxCastBehind before loggedAt is implausible_time (unchecked when the
// log time is unknown, zero); with a schedule, a cast_at outside
// [polls open, polls close) is outside_polls. rejected is false when the
// vote's time is acceptable.
func CheckCastTime(castAt, loggedAt time.Time, schedule *ElectionScheduled) (reason RejectionReason, rejected bool) {
	// Microseconds, as the projection keeps times, so every path compares
	// the same instants.
	castAt, loggedAt = castAt.Truncate(time.Microsecond), loggedAt.Truncate(time.Microsecond)
	if !loggedAt.IsZero() && (castAt.After(loggedAt.Add(MaxCastAhead)) || castAt.Before(loggedAt.Add(-MaxCastBehind))) {
		return RejectImplausibleTime, true
	}
	if schedule != nil && (castAt.Before(schedule.pollsOpen) || !castAt.Before(schedule.pollsClose)) {
		return RejectOutsidePolls, true
	}
	return RejectionReason{}, false
}
