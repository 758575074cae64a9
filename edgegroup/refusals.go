package edgegroup

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// attemptTracker counts refused attempts per client address, so that a
// flood of them is logged as a line per address and window with a count,
// not a line per attempt; the tracker of wrong passwords also keeps each
// address's failure streak, which delays and then refuses its further
// attempts (ratelimit.go). The table is bounded: when it is full (and
// nothing in it is idle), further addresses share one "other addresses"
// record.
type attemptTracker struct {
	window time.Duration // at most one report per address per window
	limit  int           // addresses tracked
	now    func() time.Time
	policy limitPolicy // of the failure streaks (ratelimit.go)

	mu        sync.Mutex
	addrs     map[string]*attempts
	other     attempts  // addresses the table had no room for
	nextEvict time.Time // a full table is swept for idle addresses at most once a second
}

// attempts is the record of one address.
type attempts struct {
	pending  int       // attempts since the last report
	reported time.Time // the last report (zero: none yet)
	last     time.Time // the latest attempt

	// The failure streak (ratelimit.go).
	failures    int       // failed passwords since the streak began
	lastFailure time.Time // the latest of them
	inflight    int       // password checks admitted and not yet done
}

// attemptReport is a line to log.
type attemptReport struct {
	Addr  string // "" for the addresses the table had no room for
	Count int    // attempts since the address's previous report
	First bool   // the first report of the address (since it was last forgotten)
}

// Defaults of the servlet's trackers.
const (
	attemptWindow   = time.Minute
	attemptAddrsMax = 4096
)

func newAttemptTracker(window time.Duration, limit int, now func() time.Time) *attemptTracker {
	return &attemptTracker{window: window, limit: limit, now: now, addrs: map[string]*attempts{},
		policy: defaultLimitPolicy}
}

// add records a refused attempt of addr. It returns a report when one is
// due: at the address's first attempt, and at the first attempt a window
// or more after its previous report.
func (t *attemptTracker) add(addr string) (attemptReport, bool) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	a, tracked := t.record(addr, now, true)
	if !tracked {
		addr = ""
	}
	return a.add(addr, now, t.window)
}

// record returns the record of addr (made if create), or the shared one
// when the table is full (tracked false); nil when there is none and
// !create. t.mu is held.
func (t *attemptTracker) record(addr string, now time.Time, create bool) (a *attempts, tracked bool) {
	if a := t.addrs[addr]; a != nil {
		return a, true
	}
	if len(t.addrs) >= t.limit && !now.Before(t.nextEvict) {
		t.nextEvict = now.Add(time.Second)
		t.evictIdle(now)
	}
	if len(t.addrs) >= t.limit {
		return &t.other, false
	}
	if !create {
		return nil, false
	}
	a = &attempts{}
	t.addrs[addr] = a
	return a, true
}

func (a *attempts) add(addr string, now time.Time, window time.Duration) (attemptReport, bool) {
	a.pending++
	a.last = now
	if !a.reported.IsZero() && now.Sub(a.reported) < window {
		return attemptReport{}, false
	}
	r := attemptReport{Addr: addr, Count: a.pending, First: a.reported.IsZero()}
	a.pending, a.reported = 0, now
	return r, true
}

// due returns the reports of the addresses whose attempts since their last
// report are a window old, so that the count of a flood that stopped is
// logged too, and forgets the addresses that have been quiet for a
// window. next is when the next report falls due (zero: nothing pending).
func (t *attemptTracker) due() (reports []attemptReport, next time.Time) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	check := func(addr string, a *attempts) {
		if a.pending == 0 {
			return
		}
		at := a.reported.Add(t.window)
		if !now.Before(at) {
			reports = append(reports, attemptReport{Addr: addr, Count: a.pending})
			a.pending, a.reported = 0, now
			return
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	for addr, a := range t.addrs {
		check(addr, a)
	}
	check("", &t.other)
	t.evictIdle(now)
	return reports, next
}

// evictIdle forgets the addresses with nothing pending whose last attempt
// is a window old, unless a password check of theirs runs or their
// failure streak goes on.
func (t *attemptTracker) evictIdle(now time.Time) {
	for addr, a := range t.addrs {
		if a.pending == 0 && now.Sub(a.last) >= t.window && a.inflight == 0 && !t.policy.streakOn(a, now) {
			delete(t.addrs, addr)
		}
	}
}

// refusalLog logs refused requests through an attemptTracker: a line at
// an address's first refusal and at most one per window after it, with the
// count of refusals since the previous line. A timer logs the count of a
// flood that stopped once its window has passed; close stops it.
type refusalLog struct {
	t     *attemptTracker
	log   *zap.Logger
	level zapcore.Level

	mu     sync.Mutex
	timer  *time.Timer // armed while attempts wait to be reported
	closed bool
}

func newRefusalLog(log *zap.Logger, level zapcore.Level) *refusalLog {
	return &refusalLog{t: newAttemptTracker(attemptWindow, attemptAddrsMax, time.Now), log: log, level: level}
}

// refused records a refused request of addr; fields describe it.
func (l *refusalLog) refused(addr string, fields ...zap.Field) {
	if r, ok := l.t.add(addr); ok {
		l.write(r, fields...)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer == nil && !l.closed {
		l.timer = time.AfterFunc(l.t.window, l.flush)
	}
}

// flush logs the counts that are due and waits for the next.
func (l *refusalLog) flush() {
	reports, next := l.t.due()
	for _, r := range reports {
		l.write(r)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	if !next.IsZero() && !l.closed {
		l.timer = time.AfterFunc(max(time.Second, next.Sub(l.t.now())), l.flush)
	}
}

func (l *refusalLog) write(r attemptReport, fields ...zap.Field) {
	if r.Addr == "" {
		l.log.Log(l.level, "cache servlet requests refused from more addresses than are tracked",
			append([]zap.Field{zap.Int("attempts", r.Count), zap.Int("tracked", l.t.limit)}, fields...)...)
		return
	}
	l.log.Log(l.level, "cache servlet request refused",
		append([]zap.Field{zap.String("remote", r.Addr), zap.Int("attempts", r.Count)}, fields...)...)
}

// close stops the timer; counts still pending are not logged.
func (l *refusalLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
	}
}

// clientAddr is the address a client's attempts are counted under: ip,
// the client IP the server determined (trusted proxies considered), else
// the connection's; IPv6 clients by their /64, which one host usually has
// to itself.
func clientAddr(r *http.Request, ip string) string {
	s := ip
	if s == "" {
		s = r.RemoteAddr
		if host, _, err := net.SplitHostPort(s); err == nil {
			s = host
		}
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}
