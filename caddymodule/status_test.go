package caddymodule

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// TestStatusPageIsSelfContained: the page loads nothing but its own JSON,
// and its Content-Security-Policy allows exactly its inline style and
// script (a browser refuses any other; the end-to-end test sees no
// refusal in Chromium's console).
func TestStatusPageIsSelfContained(t *testing.T) {
	html := string(statusPage.html)
	csp := statusPage.csp
	scripts := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindAllStringSubmatch(html, -1)
	styles := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindAllStringSubmatch(html, -1)
	if len(scripts) != 1 || len(styles) != 1 || strings.Count(html, "<script") != 1 || strings.Count(html, "<style") != 1 {
		t.Fatalf("want one inline script and one inline style: %d, %d", len(scripts), len(styles))
	}
	for _, want := range []string{"default-src 'none'", "script-src '" + cspHash(scripts[0][1]) + "'",
		"style-src '" + cspHash(styles[0][1]) + "'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "unsafe-hashes", "*", "http:", "https:"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP %q allows %q", csp, bad)
		}
	}
	// Nothing from elsewhere: no src, the only href is the empty data:
	// icon (so that the browser does not ask for /favicon.ico), no url()
	// or @import in the style, no other address in the script than the
	// SVG namespace, and no way for text to become markup or code.
	if strings.Contains(html, " src=") || strings.Count(html, "href=") != 1 || !strings.Contains(html, `href="data:,"`) {
		t.Error("the page refers to another resource")
	}
	if css := styles[0][1]; strings.Contains(css, "url(") || strings.Contains(css, "@import") {
		t.Error("the style loads another resource")
	}
	js := strings.ReplaceAll(scripts[0][1], "'http://www.w3.org/2000/svg'", "")
	for _, bad := range []string{"http:", "https:", "//cdn", "innerHTML", "outerHTML", "insertAdjacentHTML", "eval(",
		"new Function", "document.write", "console."} {
		if strings.Contains(js, bad) {
			t.Errorf("the script contains %q", bad)
		}
	}
}

// statusEdge is a provisioned delivery app with a status handler, started.
func statusEdge(t *testing.T) (*App, *Status) {
	t.Helper()
	a := &App{DataDir: filepath.Join(t.TempDir(), "data")}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	if err := a.Provision(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &Status{Refresh: caddy.Duration(2 * time.Second)}
	if err := s.setup(a, zap.NewNop(), prometheus.NewRegistry()); err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = a.Stop()
		_ = a.Cleanup()
		cancel()
	})
	return a, s
}

func TestStatusHandlerAnswers(t *testing.T) {
	a, s := statusEdge(t)
	eng, err := a.Engine()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Flush("<b>section:/x</b>", "live", 1000, nil); err != nil {
		t.Fatal(err)
	}
	serve := func(method, target string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		if err := s.ServeHTTP(w, httptest.NewRequest(method, target, nil), nil); err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		return w
	}
	for _, tt := range []struct {
		method, target string
		status         int
		contentType    string
	}{
		{"GET", "/_status", 200, "text/html; charset=utf-8"},
		{"HEAD", "/_status", 200, "text/html; charset=utf-8"},
		{"GET", "/_status?format=json", 200, "application/json"},
		{"GET", "/_status?format=xml", 200, "text/html; charset=utf-8"},
		{"POST", "/_status", 405, "text/plain; charset=utf-8"},
	} {
		w := serve(tt.method, tt.target)
		if w.Code != tt.status || w.Header().Get("Content-Type") != tt.contentType {
			t.Errorf("%s %s: %d %q, want %d %q", tt.method, tt.target, w.Code, w.Header().Get("Content-Type"), tt.status, tt.contentType)
		}
		if tt.status != 200 {
			continue
		}
		if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s %s: Cache-Control %q", tt.method, tt.target, cc)
		}
		if csp := w.Header().Get("Content-Security-Policy"); strings.HasPrefix(tt.contentType, "text/html") && csp != statusPage.csp {
			t.Errorf("%s %s: CSP %q", tt.method, tt.target, csp)
		}
	}
	if w := serve("POST", "/_status"); w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("405 without Allow: %q", w.Header().Get("Allow"))
	}

	// The JSON: the Snapshot, the history (the first sample is taken when
	// the app starts) and the refresh interval.
	var answer struct {
		Stats          Snapshot      `json:"stats"`
		History        StatusHistory `json:"history"`
		RefreshSeconds float64       `json:"refresh_seconds"`
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		w := serve("GET", "/_status?format=json")
		if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
			t.Fatalf("%v: %s", err, w.Body.String())
		}
		if len(answer.History.Times) > 0 || time.Now().After(deadline) {
			break
		}
	}
	if answer.RefreshSeconds != 2 {
		t.Errorf("refresh_seconds %v", answer.RefreshSeconds)
	}
	inv := answer.Stats.Invalidations
	if inv.Total != 1 || len(inv.Recent) != 1 || inv.Recent[0].ID != "<b>section:/x</b>" || inv.Recent[0].Source != "flush" ||
		inv.Recent[0].Detail != "live" {
		t.Errorf("invalidations %+v", inv)
	}
	h := answer.History
	if len(h.Times) != 1 || h.IntervalSeconds != statusSampleEvery.Seconds() {
		t.Fatalf("history %+v", h)
	}
	if col := h.Series["queues.removal.length"]; len(col) != 1 || col[0] == nil {
		t.Errorf("history lacks the removal queue: %+v", h.Series)
	}
	if _, ok := h.Series["invalidations.total"]; !ok {
		t.Errorf("history lacks invalidations.total: %+v", h.Series)
	}
}

func TestStatusRefreshBounds(t *testing.T) {
	for _, tt := range []struct {
		refresh time.Duration
		ok      bool
	}{{0, true}, {time.Second, true}, {time.Hour, true}, {999 * time.Millisecond, false}, {2 * time.Hour, false}} {
		err := (&Status{Refresh: caddy.Duration(tt.refresh)}).Validate()
		if (err == nil) != tt.ok {
			t.Errorf("refresh %v: %v", tt.refresh, err)
		}
	}
}
