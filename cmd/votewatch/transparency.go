package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/transparency"
)

// TransparencyFlags configure the transparency log (README, "Auditing an
// election").
type TransparencyFlags struct {
	CheckpointKey   string        `help:"File holding the Ed25519 key that signs checkpoints (the sumdb/note private key text). Empty: no transparency log (the demo makes one in its data dir)." type:"path" env:"VOTEWATCH_CHECKPOINT_KEY"`
	ElectionSecret  string        `help:"File holding the election secret that salts the choices in the trees' leaves (64 hex digits). Required with --checkpoint-key; auditors who recompute the leaves need it too." type:"path" env:"VOTEWATCH_ELECTION_SECRET"`
	CheckpointEvery time.Duration `help:"How often the trees grow and, when anything changed, a checkpoint is published." default:"5s" env:"VOTEWATCH_CHECKPOINT_EVERY"`
	Election        string        `help:"The election's name, in every checkpoint's origin line (votewatch/<name>)." default:"demo" env:"VOTEWATCH_ELECTION_NAME"`
}

// demoDefaults keeps the demo's key and secret with its data, made on
// first use.
func (f TransparencyFlags) demoDefaults(dataDir string) TransparencyFlags {
	if f.CheckpointKey == "" {
		f.CheckpointKey = filepath.Join(dataDir, "checkpoint.key")
	}
	if f.ElectionSecret == "" {
		f.ElectionSecret = filepath.Join(dataDir, "election.secret")
	}
	return f
}

func (f TransparencyFlags) origin() string { return "votewatch/" + f.Election }

// keys loads the signing key and the secret, creating them when absent.
func (f TransparencyFlags) keys() (transparency.Key, transparency.Secret, error) {
	if f.ElectionSecret == "" {
		return transparency.Key{}, nil, errors.New("--checkpoint-key needs --election-secret")
	}
	key, err := transparency.LoadOrCreateKey(f.CheckpointKey, "votewatch-"+f.Election)
	if err != nil {
		return transparency.Key{}, nil, err
	}
	secret, err := transparency.LoadOrCreateSecret(f.ElectionSecret)
	if err != nil {
		return transparency.Key{}, nil, err
	}
	return key, secret, nil
}

// newCheckpointer wires the checkpointer of the projection behind pool, or
// returns nil when no key is configured.
func newCheckpointer(log *slog.Logger, pool *pgxpool.Pool, f TransparencyFlags, events projections.ReplayLog, pub message.Publisher) (*projections.Checkpointer, error) {
	if f.CheckpointKey == "" {
		return nil, nil
	}
	key, secret, err := f.keys()
	if err != nil {
		return nil, err
	}
	trees, err := projections.NewTrees(pool, secret, projections.VotesReader(events))
	if err != nil {
		return nil, err
	}
	log.Info("transparency log on", "origin", f.origin(), "verifier_key", key.Verifier, "every", f.CheckpointEvery)
	return projections.NewCheckpointer(projections.CheckpointerConfig{
		Trees: trees, Key: key, Origin: f.origin(), Every: f.CheckpointEvery,
		Publish: func(ctx context.Context, signed []byte) error {
			msg := message.NewMessage(watermill.NewUUID(), signed)
			msg.SetContext(ctx)
			if err := pub.Publish(domain.TopicCheckpoints, msg); err != nil {
				return fmt.Errorf("publish to %s: %w", domain.TopicCheckpoints, err)
			}
			return nil
		},
	}, log.With("component", "checkpointer"))
}
