package cache

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// concurrency is a render backend that records how many renders ran at
// the same time.
type concurrency struct {
	now, peak, total atomic.Int64
	delay            time.Duration
	gate             chan struct{} // when set, renders wait for it to close
}

func (c *concurrency) render(w http.ResponseWriter, r *http.Request) error {
	n := c.now.Add(1)
	defer c.now.Add(-1)
	c.total.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			break
		}
	}
	if c.gate != nil {
		<-c.gate
	}
	time.Sleep(c.delay)
	w.Header().Set("Content-Type", "text/html")
	_, err := fmt.Fprintf(w, "[%s]", r.URL.Path)
	return err
}

// TestMaxRendersBoundsConcurrentMisses: however many distinct misses come
// at once, at most MaxRenders render; the others wait for a slot (within
// render_wait) and are answered.
func TestMaxRendersBoundsConcurrentMisses(t *testing.T) {
	s, _ := newTestSite(t)
	s.MaxRenders, s.RenderWait = 3, 10*time.Second
	c := &concurrency{delay: 50 * time.Millisecond}
	var wg sync.WaitGroup
	codes := make([]int, 12)
	for i := range codes {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			err := s.ServeHTTP(rec, httptest.NewRequest("GET", fmt.Sprintf("/p%d.html", i), nil), c.render)
			codes[i] = rec.Code
			if err != nil {
				codes[i] = statusOf(err)
			}
		})
	}
	wg.Wait()
	for i, code := range codes {
		if code != 200 {
			t.Errorf("request %d: %d", i, code)
		}
	}
	if p := c.peak.Load(); p > 3 || c.total.Load() != 12 {
		t.Fatalf("%d renders at once (max_renders 3), %d in all", p, c.total.Load())
	}
}

// TestNoSlotWithinRenderWait: a miss whose render finds no slot within
// render_wait gets 503 with Retry-After, and so do the requests that
// joined it; the render never starts, and once a slot is free the next
// request renders the page.
func TestNoSlotWithinRenderWait(t *testing.T) {
	s, _ := newTestSite(t)
	s.MaxRenders, s.RenderWait = 1, 100*time.Millisecond
	p := probe(s)
	release := holdSlot(t, s, p)
	c := &concurrency{}
	var wg sync.WaitGroup
	answers := make([]answer, 4)
	for i := range answers {
		wg.Go(func() { answers[i] = ask(t, s, p, c.render, "GET", "/p.html") })
	}
	wg.Wait()
	for i, a := range answers {
		if a.code != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
			t.Errorf("request %d: %d Retry-After %q", i, a.code, a.header.Get("Retry-After"))
		}
	}
	if n := c.total.Load(); n != 0 {
		t.Fatalf("%d renders without a slot", n)
	}
	if st := servingStats([]*Store{s.Store}); st.RenderRejected == 0 {
		t.Errorf("rejections not counted: %+v", st)
	}
	release()
	if a := ask(t, s, p, c.render, "GET", "/p.html"); a.code != 200 || a.body != "[/p.html]" {
		t.Fatalf("after the slot came free: %d %q", a.code, a.body)
	}
}

// TestPregenerationTakesAtMostHalf: pre-generations wait for slots of
// their own class, at most half of MaxRenders, so readers' misses still
// find slots.
func TestPregenerationTakesAtMostHalf(t *testing.T) {
	s, _ := newTestSite(t)
	s.MaxRenders, s.RenderWait = 4, 10*time.Second
	gate := make(chan struct{})
	pregen := &concurrency{gate: gate}
	var wg sync.WaitGroup
	codes := make([]int, 6)
	for i := range codes {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			s.Regenerate(rec, httptest.NewRequest("GET", fmt.Sprintf("/g%d.html", i), nil), pregen.render)
			codes[i] = rec.Code
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for pregen.now.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // room for a third, which must not start
	if n := pregen.now.Load(); n != 2 {
		t.Fatalf("%d pre-generations at once, want 2 (half of max_renders 4)", n)
	}
	// Readers' misses get the other two slots at once.
	readers := &concurrency{}
	for i := range 2 {
		rec := httptest.NewRecorder()
		start := time.Now()
		if err := s.ServeHTTP(rec, httptest.NewRequest("GET", fmt.Sprintf("/r%d.html", i), nil), readers.render); err != nil ||
			rec.Code != 200 || time.Since(start) > 2*time.Second {
			t.Fatalf("reader %d beside the pre-generations: %d %v after %v", i, rec.Code, err, time.Since(start))
		}
	}
	close(gate)
	wg.Wait()
	for i, code := range codes {
		if code != RegenStored {
			t.Errorf("pre-generation %d: %d", i, code)
		}
	}
	if p := pregen.peak.Load(); p != 2 {
		t.Errorf("peak of %d pre-generations at once, want 2", p)
	}
}

// TestPregenerationWaitsForItsContext: a pre-generation waits for a slot
// (it is background work) until its context ends, and holds no flight
// meanwhile: a reader of the same file renders it.
func TestPregenerationWaitsForItsContext(t *testing.T) {
	s, _ := newTestSite(t)
	s.MaxRenders, s.RenderWait = 2, 5*time.Second
	p := probe(s)
	holdSlot(t, s, p) // one of two: the pre-generation class (one) is free...
	gate := make(chan struct{})
	blocker := &concurrency{gate: gate}
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		s.Regenerate(rec, httptest.NewRequest("GET", "/g0.html", nil), blocker.render)
		done <- rec.Code
	}()
	for blocker.now.Load() == 0 { // ...and taken by this one
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	rec := httptest.NewRecorder()
	start := time.Now()
	s.Regenerate(rec, httptest.NewRequest("GET", "/g1.html", nil).WithContext(ctx), (&concurrency{}).render)
	if rec.Code != RegenFailed || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("pre-generation without a slot: %d after %v, want %d when its context ends", rec.Code, time.Since(start), RegenFailed)
	}
	close(gate)
	if code := <-done; code != RegenStored {
		t.Fatalf("the pre-generation with a slot: %d", code)
	}
}

// TestSSIFanOutIsBounded: a page with many distinct missing includes
// renders at most MaxRenders of them at once; with time to wait, every
// part is rendered, and without, the parts that found no slot become the
// usual "failed" comments.
func TestSSIFanOutIsBounded(t *testing.T) {
	page := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `<!--#include virtual="/part/%d.html" -->`, i)
		}
		return b.String()
	}
	for _, tt := range []struct {
		name   string
		wait   time.Duration
		failed bool
	}{
		{"parts wait for slots", 10 * time.Second, false},
		{"parts without a slot fail", time.Millisecond, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestSite(t)
			s.SSI = &SSIConfig{}
			s.MaxRenders, s.RenderWait = 3, tt.wait
			c := &concurrency{delay: 20 * time.Millisecond}
			render := func(w http.ResponseWriter, r *http.Request) error {
				if r.URL.Path == "/page.html" {
					w.Header().Set("Content-Type", "text/html")
					_, err := fmt.Fprint(w, page(40))
					return err
				}
				return c.render(w, r)
			}
			rec := httptest.NewRecorder()
			if err := s.ServeHTTP(rec, httptest.NewRequest("GET", "/page.html", nil), render); err != nil || rec.Code != 200 {
				t.Fatalf("page: %d %v", rec.Code, err)
			}
			if p := c.peak.Load(); p > 3 {
				t.Fatalf("%d parts rendered at once, max_renders 3", p)
			}
			body := rec.Body.String()
			failed := strings.Count(body, "failed: 503")
			if tt.failed != (failed > 0) || strings.Count(body, "[/part/")+failed != 40 {
				t.Fatalf("%d parts rendered, %d failed comments: %.300q", strings.Count(body, "[/part/"), failed, body)
			}
		})
	}
}

// TestServeStatsCount: misses, answers from ".old" copies and render
// durations by outcome are counted.
func TestServeStatsCount(t *testing.T) {
	s, _ := newTestSite(t)
	p := probe(s)
	b := &backend{body: "<p>x</p>"}
	ask(t, s, p, b.render, "GET", "/a.html")
	ask(t, s, p, b.render, "GET", "/a.html")
	ask(t, s, p, (&backend{status: 404}).render, "GET", "/gone.html")
	cachedThenOld(t, s, p, "/b.html", "b.html")
	s.RenderWait = 0
	ask(t, s, p, (&backend{status: 500}).render, "GET", "/b.html")
	st := servingStats([]*Store{s.Store})
	if st.Misses != 4 || st.Stale != 1 {
		t.Errorf("misses %d (want 4), stale %d (want 1)", st.Misses, st.Stale)
	}
	deadline := time.Now().Add(5 * time.Second)
	for servingStats([]*Store{s.Store}).RenderDurations["failed"].Count == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the background render of b.html
	}
	st = servingStats([]*Store{s.Store})
	for outcome, want := range map[string]uint64{"stored": 2, "gone": 1, "failed": 1, "outdated": 0} {
		h := st.RenderDurations[outcome]
		var sum uint64
		for _, n := range h.Counts {
			sum += n
		}
		if h.Count != want || sum != want || want > 0 && h.Sum <= 0 {
			t.Errorf("%s: %d renders (%d in buckets, %v), want %d", outcome, h.Count, sum, h.Sum, want)
		}
		if cum := h.Cumulative(); cum[60] > h.Count {
			t.Errorf("%s: cumulative %v beyond %d", outcome, cum, h.Count)
		}
	}
}
