package main

import (
	"context"
	"time"

	"github.com/votewatch/votewatch/internal/app"
)

// HealthcheckCmd probes a votewatch endpoint, for container healthchecks
// (the image has no shell and no curl).
type HealthcheckCmd struct {
	URL     string        `arg:"" help:"URL that must answer 200." default:"http://127.0.0.1:8080/readyz"`
	Timeout time.Duration `help:"How long to wait for the answer." default:"3s"`
}

// Run exits non-zero unless the URL answers 200 in time.
func (c *HealthcheckCmd) Run(ctx context.Context, env *Env) error {
	return app.Healthcheck(ctx, c.URL, c.Timeout, env.Stdout)
}
