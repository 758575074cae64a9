package cache

import (
	"errors"
	"time"

	"github.com/delivery-edge/edge/cache/registry"
)

// The operations of the admin API (ops_*.go): what an operator asks of a
// running edge — look at a file, a queue or the dependents of a document;
// purge, announce a deploy, warm, check and repair, rebuild. They take
// the same paths as the edge's own work (the registry's transactions, the
// queues, the store), so they are safe while it serves.

// Progress is how a long operation reports what it did (the admin API's
// jobs implement it).
type Progress interface {
	// SetPhase names the step an operation of several steps is at and
	// starts its count again.
	SetPhase(name string)
	// SetTotal sets the units of work of the step, Add counts those done.
	SetTotal(n int64)
	Add(n int64)
	// Error records an error that does not end the operation.
	Error(err error)
}

// NoProgress is a Progress that reports nothing.
type NoProgress struct{}

func (NoProgress) SetPhase(string) {}
func (NoProgress) SetTotal(int64)  {}
func (NoProgress) Add(int64)       {}
func (NoProgress) Error(error)     {}

// ErrNoRenderer: the docroot has no renderer yet (no config serves it, or
// its root depends on the request and none has come).
var ErrNoRenderer = errors.New("the docroot has no renderer yet (it waits for its first request)")

// The queues by the names the admin API uses.
const (
	QueueNameRemoval       = "removal"
	QueueNamePregeneration = "pregeneration"
)

// queueKind is the registry's queue of an admin queue name.
func queueKind(name string) (registry.QueueKind, bool) {
	switch name {
	case QueueNameRemoval:
		return registry.QueueRemoval, true
	case QueueNamePregeneration:
		return registry.QueuePregen, true
	}
	return 0, false
}

func queueName(q registry.QueueKind) string {
	if q == registry.QueueRemoval {
		return QueueNameRemoval
	}
	return QueueNamePregeneration
}

// msTime is a time in Unix ms for an answer, nil for none (0).
func msTime(ms int64) *time.Time {
	if ms <= 0 {
		return nil
	}
	t := time.UnixMilli(ms).UTC()
	return &t
}

// rootDirs maps the registry's root ids to their docroots.
func (e *Engine) rootDirs(tx *registry.Tx) map[uint16]string {
	dirs := map[uint16]string{}
	_ = tx.Roots(func(d string, id uint16) error {
		dirs[id] = d
		return nil
	})
	return dirs
}
