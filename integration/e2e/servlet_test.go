package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

const (
	servletPath     = "/system/servlet/cache.servlet"
	servletPassword = "s3cret"
	sectionPath     = "/politik/"
	sectionFile     = "politik/index.html"
	storyFile       = "politik/story100.html"
)

// groupOptions makes the options of the edge on port self, in group
// "live" with every other port as peer; extra is added to its delivery
// block.
func groupOptions(o *harness.Origin, ports []int, self int, extra string) harness.EdgeOptions {
	var peers []string
	for _, p := range ports {
		if p != self {
			peers = append(peers, fmt.Sprintf("http://127.0.0.1:%d", p))
		}
	}
	global := "servlet_password " + servletPassword + "\n" + extra
	if len(peers) > 0 {
		global += "\ngroup live {\npeer " + strings.Join(peers, " ") + "\n}"
	}
	return harness.EdgeOptions{Origin: o.RenderAddr, Global: global, Port: self,
		Route: "cache_servlet " + servletPath}
}

// servlet calls an edge's cache servlet and returns status and body.
func servlet(t *testing.T, e *harness.Edge, params url.Values) (int, string) {
	t.Helper()
	resp, err := http.Get(e.URL() + servletPath + "?" + params.Encode())
	if err != nil {
		t.Fatalf("cache servlet: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func flushOn(t *testing.T, e *harness.Edge, key string) {
	t.Helper()
	status, body := servlet(t, e, url.Values{"action": {"flush"}, "key": {key}, "group": {"live"}, "password": {servletPassword}})
	if status != 200 || body != "" {
		t.Fatalf("flush %q: %d %q", key, status, body)
	}
}

// flushLog is an edge's flush log for group live, as its sync answer
// (forward=false: asking must not make it sync with its own peers).
func flushLog(t *testing.T, e *harness.Edge) string {
	t.Helper()
	status, body := servlet(t, e, url.Values{"action": {"sync"}, "group": {"live"}, "since": {"0"},
		"forward": {"false"}, "password": {servletPassword}})
	if status != 200 {
		t.Fatalf("sync: %d %q", status, body)
	}
	return body
}

func logged(body, key string) bool {
	for _, line := range strings.Split(body, "\n") {
		if i := strings.LastIndexByte(line, ';'); i > 0 && line[:i] == key {
			return true
		}
	}
	return false
}

// renamed reports whether a docroot file was invalidated by renaming.
func renamed(e *harness.Edge, name string) bool { return !e.Exists(name) && e.Exists(name+".old") }

func cachePages(t *testing.T, e *harness.Edge, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if status, _, _ := harness.Get(t, nil, e.URL()+p); status != 200 {
			t.Fatalf("GET %s: %d", p, status)
		}
	}
}

func TestServletFlushReachesTheGroup(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	ports := []int{harness.FreePort(t), harness.FreePort(t), harness.FreePort(t)}
	var edges []*harness.Edge
	for _, p := range ports {
		edges = append(edges, harness.StartEdge(t, groupOptions(o, ports, p, "pregenerate {\nworkers 2\n}")))
	}
	for _, e := range edges {
		cachePages(t, e, sectionPath, storyPath)
	}
	if n := o.Renders(storyPath); n != 3 {
		t.Fatalf("story rendered %d times, want once per edge", n)
	}

	// A plain key: the section page (written once, never read again) is
	// renamed on every edge.
	flushOn(t, edges[0], "section:/politik")
	for i, e := range edges {
		waitFor(t, 10*time.Second, fmt.Sprintf("section page renamed on edge %c", 'A'+i), func() bool {
			return renamed(e, sectionFile)
		})
		if !e.Exists(storyFile) {
			t.Errorf("edge %c: story page touched by the section flush", 'A'+i)
		}
	}

	// A document key: the story page is re-rendered in place on every edge
	// (pre-generation is forced for the document's own pages).
	flushOn(t, edges[0], "story100")
	waitFor(t, 10*time.Second, "story re-rendered on all three edges", func() bool { return o.Renders(storyPath) == 6 })
	for i, e := range edges {
		waitFor(t, 5*time.Second, fmt.Sprintf("edge %c: story page in place after pre-generation", 'A'+i),
			func() bool { return e.Exists(storyFile) })
	}
	// Nothing was forwarded back and forth: each log has the two flushes once.
	for i, e := range edges {
		if log := flushLog(t, e); strings.Count(log, "\n") != 2 || !logged(log, "story100") || !logged(log, "section:/politik") {
			t.Errorf("edge %c flush log %q", 'A'+i, log)
		}
	}
}

func TestServletCatchUpAfterKill(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	ports := []int{harness.FreePort(t), harness.FreePort(t), harness.FreePort(t)}
	a := harness.StartEdge(t, groupOptions(o, ports, ports[0], ""))
	b := harness.StartEdge(t, groupOptions(o, ports, ports[1], ""))
	c := harness.StartEdge(t, groupOptions(o, ports, ports[2], ""))
	cachePages(t, b, sectionPath, "/")

	b.Kill()
	flushOn(t, a, "section:/politik")
	flushOn(t, a, "home")
	waitFor(t, 10*time.Second, "C has both flushes", func() bool {
		log := flushLog(t, c)
		return logged(log, "section:/politik") && logged(log, "home")
	})
	// A goes down too, with both flushes for B still in its outbox: B can
	// learn of them only by its start-up sync with C.
	a.Kill()
	readyBefore := strings.Count(b.Log(), "flush group ready")
	b.Start()
	waitFor(t, 15*time.Second, "B ready", func() bool {
		return strings.Count(b.Log(), "flush group ready") > readyBefore
	})
	if log := flushLog(t, b); !logged(log, "section:/politik") || !logged(log, "home") {
		t.Fatalf("B ready without the flushes it missed: %q", log)
	}
	if !strings.Contains(b.Log(), `"applied":2`) {
		t.Errorf("B's log does not show the catch-up applying 2 flushes")
	}
	waitFor(t, 10*time.Second, "B's pages renamed", func() bool {
		return renamed(b, sectionFile) && renamed(b, "index.html")
	})

	// A comes back: its outbox delivers the two flushes to B, which
	// recognises them (same key and timestamp) and applies nothing.
	cachePages(t, b, sectionPath)
	a.Start()
	waitFor(t, 20*time.Second, "A's outbox delivered to B", func() bool {
		return strings.Count(b.Log(), `"applied":false`) >= 2
	})
	time.Sleep(300 * time.Millisecond)
	if !b.Exists(sectionFile) {
		t.Fatal("a duplicate flush invalidated B's section page again")
	}
}

func TestServletOutboxReachesPeerLater(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	ports := []int{harness.FreePort(t), harness.FreePort(t), harness.FreePort(t)}
	// C is in no group (so no start-up sync): only A's outbox can bring it
	// the flush. It caches the page, then goes down.
	c := harness.StartEdge(t, groupOptions(o, ports[2:], ports[2], ""))
	cachePages(t, c, sectionPath)
	c.Kill()

	a := harness.StartEdge(t, groupOptions(o, ports, ports[0], ""))
	b := harness.StartEdge(t, groupOptions(o, ports, ports[1], ""))
	cachePages(t, b, sectionPath)
	flushOn(t, a, "section:/politik")
	waitFor(t, 10*time.Second, "B's page renamed", func() bool { return renamed(b, sectionFile) })
	time.Sleep(time.Second) // A tries C a few times: connection refused
	if !strings.Contains(a.Log(), "cannot forward flushes to peer") {
		t.Error("A did not report the unreachable peer")
	}

	c.Start()
	waitFor(t, 30*time.Second, "C's page renamed after it came back", func() bool { return renamed(c, sectionFile) })
	if !logged(flushLog(t, c), "section:/politik") {
		t.Fatal("C's flush log lacks the flush")
	}
	waitFor(t, 10*time.Second, "A reports the peer back", func() bool {
		return strings.Contains(a.Log(), "forwarding flushes to peer works again")
	})
}

func TestServletErrorsOverHTTP(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Global: "servlet_password " + servletPassword,
		Route: "cache_servlet " + servletPath})
	for _, tt := range []struct {
		params url.Values
		body   string
	}{
		{url.Values{"key": {"k"}, "group": {"g"}}, "unknown action"},
		{url.Values{"action": {"flush"}, "key": {"k"}, "group": {"g"}}, "password required"},
		{url.Values{"action": {"flush"}, "key": {"k"}, "group": {"g"}, "password": {"wrong"}}, "invalid password"},
		{url.Values{"action": {"flush"}, "group": {"g"}, "password": {servletPassword}}, "no cache key specified"},
		{url.Values{"action": {"sync"}, "password": {servletPassword}}, "no group specified"},
	} {
		status, body := servlet(t, e, tt.params)
		if status != 500 || body != tt.body {
			t.Errorf("%v: %d %q, want 500 %q", tt.params, status, body, tt.body)
		}
	}
	// The servlet's path never reaches the cache or the render backend.
	if n := o.Renders(servletPath); n != 0 {
		t.Errorf("servlet path rendered %d times", n)
	}
}

// TestServletFlushOfDocumentKeyRendersItsKeyedFiles: a teaser fragment
// registers its story's ID as a cache key and depends on the story only by
// properties. Written once and never read since, the usual queue choice
// would rename it; a flush of the story's key renders it again at once,
// without a request.
func TestServletFlushOfDocumentKeyRendersItsKeyedFiles(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	port := harness.FreePort(t)
	e := harness.StartEdge(t, groupOptions(o, []int{port}, port, "pregenerate {\nworkers 2\n}"))
	const fragment = "/fragments/teaser/story104.html"
	cachePages(t, e, fragment)
	waitFor(t, 10*time.Second, "fragment cached", func() bool { return e.Exists(fragment[1:]) })

	flushOn(t, e, "story104")
	waitFor(t, 10*time.Second, "fragment rendered again without a request", func() bool {
		return o.Renders(fragment) == 2
	})
	waitFor(t, 10*time.Second, "fragment in place", func() bool { return e.Exists(fragment[1:]) })
	if e.Exists(fragment[1:] + ".old") {
		t.Error("the fragment was renamed to .old")
	}
}
