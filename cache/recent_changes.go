package cache

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// A change finds the files it invalidates through their registry entries
// (affected). A page being rendered for the first time, or again after its
// removal, has no entry until its render records it: a change applied
// while such a render is under way would find nothing, and the render's
// answer, made before the change, would be put in place as the page. So
// the changes applied since the oldest render under way began are kept in
// memory (recentChanges); a render records its file only if none of them
// touches what the render depends on, and otherwise keeps its answer as
// the ".old" copy, like a render whose file a change found (coalesce.go).
//
// Checking and recording are one step under the log's lock, and a change
// is noted before it looks for files: a change noted after the check
// finds the render's entry (the registry's reads see recorded entries at
// once), and one noted before it is seen by the check.

// recentChangesMax bounds the changes kept. Renders are bounded by their
// timeout, so the log holds the changes of one render's time at most; a
// log that passes this drops its oldest, and a render that began before a
// dropped change is taken as outdated.
const recentChangesMax = 1 << 16

// recentChanges is the log of the changes applied since the oldest render
// under way began.
type recentChanges struct {
	mu      sync.Mutex
	seq     uint64         // changes noted since the start
	log     []notedChange  // in the order noted, oldest first
	renders map[uint64]int // marks of the renders under way, with their counts
	dropped uint64         // seq of the newest change dropped for the bound
	full    bool           // the bound is hit (logged once until the log empties)

	overflows atomic.Int64 // changes dropped for the bound
	logger    *zap.Logger
}

type notedChange struct {
	seq uint64
	c   Change
}

func newRecentChanges(log *zap.Logger) *recentChanges {
	return &recentChanges{renders: map[uint64]int{}, logger: log}
}

// begin marks the start of a render: changes noted after it are checked
// when the render records its file. Each begin needs its end.
func (r *recentChanges) begin() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.renders[r.seq]++
	return r.seq
}

// end forgets a render's mark, and the changes no render under way began
// before.
func (r *recentChanges) end(mark uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.renders[mark]--; r.renders[mark] <= 0 {
		delete(r.renders, mark)
	}
	r.trimLocked()
}

// note keeps a change applied now, if a render under way may need it.
func (r *recentChanges) note(c Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	if len(r.renders) == 0 {
		return // every render that begins from now on sees the change
	}
	if len(r.log) >= recentChangesMax {
		r.dropped = r.log[0].seq
		r.log = slices.Delete(r.log, 0, 1)
		r.overflows.Add(1)
		if !r.full {
			r.full = true
			r.logger.Warn("too many changes during the renders under way: renders that began before the oldest are taken as outdated",
				zap.Int("kept", recentChangesMax))
		}
	}
	r.log = append(r.log, notedChange{seq: r.seq, c: c})
}

// trimLocked drops the changes that every render under way began after.
func (r *recentChanges) trimLocked() {
	oldest := r.seq
	for m := range r.renders {
		oldest = min(oldest, m)
	}
	i, _ := slices.BinarySearchFunc(r.log, oldest+1, func(n notedChange, seq uint64) int { return cmp.Compare(n.seq, seq) })
	if i > 0 {
		r.log = slices.Delete(r.log, 0, i)
	}
	if len(r.log) == 0 {
		r.full = false
		r.log = nil // give the memory of a long burst back
	}
}

// record runs put (which records the render's entry) unless a change
// noted since mark touches e; it reports whether the render is outdated.
func (r *recentChanges) record(mark uint64, e *Entry, put func() error) (outdated bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.touchedLocked(mark, e) {
		return true, nil
	}
	return false, put()
}

// touched reports whether a change noted since mark touches e.
func (r *recentChanges) touched(mark uint64, e *Entry) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.touchedLocked(mark, e)
}

func (r *recentChanges) touchedLocked(mark uint64, e *Entry) bool {
	if mark < r.dropped {
		return true // a change it may depend on is no longer known
	}
	for i := len(r.log) - 1; i >= 0 && r.log[i].seq > mark; i-- {
		if r.log[i].c.touches(e) {
			return true
		}
	}
	return false
}

// overflowed is how many changes were dropped for the bound.
func (r *recentChanges) overflowed() int64 { return r.overflows.Load() }
