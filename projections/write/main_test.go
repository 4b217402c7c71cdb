package write_test

import (
	"testing"
	"time"

	"github.com/votewatch/votewatch/internal/testutil"
)

// TestMain stops the private PostgreSQL cluster the tests start.
func TestMain(m *testing.M) { testutil.Main(m) }

// castAt is when the tests' votes are cast (the root package's tests use
// the same time).
var castAt = time.Date(2026, 11, 3, 14, 5, 0, 0, time.UTC)
