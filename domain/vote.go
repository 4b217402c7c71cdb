package domain

import (
	"strings"
	"time"
)

// Vote is one ballot cast by a voter for a candidate. Whether it counts is
// decided against the register and earlier ballots (see RejectionReason).
type Vote struct {
	id          string
	voterID     string
	candidateID string
	castAt      time.Time
}

// NewVote validates a vote: id must be a UUID (any version), normalised to
// lower case so a redelivery is recognised whatever its spelling.
func NewVote(id, voterID, candidateID string, castAt time.Time) (Vote, error) {
	id = strings.ToLower(id)
	if !isUUID(id) {
		return Vote{}, invalid("vote_id", "must be a UUID such as 0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b")
	}
	if err := validID("voter_id", voterID); err != nil {
		return Vote{}, err
	}
	if err := validID("candidate_id", candidateID); err != nil {
		return Vote{}, err
	}
	if castAt.IsZero() {
		return Vote{}, invalid("cast_at", "is required")
	}
	return Vote{id: id, voterID: voterID, candidateID: candidateID, castAt: castAt.UTC()}, nil
}

// ID returns the vote's UUID in canonical lower-case form.
func (v Vote) ID() string { return v.id }

// VoterID returns who cast the vote.
func (v Vote) VoterID() string { return v.voterID }

// CandidateID returns whom the vote is for.
func (v Vote) CandidateID() string { return v.candidateID }

// CastAt returns when the vote was cast.
func (v Vote) CastAt() time.Time { return v.castAt }

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
				return false
			}
		}
	}
	return true
}

// RejectionReason says why a vote did not count.
type RejectionReason struct{ code string }

// The rejection reasons. A vote is checked in this order (domain.Count):
// its cast_at must be plausible for when it was logged and inside the
// polls' window (CheckCastTime), the voter must be registered, the
// candidate must be registered, and the voter must not have a counted
// ballot already (the first vote of a voter wins; the same vote_id
// delivered again is not a second vote and changes nothing).
var (
	RejectImplausibleTime  = RejectionReason{"implausible_time"}
	RejectOutsidePolls     = RejectionReason{"outside_polls"}
	RejectUnknownVoter     = RejectionReason{"unknown_voter"}
	RejectUnknownCandidate = RejectionReason{"unknown_candidate"}
	RejectDuplicateVoter   = RejectionReason{"duplicate_voter"}
)

// RejectionReasons lists every reason, in a stable order.
func RejectionReasons() []RejectionReason {
	return []RejectionReason{RejectDuplicateVoter, RejectUnknownVoter, RejectUnknownCandidate, RejectOutsidePolls, RejectImplausibleTime}
}

// ParseRejectionReason returns the reason with the given code.
func ParseRejectionReason(code string) (RejectionReason, error) {
	for _, r := range RejectionReasons() {
		if r.code == code {
			return r, nil
		}
	}
	return RejectionReason{}, invalid("reason", "unknown rejection reason %q", code)
}

// String returns the reason's code, as stored and as served.
func (r RejectionReason) String() string { return r.code }
