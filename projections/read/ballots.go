package read

// BallotStatus is what became of one vote, as its receipt holder may
// learn it: never the candidate, the voter, the region, nor when (a time
// beside the public per-minute tallies could betray the choice).
type BallotStatus struct {
	// Status is counted, rejected or pending (held for a registration).
	Status string
	// Reason is a rejection's reason.
	Reason string
	// Checkpoint is the latest signed checkpoint (the note as signed) and
	// Proof the inclusion proof of the vote's leaf in its tree; both are
	// empty until the leaf is inside the latest checkpoint.
	Checkpoint string
	Proof      *InclusionProof
}
