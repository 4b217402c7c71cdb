package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"time"
)

// The topics of the public event contract. Each event is one JSON message;
// the message key is the id that orders it (see Key methods).
const (
	TopicCandidates = "candidates"
	TopicVoters     = "voters"
	TopicVotes      = "votes"
)

// TopicCheckpoints carries the signed checkpoints of the transparency log
// (package transparency), one partition, in publication order. Nothing
// reads it to project: it is for observers.
const TopicCheckpoints = "checkpoints"

// DeadLetterTopic names the topic where undecodable messages of topic go.
func DeadLetterTopic(topic string) string { return topic + ".dlq" }

// MaxEventSize bounds an event's payload; real events are a few hundred bytes.
const MaxEventSize = 64 << 10

// CandidateRegistered announces a candidate (or corrects one: the latest
// event for a candidate_id wins).
type CandidateRegistered struct{ Candidate Candidate }

// VoterRegistered adds a voter to the register. Registration closes before
// polls open: all of them precede the votes in the log.
type VoterRegistered struct{ Voter Voter }

// VoteCast records that a voter cast a ballot.
type VoteCast struct{ Vote Vote }

type candidateWire struct {
	CandidateID string `json:"candidate_id"`
	Name        string `json:"name"`
	// Contract v1.3: absent (or empty) for a candidate of no party.
	Party     string `json:"party,omitempty"`
	Biography string `json:"biography"`
	Platform  string `json:"platform"`
	PhotoURL  string `json:"photo_url"`
	// Contract v1.2: absent means the default contest.
	ContestID string `json:"contest_id,omitempty"`
}

type voterWire struct {
	VoterID      string `json:"voter_id"`
	Name         string `json:"name"`
	Gender       string `json:"gender"`
	BirthDate    string `json:"birth_date"`
	Region       string `json:"region"`
	City         string `json:"city"`
	RegisteredAt string `json:"registered_at"`
}

type voteWire struct {
	VoteID  string `json:"vote_id"`
	VoterID string `json:"voter_id"`
	// Absent from a sealed vote (contract v2), which has SealedChoice.
	CandidateID string `json:"candidate_id,omitempty"`
	CastAt      string `json:"cast_at"`
	// Contract v1.1: the station a vote came through, stamped by the
	// intake from its configuration; absent from v1 producers' votes.
	StationID     string `json:"station_id,omitempty"`
	StationRegion string `json:"station_region,omitempty"`
	// Contract v1.2: absent means the default contest.
	ContestID string `json:"contest_id,omitempty"`
	// Contract v2: the choice sealed to the tally key, in place of
	// candidate_id (SealedChoice.MarshalText).
	SealedChoice string `json:"sealed_choice,omitempty"`
}

// Key returns the message key: the candidate_id.
func (e CandidateRegistered) Key() string { return e.Candidate.id }

// Key returns the message key: the voter_id.
func (e VoterRegistered) Key() string { return e.Voter.id }

// Key returns the message key: the voter_id, so all of one voter's votes
// share a partition and "first vote wins" follows log order.
func (e VoteCast) Key() string { return e.Vote.voterID }

// MarshalJSON encodes the event as the contract gives it.
func (e CandidateRegistered) MarshalJSON() ([]byte, error) {
	c := e.Candidate
	return json.Marshal(candidateWire{c.id, c.name, c.party.name, c.biography, c.platform, c.photoURL, nonDefault(c.contestID)})
}

// MarshalJSON encodes the event as the contract gives it.
func (e VoterRegistered) MarshalJSON() ([]byte, error) {
	v := e.Voter
	return json.Marshal(voterWire{v.id, v.name, v.gender, v.birthDate.Format(time.DateOnly), v.region.name, v.city, v.registeredAt.Format(time.RFC3339Nano)})
}

// MarshalJSON encodes the event as the contract gives it.
func (e VoteCast) MarshalJSON() ([]byte, error) {
	v := e.Vote
	w := voteWire{v.id, v.voterID, v.candidateID, v.castAt.Format(time.RFC3339Nano), v.station.id, v.station.region.name, nonDefault(v.contestID), ""}
	if v.sealed != nil {
		w.SealedChoice = v.sealed.String()
	}
	return json.Marshal(w)
}

// DecodeCandidateRegistered parses and validates a candidates message.
// Errors match ErrInvalid and name the offending field.
func DecodeCandidateRegistered(payload []byte) (CandidateRegistered, error) {
	var w candidateWire
	if err := decodeStrict(payload, &w); err != nil {
		return CandidateRegistered{}, err
	}
	var party Party
	if w.Party != "" {
		p, err := NewParty(w.Party)
		if err != nil {
			return CandidateRegistered{}, err
		}
		party = p
	}
	c, err := NewCandidate(w.CandidateID, w.Name, party, w.Biography, w.Platform, w.PhotoURL)
	if err != nil {
		return CandidateRegistered{}, err
	}
	if w.ContestID != "" {
		if c, err = c.InContest(w.ContestID); err != nil {
			return CandidateRegistered{}, err
		}
	}
	return CandidateRegistered{Candidate: c}, nil
}

// DecodeVoterRegistered parses and validates a voters message.
// Errors match ErrInvalid and name the offending field.
func DecodeVoterRegistered(payload []byte) (VoterRegistered, error) {
	var w voterWire
	if err := decodeStrict(payload, &w); err != nil {
		return VoterRegistered{}, err
	}
	if w.BirthDate == "" {
		return VoterRegistered{}, invalid("birth_date", "is required")
	}
	birth, err := time.Parse(time.DateOnly, w.BirthDate)
	if err != nil {
		return VoterRegistered{}, invalid("birth_date", "must be a date as YYYY-MM-DD")
	}
	registered, err := parseTimestamp("registered_at", w.RegisteredAt)
	if err != nil {
		return VoterRegistered{}, err
	}
	region, err := NewRegion(w.Region)
	if err != nil {
		return VoterRegistered{}, err
	}
	v, err := NewVoter(w.VoterID, w.Name, w.Gender, birth, region, w.City, registered)
	if err != nil {
		return VoterRegistered{}, err
	}
	return VoterRegistered{Voter: v}, nil
}

// DecodeVoteCast parses and validates a votes message. A sealed vote
// (contract v2) comes back sealed: decide it only once an Opener has
// opened it (Opener.DecodeVoteCast does both).
// Errors match ErrInvalid and name the offending field.
func DecodeVoteCast(payload []byte) (VoteCast, error) {
	var w voteWire
	if err := decodeStrict(payload, &w); err != nil {
		return VoteCast{}, err
	}
	castAt, err := parseTimestamp("cast_at", w.CastAt)
	if err != nil {
		return VoteCast{}, err
	}
	var v Vote
	if w.SealedChoice != "" {
		if w.CandidateID != "" {
			return VoteCast{}, invalid("candidate_id", "must be absent from a sealed vote (sealed_choice holds the choice)")
		}
		var sealed SealedChoice
		if sealed, err = ParseSealedChoice(w.SealedChoice); err == nil {
			v, err = NewSealedVote(w.VoteID, w.VoterID, sealed, castAt)
		}
	} else {
		v, err = NewVote(w.VoteID, w.VoterID, w.CandidateID, castAt)
	}
	if err != nil {
		return VoteCast{}, err
	}
	if w.StationID != "" || w.StationRegion != "" {
		region, err := NewRegion(w.StationRegion)
		if err != nil {
			return VoteCast{}, invalid("station_region", "must be a region: %v", err)
		}
		station, err := NewStation(w.StationID, region)
		if err != nil {
			return VoteCast{}, err
		}
		v = v.WithStation(station)
	}
	if w.ContestID != "" {
		if v, err = v.InContest(w.ContestID); err != nil {
			return VoteCast{}, err
		}
	}
	return VoteCast{Vote: v}, nil
}

// decodeStrict reads exactly one JSON object. Unknown fields are allowed so
// producers can add fields without breaking this consumer; wrong types,
// trailing data and oversize payloads are not.
func decodeStrict(payload []byte, into any) error {
	if len(payload) > MaxEventSize {
		return invalid("payload", "is larger than %d bytes", MaxEventSize)
	}
	// The common case, a valid payload, in one pass without a Decoder's
	// buffer. json.Unmarshal refuses exactly what the Decoder below refuses
	// (it validates the whole payload first); the Decoder words the error.
	if json.Unmarshal(payload, into) == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(into); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return invalid(typeErr.Field, "must be a JSON %s", typeErr.Type.Kind())
		}
		if errors.Is(err, io.EOF) {
			return invalid("payload", "is empty")
		}
		return invalid("payload", "is not a JSON object: %s", trimJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("payload", "has data after the JSON object")
	}
	return nil
}

func trimJSONError(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

// nonDefault leaves the default contest out of the wire, so a v1 event
// encodes exactly as before.
func nonDefault(contestID string) string {
	if contestID == DefaultContest {
		return ""
	}
	return contestID
}

// RegistrationTopics are the topics registration closes on, in the order a
// replay applies them.
var RegistrationTopics = []string{TopicContests, TopicCandidates, TopicVoters}

// EventTopics are every topic of the contract, registrations first.
var EventTopics = []string{TopicContests, TopicCandidates, TopicVoters, TopicVotes, TopicStations, TopicOperatorActions}

// Decode decodes a message of topic into the event the rule reads, control
// events first: a ContestRegistered, CandidateRegistered, VoterRegistered
// or RegistrationClosed on the registration topics, a VoteCast or
// ElectionScheduled on the votes topic, a StationReported on the stations
// topic. An error matches ErrInvalid: the
// message is a dead letter.
func Decode(topic string, payload []byte) (any, error) {
	switch topic {
	case TopicContests, TopicCandidates, TopicVoters:
		if marker, ok, err := DecodeRegistrationClosed(payload); ok {
			return marker, err
		}
		switch topic {
		case TopicContests:
			return DecodeContestRegistered(payload)
		case TopicCandidates:
			return DecodeCandidateRegistered(payload)
		}
		return DecodeVoterRegistered(payload)
	case TopicVotes:
		if control, ok, err := DecodeVotesControl(payload); ok {
			return control, err
		}
		return DecodeVoteCast(payload)
	case TopicStations:
		return DecodeStationReported(payload)
	case TopicOperatorActions:
		return DecodeOperatorActed(payload)
	}
	return nil, invalid("topic", "%q is not a topic of the contract", topic)
}
