package imaging

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestAccessStoreDownIs503WithCauseLogged(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	u := f.url("1x1-144", "jpg", imgMod, 1000, 0)
	wantStatus(t, f.get(u), 200)
	f.store.down.Store(true)
	rec := f.get(u)
	wantStatus(t, rec, http.StatusServiceUnavailable)
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("503 Cache-Control %q", rec.Header().Get("Cache-Control"))
	}
	logged := f.logs.FilterLevelExact(zapcore.ErrorLevel).FilterMessage("image request failed").All()
	if len(logged) == 0 || !strings.Contains(fmt.Sprint(logged[0].ContextMap()["error"]), "connection refused") {
		t.Fatalf("cause not logged: %+v", logged)
	}
	f.store.down.Store(false)
	wantStatus(t, f.get(u), 200)
}

func TestAccessCMSDown(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	stored := f.url("1x1-144", "jpg", imgMod, 1000, 0)
	wantStatus(t, f.get(stored), 200)
	f.cms.setDown(true)
	// A stored variant is still served; one that must be generated is not.
	wantStatus(t, f.get(stored), 200)
	wantStatus(t, f.get(f.url("16x9-768", "jpg", imgMod, 1000, 0)), http.StatusServiceUnavailable)
	// A restarted edge (empty caches) serves stored variants too, using the
	// definitions mirrored in the store.
	restarted := NewAccess(f.access.Config(), f.store, f.cms, zap.NewNop())
	rec := httptest.NewRecorder()
	restarted.ServeHTTP(rec, httptest.NewRequest("GET", stored, nil))
	wantStatus(t, rec, 200)
	f.cms.setDown(false)
	wantStatus(t, f.get(f.url("16x9-768", "jpg", imgMod, 1000, 0)), 200)
}

func TestAccessMarkersAnswerWithoutCMS(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	ctx := testCtx(t)
	u := f.url("1x1-144", "jpg", imgMod, 1000, 0)
	wantStatus(t, f.get(u), 200)
	for _, tt := range []struct {
		state  string
		status int
	}{{StateDeleted, http.StatusGone}, {StateOffline, http.StatusNotFound}} {
		if err := saveState(ctx, f.folder, imageState{UUID: testUUID, State: tt.state, SourceTime: 5}); err != nil {
			t.Fatal(err)
		}
		f.cms.setDown(true) // the CMS must not be needed
		wantStatus(t, f.get(u), tt.status)
		f.cms.setDown(false)
	}
}

func TestAccessCoalescesConcurrentRequests(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	f.cms.gate = make(chan struct{})
	u := f.url("16x9-768", "webp", imgMod, 1000, 0)
	const n = 20
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- f.get(u).Code
		}()
	}
	waitFor(t, func() bool { return f.cms.originalCalls.Load() == 1 })
	time.Sleep(50 * time.Millisecond) // let the others pile up behind it
	close(f.cms.gate)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("status %d", c)
		}
	}
	if got := f.cms.originalCalls.Load(); got != 1 {
		t.Fatalf("%d generations for one variant, want 1", got)
	}
}

func TestAccessBoundsConcurrentGenerations(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{MaxGenerations: 2, Widths: []int{10, 20, 30, 40, 50, 60}})
	f.cms.gate = make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range []int{10, 20, 30, 40, 50, 60} {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			if rec := f.get(f.url("16x9", "jpg", imgMod, 1000, w)); rec.Code != 200 {
				t.Errorf("width %d: %d", w, rec.Code)
			}
		}(w)
	}
	waitFor(t, func() bool { return f.cms.inOriginal.Load() == 2 })
	time.Sleep(100 * time.Millisecond)
	if got := f.cms.inOriginal.Load(); got != 2 {
		t.Fatalf("%d generations running, want 2", got)
	}
	close(f.cms.gate)
	wg.Wait()
	if m := f.cms.maxInOriginal.Load(); m > 2 {
		t.Fatalf("up to %d generations ran at once, limit 2", m)
	}
}

func TestAccessFirstClientLeavingDoesNotFailOthers(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	f.cms.gate = make(chan struct{})
	u := f.url("16x9-768", "png", imgMod, 1000, 0)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		f.access.ServeHTTP(rec, httptest.NewRequest("GET", u, nil).WithContext(ctx))
		first <- rec.Code
	}()
	waitFor(t, func() bool { return f.cms.originalCalls.Load() == 1 })
	second := make(chan int, 1)
	go func() { second <- f.get(u).Code }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-first
	close(f.cms.gate)
	if code := <-second; code != 200 {
		t.Fatalf("second client got %d after the first left", code)
	}
	if got := f.cms.originalCalls.Load(); got != 1 {
		t.Fatalf("%d generations, want 1", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
