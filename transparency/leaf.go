// Package transparency keeps the election's transparency log: one RFC 6962
// Merkle tree (golang.org/x/mod/sumdb/tlog) per election, one leaf per
// message of the votes topic over each partition's decided prefix, grown
// in epochs (each epoch appends every partition's newly decided messages,
// partitions ascending, and is recorded in the log so a replay grows the
// same tree). Checkpoints are C2SP tlog-checkpoints signed as C2SP notes
// (golang.org/x/mod/sumdb/note), cosigned by witnesses
// (c2sp.org/tlog-witness, c2sp.org/tlog-cosignature), and the tree is
// served as C2SP tlog-tiles. An observer who saved any checkpoint can
// detect a rewritten history; a voter holding a receipt gets an inclusion
// proof of the ballot's leaf.
package transparency

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/domain"
)

// Leaf kinds: every message of the votes topic has a leaf.
const (
	KindVote       = "vote"
	KindSchedule   = "schedule"
	KindDeadLetter = "dead_letter"
	// KindStation is a station's opening or close marker (domain
	// StationOpened, StationClosed).
	KindStation = "station"
)

// Decision statuses of a vote.
const (
	Counted  = "counted"
	Rejected = "rejected"
	Pending  = "pending"
	// Repeat is a later copy of a vote_id already in a tree: the first
	// copy's leaf carries the decision.
	Repeat = "repeat"
	// Misrouted is a vote off its voter's partition (domain rule 0),
	// refused by position.
	Misrouted = "misrouted"
	// NoChoice is the choice line of a Repeat or Misrouted leaf, which
	// commits to none.
	NoChoice = "none"
)

// leafHeader versions the leaf text: a verifier refuses what it does not
// know instead of hashing it into a different meaning.
const leafHeader = "votewatch leaf v2"

// Secret salts the choice commitments, so that a published leaf does not
// betray its choice to whoever holds its vote_id: with a bare choice anyone
// could hash each of the few candidates and compare. Auditors holding the
// secret and the log can recompute every leaf.
type Secret []byte

// secretSize is the secret's length in bytes.
const secretSize = 32

// LoadSecret reads a secret written by WriteSecret (hex, one line).
func LoadSecret(path string) (Secret, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("the election secret %s: %w", path, ErrNoKey)
	}
	if err := checkPrivate(path); err != nil {
		return nil, fmt.Errorf("the election secret: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the election secret: %w", err)
	}
	s, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(s) < secretSize {
		return nil, fmt.Errorf("election secret %s: want %d hex-encoded bytes", path, secretSize)
	}
	return s, nil
}

// LoadOrCreateSecret reads the secret at path, creating it (mode 0600)
// first if there is none: the demo keeps one with its data.
func LoadOrCreateSecret(path string) (Secret, error) {
	if _, err := os.Stat(path); err == nil {
		return LoadSecret(path)
	}
	s := make([]byte, secretSize)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("make an election secret: %w", err)
	}
	if err := writePrivate(path, []byte(hex.EncodeToString(s)+"\n")); err != nil {
		return nil, fmt.Errorf("write the election secret: %w", err)
	}
	return s, nil
}

// checkPrivate refuses a key or secret file others may read: whoever
// reads the secret reads every choice in the trees, whoever reads the key
// signs checkpoints.
func checkPrivate(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is readable by others (mode %v): chmod 600 it", path, st.Mode().Perm())
	}
	return nil
}

func writePrivate(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s Secret) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, s)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// Commit is a vote's choice commitment: SHA-256 of the contest, the
// candidate and HMAC(secret, vote_id). Without the secret it cannot be
// matched against a guessed candidate.
func (s Secret) Commit(voteID, contest, candidate string) string {
	h := sha256.New()
	h.Write([]byte("votewatch choice v1\x00" + contest + "\x00" + candidate + "\x00"))
	h.Write(s.mac("vote", voteID))
	return hex.EncodeToString(h.Sum(nil))
}

// eventMAC commits to a message's exact bytes, so a rewritten message
// changes its leaf even where the fields a leaf names stay the same.
func (s Secret) eventMAC(payload []byte) string {
	return hex.EncodeToString(s.mac("event", string(payload)))
}

// Decision is what a projection, or the rule's specification, made of one
// vote: Status is Counted (Region the voter's), Rejected (Reason why),
// Pending, or "" when the vote is not applied yet.
type Decision struct {
	Status string
	Reason string
	Region string
}

// Leaf is one message of the votes topic as the tree holds it.
type Leaf struct {
	Partition int32
	Offset    int64
	Kind      string
	// Vote, Decision and Choice are a vote's; empty otherwise. Vote is
	// VoteRef of the vote_id: a voter holding the receipt finds the leaf,
	// and the published leaves do not list the vote_ids.
	Vote     string
	Decision string
	Choice   string
	// Event is the HMAC of the message's bytes.
	Event string
}

// Body is the leaf's text, the bytes its hash covers (tlog.RecordHash).
func (l Leaf) Body() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%s %d %d\nkind %s\n", leafHeader, domain.TopicVotes, l.Partition, l.Offset, l.Kind)
	if l.Kind == KindVote {
		fmt.Fprintf(&b, "vote %s\ndecision %s\nchoice %s\n", l.Vote, l.Decision, l.Choice)
	}
	fmt.Fprintf(&b, "event %s\n", l.Event)
	return b.String()
}

// VoteRef is how a leaf names a vote: the hex SHA-256 of its vote_id
// (printf %s "$vote_id" | sha256sum).
func VoteRef(voteID string) string {
	h := sha256.Sum256([]byte(voteID))
	return hex.EncodeToString(h[:])
}

// Hash is the leaf's RFC 6962 record hash.
func (l Leaf) Hash() tlog.Hash { return tlog.RecordHash([]byte(l.Body())) }

// ParseLeaf reads a leaf's body, as a voter's proof carries it.
func ParseLeaf(body string) (Leaf, error) {
	var l Leaf
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(lines) < 4 || lines[0] != leafHeader {
		return l, errors.New("not a votewatch v2 leaf")
	}
	var topic string
	if _, err := fmt.Sscanf(lines[1], "%s %d %d", &topic, &l.Partition, &l.Offset); err != nil || topic != domain.TopicVotes {
		return l, fmt.Errorf("leaf position %q: want %q, a partition and an offset", lines[1], domain.TopicVotes)
	}
	fields := map[string]string{}
	for _, line := range lines[2:] {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			return l, fmt.Errorf("leaf line %q: want a name and a value", line)
		}
		fields[k] = v
	}
	l.Kind, l.Vote, l.Decision, l.Choice, l.Event = fields["kind"], fields["vote"], fields["decision"], fields["choice"], fields["event"]
	if l.Body() != body {
		return l, errors.New("leaf is not in canonical form")
	}
	return l, nil
}

// Tally is one summed line of what leaves decide: counted votes per
// contest, region and candidate (Kind Counted), or rejected votes per
// contest and reason (Kind Rejected, Choice the reason, Region empty).
type Tally struct {
	Kind, Contest, Region, Choice string
}

// Entry is one message of the votes topic with what was made of it: Event
// is the decoded domain.VoteCast, or a control event (domain
// ElectionScheduled, StationOpened, StationClosed), nil for a dead letter.
type Entry struct {
	Partition int32
	Offset    int64
	Payload   []byte
	Event     any
}

// NewLeaf builds the leaf of e given its vote's decision d (ignored for
// other messages), and the tally it adds (ok false when it adds none).
// The decision must be final: Counted or Rejected.
func (s Secret) NewLeaf(e Entry, d Decision) (Leaf, Tally, bool) {
	l := Leaf{Partition: e.Partition, Offset: e.Offset, Event: s.eventMAC(e.Payload)}
	switch ev := e.Event.(type) {
	case domain.VoteCast:
		v := ev.Vote
		l.Kind, l.Vote = KindVote, VoteRef(v.ID())
		switch d.Status {
		case Repeat, Misrouted:
			// No commitment: a copy carrying a guessed candidate would
			// otherwise be checked against the first copy's leaf by
			// anyone who can produce to the topic.
			l.Decision, l.Choice = d.Status, NoChoice
			return l, Tally{}, false
		case Rejected:
			l.Choice = s.Commit(v.ID(), v.ContestID(), v.CandidateID())
			l.Decision = Rejected + " " + d.Reason
			return l, Tally{Kind: Rejected, Contest: v.ContestID(), Choice: d.Reason}, true
		}
		l.Choice = s.Commit(v.ID(), v.ContestID(), v.CandidateID())
		l.Decision = Counted
		return l, Tally{Kind: Counted, Contest: v.ContestID(), Region: d.Region, Choice: v.CandidateID()}, true
	case domain.ElectionScheduled:
		l.Kind = KindSchedule
	case domain.StationOpened, domain.StationClosed:
		l.Kind = KindStation
	default:
		l.Kind = KindDeadLetter
	}
	return l, Tally{}, false
}
