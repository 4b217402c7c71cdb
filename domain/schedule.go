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

// DecodeVotesControl reads a control event of the votes topic: an
// ElectionScheduled, a StationOpened or a StationClosed. ok is false when payload is not a
// control event (a vote, or garbage for the vote decoder to refuse); a
// control event that is none of them is an error matching ErrInvalid.
func DecodeVotesControl(payload []byte) (e any, ok bool, err error) {
	if !isControl(payload) {
		return nil, false, nil
	}
	var probe struct {
		Control string `json:"control"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, true, invalid("control", "is not a string")
	}
	switch probe.Control {
	case controlElectionScheduled:
		e, err := decodeElectionScheduled(payload)
		return e, true, err
	case controlStationClosed:
		e, err := decodeStationClosed(payload)
		return e, true, err
	case controlStationOpened:
		e, err := decodeStationOpened(payload)
		return e, true, err
	}
	return nil, true, invalid("control", "unknown control event %q on the votes topic", probe.Control)
}

func decodeElectionScheduled(payload []byte) (ElectionScheduled, error) {
	var w scheduleWire
	if err := decodeStrict(payload, &w); err != nil {
		return ElectionScheduled{}, err
	}
	open, err := parseTimestamp("polls_open", w.PollsOpen)
	if err != nil {
		return ElectionScheduled{}, err
	}
	closes, err := parseTimestamp("polls_close", w.PollsClose)
	if err != nil {
		return ElectionScheduled{}, err
	}
	return NewElectionScheduled(open, closes)
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

// The time rule's bounds (issue 24 §1). A vote is never refused for being
// logged late: precinct scanners are offline and upload after the polls
// close, and early voting runs for weeks, so only a cast_at that no upload
// delay explains is implausible. Both bounds are constants, not flags, so
// the projector, replay and the audit decide the same log the same way.
const (
	// MaxCastAhead is the clock-skew allowance: a cast_at more than this
	// after the message's log time (its Kafka timestamp) is in the future.
	MaxCastAhead = 15 * time.Minute
)

// EarliestPlausible is the earliest cast_at of any election votewatch
// decides (2000-01-01T00:00:00Z): a vote dated before it is an error or an
// attack (a zero date, a clock reset to the epoch), not a late upload.
// Changing it is a code change, recorded with the release that makes it,
// so every decider of a log agrees on it.
func EarliestPlausible() time.Time { return time.Unix(earliestPlausibleUnix, 0).UTC() }

// earliestPlausibleUnix is 2000-01-01T00:00:00Z (a constant: no globals).
const earliestPlausibleUnix = 946684800

// CheckCastTime is the vote's time rule, applied before any other and
// independently of the register: a cast_at more than MaxCastAhead after
// loggedAt (unchecked when the log time is unknown, zero), or before
// EarliestPlausible, is implausible_time; with a schedule, a cast_at
// outside [polls open, polls close) is outside_polls, however late the
// vote was logged. rejected is false when the vote's time is acceptable.
func CheckCastTime(castAt, loggedAt time.Time, schedule *ElectionScheduled) (reason RejectionReason, rejected bool) {
	// Microseconds, as the projection keeps times, so every path compares
	// the same instants.
	castAt, loggedAt = castAt.Truncate(time.Microsecond), loggedAt.Truncate(time.Microsecond)
	if castAt.Before(EarliestPlausible()) || (!loggedAt.IsZero() && castAt.After(loggedAt.Add(MaxCastAhead))) {
		return RejectImplausibleTime, true
	}
	if schedule != nil && (castAt.Before(schedule.pollsOpen) || !castAt.Before(schedule.pollsClose)) {
		return RejectOutsidePolls, true
	}
	return RejectionReason{}, false
}
