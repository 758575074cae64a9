package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/bench/benchkit"
	"github.com/delivery-edge/edge/integration/harness"
)

// registryCheck is the outcome of `caddy delivery-check` on one edge.
type registryCheck struct {
	edge   string
	clean  bool
	output string
}

// checkRegistries stops every edge cleanly (SIGTERM) and runs the
// consistency check on its data folder.
func (s *soakSite) checkRegistries(b *testing.B) []registryCheck {
	var out []registryCheck
	for _, e := range s.edges {
		e.up.Store(false)
		e.Stop()
		cmd := exec.Command(harness.Binary(b), "delivery-check", "--data_dir", e.DataDir)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			b.Fatalf("delivery-check on edge %s: %v", e.name, err)
		}
		out = append(out, registryCheck{edge: e.name, clean: err == nil,
			output: strings.TrimSpace(stdout.String() + "\n" + lastLines(stderr.String(), 5))})
	}
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// report prints the figures, writes the plots and fails the benchmark for
// every check that did not hold.
func (s *soakSite) report(b *testing.B, samples *soakSamples, killed map[int]bool, ran, drain time.Duration,
	drained bool, checks []registryCheck, changes int64) {
	st := s.stats
	cfg := s.cfg
	var readers int64
	for _, c := range []soakClass{classPage, classMiss, classImage} {
		readers += st.requests[c].Load()
	}
	fmt.Printf("\nSoak of %v (load ran %v): 3 edges in a group, %d pages, %d req/s target (%d workers), "+
		"%g changes/s, %g flushes/s\n", cfg.Duration, ran.Round(time.Second), len(s.pages), cfg.RPS, cfg.Workers+imageReaders,
		cfg.ChangesPerSec, cfg.FlushesPerSec)
	kills, faults := s.timeline.count()
	fmt.Printf("faults and kills (%d faults, %d kills):\n%s", faults, kills, s.timeline.summary())

	fmt.Printf("\n| measure | value | goal |\n|---|---|---|\n")
	fmt.Printf("| reader requests | %d (%.0f/s) | |\n", readers, float64(readers)/ran.Seconds())
	fmt.Printf("| reader latency | p50 %v, p99 %v, max %v | |\n", st.total.Quantile(0.5).Round(10*time.Microsecond),
		st.total.Quantile(0.99).Round(10*time.Microsecond), st.total.Max().Round(time.Millisecond))
	for c := range numClasses {
		h := &st.byClass[c]
		fmt.Printf("| %s requests | %d: p50 %v, p99 %v, max %v | |\n", classNames[c], st.requests[c].Load(),
			h.Quantile(0.5).Round(10*time.Microsecond), h.Quantile(0.99).Round(10*time.Microsecond),
			h.Max().Round(time.Millisecond))
	}
	var injected, bad []string
	var badTotal int64
	for c := range numClasses {
		if n := st.injected5xx[c].Load(); n > 0 {
			injected = append(injected, fmt.Sprintf("%s %d", classNames[c], n))
		}
		if n := st.bad5xx[c].Load(); n > 0 {
			bad = append(bad, fmt.Sprintf("%s %d", classNames[c], n))
			badTotal += n
		}
	}
	fmt.Printf("| 5xx explained by an injected fault | %s | |\n", orNone(injected))
	fmt.Printf("| 5xx not explained | %s | none |\n", orNone(bad))
	fmt.Printf("| connection errors during kills (sent to the next edge) | %d (failovers %d) | |\n",
		st.transport.Load(), st.failovers.Load())
	fmt.Printf("| connection errors not explained | %d | none |\n", st.badConn.Load())
	fmt.Printf("| other unexpected statuses | %d | none |\n", st.badStatus.Load())
	fmt.Printf("| bad bodies (truncated, undecodable, SSI directive) | %d | none |\n", st.badBody.Load())
	fmt.Printf("| pages with a failed SSI part (comment in place) | %d | |\n", st.ssiComments.Load())

	s.fresh.mu.Lock()
	calm, all, toApply := s.fresh.calm, s.fresh.all, s.fresh.toApply
	s.fresh.mu.Unlock()
	calmP99 := benchkit.Percentile(calm, 99)
	fmt.Printf("| CMS changes | %d, × 3 edges: %d tracked, %d not tracked (trackers busy) | |\n",
		changes, s.fresh.tracked.Load(), s.fresh.dropped.Load())
	fmt.Printf("| change → applied by the edge (replica lag 0–2 s, long poll) | %s | |\n", percentiles(toApply))
	fmt.Printf("| applied → served new, no kill or fault in force (+%v) | %s | p99 ≤ 2 s |\n", faultGrace, percentiles(calm))
	fmt.Printf("| applied → served new, all | %s | |\n", percentiles(all))
	fmt.Printf("| changes never served new (within %v of applying) | %d | none |\n", freshLimit, s.fresh.unresolved.Load())
	fmt.Printf("| queues drained and newest change applied on every edge | %v after the load (%v) | yes |\n",
		drain.Round(100*time.Millisecond), drained)
	for _, c := range checks {
		fmt.Printf("| delivery-check edge %s | %s | clean |\n", c.edge, map[bool]string{true: "clean", false: "PROBLEMS"}[c.clean])
	}

	fmt.Printf("CPU (mean): %s\n", s.cpuSummary(samples))
	trends, flat := s.trendTable(samples, killed)
	fmt.Printf("\nProcess figures (sampled every %v; per edge; edge %s killed and restarted every %v):\n%s",
		cfg.SampleEvery, s.edges[len(s.edges)-1].name, cfg.KillEvery, trends)
	if paths, err := s.writePlots(samples); err != nil {
		b.Errorf("plots: %v", err)
	} else {
		fmt.Printf("plots: %s\n", strings.Join(paths, ", "))
	}
	fmt.Printf("goal p99 applied → served new ≤ 2 s: %v (%s)\n", calmP99.Round(time.Millisecond),
		map[bool]string{true: "met", false: "MISSED"}[calmP99 <= 2*time.Second])
	fmt.Printf("goal RSS, goroutines, open files flat (< 1 %%/min) on edges never killed: %s\n",
		map[bool]string{true: "met", false: "MISSED"}[flat])
	fmt.Printf("warnings and errors in the edges' logs:\n%s", s.logProblems())
	if len(st.examples) > 0 {
		fmt.Printf("first problems:\n  %s\n", strings.Join(st.examples, "\n  "))
	}

	// Checks (figures against goals are reported above, not failed).
	if badTotal > 0 {
		b.Errorf("%d 5xx answers that no injected fault explains", badTotal)
	}
	if n := st.badConn.Load(); n > 0 {
		b.Errorf("%d connection errors that no kill explains", n)
	}
	if n := st.badStatus.Load() + st.badBody.Load(); n > 0 {
		b.Errorf("%d wrong answers (status or body)", n)
	}
	if n := s.fresh.unresolved.Load(); n > 0 {
		b.Errorf("%d changes were never served new", n)
	}
	if len(all) == 0 {
		b.Errorf("no change was measured")
	}
	if !drained {
		b.Errorf("queues did not drain within %v after the load", drain.Round(time.Second))
	}
	for _, c := range checks {
		if !c.clean {
			b.Errorf("delivery-check on edge %s found problems:\n%s", c.edge, c.output)
		}
	}
	if kills == 0 || faults < len(soakFaults) {
		b.Errorf("the run was too short for every phase: %d kills, %d faults (want ≥ 1 and ≥ %d)", kills, faults, len(soakFaults))
	}
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

// logProblems counts the warn and error lines of every edge's log by
// message, with the first error of each, for the report: what the edges
// themselves saw of the faults (and of anything else).
func (s *soakSite) logProblems() string {
	var b strings.Builder
	for _, e := range s.edges {
		type seen struct {
			n     int
			first string
		}
		counts := map[string]*seen{}
		var order []string
		for _, line := range strings.Split(e.Log(), "\n") {
			var rec struct {
				Level string  `json:"level"`
				TS    float64 `json:"ts"`
				Msg   string  `json:"msg"`
				Error string  `json:"error"`
			}
			if json.Unmarshal([]byte(line), &rec) != nil || (rec.Level != "warn" && rec.Level != "error") {
				continue
			}
			k := rec.Level + ": " + rec.Msg
			if counts[k] == nil {
				at := s.timeline.at(time.Unix(0, int64(rec.TS*1e9)))
				counts[k] = &seen{first: at + " " + truncate(rec.Error, 300)}
				order = append(order, k)
			}
			counts[k].n++
		}
		for _, k := range order {
			fmt.Fprintf(&b, "  edge %s %5d× %s — %s\n", e.name, counts[k].n, k, counts[k].first)
		}
	}
	return b.String()
}
