package handlers

import (
	"errors"
	"net/http"
	"strings"

	"filippo.io/torchwood"

	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/read"
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

func (a *API) latestCheckpoint(w http.ResponseWriter, r *http.Request) (read.SignedCheckpoint, bool) {
	if !allowQuery(w, r, a.log) {
		return read.SignedCheckpoint{}, false
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

// checkpoint serves the newest checkpoint that reached its witnesses'
// quorum: the C2SP signed note as the log signed it, followed by the
// witnesses' cosignature lines (c2sp.org/tlog-cosignature). It is both
// the tlog-tiles /log/checkpoint and its older alias
// /api/v1/checkpoint.
func (a *API) checkpoint(w http.ResponseWriter, r *http.Request) {
	if c, ok := a.latestCheckpoint(w, r); ok {
		writeText(w, c.Note)
	}
}

// checkpointKey serves the log's verifier key, in the note package's text
// format. An observer should pin it out of band: a key served beside the
// notes it checks proves only that the two agree.
func (a *API) checkpointKey(w http.ResponseWriter, r *http.Request) {
	if c, ok := a.latestCheckpoint(w, r); ok {
		writeText(w, c.VerifierKey+"\n")
	}
}

// checkpointsRetired answers the retired checkpoint archive: the tree is
// one, so the newest cosigned checkpoint and consistency proofs from the
// tiles prove everything the archive did.
func (a *API) checkpointsRetired(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, a.log, &httpError{status: http.StatusGone, code: "gone",
		message: "the checkpoint archive is retired: read /log/checkpoint and the tiles under /log/tile/ (c2sp.org/tlog-tiles)"})
}

// tile serves /log/tile/<L>/<N>[.p/<W>] and /log/tile/entries/<N>[.p/<W>]
// (c2sp.org/tlog-tiles) of the served checkpoint's tree. A full tile
// never changes: it may be cached forever. A partial one is replaced by
// a wider one as the tree grows.
func (a *API) tile(w http.ResponseWriter, r *http.Request) {
	if !allowQuery(w, r, a.log) {
		return
	}
	t, err := torchwood.ParseTilePath(strings.TrimPrefix(r.URL.Path, "/log/"))
	if err != nil {
		writeError(w, r, a.log, &httpError{status: http.StatusNotFound, code: "not_found", message: "not a tile path: " + r.URL.Path})
		return
	}
	data, err := a.results.Tile(r.Context(), t)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Content-Type-Options", "nosniff")
	if t.W == torchwood.TileWidth {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=5")
	}
	_, _ = w.Write(data)
}
