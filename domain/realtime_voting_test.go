package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
)

// A voter exactly as realtime_voting's main.py produces it (randomuser's
// record; its postcode may be a number).
const rtvVoter = `{"voter_id": "aa4482ea-9f18-4fcc-87f5-bfd068bd3f38", "voter_name": "Ann Smith",
 "date_of_birth": "1961-04-09T23:30:00.000Z", "gender": "female", "nationality": "GB",
 "registration_number": "bluebird123", "address": {"street": "12 High Street", "city": "Leeds",
 "state": "West Yorkshire", "country": "United Kingdom", "postcode": 47111},
 "email": "ann@example.com", "phone_number": "017683 12345", "cell_number": "07700 900123",
 "picture": "https://randomuser.me/api/portraits/women/1.jpg", "registered_age": 7}`

// The vote voting.py produces for that voter: her record, the candidate's
// row, voting_time and vote.
const rtvVote = `{"voter_id": "aa4482ea-9f18-4fcc-87f5-bfd068bd3f38", "voter_name": "Ann Smith",
 "date_of_birth": "1961-04-09T23:30:00.000Z", "gender": "female", "nationality": "GB",
 "registration_number": "bluebird123", "address": {"street": "12 High Street", "city": "Leeds",
 "state": "West Yorkshire", "country": "United Kingdom", "postcode": "LS1 1AA"},
 "email": "ann@example.com", "phone_number": "017683 12345", "cell_number": "07700 900123",
 "picture": "https://randomuser.me/api/portraits/women/1.jpg", "registered_age": 7,
 "candidate_id": "3b1d1c52-6f4e-4d8e-9a57-2b9f0f0c1e11", "candidate_name": "Richard Holland",
 "party_affiliation": "Management Party", "biography": "A brief bio of the candidate.",
 "campaign_platform": "Key campaign promises or platform.",
 "photo_url": "https://randomuser.me/api/portraits/men/2.jpg",
 "voting_time": "2026-12-07 11:44:43", "vote": 1}`

func TestARealtimeVotingVoterBecomesARegistration(t *testing.T) {
	logged := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	ev, err := domain.DecodeRealtimeVotingVoter([]byte(rtvVoter), logged)
	if err != nil {
		t.Fatal(err)
	}
	v := ev.Voter
	if got, want := v.ID(), "aa4482ea-9f18-4fcc-87f5-bfd068bd3f38"; got != want {
		t.Errorf("voter_id = %q, want %q", got, want)
	}
	if got, want := v.Region().String(), "West Yorkshire"; got != want {
		t.Errorf("region = %q, want %q", got, want)
	}
	if got, want := v.City(), "Leeds"; got != want {
		t.Errorf("city = %q, want %q", got, want)
	}
	// The date of date_of_birth in UTC, not in the reader's zone.
	if got, want := v.BirthDate(), time.Date(1961, 4, 9, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("birth date = %v, want %v", got, want)
	}
	if !v.RegisteredAt().Equal(logged) {
		t.Errorf("registered_at = %v, want the log time %v (the message has no registered_date)", v.RegisteredAt(), logged)
	}
	if got, want := v.Gender(), "female"; got != want {
		t.Errorf("gender = %q, want %q", got, want)
	}
	// Re-encoded in votewatch's contract, nothing else of the message
	// survives: no email, phone, picture, street or postcode.
	out, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, leaked := range []string{"ann@example.com", "017683", "07700", "randomuser", "High Street", "47111", "bluebird", "GB"} {
		if strings.Contains(string(out), leaked) {
			t.Errorf("the voter event carries %q: %s", leaked, out)
		}
	}
	back, err := domain.DecodeVoterRegistered(out)
	if err != nil || back.Voter != v {
		t.Errorf("the translated voter does not decode as votewatch's contract: %v %s", err, out)
	}
}

func TestARegisteredDateWinsOverTheLogTime(t *testing.T) {
	payload := strings.Replace(rtvVoter, `"registered_age": 7`, `"registered_age": 7, "registered_date": "2019-05-01T08:00:00.000Z"`, 1)
	ev, err := domain.DecodeRealtimeVotingVoter([]byte(payload), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ev.Voter.RegisteredAt(), time.Date(2019, 5, 1, 8, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("registered_at = %v, want %v", got, want)
	}
}

func TestARealtimeVotingVoteBecomesAVoteWithADerivedID(t *testing.T) {
	ev, err := domain.DecodeRealtimeVotingVote([]byte(rtvVote))
	if err != nil {
		t.Fatal(err)
	}
	v := ev.Vote
	if got, want := v.CastAt(), time.Date(2026, 12, 7, 11, 44, 43, 0, time.UTC); !got.Equal(want) {
		t.Errorf("cast_at = %v, want voting_time read as UTC %v", got, want)
	}
	if v.VoterID() != "aa4482ea-9f18-4fcc-87f5-bfd068bd3f38" || v.CandidateID() != "3b1d1c52-6f4e-4d8e-9a57-2b9f0f0c1e11" {
		t.Errorf("vote = %s for %s", v.VoterID(), v.CandidateID())
	}
	// The documented derivation, computed with Python's uuid module:
	// uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "votewatch realtime_voting vote"),
	//   "aa4482ea-…\n3b1d1c52-…\n2026-12-07T11:44:43Z").
	if got, want := v.ID(), "3866ae62-fb5e-513c-a4cd-d5b39da29c63"; got != want {
		t.Errorf("vote_id = %s, want %s", got, want)
	}
	again, err := domain.DecodeRealtimeVotingVote([]byte(rtvVote))
	if err != nil || again.Vote.ID() != v.ID() {
		t.Errorf("the same message gave vote_id %s then %s", v.ID(), again.Vote.ID())
	}
	later, err := domain.DecodeRealtimeVotingVote([]byte(strings.Replace(rtvVote, "11:44:43", "11:44:44", 1)))
	if err != nil || later.Vote.ID() == v.ID() {
		t.Errorf("a vote one second later has the same vote_id %s", later.Vote.ID())
	}
	out, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, leaked := range []string{"Ann", "ann@example.com", "Richard", "Management", "West Yorkshire", "randomuser"} {
		if strings.Contains(string(out), leaked) {
			t.Errorf("the vote event carries %q: %s", leaked, out)
		}
	}
}

func TestMessagesOfNeitherShapeAreRefusedNamingTheField(t *testing.T) {
	for _, tc := range []struct {
		name, topic, payload, field string
	}{
		{"not JSON", domain.TopicRealtimeVotes, `{"voter_id": `, "payload"},
		{"a votewatch vote on votes_topic", domain.TopicRealtimeVotes, `{"vote_id":"0193a1c2-7d4e-7f00-8000-000000000001","voter_id":"v-1","candidate_id":"c-1","cast_at":"2026-11-03T15:04:05Z"}`, "voting_time"},
		{"a vote without a candidate", domain.TopicRealtimeVotes, `{"voter_id":"v-1","voting_time":"2026-12-07 11:44:43"}`, "candidate_id"},
		{"a vote of weight 2", domain.TopicRealtimeVotes, strings.Replace(rtvVote, `"vote": 1`, `"vote": 2`, 1), "vote"},
		{"a vote at no time", domain.TopicRealtimeVotes, strings.Replace(rtvVote, "2026-12-07 11:44:43", "yesterday", 1), "voting_time"},
		{"a voter without an address", domain.TopicRealtimeVoters, `{"voter_id":"v-1","voter_name":"Ann","date_of_birth":"1961-04-09T10:00:00.000Z","gender":"female"}`, "address"},
		{"a voter without a state", domain.TopicRealtimeVoters, strings.Replace(rtvVoter, `"state": "West Yorkshire"`, `"state": ""`, 1), "address.state"},
		{"a voter born on no date", domain.TopicRealtimeVoters, strings.Replace(rtvVoter, "1961-04-09T23:30:00.000Z", "09/04/1961", 1), "date_of_birth"},
		{"a votewatch voter on voters_topic", domain.TopicRealtimeVoters, `{"voter_id":"v-1","name":"Ann","gender":"female","birth_date":"1980-01-02","region":"North","city":"Oslo","registered_at":"2026-10-01T09:00:00Z"}`, "address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.topic == domain.TopicRealtimeVotes {
				_, err = domain.DecodeRealtimeVotingVote([]byte(tc.payload))
			} else {
				_, err = domain.DecodeRealtimeVotingVoter([]byte(tc.payload), time.Now())
			}
			var verr *domain.ValidationError
			if !errors.Is(err, domain.ErrInvalid) || !errors.As(err, &verr) || verr.Field != tc.field {
				t.Errorf("error = %v, want an invalid %s", err, tc.field)
			}
		})
	}
}

func TestACandidateWithoutAPartyStandsForNoParty(t *testing.T) {
	c, err := domain.RealtimeVotingCandidate("c-1", "Ada Lovelace", "", "bio", "platform", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Candidate.HasParty() {
		t.Errorf("party = %q, want none (an independent candidate)", c.Candidate.Party().String())
	}
	if _, err := domain.RealtimeVotingCandidate("c-1", "", "Savior Party", "", "", ""); err == nil || !strings.Contains(err.Error(), "candidate_name") {
		t.Errorf("a nameless candidate: %v, want an error naming candidate_name", err)
	}
}
