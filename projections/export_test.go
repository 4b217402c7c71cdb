package projections

// LookUpVotersInReplay makes rb's direct path look every voter up in the
// register, the path taken when the registrations it replayed are not the
// whole register.
func LookUpVotersInReplay(rb *Rebuilder) { rb.lookUpVoters = true }
