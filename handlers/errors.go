package handlers

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections"
)

// httpError is an error that already knows its HTTP form. Its message is
// written for the client; cause, which may hold internal detail (addresses,
// SQL, file paths), is logged and never sent.
type httpError struct {
	status  int
	code    string
	message string
	field   string // the request part at fault, when one is
	cause   error
}

func (e *httpError) Error() string {
	if e.cause != nil {
		return e.message + ": " + e.cause.Error()
	}
	return e.message
}

func (e *httpError) Unwrap() error { return e.cause }

// errorStatuses is the one place where errors become HTTP statuses. An
// error whose text is written for the client (it names the client's own
// input) is sent as it is; otherwise message is sent in its place.
var errorStatuses = []struct {
	target  error
	status  int
	code    string
	message string // empty: the error's text is for the client
}{
	{domain.ErrInvalid, http.StatusBadRequest, "invalid", ""},
	{projections.ErrNotFound, http.StatusNotFound, "not_found", "not found"},
	{domain.ErrVoteIDReused, http.StatusConflict, "conflict", ""},
	{domain.ErrStationClosed, http.StatusConflict, "station_closed", ""},
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

// writeError answers with {"error":{"code","message","field"}}. Unexpected
// errors are logged and answered 500 without their details; no 5xx body
// ever carries an error's text.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var body errorBody
	status := http.StatusInternalServerError
	body.Error.Code, body.Error.Message = "internal", "internal error"

	var he *httpError
	var ve *domain.ValidationError
	switch {
	case errors.As(err, &he):
		status, body.Error.Code, body.Error.Message, body.Error.Field = he.status, he.code, he.message, he.field
	default:
		for _, m := range errorStatuses {
			if errors.Is(err, m.target) {
				status, body.Error.Code, body.Error.Message = m.status, m.code, m.message
				if m.message == "" {
					body.Error.Message = err.Error()
				}
				break
			}
		}
	}
	if errors.As(err, &ve) {
		body.Error.Field, body.Error.Message = ve.Field, ve.Error()
	}
	switch {
	case status == http.StatusServiceUnavailable:
		if he != nil && he.cause != nil {
			log.Warn("request refused: unavailable", "method", r.Method, "path", r.URL.Path, "err", he.cause)
		}
	case status >= 500:
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
