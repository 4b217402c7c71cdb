package handlers_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
)

// A station fetches the tally key and seals a vote with it; the holder of
// the private key opens it.
func TestTallyKeyServedSealsWhatTheKeyHolderOpens(t *testing.T) {
	t.Parallel()
	key, err := domain.GenerateTallyKey()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	handlers.RegisterTallyKey(mux, key.Public(), true, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := contractClient(t).Get(srv.URL + "/api/v1/tally-key")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		KeyID         string `json:"key_id"`
		Key           string `json:"key"`
		RequireSealed bool   `json:"require_sealed"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%d: %v", resp.StatusCode, err)
	}
	pub, err := domain.ParseTallyPublicKey(got.Key)
	if err != nil || pub.ID() != got.KeyID || !got.RequireSealed {
		t.Fatalf("served %+v: %v", got, err)
	}
	s, err := domain.NewSealer(pub)
	if err != nil {
		t.Fatal(err)
	}
	v, err := domain.NewVote("0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b", "v-1", "c-ada", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if v, err = s.Seal(v); err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(domain.VoteCast{Vote: v})
	opened, err := domain.NewOpener(&key, true).DecodeVoteCast(payload)
	if err != nil || opened.Vote.CandidateID() != "c-ada" {
		t.Fatalf("opened %q: %v", opened.Vote.CandidateID(), err)
	}
}
