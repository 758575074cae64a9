package edgegroup

import (
	"sync/atomic"
	"time"
)

// Wrong passwords are limited per client address (the address the refusal
// log counts under; an IPv6 client by its /64), with a failure streak in
// the address's record of the password attemptTracker:
//
//   - the first failures of a streak are answered at once;
//   - after them, each further attempt of the address is held before its
//     password is checked, the wait doubling per failure up to a cap,
//     whatever the password (so the wait tells nothing);
//   - past a threshold the address is answered 429 with Retry-After at
//     once, without checking the password, until its streak ends;
//   - a streak ends when the address has not failed for a while, or at
//     once with a correct password.
//
// Attempts still being checked count as failures of the streak, so a
// burst of parallel requests gets no more checks than a sequence. A held
// request holds no lock and only its timer; at most maxHeld are held at
// once across all addresses, and beyond that the answer is 429 at once.
// A held request ends when its client goes.

// limitPolicy are the numbers of the limit.
type limitPolicy struct {
	free     int           // failures of a streak answered without a wait
	first    time.Duration // the wait after them, doubling per further failure
	maxDelay time.Duration // the longest wait
	block    int           // failures (and checks in flight) from which the answer is 429
	forget   time.Duration // a streak ends this long after its latest failure
	maxHeld  int64         // requests held at once (all addresses)
}

// defaultLimitPolicy: 3 failures free, then 100 ms, 200 ms, … 5 s; from
// the 20th failure in a row (each within a minute of the previous), 429
// until a minute after the latest; at most 64 requests held at once.
var defaultLimitPolicy = limitPolicy{free: 3, first: 100 * time.Millisecond, maxDelay: 5 * time.Second,
	block: 20, forget: time.Minute, maxHeld: 64}

// streakOn reports whether a's failure streak goes on at now.
func (p limitPolicy) streakOn(a *attempts, now time.Time) bool {
	return a.failures > 0 && now.Sub(a.lastFailure) < p.forget
}

// delay is the wait of an attempt that would be failure n+1 of a streak
// (0: none).
func (p limitPolicy) delay(n int) time.Duration {
	if n < p.free {
		return 0
	}
	d := p.first
	for i := p.free; i < n && d < p.maxDelay; i++ {
		d *= 2
	}
	return min(d, p.maxDelay)
}

// admission is the decision on a password check of one address.
type admission struct {
	rec        *attempts     // the record the check counts in (nil: none, no streak)
	delay      time.Duration // wait before the check
	retryAfter time.Duration // > 0: refuse with 429, no check
}

// admit decides on a password check of addr; unless it is refused, the
// caller reports its end with done.
func (t *attemptTracker) admit(addr string) admission {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	a, _ := t.record(addr, now, false)
	if a == nil || !t.policy.streakOn(a, now) {
		if a != nil {
			a.failures = 0 // a streak that ended
		}
		return admission{}
	}
	n := a.failures + a.inflight
	if n >= t.policy.block {
		return admission{retryAfter: max(time.Second, a.lastFailure.Add(t.policy.forget).Sub(now))}
	}
	a.inflight++
	return admission{rec: a, delay: t.policy.delay(n)}
}

// done ends a password check admitted by admit: checked is false when the
// password was not checked (the client went while it was held), failed
// whether it was wrong or missing. A failure starts or extends the streak
// of addr; a correct password ends it.
func (t *attemptTracker) done(addr string, adm admission, checked, failed bool) {
	if adm.rec == nil && !(checked && failed) {
		return // no streak, and none begins
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	a := adm.rec
	if a != nil {
		a.inflight--
	} else {
		a, _ = t.record(addr, now, true)
	}
	switch {
	case !checked:
	case failed:
		if !t.policy.streakOn(a, now) {
			a.failures = 0
		}
		a.failures++
		a.lastFailure = now
		a.last = now
	case a != &t.other:
		// A correct password ends the address's streak; the streak that
		// addresses beyond the table share is not one client's to end.
		a.failures = 0
	}
}

// heldCount bounds the requests held at once.
type heldCount struct {
	n   atomic.Int64
	max int64
}

func (h *heldCount) acquire() bool {
	if h.n.Add(1) > h.max {
		h.n.Add(-1)
		return false
	}
	return true
}

func (h *heldCount) release() { h.n.Add(-1) }

// RefusalCounts count the servlet's refused requests by reason; several
// servlets (the handlers of several sites, and of the configs of a
// reload) may share one.
type RefusalCounts struct {
	// Password: the password was missing or wrong.
	Password atomic.Int64
	// RateLimited: answered 429 (the address had too many failures, or
	// too many requests were held).
	RateLimited atomic.Int64
	// Other: every other refusal (unknown action, a missing or invalid
	// parameter, a method other than GET or POST, a body too large).
	Other atomic.Int64
}
