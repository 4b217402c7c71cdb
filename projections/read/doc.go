// Package read is the projection's read model: Results reads totals,
// regions, contests, the dashboard, the status, the published figures,
// the stations' canvass, ballot receipts with their inclusion proofs and
// the operator log, each in one snapshot under the swap lock. SelfCheck is
// the projection's check of itself (votewatch verify).
package read
