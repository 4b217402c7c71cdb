package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/projections/trees"
	"github.com/votewatch/votewatch/transparency"
)

// TransparencyFlags configure the transparency log (README, "Auditing an
// election").
type TransparencyFlags struct {
	CheckpointKey   string        `help:"File holding the Ed25519 key that signs checkpoints (the sumdb/note private key text); 'votewatch keys init' makes it, nothing else does. Empty: no transparency log (the demo keeps one in its data dir)." type:"path" env:"VOTEWATCH_CHECKPOINT_KEY"`
	ElectionSecret  string        `help:"File holding the election secret that salts the choices in the leaves and keys the checkpoints' tallies digest (64 hex digits); 'votewatch keys init' makes it. Required with --checkpoint-key; auditors who recompute the leaves need it too." type:"path" env:"VOTEWATCH_ELECTION_SECRET"`
	CheckpointEvery time.Duration `help:"How often the tree grows and, when it grew, a checkpoint is signed." default:"5s" env:"VOTEWATCH_CHECKPOINT_EVERY"`
	Election        string        `help:"The election's name, in every checkpoint's origin line (votewatch/<name>)." default:"demo" env:"VOTEWATCH_ELECTION_NAME"`
	Witness         []string      `help:"A witness to cosign every checkpoint (c2sp.org/tlog-witness), as URL=VKEY: its base URL (add-checkpoint is POSTed under it) and its cosignature verifier key. Repeatable." sep:"none" env:"VOTEWATCH_WITNESS"`
	WitnessQuorum   int           `help:"How many witnesses must cosign a checkpoint before it is served (0: all of them)." default:"0" env:"VOTEWATCH_WITNESS_QUORUM"`
}

func (f TransparencyFlags) config() (app.TransparencyConfig, error) {
	c := app.TransparencyConfig{CheckpointKey: f.CheckpointKey, ElectionSecret: f.ElectionSecret, Every: f.CheckpointEvery, Election: f.Election, Quorum: f.WitnessQuorum}
	for _, s := range f.Witness {
		w, err := transparency.ParseWitness(s)
		if err != nil {
			return c, fmt.Errorf("--witness: %w", err)
		}
		c.Witnesses = append(c.Witnesses, w)
	}
	if f.WitnessQuorum < 0 || f.WitnessQuorum > len(c.Witnesses) {
		return c, fmt.Errorf("--witness-quorum %d: want 0 to the %d witnesses given", f.WitnessQuorum, len(c.Witnesses))
	}
	return c, nil
}

// KeysCmd makes the log's signing key and the election secret: the only
// command besides the demo that does.
type KeysCmd struct {
	Init   KeysInitCmd   `cmd:"" help:"Make the checkpoint signing key and the election secret (refuses to overwrite either). Print the verifier key to publish before the election."`
	Rotate KeysRotateCmd `cmd:"" help:"Record that checkpoints are signed from now on with another key (the checkpointer refuses any key but the latest checkpoint's otherwise). Publish the new verifier key to observers and witnesses first."`
}

// KeysRotateCmd records a rotation of the checkpoint key.
type KeysRotateCmd struct {
	AdminFlags
	CheckpointKey string `help:"The new checkpoint signing key (made with 'keys init' elsewhere)." type:"existingfile" required:""`
	Reason        string `help:"Why the key changes (kept with the rotation)." required:""`
}

// Run records the rotation.
func (c *KeysRotateCmd) Run(ctx context.Context, env *Env, a *app.App) error {
	key, err := transparency.LoadKey(c.CheckpointKey)
	if err != nil {
		return err
	}
	if _, _, err := c.open(ctx, a, false); err != nil {
		return err
	}
	if err := trees.RecordKeyRotation(ctx, a.Pool, key.Verifier, c.Reason); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "recorded: checkpoints are signed from now on by %s\n", key.Verifier)
	return nil
}

// KeysInitCmd makes the key and the secret.
type KeysInitCmd struct {
	CheckpointKey  string `help:"Where to write the checkpoint signing key (mode 0600)." type:"path" required:"" env:"VOTEWATCH_CHECKPOINT_KEY"`
	ElectionSecret string `help:"Where to write the election secret (mode 0600)." type:"path" required:"" env:"VOTEWATCH_ELECTION_SECRET"`
	Election       string `help:"The election's name: the key is named votewatch-<name>." default:"demo" env:"VOTEWATCH_ELECTION_NAME"`
	// The secrecy keys (README, "Sealed votes"): the tally key (its public
	// half beside it, .pub) and the intake's digest key.
	TallyKey        string `help:"Where to write the election's tally private key (mode 0600; the public key goes to FILE.pub): the intake seals every choice to it, the counting hosts open them with it." type:"path" required:"" env:"VOTEWATCH_TALLY_KEY"`
	IntakeDigestKey string `help:"Where to write the intake's digest key (mode 0600): keys the MAC kept per accepted vote_id." type:"path" required:"" env:"VOTEWATCH_INTAKE_DIGEST_KEY"`
}

// Run makes the key and the secret, refusing to replace either: a new key
// mid-election would sign a second history.
func (c *KeysInitCmd) Run(_ context.Context, env *Env) error {
	if _, err := transparency.LoadKey(c.CheckpointKey); !errors.Is(err, transparency.ErrNoKey) {
		return fmt.Errorf("%s exists: refusing to replace the checkpoint key (a rotation is an operator action)", c.CheckpointKey)
	}
	if _, err := transparency.LoadSecret(c.ElectionSecret); !errors.Is(err, transparency.ErrNoKey) {
		return fmt.Errorf("%s exists: refusing to replace the election secret", c.ElectionSecret)
	}
	// Checked before anything is written, so a refusal leaves no half-made
	// set of keys behind.
	for _, path := range []string{c.TallyKey, c.TallyKey + ".pub", c.IntakeDigestKey} {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s exists: refusing to replace it (votes sealed to a tally key open only with it)", path)
		}
	}
	key, err := transparency.CreateKey(c.CheckpointKey, "votewatch-"+c.Election)
	if err != nil {
		return err
	}
	if _, err := transparency.LoadOrCreateSecret(c.ElectionSecret); err != nil {
		return err
	}
	tally, err := app.CreateSealingKeys(c.TallyKey, c.IntakeDigestKey)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "checkpoint key: %s\nelection secret: %s\nverifier key (publish it before the election): %s\n", c.CheckpointKey, c.ElectionSecret, key.Verifier)
	fmt.Fprintf(env.Stdout, "tally key: %s (public: %s.pub)\nintake digest key: %s\ntally public key (stations seal to it): %s\n", c.TallyKey, c.TallyKey, c.IntakeDigestKey, tally)
	return nil
}
