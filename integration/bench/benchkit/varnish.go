package benchkit

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Varnish is a running varnishd and its working folder (for varnishstat).
type Varnish struct {
	*Server
	Workdir string
}

// varnishVCL is the configuration of the Varnish anchor, set up as its own
// documentation advises for serving a static docroot from memory:
//
//   - Varnish asks the backend for gzip on every miss and, with the
//     default http_gzip_support, stores the gzipped body and gunzips it
//     on every hit for a client that did not ask for gzip (wrk does not):
//     one gunzip per request. The backend fetch asks for the identity
//     body instead, so a hit is a copy from memory as it is for nginx.
//   - The body then never varies, so a Vary from the backend is dropped.
//   - nginx sends no Cache-Control, so objects would get the default TTL
//     of 120 s and expire between rounds: they are kept for an hour.
const varnishVCL = `vcl 4.1;

backend nginx {
	.host = "%s";
	.port = "%s";
}

sub vcl_backend_fetch {
	unset bereq.http.Accept-Encoding;
}

sub vcl_backend_response {
	unset beresp.http.Vary;
	set beresp.ttl = 1h;
}
`

// StartVarnish runs Debian's varnishd on a loopback port in front of
// backend (host:port): malloc storage of 256 MB (ten times the anchors'
// docroot; malloc takes memory as objects arrive), two thread pools (one
// per core, the default that Varnish's docs advise to keep) of 64 to 1000
// threads, so that the 32 connections of a round never wait for a thread
// to be made even if they all land in one pool. It is stopped with
// SIGTERM (the manager stops its child) at cleanup.
func StartVarnish(tb testing.TB, backend string, port int) *Varnish {
	tb.Helper()
	if _, err := exec.LookPath("varnishd"); err != nil {
		tb.Skip("varnishd not found (Debian: apt-get install varnish)")
	}
	host, bport, err := net.SplitHostPort(backend)
	if err != nil {
		tb.Fatalf("varnish backend %q: %v", backend, err)
	}
	work := tb.TempDir()
	vcl := filepath.Join(work, "bench.vcl")
	if err := os.WriteFile(vcl, fmt.Appendf(nil, varnishVCL, host, bport), 0o644); err != nil {
		tb.Fatal(err)
	}
	traversable(tb, work) // varnishd reads the VCL and runs its child as another user
	s := StartServer(tb, port, syscall.SIGTERM, "varnishd", "-F", "-n", work, "-a", fmt.Sprintf("127.0.0.1:%d", port),
		"-f", vcl, "-s", "malloc,256m",
		"-p", "thread_pools=2", "-p", "thread_pool_min=64", "-p", "thread_pool_max=1000")
	return &Varnish{Server: s, Workdir: work}
}

// VarnishStats are counters of MAIN as varnishstat reports them.
type VarnishStats struct {
	Hit, Miss, Gunzip int64
}

// Sub returns the counters accumulated since an earlier reading.
func (s VarnishStats) Sub(earlier VarnishStats) VarnishStats {
	return VarnishStats{Hit: s.Hit - earlier.Hit, Miss: s.Miss - earlier.Miss, Gunzip: s.Gunzip - earlier.Gunzip}
}

// HitRatio is hits ÷ (hits + misses), 0 without lookups.
func (s VarnishStats) HitRatio() float64 {
	if s.Hit+s.Miss == 0 {
		return 0
	}
	return float64(s.Hit) / float64(s.Hit+s.Miss)
}

func (s VarnishStats) String() string {
	return fmt.Sprintf("MAIN.cache_hit %d, MAIN.cache_miss %d (hit ratio %.4f%%), MAIN.n_gunzip %d",
		s.Hit, s.Miss, 100*s.HitRatio(), s.Gunzip)
}

// Stats reads the hit, miss and gunzip counters with varnishstat once they
// have settled: worker threads add their counts to the shared ones in
// batches and when they go idle, so a reading right after requests can be
// short. Settled means unchanged for a second (readings 250 ms apart, 10 s
// at most).
func (v *Varnish) Stats(tb testing.TB) VarnishStats {
	tb.Helper()
	last, same := v.readStats(tb), 0
	for range 40 {
		time.Sleep(250 * time.Millisecond)
		now := v.readStats(tb)
		if now != last {
			last, same = now, 0
			continue
		}
		if same++; same == 4 {
			break
		}
	}
	return last
}

func (v *Varnish) readStats(tb testing.TB) VarnishStats {
	tb.Helper()
	out, err := exec.Command("varnishstat", "-n", v.Workdir, "-1",
		"-f", "MAIN.cache_hit", "-f", "MAIN.cache_miss", "-f", "MAIN.n_gunzip").CombinedOutput()
	if err != nil {
		tb.Fatalf("varnishstat: %v\n%s", err, out)
	}
	return parseVarnishStat(tb, string(out))
}

// parseVarnishStat reads `varnishstat -1` lines: "NAME VALUE RATE TEXT".
func parseVarnishStat(tb testing.TB, out string) VarnishStats {
	tb.Helper()
	var s VarnishStats
	found := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "MAIN.cache_hit":
			s.Hit, found = n, found+1
		case "MAIN.cache_miss":
			s.Miss, found = n, found+1
		case "MAIN.n_gunzip":
			s.Gunzip, found = n, found+1
		}
	}
	if found != 3 {
		tb.Fatalf("varnishstat printed no hit, miss and gunzip counters:\n%s", out)
	}
	return s
}

// Warm fetches every path once through Varnish so that the timed rounds
// find every object in the cache.
func (v *Varnish) Warm(tb testing.TB, paths []string) {
	tb.Helper()
	for _, p := range paths {
		resp, err := http.Get(v.URL + p)
		if err != nil {
			tb.Fatalf("warming Varnish: %v", err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			tb.Fatalf("warming Varnish: GET %s: %d %v", p, resp.StatusCode, err)
		}
	}
}
