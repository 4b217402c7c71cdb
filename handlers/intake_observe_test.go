package handlers_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
)

// Every intake request is reported with its station (none for an unknown
// token, the station's name for a revoked one) and its status, and stored
// votes with how many were new: the per-station view operators alert on.
func TestIntakeReportsEachStationsRequests(t *testing.T) {
	t.Parallel()
	type request struct {
		station string
		status  int
	}
	var mu sync.Mutex
	var requests []request
	var votes [][3]any
	in, err := handlers.NewIntake(acceptOnce{seen: map[string]bool{}}, handlers.IntakeConfig{
		Stations: []handlers.Station{
			{Name: "north-1", Token: "observe-north-token-0001", Region: fuzzRegion},
			{Name: "lost", Token: "observe-lost-token-00001", Region: fuzzRegion, Revoked: true},
		},
		Rate: 1e6,
		ObserveRequest: func(station string, status int) {
			mu.Lock()
			defer mu.Unlock()
			requests = append(requests, request{station, status})
		},
		ObserveVotes: func(station string, accepted, duplicates int) {
			mu.Lock()
			defer mu.Unlock()
			votes = append(votes, [3]any{station, accepted, duplicates})
		},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	in.Register(mux)
	good := `{"vote_id":"01900000-0000-7000-8000-000000000001","voter_id":"v-1","candidate_id":"c-ada","cast_at":"2026-11-03T15:04:05Z"}`
	for _, c := range []struct{ method, token, body string }{
		{"POST", "observe-north-token-0001", good},
		{"POST", "observe-north-token-0001", good}, // a retry
		{"POST", "observe-north-token-0001", `{}`},
		{"POST", "observe-lost-token-00001", good},
		{"POST", "some-guess-at-a-token-00", good},
		{"GET", "observe-north-token-0001", ""},
	} {
		req := httptest.NewRequest(c.method, "/api/v1/votes", strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Content-Type", "application/json")
		mux.ServeHTTP(httptest.NewRecorder(), req)
	}
	want := []request{{"north-1", 202}, {"north-1", 202}, {"north-1", 400}, {"lost", 403}, {"", 401}, {"", 405}}
	if !slices.Equal(requests, want) {
		t.Errorf("requests reported %v, want %v", requests, want)
	}
	if wantVotes := [][3]any{{"north-1", 1, 0}, {"north-1", 0, 1}}; !slices.Equal(votes, wantVotes) {
		t.Errorf("votes reported %v, want %v", votes, wantVotes)
	}
}

// acceptOnce stores each vote_id once, as the real intake does.
type acceptOnce struct{ seen map[string]bool }

func (a acceptOnce) CloseStation(context.Context, string, domain.StationReported) (bool, error) {
	return true, nil
}

func (a acceptOnce) Accept(_ context.Context, _ string, votes []domain.VoteCast) (int, error) {
	n := 0
	for _, v := range votes {
		if !a.seen[v.Vote.ID()] {
			a.seen[v.Vote.ID()] = true
			n++
		}
	}
	return n, nil
}
