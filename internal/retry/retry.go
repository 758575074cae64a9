// Package retry holds the two small pieces every retry loop of the edge
// needs: a backoff with jitter and a wait that ends with its context.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the wait before retry number attempt (1-based; smaller counts
// as 1): doubling from first up to limit, drawn from [d/2, d] ("equal
// jitter": half fixed, half random), so that the retries of many clients
// spread out but never collapse to zero.
func Backoff(attempt int, first, limit time.Duration) time.Duration {
	d := limit
	attempt = max(attempt, 1)
	if attempt <= 32 {
		if b := first << (attempt - 1); b > 0 && b < limit {
			d = b
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Sleep waits d or until ctx ends; it reports whether to go on (false:
// ctx ended). A wait of zero or less returns at once.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
