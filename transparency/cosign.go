package transparency

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// algCosignatureV1 is the signature type of a c2sp.org/tlog-cosignature
// witness key.
const algCosignatureV1 = 0x04

// witnessVerifier verifies cosignature/v1 signatures: Ed25519 over
// "cosignature/v1\ntime <t>\n" and the checkpoint, the signature being
// the 8-byte big-endian time then the Ed25519 signature.
type witnessVerifier struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func (v *witnessVerifier) Name() string    { return v.name }
func (v *witnessVerifier) KeyHash() uint32 { return v.hash }
func (v *witnessVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig)
	m := "cosignature/v1\ntime " + strconv.FormatUint(t, 10) + "\n" + string(msg)
	return ed25519.Verify(v.key, []byte(m), sig[8:])
}

// NewWitnessVerifier reads a witness's verifier key,
// "<name>+<hash>+<base64(0x04 ‖ Ed25519 public key)>" (c2sp.org/signed-note,
// c2sp.org/tlog-cosignature).
func NewWitnessVerifier(vkey string) (note.Verifier, error) {
	// The base64 may itself hold a "+": it is the third field.
	f := strings.SplitN(strings.TrimSpace(vkey), "+", 3)
	if len(f) != 3 || f[0] == "" {
		return nil, fmt.Errorf("witness key %q: want name+hash+key", vkey)
	}
	hash, err := strconv.ParseUint(f[1], 16, 32)
	raw, err2 := base64.StdEncoding.DecodeString(f[2])
	if err != nil || err2 != nil || len(f[1]) != 8 || len(raw) != 1+ed25519.PublicKeySize || raw[0] != algCosignatureV1 {
		return nil, fmt.Errorf("witness key %q: not a cosignature/v1 Ed25519 key", vkey)
	}
	h := sha256.New()
	h.Write([]byte(f[0] + "\n"))
	h.Write(raw)
	if want := binary.BigEndian.Uint32(h.Sum(nil)); uint32(hash) != want {
		return nil, fmt.Errorf("witness key %q: its hash does not match its name and key", vkey)
	}
	return &witnessVerifier{name: f[0], hash: uint32(hash), key: ed25519.PublicKey(raw[1:])}, nil
}

// ErrNoQuorum is returned for a checkpoint fewer witnesses cosigned than
// the quorum asks.
var ErrNoQuorum = errors.New("checkpoint not cosigned by a quorum of witnesses")

// OpenWitnessed verifies a checkpoint's log signature with vkey and its
// cosignatures with the witnesses' keys, and requires quorum of them. It
// returns the checkpoint and the names of the witnesses that cosigned. A
// signature by a known key that does not verify is an error; signatures
// by unknown keys are ignored.
func OpenWitnessed(msg []byte, vkey string, witnesses []string, quorum int) (Checkpoint, []string, error) {
	logV, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("verifier key: %w", err)
	}
	vs := []note.Verifier{logV}
	for _, w := range witnesses {
		v, err := NewWitnessVerifier(w)
		if err != nil {
			return Checkpoint{}, nil, err
		}
		vs = append(vs, v)
	}
	n, err := note.Open(msg, note.VerifierList(vs...))
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	var logSigned bool
	var cosigners []string
	for _, s := range n.Sigs {
		if s.Name == logV.Name() && s.Hash == logV.KeyHash() {
			logSigned = true
			continue
		}
		cosigners = append(cosigners, s.Name)
	}
	if !logSigned {
		return Checkpoint{}, nil, fmt.Errorf("%w: not signed by the log's key", ErrBadSignature)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return c, cosigners, err
	}
	if len(cosigners) < quorum {
		return c, cosigners, fmt.Errorf("%w: %d of %d needed (%s)", ErrNoQuorum, len(cosigners), quorum, strings.Join(cosigners, ", "))
	}
	return c, cosigners, nil
}
