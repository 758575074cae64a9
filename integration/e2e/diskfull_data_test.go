package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// The data folder (registry database and journal) on a full file system.
//
// A file system that refused a write may still take a smaller one: the
// journal's last page and the database's freed pages have room that no
// ballast can take (a stored miss there was the test's old flake: the
// journal's last page took its record in about one run in four). So the
// test fills what is left itself, through the edge: a 404 records the
// removal of its name, the journal's smallest line (a few dozen bytes,
// where a page's record takes 400), and a flush of a 1000-byte key is a
// large write to the database (flush log and group index). Only then is
// the folder full for every write that follows.

const (
	// maxFillers bounds the 404 misses that fill the journal's last page
	// (a page holds about 130 of their records).
	maxFillers = 300
	// maxFloodFlushes bounds the flushes that fill the database.
	maxFloodFlushes = 300
)

// fillJournal requests pages the origin does not have (each 404 appends a
// removal record to the journal) until an append fails, which the health
// check reports as the registry journal's error. It returns how many
// were needed.
func fillJournal(t *testing.T, e *harness.Edge) int {
	t.Helper()
	for i := 1; i <= maxFillers; i++ {
		if status, _, _ := harness.Get(t, nil, fmt.Sprintf("%s/z%03d.html", e.URL(), i)); status != http.StatusNotFound {
			t.Fatalf("filler %d: %d, want 404", i, status)
		}
		if _, _, msg := cacheHealth(t, e); strings.Contains(msg, "registry journal") {
			return i
		}
	}
	t.Fatalf("the journal took %d records on a full file system", maxFillers)
	return 0
}

// floodFlush is one flush sent to the servlet.
type floodFlush struct {
	key string
	ts  int64
}

func (f floodFlush) url(e *harness.Edge) string {
	return fmt.Sprintf("%s%s?action=flush&group=test&forward=false&key=%s&timestamp=%d",
		e.URL(), servletPath, url.QueryEscape(f.key), f.ts)
}

// floodFlushes sends flushes with distinct keys of 1000 bytes until one
// answers 500 (it could not be committed); it returns those that
// answered 200 and the one that failed.
func floodFlushes(t *testing.T, e *harness.Edge) (applied []floodFlush, failed floodFlush) {
	t.Helper()
	base := time.Now().UnixMilli()
	for i := range maxFloodFlushes {
		f := floodFlush{key: fmt.Sprintf("flood-%03d-", i) + strings.Repeat("k", 990), ts: base + int64(i)}
		switch status, _, body := harness.Get(t, nil, f.url(e)); status {
		case http.StatusOK:
			applied = append(applied, f)
		case http.StatusInternalServerError:
			return applied, f
		default:
			t.Fatalf("flush %d on a full data folder: %d %q", i, status, body)
		}
	}
	t.Fatalf("%d flushes of 1000-byte keys all committed on a full data folder", maxFloodFlushes)
	return nil, floodFlush{}
}

// logRecords returns the edge's JSON log records with message msg.
func logRecords(log, msg string) []map[string]any {
	var out []map[string]any
	for line := range strings.SplitSeq(log, "\n") {
		if !strings.Contains(line, `"msg":"`+msg+`"`) {
			continue
		}
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// invalidationLog is the edge's record of applied invalidations
// (/delivery/stats on the admin API).
type invalidationLog struct {
	Total  int64 `json:"total"`
	Recent []struct {
		Source string    `json:"source"`
		Kind   string    `json:"kind"`
		ID     string    `json:"id"`
		Time   time.Time `json:"time"`
	} `json:"recent"`
}

func invalidations(a adminClient) invalidationLog {
	var stats struct {
		Invalidations invalidationLog `json:"invalidations"`
	}
	if st := a.call(http.MethodGet, "/delivery/stats", nil, &stats); st != http.StatusOK {
		a.t.Fatalf("stats: %d", st)
	}
	return stats.Invalidations
}

// count is how many of the recent invalidations since came from source
// for id.
func (l invalidationLog) count(since time.Time, source, id string) int {
	n := 0
	for _, r := range l.Recent {
		if r.Source == source && r.ID == id && r.Time.After(since) {
			n++
		}
	}
	return n
}

// TestDiskFullDataFolder: with the data folder (registry and journal) on
// a full file system, hits are served, a miss is passed on uncached (no
// record, so no file), a flush that cannot be committed answers 500,
// delivery_health reports the cache DOWN, and the staging poller keeps
// its position. After space returns, every content change is applied
// exactly once (the edge's invalidation log counts each once, and its
// total counts nothing more), the failed flush, retried with the same
// timestamp, is applied (so the failure left nothing behind) and logged
// once, every flush that answered 200 is in the flush log once, and the
// registry check is clean.
func TestDiskFullDataFolder(t *testing.T) {
	dir := t.TempDir()
	harness.Tmpfs(t, filepath.Join(dir, "data"), tmpfsSize)
	o := harness.StartOriginWith(t, harness.OriginOptions{Staging: origin.StagingConfig{Replicas: 2}})
	adminAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	e := harness.StartEdge(t, harness.EdgeOptions{Dir: dir, Origin: o.RenderAddr, Route: healthRoute, Admin: adminAddr,
		Global: o.StagingBlock("100ms", true) + "\npregenerate {\nworkers 2\n}"})
	a := adminClient{t: t, base: "http://" + adminAddr}
	const (
		missPath  = "/sport/story105.html"
		earlyPath = "/sport/story106.html"
	)
	changed := []string{"story101", "story102", "story103", "story104"}
	pages := []string{storyPath, earlyPath}
	for _, id := range changed {
		pages = append(pages, "/politik/"+id+".html")
	}
	cachePages(t, e, pages...) // rendered
	cachePages(t, e, pages...) // and read: pre-generated when changed
	renders := func() map[string]int64 {
		out := map[string]int64{}
		for _, p := range pages {
			out[p] = o.Renders(p)
		}
		return out
	}
	// A change before the disk is full: its page is rendered again once.
	o.Content.Update("story106", map[string]any{"title": "Vorher"})
	waitFor(t, 10*time.Second, "the early change pre-generated", func() bool { return o.Renders(earlyPath) == 2 })
	settle()
	start := invalidations(a)
	fullAt := time.Now()

	ballast := harness.Fill(t, e.DataDir)
	fillers := fillJournal(t, e)
	applied, failed := floodFlushes(t, e)
	t.Logf("data folder filled: a ballast of %d bytes, %d journal records, %d flushes committed before one failed",
		ballast.Size, fillers, len(applied))
	before := renders()

	// Changes while the data folder is full.
	for i, id := range changed {
		o.Content.Update(id, map[string]any{"title": fmt.Sprintf("Voll %d", i)})
	}
	last := o.Content.LastSourceTime()

	// Hits are served; a miss is passed on whole and not stored: each
	// request renders it.
	if status, _, body := harness.Get(t, nil, e.URL()+storyPath); status != 200 || !wholePage(body) {
		t.Errorf("hit on a full data folder: %d whole=%v", status, wholePage(body))
	}
	for i := 1; i <= 2; i++ {
		status, _, body := harness.Get(t, nil, e.URL()+missPath)
		if status != 200 || !wholePage(body) {
			t.Fatalf("miss %d on a full data folder: %d whole=%v", i, status, wholePage(body))
		}
		if n := o.Renders(missPath); n != int64(i) {
			t.Errorf("miss %d on a full data folder: %d renders; want it rendered each time (not stored)", i, n)
		}
	}
	if e.Exists(fileOf(missPath)) {
		t.Errorf("%s stored without a registry record", fileOf(missPath))
	}
	// The temp file goes after the answer's last byte has left.
	waitFor(t, 5*time.Second, "no temp files left", func() bool { return len(tempFiles(t, e)) == 0 })

	// Let the poller, the queues and the access-time flush meet the full
	// disk for a while.
	time.Sleep(1500 * time.Millisecond)
	during := renders()

	st, c, msg := cacheHealth(t, e)
	t.Logf("health on a full data folder: %d, cache %s: %s", st, c, msg)
	if st != 503 || c != "DOWN" || !strings.Contains(msg, "data folder") {
		t.Errorf("health on a full data folder: %d, cache %s %q; want 503, DOWN, the data folder named", st, c, msg)
	}

	ballast.Remove()
	waitFor(t, 30*time.Second, "cache component UP", func() bool {
		st, c, _ := cacheHealth(t, e)
		return c == "UP" && st == 200
	})
	// Every change is served (the poller backs off while applying fails):
	// none is lost.
	for i, id := range changed {
		want := fmt.Sprintf("Voll %d", i)
		waitFor(t, 60*time.Second, id+" changed", func() bool {
			_, _, body := harness.Get(t, nil, e.URL()+"/politik/"+id+".html")
			return strings.Contains(body, want)
		})
	}
	// The failed flush, sent again as it was: a flush already in the log
	// would not be applied again, so "applied" shows the 500 left nothing.
	if status, _, body := harness.Get(t, nil, failed.url(e)); status != 200 {
		t.Fatalf("flush retried after space returned: %d %q", status, body)
	}
	// A flush of a document read lately renders its page again, once.
	storyRenders := o.Renders(storyPath)
	if status, _, body := harness.Get(t, nil, e.URL()+servletPath+"?action=flush&group=test&forward=false&key=story100"); status != 200 {
		t.Fatalf("flush story100 after space returned: %d %q", status, body)
	}
	waitFor(t, 10*time.Second, "story100 re-rendered", func() bool { return o.Renders(storyPath) > storyRenders })
	cachePages(t, e, missPath)
	waitFor(t, 5*time.Second, "the miss stored", func() bool { return e.Exists(fileOf(missPath)) })
	settle()

	// Exactly once: each change is in the invalidation log once since the
	// disk was filled (the seed content was applied at the start), and the
	// log's total grew by the changes and the flushes that were applied
	// (the flood, the retried one and story100), nothing more.
	inv := invalidations(a)
	for _, id := range changed {
		if n := inv.count(fullAt, "staging", id); n != 1 {
			t.Errorf("change of %s applied %d times, want once", id, n)
		}
	}
	if n := inv.count(fullAt, "flush", failed.key); n != 1 {
		t.Errorf("retried flush applied %d times, want once", n)
	}
	if want := start.Total + int64(len(changed)+len(applied)+2); inv.Total != want {
		t.Errorf("%d invalidations applied since the data folder was full, want %d (%d changes, %d+2 flushes)",
			inv.Total-start.Total, want-start.Total, len(changed), len(applied))
	}
	if n := o.Renders(storyPath) - storyRenders; n != 1 {
		t.Errorf("%s rendered %d times after its flush, want once", storyPath, n)
	}
	after := renders()
	for _, id := range changed {
		p := "/politik/" + id + ".html"
		t.Logf("%s: %d renders after its change (%d while the data folder was full)", p, after[p]-before[p], during[p]-before[p])
	}
	if n := after[earlyPath]; n != 2 {
		t.Errorf("%s rendered %d times, want 2 (its change applied once)", earlyPath, n)
	}
	log := e.Log()
	var retried []string
	for _, rec := range logRecords(log, "cache flush") {
		if rec["key"] == failed.key {
			retried = append(retried, fmt.Sprint(rec["applied"]))
		}
	}
	if len(retried) != 1 || retried[0] != "true" {
		t.Errorf("retried flush logged as applied %v, want [true] (the 500 committed nothing)", retried)
	}
	if n := len(logRecords(log, "cache flush failed")); n != 1 {
		t.Errorf("%d flushes failed, want 1", n)
	}
	if n := strings.Count(log, diskFullLog+"data folder"); n != 1 {
		t.Errorf("%q logged %d times, want once", diskFullLog+"data folder", n)
	}
	if n := strings.Count(log, spaceLog+"data folder"); n != 1 {
		t.Errorf("%q logged %d times, want once", spaceLog+"data folder", n)
	}
	if strings.Contains(log, "cannot record render") {
		t.Errorf("a full data folder was logged per render")
	}
	e.Stop()

	eng, err := cache.Open(cache.Options{DataDir: e.DataDir, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	pos, err := eng.Position("staging")
	if err != nil {
		t.Fatal(err)
	}
	logged, err := eng.FlushesSince("test", 0)
	eng.Close()
	if err != nil {
		t.Fatal(err)
	}
	if pos < last {
		t.Errorf("stored staging position %d, want at least %d (the last change)", pos, last)
	}
	// The flush log: every flush that answered 200 once, the failed one
	// once (its retry), story100 once.
	times := map[string][]int64{}
	for _, f := range logged {
		times[f.Key] = append(times[f.Key], f.Time)
	}
	for _, f := range append(applied, failed) {
		if got := times[f.key]; len(got) != 1 || got[0] != f.ts {
			t.Errorf("flush %.12s… in the flush log at %v, want once at %d", f.key, got, f.ts)
		}
	}
	if len(logged) != len(applied)+2 {
		t.Errorf("flush log holds %d flushes, want %d", len(logged), len(applied)+2)
	}
	checkRegistry(t, e)
}
