package write_test

import (
	"testing"

	"github.com/votewatch/votewatch/internal/testutil"
)

// TestMain stops the private PostgreSQL cluster the tests start.
func TestMain(m *testing.M) { testutil.Main(m) }
