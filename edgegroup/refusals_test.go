package edgegroup

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/delivery-edge/edge/cache"
)

func TestAttemptTracker(t *testing.T) {
	type step struct {
		advance time.Duration
		addr    string
		want    *attemptReport // nil: no report
	}
	rep := func(addr string, n int, first bool) *attemptReport {
		return &attemptReport{Addr: addr, Count: n, First: first}
	}
	tests := []struct {
		name  string
		limit int
		steps []step
	}{
		{"first attempt, then one line a minute with the count", 10, []step{
			{0, "a", rep("a", 1, true)},
			{time.Second, "a", nil},
			{time.Second, "a", nil},
			{58 * time.Second, "a", rep("a", 3, false)}, // a minute after the first line
			{time.Second, "a", nil},
			{time.Minute, "a", rep("a", 2, false)},
		}},
		{"addresses are counted apart", 10, []step{
			{0, "a", rep("a", 1, true)},
			{0, "b", rep("b", 1, true)},
			{0, "a", nil},
			{0, "b", nil},
			{time.Minute, "b", rep("b", 2, false)},
		}},
		{"a full table shares one record for the rest", 2, []step{
			{0, "a", rep("a", 1, true)},
			{0, "b", rep("b", 1, true)},
			{0, "c", rep("", 1, true)},
			{0, "d", nil},
			{0, "c", nil},
			{0, "a", nil},
			// A minute on, b has been quiet for a window: e takes its place
			// (a, with an attempt still to report, stays).
			{time.Minute, "e", rep("e", 1, true)},
			{0, "a", rep("a", 2, false)},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1_700_000_000, 0) // the clock, moved by the test
			clock := func() time.Time { return now }
			tr := newAttemptTracker(time.Minute, tc.limit, clock)
			for i, s := range tc.steps {
				now = now.Add(s.advance)
				got, ok := tr.add(s.addr)
				switch {
				case s.want == nil && ok:
					t.Errorf("step %d (%s): unexpected report %+v", i, s.addr, got)
				case s.want != nil && (!ok || got != *s.want):
					t.Errorf("step %d (%s): report %+v %v, want %+v", i, s.addr, got, ok, *s.want)
				}
			}
		})
	}
}

// TestAttemptTrackerDue: the count of a flood that stopped is reported
// once its window has passed, and quiet addresses are forgotten.
func TestAttemptTrackerDue(t *testing.T) {
	now := time.Unix(1_700_000_000, 0) // the clock, moved by the test
	clock := func() time.Time { return now }
	tr := newAttemptTracker(time.Minute, 10, clock)
	tr.add("a")
	for range 99 {
		tr.add("a")
	}
	now = now.Add(10 * time.Second)
	tr.add("b")
	if reports, next := tr.due(); len(reports) != 0 || !next.Equal(now.Add(50*time.Second)) {
		t.Fatalf("due after 10s: %+v, next %v", reports, next)
	}
	now = now.Add(50 * time.Second)
	reports, next := tr.due()
	if len(reports) != 1 || reports[0] != (attemptReport{Addr: "a", Count: 99}) || !next.IsZero() {
		t.Fatalf("due after a minute: %+v, next %v", reports, next)
	}
	// a's last attempt is a minute old and now reported: forgotten; b's
	// (reported at once) is 50s old: kept.
	if _, ok := tr.addrs["b"]; len(tr.addrs) != 1 || !ok {
		t.Fatalf("tracked %v", tr.addrs)
	}
	now = now.Add(time.Minute)
	if reports, _ := tr.due(); len(reports) != 0 || len(tr.addrs) != 0 {
		t.Fatalf("after a quiet minute: %+v, %d tracked", reports, len(tr.addrs))
	}
	// A forgotten address starts again with a first report.
	if r, ok := tr.add("a"); !ok || !r.First || r.Count != 1 {
		t.Fatalf("forgotten address: %+v %v", r, ok)
	}
}

// TestAttemptTrackerBounded: a million addresses never grow the table past
// its limit.
func TestAttemptTrackerBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0) // the clock, moved by the test
	clock := func() time.Time { return now }
	tr := newAttemptTracker(time.Minute, 100, clock)
	lines := 0
	for i := range 1_000_000 {
		if i%1000 == 0 {
			now = now.Add(100 * time.Millisecond)
		}
		if _, ok := tr.add(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)); ok {
			lines++
		}
	}
	if len(tr.addrs) > 100 {
		t.Fatalf("tracked %d addresses", len(tr.addrs))
	}
	// 100 tracked addresses (replaced by new ones as they go quiet) plus a
	// line a minute for the rest: far fewer lines than attempts.
	if lines > 1000 {
		t.Fatalf("%d lines for 1,000,000 attempts", lines)
	}
}

func TestClientAddr(t *testing.T) {
	for _, c := range []struct{ remote, clientIP, want string }{
		{"192.0.2.1:4711", "", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:4711", "", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:80", "", "192.0.2.7"},
		{"192.0.2.1:4711", "198.51.100.9", "198.51.100.9"}, // from a trusted proxy
		{"192.0.2.1:4711", "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"@", "", "@"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.remote
		s := NewServlet(ServletConfig{ClientIP: func(*http.Request) string { return c.clientIP }})
		if got := s.clientAddr(r); got != c.want {
			t.Errorf("clientAddr(%q, %q) = %q, want %q", c.remote, c.clientIP, got, c.want)
		}
		s.Close()
	}
}

// TestServletLogsRefusalsOncePerAddress: 1,000 wrong passwords from one
// address write one line; a second address gets its own line.
func TestServletLogsRefusalsOncePerAddress(t *testing.T) {
	e := newTestEdge(t, nil, withPassword("secret"))
	core, logs := observer.New(zapcore.InfoLevel)
	h := NewServlet(ServletConfig{Password: "secret", Groups: e.groups, Engine: func() (*cache.Engine, error) { return e.eng, nil },
		Logger: zap.New(core)})
	t.Cleanup(h.Close)
	fastLimit(h)
	try := func(remote, query string) {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, DefaultServletPath+"?"+query, nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		// Past 20 failures the address gets 429 (ratelimit_test.go).
		if h.ServeHTTP(w, r); w.Code != http.StatusInternalServerError && w.Code != http.StatusTooManyRequests {
			t.Fatalf("answer %d", w.Code)
		}
	}
	for i := range 1000 {
		try(fmt.Sprintf("192.0.2.1:%d", 1024+i), "action=flush&key=k&group=g&password=guess"+fmt.Sprint(i))
	}
	refused := logs.FilterMessage("cache servlet request refused")
	if got := refused.Len(); got != 1 {
		t.Fatalf("1,000 wrong passwords wrote %d lines", got)
	}
	first := refused.All()[0]
	if f := first.ContextMap(); first.Level != zapcore.WarnLevel || f["remote"] != "192.0.2.1" ||
		f["attempts"] != int64(1) || f["reason"] != msgInvalidPassword {
		t.Fatalf("first line: %v %v", first.Level, f)
	}
	try("198.51.100.2:4000", "action=sync&group=g&password=guess")
	try("198.51.100.2:4001", "action=sync&group=g&password=guess")
	lines := logs.FilterMessage("cache servlet request refused").FilterField(zap.String("remote", "198.51.100.2"))
	if got := lines.Len(); got != 1 {
		t.Fatalf("second address: %d lines", got)
	}
	// Other refusals are counted apart, at info.
	try("192.0.2.1:5000", "action=nonsense")
	other := logs.FilterMessage("cache servlet request refused").FilterField(zap.String("reason", msgUnknownAction)).All()
	if len(other) != 1 || other[0].Level != zapcore.InfoLevel {
		t.Fatalf("unknown action: %v", other)
	}
	if total := logs.Len(); total != 3 {
		t.Errorf("%d lines in all: %v", total, logs.All())
	}
}

// TestRefusalLogReportsAStoppedFlood: the count of attempts after the first
// line is logged once the window has passed, without a further attempt.
func TestRefusalLogReportsAStoppedFlood(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	l := &refusalLog{t: newAttemptTracker(50*time.Millisecond, 10, time.Now), log: zap.New(core), level: zapcore.WarnLevel}
	defer l.close()
	for range 10 {
		l.refused("192.0.2.1")
	}
	deadline := time.Now().Add(10 * time.Second)
	for logs.Len() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	all := logs.All()
	if len(all) != 2 || all[0].ContextMap()["attempts"] != int64(1) || all[1].ContextMap()["attempts"] != int64(9) {
		t.Fatalf("lines: %v", all)
	}
	time.Sleep(150 * time.Millisecond) // nothing pending: no further line
	if logs.Len() != 2 {
		t.Fatalf("lines: %v", logs.All())
	}
}
