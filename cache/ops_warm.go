package cache

import (
	"context"
	"fmt"
	"sync"
)

// Warming: the pages of a list (or a sitemap, ops_sitemap.go) that are
// not in the cache are rendered through the docroot's renderer — the
// pre-generation path, coalesced with readers' misses — a few at a time,
// so readers and the queues go on beside it.

// MaxWarmConcurrency is the most renders a warm runs at once (and its
// default).
const MaxWarmConcurrency = 8

// WarmOptions shape a warm.
type WarmOptions struct {
	// Host is the Host header of the renders ("": the docroot's own).
	Host string
	// Concurrency is how many renders run at once (1 to
	// MaxWarmConcurrency; 0: MaxWarmConcurrency).
	Concurrency int
}

// WarmResult counts what a warm did with its URLs.
type WarmResult struct {
	URLs     int `json:"urls"`     // distinct files asked for
	Rendered int `json:"rendered"` // rendered and stored
	Cached   int `json:"cached"`   // in the cache already: not rendered
	// Uncacheable are URLs the cache does not keep (not a cacheable
	// path, or the render's answer was not cacheable).
	Uncacheable int `json:"uncacheable"`
	Gone        int `json:"gone"`   // the render backend answered 404/410
	Failed      int `json:"failed"` // the render failed
}

// Warm renders the URLs (paths with an optional query) of the site that
// are not cached. Failures are reported to p and counted; it returns an
// error only when it cannot start (no renderer) or ctx ends.
func (e *Engine) Warm(ctx context.Context, s *Site, urls []string, o WarmOptions, p Progress) (WarmResult, error) {
	var res WarmResult
	if p == nil {
		p = NoProgress{}
	}
	rd, host := s.Store.renderer()
	if rd == nil {
		return res, ErrNoRenderer
	}
	if o.Host != "" {
		host = o.Host
	}
	workers := o.Concurrency
	if workers <= 0 || workers > MaxWarmConcurrency {
		workers = MaxWarmConcurrency
	}
	var targets []Target
	seen := map[string]bool{}
	for _, u := range urls {
		t, err := s.FileOf(u)
		if err != nil {
			res.Uncacheable++
			continue
		}
		if !seen[t.File] {
			seen[t.File] = true
			targets = append(targets, t)
		}
	}
	res.URLs = len(targets) + res.Uncacheable
	p.SetTotal(int64(len(targets)))

	var mu sync.Mutex
	count := func(f func()) {
		mu.Lock()
		f()
		mu.Unlock()
	}
	work := make(chan Target)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for t := range work {
				e.warmOne(ctx, s, rd, host, t, p, &res, count)
				p.Add(1)
			}
		})
	}
feed:
	for _, t := range targets {
		select {
		case work <- t:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return res, ctx.Err()
}

// warmOne renders one target unless it is cached.
func (e *Engine) warmOne(ctx context.Context, s *Site, rd Renderer, host string, t Target, p Progress, res *WarmResult,
	count func(func())) {
	if info, err := s.Store.root.Lstat(t.File); err == nil && info.Mode().IsRegular() {
		count(func() { res.Cached++ })
		return
	}
	status, err := rd.Regenerate(ctx, host, t.Key)
	switch {
	case ctx.Err() != nil:
		return
	case err != nil:
		count(func() { res.Failed++ })
		p.Error(fmt.Errorf("%s: %w", t.Key, err))
	case status == RegenStored:
		count(func() { res.Rendered++ })
	case status == RegenGone:
		count(func() { res.Gone++ })
		p.Error(fmt.Errorf("%s: gone at the render backend", t.Key))
	case status == RegenSkipped:
		count(func() { res.Uncacheable++ })
	default:
		count(func() { res.Failed++ })
		p.Error(fmt.Errorf("%s: render failed (%d)", t.Key, status))
	}
}
