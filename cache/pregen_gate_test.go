package cache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestBackendGate(t *testing.T) {
	tests := []struct {
		name     string
		max      int
		take     int  // places taken first
		thenMax  int  // the size changed to this (0: unchanged)
		release  int  // places given back afterwards
		wantMore bool // can one more be taken at once
	}{
		{name: "room left", max: 3, take: 2, wantMore: true},
		{name: "full", max: 2, take: 2},
		{name: "full, one given back", max: 2, take: 2, release: 1, wantMore: true},
		{name: "grown", max: 2, take: 2, thenMax: 3, wantMore: true},
		{name: "shrunk below what is taken", max: 3, take: 3, thenMax: 1, release: 1},
		{name: "shrunk, enough given back", max: 3, take: 3, thenMax: 1, release: 3, wantMore: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newBackendGate()
			g.setMax(tt.max)
			for i := range tt.take {
				if !g.acquire(context.Background()) {
					t.Fatalf("place %d not taken", i)
				}
			}
			if tt.thenMax > 0 {
				g.setMax(tt.thenMax)
			}
			for range tt.release {
				g.release()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if got := g.acquire(ctx); got != tt.wantMore {
				t.Errorf("one more taken: %v, want %v", got, tt.wantMore)
			}
		})
	}
}

func TestBackendGateWakesAWaiter(t *testing.T) {
	g := newBackendGate()
	g.setMax(1)
	g.acquire(context.Background())
	got := make(chan bool)
	go func() { got <- g.acquire(context.Background()) }()
	select {
	case <-got:
		t.Fatal("a second place was taken while the only one is held")
	case <-time.After(20 * time.Millisecond):
	}
	g.release()
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("the waiter got no place")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter was not woken when the place was given back")
	}
}

// heldRenderer pre-generates through the Site like the Caddy module, and
// then holds every job at the edge until released: the time a job spends
// putting its file in place, made long.
type heldRenderer struct {
	siteRenderer
	backend RenderFunc
	hold    chan struct{}
	atEdge  atomic.Int32
}

func (hr *heldRenderer) Regenerate(ctx context.Context, host, key string) (int, error) {
	rec := httptest.NewRecorder()
	hr.site.Regenerate(rec, httptest.NewRequest("GET", key, nil).WithContext(ctx), hr.backend)
	hr.atEdge.Add(1)
	defer hr.atEdge.Add(-1)
	select {
	case <-hr.hold:
	case <-ctx.Done():
	}
	return rec.Code, nil
}

// TestPregenerationPutsInPlaceWhileTheNextRenders: with `workers 2`, at
// most two pre-generations are at the backend at once, and the next job
// goes to the backend as soon as one's answer is in, while that one is
// still being put in place. Before, a job held its worker until it was in
// place, so the backend waited for the edge.
func TestPregenerationPutsInPlaceWhileTheNextRenders(t *testing.T) {
	const workers = 2
	f := newEngineFixture(t, InvalidationConfig{Pregenerate: true, Workers: workers})
	names := f.storyPages(8)
	for _, n := range names {
		f.readAfterWrite(n)
	}
	var atBackend, most atomic.Int32
	hr := &heldRenderer{siteRenderer: siteRenderer{f.site, f.pages}, hold: make(chan struct{})}
	hr.backend = func(w http.ResponseWriter, r *http.Request) error {
		n := atBackend.Add(1)
		defer atBackend.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(time.Millisecond)
		return f.pages.render(w, r)
	}
	f.site.Store.SetRenderer(hr, "")
	f.pages.set(func(p *pages) { p.version = 2 })
	f.apply(Change{Kind: DepDocument, ID: "story1", State: StatePublished})

	deadline := time.Now().Add(5 * time.Second)
	for hr.atEdge.Load() <= workers {
		if time.Now().After(deadline) {
			close(hr.hold)
			t.Fatalf("%d jobs held at the edge, and no further job went to the backend meanwhile", hr.atEdge.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(hr.hold)
	f.settle()
	if m := most.Load(); m > workers {
		t.Errorf("%d pre-generations at the backend at once, want at most %d", m, workers)
	}
	for _, n := range names {
		if body, _ := f.file(n[1:]); body != n+" v2" {
			t.Errorf("%s: %q, want the new version", n, body)
		}
	}
}
