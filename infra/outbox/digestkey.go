package outbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// CreateDigestKey makes a new intake digest key and writes it to path
// (hex, one line, mode 0600), refusing to overwrite one: the MACs of the
// votes accepted so far are only checkable with the key they were made
// with. `votewatch keys init` and the demo call it.
func CreateDigestKey(path string) ([]byte, error) {
	key := make([]byte, MinDigestKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("make an intake digest key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create intake digest key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create intake digest key: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("create intake digest key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("create intake digest key: %w", err)
	}
	return key, nil
}

// LoadDigestKey reads the key CreateDigestKey wrote, refusing a file that
// group or others may read.
func LoadDigestKey(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("the intake digest key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("the intake digest key %s is readable by others (mode %v): chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the intake digest key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < MinDigestKeySize {
		return nil, fmt.Errorf("intake digest key %s: want at least %d hex-encoded bytes", path, MinDigestKeySize)
	}
	return key, nil
}

// LoadOrCreateDigestKey reads the key at path, creating it first if there
// is none (the demo keeps one with its data).
func LoadOrCreateDigestKey(path string) ([]byte, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return CreateDigestKey(path)
	}
	return LoadDigestKey(path)
}
