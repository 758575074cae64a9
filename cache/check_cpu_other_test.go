//go:build !unix

package cache

import "time"

// cpuTime is unknown here.
func cpuTime() time.Duration { return -1 }
