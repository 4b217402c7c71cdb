package main

import (
	"time"

	"github.com/votewatch/votewatch/internal/app"
)

// TransparencyFlags configure the transparency log (README, "Auditing an
// election").
type TransparencyFlags struct {
	CheckpointKey   string        `help:"File holding the Ed25519 key that signs checkpoints (the sumdb/note private key text), made if absent. Empty: no transparency log (the demo keeps one in its data dir)." type:"path" env:"VOTEWATCH_CHECKPOINT_KEY"`
	ElectionSecret  string        `help:"File holding the election secret that salts the choices in the trees' leaves (64 hex digits), made if absent. Required with --checkpoint-key; auditors who recompute the leaves need it too." type:"path" env:"VOTEWATCH_ELECTION_SECRET"`
	CheckpointEvery time.Duration `help:"How often the trees grow and, when anything changed, a checkpoint is published." default:"5s" env:"VOTEWATCH_CHECKPOINT_EVERY"`
	Election        string        `help:"The election's name, in every checkpoint's origin line (votewatch/<name>)." default:"demo" env:"VOTEWATCH_ELECTION_NAME"`
}

func (f TransparencyFlags) config() app.TransparencyConfig {
	return app.TransparencyConfig{CheckpointKey: f.CheckpointKey, ElectionSecret: f.ElectionSecret, Every: f.CheckpointEvery, Election: f.Election}
}
