package handlers

import (
	"net/http"
	"time"

	"github.com/votewatch/votewatch/projections"
)

type partitionJSON struct {
	Topic       string     `json:"topic"`
	Partition   int32      `json:"partition"`
	Applied     int64      `json:"applied"`
	End         *int64     `json:"end"`
	Lag         *int64     `json:"lag"`
	LastEventAt *time.Time `json:"last_event_at"`
}

type statusBody struct {
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
	Partitions       []partitionJSON  `json:"partitions"`
	Registration     registrationJSON `json:"registration"`
}

type registrationJSON struct {
	Closed               bool  `json:"closed"`
	ClosedPartitions     int64 `json:"closed_partitions"`
	HeldVotes            int64 `json:"held_votes"`
	RefusedRegistrations int64 `json:"refused_registrations"`
}

// StatusJSON is the JSON form of the projection's status, as served at
// GET /api/v1/status and printed by `votewatch status --json`.
func StatusJSON(st projections.Status) any {
	out := statusBody{
		BuiltAt: st.BuiltAt, BuiltBy: st.BuiltBy, VotesCast: st.VotesCast, Rejected: st.Rejected,
		DeadLettered: st.DeadLettered, EventsApplied: st.EventsApplied, Lag: st.Lag, LogReachable: st.LogReachable,
		Partitions: make([]partitionJSON, 0, len(st.Partitions)),
		Registration: registrationJSON{
			Closed: st.Registration.Closed, ClosedPartitions: st.Registration.ClosedPartitions,
			HeldVotes: st.Registration.HeldVotes, RefusedRegistrations: st.Registration.Refused,
		},
	}
	if !st.LogReachable {
		out.Lag = nil
	}
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
			// To the minute: a voter's partition follows from the voter_id,
			// and a partition's exact vote times beside the public tallies
			// could tell a watcher when that voter's vote was counted.
			at := p.LastEventAt.UTC().Truncate(time.Minute)
			pj.LastEventAt = &at
		}
		out.Partitions = append(out.Partitions, pj)
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
	writeJSON(w, r, a.log, StatusJSON(st))
}
