package origin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stagingServer runs a Staging on 127.0.0.1.
func stagingServer(t *testing.T, c *Content, cfg StagingConfig) (*Staging, *httptest.Server) {
	t.Helper()
	s := NewStaging(c, cfg)
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		srv.Close()
	})
	return s, srv
}

type answer struct {
	code   int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("answer %d %q: %v", a.code, a.body, err)
	}
}

// call sends a request with the demo token (unless headers say otherwise).
func call(t *testing.T, method, url string, body io.Reader, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+DemoToken)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, data}
}

func get(t *testing.T, url string, headers ...string) answer {
	t.Helper()
	return call(t, http.MethodGet, url, nil, headers...)
}

type eventsAnswer struct {
	Events     []map[string]any `json:"events"`
	SourceTime int64            `json:"sourceTime"`
}

func addStories(c *Content, prefix string, n int) []Event {
	evs := make([]Event, n)
	for i := range n {
		id := fmt.Sprintf("%s%d", prefix, i)
		evs[i] = c.Put(Document{ID: id, UUID: DemoUUID(id), NodeType: "story", Properties: map[string]any{"title": id}}, nil)
	}
	return evs
}

func TestStagingTokens(t *testing.T) {
	c := NewContent()
	addStories(c, "s", 1)
	const other = "6f1c2a8e-5d0b-4c1e-9a57-2f0d3b8c4e11"
	_, demo := stagingServer(t, c, StagingConfig{})
	s, custom := stagingServer(t, c, StagingConfig{Tokens: []string{other, "aaaaaaaa-0000-0000-0000-000000000000"}})
	for _, tc := range []struct {
		name, url, auth string
		want            int
	}{
		{"demo token", demo.URL, "Bearer " + DemoToken, 200},
		{"scheme is case-insensitive", demo.URL, "bearer " + DemoToken, 200},
		{"no header", demo.URL, "", 401},
		{"basic auth", demo.URL, "Basic " + DemoToken, 401},
		{"unknown token", demo.URL, "Bearer " + other, 401},
		{"configured token", custom.URL, "Bearer " + other, 200},
		{"demo token not configured", custom.URL, "Bearer " + DemoToken, 401},
		{"token prefix", custom.URL, "Bearer " + other[:10], 401},
	} {
		a := get(t, tc.url+"/api/v1/documents/s0", "Authorization", tc.auth)
		if a.code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, a.code, a.body, tc.want)
		}
		if a.code == 401 && (!strings.Contains(a.header.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(string(a.body), "Unauthorized")) {
			t.Errorf("%s: 401 without a proper answer: %v %s", tc.name, a.header, a.body)
		}
	}
	if st := s.Stats(); st.Unauthorized != 2 || st.Requests != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestStagingNotUpToDate(t *testing.T) {
	c := NewContent()
	addStories(c, "s", 3)
	last := c.LastSourceTime()
	s, srv := stagingServer(t, c, StagingConfig{Lags: []time.Duration{0, time.Hour}})
	for i, tc := range []struct {
		header string
		want   int
	}{
		{strconv.FormatInt(last, 10), 200},   // replica 0: current
		{strconv.FormatInt(last, 10), 503},   // replica 1: an hour behind
		{"0", 200},                           // replica 0
		{"0", 200},                           // replica 1 has applied nothing but 0 is fine
		{strconv.FormatInt(last+1, 10), 503}, // replica 0: the client is ahead of everything
		{"", 200},                            // replica 1: no header, no check
		{"soon", 400},                        // replica 0
		{"-5", 400},                          // replica 1
	} {
		a := get(t, srv.URL+"/api/v1/events?since=0", HeaderSourceTime, tc.header)
		if a.code != tc.want {
			t.Fatalf("request %d (%s=%q): %d %s, want %d", i, HeaderSourceTime, tc.header, a.code, a.body, tc.want)
		}
		if a.code == 503 {
			var body struct {
				Error      string `json:"error"`
				SourceTime *int64 `json:"sourceTime"`
			}
			a.json(t, &body)
			want := map[int]int64{1: 0, 4: last}[i]
			if body.Error != "NotUpToDate" || body.SourceTime == nil || *body.SourceTime != want {
				t.Errorf("request %d: body %s, want NotUpToDate at %d", i, a.body, want)
			}
		}
	}
	st := s.Stats()
	if st.NotUpToDate != 2 || st.Replicas[0].NotUpToDate != 1 || st.Replicas[1].NotUpToDate != 1 || st.Requests != 8 {
		t.Errorf("stats %+v", st)
	}
}

func TestStagingReplicaLag(t *testing.T) {
	c := NewContent()
	addStories(c, "old", 2)
	time.Sleep(300 * time.Millisecond)
	const lag = 250 * time.Millisecond
	_, srv := stagingServer(t, c, StagingConfig{Lag: lag})
	before := c.LastSourceTime()
	// The old events are visible.
	var ev eventsAnswer
	get(t, srv.URL+"/api/v1/events").json(t, &ev)
	if len(ev.Events) != 2 || ev.SourceTime != before {
		t.Fatalf("old events: %+v", ev)
	}
	c.Put(Document{ID: "new", NodeType: "story"}, nil)
	published := time.Now()
	if a := get(t, srv.URL+"/api/v1/documents/new"); a.code != 404 {
		t.Errorf("new document visible at once on a lagging replica: %d", a.code)
	}
	get(t, srv.URL+"/api/v1/events?since="+strconv.FormatInt(before, 10)).json(t, &ev)
	if len(ev.Events) != 0 || ev.SourceTime != before {
		t.Errorf("new event visible at once: %+v", ev)
	}
	time.Sleep(lag - time.Since(published) + 50*time.Millisecond)
	if a := get(t, srv.URL+"/api/v1/documents/new"); a.code != 200 {
		t.Errorf("new document not visible after the lag: %d", a.code)
	}
	get(t, srv.URL+"/api/v1/events?since="+strconv.FormatInt(before, 10)).json(t, &ev)
	if len(ev.Events) != 1 || ev.SourceTime != c.LastSourceTime() {
		t.Errorf("after the lag: %+v", ev)
	}
}

func TestStagingBalancing(t *testing.T) {
	c := NewContent()
	addStories(c, "s", 1)
	t.Run("per request", func(t *testing.T) {
		s, srv := stagingServer(t, c, StagingConfig{Replicas: 3})
		for range 9 {
			get(t, srv.URL+"/api/v1/documents/s0")
		}
		for _, r := range s.Stats().Replicas {
			if r.Requests != 3 {
				t.Errorf("replica %d got %d requests, want 3", r.Index, r.Requests)
			}
		}
	})
	t.Run("per connection", func(t *testing.T) {
		s, srv := stagingServer(t, c, StagingConfig{Replicas: 3, PerConnection: true})
		keep := &http.Client{Transport: &http.Transport{}}
		defer keep.CloseIdleConnections()
		for range 5 {
			req, _ := http.NewRequest("GET", srv.URL+"/api/v1/documents/s0", nil)
			req.Header.Set("Authorization", "Bearer "+DemoToken)
			resp, err := keep.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if st := s.Stats(); st.Replicas[0].Requests != 5 {
			t.Errorf("one keep-alive connection spread over replicas: %+v", st.Replicas)
		}
		for range 2 { // new connections go to the next replicas
			req, _ := http.NewRequest("GET", srv.URL+"/api/v1/documents/s0", nil)
			req.Header.Set("Authorization", "Bearer "+DemoToken)
			req.Close = true
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		if st := s.Stats(); st.Replicas[1].Requests != 1 || st.Replicas[2].Requests != 1 {
			t.Errorf("new connections not balanced: %+v", st.Replicas)
		}
	})
}

func TestStagingEventsParameters(t *testing.T) {
	c := NewContent()
	evs := addStories(c, "s", 250)
	_, srv := stagingServer(t, c, StagingConfig{})
	for _, tc := range []struct {
		query     string
		wantCode  int
		wantN     int
		wantFirst int // index into evs
	}{
		{"", 200, 100, 0},
		{"?limit=1000", 200, 100, 0},
		{"?limit=10", 200, 10, 0},
		{"?since=" + strconv.FormatInt(evs[99].SourceTime, 10), 200, 100, 100},
		{"?since=" + strconv.FormatInt(evs[239].SourceTime, 10), 200, 10, 240},
		{"?since=" + strconv.FormatInt(evs[249].SourceTime, 10), 200, 0, 0},
		{"?since=" + strconv.FormatInt(evs[249].SourceTime, 10) + "&wait=0", 200, 0, 0},
		{"?since=x", 400, 0, 0},
		{"?since=-1", 400, 0, 0},
		{"?limit=0", 400, 0, 0},
		{"?limit=ten", 400, 0, 0},
		{"?wait=forever", 400, 0, 0},
		{"?wait=-1", 400, 0, 0},
		{"?wait=NaN", 400, 0, 0},
	} {
		a := get(t, srv.URL+"/api/v1/events"+tc.query)
		if a.code != tc.wantCode {
			t.Errorf("%s: %d %s", tc.query, a.code, a.body)
			continue
		}
		if a.code != 200 {
			continue
		}
		var ev eventsAnswer
		a.json(t, &ev)
		if ev.Events == nil || len(ev.Events) != tc.wantN || ev.SourceTime != c.LastSourceTime() {
			t.Errorf("%s: %d events, sourceTime %d", tc.query, len(ev.Events), ev.SourceTime)
			continue
		}
		if tc.wantN > 0 && int64(ev.Events[0]["sourceTime"].(float64)) != evs[tc.wantFirst].SourceTime {
			t.Errorf("%s: first event %v, want %+v", tc.query, ev.Events[0], evs[tc.wantFirst])
		}
		if got := a.header.Get(HeaderSourceTime); got != strconv.FormatInt(c.LastSourceTime(), 10) {
			t.Errorf("%s: answer header %s=%q", tc.query, HeaderSourceTime, got)
		}
	}
}

func TestStagingEventWireFormat(t *testing.T) {
	c := NewContent()
	c.Put(Document{ID: "s", UUID: "u", NodeType: "story", Properties: map[string]any{"a": 1}}, nil)
	c.Update("s", map[string]any{"b": 2, "a": 3})
	c.Update("s", map[string]any{})
	_, srv := stagingServer(t, c, StagingConfig{})
	var raw struct {
		Events []json.RawMessage `json:"events"`
	}
	get(t, srv.URL+"/api/v1/events").json(t, &raw)
	want := []string{
		`{"sourceTime":%d,"kind":"document","id":"s","uuid":"u","nodeType":"story","state":"published"}`,
		`{"sourceTime":%d,"kind":"document","id":"s","uuid":"u","nodeType":"story","state":"published","changedProperties":["a","b"]}`,
		`{"sourceTime":%d,"kind":"document","id":"s","uuid":"u","nodeType":"story","state":"published","changedProperties":[]}`,
	}
	all := c.EventsAfter(0, -1, 10)
	for i, w := range want {
		if got, w := string(raw.Events[i]), fmt.Sprintf(w, all[i].SourceTime); got != w {
			t.Errorf("event %d:\n got %s\nwant %s", i, got, w)
		}
	}
}

func TestStagingLongPoll(t *testing.T) {
	c := NewContent()
	addStories(c, "s", 1)
	since := strconv.FormatInt(c.LastSourceTime(), 10)

	t.Run("held until an event", func(t *testing.T) {
		s, srv := stagingServer(t, c, StagingConfig{})
		done := make(chan answer, 1)
		go func() { done <- get(t, srv.URL+"/api/v1/events?wait=10&since="+since) }()
		waitFor(t, "the request to be held", func() bool { return s.Stats().Holding == 1 })
		start := time.Now()
		ev := c.Put(Document{ID: "held", NodeType: "story"}, nil)
		a := <-done
		took := time.Since(start)
		t.Logf("held request answered %v after the publish", took)
		var page eventsAnswer
		a.json(t, &page)
		if len(page.Events) != 1 || page.SourceTime != ev.SourceTime || took > 500*time.Millisecond {
			t.Errorf("after %v: %+v", took, page)
		}
		since = strconv.FormatInt(ev.SourceTime, 10)
	})
	t.Run("wait ends empty", func(t *testing.T) {
		_, srv := stagingServer(t, c, StagingConfig{})
		start := time.Now()
		var page eventsAnswer
		get(t, srv.URL+"/api/v1/events?wait=0.3&since="+since).json(t, &page)
		if took := time.Since(start); took < 300*time.Millisecond || took > 2*time.Second || len(page.Events) != 0 {
			t.Errorf("after %v: %+v", took, page)
		}
	})
	t.Run("capped by MaxWait", func(t *testing.T) {
		_, srv := stagingServer(t, c, StagingConfig{MaxWait: 200 * time.Millisecond})
		start := time.Now()
		get(t, srv.URL+"/api/v1/events?wait=60&since="+since)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("took %v", took)
		}
	})
	t.Run("NoLongPoll answers at once", func(t *testing.T) {
		s, srv := stagingServer(t, c, StagingConfig{NoLongPoll: true})
		start := time.Now()
		get(t, srv.URL+"/api/v1/events?wait=10&since="+since)
		if took := time.Since(start); took > 200*time.Millisecond || s.Stats().LongPolls != 0 {
			t.Errorf("took %v, stats %+v", took, s.Stats())
		}
	})
	t.Run("lagging replica holds until it has the event", func(t *testing.T) {
		const lag = 200 * time.Millisecond
		time.Sleep(lag) // let the replica catch up with what exists
		s, srv := stagingServer(t, c, StagingConfig{Lag: lag})
		done := make(chan answer, 1)
		go func() { done <- get(t, srv.URL+"/api/v1/events?wait=10&since="+since) }()
		waitFor(t, "the request to be held", func() bool { return s.Stats().Holding == 1 })
		start := time.Now()
		ev := c.Put(Document{ID: "lagged", NodeType: "story"}, nil)
		a := <-done
		took := time.Since(start)
		var page eventsAnswer
		a.json(t, &page)
		t.Logf("lagging replica answered %v after the publish", took)
		if len(page.Events) != 1 || page.SourceTime != ev.SourceTime || took < lag-20*time.Millisecond || took > lag+500*time.Millisecond {
			t.Errorf("after %v: %+v", took, page)
		}
		since = strconv.FormatInt(ev.SourceTime, 10)
	})
	t.Run("client gone", func(t *testing.T) {
		s, srv := stagingServer(t, c, StagingConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events?wait=30&since="+since, nil)
		req.Header.Set("Authorization", "Bearer "+DemoToken)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
		}()
		waitFor(t, "the request to be held", func() bool { return s.Stats().Holding == 1 })
		cancel()
		waitFor(t, "the handler to let go", func() bool { return s.Stats().Holding == 0 })
	})
	t.Run("Close releases held requests", func(t *testing.T) {
		s, srv := stagingServer(t, c, StagingConfig{})
		done := make(chan answer, 1)
		go func() { done <- get(t, srv.URL+"/api/v1/events?wait=30&since="+since) }()
		waitFor(t, "the request to be held", func() bool { return s.Stats().Holding == 1 })
		s.Close()
		select {
		case a := <-done:
			if a.code != 200 {
				t.Errorf("answer %d", a.code)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Close did not release the held request")
		}
	})
}

func TestStagingDocuments(t *testing.T) {
	c := NewContent()
	c.Put(Document{ID: "/politik", UUID: DemoUUID("/politik"), NodeType: "structureNode", Properties: map[string]any{"name": "Politik"}}, nil)
	c.Put(Document{ID: "story1", UUID: DemoUUID("story1"), NodeType: "story", Properties: map[string]any{"title": "t"}}, nil)
	c.Put(Document{ID: "story2", UUID: DemoUUID("story2"), NodeType: "story"}, nil)
	c.Put(Document{ID: "story3", UUID: DemoUUID("story3"), NodeType: "story"}, nil)
	c.SetState("story2", StateOffline)
	c.SetState("story3", StateDeleted)
	jpeg := DemoJPEG(64, 48, 1)
	c.Put(Document{ID: "image1", UUID: DemoUUID("image1"), NodeType: "image"}, nil)
	c.SetBinary(DemoUUID("image1"), jpeg)
	c.SetVariants([]VariantDef{{Name: "1x1-144", Aspect: "1x1", Width: 144}})
	_, srv := stagingServer(t, c, StagingConfig{})

	for _, tc := range []struct {
		path string
		want int
		id   string
	}{
		{"/api/v1/documents/story1", 200, "story1"},
		{"/api/v1/documents/" + DemoUUID("story1"), 200, "story1"},
		{"/api/v1/documents/%2Fpolitik", 200, "/politik"},
		{"/api/v1/documents/story2", 404, ""},
		{"/api/v1/documents/story3", 404, ""},
		{"/api/v1/documents/" + DemoUUID("story3"), 404, ""},
		{"/api/v1/documents/nope", 404, ""},
		{"/api/v1/documents/story1/binary", 404, ""},
		{"/api/v1/documents/story2/binary", 404, ""},
		{"/api/v1/nothing", 404, ""},
		{"/elsewhere", 404, ""},
	} {
		a := get(t, srv.URL+tc.path)
		if a.code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.path, a.code, a.body, tc.want)
			continue
		}
		if tc.id != "" {
			var d Document
			a.json(t, &d)
			if d.ID != tc.id || d.State != StatePublished || d.Properties == nil || d.Modified == 0 || d.SourceTime == 0 {
				t.Errorf("%s: %+v", tc.path, d)
			}
		}
	}
	a := get(t, srv.URL+"/api/v1/documents/"+DemoUUID("image1")+"/binary")
	if a.code != 200 || string(a.body) != string(jpeg) || a.header.Get("Content-Type") != "image/jpeg" ||
		a.header.Get("Content-Length") != strconv.Itoa(len(jpeg)) {
		t.Errorf("binary: %d %v (%d bytes)", a.code, a.header, len(a.body))
	}
	var defs []VariantDef
	get(t, srv.URL+"/api/v1/imagevariants").json(t, &defs)
	if len(defs) != 1 || defs[0].Name != "1x1-144" || defs[0].Modified == 0 {
		t.Errorf("variants %+v", defs)
	}
	if a := call(t, http.MethodPost, srv.URL+"/api/v1/imagevariants", nil); a.code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", a.code)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
