package procgroup

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

func setDeathSignal(a *syscall.SysProcAttr, sig syscall.Signal) { a.Pdeathsig = sig }

// Scan lists every process in /proc. Processes that vanish while it reads
// are left out.
func Scan() ([]Proc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("procgroup: %w", err)
	}
	var out []Proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile, or not ours to read
		}
		if n, ok := parseStat(b); ok {
			out = append(out, n)
		}
	}
	return out, nil
}

// parseStat reads /proc/<pid>/stat: "pid (comm) state ppid pgrp session
// tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
// priority nice threads itrealvalue starttime ...". comm may hold spaces
// and parentheses, so the fields after it are counted from the last ')'.
func parseStat(b []byte) (Proc, bool) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return Proc{}, false
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return Proc{}, false
	}
	f := bytes.Fields(b[end+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return Proc{}, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgid, err2 := strconv.Atoi(string(f[2]))
	start, err3 := strconv.ParseUint(string(f[19]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Proc{}, false
	}
	return Proc{Pid: pid, PPid: ppid, Pgid: pgid, Start: start, State: f[0][0], Comm: string(b[open+1 : end])}, true
}

// Descendants lists the processes whose parent chain leads to pid.
func Descendants(pid int) ([]Proc, error) {
	all, err := Scan()
	if err != nil {
		return nil, err
	}
	children := map[int][]Proc{}
	for _, n := range all {
		children[n.PPid] = append(children[n.PPid], n)
	}
	var out []Proc
	queue := []int{pid}
	for len(queue) > 0 && len(out) <= len(all) { // bounded: a pid appears once in a snapshot
		next := queue[0]
		queue = queue[1:]
		for _, c := range children[next] {
			out = append(out, c)
			queue = append(queue, c.Pid)
		}
	}
	return out, nil
}

// Survivors lists the live (not zombie) processes that are in process
// group pgid or are one of seen (same pid and start time).
func Survivors(pgid int, seen []Proc) []Proc {
	all, err := Scan()
	if err != nil {
		return []Proc{{Pid: pgid, Pgid: pgid, Comm: err.Error(), State: '?'}}
	}
	var out []Proc
	for _, n := range all {
		if n.State == 'Z' || n.State == 'X' {
			continue
		}
		if n.Pgid == pgid || containsProc(seen, n) {
			out = append(out, n)
		}
	}
	return out
}
