//go:build linux

package procgroup

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startShell runs script with sh in its own group and waits until it has
// at least want children (the script's background jobs).
func startShell(t *testing.T, script string, want int) (*Process, []Proc) {
	t.Helper()
	p, err := Start(exec.Command("sh", "-c", script), syscall.SIGTERM)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if kids := p.Observe(); len(kids) >= want {
			return p, kids
		}
	}
	t.Fatalf("%q: fewer than %d children after 10s", script, want)
	return nil, nil
}

func alive(n Proc) bool {
	for _, s := range Survivors(-1, []Proc{n}) {
		if s.Pid == n.Pid {
			return true
		}
	}
	return false
}

func TestStartMakesOwnGroup(t *testing.T) {
	p, kids := startShell(t, "sleep 300 & wait", 1)
	if kids[0].Pgid != p.Pid() {
		t.Fatalf("child %v: pgid %d, want the leader's pid %d", kids[0], kids[0].Pgid, p.Pid())
	}
	if own := syscall.Getpgrp(); own == p.Pid() {
		t.Fatalf("the test runs in the server's group %d", own)
	}
}

// A shell dies of SIGTERM but its background jobs do not: the children
// outlive their leader, as nginx's workers did when only the master was
// killed. Stop must find and kill them, and say so.
func TestStopKillsChildrenThatOutliveTheLeader(t *testing.T) {
	p, kids := startShell(t, "sleep 300 & sleep 300 & wait", 2)
	err := p.Stop(5 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "2 process(es) outlived the leader") {
		t.Fatalf("Stop: %v, want a report of the 2 orphaned sleeps", err)
	}
	for _, k := range kids {
		if alive(k) {
			t.Errorf("%v survived Stop", k)
		}
	}
	if left := p.Survivors(); len(left) > 0 {
		t.Errorf("group %d not empty after Stop: %v", p.Pid(), left)
	}
}

// A leader that ignores its stop signal is killed, group and all, once the
// grace period is over.
func TestStopEscalatesToSIGKILL(t *testing.T) {
	p, kids := startShell(t, `trap "" TERM; sleep 300 & wait; sleep 300`, 1)
	began := time.Now()
	if err := p.Stop(300 * time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if took := time.Since(began); took > 6*time.Second {
		t.Errorf("Stop took %v with a grace of 300ms", took)
	}
	if alive(kids[0]) {
		t.Errorf("%v survived", kids[0])
	}
	if left := p.Survivors(); len(left) > 0 {
		t.Errorf("group not empty: %v", left)
	}
}

func TestGracefulStopIsQuiet(t *testing.T) {
	p, err := Start(exec.Command("sleep", "300"), syscall.SIGTERM)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := p.Stop(5 * time.Second); err != nil { // stopping twice only checks
		t.Fatalf("second Stop: %v", err)
	}
}

// Kill is a crash of the leader, but the group goes with it.
func TestKillTakesTheGroup(t *testing.T) {
	p, kids := startShell(t, "sleep 300 & sleep 300 & wait", 2)
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if p.Err() == nil || !strings.Contains(p.Err().Error(), "killed") {
		t.Errorf("leader exit: %v, want killed", p.Err())
	}
	for _, k := range kids {
		if alive(k) {
			t.Errorf("%v survived Kill", k)
		}
	}
}

// When the process that started a server dies without cleaning up (a
// test binary killed by its timeout), the server still gets its stop
// signal. The test binary plays that parent in a child process.
func TestParentDeathStopsTheServer(t *testing.T) {
	if os.Getenv("PROCGROUP_PARENT") != "" {
		p, err := Start(exec.Command("sleep", "300"), syscall.SIGTERM)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		fmt.Println("PID", p.Pid())
		os.Exit(0) // no Stop: the parent just dies
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestParentDeathStopsTheServer$")
	cmd.Env = append(os.Environ(), "PROCGROUP_PARENT=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "PID" {
			pid, _ = strconv.Atoi(f[1])
		}
	}
	_ = cmd.Wait()
	if pid == 0 {
		t.Fatal("the parent printed no pid")
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if len(Survivors(pid, nil)) == 0 {
			return
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	t.Fatalf("server %d outlived the process that started it", pid)
}

func TestParseStat(t *testing.T) {
	line := "4242 (a) b (c) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1234 56 18446744073709551615"
	n, ok := parseStat([]byte(line))
	if !ok || n.Pid != 4242 || n.Comm != "a) b (c" || n.State != 'S' || n.PPid != 1 || n.Pgid != 4240 || n.Start != 987654 {
		t.Fatalf("parseStat: %+v %v", n, ok)
	}
	for _, bad := range []string{"", "4242", "x (a) S 1 2", "4242 (a) S 1 2 3"} {
		if _, ok := parseStat([]byte(bad)); ok {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
}
