package stagingclient_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/delivery-edge/edge/integration/origin"
	"github.com/delivery-edge/edge/stagingclient"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const token = origin.DemoToken

// seeded returns a store with the demo site. SeedDemo draws 15 JPEGs,
// which is slow under the race detector, so it runs once and each test gets
// a copy made by replaying the newest versions.
func seeded(t testing.TB) *origin.Content {
	t.Helper()
	seedOnce.Do(func() {
		seedStore = origin.NewContent()
		origin.SeedDemo(seedStore)
	})
	c := origin.NewContent()
	for _, id := range seedStore.IDs() {
		d, _ := seedStore.Latest(id)
		if b, ok := seedStore.Binary(d.UUID); ok {
			c.SetBinary(d.UUID, b)
		}
		c.Put(d, nil)
	}
	c.SetVariants(seedStore.Variants())
	return c
}

var (
	seedOnce  sync.Once
	seedStore *origin.Content
)

// request is what the recording wrapper saw of one request.
type request struct {
	Path          string
	RemoteAddr    string
	Authorization string
	SourceTime    string
	Close         bool
	Status        int
}

// env is a staging API on 127.0.0.1 with a client for it.
type env struct {
	content *origin.Content
	staging *origin.Staging
	srv     *httptest.Server
	client  *stagingclient.Client

	mu   sync.Mutex
	reqs []request
}

func newEnv(t testing.TB, c *origin.Content, scfg origin.StagingConfig, ccfg stagingclient.Config) *env {
	t.Helper()
	if c == nil {
		c = origin.NewContent()
	}
	e := &env{content: c, staging: origin.NewStaging(c, scfg)}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		e.staging.ServeHTTP(rw, r)
		e.mu.Lock()
		e.reqs = append(e.reqs, request{Path: r.URL.RequestURI(), RemoteAddr: r.RemoteAddr,
			Authorization: r.Header.Get("Authorization"), SourceTime: r.Header.Get(stagingclient.HeaderSourceTime),
			Close: r.Close, Status: rw.code})
		e.mu.Unlock()
	}))
	if ccfg.BaseURLs == nil {
		ccfg.BaseURLs = []string{e.srv.URL}
	}
	if ccfg.Token == "" {
		ccfg.Token = token
	}
	if ccfg.BackoffBase == 0 {
		ccfg.BackoffBase = time.Millisecond
		ccfg.BackoffMax = 10 * time.Millisecond
	}
	cl, err := stagingclient.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	e.client = cl
	t.Cleanup(func() {
		e.staging.Close()
		cl.Close()
		e.srv.Close()
	})
	return e
}

func (e *env) requests() []request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]request(nil), e.reqs...)
}

func (e *env) resetRequests() {
	e.mu.Lock()
	e.reqs = nil
	e.mu.Unlock()
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// publish adds n stories to c.
func publish(c *origin.Content, prefix string, n int) []origin.Event {
	evs := make([]origin.Event, n)
	for i := range n {
		id := fmt.Sprintf("%s%d", prefix, i)
		evs[i] = c.Put(origin.Document{ID: id, UUID: origin.DemoUUID(id), NodeType: "story",
			Properties: map[string]any{"title": id}}, nil)
	}
	return evs
}

// observed is a logger that records everything from debug level up.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	return zap.New(core), logs
}

// eventually polls cond every 5ms until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
