package edgegroup

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/delivery-edge/edge/cache"
)

// testEdge is a cache engine with its groups and cache servlet, started,
// served over HTTP on a loopback port: an edge as the delivery app makes
// it.
type testEdge struct {
	eng    *cache.Engine
	groups *Groups
	h      *Servlet
	url    string // servlet URL
	srv    *httptest.Server
	close  func()
}

// edgeConfig is what a test edge is made of: the data folder, the
// servlet password and the groups' peers.
type edgeConfig struct {
	DataDir  string
	Password string
	Peers    map[string][]string
	// The caps of the flush log and of each outbox (0: the defaults).
	LogMax, OutboxMax int64
	Logger            *zap.Logger // of the groups (nil: none)
}

// newTestEdge starts an edge; ln (optional) is the listener it serves on,
// so that peers can know its URL before it exists.
func newTestEdge(t *testing.T, ln net.Listener, configure func(c *edgeConfig)) *testEdge {
	t.Helper()
	c := &edgeConfig{DataDir: filepath.Join(t.TempDir(), "data")}
	if configure != nil {
		configure(c)
	}
	eng, err := cache.Open(cache.Options{DataDir: c.DataDir})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	g, err := New(Config{Password: c.Password, Peers: c.Peers, FlushLogMaxBytes: c.LogMax, OutboxMaxBytes: c.OutboxMax,
		Logger: c.Logger})
	if err != nil {
		eng.Close()
		t.Fatalf("groups: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.Start(ctx, eng)
	e := &testEdge{eng: eng, groups: g}
	e.h = NewServlet(ServletConfig{Password: c.Password, Groups: g, Engine: func() (*cache.Engine, error) { return eng, nil }})
	fastLimit(e.h) // tests that send wrong passwords are not held for seconds
	if ln != nil {
		e.srv = httptest.NewUnstartedServer(e.h)
		e.srv.Listener.Close()
		e.srv.Listener = ln
		e.srv.Start()
	} else {
		e.srv = httptest.NewServer(e.h)
	}
	e.url = e.srv.URL + DefaultServletPath
	var once sync.Once
	e.close = func() {
		once.Do(func() {
			e.srv.Close()
			g.Stop()
			e.h.Close()
			_ = eng.Close()
			cancel()
		})
	}
	t.Cleanup(e.close)
	return e
}

func (e *testEdge) engine(t *testing.T) *cache.Engine {
	t.Helper()
	return e.eng
}

// do calls the servlet directly (no network) with GET query or POST form.
func (e *testEdge) do(method, params string) (int, string) {
	var r *http.Request
	if method == http.MethodPost {
		r = httptest.NewRequest(method, DefaultServletPath, strings.NewReader(params))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, DefaultServletPath+"?"+params, nil)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func withPassword(pw string) func(c *edgeConfig) { return func(c *edgeConfig) { c.Password = pw } }

func TestServletAnswersTheSpecTable(t *testing.T) {
	e := newTestEdge(t, nil, withPassword("secret"))
	tests := []struct {
		name   string
		params string
		status int
		body   string
	}{
		{"flush done", "action=flush&key=k1&group=live&password=secret", 200, ""},
		{"sync done", "action=sync&group=live&since=0&password=secret", 200, "k1;"},
		{"action missing", "key=k1&group=live&password=secret", 500, msgUnknownAction},
		{"action unknown", "action=purge&key=k1&group=live&password=secret", 500, msgUnknownAction},
		{"action in other case", "action=FLUSH&key=k1&group=live&password=secret", 500, msgUnknownAction},
		{"action checked before password", "action=x", 500, msgUnknownAction},
		{"password missing", "action=flush&key=k1&group=live", 500, msgPasswordRequired},
		{"password empty", "action=flush&key=k1&group=live&password=", 500, msgPasswordRequired},
		{"password wrong", "action=flush&key=k1&group=live&password=secreT", 500, msgInvalidPassword},
		{"password prefix", "action=sync&group=live&password=secre", 500, msgInvalidPassword},
		{"password checked before key", "action=flush&group=live&password=nope", 500, msgInvalidPassword},
		{"no key", "action=flush&group=live&password=secret", 500, msgNoKey},
		{"empty key", "action=flush&key=&group=live&password=secret", 500, msgNoKey},
		{"no group for flush", "action=flush&key=k1&password=secret", 500, msgNoGroup},
		{"no group for sync", "action=sync&password=secret", 500, msgNoGroup},
		{"key checked before group", "action=flush&password=secret", 500, msgNoKey},
		{"sync needs no key", "action=sync&group=live&password=secret", 200, "k1;"},
		{"bad since", "action=sync&group=live&since=yesterday&password=secret", 500, msgInvalidSince},
		{"bad timestamp", "action=flush&key=k2&group=live&timestamp=-1&password=secret", 500, msgInvalidTimestamp},
		{"control character in key", "action=flush&key=a%0Ab&group=live&password=secret", 500, msgInvalidKey},
		{"key as long as the registry takes", "action=flush&key=" + strings.Repeat("k", cache.MaxNameBytes) + "&group=live&password=secret", 200, ""},
		{"key longer than the registry takes", "action=flush&key=" + strings.Repeat("k", cache.MaxNameBytes+1) + "&group=live&password=secret", 500, msgInvalidKey},
	}
	for _, tt := range tests {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				status, body := e.do(method, tt.params)
				if status != tt.status {
					t.Fatalf("status %d, want %d (body %q)", status, tt.status, body)
				}
				if tt.status == 500 || tt.body == "" {
					if body != tt.body {
						t.Fatalf("body %q, want %q", body, tt.body)
					}
				} else if !strings.HasPrefix(body, tt.body) {
					t.Fatalf("body %q, want prefix %q", body, tt.body)
				}
			})
		}
	}
	if status, _ := e.do(http.MethodPut, "action=sync&group=live&password=secret"); status != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d", status)
	}
}

func TestServletCacheDisabled(t *testing.T) {
	// A data folder that cannot be created: the engine cannot be opened.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, openErr := cache.Open(cache.Options{DataDir: filepath.Join(file, "data")})
	if openErr == nil {
		t.Fatal("the engine opened in a folder under a file")
	}
	core, logs := observer.New(zapcore.InfoLevel)
	e := &testEdge{h: NewServlet(ServletConfig{Password: "secret",
		Engine: func() (*cache.Engine, error) { return nil, openErr }, Logger: zap.New(core)})}
	defer e.h.Close()
	for _, p := range []string{"action=flush&key=k&group=g&password=secret", "action=sync&group=g", ""} {
		status, body := e.do(http.MethodGet, p)
		if status != 500 || body != msgDisabled {
			t.Errorf("%q: %d %q", p, status, body)
		}
	}
	if n := logs.FilterMessageSnippet("the cache is disabled").Len(); n != 1 {
		t.Errorf("%d lines about the disabled cache, want 1", n)
	}
}

func TestServletWithoutPassword(t *testing.T) {
	e := newTestEdge(t, nil, nil)
	for _, p := range []string{"action=flush&key=k&group=g", "action=flush&key=k2&group=g&password=anything"} {
		if status, body := e.do(http.MethodGet, p); status != 200 || body != "" {
			t.Errorf("%q: %d %q", p, status, body)
		}
	}
}

func TestServletSyncAnswer(t *testing.T) {
	e := newTestEdge(t, nil, nil)
	// Recent timestamps: the flush log prunes entries older than its
	// retention, possibly while this test runs.
	base := time.Now().Add(-time.Minute).UnixMilli()
	for i, key := range []string{"home", "section:/politik", "a;b"} {
		p := url.Values{"action": {"flush"}, "key": {key}, "group": {"live"}, "timestamp": {strconv.FormatInt(base+int64(i), 10)}}
		if status, _ := e.do(http.MethodGet, p.Encode()); status != 200 {
			t.Fatalf("flush %q: %d", key, status)
		}
	}
	e.do(http.MethodGet, "action=flush&key=other&group=preview&timestamp="+strconv.FormatInt(base+500, 10))
	_, body := e.do(http.MethodGet, "action=sync&group=live&since="+strconv.FormatInt(base+1, 10))
	if want := fmt.Sprintf("section:/politik;%d\na;b;%d\n", base+1, base+2); body != want {
		t.Fatalf("sync answer %q, want %q", body, want)
	}
	flushes, bad := parseSyncAnswer([]byte(body))
	if bad != 0 || len(flushes) != 2 || flushes[1].Key != "a;b" || flushes[1].Time != base+2 {
		t.Fatalf("parsed %+v (%d bad)", flushes, bad)
	}
	if _, body := e.do(http.MethodGet, "action=sync&group=live&since="+strconv.FormatInt(base+1000, 10)); body != "" {
		t.Fatalf("nothing later, got %q", body)
	}
}

func TestServletDuplicateTimestampIgnored(t *testing.T) {
	e := newTestEdge(t, nil, nil)
	p := "action=flush&key=k&group=live&timestamp=1234&forward=false"
	e.do(http.MethodGet, p)
	e.do(http.MethodPost, p)
	flushes, _ := e.engine(t).FlushesSince("live", 0)
	if len(flushes) != 1 || flushes[0].Time != 1234 {
		t.Fatalf("log: %+v", flushes)
	}
}

// recordingPeer is a fake peer's cache servlet that records what it gets
// and answers with the status fail returns (200 when nil).
type recordingPeer struct {
	mu   sync.Mutex
	got  []url.Values
	fail func(n int) int
	sync string // answer to action=sync
	srv  *httptest.Server
}

func newRecordingPeer(t *testing.T, ln net.Listener) *recordingPeer {
	p := &recordingPeer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		p.mu.Lock()
		p.got = append(p.got, r.Form)
		n := len(p.got)
		fail, answer := p.fail, p.sync
		p.mu.Unlock()
		if r.URL.Path != DefaultServletPath {
			http.NotFound(w, r)
			return
		}
		if fail != nil {
			if code := fail(n); code != 200 {
				w.WriteHeader(code)
				return
			}
		}
		if r.Form.Get("action") == "sync" {
			fmt.Fprint(w, answer)
		}
	})
	if ln == nil {
		p.srv = httptest.NewServer(h)
	} else {
		p.srv = httptest.NewUnstartedServer(h)
		p.srv.Listener.Close()
		p.srv.Listener = ln
		p.srv.Start()
	}
	t.Cleanup(p.srv.Close)
	return p
}

func (p *recordingPeer) requests(action string) []url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []url.Values
	for _, v := range p.got {
		if v.Get("action") == action {
			out = append(out, v)
		}
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func inGroup(group string, peers ...string) func(c *edgeConfig) {
	return func(c *edgeConfig) {
		if c.Peers == nil {
			c.Peers = map[string][]string{}
		}
		c.Peers[group] = peers
	}
}

func both(fns ...func(c *edgeConfig)) func(c *edgeConfig) {
	return func(c *edgeConfig) {
		for _, fn := range fns {
			fn(c)
		}
	}
}

func TestServletForwardsToEveryPeer(t *testing.T) {
	p1, p2 := newRecordingPeer(t, nil), newRecordingPeer(t, nil)
	e := newTestEdge(t, nil, both(withPassword("secret"), inGroup("live", p1.srv.URL, p2.srv.URL+DefaultServletPath)))
	if status, body := e.do(http.MethodGet, "action=flush&key=home&group=live&timestamp=777&password=secret"); status != 200 {
		t.Fatalf("flush: %d %q", status, body)
	}
	for _, p := range []*recordingPeer{p1, p2} {
		eventually(t, "forwarded flush", func() bool { return len(p.requests("flush")) == 1 })
		got := p.requests("flush")[0]
		want := url.Values{"action": {"flush"}, "key": {"home"}, "group": {"live"}, "forward": {"false"},
			"timestamp": {"777"}, "password": {"secret"}}
		for k, v := range want {
			if !slices.Equal(got[k], v) {
				t.Errorf("forwarded %s = %v, want %v", k, got[k], v)
			}
		}
	}
	eventually(t, "empty outbox", func() bool {
		a, _ := e.engine(t).PendingForwards(p1.srv.URL+DefaultServletPath, 0)
		b, _ := e.engine(t).PendingForwards(p2.srv.URL+DefaultServletPath, 0)
		return len(a)+len(b) == 0
	})
	// A flush of a group this edge does not know is applied, not forwarded.
	if status, _ := e.do(http.MethodGet, "action=flush&key=home&group=other&password=secret"); status != 200 {
		t.Fatal("flush of an unknown group refused")
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(p1.requests("flush")); n != 1 {
		t.Fatalf("peer got %d flushes, want 1", n)
	}
}

func TestServletForwardFalseIsNotForwarded(t *testing.T) {
	p := newRecordingPeer(t, nil)
	e := newTestEdge(t, nil, inGroup("live", p.srv.URL))
	for _, fwd := range []string{"false", "0", "FALSE", "garbage"} {
		if status, _ := e.do(http.MethodGet, "action=flush&key=k-"+fwd+"&group=live&forward="+fwd); status != 200 {
			t.Fatalf("forward=%s: %d", fwd, status)
		}
	}
	if fw, _ := e.engine(t).PendingForwards(p.srv.URL+DefaultServletPath, 0); len(fw) != 0 {
		t.Fatalf("outbox has %d entries", len(fw))
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(p.requests("flush")); n != 0 {
		t.Fatalf("peer got %d flushes", n)
	}
	// The duplicate of a forwarded flush is not forwarded again either.
	e.do(http.MethodGet, "action=flush&key=d&group=live&timestamp=99")
	e.do(http.MethodGet, "action=flush&key=d&group=live&timestamp=99")
	eventually(t, "one forward", func() bool { return len(p.requests("flush")) == 1 })
	time.Sleep(300 * time.Millisecond)
	if n := len(p.requests("flush")); n != 1 {
		t.Fatalf("duplicate forwarded: %d", n)
	}
}

func TestOutboxRetriesUntilConfirmed(t *testing.T) {
	p := newRecordingPeer(t, nil)
	p.fail = func(n int) int {
		if n <= 3 {
			return http.StatusServiceUnavailable
		}
		return 200
	}
	e := newTestEdge(t, nil, inGroup("live", p.srv.URL))
	peer := p.srv.URL + DefaultServletPath
	eventually(t, "start-up sync attempt", func() bool { return len(p.requests("sync")) >= 1 })
	e.do(http.MethodGet, "action=flush&key=k&group=live&timestamp=5")
	eventually(t, "delivery after failures", func() bool {
		fw, _ := e.engine(t).PendingForwards(peer, 0)
		return len(fw) == 0
	})
	if n := len(p.requests("flush")); n < 2 {
		t.Fatalf("flush requests %d, want retries", n)
	}
}

func TestOutboxReachesPeerThatComesUpLater(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refuses connections until the peer starts
	peer := "http://" + addr + DefaultServletPath
	e := newTestEdge(t, nil, inGroup("live", "http://"+addr))
	e.do(http.MethodGet, "action=flush&key=late&group=live&timestamp=11")
	time.Sleep(700 * time.Millisecond) // a few failed attempts
	if fw, _ := e.engine(t).PendingForwards(peer, 0); len(fw) != 1 {
		t.Fatalf("outbox: %d entries, want 1 while the peer is down", len(fw))
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port taken meanwhile: %v", err)
	}
	p := newRecordingPeer(t, ln)
	eventually(t, "delivery to the peer that came up", func() bool { return len(p.requests("flush")) == 1 })
	if got := p.requests("flush")[0]; got.Get("key") != "late" || got.Get("timestamp") != "11" || got.Get("forward") != "false" {
		t.Fatalf("delivered %v", got)
	}
}

func TestOutboxSurvivesRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := newRecordingPeer(t, nil)
	p.fail = func(int) int { return http.StatusServiceUnavailable }
	first := newTestEdge(t, nil, both(func(c *edgeConfig) { c.DataDir = dir }, inGroup("live", p.srv.URL)))
	first.do(http.MethodGet, "action=flush&key=persisted&group=live&timestamp=21")
	eventually(t, "a failed attempt", func() bool { return len(p.requests("flush")) >= 1 })
	first.close() // closes the engine

	p.mu.Lock()
	p.fail = nil
	p.mu.Unlock()
	second := newTestEdge(t, nil, both(func(c *edgeConfig) { c.DataDir = dir }, inGroup("live", p.srv.URL)))
	eventually(t, "delivery after restart", func() bool {
		fw, _ := second.engine(t).PendingForwards(p.srv.URL+DefaultServletPath, 0)
		return len(fw) == 0
	})
	last := p.requests("flush")
	if got := last[len(last)-1]; got.Get("key") != "persisted" {
		t.Fatalf("delivered %v", got)
	}
}

func TestStartupCatchUp(t *testing.T) {
	p := newRecordingPeer(t, nil)
	p.sync = "home;1000\nsection:/politik;2000\nbroken line\n"
	dir := filepath.Join(t.TempDir(), "data")
	cfg := both(func(c *edgeConfig) { c.DataDir = dir }, withPassword("pw"), inGroup("live", p.srv.URL))
	e := newTestEdge(t, nil, cfg)
	eng := e.engine(t)
	eventually(t, "caught up", func() bool {
		pos, _ := eng.SyncPosition("live", p.srv.URL+DefaultServletPath)
		return pos == 2000
	})
	got := p.requests("sync")[0]
	for k, v := range map[string]string{"group": "live", "since": "0", "forward": "false", "password": "pw"} {
		if got.Get(k) != v {
			t.Errorf("sync %s = %q, want %q", k, got.Get(k), v)
		}
	}
	for _, f := range []cache.Flush{{Key: "home", Time: 1000}, {Key: "section:/politik", Time: 2000}} {
		if ok, _ := eng.FlushLogged(f.Key, f.Time); !ok {
			t.Errorf("%+v not applied", f)
		}
	}
	// A sync with forward (default true) asks the peers again, from the
	// last seen flush minus the overlap. (Once the start-up catch-up has
	// ended: a trigger while one runs is dropped, see TriggerSync.)
	eventually(t, "start-up catch-up ended", func() bool {
		e.groups.mu.Lock()
		defer e.groups.mu.Unlock()
		return !e.groups.syncing["live"]
	})
	e.do(http.MethodGet, "action=sync&group=live&password=pw")
	eventually(t, "triggered sync", func() bool { return len(p.requests("sync")) == 2 })
	if since := p.requests("sync")[1].Get("since"); since != "0" { // 2000 - 60000 < 0
		t.Errorf("second since = %s", since)
	}
	// forward=false does not.
	e.do(http.MethodGet, "action=sync&group=live&password=pw&forward=false")
	time.Sleep(200 * time.Millisecond)
	if n := len(p.requests("sync")); n != 2 {
		t.Errorf("forward=false sync triggered a catch-up (%d syncs)", n)
	}
}

// TestGroupOfTwoEdgesNoLoop runs two real servlets that are each other's
// peer: a flush on one reaches the other once and is never sent back.
func TestGroupOfTwoEdgesNoLoop(t *testing.T) {
	lnA, _ := net.Listen("tcp", "127.0.0.1:0")
	lnB, _ := net.Listen("tcp", "127.0.0.1:0")
	urlA, urlB := "http://"+lnA.Addr().String(), "http://"+lnB.Addr().String()
	a := newTestEdge(t, lnA, both(withPassword("s"), inGroup("live", urlB)))
	b := newTestEdge(t, lnB, both(withPassword("s"), inGroup("live", urlA)))
	if status, body := a.do(http.MethodGet, "action=flush&key=home&group=live&password=s"); status != 200 {
		t.Fatalf("%d %q", status, body)
	}
	eventually(t, "B applied", func() bool {
		got, _ := b.engine(t).FlushesSince("live", 0)
		return len(got) == 1 && got[0].Key == "home"
	})
	time.Sleep(300 * time.Millisecond)
	if fw, _ := b.engine(t).PendingForwards(urlA+DefaultServletPath, 0); len(fw) != 0 {
		t.Fatal("B queued the forwarded flush for A")
	}
	if got, _ := a.engine(t).FlushesSince("live", 0); len(got) != 1 {
		t.Fatalf("A's log: %+v", got)
	}
}

func TestPeerServletURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://edge-2.internal":             "http://edge-2.internal" + DefaultServletPath,
		"http://edge-2.internal/":            "http://edge-2.internal" + DefaultServletPath,
		"https://edge-2:8443/custom/servlet": "https://edge-2:8443/custom/servlet",
	} {
		if got, err := PeerServletURL(in); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := PeerServletURL("ftp://x"); err == nil {
		t.Error("ftp accepted")
	}
}

// TestServletKeysAreRegistryKeys: the servlet takes exactly the keys a
// render backend may register a page under, so every registered key can
// be flushed and no flush names a key no page could have.
func TestServletKeysAreRegistryKeys(t *testing.T) {
	now := time.Now()
	for _, n := range []int{1, cache.MaxNameBytes - 1, cache.MaxNameBytes, cache.MaxNameBytes + 1, 4096} {
		key := strings.Repeat("k", n)
		_, msg := parseServletRequest(url.Values{paramAction: {actionFlush}, paramKey: {key}, paramGroup: {"live"}}, "", now)
		_, err := cache.ParseRenderInfo(http.Header{cache.HeaderCacheKeys: {`"` + key + `"`}}, now)
		if servlet, registry := msg == "", err == nil; servlet != registry {
			t.Errorf("key of %d bytes: servlet takes it %v (%q), registry %v (%v)", n, servlet, msg, registry, err)
		}
	}
}
