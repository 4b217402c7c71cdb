package main

import (
	"testing"

	"github.com/votewatch/votewatch/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }
