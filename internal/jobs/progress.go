package jobs

import (
	"slices"
	"time"
)

// What a job reports: its snapshot for clients, and the Progress its work
// writes to.

// Snapshot is a job as a client sees it.
type Snapshot struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	State string `json:"state"`
	// Phase names the step a job of several steps is at.
	Phase    string     `json:"phase,omitempty"`
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished,omitempty"`
	// Done of Total units of work (Total 0: not known yet); Rate is Done
	// per second since the start.
	Done  int64   `json:"done"`
	Total int64   `json:"total"`
	Rate  float64 `json:"rate"`
	// Errors are the first errors of the work (at most Config.MaxErrors);
	// ErrorCount counts them all.
	Errors     []string `json:"errors,omitempty"`
	ErrorCount int64    `json:"error_count"`
	// Error is why a failed job failed.
	Error string `json:"error,omitempty"`
	// Result is what the work reported at its end (kind-specific).
	Result any `json:"result,omitempty"`
}

func (j *job) snapshot() Snapshot {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := Snapshot{ID: j.id, Kind: j.spec.Kind, State: j.state, Phase: j.phase, Started: j.started, Done: j.doneN,
		Total: j.total, Errors: slices.Clone(j.errs), ErrorCount: j.errCount, Error: j.failure, Result: j.result}
	end := j.now()
	if j.state != StateRunning {
		end = j.finished
		f := j.finished
		s.Finished = &f
	}
	if secs := end.Sub(j.started).Seconds(); secs > 0 {
		s.Rate = float64(j.doneN) / secs
	}
	return s
}

// Progress is how a job's work reports what it did.
type Progress struct{ j *job }

// SetTotal sets the units of work to do.
func (p *Progress) SetTotal(n int64) {
	p.j.mu.Lock()
	p.j.total = n
	p.j.mu.Unlock()
}

// Add counts units of work done.
func (p *Progress) Add(n int64) {
	p.j.mu.Lock()
	p.j.doneN += n
	p.j.mu.Unlock()
}

// SetPhase names the step the work is at and starts its count again
// (done and total 0).
func (p *Progress) SetPhase(name string) {
	p.j.mu.Lock()
	p.j.phase, p.j.doneN, p.j.total = name, 0, 0
	p.j.mu.Unlock()
}

// Error records an error of the work that does not end it.
func (p *Progress) Error(err error) {
	j := p.j
	j.mu.Lock()
	j.errCount++
	full := len(j.errs) >= j.maxErrors
	first := full && !j.errFull
	if full {
		j.errFull = true
	} else {
		j.errs = append(j.errs, j.cut(err.Error()))
	}
	j.mu.Unlock()
	if first {
		j.onLimit(LimitErrors)
	}
}

// SetResult sets what the job reports at its end (it must not be changed
// afterwards: snapshots share it).
func (p *Progress) SetResult(v any) {
	p.j.mu.Lock()
	p.j.result = v
	p.j.mu.Unlock()
}

// ID is the job's id.
func (p *Progress) ID() string { return p.j.id }
