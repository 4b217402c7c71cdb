package domain

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// Sealed votes (contract v2): the choice of a vote travels and rests
// encrypted to the election's tally key, so the log, the intake's tables
// and the outbox never hold voter_id next to a clear candidate_id. Only
// the holder of the tally private key (the projector, replay, audit)
// opens it.
//
// The construction, for one batch of votes:
//
//   - one HPKE (RFC 9180) encapsulation to the tally public key, suite
//     DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / export-only, info
//     SealInfo; the batch's data key is the context's export
//     Export(SealExportContext, 32), and enc is sent with every vote;
//   - per vote, AES-256-GCM under the data key with a random 96-bit
//     nonce, over the choice padded to a fixed length (so the ciphertext's
//     length says nothing about which candidate), with the additional data
//     SealAAD(vote_id, voter_id, contest_id) binding the sealed choice to
//     its vote: moved onto another vote it does not open.
//
// One KEM operation per batch, one AEAD operation per vote: an opener
// caches each enc's data key, so opening a vote costs one AES-GCM open.
const (
	// SealInfo is the HPKE info string of a batch's encapsulation.
	SealInfo = "votewatch tally v1"
	// SealExportContext derives a batch's data key from its HPKE context.
	SealExportContext = "votewatch choice key"
	// sealAADPrefix starts the additional data of every sealed choice.
	sealAADPrefix = "votewatch choice v1"
	// sealedPlainLen is a padded choice: one length byte, the candidate_id,
	// zeros up to 1+maxIDLen.
	sealedPlainLen = 1 + maxIDLen
	dataKeyLen     = 32
	nonceLen       = 12
	keyIDLen       = 8
)

// The key texts: a prefix naming the format, then base64 (standard, padded)
// of RFC 9180's SerializePublicKey / SerializePrivateKey output.
const (
	tallyPublicPrefix  = "votewatch-tally-public-v1:"
	tallyPrivatePrefix = "votewatch-tally-private-v1:"
)

// ErrTallyKey is matched by the errors of a sealed vote that this process
// cannot open because it holds no tally key or another one than the vote
// was sealed to. It is not ErrInvalid: the vote is not at fault, the
// configuration is, so a consumer stops and says so rather than
// dead-letter the vote (a replay with the right key would count it).
var ErrTallyKey = errors.New("tally key")

func tallyKEM() hpke.KEM { return hpke.DHKEM(ecdh.X25519()) }

// TallyPublicKey is the election's tally public key: what the intake and
// stations seal choices to. The zero value is no key.
type TallyPublicKey struct {
	pk hpke.PublicKey
	id string
}

// TallyPrivateKey opens sealed choices. Whoever holds it can read every
// vote's choice from the log: keep it in a 0600 file on the hosts that
// count (projector, replay, audit).
type TallyPrivateKey struct {
	sk  hpke.PrivateKey
	pub TallyPublicKey
}

// GenerateTallyKey makes a new tally key pair.
func GenerateTallyKey() (TallyPrivateKey, error) {
	sk, err := tallyKEM().GenerateKey()
	if err != nil {
		return TallyPrivateKey{}, fmt.Errorf("generate a tally key: %w", err)
	}
	return newTallyPrivateKey(sk)
}

func newTallyPrivateKey(sk hpke.PrivateKey) (TallyPrivateKey, error) {
	pub, err := newTallyPublicKey(sk.PublicKey())
	if err != nil {
		return TallyPrivateKey{}, err
	}
	return TallyPrivateKey{sk: sk, pub: pub}, nil
}

func newTallyPublicKey(pk hpke.PublicKey) (TallyPublicKey, error) {
	sum := sha256.Sum256(pk.Bytes())
	return TallyPublicKey{pk: pk, id: hex.EncodeToString(sum[:keyIDLen])}, nil
}

// ParseTallyPublicKey reads a public key in the text form String gives.
// Errors match ErrInvalid.
func ParseTallyPublicKey(text string) (TallyPublicKey, error) {
	b, ok := strings.CutPrefix(strings.TrimSpace(text), tallyPublicPrefix)
	if !ok {
		return TallyPublicKey{}, invalid("tally_key", "must start with %q", tallyPublicPrefix)
	}
	raw, err := base64.StdEncoding.DecodeString(b)
	if err != nil {
		return TallyPublicKey{}, invalid("tally_key", "is not base64: %v", err)
	}
	pk, err := tallyKEM().NewPublicKey(raw)
	if err != nil {
		return TallyPublicKey{}, invalid("tally_key", "is not an X25519 public key: %v", err)
	}
	return newTallyPublicKey(pk)
}

// ParseTallyPrivateKey reads a private key in the text form
// TallyPrivateKey.MarshalText gives. Errors match ErrInvalid and never
// quote the key.
func ParseTallyPrivateKey(text string) (TallyPrivateKey, error) {
	b, ok := strings.CutPrefix(strings.TrimSpace(text), tallyPrivatePrefix)
	if !ok {
		return TallyPrivateKey{}, invalid("tally_key", "must start with %q", tallyPrivatePrefix)
	}
	raw, err := base64.StdEncoding.DecodeString(b)
	if err != nil {
		return TallyPrivateKey{}, invalid("tally_key", "is not base64")
	}
	sk, err := tallyKEM().NewPrivateKey(raw)
	if err != nil {
		return TallyPrivateKey{}, invalid("tally_key", "is not an X25519 private key")
	}
	return newTallyPrivateKey(sk)
}

// MarshalText returns the private key's text form, for its 0600 file.
func (k TallyPrivateKey) MarshalText() ([]byte, error) {
	if k.sk == nil {
		return nil, errors.New("marshal tally key: no key")
	}
	raw, err := k.sk.Bytes()
	if err != nil {
		return nil, fmt.Errorf("marshal tally key: %w", err)
	}
	return []byte(tallyPrivatePrefix + base64.StdEncoding.EncodeToString(raw)), nil
}

// Public returns the key's public half.
func (k TallyPrivateKey) Public() TallyPublicKey { return k.pub }

// IsZero reports the zero key (none configured).
func (k TallyPublicKey) IsZero() bool { return k.pk == nil }

// ID names the key: hex of the first 8 bytes of SHA-256 of its bytes. A
// sealed choice carries the id of the key it was sealed to.
func (k TallyPublicKey) ID() string { return k.id }

// Bytes returns RFC 9180's SerializePublicKey (32 bytes for X25519).
func (k TallyPublicKey) Bytes() []byte {
	if k.pk == nil {
		return nil
	}
	return k.pk.Bytes()
}

// String returns the text form: "votewatch-tally-public-v1:" and base64 of
// Bytes.
func (k TallyPublicKey) String() string {
	if k.pk == nil {
		return ""
	}
	return tallyPublicPrefix + base64.StdEncoding.EncodeToString(k.pk.Bytes())
}

// SealedChoice is a vote's choice sealed to a tally key: the key's id,
// its batch's HPKE encapsulation (enc), the AEAD nonce and ciphertext.
type SealedChoice struct {
	KeyID      string
	Enc        []byte
	Nonce      []byte
	Ciphertext []byte
}

// sealedChoiceVersion starts a sealed choice's text.
const sealedChoiceVersion = "v1."

// sealedChoiceLen is a sealed choice's binary length: key id, enc, nonce,
// ciphertext (padded choice and GCM tag).
const sealedChoiceLen = keyIDLen + 32 + nonceLen + sealedPlainLen + 16

// String returns the sealed choice's text form, the value of a vote's
// sealed_choice: "v1." then base64url without padding (RFC 4648 §5) of
// key_id (8 bytes) ‖ enc (32) ‖ nonce (12) ‖ ciphertext (81).
func (s SealedChoice) String() string {
	kid, _ := hex.DecodeString(s.KeyID)
	b := make([]byte, 0, sealedChoiceLen)
	b = append(append(append(append(b, kid...), s.Enc...), s.Nonce...), s.Ciphertext...)
	return sealedChoiceVersion + base64.RawURLEncoding.EncodeToString(b)
}

// ParseSealedChoice reads a sealed choice's text form (String). Errors
// match ErrInvalid.
func ParseSealedChoice(text string) (SealedChoice, error) {
	rest, ok := strings.CutPrefix(text, sealedChoiceVersion)
	if !ok {
		return SealedChoice{}, invalid("sealed_choice", "must start with %q (the sealed vote format's version)", sealedChoiceVersion)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(b) != sealedChoiceLen {
		return SealedChoice{}, invalid("sealed_choice", "must be %q and %d bytes in unpadded base64url", sealedChoiceVersion, sealedChoiceLen)
	}
	return SealedChoice{
		KeyID:      hex.EncodeToString(b[:keyIDLen]),
		Enc:        b[keyIDLen : keyIDLen+32],
		Nonce:      b[keyIDLen+32 : keyIDLen+32+nonceLen],
		Ciphertext: b[keyIDLen+32+nonceLen:],
	}, nil
}

func (s SealedChoice) validate() error {
	if len(s.KeyID) != 2*keyIDLen || len(s.Enc) != 32 || len(s.Nonce) != nonceLen || len(s.Ciphertext) != sealedPlainLen+16 {
		return invalid("sealed_choice", "is not a whole sealed choice")
	}
	if _, err := hex.DecodeString(s.KeyID); err != nil {
		return invalid("sealed_choice", "key id is not hex")
	}
	return nil
}

// SealAAD is the additional data a choice is sealed with: it binds the
// sealed choice to its vote_id, voter and contest.
func SealAAD(voteID, voterID, contestID string) []byte {
	b := make([]byte, 0, len(sealAADPrefix)+len(voteID)+len(voterID)+len(contestID)+3)
	b = append(b, sealAADPrefix...)
	for _, p := range []string{voteID, voterID, contestID} {
		b = append(b, 0)
		b = append(b, p...)
	}
	return b
}

// Sealer seals the choices of one batch of votes: one HPKE encapsulation
// when made, one AES-GCM seal per vote. Safe for concurrent use.
type Sealer struct {
	keyID string
	enc   []byte
	aead  cipher.AEAD
}

// NewSealer starts a batch sealed to key.
func NewSealer(key TallyPublicKey) (*Sealer, error) {
	if key.IsZero() {
		return nil, errors.New("new sealer: no tally key")
	}
	enc, s, err := hpke.NewSender(key.pk, hpke.HKDFSHA256(), hpke.ExportOnly(), []byte(SealInfo))
	if err != nil {
		return nil, fmt.Errorf("new sealer: %w", err)
	}
	dk, err := s.Export(SealExportContext, dataKeyLen)
	if err != nil {
		return nil, fmt.Errorf("new sealer: %w", err)
	}
	aead, err := newGCM(dk)
	if err != nil {
		return nil, fmt.Errorf("new sealer: %w", err)
	}
	return &Sealer{keyID: key.id, enc: enc, aead: aead}, nil
}

// Seal returns v with its choice sealed and the clear candidate_id gone.
// A vote already sealed (by its station) is returned as it is.
func (s *Sealer) Seal(v Vote) (Vote, error) {
	if v.sealed != nil {
		return v, nil
	}
	plain := make([]byte, sealedPlainLen)
	plain[0] = byte(len(v.candidateID))
	copy(plain[1:], v.candidateID)
	nonce := make([]byte, nonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return Vote{}, fmt.Errorf("seal vote %s: %w", v.id, err)
	}
	ct := s.aead.Seal(nil, nonce, plain, SealAAD(v.id, v.voterID, v.contestID))
	v.sealed = &SealedChoice{KeyID: s.keyID, Enc: s.enc, Nonce: nonce, Ciphertext: ct}
	v.candidateID = ""
	return v, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Opener turns votes messages into votes the rule can decide: it opens
// sealed choices with the tally private key and, when the election
// requires sealed votes, refuses clear ones. Every consumer that decides
// (projector, replay, audit, the trees) decodes votes through one, so live
// and replay treat a message alike. A nil *Opener holds no key and
// requires nothing: clear votes decode, sealed ones fail with ErrTallyKey.
// Safe for concurrent use.
type Opener struct {
	key           *TallyPrivateKey
	requireSealed bool

	// cache maps a batch's enc to its data key's AEAD: read by every
	// decoding goroutine at once, written once per batch (sync.Map's case).
	cache  sync.Map
	cached atomic.Int64
}

// maxOpenerCache bounds the cached data keys (one per intake batch); past
// it the cache starts again.
const maxOpenerCache = 1 << 16

// NewOpener returns an opener with key (nil: none). requireSealed makes a
// clear vote (candidate_id in the message) invalid: a dead letter, the
// same in live and in a replay given the same setting.
func NewOpener(key *TallyPrivateKey, requireSealed bool) *Opener {
	return &Opener{key: key, requireSealed: requireSealed}
}

// RequiresSealed reports whether clear votes are refused.
func (o *Opener) RequiresSealed() bool { return o != nil && o.requireSealed }

// Decode is domain.Decode with votes opened (DecodeVoteCast).
func (o *Opener) Decode(topic string, payload []byte) (any, error) {
	ev, err := Decode(topic, payload)
	if err != nil {
		return nil, err
	}
	if vc, ok := ev.(VoteCast); ok {
		if vc.Vote, err = o.open(vc.Vote); err != nil {
			return nil, err
		}
		return vc, nil
	}
	return ev, nil
}

// DecodeVoteCast decodes a votes message and opens its choice. Errors
// match ErrInvalid (a dead letter: malformed, a clear vote when sealed
// ones are required, or a sealed choice that does not open under the key
// it names) or ErrTallyKey (this process cannot open it: stop, fix the
// key, go on).
func (o *Opener) DecodeVoteCast(payload []byte) (VoteCast, error) {
	vc, err := DecodeVoteCast(payload)
	if err != nil {
		return VoteCast{}, err
	}
	if vc.Vote, err = o.open(vc.Vote); err != nil {
		return VoteCast{}, err
	}
	return vc, nil
}

func (o *Opener) open(v Vote) (Vote, error) {
	if v.sealed == nil {
		if o.RequiresSealed() {
			return Vote{}, invalid("candidate_id", "the election requires sealed votes: send sealed_choice, not candidate_id (contract v2)")
		}
		return v, nil
	}
	if o == nil || o.key == nil {
		return Vote{}, fmt.Errorf("vote %s is sealed to tally key %s and this process has no tally key (--tally-key): %w", v.id, v.sealed.KeyID, ErrTallyKey)
	}
	if v.sealed.KeyID != o.key.pub.id {
		return Vote{}, fmt.Errorf("vote %s is sealed to tally key %s; this process holds key %s: %w", v.id, v.sealed.KeyID, o.key.pub.id, ErrTallyKey)
	}
	aead, err := o.dataKey(v.sealed.Enc)
	if err != nil {
		return Vote{}, err
	}
	plain, err := aead.Open(nil, v.sealed.Nonce, v.sealed.Ciphertext, SealAAD(v.id, v.voterID, v.contestID))
	if err != nil {
		return Vote{}, invalid("sealed_choice", "does not open with the tally key for this vote (tampered, or moved from another vote)")
	}
	n := int(plain[0])
	if n == 0 || n > maxIDLen {
		return Vote{}, invalid("sealed_choice", "holds no candidate_id")
	}
	for _, b := range plain[1+n:] {
		if b != 0 {
			return Vote{}, invalid("sealed_choice", "is padded with other than zeros")
		}
	}
	id := string(plain[1 : 1+n])
	if err := validID("candidate_id", id); err != nil {
		return Vote{}, err
	}
	v.candidateID = id
	v.sealed, v.openedFrom = nil, v.sealed
	return v, nil
}

// dataKey returns the AEAD of a batch's enc, decapsulating it the first
// time only.
func (o *Opener) dataKey(enc []byte) (cipher.AEAD, error) {
	if aead, ok := o.cache.Load(string(enc)); ok {
		return aead.(cipher.AEAD), nil
	}
	r, err := hpke.NewRecipient(enc, o.key.sk, hpke.HKDFSHA256(), hpke.ExportOnly(), []byte(SealInfo))
	if err != nil {
		return nil, invalid("sealed_choice.enc", "is not an encapsulation to the tally key")
	}
	dk, err := r.Export(SealExportContext, dataKeyLen)
	if err != nil {
		return nil, fmt.Errorf("open sealed choice: %w", err)
	}
	aead, err := newGCM(dk)
	if err != nil {
		return nil, fmt.Errorf("open sealed choice: %w", err)
	}
	if o.cached.Add(1) > maxOpenerCache {
		o.cache.Clear()
		o.cached.Store(1)
	}
	o.cache.Store(string(enc), aead)
	return aead, nil
}
