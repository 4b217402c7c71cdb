package app

import (
	"errors"
	"path/filepath"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/outbox"
	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/infra/tallykey"
)

// SealingConfig is the election's ballot secrecy at rest (README,
// "Secrecy"): the tally key that seals and opens choices, and whether clear
// votes are refused.
type SealingConfig struct {
	// TallyKey is the tally private key's file (0600): the projector,
	// replay and audit open sealed choices with it. Empty: clear votes
	// only; a sealed vote stops the projector until it is given.
	TallyKey string
	// TallyPublicKey is the public key (its text, or a file holding it):
	// the intake seals every choice to it. Default: the private key's
	// public half, when TallyKey is set.
	TallyPublicKey string
	// RequireSealed refuses clear votes (a candidate_id in the message):
	// each is a dead letter. Live, replay and audit must agree on it.
	RequireSealed bool
	// DigestKey is the intake's digest key file (0600): it keys the MACs
	// kept per accepted vote_id.
	DigestKey string
}

// DemoDefaults keeps the demo's tally key and digest key with its data,
// made on first start (like election.secret).
func (c SealingConfig) DemoDefaults(dataDir string) SealingConfig {
	if c.TallyKey == "" && c.TallyPublicKey == "" {
		c.TallyKey = filepath.Join(dataDir, "tally.key")
	}
	if c.DigestKey == "" {
		c.DigestKey = filepath.Join(dataDir, "intake.key")
	}
	return c
}

// AdminSealing defaults the tally key of a maintenance command (replay,
// audit) to the demo's, when there is one and no database is named, as
// ElectionSecret does.
func AdminSealing(cfg SealingConfig, db AdminDatabase) SealingConfig {
	if cfg.TallyKey != "" || db.URL != "" {
		return cfg
	}
	dir := db.DataDir
	if dir == "" {
		var err error
		if dir, err = postgres.DefaultDir(); err != nil {
			return cfg
		}
	}
	if demo := filepath.Join(dir, "tally.key"); fileExists(demo) {
		cfg.TallyKey = demo
	}
	return cfg
}

// Sealing is what a process holds of the election's secrecy keys.
type Sealing struct {
	// Opener decodes votes for the deciders (nil-safe: no key, clear only).
	Opener *domain.Opener
	// Public seals choices at the intake (zero: none, votes stay clear).
	Public domain.TallyPublicKey
	// DigestKey keys the intake's MACs (nil: not loaded).
	DigestKey []byte
}

// LoadSealing reads the keys cfg names. create makes the private key and
// the digest key when their files are missing (the demo; production makes
// them once with CreateSealingKeys and refuses to start without them, so
// two processes never make two keys).
func LoadSealing(cfg SealingConfig, create bool) (Sealing, error) {
	var s Sealing
	var priv *domain.TallyPrivateKey
	if cfg.TallyKey != "" {
		load := tallykey.LoadPrivate
		if create {
			load = tallykey.LoadOrCreate
		}
		k, err := load(cfg.TallyKey)
		if err != nil {
			return s, err
		}
		priv, s.Public = &k, k.Public()
	}
	if cfg.TallyPublicKey != "" {
		pub, err := tallykey.LoadPublic(cfg.TallyPublicKey)
		if err != nil {
			return s, err
		}
		if priv != nil && pub.ID() != priv.Public().ID() {
			return s, errors.New("the tally public key is not the tally key's public half")
		}
		s.Public = pub
	}
	if cfg.RequireSealed && s.Public.IsZero() {
		return s, errors.New("--require-sealed needs the tally key (--tally-key or --tally-public-key)")
	}
	s.Opener = domain.NewOpener(priv, cfg.RequireSealed)
	if cfg.DigestKey != "" {
		load := outbox.LoadDigestKey
		if create {
			load = outbox.LoadOrCreateDigestKey
		}
		var err error
		if s.DigestKey, err = load(cfg.DigestKey); err != nil {
			return s, err
		}
	}
	return s, nil
}

// UseSealing loads the keys cfg names into a.Sealing (see LoadSealing).
func (a *App) UseSealing(cfg SealingConfig, create bool) error {
	s, err := LoadSealing(cfg, create)
	if err != nil {
		return err
	}
	a.Sealing = s
	if !s.Public.IsZero() {
		a.Log.Info("votes sealed to the tally key", "tally_key_id", s.Public.ID(), "opens", cfg.TallyKey != "", "require_sealed", cfg.RequireSealed)
	}
	return nil
}

// CreateSealingKeys makes an election's tally key pair (tallyKey, and its
// public half in tallyKey+".pub") and the intake's digest key, refusing to
// overwrite either: for `votewatch keys init`.
func CreateSealingKeys(tallyKey, digestKey string) (domain.TallyPublicKey, error) {
	k, err := tallykey.Create(tallyKey)
	if err != nil {
		return domain.TallyPublicKey{}, err
	}
	if _, err := outbox.CreateDigestKey(digestKey); err != nil {
		return domain.TallyPublicKey{}, err
	}
	return k.Public(), nil
}
