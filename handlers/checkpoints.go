package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections"
)

// errNoCheckpoint answers the checkpoint routes before the first one.
var errNoCheckpoint = &httpError{status: http.StatusNotFound, code: "not_found", message: "no checkpoint has been published yet"}

// writeText answers with text exactly as given: a signed note must reach
// the client byte for byte, or its signature no longer verifies.
func writeText(w http.ResponseWriter, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write([]byte(body))
}

func (a *API) latestCheckpoint(w http.ResponseWriter, r *http.Request) (projections.SignedCheckpoint, bool) {
	if !allowQuery(w, r, a.log) {
		return projections.SignedCheckpoint{}, false
	}
	c, err := a.results.LatestCheckpoint(r.Context())
	if errors.Is(err, projections.ErrNotFound) {
		err = errNoCheckpoint
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return c, false
	}
	return c, true
}

// checkpoint serves the latest signed checkpoint, the note as signed.
func (a *API) checkpoint(w http.ResponseWriter, r *http.Request) {
	if c, ok := a.latestCheckpoint(w, r); ok {
		writeText(w, c.Note)
	}
}

// checkpointKey serves the verifier key of the latest checkpoint, in the
// note package's text format. An observer should pin it out of band: a
// key served beside the notes it checks proves only that the two agree.
func (a *API) checkpointKey(w http.ResponseWriter, r *http.Request) {
	if c, ok := a.latestCheckpoint(w, r); ok {
		writeText(w, c.VerifierKey+"\n")
	}
}

type checkpointJSON struct {
	ID        int64     `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	Note      string    `json:"note"`
}

type checkpointsJSON struct {
	Checkpoints []checkpointJSON `json:"checkpoints"`
}

// checkpoints serves the checkpoints after ?since= (RFC 3339; all when
// absent), oldest first, at most projections.MaxCheckpoints: page on with
// the last one's created_at.
func (a *API) checkpoints(w http.ResponseWriter, r *http.Request) {
	if !allowQuery(w, r, a.log, "since") {
		return
	}
	var since time.Time
	if s := r.URL.Query().Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			writeError(w, r, a.log, &domain.ValidationError{Field: "since", Problem: "want an RFC 3339 time, such as 2026-11-03T08:00:00Z"})
			return
		}
		since = t
	}
	cs, err := a.results.CheckpointsSince(r.Context(), since)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	out := checkpointsJSON{Checkpoints: make([]checkpointJSON, len(cs))}
	for i, c := range cs {
		out.Checkpoints[i] = checkpointJSON{ID: c.ID, CreatedAt: c.CreatedAt, Note: c.Note}
	}
	writeJSON(w, r, a.log, out)
}
