// Package write is the projection's write model. The Projector gathers
// events into batches (Batcher, a group commit); the Store applies each
// batch in one transaction with its offsets: for votes it loads the facts
// the rule needs for the batch's keys, decides in Go (domain.Decide) and
// writes the decisions and the tallies, grouped in Go, to a stripe of its
// own. Every apply is idempotent: applying the same events again, in any
// batching, leaves the tables unchanged, so at-least-once delivery yields
// exactly-once effect. The Releaser publishes held figures as the
// disclosure rule allows.
package write
