// Package rebuild is replay: the Rebuilder rebuilds the projection from
// offset 0 of the log in a fresh schema (the votes through a bulk path,
// the registrations and the catch-up through the write model's Store, the
// tree from the recorded epochs), then compares it with the live one or
// swaps it in, in one transaction.
package rebuild
