package handlers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/votewatch/votewatch/domain"
)

// VoteIntake stores votes durably before they are acknowledged. Accept
// returns how many were new (the rest were retries of accepted votes), or
// domain.ErrStationClosed once the station closed. CloseStation closes a
// station for good, after every vote accepted from it, and reports
// whether this call closed it (false: closed before).
type VoteIntake interface {
	Accept(ctx context.Context, station string, votes []domain.VoteCast) (int, error)
	CloseStation(ctx context.Context, station string, report domain.StationReported) (bool, error)
}

// Station is a polling-station terminal allowed to submit votes.
type Station struct {
	Name  string
	Token string
	// Region is the region the station serves: a vote it submits for a
	// voter of another region is rejected (wrong_station), so a leaked
	// token cannot pre-empt voters beyond its own region.
	Region domain.Region
	// Revoked stations are known but refused (403): a lost or compromised
	// terminal is revoked rather than forgotten, so its attempts are told
	// apart from random guesses and logged.
	Revoked bool
}

// MinTokenLength is the shortest station token accepted: tokens must be
// unguessable, not passwords.
const MinTokenLength = 16

// IntakeConfig configures the intake endpoints.
type IntakeConfig struct {
	Stations []Station
	// Report publishes a station's registration at start (RegisterStations);
	// nil leaves that out. A close goes through VoteIntake.CloseStation.
	Report func(ctx context.Context, r domain.StationReported) error
	// Rate is the sustained votes per second allowed per station, Burst how
	// many at once (a batch counts each vote; default: MaxBatch).
	Rate  float64
	Burst int
	// ObserveRequest, when set, is told the station (empty when no known
	// token was presented) and the status of every request, for metrics:
	// the event on the log names no station, so refusals per station are
	// only seen here.
	ObserveRequest func(station string, status int)
	// ObserveVotes, when set, is told how many votes of a station's request
	// were stored as new and how many were retries.
	ObserveVotes func(station string, accepted, duplicates int)
	// RequireClientCert refuses (403) a station whose request did not
	// come over TLS with a verified client certificate issued to it: the
	// certificate's common name must be the station's name, so a leaked
	// token alone, or another station's certificate, is not enough.
	RequireClientCert bool
	// TrustedProxies are the proxies (a load balancer, a CDN) whose
	// X-Forwarded-For names the client for the per-address limit on
	// failed authentication; without them every client behind a proxy
	// would share its budget. Nobody else's header is believed.
	TrustedProxies []netip.Prefix
}

const (
	// MaxBatch is the most votes one POST /api/v1/votes:batch may carry.
	MaxBatch = 1000
	// One vote is a few hundred bytes; the limits leave room for whitespace.
	maxVoteBody  = 8 << 10
	maxBatchBody = 1 << 20
)

// Intake is the write side's HTTP API for polling stations.
type Intake struct {
	intake   VoteIntake
	log      *slog.Logger
	stations []station
	limit    rate.Limit
	burst    int
	observe  func(station string, status int)
	votes    func(station string, accepted, duplicates int)

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
	// failures rate-limits failed authentication per client address.
	failures *addressLimiter
	clients  clientKeys
	report   func(context.Context, domain.StationReported) error
	// requireCert: see IntakeConfig.RequireClientCert.
	requireCert bool
}

type station struct {
	name    string
	digest  [sha256.Size]byte
	revoked bool
	// stamp is what the intake records in each vote the station submits.
	stamp domain.Station
}

// NewIntake returns the intake endpoints; each station needs a token of at
// least MinTokenLength characters, unique across stations.
func NewIntake(intake VoteIntake, cfg IntakeConfig, log *slog.Logger) (*Intake, error) {
	if intake == nil || log == nil {
		return nil, errors.New("new intake: nil intake or logger")
	}
	if len(cfg.Stations) == 0 {
		return nil, errors.New("new intake: no station tokens configured")
	}
	if cfg.Rate <= 0 {
		return nil, fmt.Errorf("new intake: rate %v must be positive", cfg.Rate)
	}
	if cfg.Burst <= 0 {
		cfg.Burst = MaxBatch
	}
	in := &Intake{intake: intake, log: log, limit: rate.Limit(cfg.Rate), burst: cfg.Burst, limiters: map[string]*rate.Limiter{},
		failures: newAddressLimiter(authFailureRate, authFailureBurst), clients: clientKeys{trusted: cfg.TrustedProxies}, report: cfg.Report,
		observe: cfg.ObserveRequest, votes: cfg.ObserveVotes, requireCert: cfg.RequireClientCert}
	if in.observe == nil {
		in.observe = func(string, int) {}
	}
	if in.votes == nil {
		in.votes = func(string, int, int) {}
	}
	seen := map[[sha256.Size]byte]string{}
	for _, s := range cfg.Stations {
		if s.Name == "" {
			return nil, errors.New("new intake: a station without a name")
		}
		if len(s.Token) < MinTokenLength {
			return nil, fmt.Errorf("new intake: station %s: token shorter than %d characters", s.Name, MinTokenLength)
		}
		if placeholder(s.Token) {
			return nil, fmt.Errorf("new intake: station %s: the token is a placeholder; make a random one (openssl rand -base64 32)", s.Name)
		}
		stamp, err := domain.NewStation(s.Name, s.Region)
		if err != nil {
			return nil, fmt.Errorf("new intake: station %s: %w", s.Name, err)
		}
		d := sha256.Sum256([]byte(s.Token))
		if other, ok := seen[d]; ok {
			return nil, fmt.Errorf("new intake: stations %s and %s share a token", other, s.Name)
		}
		seen[d] = s.Name
		in.stations = append(in.stations, station{name: s.Name, digest: d, revoked: s.Revoked, stamp: stamp})
	}
	return in, nil
}

// Register adds POST /api/v1/votes and POST /api/v1/votes:batch to mux.
func (in *Intake) Register(mux Mux) {
	mux.HandleFunc("/api/v1/votes", in.onlyPOST(in.vote))
	mux.HandleFunc("/api/v1/votes:batch", in.onlyPOST(in.batch))
	mux.HandleFunc("/api/v1/stations/close", in.onlyPOST(in.closeStation))
}

// closeStation closes the authenticated station for good, with the ballots
// it cast if it says: its later votes are refused (409 station_closed) and,
// should one reach the log, rejected (after_station_close); its region's
// reporting progress moves, and the canvass compares its count. Closing
// twice changes nothing (the first close counts).
func (in *Intake) closeStation(w http.ResponseWriter, r *http.Request, name string) {
	body, err := readBody(w, r, maxVoteBody)
	if err != nil {
		writeError(w, r, in.log, err)
		return
	}
	// A close spends from the station's vote budget, before its body is
	// read: a terminal looping on it cannot flood the stations topic.
	if !in.charge(w, r, name, 1) {
		return
	}
	// Contract v1.3: the body may say how many ballots the station cast,
	// for the canvass; {} or nothing closes it without.
	var req struct {
		Ballots *int64 `json:"ballots"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := strictJSON(body, &req); err != nil {
			writeError(w, r, in.log, err)
			return
		}
	}
	for _, s := range in.stations {
		if s.name != name {
			continue
		}
		rep, err := domain.NewStationReport(s.stamp, true, time.Now())
		if err == nil && req.Ballots != nil {
			if rep, err = rep.WithBallots(*req.Ballots); err != nil {
				writeError(w, r, in.log, err) // a ValidationError: 400 naming ballots
				return
			}
		}
		var first bool
		if err == nil {
			first, err = in.intake.CloseStation(r.Context(), name, rep)
		}
		if err != nil {
			in.log.Error("station close not published", "station", name, "err", err)
			writeError(w, r, in.log, &httpError{status: http.StatusServiceUnavailable, code: "unavailable", message: "the close could not be recorded; retry"})
			return
		}
		if !first {
			in.log.Info("station closed again: the first close stands", "station", name)
			writeJSONStatus(w, r, in.log, http.StatusAccepted, map[string]string{"station": name, "status": "closed"})
			return
		}
		if n, ok := rep.Ballots(); ok {
			in.log.Info("station closed", "station", name, "ballots", n)
		} else {
			in.log.Info("station closed", "station", name)
		}
		writeJSONStatus(w, r, in.log, http.StatusAccepted, map[string]string{"station": name, "status": "closed"})
		return
	}
}

// RegisterStations publishes every configured, unrevoked station's
// registration, so reporting progress knows how many stations a region
// has. Publishing again changes nothing (a station's first report counts).
func (in *Intake) RegisterStations(ctx context.Context) error {
	if in.report == nil {
		return nil
	}
	for _, s := range in.stations {
		if s.revoked {
			continue
		}
		rep, err := domain.NewStationReport(s.stamp, false, time.Now())
		if err != nil {
			return err
		}
		if err := in.report(ctx, rep); err != nil {
			return fmt.Errorf("register station %s: %w", s.name, err)
		}
	}
	return nil
}

func (in *Intake) onlyPOST(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		w = rec
		var name string
		defer func() { in.observe(name, rec.status) }()
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeError(w, r, in.log, &httpError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", message: r.Method + " is not allowed here; use POST"})
			return
		}
		var err error
		name, err = in.authenticate(r)
		if err != nil {
			// Only guesses spend an address's budget, and only guesses are
			// refused when it is spent: a station with a good token is
			// never held up by others behind the same address.
			he := (*httpError)(nil)
			if errors.As(err, &he) && he.status == http.StatusUnauthorized {
				addr := in.clients.key(r)
				allowed, tripped := in.failures.spend(addr)
				if !allowed {
					writeError(w, r, in.log, &httpError{status: http.StatusTooManyRequests, code: "rate_limited", field: "Authorization",
						message: "too many failed authentications from this address; wait a minute"})
					return
				}
				if tripped {
					in.log.Warn("repeated failed authentication: refusing guesses from the address for a while", "remote", addr)
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="votewatch intake"`)
			}
			writeError(w, r, in.log, err)
			return
		}
		if in.requireCert && !certifiedAs(r, name) {
			in.log.Warn("station refused: no client certificate issued to it", "station", name, "remote", r.RemoteAddr)
			writeError(w, r, in.log, &httpError{status: http.StatusForbidden, code: "client_certificate_required",
				message: "station " + name + " must present the client certificate issued to it"})
			return
		}
		ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || ct != "application/json" {
			writeError(w, r, in.log, &httpError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
				message: "Content-Type must be application/json", field: "Content-Type"})
			return
		}
		h(w, r, name)
	}
}

// certifiedAs reports whether r came over TLS with a client certificate
// the server verified (its ClientCAs) whose common name is station.
func certifiedAs(r *http.Request, station string) bool {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return false
	}
	return r.TLS.VerifiedChains[0][0].Subject.CommonName == station
}

// authenticate finds the station whose token the request bears (named
// with the error when it is revoked). Every configured token is compared,
// in constant time, whatever matches.
func (in *Intake) authenticate(r *http.Request) (string, error) {
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", &httpError{status: http.StatusUnauthorized, code: "unauthorized", field: "Authorization",
			message: "a station token is required: Authorization: Bearer <token>"}
	}
	presented := sha256.Sum256([]byte(strings.TrimSpace(h[len(prefix):])))
	found := -1
	for i := range in.stations {
		if subtle.ConstantTimeCompare(presented[:], in.stations[i].digest[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", &httpError{status: http.StatusUnauthorized, code: "unauthorized", field: "Authorization", message: "unknown station token"}
	}
	s := in.stations[found]
	if s.revoked {
		in.log.Warn("revoked station tried to submit votes", "station", s.name, "remote", r.RemoteAddr)
		return s.name, &httpError{status: http.StatusForbidden, code: "forbidden", field: "Authorization", message: "station " + s.name + " is revoked"}
	}
	return s.name, nil
}

// allow takes n votes from the station's budget, or says when to retry.
func (in *Intake) allow(name string, n int) (time.Duration, bool) {
	in.mu.Lock()
	lim, ok := in.limiters[name]
	if !ok {
		lim = rate.NewLimiter(in.limit, in.burst)
		in.limiters[name] = lim
	}
	in.mu.Unlock()
	res := lim.ReserveN(time.Now(), n)
	if !res.OK() {
		return 0, false
	}
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return d, false
	}
	return 0, true
}

type voteResponse struct {
	VoteID string `json:"vote_id"`
	// Status is "accepted" the first time, "duplicate" for a retry.
	Status string `json:"status"`
}

type batchResponse struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

func (in *Intake) vote(w http.ResponseWriter, r *http.Request, name string) {
	body, err := readBody(w, r, maxVoteBody)
	if err != nil {
		writeError(w, r, in.log, err)
		return
	}
	// The vote is paid for before it is parsed, so a refused one costs it
	// too.
	if !in.charge(w, r, name, 1) {
		return
	}
	ev, err := decodeVote(body, "")
	if err != nil {
		writeError(w, r, in.log, err)
		return
	}
	n, ok := in.accept(w, r, name, []domain.VoteCast{ev}, 1)
	if !ok {
		return
	}
	resp := voteResponse{VoteID: ev.Vote.ID(), Status: "accepted"}
	if n == 0 {
		resp.Status = "duplicate"
	}
	writeJSONStatus(w, r, in.log, http.StatusAccepted, resp)
}

// sizeCost is what a body of n bytes costs before it is parsed, in votes:
// a full batch body (maxBatchBody) costs a full batch (MaxBatch), so a
// station's rate bounds the bytes it makes the intake parse, whether or
// not they hold valid votes. It never exceeds the burst, or a large body
// could never be sent at all.
func (in *Intake) sizeCost(n int) int {
	cost := int((int64(n)*MaxBatch + maxBatchBody - 1) / maxBatchBody)
	return min(max(cost, 1), in.burst)
}

func (in *Intake) batch(w http.ResponseWriter, r *http.Request, name string) {
	body, err := readBody(w, r, maxBatchBody)
	if err != nil {
		writeError(w, r, in.log, err)
		return
	}
	// Charged before parsing: a station that sends megabytes of votes
	// that fail validation pays for them as for valid ones.
	prepaid := in.sizeCost(len(body))
	if !in.charge(w, r, name, prepaid) {
		return
	}
	var req struct {
		Votes []json.RawMessage `json:"votes"`
	}
	if err := strictJSON(body, &req); err != nil {
		writeError(w, r, in.log, err)
		return
	}
	switch {
	case len(req.Votes) == 0:
		writeError(w, r, in.log, &domain.ValidationError{Field: "votes", Problem: "must hold at least one vote"})
		return
	case len(req.Votes) > MaxBatch:
		writeError(w, r, in.log, &domain.ValidationError{Field: "votes", Problem: fmt.Sprintf("holds %d votes; at most %d per batch", len(req.Votes), MaxBatch)})
		return
	}
	votes := make([]domain.VoteCast, len(req.Votes))
	for i, raw := range req.Votes {
		if votes[i], err = decodeVote(raw, fmt.Sprintf("votes[%d].", i)); err != nil {
			writeError(w, r, in.log, err)
			return
		}
	}
	n, ok := in.accept(w, r, name, votes, prepaid)
	if !ok {
		return
	}
	writeJSONStatus(w, r, in.log, http.StatusAccepted, batchResponse{Accepted: n, Duplicates: len(votes) - n})
}

// charge takes n votes from the station's budget; when it cannot, it
// answers 429 (with Retry-After when waiting would help) and reports
// false.
func (in *Intake) charge(w http.ResponseWriter, r *http.Request, name string, n int) bool {
	wait, ok := in.allow(name, n)
	if ok {
		return true
	}
	msg := fmt.Sprintf("station %s is over its rate of %.0f votes/s", name, float64(in.limit))
	if wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	} else {
		msg = fmt.Sprintf("%d votes at once exceed station %s's burst of %d", n, name, in.burst)
	}
	writeError(w, r, in.log, &httpError{status: http.StatusTooManyRequests, code: "rate_limited", message: msg})
	return false
}

// accept charges the station for the votes beyond the prepaid ones and
// stores them; it answers the request itself when it fails.
func (in *Intake) accept(w http.ResponseWriter, r *http.Request, name string, votes []domain.VoteCast, prepaid int) (int, bool) {
	if extra := len(votes) - prepaid; extra > 0 && !in.charge(w, r, name, extra) {
		return 0, false
	}
	for i := range in.stations {
		if in.stations[i].name == name {
			for j := range votes {
				votes[j].Vote = votes[j].Vote.WithStation(in.stations[i].stamp)
			}
		}
	}
	n, err := in.intake.Accept(r.Context(), name, votes)
	if err != nil {
		if !errors.Is(err, domain.ErrVoteIDReused) && !errors.Is(err, domain.ErrStationClosed) {
			// Nothing was stored: the station must retry, and may safely.
			in.log.Error("intake failed", "station", name, "votes", len(votes), "err", err)
			err = &httpError{status: http.StatusServiceUnavailable, code: "unavailable", message: "the vote could not be stored; retry"}
		}
		writeError(w, r, in.log, err)
		return 0, false
	}
	in.log.Debug("votes accepted", "station", name, "new", n, "retried", len(votes)-n)
	in.votes(name, n, len(votes)-n)
	return n, true
}

// readBody reads at most limit bytes, refusing larger bodies with 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, &httpError{status: http.StatusRequestEntityTooLarge, code: "too_large", field: "body",
				message: fmt.Sprintf("the body is larger than %d bytes", limit)}
		}
		return nil, &httpError{status: http.StatusBadRequest, code: "invalid", field: "body", message: "could not read the body: " + err.Error()}
	}
	return body, nil
}

// voteFields is the contract's vote, to refuse fields it does not have:
// a terminal sending "candidate" instead of "candidate_id" must hear so,
// not have its vote fail later as incomplete.
type voteFields struct {
	VoteID      json.RawMessage `json:"vote_id"`
	VoterID     json.RawMessage `json:"voter_id"`
	CandidateID json.RawMessage `json:"candidate_id"`
	CastAt      json.RawMessage `json:"cast_at"`
	// Contract v1.2: the contest, default when absent.
	ContestID json.RawMessage `json:"contest_id"`
	// Contract v2: the choice sealed by the station itself, in place of
	// candidate_id (GET /api/v1/tally-key gives the key).
	SealedChoice json.RawMessage `json:"sealed_choice"`
}

// decodeVote validates one vote against the contract; errors name the
// field, prefixed with where the vote sits in the request.
func decodeVote(raw []byte, prefix string) (domain.VoteCast, error) {
	err := strictJSON(raw, &voteFields{})
	var ev domain.VoteCast
	if err == nil {
		ev, err = domain.DecodeVoteCast(raw)
	}
	var ve *domain.ValidationError
	if err == nil || !errors.As(err, &ve) {
		return ev, err
	}
	field := prefix + ve.Field
	if (ve.Field == "body" || ve.Field == "payload") && prefix != "" {
		field = strings.TrimSuffix(prefix, ".") // the item itself is at fault
	} else if ve.Field == "payload" {
		field = "body"
	}
	return domain.VoteCast{}, &domain.ValidationError{Field: field, Problem: ve.Problem}
}

// strictJSON decodes one JSON object with no unknown fields.
func strictJSON(raw []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return &domain.ValidationError{Field: typeErr.Field, Problem: "must be a JSON " + typeErr.Type.Kind().String()}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &domain.ValidationError{Field: field, Problem: "is not a field of this request"}
		case errors.Is(err, io.EOF):
			return &domain.ValidationError{Field: "body", Problem: "is empty"}
		default:
			return &domain.ValidationError{Field: "body", Problem: "is not a JSON object: " + err.Error()}
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &domain.ValidationError{Field: "body", Problem: "has data after the JSON object"}
	}
	return nil
}

// placeholder reports tokens that are obviously not secrets: the example
// file's, or text that says it must be replaced.
func placeholder(token string) bool {
	t := strings.ToLower(token)
	for _, p := range []string{"change-me", "changeme", "change_me", "placeholder", "example", "replace-me", "your-token", "xxxxxxxx", "00000000"} {
		if strings.Contains(t, p) {
			return true
		}
	}
	return strings.Count(t, t[:1]) == len(t) // one character repeated
}

// statusWriter remembers the status answered, for ObserveRequest.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
