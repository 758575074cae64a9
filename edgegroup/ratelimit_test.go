package edgegroup

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/delivery-edge/edge/cache"
)

// fastLimit gives a servlet the default limit with waits of milliseconds,
// so that tests of other things are not slowed down by it.
func fastLimit(s *Servlet) {
	p := defaultLimitPolicy
	p.first, p.maxDelay = time.Millisecond, 4*time.Millisecond
	s.refusedPassword.t.policy = p
}

func TestLimitPolicyDelay(t *testing.T) {
	p := defaultLimitPolicy
	for n, want := range map[int]time.Duration{
		0: 0, 2: 0, // the first three failures: none
		3: 100 * time.Millisecond, 4: 200 * time.Millisecond, 5: 400 * time.Millisecond,
		8: 3200 * time.Millisecond, 9: 5 * time.Second, 19: 5 * time.Second, 1000: 5 * time.Second,
	} {
		if got := p.delay(n); got != want {
			t.Errorf("delay after %d failures: %v, want %v", n, got, want)
		}
	}
}

// TestAttemptTrackerStreak walks one address through a streak with a
// test clock: free failures, doubling waits, 429, the end of the streak.
func TestAttemptTrackerStreak(t *testing.T) {
	now := time.Unix(1_700_000_000, 0) // the clock, moved by the test
	tr := newAttemptTracker(time.Minute, 10, func() time.Time { return now })
	fail := func(addr string) admission {
		t.Helper()
		adm := tr.admit(addr)
		if adm.retryAfter == 0 {
			tr.done(addr, adm, true, true)
		}
		return adm
	}
	var delays []time.Duration
	for range 20 {
		adm := fail("a")
		if adm.retryAfter > 0 {
			t.Fatalf("429 after %d failures", len(delays))
		}
		delays = append(delays, adm.delay)
		now = now.Add(time.Second)
	}
	want := []time.Duration{0, 0, 0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second}
	for i, d := range want {
		if delays[i] != d {
			t.Errorf("attempt %d waited %v, want %v", i+1, delays[i], d)
		}
	}
	// 20 failures: 429 until a minute after the latest (a second ago).
	adm := tr.admit("a")
	if adm.retryAfter != 59*time.Second || adm.rec != nil {
		t.Fatalf("after 20 failures: %+v", adm)
	}
	// Refused attempts do not extend the streak.
	now = now.Add(58 * time.Second)
	if adm := tr.admit("a"); adm.retryAfter != time.Second {
		t.Fatalf("a second before the end: %+v", adm)
	}
	// Another address is not affected.
	if adm := tr.admit("b"); adm != (admission{}) {
		t.Fatalf("b: %+v", adm)
	}
	now = now.Add(time.Second)
	if adm := tr.admit("a"); adm != (admission{}) {
		t.Fatalf("a minute after the latest failure: %+v", adm)
	}
	// A new streak starts from the beginning.
	for range 3 {
		if adm := fail("a"); adm.delay != 0 || adm.retryAfter != 0 {
			t.Fatalf("new streak: %+v", adm)
		}
	}
	// A correct password ends it.
	adm = tr.admit("a")
	if adm.delay != 100*time.Millisecond {
		t.Fatalf("fourth failure: %+v", adm)
	}
	tr.done("a", adm, true, false)
	if adm := tr.admit("a"); adm != (admission{}) {
		t.Fatalf("after a correct password: %+v", adm)
	}
}

// TestAttemptTrackerCountsChecksInFlight: attempts admitted together wait
// as if they had failed one after the other, and no more than the
// threshold are admitted.
func TestAttemptTrackerCountsChecksInFlight(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tr := newAttemptTracker(time.Minute, 10, func() time.Time { return now })
	for range 3 {
		tr.done("a", tr.admit("a"), true, true)
	}
	var admitted []admission
	refused := 0
	for range 100 {
		if adm := tr.admit("a"); adm.retryAfter > 0 {
			refused++
		} else {
			admitted = append(admitted, adm)
		}
	}
	if len(admitted) != 17 || refused != 83 || admitted[0].delay != 100*time.Millisecond || admitted[16].delay != 5*time.Second {
		t.Fatalf("admitted %d (first waits %v), refused %d", len(admitted), admitted[0].delay, refused)
	}
	// A held request whose client went frees its place.
	tr.done("a", admitted[16], false, false)
	if adm := tr.admit("a"); adm.retryAfter > 0 {
		t.Fatalf("no place after a client went: %+v", adm)
	}
}

// TestAttemptTrackerStreakSurvivesEviction: a full table does not forget
// an address whose streak goes on, and addresses beyond the table share
// one streak.
func TestAttemptTrackerStreakSurvivesEviction(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tr := newAttemptTracker(time.Minute, 2, func() time.Time { return now })
	for range 20 {
		tr.done("a", tr.admit("a"), true, true)
		tr.add("a")
	}
	tr.add("b")
	now = now.Add(59 * time.Second)
	tr.add("c") // the table is full: c shares the other record
	if adm := tr.admit("a"); adm.retryAfter == 0 {
		t.Fatalf("a's streak was forgotten: %+v", adm)
	}
	for range 20 {
		tr.done("d", tr.admit("d"), true, true)
	}
	if adm := tr.admit("e"); adm.retryAfter == 0 {
		t.Fatalf("addresses beyond the table: %+v", adm)
	}
	if len(tr.addrs) > 2 {
		t.Fatalf("%d addresses tracked", len(tr.addrs))
	}
}

// limitEdge is a servlet with a password over an engine, without groups.
func limitEdge(t *testing.T) (*Servlet, *RefusalCounts) {
	t.Helper()
	e := newTestEdge(t, nil, withPassword("secret"))
	counts := new(RefusalCounts)
	h := NewServlet(ServletConfig{Password: "secret", Engine: func() (*cache.Engine, error) { return e.eng, nil }, Counts: counts})
	t.Cleanup(h.Close)
	fastLimit(h)
	return h, counts
}

func callFrom(h *Servlet, ctx context.Context, remote, query string) *httptest.ResponseRecorder {
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, DefaultServletPath+"?"+query, nil)
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestServletLimitsWrongPasswords: an address that keeps guessing gets
// 429 with Retry-After, even with the right password; another address is
// answered normally; the refusals are counted by reason.
func TestServletLimitsWrongPasswords(t *testing.T) {
	h, counts := limitEdge(t)
	bg := context.Background()
	var codes []int
	for i := range 25 {
		w := callFrom(h, bg, "192.0.2.1:1000", "action=flush&key=k&group=g&password=guess"+strconv.Itoa(i))
		codes = append(codes, w.Code)
	}
	for i, c := range codes {
		want := http.StatusInternalServerError
		if i >= 20 {
			want = http.StatusTooManyRequests
		}
		if c != want {
			t.Fatalf("attempt %d: %d, want %d (all: %v)", i+1, c, want, codes)
		}
	}
	w := callFrom(h, bg, "192.0.2.1:1001", "action=flush&key=k&group=g&password=secret")
	if w.Code != http.StatusTooManyRequests || w.Body.String() != msgTooManyFailures {
		t.Fatalf("right password from a limited address: %d %q", w.Code, w.Body)
	}
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	if w := callFrom(h, bg, "198.51.100.7:1000", "action=flush&key=k&group=g&password=secret"); w.Code != http.StatusOK {
		t.Fatalf("another address: %d %q", w.Code, w.Body)
	}
	// An unknown action is refused as before, limited or not.
	if w := callFrom(h, bg, "192.0.2.1:1002", "action=nonsense&password=secret"); w.Code != http.StatusInternalServerError {
		t.Fatalf("unknown action: %d", w.Code)
	}
	if p, rl, o := counts.Password.Load(), counts.RateLimited.Load(), counts.Other.Load(); p != 20 || rl != 6 || o != 1 {
		t.Fatalf("counted password %d, rate_limited %d, other %d", p, rl, o)
	}
}

// TestServletCorrectPasswordEndsTheStreak: a client that mistyped a few
// times and then sends the right password is not held afterwards.
func TestServletCorrectPasswordEndsTheStreak(t *testing.T) {
	h, _ := limitEdge(t)
	bg := context.Background()
	for range 5 { // the 4th and 5th are held for milliseconds
		callFrom(h, bg, "192.0.2.1:1000", "action=sync&group=g&password=typo")
	}
	if w := callFrom(h, bg, "192.0.2.1:1000", "action=sync&group=g&password=secret"); w.Code != http.StatusOK {
		t.Fatalf("correct password: %d", w.Code)
	}
	// Had the streak gone on, the next attempts would be held for an hour
	// (and end, unanswered, with their context).
	h.refusedPassword.t.policy.first, h.refusedPassword.t.policy.maxDelay = time.Hour, time.Hour
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	for i := range 3 {
		if w := callFrom(h, ctx, "192.0.2.1:1000", "action=sync&group=g&password=typo"); w.Code != http.StatusInternalServerError {
			t.Fatalf("typo %d after the correct password: %d %q", i+1, w.Code, w.Body)
		}
	}
}

// TestServletHeldRequestEndsWithItsClient: a request held by the limit
// returns when its client goes, answers nothing and frees its place.
func TestServletHeldRequestEndsWithItsClient(t *testing.T) {
	h, _ := limitEdge(t)
	h.refusedPassword.t.policy.first, h.refusedPassword.t.policy.maxDelay = time.Hour, time.Hour
	bg := context.Background()
	for range 3 {
		callFrom(h, bg, "192.0.2.1:1000", "action=sync&group=g&password=guess")
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- callFrom(h, ctx, "192.0.2.1:1000", "action=sync&group=g&password=guess") }()
	eventually(t, "the request to be held", func() bool { return h.held.n.Load() == 1 })
	cancel()
	select {
	case w := <-done:
		if w.Body.Len() != 0 {
			t.Fatalf("answered %d %q", w.Code, w.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held request did not end with its client")
	}
	if n := h.held.n.Load(); n != 0 {
		t.Fatalf("%d held", n)
	}
	h.refusedPassword.t.mu.Lock()
	inflight := h.refusedPassword.t.addrs["192.0.2.1"].inflight
	h.refusedPassword.t.mu.Unlock()
	if inflight != 0 {
		t.Fatalf("%d checks in flight", inflight)
	}
}

// TestServletHoldsABoundedNumber: past the bound of held requests, a
// request that would be held is answered 429 at once.
func TestServletHoldsABoundedNumber(t *testing.T) {
	h, counts := limitEdge(t)
	h.refusedPassword.t.policy.first, h.refusedPassword.t.policy.maxDelay = time.Hour, time.Hour
	h.held.max = 2
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, addr := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		for range 3 {
			callFrom(h, ctx, addr+":1000", "action=sync&group=g&password=guess")
		}
	}
	for _, addr := range []string{"192.0.2.1", "192.0.2.2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			callFrom(h, ctx, addr+":1000", "action=sync&group=g&password=guess")
		}()
	}
	eventually(t, "two requests held", func() bool { return h.held.n.Load() == 2 })
	w := callFrom(h, ctx, "192.0.2.3:1000", "action=sync&group=g&password=guess")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("third held request: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if rl := counts.RateLimited.Load(); rl != 1 {
		t.Fatalf("rate_limited %d", rl)
	}
}
