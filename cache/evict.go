package cache

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// Eviction: a docroot is kept under max_size bytes, and its file system
// above min_free free space. When either is passed, the evictor removes
// the least recently read pages (with their ".old" and precompressed
// copies) until the docroot is 5 % under the limit. A page is removed the
// way the removal worker purges one: the files first, then its registry
// entry retired with a tombstone in one transaction per batch, so a page
// is never half gone.

// SizeLimits bound what each docroot holds on disk. The zero value sets
// no limit.
type SizeLimits struct {
	// MaxSize is the most bytes a docroot's files (pages, ".old" and
	// precompressed copies) may take (0: no limit).
	MaxSize int64
	// MinFree is the free space to keep on each docroot's file system, in
	// bytes; MinFreePercent, if set, is it as a percentage of the file
	// system's size instead. Both 0: free space is not watched.
	MinFree        int64
	MinFreePercent float64
}

// watchesFree reports whether the free space is checked.
func (l SizeLimits) watchesFree() bool { return l.MinFree > 0 || l.MinFreePercent > 0 }

// SetSizeLimits replaces the docroot size limits; it takes effect within
// the evictor's next check (a config reload).
func (e *Engine) SetSizeLimits(l SizeLimits) {
	e.evictor.limits.Store(&l)
	e.evictor.notify()
}

// Timing and bounds of the evictor.
const (
	// evictCheckEvery is how often the free space is looked at (writes
	// past max_size wake the evictor at once).
	evictCheckEvery = 2 * time.Second
	// evictMaxBatch bounds the pages one round removes, evictMinBatch is
	// the least it takes.
	evictMaxBatch = 2000
	evictMinBatch = 16
	// evictMaxRounds bounds the rounds of one check.
	evictMaxRounds = 1000
	// evictScanPage is how many registry entries one read transaction of
	// the scan reads.
	evictScanPage = 1000
	// A scan keeps the least recently read pages it found for the rounds
	// after it: at least a round's batch, evictKeepShare of the docroot's
	// files (1 in 50) if that is more, at most evictKeepMax, for at most
	// evictKeepFor. So a large docroot under a flood is scanned once for
	// many rounds, not once per round.
	evictKeepShare = 50
	evictKeepMax   = 20_000
	evictKeepFor   = time.Minute
	// evictQuiet is how long a docroot must stay under its limit without
	// eviction before "back under" is logged.
	evictQuiet = time.Minute
	// evictStuckPause is how long a docroot that had nothing left to evict
	// is left alone.
	evictStuckPause = 30 * time.Second
)

// evictState is the evictor's state of one docroot, for logging each
// episode once.
type evictState struct {
	over       bool      // the limit was passed and "back under" not yet logged
	lastEvict  time.Time // the end of the last eviction
	stuck      bool      // "nothing left to evict" logged in this episode
	stuckUntil time.Time
	statfsErr  bool // a failed look at the free space was logged

	// cands are the least recently read pages the last scan found and no
	// round has taken yet, least recent first; scanned is when that scan
	// began (unix ms).
	cands   []evictCandidate
	scanned int64
}

// evictor keeps the docroots under their limits; one goroutine per
// engine.
type evictor struct {
	reg      *registry.Registry
	access   *AccessLog
	docroots *docroots
	log      *zap.Logger
	limits   atomic.Pointer[SizeLimits]
	wake     chan struct{}
	// freeSpace reports a folder's file system's size and the space
	// available to the process (statfs; replaced in tests).
	freeSpace func(dir string) (total, avail int64, err error)
	every     time.Duration
	now       func() time.Time
	// state is each docroot's, by root id (the evictor's goroutine only).
	state map[uint16]*evictState
	// keepShare: a scan keeps 1 in keepShare of the docroot's pages
	// (evictKeepShare; changed in tests).
	keepShare int64
	scans     atomic.Int64 // scans of a docroot's registry entries
}

func newEvictor(reg *registry.Registry, access *AccessLog, log *zap.Logger) *evictor {
	v := &evictor{reg: reg, access: access, log: log, wake: make(chan struct{}, 1), freeSpace: statFreeSpace,
		every: evictCheckEvery, now: time.Now, state: map[uint16]*evictState{}, keepShare: evictKeepShare}
	v.limits.Store(&SizeLimits{})
	return v
}

// notify wakes the evictor (never blocks).
func (v *evictor) notify() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

func (v *evictor) run(ctx context.Context) {
	t := time.NewTicker(v.every)
	defer t.Stop()
	for {
		v.checkAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-v.wake:
		case <-t.C:
		}
	}
}

// checkAll sets each docroot's limit and evicts where it is passed.
func (v *evictor) checkAll(ctx context.Context) {
	l := *v.limits.Load()
	for _, s := range v.docroots.all() {
		if ctx.Err() != nil {
			return
		}
		st := v.stateOf(s)
		limit := v.limitOf(s, st, l)
		s.size.limit.Store(limit)
		now := v.now()
		switch {
		case limit > 0 && s.size.walked.Load() && s.size.bytes.Load() > limit:
			if now.Before(st.stuckUntil) {
				continue
			}
			v.evict(ctx, s, st, limit)
		case st.over && now.Sub(st.lastEvict) >= evictQuiet:
			st.over, st.stuck = false, false
			st.cands = nil
			s.log.Info("docroot back under its size limit", zap.Int64("bytes", s.size.bytes.Load()),
				zap.Int64("limit", limit), zap.Int64("evicted_total", s.size.evicted.Load()))
		}
	}
}

func (v *evictor) stateOf(s *Store) *evictState {
	st := v.state[s.rootID]
	if st == nil {
		st = &evictState{}
		v.state[s.rootID] = st
	}
	return st
}

// limitOf is the size s is kept under: max_size, or less when the free
// space would otherwise fall below min_free (0: no limit).
func (v *evictor) limitOf(s *Store, st *evictState, l SizeLimits) int64 {
	limit := l.MaxSize
	if !l.watchesFree() {
		return limit
	}
	total, avail, err := v.freeSpace(s.dir)
	if err != nil {
		if !st.statfsErr {
			st.statfsErr = true
			s.log.Warn("cannot read the docroot's free space; min_free is not watched", zap.Error(err))
		}
		return limit
	}
	want := l.MinFree
	if l.MinFreePercent > 0 {
		want = int64(float64(total) * l.MinFreePercent / 100)
	}
	// What the docroot may hold: what it holds now plus what is free
	// beyond min_free.
	room := max(s.size.bytes.Load()+avail-want, 1)
	if limit == 0 || room < limit {
		limit = room
	}
	return limit
}

// evict removes the least recently read pages of s until it is 5 % under
// limit, in rounds; a round that removes nothing ends it.
func (v *evictor) evict(ctx context.Context, s *Store, st *evictState, limit int64) {
	target := limit - limit/20
	if !st.over {
		st.over = true
		s.log.Warn("docroot over its size limit; evicting the least recently read pages (further evictions are counted in delivery_evicted_total)",
			zap.Int64("bytes", s.size.bytes.Load()), zap.Int64("limit", limit), zap.Int64("target", target))
	}
	defer func() { st.lastEvict = v.now() }()
	for round := 0; round < evictMaxRounds && ctx.Err() == nil; round++ {
		need := s.size.bytes.Load() - target
		if need <= 0 {
			return
		}
		n, err := v.evictRound(s, st, need, target)
		if err != nil {
			s.log.Error("eviction failed", zap.Error(err))
			return
		}
		if n == 0 {
			st.stuckUntil = v.now().Add(evictStuckPause)
			if !st.stuck {
				st.stuck = true
				s.log.Error("docroot over its size limit but no page left to evict (files without a registry entry: .old copies of removed pages, ephemeral renders, files not written by the edge)",
					zap.Int64("bytes", s.size.bytes.Load()), zap.Int64("limit", limit))
			}
			return
		}
	}
}

// evictRound removes the least recently read pages of s, one batch of
// about need bytes' worth at most, until s is down to target; it reports
// how many it removed. It takes them from the pages the last scan kept
// (st.cands), and scans again when too few are left, when they are old,
// or when none of them could go.
func (v *evictor) evictRound(s *Store, st *evictState, need, target int64) (int, error) {
	// A page's files (with its copies) are taken for the average file:
	// the batch is rather too large than too small, and is cut short once
	// the docroot is down to the target.
	files := max(s.size.files.Load(), 1)
	avg := max(s.size.bytes.Load()/files, 1)
	k := int(min(max(need/avg*5/4+1, evictMinBatch), evictMaxBatch))
	fresh := false
	if len(st.cands) < k || v.now().UnixMilli()-st.scanned > evictKeepFor.Milliseconds() {
		if err := v.scan(s, st, k, files); err != nil {
			return 0, err
		}
		fresh = true
	}
	n, err := v.evictBatch(s, st, k, target)
	if n == 0 && err == nil && !fresh {
		// Every kept page was read or rendered again since: scan anew.
		if err := v.scan(s, st, k, files); err != nil {
			return 0, err
		}
		n, err = v.evictBatch(s, st, k, target)
	}
	return n, err
}

// evictBatch removes up to k of the kept pages, least recently read
// first, until s is down to target; it reports how many it removed.
func (v *evictor) evictBatch(s *Store, st *evictState, k int, target int64) (int, error) {
	batch := st.cands[:min(k, len(st.cands))]
	if len(batch) == 0 {
		return 0, nil
	}
	readSince, err := v.readSince(batch)
	if err != nil {
		return 0, err
	}
	forget := make(map[FileID]int64, len(batch))
	before := s.size.bytes.Load()
	used := 0
	for _, c := range batch {
		if s.size.bytes.Load() <= target {
			break
		}
		used++
		// Read since the scan, or rendered again (its entry is newer):
		// not among the least recently read.
		if readSince[c.id] || v.reg.HasPending(c.id) || s.writtenSince(c.id.File, st.scanned) {
			continue
		}
		s.Purge(c.id.File)
		forget[c.id] = c.created
	}
	st.cands = st.cands[used:]
	if len(forget) == 0 {
		return 0, nil
	}
	var ret registry.Retirement
	err = v.reg.Update(func(tx *registry.Tx) error { return tx.RetireFiles(forget, &ret) })
	if err != nil {
		v.reg.Unretire(&ret)
		return 0, err
	}
	if err := v.reg.FinishRetirement(&ret); err != nil {
		s.log.Warn("removing registry entries", zap.Error(err))
	}
	v.reg.ReleaseMapping()
	s.size.evicted.Add(int64(len(forget)))
	s.size.evictedBytes.Add(max(before-s.size.bytes.Load(), 0))
	return len(forget), nil
}
