package read

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/internal/db"
)

// Check is one check of the projection's self-check.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

// SelfCheck checks, in one snapshot, that the projection agrees with
// itself: tallies with ballots, regions with tallies and the register,
// rejection counts with rejections, that turnout never exceeds 100 %, and
// that every table of its schema is in the registry (projections.Tables)
// and the registry's every table in the schema, so that no table escapes
// the comparisons a replay and the recount (package audit) make. It
// needs no log: the recount is the independent check.
func (r *Results) SelfCheck(ctx context.Context) ([]Check, error) {
	var out []Check
	err := r.snapshot(ctx, func(q *db.Queries) error {
		rows, err := q.CheckProjection(ctx)
		if err != nil {
			return err
		}
		for _, row := range rows {
			out = append(out, Check{row.CheckName, row.Ok, row.Detail})
		}
		names, err := q.ProjectionTables(ctx)
		if err != nil {
			return err
		}
		out = append(out, registryCheck(names))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("self-check of the projection: %w", err)
	}
	return out, nil
}

// registryCheck compares the schema's tables (names) with the registry.
func registryCheck(names []string) Check {
	known := map[string]bool{}
	for _, t := range projections.Tables() {
		known[t.Name] = true
	}
	var unknown, missing []string
	for _, n := range names {
		if !known[n] {
			unknown = append(unknown, n)
		}
		delete(known, n)
	}
	for n := range known {
		missing = append(missing, n)
	}
	slices.Sort(missing)
	var detail []string
	if len(unknown) > 0 {
		detail = append(detail, "not in the registry: "+strings.Join(unknown, ", "))
	}
	if len(missing) > 0 {
		detail = append(detail, "in the registry, not in the schema: "+strings.Join(missing, ", "))
	}
	return Check{Name: "every table of the projection is in the table registry (projections.Tables), which replay and the recount compare by",
		OK: len(detail) == 0, Detail: strings.Join(detail, "; ")}
}
