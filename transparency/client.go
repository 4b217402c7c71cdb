package transparency

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"
)

// TileReader reads the log's tiles served under logURL (".../log/",
// c2sp.org/tlog-tiles) over HTTP.
func TileReader(logURL string, hc *http.Client) (torchwood.TileReader, error) {
	if !strings.HasSuffix(logURL, "/") {
		logURL += "/"
	}
	opts := []torchwood.TileFetcherOption{}
	if hc != nil {
		opts = append(opts, torchwood.WithHTTPClient(hc))
	}
	return torchwood.NewTileFetcher(logURL, opts...)
}

// CheckExtends proves from the log's tiles that the tree newer extends
// the tree older a client saw before: a newer tree with fewer leaves is a
// rollback of the log, refused before any tile is read.
func CheckExtends(ctx context.Context, tr torchwood.TileReader, older, newer tlog.Tree) error {
	if newer.N < older.N {
		return fmt.Errorf("%w: a tree of %d leaves, after one of %d was seen (a rollback)", ErrInconsistent, newer.N, older.N)
	}
	return CheckConsistentTiles(ctx, tr, older, newer)
}

// CheckConsistentTiles proves from the log's tiles that the smaller of a
// and b is a prefix of the larger: tiles are read against the larger
// tree's root (tlog.TileHashReader checks each against it), and the
// consistency proof built from them is checked against both roots. Two
// trees of one size must be equal.
func CheckConsistentTiles(ctx context.Context, tr torchwood.TileReader, a, b tlog.Tree) error {
	if a.N > b.N {
		a, b = b, a
	}
	if a.N == b.N {
		if a.Hash != b.Hash {
			return fmt.Errorf("%w: two trees of %d leaves with roots %s and %s (a fork)", ErrInconsistent, a.N, a.Hash, b.Hash)
		}
		return nil
	}
	if a.N == 0 {
		return nil
	}
	proof, err := tlog.ProveTree(b.N, a.N, torchwood.TileHashReaderWithContext(ctx, b, tr))
	if err != nil {
		return fmt.Errorf("%w: no consistency proof from %d to %d leaves from the tiles: %v", ErrInconsistent, a.N, b.N, err)
	}
	if err := tlog.CheckTree(proof, b.N, b.Hash, a.N, a.Hash); err != nil {
		return fmt.Errorf("%w: from %d to %d leaves: %v", ErrInconsistent, a.N, b.N, err)
	}
	return nil
}

// StateFile is where a client keeps the newest checkpoint of origin it
// has seen, under dir.
func StateFile(dir, origin string) string {
	return filepath.Join(dir, strings.NewReplacer("/", "_", "\\", "_", ":", "_").Replace(origin)+".checkpoint")
}

// SavedCheckpoint reads the checkpoint saved at path, verified with vkey;
// ok is false when there is none.
func SavedCheckpoint(path, vkey string) (Checkpoint, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("read the saved checkpoint: %w", err)
	}
	c, err := Open(b, vkey)
	if err != nil {
		return c, false, fmt.Errorf("the saved checkpoint %s: %w", path, err)
	}
	return c, true, nil
}

// SaveCheckpoint writes the signed checkpoint to path, through a
// temporary file so a crash leaves the old one whole.
func SaveCheckpoint(path string, signed []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save the checkpoint: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, signed, 0o600); err != nil {
		return fmt.Errorf("save the checkpoint: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save the checkpoint: %w", err)
	}
	return nil
}

// ReadEntries reads every entry of tree through client (torchwood's tiles
// client, which checks each tile against the tree's root), handing fn
// each in order. Client.Entries may stop before the tree's end rather
// than fetch a partial entry bundle; ReadEntries resumes it until the
// whole tree is read, and fails when a pass makes no progress.
func ReadEntries(ctx context.Context, client *torchwood.Client, tree tlog.Tree, fn func(index int64, entry []byte) error) error {
	var n int64
	for n < tree.N {
		before := n
		for i, entry := range client.Entries(ctx, tree, n) {
			if i != n {
				return fmt.Errorf("entry %d after %d", i, n)
			}
			if err := fn(i, entry); err != nil {
				return err
			}
			n++
		}
		if err := client.Err(); err != nil {
			return fmt.Errorf("read entry %d of %d through the tiles: %w", n, tree.N, err)
		}
		if n == before {
			return fmt.Errorf("read %d of %d entries through the tiles: no more served", n, tree.N)
		}
	}
	return nil
}
