package projections

import (
	"fmt"
	"strings"
)

// Table is one table of the projection schema and how each check of the
// projection treats it. Tables is the one list of them: a replay's verify
// compares what Compare names, the recount derives from the log what
// Recount names, and the projection's self-check fails when the schema
// holds a table Tables does not know.
type Table struct {
	Name string
	// From is what a comparison reads: the view that sums a striped table's
	// stripes (00019), or "" for the table itself. The live projection
	// spreads a count over stripes, a rebuilt one keeps it in stripe 0.
	From string
	// Compare lists the columns that must agree between the live and a
	// rebuilt projection (rebuild's verify); "" when the table is checked
	// another way (Why says how).
	Compare string
	// Recount is true when audit.Recount derives the table's rows from the
	// log alone and checks the live ones against them.
	Recount bool
	// Why says, for a table not compared, how it is checked instead.
	Why string
}

// Source is what a comparison reads: From, or the table itself.
func (t Table) Source() string {
	if t.From != "" {
		return t.From
	}
	return t.Name
}

// Tables returns every table of the projection schema, in report order (a
// new slice each call). A migration that adds a table adds it here, or the
// self-check (read.Results.SelfCheck) fails.
//
// A rejection's recorded_at is its vote's log time, so it is compared too.
func Tables() []Table {
	return []Table{
		{Name: "contests", Compare: "contest_id, name, kind, regions", Recount: true},
		{Name: "contest_turnout", From: "contest_turnout_summed", Compare: "contest_id, region, votes_cast", Recount: true},
		{Name: "candidates", Compare: "candidate_id, name, party, biography, platform, photo_url, contest_id", Recount: true},
		{Name: "voters", Compare: "voter_id, gender, birth_date, region, city, registered_at"},
		// A ballot names no candidate (00040): whom for is in the tallies.
		{Name: "ballots", Compare: "voter_id, vote_id, region, cast_at, station_id, contest_id", Recount: true},
		{Name: "rejections", Compare: "vote_id, reason, voter_id, cast_at, station_id, contest_id, recorded_at", Recount: true},
		{Name: "candidate_tallies", From: "candidate_tallies_summed", Compare: "candidate_id, votes", Recount: true},
		{Name: "regions", From: "regions_summed", Compare: "region, registered_voters, votes_cast", Recount: true},
		{Name: "region_tallies", From: "region_tallies_summed", Compare: "region, candidate_id, votes", Recount: true},
		{Name: "rejection_tallies", From: "rejection_tallies_summed", Compare: "contest_id, reason, count", Recount: true},
		{Name: "timeline", From: "timeline_summed", Compare: "minute, candidate_id, votes", Recount: true},
		{Name: "demographic_tallies", From: "demographic_tallies_summed", Compare: "dimension, bucket, candidate_id, votes", Recount: true},
		{Name: "dead_letters", Compare: `topic, partition, "offset", reason, payload`, Recount: true},
		{Name: "applied_offsets", From: "applied_offsets_merged", Compare: "topic, partition, next_offset"},
		// A held vote's message is the log's (a replay stores the record's
		// bytes, live the vote marshalled again as the log held it): equal in
		// content, not byte for byte, so what it says is compared column by
		// column, its choice through the tallies once it is decided.
		{Name: "held_votes", Compare: `vote_id, voter_id, cast_at, partition, "offset", station_id, station_region, contest_id, logged_at`, Recount: true},
		{Name: "registration_closures", Compare: `topic, partition, "offset", partitions, closed_at`},
		{Name: "refused_registrations", Compare: `topic, partition, "offset"`, Recount: true},
		{Name: "misrouted_votes", Compare: `partition, "offset"`, Recount: true},
		{Name: "vote_schedules", Compare: `partition, "offset", polls_open, polls_close`},
		// The stations' opening and close markers on the votes partitions
		// (00038), at their positions: the rule's stations register.
		{Name: "station_openings", Compare: `station_id, partition, "offset", region, opened_at`},
		{Name: "station_closures", Compare: `station_id, partition, "offset", closed_at`},
		{Name: "station_tallies", From: "station_tallies_summed", Compare: "station_id, outcome, votes", Recount: true},
		{Name: "stations", Compare: "station_id, region, closed_at", Recount: true},
		{Name: "operator_actions", Compare: `partition, "offset", action, who, host, at, detail, result`},

		// The transparency log: a rebuilt tree is checked by its roots
		// (rebuild's compareTrees, audit.AuditTrees), not row by row.
		{Name: "log_epochs", Why: "the transparency log: compared by tree roots"},
		{Name: "log_hashes", Why: "the transparency log: compared by tree roots"},
		{Name: "log_leaves", Why: "the transparency log: compared by tree roots"},
		{Name: "log_counts", Why: "the transparency log: compared by tree roots"},
		{Name: "log_checkpoints", Why: "signed checkpoints: carried over by a swap, checked by audit.AuditTrees"},
		{Name: "log_cosignatures", Why: "witness cosignatures: carried over by a swap"},
		{Name: "log_key_rotations", Why: "signing key rotations: carried over by a swap"},

		// What was published: figures released once stay released, so a
		// swap carries them over (write.CarryReleased) instead of
		// deriving them again.
		{Name: "release_state", Why: "published figures: carried over by a swap"},
		{Name: "released_cells", Why: "published figures: carried over by a swap"},
		{Name: "released_steps", Why: "published figures: carried over by a swap"},

		{Name: "projection_meta", Why: "when and by what the projection was built: differs by design"},
		{Name: "goose_db_version", Why: "the migrations applied (goose): the same code applies the same ones"},
	}
}

// TableDiff is how a table differs between the live and rebuilt projection.
type TableDiff struct {
	Table       string
	OnlyLive    int64
	OnlyRebuilt int64
	// Examples are a few differing rows, prefixed "live:" or "rebuilt:".
	Examples []string
}

// FormatDiffs renders differences for people.
func FormatDiffs(diffs []TableDiff) string {
	var b strings.Builder
	for _, d := range diffs {
		fmt.Fprintf(&b, "%s: %d rows only in the live projection, %d only in the rebuilt one\n", d.Table, d.OnlyLive, d.OnlyRebuilt)
		for _, e := range d.Examples {
			fmt.Fprintf(&b, "    %s\n", e)
		}
	}
	return b.String()
}
