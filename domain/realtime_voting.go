package domain

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Contract rtv1: the messages of realtime_voting (the Kafka, PostgreSQL
// and Streamlit project votewatch began as a Go implementation of), read
// as they are produced by that project's own main.py and voting.py. They
// are never projected as they stand: the bridge (handlers.RealtimeVoting)
// reads them, turns each into this contract's VoterRegistered or VoteCast
// and publishes that to the voters or votes topic, keyed by voter_id with
// murmur2 like every other producer. Decisions are made from those topics
// alone, so a replay never reads these.

// The topics realtime_voting's scripts produce to: main.py writes voters,
// voting.py votes, both keyed by voter_id with confluent-kafka's default
// partitioner (CRC32 of the key, not murmur2).
const (
	TopicRealtimeVoters = "voters_topic"
	TopicRealtimeVotes  = "votes_topic"
)

// ActionImportSeedDB is the operator action of `votewatch import
// --from-seed-db`: the candidates (and voters) of a realtime_voting
// database published to the registration topics.
const ActionImportSeedDB = "import_seed_db"

// rtvVoterWire is the part of a realtime_voting voter that votewatch
// reads. Everything else (nationality, registration_number, the street,
// country and postcode, email, phone and cell numbers, picture,
// registered_age) is left out of the struct, so it is never decoded, let
// alone stored: its types may be anything (randomuser's postcode is a
// number or a string).
type rtvVoterWire struct {
	VoterID     *string `json:"voter_id"`
	VoterName   *string `json:"voter_name"`
	DateOfBirth *string `json:"date_of_birth"`
	Gender      *string `json:"gender"`
	Address     *struct {
		City  *string `json:"city"`
		State *string `json:"state"`
	} `json:"address"`
	// RegisteredDate is in some copies of the scripts, not in the
	// original's; without it the message's log time stands in.
	RegisteredDate *string `json:"registered_date"`
}

// rtvVoteWire is the part of a realtime_voting vote that votewatch reads:
// the voter's id, the chosen candidate's id, when, and the vote's weight.
// The voter's record and the candidate's record that voting.py merges into
// every vote are ignored.
type rtvVoteWire struct {
	VoterID     *string          `json:"voter_id"`
	CandidateID *string          `json:"candidate_id"`
	VotingTime  *string          `json:"voting_time"`
	Vote        *json.RawMessage `json:"vote"`
}

// DecodeRealtimeVotingVoter reads a voters_topic message as main.py
// produces it: the region is address.state, the city address.city, the
// birth date the (UTC) date of date_of_birth, registered_at the
// registered_date when the message has one, else loggedAt (the message's
// timestamp in the log). Errors match ErrInvalid and name the field, in
// the message's own terms (address.state).
func DecodeRealtimeVotingVoter(payload []byte, loggedAt time.Time) (VoterRegistered, error) {
	var w rtvVoterWire
	if err := decodeStrict(payload, &w); err != nil {
		return VoterRegistered{}, err
	}
	if w.VoterID == nil {
		return VoterRegistered{}, invalid("voter_id", "is required: not a realtime_voting voter")
	}
	if w.Address == nil {
		return VoterRegistered{}, invalid("address", "is required")
	}
	birth, err := rtvDate("date_of_birth", w.DateOfBirth)
	if err != nil {
		return VoterRegistered{}, err
	}
	registered := loggedAt
	if w.RegisteredDate != nil {
		if registered, err = rtvTime("registered_date", *w.RegisteredDate); err != nil {
			return VoterRegistered{}, err
		}
	}
	return RealtimeVotingVoter(*w.VoterID, deref(w.VoterName), deref(w.Gender), birth, deref(w.Address.State), deref(w.Address.City), registered)
}

// RealtimeVotingVoter makes a voter of realtime_voting's fields (a
// message's, or a row of its voters table), named in its terms in errors.
func RealtimeVotingVoter(voterID, name, gender string, birth time.Time, state, city string, registeredAt time.Time) (VoterRegistered, error) {
	region, err := NewRegion(strings.TrimSpace(state))
	if err != nil {
		return VoterRegistered{}, rename(err, "address.state")
	}
	v, err := NewVoter(voterID, name, gender, birth, region, city, registeredAt)
	if err != nil {
		if f := fieldOf(err); f == "city" {
			return VoterRegistered{}, rename(err, "address.city")
		} else if f == "name" {
			return VoterRegistered{}, rename(err, "voter_name")
		}
		return VoterRegistered{}, err
	}
	return VoterRegistered{Voter: v}, nil
}

// ParseRealtimeVotingBirthDate reads realtime_voting's date_of_birth
// ("1961-04-09T10:00:00.000Z", randomuser's form, or a plain date) as the
// date it names in UTC.
func ParseRealtimeVotingBirthDate(s string) (time.Time, error) { return rtvDate("date_of_birth", &s) }

// DecodeRealtimeVotingVote reads a votes_topic message as voting.py
// produces it (the voter's record, the candidate's record, voting_time
// and "vote": 1). The cast time is voting_time read as UTC; the vote_id is
// RealtimeVotingVoteID's, so the same message delivered again is a repeat.
// A vote whose "vote" is other than 1 is refused: votewatch counts one
// vote per ballot. Errors match ErrInvalid and name the field.
func DecodeRealtimeVotingVote(payload []byte) (VoteCast, error) {
	var w rtvVoteWire
	if err := decodeStrict(payload, &w); err != nil {
		return VoteCast{}, err
	}
	if w.VoterID == nil {
		return VoteCast{}, invalid("voter_id", "is required: not a realtime_voting vote")
	}
	if w.CandidateID == nil {
		return VoteCast{}, invalid("candidate_id", "is required: not a realtime_voting vote")
	}
	if w.VotingTime == nil {
		return VoteCast{}, invalid("voting_time", "is required: not a realtime_voting vote")
	}
	if w.Vote != nil && strings.TrimSpace(string(*w.Vote)) != "1" {
		return VoteCast{}, invalid("vote", "must be 1: one ballot is one vote")
	}
	castAt, err := rtvTime("voting_time", *w.VotingTime)
	if err != nil {
		return VoteCast{}, err
	}
	v, err := NewVote(RealtimeVotingVoteID(*w.VoterID, *w.CandidateID, castAt), *w.VoterID, *w.CandidateID, castAt)
	if err != nil {
		return VoteCast{}, err
	}
	return VoteCast{Vote: v}, nil
}

// realtimeVotingNamespace is the UUID namespace of RealtimeVotingVoteID:
// UUIDv5 (RFC 9562) of the name "votewatch realtime_voting vote" in the
// URL namespace, 6ba7b811-9dad-11d1-80b4-00c04fd430c8.
var realtimeVotingNamespace = uuidV5(mustUUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8"), "votewatch realtime_voting vote")

// RealtimeVotingVoteID is the vote_id of a realtime_voting vote, which has
// none: the UUIDv5 (RFC 9562, SHA-1) in the namespace
// uuid5(NAMESPACE_URL, "votewatch realtime_voting vote") of the name
// voter_id, candidate_id and the cast time as RFC 3339 in UTC
// (2026-12-07T11:44:43Z), joined by newlines. The same message delivered
// again has the same vote_id and changes nothing; a second vote by the
// voter differs in its time or its candidate, and is a second vote. In
// Python: uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "votewatch realtime_voting vote"),
// f"{voter_id}\n{candidate_id}\n{cast_at}").
func RealtimeVotingVoteID(voterID, candidateID string, castAt time.Time) string {
	return uuidString(uuidV5(realtimeVotingNamespace, voterID+"\n"+candidateID+"\n"+castAt.UTC().Format(time.RFC3339Nano)))
}

// RealtimeVotingCandidate makes a candidate of a row of realtime_voting's
// candidates table; an empty party_affiliation is an independent
// candidate (no party, contract v1.3). Errors name the table's columns.
func RealtimeVotingCandidate(id, name, party, biography, platform, photoURL string) (CandidateRegistered, error) {
	var p Party
	if strings.TrimSpace(party) != "" {
		var err error
		if p, err = NewParty(party); err != nil {
			return CandidateRegistered{}, rename(err, "party_affiliation")
		}
	}
	c, err := NewCandidate(id, name, p, biography, platform, photoURL)
	if err != nil {
		switch fieldOf(err) {
		case "name":
			err = rename(err, "candidate_name")
		case "platform":
			err = rename(err, "campaign_platform")
		}
		return CandidateRegistered{}, err
	}
	return CandidateRegistered{Candidate: c}, nil
}

// rtvTime reads realtime_voting's times: "2026-12-07 11:44:43" (voting.py's
// strftime, UTC without a zone, fractional seconds allowed) or RFC 3339.
func rtvTime(field, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.ParseInLocation(time.DateTime, s, time.UTC); err == nil {
		return rtvInRange(field, t)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return rtvInRange(field, t.UTC())
	}
	return time.Time{}, invalid(field, "must be a time such as 2026-12-07 11:44:43 (UTC) or RFC 3339")
}

func rtvInRange(field string, t time.Time) (time.Time, error) {
	if t.Year() < 1900 || t.Year() > 9999 {
		return time.Time{}, invalid(field, "is out of range")
	}
	return t, nil
}

func rtvDate(field string, s *string) (time.Time, error) {
	if s == nil || strings.TrimSpace(*s) == "" {
		return time.Time{}, invalid(field, "is required")
	}
	t, err := rtvTime(field, *s)
	if err != nil {
		d, derr := time.Parse(time.DateOnly, strings.TrimSpace(*s))
		if derr != nil {
			return time.Time{}, invalid(field, "must be a date such as 1961-04-09T10:00:00.000Z or 1961-04-09")
		}
		t = d
	}
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// fieldOf is the field a validation error names ("" for another error).
func fieldOf(err error) string {
	var v *ValidationError
	if errors.As(err, &v) {
		return v.Field
	}
	return ""
}

// rename names a validation error's field as realtime_voting does.
func rename(err error, field string) error {
	var v *ValidationError
	if errors.As(err, &v) {
		c := *v
		c.Field = field
		return &c
	}
	return err
}

func uuidV5(namespace [16]byte, name string) [16]byte {
	h := sha1.New()
	h.Write(namespace[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return u
}

func mustUUID(s string) [16]byte {
	var u [16]byte
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		panic("domain: bad UUID constant " + s)
	}
	copy(u[:], b)
	return u
}

func uuidString(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
