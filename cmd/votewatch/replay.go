package main

import (
	"context"
	"github.com/votewatch/votewatch/infra/outbox"

	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/projections/rebuild"
)

// Run rebuilds the projection and swaps it in, or verifies it.
func (c *ReplayCmd) Run(ctx context.Context, env *Env, a *app.App) error {
	dsn, _, err := c.open(ctx, a, true)
	if err != nil {
		return err
	}
	secret, err := app.ElectionSecret(env.Log, c.ElectionSecret, c.database())
	if err != nil {
		return err
	}
	if err := a.UseSealing(app.AdminSealing(c.OpenFlags.sealing(), c.database()), false); err != nil {
		return err
	}
	opt := rebuild.ReplayOptions{KeepRetired: c.KeepRetired, KeepRebuilt: c.KeepRebuilt, AllowTruncatedLog: c.AllowTruncatedLog,
		Secret: secret, AcceptDiff: c.AcceptDiff}
	if c.Verify {
		opt.Mode = rebuild.ReplayVerify
	}
	return a.Replay(ctx, dsn, opt, env.Stdout)
}

// Run audits the projection's internal consistency, and that every vote
// the intake accepted reached the log or is still pending.
func (c *VerifyCmd) Run(ctx context.Context, env *Env, a *app.App) error {
	_, kcfg, err := c.open(ctx, a, false)
	if err != nil {
		return err
	}
	var digestKey []byte
	if c.IntakeDigestKey != "" {
		if digestKey, err = outbox.LoadDigestKey(c.IntakeDigestKey); err != nil {
			return err
		}
	}
	return a.Verify(ctx, kcfg, digestKey, env.Stdout)
}

// Run prints the projection's state.
func (c *StatusCmd) Run(ctx context.Context, env *Env, a *app.App) error {
	_, kcfg, err := c.open(ctx, a, false)
	if err != nil {
		return err
	}
	return a.PrintStatus(ctx, kcfg, c.JSON, env.Stdout)
}

// Run re-publishes dead letters whose payload now decodes.
func (c *DLQReplayCmd) Run(ctx context.Context, env *Env) error {
	kcfg, err := c.kafkaConfig(c.KafkaBrokers, 0)
	if err != nil {
		return err
	}
	return app.ReplayDeadLetters(ctx, kcfg, c.Topic, c.DryRun, env.Stdout)
}

// Run recounts the election from the log and compares it with the
// projection.
func (c *AuditCmd) Run(ctx context.Context, env *Env, a *app.App) error {
	if _, _, err := c.open(ctx, a, true); err != nil {
		return err
	}
	secret, err := app.ElectionSecret(env.Log, c.ElectionSecret, c.database())
	if err != nil {
		return err
	}
	if err := a.UseSealing(app.AdminSealing(c.OpenFlags.sealing(), c.database()), false); err != nil {
		return err
	}
	quorum := c.Quorum
	if quorum == 0 {
		quorum = len(c.WitnessKey)
	}
	return a.Audit(ctx, app.AuditOptions{AllowTruncatedLog: c.AllowTruncatedLog, AllowLag: c.AllowLag, Checkpoint: c.Checkpoint,
		VerifierKey: c.VerifierKey, Secret: secret, LogURL: c.LogURL, Witnesses: c.WitnessKey, Quorum: quorum}, env.Stdout)
}

// Run asks the read API what became of the vote, and with --verify-proof
// checks its inclusion proof.
func (c *BallotCmd) Run(ctx context.Context, env *Env) error {
	quorum := c.Quorum
	if quorum == 0 {
		quorum = len(c.WitnessKey)
	}
	return app.Ballot(ctx, app.BallotQuery{API: c.API, VoteID: c.VoteID, VerifyProof: c.VerifyProof, VerifierKey: c.VerifierKey,
		StateDir: c.StateDir, Witnesses: c.WitnessKey, Quorum: quorum}, env.Log, env.Stdout)
}

// open connects a to the database (DATABASE_URL, or the running demo's
// private cluster) and, with withLog, to the Kafka log; it returns the
// database's DSN and how to reach Kafka.
func (f AdminFlags) open(ctx context.Context, a *app.App, withLog bool) (string, kafka.Config, error) {
	kcfg, err := f.kafkaConfig(f.KafkaBrokers, 0)
	if err != nil {
		return "", kcfg, err
	}
	dsn, err := a.OpenAdminDatabase(ctx, f.database())
	if err != nil || !withLog {
		return dsn, kcfg, err
	}
	return dsn, kcfg, a.OpenLog(kcfg)
}

func (f AdminFlags) database() app.AdminDatabase {
	return app.AdminDatabase{URL: f.DatabaseURL, DataDir: f.DataDir}
}
