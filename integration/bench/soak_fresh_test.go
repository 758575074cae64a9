package bench

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/delivery-edge/edge/integration/bench/benchkit"
)

// appliedLog is what an edge reported as applied staging source time,
// sampled every appliedEvery from its metrics (the last few minutes).
type appliedLog struct {
	mu      sync.Mutex
	samples []appliedSample // oldest first
}

type appliedSample struct {
	at      time.Time
	applied int64
}

const (
	appliedEvery = 100 * time.Millisecond
	appliedKeep  = 3000 // 5 minutes
)

func (l *appliedLog) add(at time.Time, applied int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.samples) >= appliedKeep {
		l.samples = append(l.samples[:0], l.samples[len(l.samples)-appliedKeep/2:]...)
	}
	l.samples = append(l.samples, appliedSample{at, applied})
}

// appliedSince reports whether the edge has shown st applied in a sample
// taken after `after`, and when it was applied: at the earliest the time
// of the sample before the first that showed it (or `after`), at the
// latest that of the first. Each figure takes the bound that makes it an
// upper bound.
func (l *appliedLog) appliedSince(st int64, after time.Time) (earliest, latest time.Time, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev := after
	for _, s := range l.samples {
		if s.at.Before(after) {
			continue
		}
		if s.applied >= st {
			return prev, s.at, true
		}
		prev = s.at
	}
	return time.Time{}, time.Time{}, false
}

// pollApplied samples an edge's applied source time until ctx ends.
func (s *soakSite) pollApplied(ctx context.Context, e *soakEdge) {
	t := time.NewTicker(appliedEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !e.up.Load() {
			continue
		}
		if m, ok := s.scrape(ctx, e); ok {
			if v, ok := m["delivery_staging_applied_source_time_ms"]; ok {
				e.applied.add(time.Now(), int64(v))
			}
		}
	}
}

// soakFresh measures, per change and edge, the time from the edge having
// applied the change to the edge serving the new version.
type soakFresh struct {
	jobs chan freshJob

	mu        sync.Mutex
	calm, all []time.Duration    // calm: no kill of the edge or fault in force
	toApply   []time.Duration    // change → applied by the edge (staging lag, polling)
	points    [][]benchkit.Point // per edge: seconds since the start → seconds

	tracked, dropped, unresolved atomic.Int64
}

type freshJob struct {
	edge    *soakEdge
	page    soakPage
	rev     int64
	st      int64 // source time of the change's event
	changed time.Time
}

const (
	freshWorkers = 96
	freshPoll    = 50 * time.Millisecond // for the first second, then 200 ms
	// freshLimit bounds each wait: for the edge to apply a change, and
	// then to serve it. A change not served by then is a failure.
	freshLimit = 60 * time.Second
)

func newSoakFresh(edges int) *soakFresh {
	return &soakFresh{jobs: make(chan freshJob, 4*freshWorkers), points: make([][]benchkit.Point, edges)}
}

// freshWorker tracks changes until the jobs channel is closed or ctx ends.
func (s *soakSite) freshWorker(ctx context.Context) {
	for j := range s.fresh.jobs {
		s.track(ctx, j)
	}
}

func (s *soakSite) track(ctx context.Context, j freshJob) {
	e := j.edge
	deadline := j.changed.Add(freshLimit)
	var applied, appliedBy time.Time
	for {
		var ok bool
		if applied, appliedBy, ok = e.applied.appliedSince(j.st, j.changed); ok {
			s.fresh.mu.Lock()
			s.fresh.toApply = append(s.fresh.toApply, appliedBy.Sub(j.changed))
			s.fresh.mu.Unlock()
			break
		}
		if !sleepCtx(ctx, freshPoll) || time.Now().After(deadline) {
			s.unresolved(ctx, j, "not applied")
			return
		}
	}
	deadline = time.Now().Add(freshLimit)
	poll := freshPoll
	for {
		if e.up.Load() {
			if a, ok := s.getOn(ctx, e, classPoll, j.page.path, ""); ok && a.status == http.StatusOK {
				if soakPageRev(string(a.body)) >= j.rev {
					served := time.Now()
					lat := served.Sub(applied)
					s.fresh.mu.Lock()
					s.fresh.all = append(s.fresh.all, lat)
					s.fresh.points[e.index] = append(s.fresh.points[e.index],
						benchkit.Point{T: j.changed.Sub(s.timeline.start).Seconds(), V: lat.Seconds()})
					if !s.timeline.disturbed(e.index, applied, served) {
						s.fresh.calm = append(s.fresh.calm, lat)
					}
					s.fresh.mu.Unlock()
					return
				}
			}
		}
		if time.Since(applied) > time.Second {
			poll = 4 * freshPoll // slow ones are measured less finely
		}
		if !sleepCtx(ctx, poll) || time.Now().After(deadline) {
			s.unresolved(ctx, j, "not served")
			return
		}
	}
}

func (s *soakSite) unresolved(ctx context.Context, j freshJob, what string) {
	s.fresh.unresolved.Add(1)
	if ctx.Err() == nil {
		s.stats.example("change rev %d of %s %s on edge %s within %v", j.rev, j.page.path, what, j.edge.name, freshLimit)
	} else {
		s.stats.example("change rev %d of %s %s on edge %s when the soak ended", j.rev, j.page.path, what, j.edge.name)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// changer makes cfg.ChangesPerSec CMS changes (a story's title gets a new
// revision) until ctx ends, popular stories more often, and hands each to
// the freshness trackers for every edge.
func (s *soakSite) changer(ctx context.Context, rev *atomic.Int64) {
	rng := rand.New(rand.NewPCG(11, 12))
	zipf := rand.NewZipf(rng, 1.07, 2, uint64(len(s.stories)-1))
	t := time.NewTicker(time.Duration(float64(time.Second) / s.cfg.ChangesPerSec))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := s.stories[zipf.Uint64()]
		r := rev.Add(1)
		ev, ok := s.content.Update(p.id, map[string]any{"title": soakRevTitle(p.title, r)})
		if !ok {
			continue
		}
		now := time.Now()
		for _, e := range s.edges {
			select {
			case s.fresh.jobs <- freshJob{edge: e, page: p, rev: r, st: ev.SourceTime, changed: now}:
				s.fresh.tracked.Add(1)
			default:
				s.fresh.dropped.Add(1) // every tracker busy: not measured
			}
		}
	}
}

// flusher sends cfg.FlushesPerSec cache servlet flushes to the group
// until ctx ends: mostly keys of popular stories (re-rendered in place),
// some section and home keys.
func (s *soakSite) flusher(ctx context.Context) {
	rng := rand.New(rand.NewPCG(13, 14))
	zipf := rand.NewZipf(rng, 1.07, 2, uint64(len(s.stories)-1))
	t := time.NewTicker(time.Duration(float64(time.Second) / s.cfg.FlushesPerSec))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var key string
		switch r := rng.IntN(100); {
		case r < 85:
			key = s.stories[zipf.Uint64()].id
		case r < 95:
			key = "section:/politik"
		default:
			key = "home"
		}
		a, ok := s.get(ctx, classFlush, flushURL(key), "")
		if ok && a.status != http.StatusOK && a.status < 500 {
			s.stats.badStatus.Add(1)
			s.stats.example("flush %s on edge %s: %d %q", key, a.edge.name, a.status, truncate(string(a.body), 200))
		}
	}
}
