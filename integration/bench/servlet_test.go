package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

const (
	benchServlet  = "/system/servlet/cache.servlet"
	benchPassword = "bench"
)

// BenchmarkServletGroupFlush measures how fast a flush taken by one edge
// is applied on all three edges of a group (three real binaries on
// loopback, one sample origin).
//
// "Applied" is observed in two ways:
//
//   - flush log: 500 flushes of distinct keys are sent to edge A one after
//     the other; after each, B and C are polled (action=sync, forward=false,
//     since = just before the flush) until the key is listed. A flush is
//     listed in the same bbolt transaction that queues its invalidation, so
//     this is the time until every edge has committed it. The clock starts
//     before the request to A and stops when the slower of B and C lists it.
//   - docroot: 100 rounds of: render /politik/ on B and C (until the file
//     is in place), flush section:/politik on A, poll both docroots until
//     the page is renamed to .old — the whole path including the removal
//     queue.
func BenchmarkServletGroupFlush(b *testing.B) {
	for range b.N {
		o := harness.StartOrigin(b, origin.RenderConfig{})
		ports := []int{harness.FreePort(b), harness.FreePort(b), harness.FreePort(b)}
		var edges []*harness.Edge
		for _, self := range ports {
			var peers []string
			for _, p := range ports {
				if p != self {
					peers = append(peers, fmt.Sprintf("http://127.0.0.1:%d", p))
				}
			}
			edges = append(edges, harness.StartEdge(b, harness.EdgeOptions{
				Origin: o.RenderAddr, Port: self, Route: "cache_servlet " + benchServlet,
				Global: "servlet_password " + benchPassword + "\ngroup live {\npeer " + strings.Join(peers, " ") + "\n}",
			}))
		}
		a, peers := edges[0], edges[1:]
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 10 * time.Second}
		for _, e := range edges { // all three have caught up with each other
			waitLog(b, e, "flush group ready")
		}
		for i := range 20 { // warm up connections and the outbox workers
			flushKey(b, client, a, fmt.Sprintf("warm-%d", i))
		}

		const n = 500
		var ack, applied []time.Duration
		for i := range n {
			key := fmt.Sprintf("bench-%d", i)
			since := time.Now().UnixMilli() - 1
			start := time.Now()
			flushKey(b, client, a, key)
			ack = append(ack, time.Since(start))
			var wg sync.WaitGroup
			for _, e := range peers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for deadline := time.Now().Add(10 * time.Second); !listed(b, client, e, key, since); {
						if time.Now().After(deadline) {
							b.Errorf("%s never listed %s", e.URL(), key)
							return
						}
						time.Sleep(200 * time.Microsecond)
					}
				}()
			}
			wg.Wait()
			applied = append(applied, time.Since(start))
		}

		const rounds = 100
		var renamed []time.Duration
		for range rounds {
			for _, e := range peers {
				if status, _, _ := harness.Get(b, client, e.URL()+"/politik/"); status != 200 {
					b.Fatalf("render /politik/ on %s: %d", e.URL(), status)
				}
				// A request that finds only the .old copy is answered from it
				// and renders in the background: wait for the new file.
				// A render that a flush overtook is not stored: ask again
				// every second.
				name := filepath.Join(e.Docroot, "politik", "index.html")
				asked := time.Now()
				for deadline := time.Now().Add(10 * time.Second); !fileExists(name); time.Sleep(100 * time.Microsecond) {
					if time.Now().After(deadline) {
						b.Fatalf("%s never rendered on %s", name, e.URL())
					}
					if time.Since(asked) > time.Second {
						harness.Get(b, client, e.URL()+"/politik/")
						asked = time.Now()
					}
				}
			}
			start := time.Now()
			flushKey(b, client, a, "section:/politik")
			for _, e := range peers {
				name := filepath.Join(e.Docroot, "politik", "index.html")
				for deadline := time.Now().Add(10 * time.Second); fileExists(name); time.Sleep(100 * time.Microsecond) {
					if time.Now().After(deadline) {
						b.Fatalf("%s not renamed on %s", name, e.URL())
					}
				}
			}
			renamed = append(renamed, time.Since(start))
		}

		fmt.Printf("Cache servlet, group of 3 edges on loopback (flush taken by A):\n")
		fmt.Printf("  %-52s p50 %8v  p99 %8v  max %8v\n", "A answers the flush (local apply + outbox write)",
			pct(ack, 50), pct(ack, 99), pct(ack, 100))
		fmt.Printf("  %-52s p50 %8v  p99 %8v  max %8v\n", fmt.Sprintf("applied on all three (flush log), %d flushes", n),
			pct(applied, 50), pct(applied, 99), pct(applied, 100))
		fmt.Printf("  %-52s p50 %8v  p99 %8v  max %8v\n", fmt.Sprintf("page renamed on B and C (docroot), %d flushes", rounds),
			pct(renamed, 50), pct(renamed, 99), pct(renamed, 100))
		fmt.Printf("goal p99 applied on all three ≤ 200ms: %v\n", pct(applied, 99))
	}
}

func flushKey(tb testing.TB, c *http.Client, e *harness.Edge, key string) {
	tb.Helper()
	q := url.Values{"action": {"flush"}, "key": {key}, "group": {"live"}, "password": {benchPassword}}
	resp, err := c.Get(e.URL() + benchServlet + "?" + q.Encode())
	if err != nil {
		tb.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		tb.Fatalf("flush %s: %d %q", key, resp.StatusCode, body)
	}
}

// listed reports whether an edge's flush log has key since the given time.
func listed(tb testing.TB, c *http.Client, e *harness.Edge, key string, since int64) bool {
	q := url.Values{"action": {"sync"}, "group": {"live"}, "since": {strconv.FormatInt(since, 10)},
		"forward": {"false"}, "password": {benchPassword}}
	resp, err := c.Get(e.URL() + benchServlet + "?" + q.Encode())
	if err != nil {
		tb.Error(err)
		return false
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range strings.Split(string(body), "\n") {
		if i := strings.LastIndexByte(line, ';'); i > 0 && line[:i] == key {
			return true
		}
	}
	return false
}

func waitLog(tb testing.TB, e *harness.Edge, msg string) {
	tb.Helper()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(e.Log(), msg); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("%s never logged %q", e.URL(), msg)
		}
	}
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// pct is the p-th percentile (nearest rank) of ds.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))].Round(10 * time.Microsecond)
}
