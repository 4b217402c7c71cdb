package write

import (
	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections/internal/db"
)

// TallyGroups groups decided votes into every tally as a batch's
// AddTallies writes them, for a replay that decides the whole log and
// writes its tallies once. It is not safe for concurrent use.
type TallyGroups struct{ g *tallyGroups }

// NewTallyGroups returns empty groups.
func NewTallyGroups() *TallyGroups { return &TallyGroups{g: newTallyGroups()} }

// Add counts entry e's verdict v (counted and rejected votes only).
func (t *TallyGroups) Add(e domain.VoteEntry, v domain.Verdict) { t.g.add(e, v) }

// Empty reports whether nothing was counted.
func (t *TallyGroups) Empty() bool { return t.g.empty() }

// Params returns AddTallies' parameters for stripe.
func (t *TallyGroups) Params(stripe int16) db.AddTalliesParams { return t.g.params(stripe) }
