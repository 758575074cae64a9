package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/delivery-edge/edge/integration/bench/benchkit"
	"github.com/delivery-edge/edge/integration/harness"
)

// procSample is one look at an edge process.
type procSample struct {
	t          float64 // seconds since the start
	pid        int
	rss        float64 // MB (VmRSS)
	goroutines float64
	fds        float64 // open file descriptors
	queue      float64 // removal + pre-generation jobs waiting
	cpu        float64 // % of one core since the previous sample of this process (NaN: first)
	cpuTime    time.Duration
}

// loadSample is one interval of the readers' traffic.
type loadSample struct {
	t, rps, p99ms, renders float64
	selfCPU                float64 // % of one core: this process (origin, load, links, trackers)
	loadAvg                float64 // the machine's, 1 minute
}

type soakSamples struct {
	mu   sync.Mutex
	proc [][]procSample // per edge
	load []loadSample
}

// sampler takes the process figures of every edge that is up and the
// readers' req/s and p99 every cfg.SampleEvery until ctx ends.
func (s *soakSite) sampler(ctx context.Context, start time.Time, out *soakSamples) {
	t := time.NewTicker(s.cfg.SampleEvery)
	defer t.Stop()
	last, lastRenders := time.Now(), s.backendRenders()
	lastSelf, _ := benchkit.ProcCPU(os.Getpid())
	prev := make([]*procSample, len(s.edges))
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		h := s.stats.interval.Swap()
		renders := s.backendRenders()
		dt := now.Sub(last).Seconds()
		ls := loadSample{t: now.Sub(start).Seconds(), rps: float64(h.Count()) / dt,
			p99ms: float64(h.Quantile(0.99)) / 1e6, renders: float64(renders-lastRenders) / dt}
		if self, err := benchkit.ProcCPU(os.Getpid()); err == nil {
			ls.selfCPU = 100 * (self - lastSelf).Seconds() / dt
			lastSelf = self
		}
		ls.loadAvg, _ = benchkit.LoadAverage()
		last, lastRenders = now, renders
		var ps []*procSample
		for i, e := range s.edges {
			p := s.sampleEdge(ctx, e, now.Sub(start).Seconds())
			if p != nil {
				p.cpu = math.NaN()
				if q := prev[i]; q != nil && q.pid == p.pid && p.t > q.t {
					p.cpu = 100 * (p.cpuTime - q.cpuTime).Seconds() / (p.t - q.t)
				}
				prev[i] = p
			}
			ps = append(ps, p)
		}
		out.mu.Lock()
		out.load = append(out.load, ls)
		for i, p := range ps {
			if p != nil {
				out.proc[i] = append(out.proc[i], *p)
			}
		}
		out.mu.Unlock()
	}
}

func (s *soakSite) sampleEdge(ctx context.Context, e *soakEdge, t float64) *procSample {
	pid := e.Pid()
	if pid == 0 || !e.up.Load() {
		return nil
	}
	rss, err := benchkit.ProcRSS(pid)
	if err != nil {
		return nil
	}
	fds, err := benchkit.ProcOpenFiles(pid)
	if err != nil {
		return nil
	}
	cpu, err := benchkit.ProcCPU(pid)
	if err != nil {
		return nil
	}
	m, ok := s.scrape(ctx, e)
	if !ok || e.Pid() != pid {
		return nil
	}
	return &procSample{t: t, pid: pid, rss: float64(rss) / 1e6, goroutines: m["go_goroutines"], fds: float64(fds), cpuTime: cpu,
		queue: m[`delivery_queue_length{queue="removal"}`] + m[`delivery_queue_length{queue="pregeneration"}`]}
}

// backendRenders is how many requests the render backend rendered.
func (s *soakSite) backendRenders() int64 {
	var n int64
	for _, c := range s.origin.Render.Counts() {
		n += c
	}
	return n
}

// segments splits an edge's samples where its process changed (a restart).
func segments(ps []procSample, v func(procSample) float64) [][]benchkit.Point {
	var out [][]benchkit.Point
	pid := -1
	for _, p := range ps {
		if p.pid != pid {
			out = append(out, nil)
			pid = p.pid
		}
		if x := v(p); !math.IsNaN(x) {
			out[len(out)-1] = append(out[len(out)-1], benchkit.Point{T: p.t, V: x})
		}
	}
	return out
}

// cpuSummary is the mean CPU of every edge and of the test process, and
// the machine's mean load average: the soak shares its cores.
func (s *soakSite) cpuSummary(out *soakSamples) string {
	out.mu.Lock()
	defer out.mu.Unlock()
	var parts []string
	for i, e := range s.edges {
		var sum float64
		n := 0
		for _, p := range out.proc[i] {
			if !math.IsNaN(p.cpu) {
				sum += p.cpu
				n++
			}
		}
		parts = append(parts, fmt.Sprintf("edge %s %.0f %%", e.name, sum/float64(max(n, 1))))
	}
	var self, load float64
	for _, l := range out.load {
		self += l.selfCPU
		load += l.loadAvg
	}
	n := float64(max(len(out.load), 1))
	return fmt.Sprintf("%s, test process (origin, load, links, trackers) %.0f %%; machine load average %.1f on %d cores",
		strings.Join(parts, ", "), self/n, load/n, runtime.NumCPU())
}

type soakMeasure struct {
	name, unit string
	v          func(procSample) float64
}

var soakMeasures = []soakMeasure{
	{"RSS", "MB", func(p procSample) float64 { return p.rss }},
	{"goroutines", "", func(p procSample) float64 { return p.goroutines }},
	{"open files", "", func(p procSample) float64 { return p.fds }},
}

// Plotted, not judged: they follow the load.
var (
	queueMeasure = soakMeasure{"queued jobs (removal + pre-generation)", "",
		func(p procSample) float64 { return p.queue }}
	cpuMeasure = soakMeasure{"CPU", "% of one core", func(p procSample) float64 { return p.cpu }}
)

// trendTable fits a line over the last two thirds of the run for every
// edge and measure. Edges that were killed are fitted over their last
// process only, for information: the goal holds for the others.
func (s *soakSite) trendTable(out *soakSamples, killed map[int]bool) (string, bool) {
	out.mu.Lock()
	defer out.mu.Unlock()
	from := s.cfg.Duration.Seconds() / 3
	var b strings.Builder
	flat := true
	fmt.Fprintf(&b, "| edge | measure | mean | slope/min | %%/min (last ⅔) | samples | goal < 1 %%/min |\n|---|---|---|---|---|---|---|\n")
	for i, e := range s.edges {
		for _, m := range soakMeasures {
			segs := segments(out.proc[i], m.v)
			if len(segs) == 0 {
				continue
			}
			pts := segs[len(segs)-1]
			note := ""
			if killed[i] {
				note = fmt.Sprintf(" (killed %d×: last process only, not judged)", len(segs)-1)
			} else {
				pts = nil
				for _, sg := range segs {
					pts = append(pts, sg...)
				}
			}
			tr := benchkit.FitTrend(pts, from)
			verdict := "met"
			switch {
			case killed[i]:
				verdict = "—"
			case math.IsNaN(tr.PctPerMinute):
				verdict = "too few samples"
			case tr.PctPerMinute >= 1:
				verdict, flat = "MISSED", false
			}
			fmt.Fprintf(&b, "| %s%s | %s | %.1f %s | %+.2f | %+.2f | %d | %s |\n", e.name, note, m.name, tr.Mean, m.unit,
				tr.SlopePerMin, tr.PctPerMinute, tr.N, verdict)
		}
	}
	return b.String(), flat
}

// writePlots draws RSS, goroutines, open files, queued jobs, req/s, p99
// and the freshness of every change over time
// into integration/bench/out/soak.svg and soak.png.
func (s *soakSite) writePlots(out *soakSamples) ([]string, error) {
	out.mu.Lock()
	defer out.mu.Unlock()
	var panels []benchkit.Panel
	for _, m := range append(soakMeasures, queueMeasure, cpuMeasure) {
		pn := benchkit.Panel{Title: m.name + " per edge", YLabel: m.name}
		if m.unit != "" {
			pn.YLabel += " (" + m.unit + ")"
		}
		for i, e := range s.edges {
			pn.Lines = append(pn.Lines, benchkit.Line{Name: "edge " + e.name, Segments: segments(out.proc[i], m.v)})
		}
		if m.name == cpuMeasure.name {
			var self []benchkit.Point
			for _, l := range out.load {
				self = append(self, benchkit.Point{T: l.t, V: l.selfCPU})
			}
			pn.Title = "CPU per edge and of the test process (origin, load, links)"
			pn.Lines = append(pn.Lines, benchkit.Line{Name: "test process", Segments: [][]benchkit.Point{self}})
		}
		panels = append(panels, pn)
	}
	var rps, renders, p99 []benchkit.Point
	for _, l := range out.load {
		rps = append(rps, benchkit.Point{T: l.t, V: l.rps})
		renders = append(renders, benchkit.Point{T: l.t, V: l.renders})
		p99 = append(p99, benchkit.Point{T: l.t, V: l.p99ms})
	}
	panels = append(panels,
		benchkit.Panel{Title: "reader requests and backend renders per second", YLabel: "per second", Lines: []benchkit.Line{
			{Name: "reader req/s (all edges)", Segments: [][]benchkit.Point{rps}},
			{Name: "render backend renders/s", Segments: [][]benchkit.Point{renders}}}},
		benchkit.Panel{Title: "reader p99 per interval", YLabel: "p99 (ms)", Lines: []benchkit.Line{
			{Name: "p99", Segments: [][]benchkit.Point{p99}}}})
	fresh := benchkit.Panel{Title: "CMS change applied → served new, by time of the change", YLabel: "seconds"}
	s.fresh.mu.Lock()
	for i, e := range s.edges {
		fresh.Lines = append(fresh.Lines, benchkit.Line{Name: "edge " + e.name, Scatter: true,
			Segments: [][]benchkit.Point{slices.Clone(s.fresh.points[i])}})
	}
	s.fresh.mu.Unlock()
	panels = append(panels, fresh)
	title := fmt.Sprintf("Soak %v: 3 edges, %d req/s target, %g changes/s, %g flushes/s", s.cfg.Duration,
		s.cfg.RPS, s.cfg.ChangesPerSec, s.cfg.FlushesPerSec)
	dir := filepath.Join(harness.RepoRoot(), "integration", "bench", "out")
	var paths []string
	for _, name := range []string{"soak.svg", "soak.png"} {
		p := filepath.Join(dir, name)
		if err := benchkit.WritePanels(p, title, panels); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}
