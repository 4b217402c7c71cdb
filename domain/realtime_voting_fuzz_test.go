package domain

import (
	"errors"
	"testing"
	"time"
)

// FuzzDecodeRealtimeVoting checks contract rtv1's decoders on arbitrary
// bytes: they never panic, every refusal is an ErrInvalid naming a field,
// and what they accept is an event of votewatch's own contract (its
// encoding decodes to the same event), the only thing the bridge publishes.
func FuzzDecodeRealtimeVoting(f *testing.F) {
	for _, s := range []string{
		`{"voter_id": "aa4482ea-9f18-4fcc-87f5-bfd068bd3f38", "voter_name": "Ann Smith", "date_of_birth": "1961-04-09T10:00:00.000Z", "gender": "female", "address": {"street": "1 High St", "city": "Leeds", "state": "West Yorkshire", "country": "United Kingdom", "postcode": 47111}, "registered_age": 7}`,
		`{"voter_id": "v-1", "candidate_id": "c-1", "voting_time": "2026-12-07 11:44:43", "vote": 1, "address": {"state": "Kent"}}`,
		`{"voter_id": "v-1", "candidate_id": "c-1", "voting_time": "2026-12-07T11:44:43.5+01:00", "vote": 1.0}`,
		`{"voter_id": "v-1", "date_of_birth": "1961-04-09", "registered_date": "2019-01-01 00:00:00", "address": {"state": "A", "city": "B"}, "voter_name": "x", "gender": "y"}`,
		`{"voter_id": 7}`, `{{`, `[]`, `null`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
	logged := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	named := func(t *testing.T, err error) {
		var ve *ValidationError
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) || ve.Field == "" || ve.Problem == "" {
			t.Fatalf("refusal %v is not a ValidationError naming a field", err)
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if voter, err := DecodeRealtimeVotingVoter(payload, logged); err != nil {
			named(t, err)
		} else if back, err := DecodeVoterRegistered(mustJSON(t, voter)); err != nil || normalise(t, back) != normalise(t, voter) {
			t.Fatalf("accepted voter %q translates to %s, which votewatch reads as %v", payload, mustJSON(t, voter), err)
		}
		if vote, err := DecodeRealtimeVotingVote(payload); err != nil {
			named(t, err)
		} else if back, err := DecodeVoteCast(mustJSON(t, vote)); err != nil || normalise(t, back) != normalise(t, vote) {
			t.Fatalf("accepted vote %q translates to %s, which votewatch reads as %v", payload, mustJSON(t, vote), err)
		}
	})
}

func mustJSON(t *testing.T, ev interface{ MarshalJSON() ([]byte, error) }) []byte {
	b, err := ev.MarshalJSON()
	if err != nil {
		t.Fatalf("encode %T: %v", ev, err)
	}
	return b
}
