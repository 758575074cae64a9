//go:build unix

package cache

import (
	"syscall"
	"time"
)

// cpuTime is the process's user and system CPU time so far (-1: unknown).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
