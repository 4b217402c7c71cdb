// Package trees stores the transparency log: Tree grows one append-only
// tree of decisions, epoch by epoch, from the votes the projection
// applied, and the Checkpointer signs its head and gathers witnesses'
// cosignatures.
package trees
