package stagingclient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/origin"
	"github.com/delivery-edge/edge/stagingclient"
)

func TestValidateToken(t *testing.T) {
	for _, tc := range []struct {
		token string
		ok    bool
	}{
		{"00000000-0000-0000-0000-000000000000", true},
		{"6F1C2A8E-5D0B-4C1E-9A57-2F0D3B8C4E11", true},
		{"", false},
		{"secret", false},
		{"6f1c2a8e5d0b4c1e9a572f0d3b8c4e11", false},              // no dashes
		{"6f1c2a8e-5d0b-4c1e-9a57-2f0d3b8c4e1", false},           // short
		{"6f1c2a8e-5d0b-4c1e-9a57-2f0d3b8c4e11x", false},         // long
		{"6f1c2a8e-5d0b-4c1e-9a57_2f0d3b8c4e11", false},          // wrong separator
		{"6f1c2a8g-5d0b-4c1e-9a57-2f0d3b8c4e11", false},          // not hex
		{"{6f1c2a8e-5d0b-4c1e-9a57-2f0d3b8c4e11}", false},        // braces
		{"urn:uuid:6f1c2a8e-5d0b-4c1e-9a57-2f0d3b8c4e11", false}, // URN
	} {
		err := stagingclient.ValidateToken(tc.token)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateToken(%q) = %v, want ok=%v", tc.token, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "token") {
			t.Errorf("error %q does not name the token", err)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]stagingclient.Config{
		"no URL":      {Token: token},
		"bad scheme":  {BaseURLs: []string{"ftp://x"}, Token: token},
		"no host":     {BaseURLs: []string{"http://"}, Token: token},
		"with query":  {BaseURLs: []string{"http://x/?a=b"}, Token: token},
		"bad token":   {BaseURLs: []string{"http://x"}, Token: "secret"},
		"empty token": {BaseURLs: []string{"http://x"}},
	} {
		if _, err := stagingclient.New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

func TestEveryRequestCarriesTokenAndSourceTime(t *testing.T) {
	e := newEnv(t, seeded(t), origin.StagingConfig{}, stagingclient.Config{})
	ctx := context.Background()
	if _, err := e.client.Events(ctx, 0, 10, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Document(ctx, "story100"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.ImageVariants(ctx); err != nil {
		t.Fatal(err)
	}
	reqs := e.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	last := strconv.FormatInt(e.content.LastSourceTime(), 10)
	for i, r := range reqs {
		if r.Authorization != "Bearer "+token {
			t.Errorf("request %d: Authorization %q", i, r.Authorization)
		}
		want := last
		if i == 0 {
			want = "0" // nothing seen yet
		}
		if r.SourceTime != want {
			t.Errorf("request %d (%s): %s %q, want %q", i, r.Path, stagingclient.HeaderSourceTime, r.SourceTime, want)
		}
	}
	if got := e.client.SourceTime(); got != e.content.LastSourceTime() {
		t.Errorf("SourceTime() = %d, want %d", got, e.content.LastSourceTime())
	}
}

func TestUnauthorizedIsReportedAndNotRetried(t *testing.T) {
	e := newEnv(t, seeded(t), origin.StagingConfig{Replicas: 3},
		stagingclient.Config{Token: "11111111-2222-3333-4444-555555555555"})
	ctx := context.Background()
	calls := map[string]func() error{
		"events":   func() error { _, err := e.client.Events(ctx, 0, 10, 0); return err },
		"document": func() error { _, err := e.client.Document(ctx, "story100"); return err },
		"binary":   func() error { _, err := e.client.Binary(ctx, origin.DemoUUID("image200")); return err },
		"variants": func() error { _, err := e.client.ImageVariants(ctx); return err },
		"ping":     func() error { return e.client.Ping(ctx) },
	}
	for name, call := range calls {
		e.resetRequests()
		err := call()
		if !errors.Is(err, stagingclient.ErrUnauthorized) {
			t.Errorf("%s: err = %v, want ErrUnauthorized", name, err)
			continue
		}
		if !strings.Contains(err.Error(), "rejected the access token") {
			t.Errorf("%s: message %q does not say the token was rejected", name, err)
		}
		if n := len(e.requests()); n != 1 {
			t.Errorf("%s: %d requests, want exactly 1 (no retry)", name, n)
		}
	}
	if st := e.client.Stats(); st.NotUpToDateRetries != 0 || st.Failovers != 0 || st.Unauthorized != int64(len(calls)) {
		t.Errorf("stats %+v", st)
	}
}

func TestNotUpToDateIsRetried(t *testing.T) {
	const hour = time.Hour
	for _, tc := range []struct {
		name          string
		staging       origin.StagingConfig
		maxAttempts   int
		wantErr       bool
		wantRetries   int64 // -1: at least one
		wantRequests  int   // 0: don't check
		distinctConns bool  // every attempt came on its own connection
	}{
		{name: "per request, two of three replicas behind",
			staging: origin.StagingConfig{Lags: []time.Duration{hour, hour, 0}}, wantRetries: 2, wantRequests: 3, distinctConns: true},
		{name: "per connection (L4), two of three replicas behind",
			staging: origin.StagingConfig{Lags: []time.Duration{hour, hour, 0}, PerConnection: true}, wantRetries: 2, wantRequests: 3, distinctConns: true},
		{name: "one replica that catches up",
			staging: origin.StagingConfig{Lag: 300 * time.Millisecond}, maxAttempts: 30, wantRetries: -1},
		{name: "every replica behind: give up",
			staging: origin.StagingConfig{Lags: []time.Duration{hour, hour}}, maxAttempts: 4, wantErr: true, wantRetries: 3, wantRequests: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := seeded(t)
			e := newEnv(t, c, tc.staging, stagingclient.Config{MaxAttempts: tc.maxAttempts,
				BackoffBase: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond})
			publish(c, "fresh", 1)
			// The client has seen the newest source time (as after reading
			// the events from an up-to-date replica).
			e.client.ObserveSourceTime(c.LastSourceTime())

			doc, err := e.client.Document(context.Background(), "fresh0")
			if tc.wantErr {
				if !errors.Is(err, stagingclient.ErrNotUpToDate) {
					t.Fatalf("err = %v, want ErrNotUpToDate", err)
				}
				t.Logf("error: %v", err)
			} else if err != nil {
				t.Fatal(err)
			} else if doc.ID != "fresh0" {
				t.Fatalf("got %+v", doc)
			}
			retries := e.client.Retries()
			if tc.wantRetries >= 0 && retries != tc.wantRetries || tc.wantRetries < 0 && retries < 1 {
				t.Errorf("retries = %d, want %d", retries, tc.wantRetries)
			}
			reqs := e.requests()
			if tc.wantRequests > 0 && len(reqs) != tc.wantRequests {
				t.Errorf("%d requests, want %d", len(reqs), tc.wantRequests)
			}
			if nud := e.staging.Stats().NotUpToDate; nud != retries+map[bool]int64{true: 1}[tc.wantErr] {
				t.Errorf("staging counted %d NotUpToDate answers, client %d retries", nud, retries)
			}
			seen := map[string]bool{}
			for i, r := range reqs {
				if i > 0 && !r.Close {
					t.Errorf("retry %d did not ask to close its connection", i)
				}
				if tc.distinctConns && seen[r.RemoteAddr] {
					t.Errorf("attempt %d reused connection %s", i, r.RemoteAddr)
				}
				seen[r.RemoteAddr] = true
			}
		})
	}
}

// TestRetriesAskForWhatTheRequestHadSeen: a request asks for a server at
// least as new as the source time the client had seen when it began, on
// every retry. Events the client sees while the request retries (its
// poller reads on) are not this request's business: found by the soak,
// where a replica that lags 2 s behind a stream of 10 changes a second
// could never answer a retry that asked for the newest source time
// seen, and a request that met it ten times in a row gave up.
func TestRetriesAskForWhatTheRequestHadSeen(t *testing.T) {
	c := seeded(t)
	// The only replica lags; the backoff makes 30 attempts take well over
	// the lag.
	e := newEnv(t, c, origin.StagingConfig{Lag: 300 * time.Millisecond}, stagingclient.Config{MaxAttempts: 30,
		BackoffBase: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond})
	publish(c, "fresh", 1)
	e.client.ObserveSourceTime(c.LastSourceTime())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { // changes go on, and the client sees each of them
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			publish(c, fmt.Sprintf("later%d-", i), 1)
			e.client.ObserveSourceTime(c.LastSourceTime())
			time.Sleep(20 * time.Millisecond)
		}
	}()
	_, err := e.client.Document(context.Background(), "fresh0")
	cancel()
	<-done
	if err != nil {
		t.Fatalf("the document was not read once the replica had caught up with what the client had seen: %v", err)
	}
	var asked []string
	for _, r := range e.requests() {
		asked = append(asked, r.SourceTime)
	}
	for i, st := range asked {
		if st != asked[0] {
			t.Fatalf("attempt %d asked for source time %s, the first for %s", i, st, asked[0])
		}
	}
	if len(asked) < 2 {
		t.Fatalf("%d attempts: the replica was not behind", len(asked))
	}
}

// TestRetryGoesOutOnANewConnection checks that the retry after NotUpToDate
// does not reuse the connection to the lagging server (so that an L4
// balancer can pick another one), while ordinary requests do reuse theirs.
func TestRetryGoesOutOnANewConnection(t *testing.T) {
	c := seeded(t)
	e := newEnv(t, c, origin.StagingConfig{Lags: []time.Duration{0, time.Hour}, PerConnection: true}, stagingclient.Config{})
	ctx := context.Background()
	// Up-to-date replica 0 gets the first connection; keep-alive keeps us there.
	for range 5 {
		if _, err := e.client.Document(ctx, "story100"); err != nil {
			t.Fatal(err)
		}
	}
	reqs := e.requests()
	for _, r := range reqs[1:] {
		if r.RemoteAddr != reqs[0].RemoteAddr {
			t.Fatalf("ordinary requests did not reuse the connection: %s vs %s", r.RemoteAddr, reqs[0].RemoteAddr)
		}
	}
	// Make the pinned replica fall behind: the next request gets
	// NotUpToDate, the retry must come on a new connection, which the
	// balancer gives to the next replica.
	publish(c, "late", 1)
	e.client.ObserveSourceTime(c.LastSourceTime())
	if err := e.staging.SetLag(0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := e.staging.SetLag(1, 0); err != nil {
		t.Fatal(err)
	}
	e.resetRequests()
	if _, err := e.client.Document(ctx, "late0"); err != nil {
		t.Fatal(err)
	}
	reqs = e.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2: %+v", len(reqs), reqs)
	}
	if reqs[0].Status != http.StatusServiceUnavailable || reqs[1].Status != http.StatusOK {
		t.Errorf("statuses %d, %d; want 503 then 200", reqs[0].Status, reqs[1].Status)
	}
	if reqs[1].RemoteAddr == reqs[0].RemoteAddr {
		t.Errorf("the retry reused the connection %s", reqs[0].RemoteAddr)
	}
	t.Logf("first attempt on %s (503), retry on %s (200)", reqs[0].RemoteAddr, reqs[1].RemoteAddr)
}

func TestEventsArePagedInOrder(t *testing.T) {
	c := origin.NewContent()
	want := publish(c, "doc", 1000)
	for _, tc := range []struct {
		limit     int
		wantPages int
	}{
		{limit: 0, wantPages: 10},    // server default (100)
		{limit: 1000, wantPages: 10}, // capped at 100 by the server
		{limit: 100, wantPages: 10},
		{limit: 37, wantPages: 28},
		{limit: 1, wantPages: 1000},
	} {
		t.Run("limit="+strconv.Itoa(tc.limit), func(t *testing.T) {
			e := newEnv(t, c, origin.StagingConfig{Replicas: 3}, stagingclient.Config{})
			var got []stagingclient.Event
			pages := 0
			lastUpTo := int64(0)
			upTo, err := e.client.EventsSince(context.Background(), 0, tc.limit, func(evs []stagingclient.Event, upTo int64) error {
				pages++
				if len(evs) == 0 || len(evs) > 100 {
					t.Errorf("page %d has %d events", pages, len(evs))
				}
				if upTo <= lastUpTo || upTo != evs[len(evs)-1].SourceTime {
					t.Errorf("page %d: upTo %d after %d, last event %d", pages, upTo, lastUpTo, evs[len(evs)-1].SourceTime)
				}
				lastUpTo = upTo
				got = append(got, evs...)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if pages != tc.wantPages {
				t.Errorf("%d pages, want %d", pages, tc.wantPages)
			}
			if upTo != c.LastSourceTime() {
				t.Errorf("upTo %d, want %d", upTo, c.LastSourceTime())
			}
			if len(got) != len(want) {
				t.Fatalf("%d events, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].SourceTime != want[i].SourceTime || got[i].ID != want[i].ID {
					t.Fatalf("event %d: got %+v, want %+v", i, got[i], want[i])
				}
			}
		})
	}
}

func TestEventFields(t *testing.T) {
	c := origin.NewContent()
	c.Put(origin.Document{ID: "story1", UUID: origin.DemoUUID("story1"), NodeType: "story",
		Properties: map[string]any{"title": "a", "topline": "b"}}, nil)
	c.Update("story1", map[string]any{"topline": "c", "title": "d"})
	c.Update("story1", map[string]any{})
	c.Yellow("story1")
	c.SetState("story1", origin.StateOffline)
	c.Put(origin.Document{ID: "/politik", UUID: origin.DemoUUID("/politik"), NodeType: "structureNode"}, nil)
	c.SetState("story1", origin.StateDeleted)
	e := newEnv(t, c, origin.StagingConfig{}, stagingclient.Config{})
	p, err := e.client.Events(context.Background(), 0, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	type ev struct {
		kind, id, state string
		changed         []string
	}
	want := []ev{
		{"document", "story1", "published", nil},
		{"document", "story1", "published", []string{"title", "topline"}},
		{"document", "story1", "published", []string{}},
		{"yellow", "story1", "published", nil},
		{"document", "story1", "offline", nil},
		{"node", "/politik", "published", nil},
		{"document", "story1", "deleted", nil},
	}
	if len(p.Events) != len(want) {
		t.Fatalf("%d events, want %d", len(p.Events), len(want))
	}
	for i, w := range want {
		g := p.Events[i]
		if g.Kind != w.kind || g.ID != w.id || g.State != w.state {
			t.Errorf("event %d: %+v, want %+v", i, g, w)
		}
		if (g.ChangedProperties == nil) != (w.changed == nil) || strings.Join(g.ChangedProperties, ",") != strings.Join(w.changed, ",") {
			t.Errorf("event %d: changedProperties %#v, want %#v", i, g.ChangedProperties, w.changed)
		}
		if g.AllChanged() != (w.changed == nil) {
			t.Errorf("event %d: AllChanged() = %v", i, g.AllChanged())
		}
		if g.UUID != origin.DemoUUID(w.id) {
			t.Errorf("event %d: uuid %q", i, g.UUID)
		}
	}
	if p.Events[5].NodeType != stagingclient.NodeTypeStructureNode {
		t.Errorf("node type %q", p.Events[5].NodeType)
	}
}

func TestDocumentsBinariesVariants(t *testing.T) {
	c := seeded(t)
	e := newEnv(t, c, origin.StagingConfig{Replicas: 2}, stagingclient.Config{})
	ctx := context.Background()

	for _, key := range []string{"story100", origin.DemoUUID("story100")} {
		d, err := e.client.Document(ctx, key)
		if err != nil {
			t.Fatalf("Document(%q): %v", key, err)
		}
		if d.ID != "story100" || d.UUID != origin.DemoUUID("story100") || d.NodeType != "story" ||
			d.State != stagingclient.StatePublished || d.Properties["topline"] != "Topline 0" || d.Modified == 0 {
			t.Errorf("Document(%q) = %+v", key, d)
		}
	}
	node, err := e.client.Document(ctx, "/politik")
	if err != nil || node.NodeType != "structureNode" {
		t.Fatalf("structure node: %+v, %v", node, err)
	}
	img, err := e.client.Document(ctx, "image200")
	if err != nil {
		t.Fatal(err)
	}
	if focus, ok := img.Properties["focus"].(map[string]any); !ok || focus["y"] != 0.4 {
		t.Errorf("focus %v", img.Properties["focus"])
	}

	c.SetState("story101", origin.StateOffline)
	c.SetState("story102", origin.StateDeleted)
	for _, key := range []string{"story101", "story102", "nosuchstory", origin.DemoUUID("story102")} {
		if _, err := e.client.Document(ctx, key); !errors.Is(err, stagingclient.ErrNotFound) {
			t.Errorf("Document(%q): err = %v, want ErrNotFound", key, err)
		}
	}

	uuid := origin.DemoUUID("image200")
	b, err := e.client.Binary(ctx, uuid)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(b.Body)
	b.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := c.Binary(uuid)
	if !bytes.Equal(data, want) || b.Size != int64(len(want)) || b.ContentType != "image/jpeg" {
		t.Errorf("binary: %d bytes (size %d, %s), want %d bytes image/jpeg", len(data), b.Size, b.ContentType, len(want))
	}
	if _, err := e.client.Binary(ctx, origin.DemoUUID("story100")); !errors.Is(err, stagingclient.ErrNotFound) {
		t.Errorf("binary of a story: %v", err)
	}

	defs, err := e.client.ImageVariants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != 4 || defs[2].Name != "16x9-768" || defs[2].Aspect != "16x9" || defs[2].Width != 768 || defs[2].Modified == 0 {
		t.Errorf("variants %+v", defs)
	}
	if err := e.client.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestFailover(t *testing.T) {
	c := seeded(t)
	t.Run("dead server in the list", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		deadURL := dead.URL
		dead.Close()
		live := newEnv(t, c, origin.StagingConfig{}, stagingclient.Config{})
		cl, err := stagingclient.New(stagingclient.Config{BaseURLs: []string{deadURL, live.srv.URL}, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := cl.Document(context.Background(), "story100"); err != nil {
			t.Fatal(err)
		}
		if st := cl.Stats(); st.Failovers != 1 || cl.BaseURL() != live.srv.URL {
			t.Errorf("stats %+v, base %s", st, cl.BaseURL())
		}
	})
	t.Run("replica down behind the balancer", func(t *testing.T) {
		e := newEnv(t, c, origin.StagingConfig{Replicas: 2}, stagingclient.Config{})
		_ = e.staging.SetDown(0, true)
		if _, err := e.client.Document(context.Background(), "story100"); err != nil {
			t.Fatal(err)
		}
		if st := e.client.Stats(); st.Failovers != 1 || st.Requests != 2 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("everything down", func(t *testing.T) {
		e := newEnv(t, c, origin.StagingConfig{Replicas: 2}, stagingclient.Config{})
		_ = e.staging.SetDown(0, true)
		_ = e.staging.SetDown(1, true)
		_, err := e.client.Document(context.Background(), "story100")
		var se *stagingclient.StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusBadGateway {
			t.Fatalf("err = %v, want a 502 StatusError", err)
		}
		if st := e.client.Stats(); st.Requests != 2 || st.GivenUp != 1 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestTimeoutsAndCancellation(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer hang.Close()
	t.Run("per-request timeout", func(t *testing.T) {
		cl, err := stagingclient.New(stagingclient.Config{BaseURLs: []string{hang.URL}, Token: token,
			Timeout: 100 * time.Millisecond, BackoffBase: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		start := time.Now()
		_, err = cl.Document(context.Background(), "story100")
		took := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want a deadline", err)
		}
		if took < 200*time.Millisecond || took > 2*time.Second {
			t.Errorf("took %v, want two attempts of 100ms", took)
		}
	})
	t.Run("cancel during a request", func(t *testing.T) {
		cl, _ := stagingclient.New(stagingclient.Config{BaseURLs: []string{hang.URL}, Token: token})
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := cl.Events(ctx, 0, 10, 30*time.Second)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
			t.Errorf("err = %v after %v", err, time.Since(start))
		}
	})
	t.Run("a long poll outlives the request timeout", func(t *testing.T) {
		c := origin.NewContent()
		publish(c, "x", 1)
		e := newEnv(t, c, origin.StagingConfig{}, stagingclient.Config{Timeout: 200 * time.Millisecond})
		start := time.Now()
		p, err := e.client.Events(context.Background(), c.LastSourceTime(), 10, 700*time.Millisecond)
		took := time.Since(start)
		if err != nil || len(p.Events) != 0 || took < 900*time.Millisecond {
			t.Errorf("after %v: %+v, %v (want an empty page after the 1s wait)", took, p, err)
		}
	})
	t.Run("cancel during the backoff", func(t *testing.T) {
		c := origin.NewContent()
		publish(c, "x", 1)
		e := newEnv(t, c, origin.StagingConfig{Lag: time.Hour},
			stagingclient.Config{BackoffBase: 10 * time.Second, BackoffMax: 10 * time.Second})
		e.client.ObserveSourceTime(c.LastSourceTime())
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err := e.client.Document(ctx, "x0")
		if !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
			t.Errorf("err = %v after %v", err, time.Since(start))
		}
		if !strings.Contains(err.Error(), "NotUpToDate") && !strings.Contains(err.Error(), "not up to date") {
			t.Errorf("error %q does not tell what was retried", err)
		}
	})
}

// TestSourceTimeNeverGoesBack: an answer from a server that is behind
// (allowed, since it is at least as new as what the client has seen) must
// not lower the client's source time.
func TestSourceTimeNeverGoesBack(t *testing.T) {
	c := origin.NewContent()
	publish(c, "x", 3)
	e := newEnv(t, c, origin.StagingConfig{}, stagingclient.Config{})
	e.client.ObserveSourceTime(c.LastSourceTime() + 1000)
	e.client.ObserveSourceTime(5)
	if got := e.client.SourceTime(); got != c.LastSourceTime()+1000 {
		t.Errorf("source time %d", got)
	}
}

// BenchmarkDocument measures a document fetch through the balancer, with
// every replica current and with one of three an hour behind (each request
// that lands there is retried on a new connection).
func BenchmarkDocument(b *testing.B) {
	for _, bc := range []struct {
		name string
		lags []time.Duration
	}{
		{"all replicas current", []time.Duration{0, 0, 0}},
		{"one of three replicas behind", []time.Duration{0, 0, time.Hour}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := origin.NewContent()
			publish(c, "doc", 10)
			e := newEnv(b, c, origin.StagingConfig{Lags: bc.lags}, stagingclient.Config{})
			e.client.ObserveSourceTime(c.LastSourceTime())
			ctx := context.Background()
			n := 0
			for b.Loop() {
				if _, err := e.client.Document(ctx, "doc3"); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(e.client.Retries())/float64(n), "retries/op")
		})
	}
}
