//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
	"github.com/delivery-edge/edge/integration/procgroup"
)

// TestStatusPageInABrowser loads the status page of a running edge in
// headless Chromium: the page runs without a console error or a request
// elsewhere (its inline script and style pass its own CSP), shows the
// figures the edge reports in JSON, and follows a flush: the invalidation
// appears with its file and queue, the pre-generation queue fills and
// drains. A cache key with markup is shown as text.
func TestStatusPageInABrowser(t *testing.T) {
	chromium := chromiumPath(t)
	o := harness.StartOrigin(t, origin.RenderConfig{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr,
		Global: "servlet_password " + servletPassword + "\npregenerate {\nworkers 1\n}",
		Route:  "cache_servlet " + servletPath + "\ndelivery_status /_status {\nrefresh 1s\n}"})
	cachePages(t, e, storyPath, sectionPath, storyPath)
	status := e.URL() + "/_status"

	resp, err := http.Get(status)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); resp.StatusCode != 200 ||
		!strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("status page: %d, CSP %q, Cache-Control %q", resp.StatusCode, csp, resp.Header.Get("Cache-Control"))
	}

	b := startBrowser(t, chromium)
	if err := chromedp.Do(b.ctx, chromedp.Navigate(status)); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	b.observe()

	// The figures on the page are those of the JSON (nothing changes
	// while the test waits, so the page's next poll catches up).
	b.waitFor(t, 15*time.Second, "the page's figures equal the edge's JSON", func(s pageState) string {
		return diffFigures(statusFigures(t, status), s.Figures)
	})
	b.checkConsole(t)
	want := statusFigures(t, status)
	if want["cache.hits"] < 1 || want["cache.renders.stored"] < 2 {
		t.Fatalf("the edge reports no hits or renders: %v", want)
	}

	// A flush of the story's document key: its page is pre-generated
	// (workers 1, the render held for 5 s), so the queue shows it.
	o.Faults(origin.Fault{Prefix: storyPath, Delay: 5 * time.Second, Count: 1})
	flushOn(t, e, "story100")
	b.waitFor(t, 15*time.Second, "the flush in the invalidations and the pre-generation queue", func(s pageState) string {
		want := invalidationRow{Source: "flush", What: "key story100 (live)", Files: "1", Removal: "0", Pregeneration: "1"}
		if len(s.Invalidations) == 0 || s.Invalidations[0] != want || s.Queues["pregeneration"].Length != "1" {
			return fmt.Sprintf("invalidations %+v, queues %+v", s.Invalidations, s.Queues)
		}
		return ""
	})
	b.observe()
	b.waitFor(t, 20*time.Second, "the queue drained and the page pre-generated", func(s pageState) string {
		if q := s.Queues["pregeneration"]; q.Length != "0" || q.Done != "1" || s.Figures["invalidations.total"] != "1" {
			return fmt.Sprintf("queues %+v, invalidations.total %q", s.Queues, s.Figures["invalidations.total"])
		}
		return ""
	})

	// A key with markup: shown as text, no element made of it.
	const hostile = `<img src=x onerror=alert(1)><b>bold</b>`
	flushOn(t, e, hostile)
	b.waitFor(t, 15*time.Second, "the hostile key shown as text", func(s pageState) string {
		if len(s.Invalidations) < 2 || s.Invalidations[0].What != "key "+hostile+" (live)" || s.Invalidations[0].Files != "0" {
			return fmt.Sprintf("invalidations %+v", s.Invalidations)
		}
		return ""
	})
	if s := b.state(t); s.Markup != 0 {
		t.Fatalf("the page made %d elements of a cache key", s.Markup)
	}
	b.waitFor(t, 15*time.Second, "the figures after the flushes equal the JSON", func(s pageState) string {
		return diffFigures(statusFigures(t, status), s.Figures)
	})
	b.checkConsole(t)
	b.checkRequests(t, e.URL())
}

// chromiumPath finds Debian's chromium; without it the test is skipped,
// except in CI (CI=true), where it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (CI installs Debian's chromium package)")
	}
	t.Skip("chromium is not installed: apt-get install chromium")
	return ""
}

// browser is a headless Chromium in its own process group, with what its
// page reported: console messages, exceptions, log entries, requests.
type browser struct {
	ctx context.Context
	pid int

	mu       sync.Mutex
	problems []string
	requests []string
	seen     []procgroup.Proc
}

// startBrowser starts Chromium for the test; at its end the browser is
// closed, and the test fails if any of its processes is left.
func startBrowser(t *testing.T, path string) *browser {
	t.Helper()
	var cmd *exec.Cmd
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.ModifyCmdFunc(func(c *exec.Cmd) {
			// Its own process group, so that the check at the end finds
			// every process it started; killed if the test binary dies.
			c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
			cmd = c
		}),
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{}
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(b.listen))
	b.ctx = ctx
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		allocCancel()
		t.Fatalf("starting chromium: %v", err)
	}
	b.pid = cmd.Process.Pid
	t.Cleanup(func() {
		b.observe()
		closeCtx, closeCancel := context.WithTimeout(ctx, 10*time.Second)
		if err := chromedp.Cancel(closeCtx); err != nil {
			t.Logf("closing chromium: %v", err)
		}
		closeCancel()
		cancel()
		allocCancel() // kills the browser if it is still there, and waits for it
		b.mu.Lock()
		seen := append([]procgroup.Proc(nil), b.seen...)
		b.mu.Unlock()
		var left []procgroup.Proc
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if left = procgroup.Survivors(b.pid, seen); len(left) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(left) > 0 {
			_ = syscall.Kill(-b.pid, syscall.SIGKILL)
			for _, p := range left {
				_ = syscall.Kill(p.Pid, syscall.SIGKILL)
			}
			t.Errorf("chromium left %d process(es) behind: %v", len(left), left)
		}
	})
	return b
}

// observe records the browser's processes as they are now (renderers come
// and go), so the final check finds them even if they left its group.
func (b *browser) observe() {
	procs, err := procgroup.Descendants(b.pid)
	if err != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range procs {
		known := false
		for _, s := range b.seen {
			known = known || (s.Pid == p.Pid && s.Start == p.Start)
		}
		if !known {
			b.seen = append(b.seen, p)
		}
	}
}

func (b *browser) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert ||
			ev.Type == runtime.ConsoleAPICalledTypeWarning {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			b.problems = append(b.problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		b.problems = append(b.problems, "exception: "+msg)
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
			b.problems = append(b.problems, fmt.Sprintf("%s %s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
		}
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	}
}

// checkConsole fails the test on any error or warning the page caused.
func (b *browser) checkConsole(t *testing.T) {
	t.Helper()
	if p := b.reported(); p != "" {
		t.Fatal(p)
	}
}

func (b *browser) reported() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.problems) == 0 {
		return ""
	}
	return "the page reported:\n" + strings.Join(b.problems, "\n")
}

// waitFor polls the page until cond, which says what is still missing,
// returns ""; on timeout the test fails with the last answer and anything
// the page reported.
func (b *browser) waitFor(t *testing.T, limit time.Duration, what string, cond func(pageState) string) {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(100 * time.Millisecond) {
		missing := cond(b.state(t))
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %s\n%s", limit, what, missing, b.reported())
		}
	}
}

// checkRequests fails the test if the page asked anything but the edge.
func (b *browser) checkRequests(t *testing.T, origin string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	json := 0
	for _, u := range b.requests {
		if !strings.HasPrefix(u, origin+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page requested %s", u)
		}
		if strings.HasSuffix(u, "/_status?format=json") {
			json++
		}
	}
	if json < 3 {
		t.Errorf("the page fetched its figures %d times: %v", json, b.requests)
	}
}

type invalidationRow struct{ Source, What, Files, Removal, Pregeneration string }

type queueRow struct{ Length, Done string }

// pageState is what the page shows.
type pageState struct {
	Figures       map[string]string
	Queues        map[string]queueRow
	Invalidations []invalidationRow
	Markup        int // elements inside the invalidations' "what" cells
}

const readPage = `(() => {
	const text = (row, sel) => { const c = row.querySelector(sel); return c ? c.textContent : ''; };
	const out = {Figures: {}, Queues: {}, Invalidations: [], Markup: 0};
	document.querySelectorAll('#all-figures [data-figure]').forEach(c => { out.Figures[c.dataset.figure] = c.textContent; });
	document.querySelectorAll('#queue-rows tr[data-queue]').forEach(r => {
		out.Queues[r.dataset.queue] = {Length: text(r, 'td.length'), Done: text(r, 'td.done')};
	});
	document.querySelectorAll('#invalidation-rows tr').forEach(r => {
		const c = r.querySelectorAll('td');
		if (c.length === 6) {
			out.Invalidations.push({Source: c[1].textContent, What: c[2].textContent, Files: c[3].textContent,
				Removal: c[4].textContent, Pregeneration: c[5].textContent});
		}
	});
	document.querySelectorAll('#invalidation-rows td.what *').forEach(() => { out.Markup++; });
	return out;
})()`

func (b *browser) state(t *testing.T) pageState {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](readPage))
	if err != nil {
		t.Fatalf("reading the page: %v", err)
	}
	return s
}

// statusFigures fetches the edge's JSON and flattens its stats the way the
// page lists them: numbers and booleans (1/0) by dotted path.
func statusFigures(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "?format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var answer struct {
		Stats map[string]any `json:"stats"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status JSON: %d %v: %.200s", resp.StatusCode, err, body)
	}
	out := map[string]float64{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case float64:
			out[prefix] = v
		case bool:
			out[prefix] = 0
			if v {
				out[prefix] = 1
			}
		case map[string]any:
			for k, x := range v {
				name := k
				if prefix != "" {
					name = prefix + "." + k
				}
				walk(name, x)
			}
		}
	}
	walk("", answer.Stats)
	return out
}

// diffFigures says how the page's figures differ from the JSON's; "" if
// they are the same.
func diffFigures(want map[string]float64, got map[string]string) string {
	var diffs []string
	for name, w := range want {
		g, ok := got[name]
		v, err := strconv.ParseFloat(g, 64)
		if g == "true" || g == "false" {
			v, err = map[string]float64{"true": 1, "false": 0}[g], nil
		}
		if !ok || err != nil || math.Abs(v-w) > 1e-9*math.Max(1, math.Abs(w)) {
			diffs = append(diffs, fmt.Sprintf("%s: page %q, JSON %v", name, g, w))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: on the page only", name))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}
