// Package wait holds the one polling loop tests use to wait on a
// condition, with a deadline, instead of sleeping for a guessed time
// (issue 22 §6). It imports nothing of votewatch, so every package's
// tests can use it, the infra packages' internal tests included (package
// testutil imports infra/kafka, and so cannot serve those).
package wait

import (
	"testing"
	"time"
)

// Interval is how long Until and For pause between two looks at a
// condition: short against the deadlines tests give, long enough not to
// spin on a loaded machine.
const Interval = 50 * time.Millisecond

// Until calls cond until it returns true, and reports whether it did
// before timeout passed. cond is called at least once. Until is for a
// test that asserts the condition may stay false; For fails the test
// instead.
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		// The poll's pause, the only one: what is awaited is cond.
		time.Sleep(Interval)
	}
}

// For calls cond until it holds, and fails tb with what and cond's last
// description of the state if timeout passes first. cond is called at
// least once; it runs on the calling goroutine, so it may call tb.Fatal.
func For(tb testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	var last string
	if !Until(timeout, func() bool {
		ok, state := cond()
		last = state
		return ok
	}) {
		tb.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, last)
	}
}
