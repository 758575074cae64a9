package benchkit

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	h2ReqPerSec = regexp.MustCompile(`finished in [^,]+, ([0-9.]+) req/s`)
	h2Latency   = regexp.MustCompile(`time for request:\s+(\S+)\s+(\S+)\s+(\S+)`)
	h2Failed    = regexp.MustCompile(`(\d+) failed`)
)

// H2load runs h2load (nghttp2-client) over HTTP/2 against base with the
// given paths (one connection per client, one stream at a time, like
// wrk). h2load reports no percentiles: P50 holds the mean, P99 the max.
func H2load(tb testing.TB, base string, paths []string, conns int, d time.Duration) Result {
	tb.Helper()
	dir := tb.TempDir()
	list := filepath.Join(dir, "uris.txt")
	var b strings.Builder
	for _, p := range paths {
		b.WriteString(base + p + "\n")
	}
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("h2load", "-t1", "-c", strconv.Itoa(conns), "-m1", "-D", fmt.Sprintf("%d", max(1, int(d.Seconds()))),
		"-i", list)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		tb.Fatalf("h2load: %v\n%s", err, out.String())
	}
	s := out.String()
	m := h2ReqPerSec.FindStringSubmatch(s)
	if m == nil {
		tb.Fatalf("h2load printed no rate:\n%s", s)
	}
	var r Result
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	r.Requests = int64(r.RPS * d.Seconds())
	if l := h2Latency.FindStringSubmatch(s); l != nil {
		r.P99, _ = time.ParseDuration(strings.ReplaceAll(l[2], "us", "µs"))
		r.P50, _ = time.ParseDuration(strings.ReplaceAll(l[3], "us", "µs"))
	}
	if f := h2Failed.FindStringSubmatch(s); f != nil {
		r.Errors, _ = strconv.ParseInt(f[1], 10, 64)
	}
	return r
}
