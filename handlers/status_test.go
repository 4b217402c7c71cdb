package handlers_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/projections/read"
)

// The public status cannot time one vote: the newest event's time is to
// the minute, the staleness counts from that minute, and no partition's
// offsets or times are in it (a voter's partition follows from the
// voter_id). The operator's status keeps the partitions.
func TestThePublicStatusCannotTimeAVote(t *testing.T) {
	newest := time.Date(2026, 11, 3, 12, 3, 27, 500_000_000, time.UTC)
	st := read.Status{
		NewestEvent: newest, Staleness: 10 * time.Second, LogReachable: true,
		EventsApplied: map[string]int64{"votes": 42}, Lag: map[string]int64{"votes": 0},
		Partitions: []read.PartitionStatus{{Topic: "votes", Partition: 3, Applied: 17, End: 17, LastEventAt: newest}},
	}
	raw, err := json.Marshal(handlers.PublicStatusJSON(st))
	if err != nil {
		t.Fatal(err)
	}
	var public map[string]any
	if err := json.Unmarshal(raw, &public); err != nil {
		t.Fatal(err)
	}
	if _, ok := public["partitions"]; ok || strings.Contains(string(raw), `"partition"`) {
		t.Errorf("the public status has per-partition figures: %s", raw)
	}
	if got, want := public["newest_event_at"], "2026-11-03T12:03:00Z"; got != want {
		t.Errorf("newest_event_at = %v, want %v (to the minute)", got, want)
	}
	if got, want := public["staleness_seconds"], 37.5; got != want {
		t.Errorf("staleness_seconds = %v, want %v (from the minute)", got, want)
	}

	raw, err = json.Marshal(handlers.StatusJSON(st))
	if err != nil {
		t.Fatal(err)
	}
	var operator struct {
		Partitions []struct {
			Applied     int64  `json:"applied"`
			LastEventAt string `json:"last_event_at"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(raw, &operator); err != nil {
		t.Fatal(err)
	}
	if len(operator.Partitions) != 1 || operator.Partitions[0].Applied != 17 || operator.Partitions[0].LastEventAt != "2026-11-03T12:03:00Z" {
		t.Errorf("the operator's status lost its partitions: %s", raw)
	}
}
