package cache

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/delivery-edge/edge/cache/registry"
)

// The invalidation log keeps the last invalidations the engine applied —
// what changed, how many files it touched, which queue they went to — for
// the status page. It is in memory only (a restart starts it empty) and
// holds the newest InvalidationLogSize; Total counts them all.
//
// A record is made in the registry transaction that queues the jobs and
// kept only once that transaction has committed, so the log never shows an
// invalidation that did not take effect.

// InvalidationLogSize is how many invalidations the log keeps.
const InvalidationLogSize = 50

// Sources of an invalidation. A content change applied from an event
// stream is recorded under the stream's position name ("staging").
const (
	SourceChange   = "change"   // ApplyChanges without a stream position
	SourceFlush    = "flush"    // an explicit flush (cache servlet, or forwarded by a peer)
	SourceSync     = "sync"     // a flush learnt from a peer's flush log
	SourceExpiry   = "expiry"   // files whose max-age or Expires passed
	SourceResource = "resource" // a resource (template) rendered with a new hash
)

// KindExpiry is the Kind of an expiry record (the other kinds are the
// dependency kinds: document, node, yellow, key, resource).
const KindExpiry = "expiry"

// Invalidation is one applied change, flush, expiry batch or resource
// change.
type Invalidation struct {
	// Time is when it was applied.
	Time time.Time
	// Source is one of the Source* names or a stream's position name.
	Source string
	// Kind is what changed: document, node, yellow, key, resource, or
	// expiry.
	Kind string
	// ID names it: the document ID, node, cache key or resource name;
	// empty for expiry.
	ID string
	// Detail adds what tells it apart: the state of a content change, the
	// group of a flush, the peer of a synced flush, the new hash of a
	// resource.
	Detail string
	// Files is how many files it invalidated.
	Files int
	// Removal and Pregeneration are the jobs it put into each queue. A
	// file whose content is gone goes to removal (a purge) even with
	// pre-generation on.
	Removal, Pregeneration int
}

// invalidationLog is the ring of the last invalidations, and the counts of
// queued jobs a record takes its per-queue figures from.
type invalidationLog struct {
	// Jobs queued since the start. The registry runs one write
	// transaction at a time, so the difference between a mark and a note
	// in the same transaction is the jobs of that record alone.
	removal, pregen atomic.Int64

	mu    sync.Mutex
	ring  [InvalidationLogSize]Invalidation
	next  int   // slot of the next record
	total int64 // records kept since the start
}

// queueMark is the count of queued jobs when an invalidation began.
type queueMark struct{ removal, pregen int64 }

// mark is taken before an invalidation queues its jobs.
func (l *invalidationLog) mark() queueMark {
	return queueMark{l.removal.Load(), l.pregen.Load()}
}

// queued counts one job put into queue q (or, for a purge already waiting,
// kept there).
func (l *invalidationLog) queued(q registry.QueueKind) {
	if q == registry.QueuePregen {
		l.pregen.Add(1)
	} else {
		l.removal.Add(1)
	}
}

// note records inv, with the jobs queued since m, once tx has committed.
// It is called inside tx after the invalidation's jobs are queued; where
// they are queued in a return statement, `defer l.note(tx, l.mark(), …)`
// takes the mark before and notes after (a transaction that fails is
// rolled back, and its note dropped).
func (l *invalidationLog) note(tx *registry.Tx, m queueMark, inv Invalidation) {
	inv.Time = time.Now()
	inv.Removal = int(l.removal.Load() - m.removal)
	inv.Pregeneration = int(l.pregen.Load() - m.pregen)
	tx.OnCommit(func() { l.add(inv) })
}

func (l *invalidationLog) add(inv Invalidation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring[l.next] = inv
	l.next = (l.next + 1) % len(l.ring)
	l.total++
}

// list returns the kept invalidations, newest first, and how many were
// recorded since the start.
func (l *invalidationLog) list() ([]Invalidation, int64) {
	l.mu.Lock()
	n := int(min(l.total, int64(len(l.ring))))
	out := make([]Invalidation, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, l.ring[(l.next-i+len(l.ring))%len(l.ring)])
	}
	total := l.total
	l.mu.Unlock()
	// Commit handlers of two transactions may run in either order.
	slices.SortStableFunc(out, func(a, b Invalidation) int { return b.Time.Compare(a.Time) })
	return out, total
}

// Invalidations returns the last InvalidationLogSize invalidations the
// engine applied, newest first, and how many it applied since it opened.
func (e *Engine) Invalidations() (recent []Invalidation, total int64) { return e.inval.record.list() }

// changeRecord describes a content change applied under position.
func changeRecord(position string, c Change, files int) Invalidation {
	src := position
	if src == "" {
		src = SourceChange
	}
	return Invalidation{Source: src, Kind: c.Kind.String(), ID: c.ID, Detail: c.State, Files: files}
}

// flushRecord describes a flush; detail is its group or, for a sync, the
// peer it came from.
func flushRecord(source string, f Flush, detail string, files int) Invalidation {
	return Invalidation{Source: source, Kind: DepKey.String(), ID: f.Key, Detail: detail, Files: files}
}
