package e2e

import (
	"testing"
	"time"
)

// waitFor polls cond every 20 ms until it holds, and fails the test when
// it still does not hold after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	if !eventually(limit, cond) {
		t.Fatalf("waited %v for %s", limit, what)
	}
}

// eventually polls cond every 20 ms until it holds (true) or limit has
// passed (false).
func eventually(limit time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
