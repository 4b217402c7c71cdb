// Package tallykey keeps the election's tally key pair in files: the
// private key, which opens every sealed choice, in a 0600 file on the
// hosts that count (projector, replay, audit); the public key, which
// seals them, wherever votes are taken in (the intake, stations).
package tallykey

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/votewatch/votewatch/domain"
)

// Create makes a new tally key pair and writes the private key to path,
// mode 0600, refusing to overwrite an existing file (a lost private key
// loses every sealed choice; a replaced one makes the log unreadable).
// The public key is written beside it as path + ".pub" (mode 0644).
// `votewatch keys init` and the demo call it.
func Create(path string) (domain.TallyPrivateKey, error) {
	key, err := domain.GenerateTallyKey()
	if err != nil {
		return domain.TallyPrivateKey{}, err
	}
	text, err := key.MarshalText()
	if err != nil {
		return domain.TallyPrivateKey{}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return domain.TallyPrivateKey{}, fmt.Errorf("create tally key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return domain.TallyPrivateKey{}, fmt.Errorf("create tally key: %w", err)
	}
	if _, err := f.Write(append(text, '\n')); err != nil {
		f.Close()
		return domain.TallyPrivateKey{}, fmt.Errorf("create tally key: %w", err)
	}
	if err := f.Close(); err != nil {
		return domain.TallyPrivateKey{}, fmt.Errorf("create tally key: %w", err)
	}
	if err := os.WriteFile(path+".pub", []byte(key.Public().String()+"\n"), 0o644); err != nil {
		return domain.TallyPrivateKey{}, fmt.Errorf("write the tally public key: %w", err)
	}
	return key, nil
}

// LoadOrCreate reads the private key at path, creating it first if there
// is none (the demo keeps one with its data).
func LoadOrCreate(path string) (domain.TallyPrivateKey, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return Create(path)
	}
	return LoadPrivate(path)
}

// LoadPrivate reads the private key at path. A file that group or others
// may read is refused: whoever reads it reads every vote.
func LoadPrivate(path string) (domain.TallyPrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return domain.TallyPrivateKey{}, fmt.Errorf("the tally key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return domain.TallyPrivateKey{}, fmt.Errorf("the tally key %s is readable by others (mode %v): chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return domain.TallyPrivateKey{}, fmt.Errorf("read the tally key: %w", err)
	}
	key, err := domain.ParseTallyPrivateKey(string(b))
	if err != nil {
		return domain.TallyPrivateKey{}, fmt.Errorf("tally key %s: %w", path, err)
	}
	return key, nil
}

// LoadPublic reads a tally public key: the text itself
// ("votewatch-tally-public-v1:…") or a file holding it.
func LoadPublic(textOrPath string) (domain.TallyPublicKey, error) {
	text := textOrPath
	if !strings.HasPrefix(strings.TrimSpace(text), "votewatch-tally-public-v1:") {
		b, err := os.ReadFile(textOrPath)
		if err != nil {
			return domain.TallyPublicKey{}, fmt.Errorf("the tally public key: %w", err)
		}
		text = string(b)
	}
	pub, err := domain.ParseTallyPublicKey(text)
	if err != nil {
		return domain.TallyPublicKey{}, fmt.Errorf("the tally public key: %w", err)
	}
	return pub, nil
}
