package tallykey_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/votewatch/votewatch/infra/tallykey"
)

func TestCreateWritesAPrivateFileAndRefusesToOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tally.key")
	key, err := tallykey.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Fatalf("mode %v, want 0600", got)
	}
	back, err := tallykey.LoadPrivate(path)
	if err != nil || back.Public().ID() != key.Public().ID() {
		t.Fatalf("load: %v", err)
	}
	pub, err := tallykey.LoadPublic(path + ".pub")
	if err != nil || pub.ID() != key.Public().ID() {
		t.Fatalf("load public: %v", err)
	}
	if _, err := tallykey.Create(path); err == nil {
		t.Fatal("Create overwrote an existing key")
	}
	again, err := tallykey.LoadOrCreate(path)
	if err != nil || again.Public().ID() != key.Public().ID() {
		t.Fatalf("LoadOrCreate made a new key: %v", err)
	}
}

func TestLoadPrivateRefusesAFileOthersMayRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tally.key")
	if _, err := tallykey.Create(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := tallykey.LoadPrivate(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("err = %v, want a refusal", err)
	}
}
