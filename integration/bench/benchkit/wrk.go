// Package benchkit holds what the benchmarks in integration/bench share:
// generated docroots, wrk runs, nginx/Varnish/Caddy side by side, and the
// tables with ratios they print.
package benchkit

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Duration is how long one wrk round runs: BENCH_DURATION (default 5s).
// CI sets it short to smoke-test the benchmarks.
func Duration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("BENCH_DURATION")); err == nil && d > 0 {
		return d
	}
	return 5 * time.Second
}

// Rounds is how many interleaved rounds run: BENCH_ROUNDS (default 3).
func Rounds() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// Need skips (or, with BENCH_REQUIRE set, fails) when a tool is missing.
func Need(tb testing.TB, tools ...string) {
	tb.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s not found (Debian: apt-get install wrk nginx-light varnish libvips-tools)", tool)
			if os.Getenv("BENCH_REQUIRE") != "" {
				tb.Fatal(msg)
			}
			tb.Skip(msg)
		}
	}
}

// Result is one wrk run.
type Result struct {
	Requests int64
	Errors   int64
	RPS      float64
	P50, P99 time.Duration
}

// wrkScript walks a list of paths round robin and prints the figures in
// a line that Wrk parses.
const wrkScript = `
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
local i = 0
local extra = os.getenv("WRK_HEADER")
request = function()
  i = i + 1
  local h = nil
  if extra ~= nil and extra ~= "" then
    local k, v = extra:match("^([^:]+):%s*(.*)$")
    h = { [k] = v }
  end
  return wrk.format("GET", paths[(i % #paths) + 1], h)
end
done = function(summary, latency, requests)
  local errs = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format("BENCHKIT %d %d %.3f %d %d\n", summary.requests, errs, summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99)))
end
`

// Wrk runs wrk against base with the given paths; header, if not empty,
// is one "Name: value" header sent with every request.
func Wrk(tb testing.TB, base string, paths []string, threads, conns int, d time.Duration, header string) Result {
	tb.Helper()
	dir := tb.TempDir()
	script := filepath.Join(dir, "walk.lua")
	list := filepath.Join(dir, "paths.txt")
	if err := os.WriteFile(script, []byte(wrkScript), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(list, []byte(strings.Join(paths, "\n")+"\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%ds", max(1, int(d.Seconds()))), "--timeout", "10s", "-s", script, base)
	cmd.Env = append(os.Environ(), "WRK_PATHS="+list, "WRK_HEADER="+header)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		tb.Fatalf("wrk: %v\n%s", err, out.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && f[0] == "BENCHKIT" {
			var r Result
			r.Requests, _ = strconv.ParseInt(f[1], 10, 64)
			r.Errors, _ = strconv.ParseInt(f[2], 10, 64)
			r.RPS, _ = strconv.ParseFloat(f[3], 64)
			p50, _ := strconv.ParseInt(f[4], 10, 64)
			p99, _ := strconv.ParseInt(f[5], 10, 64)
			r.P50, r.P99 = time.Duration(p50)*time.Microsecond, time.Duration(p99)*time.Microsecond
			return r
		}
	}
	tb.Fatalf("wrk printed no result:\n%s", out.String())
	return Result{}
}

// Series collects the rounds of several contenders and prints medians.
type Series struct {
	order []string
	runs  map[string][]Result
}

// NewSeries returns an empty series.
func NewSeries() *Series { return &Series{runs: map[string][]Result{}} }

// Add records one round of a contender.
func (s *Series) Add(name string, r Result) {
	if _, ok := s.runs[name]; !ok {
		s.order = append(s.order, name)
	}
	s.runs[name] = append(s.runs[name], r)
}

// Requests is how many requests wrk counted for a contender over all
// rounds.
func (s *Series) Requests(name string) int64 {
	var n int64
	for _, r := range s.runs[name] {
		n += r.Requests
	}
	return n
}

// Median returns the median round (by req/s) of a contender.
func (s *Series) Median(name string) Result {
	rs := append([]Result(nil), s.runs[name]...)
	if len(rs) == 0 {
		return Result{}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].RPS < rs[j].RPS })
	m := rs[len(rs)/2]
	p99s := make([]time.Duration, len(rs))
	for i, r := range rs {
		p99s[i] = r.P99
	}
	sort.Slice(p99s, func(i, j int) bool { return p99s[i] < p99s[j] })
	m.P99 = p99s[len(p99s)/2]
	return m
}

// Table prints req/s, p50, p99 and the ratio of each contender to anchor.
func (s *Series) Table(title, anchor string) string {
	var b strings.Builder
	a := s.Median(anchor)
	fmt.Fprintf(&b, "\n%s (median of %d rounds)\n", title, len(s.runs[anchor]))
	fmt.Fprintf(&b, "| %-40s | %10s | %9s | %9s | %8s | %6s |\n", "server", "req/s", "p50", "p99", "÷ "+short(anchor), "errors")
	fmt.Fprintf(&b, "|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 42), strings.Repeat("-", 12), strings.Repeat("-", 11),
		strings.Repeat("-", 11), strings.Repeat("-", 10), strings.Repeat("-", 8))
	for _, name := range s.order {
		m := s.Median(name)
		ratio := 0.0
		if a.RPS > 0 {
			ratio = m.RPS / a.RPS
		}
		var errs int64
		for _, r := range s.runs[name] {
			errs += r.Errors
		}
		fmt.Fprintf(&b, "| %-40s | %10.0f | %9s | %9s | %8.2f | %6d |\n", name, m.RPS, m.P50.Round(time.Microsecond),
			m.P99.Round(time.Microsecond), ratio, errs)
	}
	return b.String()
}

func short(s string) string {
	if len(s) > 6 {
		return s[:6]
	}
	return s
}
