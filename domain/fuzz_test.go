package domain

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// fuzzDecoder checks a topic's decoder on arbitrary bytes: it never panics,
// every refusal is an ErrInvalid naming a field, and what it accepts
// encodes back to a payload that decodes to the same event.
func fuzzDecoder[E json.Marshaler](f *testing.F, decode func([]byte) (E, error), seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev, err := decode(payload)
		if err != nil {
			var ve *ValidationError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) || ve.Field == "" || ve.Problem == "" {
				t.Fatalf("refusal %v is not a ValidationError naming a field", err)
			}
			return
		}
		again, err := ev.MarshalJSON()
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", payload, err)
		}
		back, err := decode(again)
		if err != nil {
			t.Fatalf("accepted %q but refuses its own encoding %q: %v", payload, again, err)
		}
		if !reflect.DeepEqual(normalise(t, ev), normalise(t, back)) {
			t.Fatalf("round trip changed the event: %q → %q", payload, again)
		}
	})
}

// normalise compares events by their contract encoding (times may carry
// different locations and still be the same instant).
func normalise[E json.Marshaler](t *testing.T, ev E) string {
	b, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func FuzzDecodeVoteCast(f *testing.F) {
	fuzzDecoder(f, DecodeVoteCast,
		`{"vote_id":"01900000-0000-7000-8000-000000000001","voter_id":"v-1","candidate_id":"c-ada","cast_at":"2026-11-03T15:04:05Z"}`,
		`{"vote_id":"01900000-0000-7000-8000-000000000001","voter_id":"v-1","candidate_id":"c-ada","cast_at":"2026-11-03T15:04:05.123456789+02:00","extra":1}`,
		`{"vote_id":"nope","voter_id":7}`, `{{`, `[]`, `null`, `"x"`, ``,
		`{"vote_id":"01900000-0000-7000-8000-000000000001","voter_id":"v-1","cast_at":"2026-11-03T15:04:05Z","sealed_choice":"v1.Ou0VSyDa5usFQcdBOTJIsU9V3HyltOOjDSM5dpmhO5SIWp1PQfu3HL4vEy-9kfIdLOYITUMnMBljQHvFx3pkjsC3kdDlA-AA7QJTXSYw29HeZNy4-Ewor2WNmVw-kTmXT_DMEuX8rFLrl5UYv4i-aU8UMA5-_qbuVAAk2mwMXRNUYSL3ug"}`,
		`{"vote_id":"01900000-0000-7000-8000-000000000001","voter_id":"v-1","cast_at":"2026-11-03T15:04:05Z","sealed_choice":"v1.AAAA"}`)
}

func FuzzDecodeVoterRegistered(f *testing.F) {
	fuzzDecoder(f, DecodeVoterRegistered,
		`{"voter_id":"v-1","name":"Ann","gender":"female","birth_date":"1980-05-17","region":"New York","city":"Albany","registered_at":"2026-10-01T09:00:00Z"}`,
		`{"voter_id":"v-1","name":"Ann","gender":"x","birth_date":"17/05/1980","region":"","city":"","registered_at":"soon"}`,
		`{"voter_id":"`+string(make([]byte, 70))+`"}`, `{}`)
}

func FuzzDecodeCandidateRegistered(f *testing.F) {
	fuzzDecoder(f, DecodeCandidateRegistered,
		`{"candidate_id":"c-ada","name":"Ada","party":"Analytical","biography":"","platform":"","photo_url":""}`,
		`{"candidate_id":"c-ada","name":"","party":"P","photo_url":"javascript:alert(1)"}`,
		`{"candidate_id":7}`)
}

func FuzzDecodeContestRegistered(f *testing.F) {
	fuzzDecoder(f, DecodeContestRegistered,
		`{"contest_id":"senate-ny","name":"Senate (NY)","kind":"candidate","regions":["NY"]}`,
		`{"contest_id":"measure-1","name":"Measure 1","kind":"measure","regions":[]}`,
		`{"contest_id":"default","name":"x","kind":"candidate"}`, `{"contest_id":"x","kind":"poll"}`, `{"regions":"NY"}`)
}

func FuzzDecodeStationReported(f *testing.F) {
	fuzzDecoder(f, DecodeStationReported,
		`{"station_id":"st-1","region":"NY","status":"closed","reported_at":"2026-11-03T20:00:00Z"}`,
		`{"station_id":"st-1","region":"","status":"maybe","reported_at":"now"}`)
}

// The control events share the registration and votes topics with the
// domain events: whatever the bytes, Decode, on every topic, accepts them
// as one event that encodes back to itself, or refuses them naming a field.
func FuzzDecodeEveryTopic(f *testing.F) {
	for _, seed := range []string{
		`{"control":"registration_closed","partitions":16,"closed_at":"2026-11-03T08:00:00Z"}`,
		`{"control":"election_scheduled","polls_open":"2026-11-03T07:00:00Z","polls_close":"2026-11-03T20:00:00Z"}`,
		`{"control":"registration_closed","partitions":0}`, `{"control":7}`, `{"control":null}`,
		`{"action":"schedule","who":"a","host":"h","at":"2026-11-03T08:00:00Z","detail":"","result":"ok"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, topic := range EventTopics {
			ev, err := Decode(topic, payload)
			if err != nil {
				var ve *ValidationError
				if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) || ve.Field == "" {
					t.Fatalf("%s: refusal %v does not name a field", topic, err)
				}
				continue
			}
			m, ok := ev.(json.Marshaler)
			if !ok {
				t.Fatalf("%s: decoded %T, which does not encode", topic, ev)
			}
			again, err := m.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Decode(topic, again)
			if err != nil {
				t.Fatalf("%s: accepted %q but refuses its own encoding %q: %v", topic, payload, again, err)
			}
			if b, _ := back.(json.Marshaler).MarshalJSON(); string(b) != string(again) {
				t.Fatalf("%s: round trip changed the event: %q → %q", topic, again, b)
			}
		}
	})
}
