package handlers

import (
	"net/http"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/transparency"
)

// ballotJSON is what a voter holding a receipt learns: the status, a
// rejection's reason, and once the vote's leaf is in the latest signed
// checkpoint, that checkpoint and the leaf's inclusion proof. Never the
// candidate, the voter, the region or when (decided_at is left out: a
// time beside the public per-minute tallies could betray the choice).
type ballotJSON struct {
	VoteID     string  `json:"vote_id"`
	Status     string  `json:"status"`
	Reason     *string `json:"reason,omitempty"`
	Checkpoint *string `json:"checkpoint,omitempty"`
	// Proof is an RFC 6962 inclusion proof (sumdb/tlog record proof) of
	// the leaf in the checkpoint's tree.
	Proof *transparency.InclusionProof `json:"proof,omitempty"`
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
	// Every lookup spends from the address's budget, found or not.
	if allowed, _ := a.lookups.spend(a.clients.key(r)); !allowed {
		w.Header().Set("Retry-After", "60")
		writeError(w, r, a.log, &httpError{status: http.StatusTooManyRequests, code: "rate_limited",
			message: "too many ballot lookups from this address; wait a minute"})
		return
	}
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
	if p := b.Proof; p != nil {
		out.Checkpoint = &b.Checkpoint
		proof := transparency.NewInclusionProof(p.LeafIndex, p.Leaf, p.TreeSize, p.Root, p.Hashes)
		out.Proof = &proof
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, r, a.log, out)
}
