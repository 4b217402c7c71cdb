package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// HealthcheckCmd probes a votewatch endpoint, for container healthchecks
// (the image has no shell and no curl).
type HealthcheckCmd struct {
	URL     string        `arg:"" help:"URL that must answer 200." default:"http://127.0.0.1:8080/readyz"`
	Timeout time.Duration `help:"How long to wait for the answer." default:"3s"`
}

// Run exits non-zero unless the URL answers 200 in time.
func (c *HealthcheckCmd) Run(ctx context.Context, env *Env) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", c.URL, resp.Status)
	}
	fmt.Fprintln(env.Stdout, "ok")
	return nil
}
