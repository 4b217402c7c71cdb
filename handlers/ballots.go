package handlers

import (
	"net/http"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/votewatch/votewatch/domain"
)

// ballotJSON is what a voter holding a receipt learns: the status, and a
// rejection's reason. Never the candidate, the voter, the region or when.
type ballotJSON struct {
	VoteID string  `json:"vote_id"`
	Status string  `json:"status"`
	Reason *string `json:"reason,omitempty"`
}

// Ballot lookups are limited per address: a receipt holder checks a few
// times; a scraper guessing vote_ids is slowed to a crawl.
const (
	ballotLookupRate  = rate.Limit(30.0 / 60)
	ballotLookupBurst = 30
)

func (a *API) ballot(w http.ResponseWriter, r *http.Request) {
	if !allowQuery(w, r, a.log) {
		return
	}
	addr := remoteHost(r)
	if !a.lookups.ok(addr) {
		w.Header().Set("Retry-After", "60")
		writeError(w, r, a.log, &httpError{status: http.StatusTooManyRequests, code: "rate_limited",
			message: "too many ballot lookups from this address; wait a minute"})
		return
	}
	a.lookups.fail(addr) // every lookup spends from the address's budget
	id := strings.ToLower(r.PathValue("vote_id"))
	if _, err := domain.NewVote(id, "x", "x", time.Unix(1, 0)); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	b, err := a.results.Ballot(r.Context(), id)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	out := ballotJSON{VoteID: id, Status: b.Status}
	if b.Reason != "" {
		out.Reason = &b.Reason
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, r, a.log, out)
}
