//go:build unix

package procgroup

import "fmt"

// Proc is one process as the kernel lists it.
type Proc struct {
	Pid, PPid, Pgid int
	// Start is the start time (clock ticks since boot on Linux); with Pid
	// it names a process even after its pid has been reused.
	Start uint64
	State byte // 'R', 'S', 'D', 'Z', ...
	Comm  string
}

func (n Proc) String() string {
	return fmt.Sprintf("pid %d (%s) ppid %d pgid %d state %c", n.Pid, n.Comm, n.PPid, n.Pgid, n.State)
}
