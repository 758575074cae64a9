//go:build unix

// Package procgroup runs the servers that tests and benchmarks start
// (the Caddy edge, nginx, varnishd, versitygw, helper servers) each in its
// own process group, and stops them so that nothing outlives the run: a
// graceful signal to the leader, a bounded wait, then SIGKILL to the whole
// group, and a check that the group and every process seen below the
// leader are gone.
//
// Killing only the leader is not enough: nginx's workers and varnishd's
// child survive their master, keep its listening sockets and confuse the
// next run.
package procgroup

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// killWait bounds the wait for processes to vanish after SIGKILL; only a
// process stuck in the kernel takes longer.
const killWait = 5 * time.Second

// Process is a command running as the leader of its own process group
// (its pid is the group id).
type Process struct {
	// Name is used in errors ("nginx", "varnishd", ...).
	Name string

	stopSig syscall.Signal
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error

	mu   sync.Mutex
	seen []Proc // descendants observed while it ran
}

// Start starts cmd as the leader of a new process group. stop is the
// signal that asks it to shut down gracefully (SIGTERM for most servers,
// SIGQUIT for nginx). On Linux the leader also gets stop when the process
// that started it dies, so a test binary killed by a timeout or ^C (which
// no longer reaches the group from the terminal) still takes its servers
// down. The caller sets Stdout, Stderr, Env and Dir on cmd beforehand.
func Start(cmd *exec.Cmd, stop syscall.Signal) (*Process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pgid = 0
	setDeathSignal(cmd.SysProcAttr, stop)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Name: baseName(cmd.Path), stopSig: stop, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func baseName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// Pid is the leader's pid, which is also the process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the leader has exited and been waited for.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the leader's exit status; only meaningful after Done.
func (p *Process) Err() error { return p.waitErr }

// Observe records the processes below the leader as they are now, so that
// a later check finds them even if they leave the group or are reparented
// when the leader dies. Stop and Kill call it; a caller can call it once
// the server is up so that short-lived helpers are seen too.
func (p *Process) Observe() []Proc {
	procs, err := Descendants(p.Pid())
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		for _, n := range procs {
			if !containsProc(p.seen, n) {
				p.seen = append(p.seen, n)
			}
		}
	}
	return append([]Proc(nil), p.seen...)
}

func containsProc(list []Proc, n Proc) bool {
	for _, o := range list {
		if o.Pid == n.Pid && o.Start == n.Start {
			return true
		}
	}
	return false
}

// Stop asks the leader to shut down with its stop signal and waits up to
// grace for it; then the group and the processes seen below the leader
// get up to grace (at most 2 s) to follow. Whatever is still there is
// killed with SIGKILL. Stop returns an error naming what had to be
// killed after the leader exited or what survived even SIGKILL; nil means
// the server went away by itself. Stopping a stopped process only checks.
func (p *Process) Stop(grace time.Duration) error {
	p.Observe()
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(p.Pid(), p.stopSig)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(killWait):
				return fmt.Errorf("%s (pid %d) did not exit %v after SIGKILL", p.Name, p.Pid(), killWait)
			}
		}
	}
	return p.reap(min(grace, 2*time.Second))
}

// Kill sends SIGKILL to the leader (a crash, as a test means it), then to
// everything left in its group, waits for the leader and checks that
// nothing is left.
func (p *Process) Kill() error {
	p.Observe()
	_ = syscall.Kill(p.Pid(), syscall.SIGKILL)
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(killWait):
		return fmt.Errorf("%s (pid %d) did not exit %v after SIGKILL", p.Name, p.Pid(), killWait)
	}
	return p.reap(2 * time.Second) // SIGKILL is delivered, not instant
}

// reap waits up to patience for the group and the observed processes to
// vanish, SIGKILLs what is left and reports it.
func (p *Process) reap(patience time.Duration) error {
	left := p.waitGone(patience)
	if len(left) == 0 {
		return nil
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	for _, n := range left {
		_ = syscall.Kill(n.Pid, syscall.SIGKILL)
	}
	after := p.waitGone(killWait)
	msg := fmt.Sprintf("%s (pid %d): %d process(es) outlived the leader and were killed: %s", p.Name, p.Pid(),
		len(left), describe(left))
	if len(after) > 0 {
		msg += "; still alive after SIGKILL: " + describe(after)
	}
	return errors.New(msg)
}

// waitGone polls until Survivors is empty or patience has passed and
// returns what is left.
func (p *Process) waitGone(patience time.Duration) []Proc {
	deadline := time.Now().Add(patience)
	for {
		left := p.Survivors()
		if len(left) == 0 || !time.Now().Before(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Survivors lists the live processes (zombies do not count: they hold no
// ports or files) that are in the leader's group or were observed below
// the leader, the leader itself included while it runs.
func (p *Process) Survivors() []Proc {
	p.mu.Lock()
	seen := append([]Proc(nil), p.seen...)
	p.mu.Unlock()
	return Survivors(p.Pid(), seen)
}

func describe(ps []Proc) string {
	parts := make([]string, len(ps))
	for i, n := range ps {
		parts[i] = n.String()
	}
	return strings.Join(parts, ", ")
}
