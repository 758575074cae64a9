//go:build unix && !linux

package procgroup

import "syscall"

func setDeathSignal(*syscall.SysProcAttr, syscall.Signal) {}

// Descendants needs /proc; elsewhere only the group is checked.
func Descendants(int) ([]Proc, error) { return nil, nil }

// Survivors reports the group as one entry while any process is in it
// (zombies included: without /proc they cannot be told apart).
func Survivors(pgid int, _ []Proc) []Proc {
	if err := syscall.Kill(-pgid, 0); err == syscall.ESRCH {
		return nil
	}
	return []Proc{{Pid: -pgid, Pgid: pgid, Comm: "process group", State: '?'}}
}
