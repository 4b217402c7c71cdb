package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/votewatch/votewatch/domain"
)

const goodVote = `{"vote_id":"0190D5F2-7C1E-7B3A-9F00-1C2D3E4F5A6B","voter_id":"v-1","candidate_id":"c-1","cast_at":"2026-11-03T14:05:00-05:00"}`

func TestDecodeVoteCast(t *testing.T) {
	tests := []struct {
		name      string
		payload   string
		wantField string // "" means valid
	}{
		{"a valid vote", goodVote, ""},
		{"unknown fields are tolerated", `{"vote_id":"0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b","voter_id":"v","candidate_id":"c","cast_at":"2026-11-03T14:05:00Z","station":"s1"}`, ""},
		{"not JSON", `{{{`, "payload"},
		{"empty payload", ``, "payload"},
		{"a JSON array", `[1,2]`, "payload"},
		{"trailing data", goodVote + `{}`, "payload"},
		{"vote_id not a UUID", `{"vote_id":"nope","voter_id":"v","candidate_id":"c","cast_at":"2026-11-03T14:05:00Z"}`, "vote_id"},
		{"vote_id a number", `{"vote_id":7,"voter_id":"v","candidate_id":"c","cast_at":"2026-11-03T14:05:00Z"}`, "vote_id"},
		{"voter_id missing", `{"vote_id":"0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b","candidate_id":"c","cast_at":"2026-11-03T14:05:00Z"}`, "voter_id"},
		{"voter_id with spaces", `{"vote_id":"0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b","voter_id":"a b","candidate_id":"c","cast_at":"2026-11-03T14:05:00Z"}`, "voter_id"},
		{"candidate_id too long", `{"vote_id":"0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b","voter_id":"v","candidate_id":"` + strings.Repeat("c", 65) + `","cast_at":"2026-11-03T14:05:00Z"}`, "candidate_id"},
		{"cast_at not RFC 3339", `{"vote_id":"0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b","voter_id":"v","candidate_id":"c","cast_at":"yesterday"}`, "cast_at"},
		{"cast_at missing", `{"vote_id":"0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b","voter_id":"v","candidate_id":"c"}`, "cast_at"},
		{"oversized", `{"vote_id":"` + strings.Repeat("x", domain.MaxEventSize) + `"}`, "payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := domain.DecodeVoteCast([]byte(tt.payload))
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("err = %v, want valid", err)
				}
				if ev.Vote.ID() != strings.ToLower(ev.Vote.ID()) {
					t.Errorf("vote_id %q not normalised to lower case", ev.Vote.ID())
				}
				if ev.Vote.CastAt().Location().String() != "UTC" {
					t.Errorf("cast_at not normalised to UTC: %v", ev.Vote.CastAt())
				}
				return
			}
			var ve *domain.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("err = %v, want a ValidationError matching ErrInvalid", err)
			}
			if ve.Field != tt.wantField {
				t.Errorf("field = %q, want %q (err %v)", ve.Field, tt.wantField, err)
			}
		})
	}
}

func TestDecodeVoterRegistered(t *testing.T) {
	valid := map[string]string{
		"voter_id": "v-1", "name": "Ana Lima", "gender": "Female", "birth_date": "1990-02-28",
		"region": "New York", "city": "Albany", "registered_at": "2026-10-01T09:00:00Z",
	}
	tests := []struct {
		name      string
		change    map[string]string
		wantField string
	}{
		{"a valid voter", nil, ""},
		{"birth_date in the wrong format", map[string]string{"birth_date": "28/02/1990"}, "birth_date"},
		{"born after registering", map[string]string{"birth_date": "2026-10-02"}, "birth_date"},
		{"older than 130", map[string]string{"birth_date": "1890-01-01"}, "birth_date"},
		{"region with a slash", map[string]string{"region": "A/B"}, "region"},
		{"region blank", map[string]string{"region": "  "}, "region"},
		{"name missing", map[string]string{"name": ""}, "name"},
		{"gender missing", map[string]string{"gender": ""}, "gender"},
		{"registered_at missing", map[string]string{"registered_at": ""}, "registered_at"},
		{"name with control characters", map[string]string{"name": "a\u0007b"}, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := map[string]string{}
			for k, v := range valid {
				fields[k] = v
			}
			for k, v := range tt.change {
				fields[k] = v
			}
			payload := "{"
			first := true
			for k, v := range fields {
				if !first {
					payload += ","
				}
				first = false
				payload += `"` + k + `":` + quote(v)
			}
			payload += "}"
			ev, err := domain.DecodeVoterRegistered([]byte(payload))
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if ev.Voter.Gender() != "female" || ev.Key() != "v-1" || ev.Voter.Region().String() != "New York" {
					t.Errorf("decoded %+v", ev.Voter)
				}
				return
			}
			var ve *domain.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.wantField {
				t.Errorf("err = %v, want a ValidationError on %s", err, tt.wantField)
			}
		})
	}
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&0xf])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestDecodeCandidateRegistered(t *testing.T) {
	tests := []struct {
		name      string
		payload   string
		wantField string
	}{
		{"a valid candidate", `{"candidate_id":"c-1","name":"Ada","party":"Civic","biography":"b","platform":"p","photo_url":"https://example.org/a.png"}`, ""},
		{"photo_url optional", `{"candidate_id":"c-1","name":"Ada","party":"Civic"}`, ""},
		{"photo_url not http", `{"candidate_id":"c-1","name":"Ada","party":"Civic","photo_url":"javascript:alert(1)"}`, "photo_url"},
		// Contract v1.3: independents and measure choices stand for no party.
		{"an independent: party absent", `{"candidate_id":"c-1","name":"Ada"}`, ""},
		{"an independent: party empty", `{"candidate_id":"c-1","name":"Ada","party":""}`, ""},
		{"party blank", `{"candidate_id":"c-1","name":"Ada","party":"   "}`, "party"},
		{"party not text", `{"candidate_id":"c-1","name":"Ada","party":1}`, "party"},
		{"candidate_id a number", `{"candidate_id":1,"name":"Ada","party":"Civic"}`, "candidate_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := domain.DecodeCandidateRegistered([]byte(tt.payload))
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var ve *domain.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.wantField {
				t.Errorf("err = %v, want a ValidationError on %s", err, tt.wantField)
			}
		})
	}
}

// An independent candidate has no party, on the wire and after: its
// event leaves the field out rather than send an empty party.
func TestAnIndependentCandidateRoundTripsWithoutAParty(t *testing.T) {
	c, err := domain.NewCandidate("c-ind", "Ida", domain.Party{}, "", "", "")
	if err != nil {
		t.Fatalf("NewCandidate without a party: %v", err)
	}
	if c.HasParty() {
		t.Error("HasParty = true for a candidate with no party")
	}
	b, err := domain.CandidateRegistered{Candidate: c}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"party"`) {
		t.Errorf("an independent's event = %s, want no party field", b)
	}
	back, err := domain.DecodeCandidateRegistered(b)
	if err != nil || back.Candidate != c {
		t.Errorf("decoded %+v, %v; want %+v", back.Candidate, err, c)
	}
	withParty, _ := domain.NewParty("Civic")
	if c, _ := domain.NewCandidate("c-1", "Ada", withParty, "", "", ""); !c.HasParty() || c.Party().String() != "Civic" {
		t.Errorf("a party's candidate: HasParty %v, party %q", c.HasParty(), c.Party())
	}
}

func TestEventsRoundTripThroughTheContract(t *testing.T) {
	ev, err := domain.DecodeVoteCast([]byte(goodVote))
	if err != nil {
		t.Fatal(err)
	}
	encoded, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	again, err := domain.DecodeVoteCast(encoded)
	if err != nil {
		t.Fatal(err)
	}
	if again != ev {
		t.Errorf("round trip changed the event: %+v → %s → %+v", ev, encoded, again)
	}
	if got, want := string(encoded), `{"vote_id":"0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b","voter_id":"v-1","candidate_id":"c-1","cast_at":"2026-11-03T19:05:00Z"}`; got != want {
		t.Errorf("encoded = %s, want %s", got, want)
	}
}

func TestRejectionReasons(t *testing.T) {
	for _, want := range []string{"duplicate_voter", "unknown_voter", "unknown_candidate"} {
		r, err := domain.ParseRejectionReason(want)
		if err != nil || r.String() != want {
			t.Errorf("ParseRejectionReason(%q) = %v, %v", want, r, err)
		}
	}
	if _, err := domain.ParseRejectionReason("tired"); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("unknown reason: err = %v, want ErrInvalid", err)
	}
}

// A valid payload takes json.Unmarshal's one pass; a refused one keeps the
// Decoder's words, which reach the dead-letter topic's readers.
func TestDecodeVoteCastWordsItsRefusals(t *testing.T) {
	for payload, want := range map[string]string{
		goodVote + `{}`: "has data after the JSON object",
		goodVote + ` x`: "has data after the JSON object",
		``:              "is empty",
		`{{{`:           "is not a JSON object",
		`{"vote_id":7,"voter_id":"v","candidate_id":"c","cast_at":"2026-11-03T14:05:00Z"}`: "must be a JSON string",
	} {
		if _, err := domain.DecodeVoteCast([]byte(payload)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DecodeVoteCast(%q) = %v, want an error containing %q", payload, err, want)
		}
	}
}

// A station's close report may carry the ballots it cast (contract v1.3),
// for the canvass; a report without them still closes it, and only a close
// report may carry them.
func TestAStationsCloseReportMayCarryItsBallots(t *testing.T) {
	for _, tt := range []struct {
		name, payload string
		wantField     string
		ballots       int64
		hasBallots    bool
	}{
		{"a close without ballots", `{"station_id":"st-1","region":"North","status":"closed","reported_at":"2026-11-03T20:00:00Z"}`, "", 0, false},
		{"a close with ballots", `{"station_id":"st-1","region":"North","status":"closed","reported_at":"2026-11-03T20:00:00Z","ballots":412}`, "", 412, true},
		{"a close with no ballots cast", `{"station_id":"st-1","region":"North","status":"closed","reported_at":"2026-11-03T20:00:00Z","ballots":0}`, "", 0, true},
		{"negative ballots", `{"station_id":"st-1","region":"North","status":"closed","reported_at":"2026-11-03T20:00:00Z","ballots":-1}`, "ballots", 0, false},
		{"too many ballots", `{"station_id":"st-1","region":"North","status":"closed","reported_at":"2026-11-03T20:00:00Z","ballots":1000000000000}`, "ballots", 0, false},
		{"ballots not a number", `{"station_id":"st-1","region":"North","status":"closed","reported_at":"2026-11-03T20:00:00Z","ballots":"12"}`, "ballots", 0, false},
		{"ballots on an open report", `{"station_id":"st-1","region":"North","status":"open","reported_at":"2026-11-03T20:00:00Z","ballots":3}`, "ballots", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := domain.DecodeStationReported([]byte(tt.payload))
			if tt.wantField != "" {
				var ve *domain.ValidationError
				if !errors.As(err, &ve) || ve.Field != tt.wantField {
					t.Fatalf("err = %v, want a ValidationError on %s", err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n, ok := r.Ballots(); n != tt.ballots || ok != tt.hasBallots {
				t.Errorf("Ballots() = %d, %v; want %d, %v", n, ok, tt.ballots, tt.hasBallots)
			}
			b, err := r.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if back, err := domain.DecodeStationReported(b); err != nil || back != r {
				t.Errorf("round trip %s: %+v, %v; want %+v", b, back, err, r)
			}
			if !tt.hasBallots && strings.Contains(string(b), "ballots") {
				t.Errorf("a report without ballots encodes them: %s", b)
			}
		})
	}
}
