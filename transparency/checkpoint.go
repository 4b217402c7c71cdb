package transparency

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// checkpointHeader versions the checkpoint text.
const checkpointHeader = "votewatch checkpoint v1"

// Checkpoint is what a signed checkpoint states: at Time, the election's
// trees (one per votes partition) had these heads, the projection had
// applied these offsets, and the trees' leaves decide counts with this
// digest.
type Checkpoint struct {
	// Origin names the log: "votewatch/<election>".
	Origin  string
	Time    time.Time
	Trees   map[int32]Head
	Applied map[string]map[int32]int64
	// Tallies is Counts.Digest of the trees' leaves; Counted and Rejected
	// their totals.
	Tallies           string
	Counted, Rejected int64
}

// Text is the note text signed. Lines, in order:
//
//	votewatch/<election>
//	votewatch checkpoint v1
//	time <RFC 3339, UTC>
//	tree <partition> <size> <root, base64> <next offset>   (one per partition, ascending)
//	applied <topic> <partition>=<next offset> …             (one per topic, ascending)
//	tallies <base64 SHA-256> counted <n> rejected <n>
func (c Checkpoint) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%s\ntime %s\n", c.Origin, checkpointHeader, c.Time.UTC().Format(time.RFC3339Nano))
	for _, p := range sortedKeys(c.Trees) {
		h := c.Trees[p]
		fmt.Fprintf(&b, "tree %d %d %s %d\n", p, h.Size, h.Root, h.NextOffset)
	}
	topics := make([]string, 0, len(c.Applied))
	for t := range c.Applied {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	for _, t := range topics {
		b.WriteString("applied " + t)
		for _, p := range sortedKeys(c.Applied[t]) {
			fmt.Fprintf(&b, " %d=%d", p, c.Applied[t][p])
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "tallies %s counted %d rejected %d\n", c.Tallies, c.Counted, c.Rejected)
	return b.String()
}

func sortedKeys[V any](m map[int32]V) []int32 {
	ks := make([]int32, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// ParseCheckpoint reads a checkpoint's text (a verified note's Text).
func ParseCheckpoint(text string) (Checkpoint, error) {
	c := Checkpoint{Trees: map[int32]Head{}, Applied: map[string]map[int32]int64{}}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 4 || lines[1] != checkpointHeader {
		return c, errors.New("not a votewatch v1 checkpoint")
	}
	c.Origin = lines[0]
	bad := func(line string, err error) (Checkpoint, error) {
		return c, fmt.Errorf("checkpoint line %q: %w", line, err)
	}
	for _, line := range lines[2:] {
		f := strings.Fields(line)
		if len(f) == 0 {
			return bad(line, errors.New("empty"))
		}
		switch {
		case f[0] == "time" && len(f) == 2:
			t, err := time.Parse(time.RFC3339Nano, f[1])
			if err != nil {
				return bad(line, err)
			}
			c.Time = t
		case f[0] == "tree" && len(f) == 5:
			p, err1 := strconv.ParseInt(f[1], 10, 32)
			size, err2 := strconv.ParseInt(f[2], 10, 64)
			root, err3 := tlog.ParseHash(f[3])
			next, err4 := strconv.ParseInt(f[4], 10, 64)
			if err := errors.Join(err1, err2, err3, err4); err != nil {
				return bad(line, err)
			}
			if p < 0 || size < 0 || next < 0 {
				return bad(line, errors.New("negative"))
			}
			c.Trees[int32(p)] = Head{Size: size, Root: root, NextOffset: next}
		case f[0] == "applied" && len(f) >= 2:
			m := map[int32]int64{}
			for _, kv := range f[2:] {
				ps, os, ok := strings.Cut(kv, "=")
				p, err1 := strconv.ParseInt(ps, 10, 32)
				o, err2 := strconv.ParseInt(os, 10, 64)
				if !ok || err1 != nil || err2 != nil || p < 0 || o < 0 {
					return bad(line, errors.New("want partition=offset, neither negative"))
				}
				m[int32(p)] = o
			}
			c.Applied[f[1]] = m
		case f[0] == "tallies" && len(f) == 6 && f[2] == "counted" && f[4] == "rejected":
			c.Tallies = f[1]
			var err1, err2 error
			c.Counted, err1 = strconv.ParseInt(f[3], 10, 64)
			c.Rejected, err2 = strconv.ParseInt(f[5], 10, 64)
			if err := errors.Join(err1, err2); err != nil {
				return bad(line, err)
			}
			if c.Counted < 0 || c.Rejected < 0 {
				return bad(line, errors.New("negative"))
			}
		default:
			return bad(line, errors.New("unknown"))
		}
	}
	if c.Text() != text {
		return c, errors.New("checkpoint is not in canonical form")
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

// LoadKey reads a signing key written by LoadOrCreateKey (the note
// package's private key text).
func LoadKey(path string) (Key, error) {
	if err := checkPrivate(path); err != nil {
		return Key{}, fmt.Errorf("the checkpoint key: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("read the checkpoint key: %w", err)
	}
	return parseKey(strings.TrimSpace(string(b)))
}

// LoadOrCreateKey reads the key at path, creating it (mode 0600) for name
// first if there is none: the demo keeps one with its data.
func LoadOrCreateKey(path, name string) (Key, error) {
	if _, err := os.Stat(path); err == nil {
		return LoadKey(path)
	}
	skey, _, err := note.GenerateKey(nil, name)
	if err != nil {
		return Key{}, fmt.Errorf("make a checkpoint key: %w", err)
	}
	if err := writePrivate(path, []byte(skey+"\n")); err != nil {
		return Key{}, fmt.Errorf("write the checkpoint key: %w", err)
	}
	return parseKey(skey)
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

// Open verifies a signed checkpoint against the verifier key vkey and
// parses it.
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

// CheckConsistent proves, partition by partition, that every tree of old
// is a prefix of the same partition's tree in cur: cur's reader (the
// stored hashes of the current trees) gives an RFC 6962 consistency proof
// from old's size to cur's, checked against both roots.
func CheckConsistent(old Checkpoint, cur map[int32]Head, reader func(partition int32) tlog.HashReader) error {
	for _, p := range sortedKeys(old.Trees) {
		o := old.Trees[p]
		n, ok := cur[p]
		if !ok || n.Size < o.Size {
			return fmt.Errorf("%w: partition %d had %d leaves, now %d", ErrInconsistent, p, o.Size, n.Size)
		}
		if o.Size == 0 {
			continue
		}
		proof, err := tlog.ProveTree(n.Size, o.Size, reader(p))
		if err != nil {
			return fmt.Errorf("prove partition %d from %d to %d leaves: %w", p, o.Size, n.Size, err)
		}
		if err := tlog.CheckTree(proof, n.Size, n.Root, o.Size, o.Root); err != nil {
			return fmt.Errorf("%w: partition %d from %d to %d leaves: %v", ErrInconsistent, p, o.Size, n.Size, err)
		}
	}
	return nil
}
