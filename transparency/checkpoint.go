package transparency

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// MaxCheckpointSize bounds a signed checkpoint with its cosignatures: a
// checkpoint is three lines and two extension lines, each signature a
// line; a witness or a voter's phone reads it whole.
const MaxCheckpointSize = 1024

// Extension line keywords. Witnesses and tlog clients ignore extension
// lines; votewatch's auditor reads them.
const (
	extTime    = "votewatch-time "
	extTallies = "votewatch-tallies "
)

// Checkpoint is a C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint) of the
// election's one tree: its origin, size and root, and two extension
// lines: the time it was made and a keyed digest of the counts its leaves
// decide. Nothing in it is per partition: the sizes of partitions would
// let an observer follow single votes from one checkpoint to the next.
type Checkpoint struct {
	// Origin names the log: "votewatch/<election>".
	Origin string
	Size   int64
	Root   tlog.Hash
	Time   time.Time
	// Tallies is Counts.KeyedDigest of the leaves' counts: only an auditor
	// holding the election secret can recompute it, so a checkpoint
	// cannot be matched against guessed tallies.
	Tallies string
}

// Text is the note text signed:
//
//	votewatch/<election>
//	<size>
//	<root, base64>
//	votewatch-time <RFC 3339, UTC, milliseconds>
//	votewatch-tallies <base64 HMAC-SHA-256>
func (c Checkpoint) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\n%s%s\n%s%s\n", c.Origin, c.Size, c.Root,
		extTime, c.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"), extTallies, c.Tallies)
}

// Head is the checkpoint's tree, as tlog names it.
func (c Checkpoint) Head() tlog.Tree { return tlog.Tree{N: c.Size, Hash: c.Root} }

// ParseCheckpoint reads a checkpoint's text (a verified note's Text). It
// accepts any C2SP checkpoint: the extension lines it does not know are
// left out of the result, and a checkpoint without them has a zero Time
// and an empty Tallies.
func ParseCheckpoint(text string) (Checkpoint, error) {
	var c Checkpoint
	if len(text) > MaxCheckpointSize || !strings.HasSuffix(text, "\n") {
		return c, errors.New("not a checkpoint: too long or not ending in a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return c, errors.New("not a checkpoint: want an origin, a size and a root")
	}
	c.Origin = lines[0]
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return c, fmt.Errorf("checkpoint size %q: want a non-negative decimal", lines[1])
	}
	c.Size = n
	if c.Root, err = tlog.ParseHash(lines[2]); err != nil {
		return c, fmt.Errorf("checkpoint root %q: %w", lines[2], err)
	}
	if c.Origin == "" {
		return c, errors.New("checkpoint origin is empty")
	}
	for _, line := range lines[3:] {
		switch {
		case line == "":
			return c, errors.New("checkpoint has an empty extension line")
		case strings.HasPrefix(line, extTime):
			t, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(line, extTime))
			if err != nil {
				return c, fmt.Errorf("checkpoint line %q: %w", line, err)
			}
			c.Time = t
		case strings.HasPrefix(line, extTallies):
			c.Tallies = strings.TrimPrefix(line, extTallies)
		}
	}
	return c, nil
}

// Key is the checkpoint signing key.
type Key struct {
	Signer note.Signer
	// Verifier is the verifier key in the note package's text format:
	// what an observer needs to check a checkpoint.
	Verifier string
}

// ErrNoKey is returned for a key or secret file that does not exist:
// only `votewatch keys init` and the demo make one (a key made silently
// when leadership moves would sign a second history).
var ErrNoKey = errors.New("no such key file (make one with 'votewatch keys init')")

// LoadKey reads a signing key written by CreateKey (the note package's
// private key text).
func LoadKey(path string) (Key, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return Key{}, fmt.Errorf("the checkpoint key %s: %w", path, ErrNoKey)
	}
	if err := checkPrivate(path); err != nil {
		return Key{}, fmt.Errorf("the checkpoint key: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("read the checkpoint key: %w", err)
	}
	return parseKey(strings.TrimSpace(string(b)))
}

// CreateKey makes a new signing key for name and writes it to path (mode
// 0600); it refuses to overwrite a file.
func CreateKey(path, name string) (Key, error) {
	skey, _, err := note.GenerateKey(nil, name)
	if err != nil {
		return Key{}, fmt.Errorf("make a checkpoint key: %w", err)
	}
	if err := writePrivate(path, []byte(skey+"\n")); err != nil {
		return Key{}, fmt.Errorf("write the checkpoint key: %w", err)
	}
	return parseKey(skey)
}

// LoadOrCreateKey reads the key at path, creating it for name first if
// there is none. Only the demo, which keeps one with its data, and
// `keys init` may make a key.
func LoadOrCreateKey(path, name string) (Key, error) {
	if _, err := os.Stat(path); err == nil {
		return LoadKey(path)
	}
	return CreateKey(path, name)
}

// parseKey derives the verifier key from the private key text
// "PRIVATE+KEY+<name>+<hash>+<base64(0x01 ‖ seed)>".
func parseKey(skey string) (Key, error) {
	signer, err := note.NewSigner(skey)
	if err != nil {
		return Key{}, errors.New("checkpoint key: not a note private key")
	}
	// The key's base64 may itself hold a "+": it is the fifth field.
	f := strings.SplitN(skey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(f[len(f)-1])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return Key{}, errors.New("checkpoint key: not an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(signer.Name(), pub)
	if err != nil {
		return Key{}, fmt.Errorf("checkpoint key: %w", err)
	}
	return Key{Signer: signer, Verifier: vkey}, nil
}

// Sign signs a checkpoint as a note.
func (k Key) Sign(c Checkpoint) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: c.Text()}, k.Signer)
	if err != nil {
		return nil, fmt.Errorf("sign the checkpoint: %w", err)
	}
	return msg, nil
}

// ErrBadSignature is returned for a checkpoint the key did not sign.
var ErrBadSignature = errors.New("checkpoint signature does not verify")

// Open verifies a signed checkpoint against the log's verifier key vkey
// and parses it. Cosignatures on the note are ignored here (see
// OpenWitnessed).
func Open(msg []byte, vkey string) (Checkpoint, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("verifier key: %w", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return ParseCheckpoint(n.Text)
}

// ErrInconsistent is returned when a later tree does not extend an
// earlier one: history was rewritten.
var ErrInconsistent = errors.New("trees are not consistent: the log's history was rewritten")

// CheckConsistent proves that old's tree is a prefix of cur: cur's
// reader gives an RFC 6962 consistency proof from old's size to cur's,
// checked against both roots.
func CheckConsistent(old, cur tlog.Tree, r tlog.HashReader) error {
	if cur.N < old.N {
		return fmt.Errorf("%w: the tree had %d leaves, now %d", ErrInconsistent, old.N, cur.N)
	}
	if old.N == 0 {
		return nil
	}
	proof, err := tlog.ProveTree(cur.N, old.N, r)
	if err != nil {
		return fmt.Errorf("prove the tree from %d to %d leaves: %w", old.N, cur.N, err)
	}
	if err := tlog.CheckTree(proof, cur.N, cur.Hash, old.N, old.Hash); err != nil {
		return fmt.Errorf("%w: from %d to %d leaves: %v", ErrInconsistent, old.N, cur.N, err)
	}
	return nil
}
