package dbutil

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SwapLockKey names the advisory lock that makes a replay's swap atomic for
// everyone. Every live transaction, reader or writer, holds it shared from
// its first statement; the swap holds it exclusively while it renames the
// schemas. A transaction therefore resolves every table name either before
// the swap or after it, never some of each, and no writer can apply a batch
// half to the old projection and half to the new.
const SwapLockKey int64 = 0x766f7465_77617463 // "votewatc"

// HoldSwapLock takes the swap lock shared for the rest of tx.
func HoldSwapLock(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1)", SwapLockKey); err != nil {
		return fmt.Errorf("hold swap lock: %w", err)
	}
	return nil
}
