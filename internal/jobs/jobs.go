// Package jobs runs the long work of the admin API (warming, the online
// check, rebuilding, large purges) in the background: each job has an id,
// reports its progress (done of total, the rate, a bounded list of
// errors) and can be cancelled. Finished jobs are kept for a while, so a
// client that polls finds the outcome; their number is bounded.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// States of a job.
const (
	StateRunning   = "running"
	StateDone      = "done"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// Defaults of a Manager.
const (
	DefaultMaxRunning   = 8
	DefaultKeepFinished = 64
	DefaultKeepFor      = time.Hour
	DefaultMaxErrors    = 100
)

// Names of the bounds, as OnLimit reports them.
const (
	LimitRunning  = "jobs_running"   // a job was refused: too many run
	LimitErrors   = "job_errors"     // a job's error list is full; more are only counted
	LimitFinished = "jobs_finished"  // a finished job was forgotten early to keep the bound
	LimitMessage  = "job_error_size" // an error message was cut
)

// maxMessage bounds one error message kept in a job.
const maxMessage = 512

// Config shapes a Manager.
type Config struct {
	// MaxRunning bounds the jobs running at once (default 8).
	MaxRunning int
	// KeepFinished bounds the finished jobs kept (default 64), KeepFor
	// how long one is kept (default 1h).
	KeepFinished int
	KeepFor      time.Duration
	// MaxErrors bounds the errors kept per job (default 100); more are
	// counted only.
	MaxErrors int
	// OnLimit is called each time a bound is hit, with its name (Limit*);
	// nil: not reported.
	OnLimit func(limit string)
}

func (c Config) withDefaults() Config {
	if c.MaxRunning <= 0 {
		c.MaxRunning = DefaultMaxRunning
	}
	if c.KeepFinished <= 0 {
		c.KeepFinished = DefaultKeepFinished
	}
	if c.KeepFor <= 0 {
		c.KeepFor = DefaultKeepFor
	}
	if c.MaxErrors <= 0 {
		c.MaxErrors = DefaultMaxErrors
	}
	if c.OnLimit == nil {
		c.OnLimit = func(string) {}
	}
	return c
}

// ErrTooMany refuses a job while the most jobs run that may.
var ErrTooMany = errors.New("too many jobs running")

// ConflictError refuses an exclusive job while another exclusive one runs.
type ConflictError struct {
	Running Snapshot // the job in the way
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("a %s job (%s) is running; wait for it or cancel it", e.Running.Kind, e.Running.ID)
}

// Func is the work of a job. It returns when done, failed or when ctx is
// cancelled (then with ctx's error).
type Func func(ctx context.Context, p *Progress) error

// Spec says what a job is.
type Spec struct {
	// Kind names the work ("warm", "check", …).
	Kind string
	// Exclusive jobs never run alongside another exclusive job (work
	// that changes the whole cache, such as a rebuild or a repair).
	Exclusive bool
}

// Manager runs jobs. It is safe for concurrent use.
type Manager struct {
	cfg Config
	now func() time.Time

	mu   sync.Mutex
	jobs map[string]*job
	wg   sync.WaitGroup
}

// New returns a Manager.
func New(cfg Config) *Manager {
	return &Manager{cfg: cfg.withDefaults(), now: time.Now, jobs: map[string]*job{}}
}

type job struct {
	id        string
	spec      Spec
	cancel    context.CancelFunc
	done      chan struct{}
	maxErrors int
	onLimit   func(string)
	now       func() time.Time

	mu        sync.Mutex
	state     string
	phase     string
	started   time.Time
	finished  time.Time
	doneN     int64
	total     int64
	errs      []string
	errCount  int64
	errFull   bool
	failure   string
	result    any
	cancelled bool
}

// Start runs fn as a new job of spec. It refuses with ErrTooMany when
// the most jobs run that may, and with a *ConflictError when spec is
// exclusive and another exclusive job runs.
func (m *Manager) Start(spec Spec, fn Func) (Snapshot, error) {
	m.mu.Lock()
	m.pruneLocked()
	running := 0
	for _, j := range m.jobs {
		if !j.finishedNow() {
			running++
			if spec.Exclusive && j.spec.Exclusive {
				m.mu.Unlock()
				return Snapshot{}, &ConflictError{Running: j.snapshot()}
			}
		}
	}
	if running >= m.cfg.MaxRunning {
		m.mu.Unlock()
		m.cfg.OnLimit(LimitRunning)
		return Snapshot{}, ErrTooMany
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &job{id: newID(), spec: spec, cancel: cancel, done: make(chan struct{}), maxErrors: m.cfg.MaxErrors,
		onLimit: m.cfg.OnLimit, now: m.now, state: StateRunning, started: m.now()}
	m.jobs[j.id] = j
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		defer cancel()
		err := run(ctx, fn, &Progress{j: j})
		j.finish(ctx, err)
	}()
	return j.snapshot(), nil
}

// run calls fn and turns a panic into a failure: a bug in one job must not
// take the edge down.
func run(ctx context.Context, fn Func, p *Progress) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("job panicked: %v", v)
		}
	}()
	return fn(ctx, p)
}

// Get returns a job's snapshot.
func (m *Manager) Get(id string) (Snapshot, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pruneLocked()
	j, ok := m.jobs[id]
	if !ok {
		return Snapshot{}, false
	}
	return j.snapshot(), true
}

// List returns every job known, newest first.
func (m *Manager) List() []Snapshot {
	m.mu.Lock()
	m.pruneLocked()
	out := make([]Snapshot, 0, len(m.jobs))
	for _, j := range m.jobs {
		out = append(out, j.snapshot())
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Snapshot) int { return b.Started.Compare(a.Started) })
	return out
}

// Cancel asks a running job to stop and returns its snapshot; a finished
// job is left as it is.
func (m *Manager) Cancel(id string) (Snapshot, bool) {
	m.mu.Lock()
	j, ok := m.jobs[id]
	m.mu.Unlock()
	if !ok {
		return Snapshot{}, false
	}
	j.mu.Lock()
	if j.state == StateRunning {
		j.cancelled = true
	}
	j.mu.Unlock()
	j.cancel()
	return j.snapshot(), true
}

// Wait waits until a job has finished (or ctx ends) and returns its
// snapshot.
func (m *Manager) Wait(ctx context.Context, id string) (Snapshot, error) {
	m.mu.Lock()
	j, ok := m.jobs[id]
	m.mu.Unlock()
	if !ok {
		return Snapshot{}, fmt.Errorf("no job %q", id)
	}
	select {
	case <-j.done:
		return j.snapshot(), nil
	case <-ctx.Done():
		return j.snapshot(), ctx.Err()
	}
}

// Shutdown cancels every running job and waits for them.
func (m *Manager) Shutdown() {
	m.mu.Lock()
	for _, j := range m.jobs {
		j.cancel()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// pruneLocked forgets finished jobs older than KeepFor, and the oldest
// finished ones beyond KeepFinished; called with m.mu held.
func (m *Manager) pruneLocked() {
	now := m.now()
	var finished []*job
	for id, j := range m.jobs {
		if !j.finishedNow() {
			continue
		}
		if now.Sub(j.finishedAt()) > m.cfg.KeepFor {
			delete(m.jobs, id)
			continue
		}
		finished = append(finished, j)
	}
	if over := len(finished) - m.cfg.KeepFinished; over > 0 {
		slices.SortFunc(finished, func(a, b *job) int { return a.finishedAt().Compare(b.finishedAt()) })
		for _, j := range finished[:over] {
			delete(m.jobs, j.id)
		}
		m.cfg.OnLimit(LimitFinished)
	}
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (j *job) finishedNow() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.state != StateRunning
}

func (j *job) finishedAt() time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.finished
}

// finish records how fn ended.
func (j *job) finish(ctx context.Context, err error) {
	j.mu.Lock()
	j.finished = j.now()
	switch {
	case err == nil:
		j.state = StateDone
	case j.cancelled && (errors.Is(err, context.Canceled) || ctx.Err() != nil):
		j.state = StateCancelled
	default:
		j.state, j.failure = StateFailed, j.cut(err.Error())
	}
	j.mu.Unlock()
	close(j.done)
}

// cut bounds a message kept in the job; called with j.mu held (onLimit
// must not take it).
func (j *job) cut(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	j.onLimit(LimitMessage)
	return s[:maxMessage] + "…"
}
