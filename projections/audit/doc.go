// Package audit is the independent check of the projection against the
// log (votewatch audit): Recount decides every vote again with the rule's
// specification (domain.Count), in Go and without the projection's SQL,
// and compares every table; AuditTrees rebuilds the transparency trees
// from the same specification and checks them and a saved checkpoint.
// "Audit" means this alone; the operator actions are the operator log.
package audit
