package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// clientFrom makes an HTTP client whose connections come from a loopback
// address of its own (127.0.0.0/8 is all loopback on Linux), so that the
// edge counts it as another client address.
func clientFrom(ip string, conns int) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
}

// postServlet POSTs to the servlet: params in the query string, the
// password in the form body, as peers and scripts send it.
func postServlet(c *http.Client, e *harness.Edge, params url.Values, password string) (int, http.Header, error) {
	resp, err := c.PostForm(e.URL()+servletPath+"?"+params.Encode(), url.Values{"password": {password}})
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, nil
}

// TestServletBurstOfWrongPasswordsGets429: 300 wrong passwords from one
// client, 50 at a time, are answered — most with 429 and Retry-After,
// without a password check; at most 20 are checked. Meanwhile a flush
// with the right password from another address is answered 200, and the
// log has a line or two, not hundreds.
func TestServletBurstOfWrongPasswordsGets429(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Global: "servlet_password " + servletPassword,
		Route: "cache_servlet " + servletPath})
	attacker := clientFrom("127.0.0.1", 50)
	const burst = 300
	var (
		wg                        sync.WaitGroup
		limited, refused, failed  atomic.Int64
		next                      atomic.Int64
		badRetryAfter, otherCodes atomic.Int64
	)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= burst; i = next.Add(1) {
				code, h, err := postServlet(attacker, e, url.Values{"action": {"flush"}, "key": {"home"}, "group": {"live"}},
					fmt.Sprintf("guess-%d", i))
				switch {
				case err != nil:
					failed.Add(1)
				case code == http.StatusTooManyRequests:
					limited.Add(1)
					if h.Get("Retry-After") == "" {
						badRetryAfter.Add(1)
					}
				case code == http.StatusInternalServerError:
					refused.Add(1)
				default:
					otherCodes.Add(1)
				}
			}
		}()
	}
	// While the burst runs (some of its requests are held for seconds),
	// another address flushes with the right password.
	waitFor(t, 10*time.Second, "the burst being limited", func() bool { return limited.Load() > 0 })
	start := time.Now()
	other := clientFrom("127.0.0.2", 1)
	code, _, err := postServlet(other, e, url.Values{"action": {"flush"}, "key": {"home"}, "group": {"live"}},
		servletPassword)
	took := time.Since(start)
	if err != nil || code != http.StatusOK {
		t.Fatalf("flush from another address during the burst: %d %v", code, err)
	}
	// The right password from the limited address is refused unchecked.
	if code, h, err := postServlet(clientFrom("127.0.0.1", 1), e, url.Values{"action": {"sync"}, "group": {"live"}},
		servletPassword); err != nil || code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Errorf("right password from the limited address: %d %v %v", code, h, err)
	}
	wg.Wait()
	t.Logf("burst of %d: %d answered 429, %d checked and refused, %d failed; the other address's flush took %v",
		burst, limited.Load(), refused.Load(), failed.Load(), took.Round(time.Millisecond))
	if failed.Load() != 0 || otherCodes.Load() != 0 || badRetryAfter.Load() != 0 {
		t.Fatalf("%d requests failed, %d other answers, %d 429 without Retry-After", failed.Load(), otherCodes.Load(), badRetryAfter.Load())
	}
	if refused.Load() > 20 || limited.Load() < burst-20 {
		t.Fatalf("%d passwords checked, %d limited, want at most 20 checked", refused.Load(), limited.Load())
	}
	if !logged(flushLogFrom(t, other, e), "home") {
		t.Fatal("the other address's flush is not in the flush log")
	}
	if n := strings.Count(e.Log(), "cache servlet request refused"); n > 3 {
		t.Fatalf("%d refusal lines for a burst of %d", n, burst)
	}
}

// TestServletFlushFloodWithPeerDownKeepsRegistryBounded: 11,000 flushes
// of 1 KB keys while the group's only peer is down (every flush stays in
// its outbox) grow registry.db by what flush_log_max_size and
// outbox_max_size allow. Without the caps the same flood grew the file by
// about 112 MiB (the flush log and the outbox each keep every flush).
func TestServletFlushFloodWithPeerDownKeepsRegistryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("11,000 flushes")
	}
	o := harness.StartOrigin(t, origin.RenderConfig{})
	dead := harness.FreePort(t) // nothing listens there: the peer is down
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Route: "cache_servlet " + servletPath,
		Global: fmt.Sprintf("servlet_password %s\nflush_log_max_size 1MiB\noutbox_max_size 1MiB\ngroup live {\npeer http://127.0.0.1:%d\n}",
			servletPassword, dead)})
	db := filepath.Join(e.DataDir, "registry.db")
	before := fileSize(t, db)
	const flushes, parallel = 11_000, 8
	c := clientFrom("127.0.0.1", parallel)
	var (
		wg         sync.WaitGroup
		next, bad  atomic.Int64
		firstError atomic.Value
	)
	start := time.Now()
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= flushes; i = next.Add(1) {
				key := fmt.Sprintf("k%08d-", i)
				key += strings.Repeat("x", 1024-len(key))
				code, _, err := postServlet(c, e, url.Values{"action": {"flush"}, "key": {key}, "group": {"live"}}, servletPassword)
				if err != nil || code != http.StatusOK {
					bad.Add(1)
					firstError.CompareAndSwap(nil, fmt.Sprintf("%d %v", code, err))
				}
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Fatalf("%d flushes failed, first: %v", n, firstError.Load())
	}
	after := fileSize(t, db)
	t.Logf("%d flushes of 1 KB keys in %v, peer down: registry.db %d -> %d bytes (+%.1f MiB)", flushes,
		time.Since(start).Round(time.Second), before, after, float64(after-before)/(1<<20))
	// Two caps of 1 MiB; bbolt's pages are not full and a freed page is
	// reused only by a later transaction: a few times the caps.
	if after-before > 16<<20 {
		t.Fatalf("registry.db grew by %d bytes", after-before)
	}
	// The oldest flushes went; the newest are kept.
	log := flushLog(t, e)
	if n := strings.Count(log, "\n"); n < 100 || n > 1000 || !strings.Contains(log, fmt.Sprintf("k%08d-", flushes)) {
		t.Fatalf("flush log keeps %d flushes", n)
	}
	// The pruning is logged once per minute (the log and the peer's
	// outbox apart), not per flush.
	waitFor(t, 10*time.Second, "the caps' lines", func() bool {
		return strings.Contains(e.Log(), "flush log at its size cap") && strings.Contains(e.Log(), "outbox of a peer at its size cap")
	})
	// (The flood takes about a minute; on a loaded machine several.)
	most := int(time.Since(start)/time.Minute) + 2
	if l, p := strings.Count(e.Log(), "flush log at its size cap"), strings.Count(e.Log(), "outbox of a peer at its size cap"); l > most || p > most {
		t.Fatalf("%d flush log lines and %d outbox lines in %v, want at most %d each (once a minute)", l, p,
			time.Since(start).Round(time.Second), most)
	}
}

// flushLogFrom is flushLog asked from client c (the default client's
// address, 127.0.0.1, may be limited by the test).
func flushLogFrom(t *testing.T, c *http.Client, e *harness.Edge) string {
	t.Helper()
	resp, err := c.Get(e.URL() + servletPath + "?" + url.Values{"action": {"sync"}, "group": {"live"}, "since": {"0"},
		"forward": {"false"}, "password": {servletPassword}}.Encode())
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sync: %d %q", resp.StatusCode, b)
	}
	return string(b)
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
