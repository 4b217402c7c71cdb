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
	station     Station
	contestID   string
	// sealed is the choice sealed to the tally key (contract v2), with
	// candidateID empty, until an Opener opens it.
	sealed *SealedChoice
	// openedFrom is the sealed choice an Opener opened, kept so that a
	// vote not decided yet can be stored as the log holds it (AsLogged)
	// rather than with its choice in clear.
	openedFrom *SealedChoice
}

// Station is the polling station a vote came through, and the region it
// serves (contract v1.1). The zero Station means "not given": votes that
// producers publish straight to the log carry none.
type Station struct {
	id     string
	region Region
}

// NewStation validates a station: an id and the region it serves.
func NewStation(id string, region Region) (Station, error) {
	if err := validID("station_id", id); err != nil {
		return Station{}, err
	}
	if region == (Region{}) {
		return Station{}, invalid("station_region", "is required")
	}
	return Station{id: id, region: region}, nil
}

// ID returns the station's identifier ("" when not given).
func (s Station) ID() string { return s.id }

// Region returns the region the station serves.
func (s Station) Region() Region { return s.region }

// InContest returns the vote as cast in contest (contract v1.2; a vote
// that names none is in DefaultContest).
func (v Vote) InContest(contestID string) (Vote, error) {
	if err := validID("contest_id", contestID); err != nil {
		return Vote{}, err
	}
	v.contestID = contestID
	return v, nil
}

// ContestID returns the contest the vote is cast in.
func (v Vote) ContestID() string { return v.contestID }

// WithStation returns the vote as submitted through station.
func (v Vote) WithStation(s Station) Vote {
	v.station = s
	return v
}

// Station returns the station the vote came through (zero if not given).
func (v Vote) Station() Station { return v.station }

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
	return Vote{id: id, voterID: voterID, candidateID: candidateID, castAt: castAt.UTC(), contestID: DefaultContest}, nil
}

// NewSealedVote validates a vote whose choice is sealed (contract v2): it
// cannot be decided until an Opener opens it.
func NewSealedVote(id, voterID string, sealed SealedChoice, castAt time.Time) (Vote, error) {
	id = strings.ToLower(id)
	if !isUUID(id) {
		return Vote{}, invalid("vote_id", "must be a UUID such as 0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b")
	}
	if err := validID("voter_id", voterID); err != nil {
		return Vote{}, err
	}
	if err := sealed.validate(); err != nil {
		return Vote{}, err
	}
	if castAt.IsZero() {
		return Vote{}, invalid("cast_at", "is required")
	}
	return Vote{id: id, voterID: voterID, sealed: &sealed, castAt: castAt.UTC(), contestID: DefaultContest}, nil
}

// Sealed returns the vote's sealed choice, and false when the choice is
// in clear (or has been opened).
func (v Vote) Sealed() (SealedChoice, bool) {
	if v.sealed == nil {
		return SealedChoice{}, false
	}
	return *v.sealed, true
}

// AsLogged returns the vote as its message in the log carried it: a vote
// an Opener opened is sealed again with the very sealed choice it came
// with (its clear candidate_id gone); any other vote is returned as it is
// (a clear v1 vote is clear in the log too). A held vote is stored this
// way, so the database keeps no clear choice next to its voter.
func (v Vote) AsLogged() Vote {
	if v.openedFrom != nil {
		v.sealed, v.openedFrom, v.candidateID = v.openedFrom, nil, ""
	}
	return v
}

// ID returns the vote's UUID in canonical lower-case form.
func (v Vote) ID() string { return v.id }

// VoterID returns who cast the vote.
func (v Vote) VoterID() string { return v.voterID }

// CandidateID returns whom the vote is for; empty while the choice is
// sealed.
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
// polls' window (CheckCastTime), it must not come after its station's
// close marker in its partition (after_station_close), its station must
// have opened before it there, in its region (unknown_station), the voter
// must be registered, the station
// it came through (if given) must serve the voter's region, the candidate
// must be registered, and the voter must not have a counted
// ballot already (the first vote of a voter wins; the same vote_id
// delivered again is not a second vote and changes nothing).
var (
	RejectImplausibleTime  = RejectionReason{"implausible_time"}
	RejectOutsidePolls     = RejectionReason{"outside_polls"}
	RejectUnknownVoter     = RejectionReason{"unknown_voter"}
	RejectWrongStation     = RejectionReason{"wrong_station"}
	RejectUnknownContest   = RejectionReason{"unknown_contest"}
	RejectNotEligible      = RejectionReason{"not_eligible"}
	RejectUnknownCandidate = RejectionReason{"unknown_candidate"}
	RejectDuplicateVoter   = RejectionReason{"duplicate_voter"}
	// RejectAfterStationClose: the vote was logged after its station's
	// close report (issue 24 §2).
	RejectAfterStationClose = RejectionReason{"after_station_close"}
	// RejectUnknownStation: the vote's station never reported, or reported
	// another region (issue 24 §3).
	RejectUnknownStation = RejectionReason{"unknown_station"}
)

// RejectionReasons lists every reason, in a stable order.
func RejectionReasons() []RejectionReason {
	return []RejectionReason{RejectDuplicateVoter, RejectUnknownVoter, RejectUnknownCandidate, RejectOutsidePolls, RejectImplausibleTime, RejectWrongStation, RejectUnknownContest, RejectNotEligible, RejectAfterStationClose, RejectUnknownStation}
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
