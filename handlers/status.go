package handlers

import (
	"net/http"
	"time"

	"github.com/votewatch/votewatch/projections/read"
)

type partitionJSON struct {
	Topic       string     `json:"topic"`
	Partition   int32      `json:"partition"`
	Applied     int64      `json:"applied"`
	End         *int64     `json:"end"`
	Lag         *int64     `json:"lag"`
	LastEventAt *time.Time `json:"last_event_at"`
}

// statusFields are what the operator's status and the public one share.
type statusFields struct {
	BuiltAt          time.Time        `json:"built_at"`
	BuiltBy          string           `json:"built_by"`
	VotesCast        int64            `json:"votes_cast"`
	Rejected         map[string]int64 `json:"rejected"`
	DeadLettered     int64            `json:"dead_lettered"`
	EventsApplied    map[string]int64 `json:"events_applied"`
	Lag              map[string]int64 `json:"lag"`
	NewestEventAt    *time.Time       `json:"newest_event_at"`
	StalenessSeconds *float64         `json:"staleness_seconds"`
	LogReachable     bool             `json:"log_reachable"`
	Registration     registrationJSON `json:"registration"`
}

// statusBody is the operator's status: every partition's offsets too.
type statusBody struct {
	statusFields
	Partitions []partitionJSON `json:"partitions"`
}

type registrationJSON struct {
	Closed               bool  `json:"closed"`
	ClosedPartitions     int64 `json:"closed_partitions"`
	HeldVotes            int64 `json:"held_votes"`
	RefusedRegistrations int64 `json:"refused_registrations"`
}

// StatusJSON is the JSON form of the projection's status for its
// operators, as `votewatch status --json` prints it: the newest event's
// exact time and every partition's offsets. The public API serves
// PublicStatusJSON instead.
func StatusJSON(st read.Status) any {
	out := statusBody{statusFields: fields(st), Partitions: make([]partitionJSON, 0, len(st.Partitions))}
	if !st.NewestEvent.IsZero() {
		s := st.Staleness.Seconds()
		out.NewestEventAt, out.StalenessSeconds = &st.NewestEvent, &s
	}
	for _, p := range st.Partitions {
		pj := partitionJSON{Topic: p.Topic, Partition: p.Partition, Applied: p.Applied}
		if p.End >= 0 {
			pj.End, pj.Lag = &p.End, &p.Lag
		}
		if !p.LastEventAt.IsZero() {
			// To the minute even here: the status command may run as the
			// reader's login, and a partition's exact vote times beside
			// the public tallies could time one voter's vote.
			at := p.LastEventAt.UTC().Truncate(time.Minute)
			pj.LastEventAt = &at
		}
		out.Partitions = append(out.Partitions, pj)
	}
	return out
}

// PublicStatusJSON is the status GET /api/v1/status serves: the newest
// event's time only to the minute (and the staleness counted from that
// minute), and no partition's offsets. A voter's partition follows from
// the voter_id (murmur2), so a partition's offset moving, or an exact
// newest cast_at, beside the public tallies could time one voter's vote;
// operators read them on the metrics listener (consumer_lag,
// projection_applied_offset) or with `votewatch status`.
func PublicStatusJSON(st read.Status) any {
	out := fields(st)
	if !st.NewestEvent.IsZero() {
		at := st.NewestEvent.UTC().Truncate(time.Minute)
		s := st.Staleness.Seconds() + st.NewestEvent.Sub(at).Seconds()
		out.NewestEventAt, out.StalenessSeconds = &at, &s
	}
	return out
}

func fields(st read.Status) statusFields {
	out := statusFields{
		BuiltAt: st.BuiltAt, BuiltBy: st.BuiltBy, VotesCast: st.VotesCast, Rejected: st.Rejected,
		DeadLettered: st.DeadLettered, EventsApplied: st.EventsApplied, Lag: st.Lag, LogReachable: st.LogReachable,
		Registration: registrationJSON{
			Closed: st.Registration.Closed, ClosedPartitions: st.Registration.ClosedPartitions,
			HeldVotes: st.Registration.HeldVotes, RefusedRegistrations: st.Registration.Refused,
		},
	}
	if !st.LogReachable {
		out.Lag = nil
	}
	return out
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	if !allowQuery(w, r, a.log) {
		return
	}
	st, err := a.results.Status(r.Context(), a.logEnds)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, r, a.log, PublicStatusJSON(st))
}
