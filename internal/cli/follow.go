package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/delivery-edge/edge/internal/jobs"
)

// JobAPI reaches a job on the admin endpoint.
type JobAPI interface {
	// Get returns the job's snapshot.
	Get(id string) (jobs.Snapshot, error)
	// Cancel cancels the job and returns its snapshot.
	Cancel(id string) (jobs.Snapshot, error)
}

// ErrCancelled is returned by Follow when ctx ended and the job was
// cancelled on the edge.
var ErrCancelled = errors.New("cancelled")

// cancelWait bounds the wait for a cancelled job to stop on the edge
// (the work stops at its next check of the cancellation).
const cancelWait = 10 * time.Second

// maxPollErrors is how many polls in a row may fail (the edge reloading,
// a dropped connection) before Follow gives up.
const maxPollErrors = 5

// Follow polls the job every `every` until it has finished, showing its
// progress on d. When ctx ends first (Ctrl-C), the job is cancelled on
// the edge and Follow returns its last snapshot with ErrCancelled.
func Follow(ctx context.Context, api JobAPI, start jobs.Snapshot, every time.Duration, d Display) (jobs.Snapshot, error) {
	s := start
	defer d.Finish()
	failures := 0
	t := time.NewTicker(every)
	defer t.Stop()
	for s.State == jobs.StateRunning || s.State == "" {
		d.Update(s)
		select {
		case <-ctx.Done():
			c, err := api.Cancel(s.ID)
			if err != nil {
				return s, fmt.Errorf("cancelling job %s: %w", s.ID, err)
			}
			return stopped(api, c, every), ErrCancelled
		case <-t.C:
		}
		next, err := api.Get(s.ID)
		if err != nil {
			failures++
			if failures >= maxPollErrors {
				return s, fmt.Errorf("following job %s: %w", s.ID, err)
			}
			continue
		}
		failures = 0
		s = next
	}
	d.Update(s)
	return s, nil
}

// stopped waits (bounded) until a cancelled job has stopped and returns
// its last snapshot.
func stopped(api JobAPI, s jobs.Snapshot, every time.Duration) jobs.Snapshot {
	deadline := time.Now().Add(cancelWait)
	for s.State == jobs.StateRunning && time.Now().Before(deadline) {
		time.Sleep(every)
		next, err := api.Get(s.ID)
		if err != nil {
			break
		}
		s = next
	}
	return s
}
