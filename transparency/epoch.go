package transparency

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// epochHeader versions the epoch record's text.
const epochHeader = "votewatch epoch v1"

// Epoch is one growth of the tree: from From leaves to Size leaves with
// Root, each partition in Ends (ascending) contributing its messages from
// the previous epoch's end up to, not including, Ends[p]. The checkpointer
// appends every epoch to the checkpoints topic after storing it, so the
// log alone says how the tree grew: a replay grows the same epochs and
// must reach the same roots. The record never leaves the operator's log
// (checkpoints carry no per-partition data).
type Epoch struct {
	From, Size int64
	Root       tlog.Hash
	Ends       map[int32]int64
}

// Text is the epoch's record in the checkpoints topic:
//
//	votewatch epoch v1
//	from <size before>
//	size <size after>
//	root <base64>
//	end <partition> <offset after its last leaf>   (ascending)
func (e Epoch) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nfrom %d\nsize %d\nroot %s\n", epochHeader, e.From, e.Size, e.Root)
	ps := make([]int32, 0, len(e.Ends))
	for p := range e.Ends {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	for _, p := range ps {
		fmt.Fprintf(&b, "end %d %d\n", p, e.Ends[p])
	}
	return b.String()
}

// IsEpoch tells an epoch record from a signed checkpoint in the
// checkpoints topic.
func IsEpoch(b []byte) bool { return strings.HasPrefix(string(b), epochHeader+"\n") }

// ParseEpoch reads an epoch record.
func ParseEpoch(text string) (Epoch, error) {
	e := Epoch{Ends: map[int32]int64{}}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 4 || lines[0] != epochHeader {
		return e, errors.New("not a votewatch v1 epoch")
	}
	var root string
	if _, err := fmt.Sscanf(lines[1]+"\n"+lines[2]+"\n"+lines[3], "from %d\nsize %d\nroot %s", &e.From, &e.Size, &root); err != nil {
		return e, fmt.Errorf("epoch header: %w", err)
	}
	var err error
	if e.Root, err = tlog.ParseHash(root); err != nil {
		return e, fmt.Errorf("epoch root: %w", err)
	}
	for _, line := range lines[4:] {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "end" {
			return e, fmt.Errorf("epoch line %q: want end <partition> <offset>", line)
		}
		p, err1 := strconv.ParseInt(f[1], 10, 32)
		o, err2 := strconv.ParseInt(f[2], 10, 64)
		if err := errors.Join(err1, err2); err != nil || p < 0 || o < 0 {
			return e, fmt.Errorf("epoch line %q: want non-negative numbers", line)
		}
		e.Ends[int32(p)] = o
	}
	if e.From < 0 || e.Size <= e.From || len(e.Ends) == 0 {
		return e, fmt.Errorf("epoch from %d to %d over %d partitions: want growth", e.From, e.Size, len(e.Ends))
	}
	if e.Text() != text {
		return e, errors.New("epoch is not in canonical form")
	}
	return e, nil
}
