package cache

import (
	"fmt"
	"time"

	"github.com/delivery-edge/edge/cache/registry"
)

// MaxQueueListing bounds how many jobs one listing of a queue returns.
const MaxQueueListing = 1000

// QueueItem is a job waiting in a queue, as the admin API lists it.
type QueueItem struct {
	Queue   string `json:"queue"`
	Docroot string `json:"docroot,omitempty"`
	File    string `json:"file,omitempty"`
	// Key and Host are what pre-generation renders; Document is the
	// document whose URL a resolve job asks for.
	Key      string `json:"key,omitempty"`
	Host     string `json:"host,omitempty"`
	Document string `json:"document,omitempty"`
	// Op is rename, purge, render or resolve.
	Op string `json:"op"`
	// Priority is the priority the job was queued with; it gains a point
	// for every step of waiting (AgeStep) when the next job is chosen.
	Priority   int       `json:"priority"`
	Queued     time.Time `json:"queued"`
	AgeSeconds float64   `json:"age_seconds"`
}

// ErrUnknownQueue names a queue that is not removal or pregeneration.
var ErrUnknownQueue = fmt.Errorf("unknown queue (want %s or %s)", QueueNameRemoval, QueueNamePregeneration)

// NextJobs returns the next n jobs of a queue (by its admin name) in the
// order the workers take them, aged priorities considered.
func (e *Engine) NextJobs(queue string, n int) ([]QueueItem, error) {
	q, ok := queueKind(queue)
	if !ok {
		return nil, ErrUnknownQueue
	}
	n = max(0, min(n, MaxQueueListing))
	now := time.Now()
	var out []QueueItem
	err := e.reg.View(func(tx *registry.Tx) error {
		jobs, err := tx.NextJobs(q, n, nil, now, e.cfg.get().AgeStep)
		if err != nil {
			return err
		}
		dirs := e.rootDirs(tx)
		out = make([]QueueItem, 0, len(jobs))
		for _, j := range jobs {
			out = append(out, queueItem(q, j, dirs[j.Root], now))
		}
		return nil
	})
	return out, err
}

func queueItem(q registry.QueueKind, j registry.QueuedJob, docroot string, now time.Time) QueueItem {
	queued := time.UnixMilli(j.Enqueued).UTC()
	return QueueItem{Queue: queueName(q), Docroot: docroot, File: j.File, Key: j.Key, Host: j.Host, Document: j.Doc,
		Op: j.Op, Priority: j.Priority, Queued: queued, AgeSeconds: max(0, now.Sub(queued).Seconds())}
}

// OldestQueued is how long the job that has waited longest in a queue
// has waited (0 for an empty queue).
func (e *Engine) OldestQueued(queue string) time.Duration {
	q, ok := queueKind(queue)
	if !ok {
		return 0
	}
	at := e.reg.OldestJob(q)
	if at.IsZero() {
		return 0
	}
	return max(0, time.Since(at))
}
