package systemtest

// truth is the ground truth of a test election: what its published
// messages must add up to, worked out here from the messages themselves,
// independently of the projector. buildElection's hand-made election and
// the crash tests' generated ones keep theirs in it.
type truth struct {
	// counted is the votes that count; perCandidate and perRegion split
	// them where the test knows the split (buildElection).
	counted      int64
	perCandidate map[string]int64
	perRegion    map[string]map[string]int64
	// registered is the voters per region.
	registered map[string]int64
	// rejected is the votes rejected, per reason.
	rejected map[string]int64
	// deadLettered is the malformed messages, per topic.
	deadLettered map[string]int
}

func newTruth() truth {
	return truth{
		perCandidate: map[string]int64{}, perRegion: map[string]map[string]int64{}, registered: map[string]int64{},
		rejected:     map[string]int64{"duplicate_voter": 0, "unknown_voter": 0, "unknown_candidate": 0},
		deadLettered: map[string]int{},
	}
}

// dead is the messages dead-lettered on every topic.
func (t truth) dead() int64 {
	var n int64
	for _, d := range t.deadLettered {
		n += int64(d)
	}
	return n
}
