package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/bench/benchkit"
	"github.com/delivery-edge/edge/integration/origin"
)

// BenchmarkSoak runs the delivery edge for BENCH_SOAK (default 30m; CI
// runs 2m as a smoke test) the way production does, and checks it all the
// time:
//
//   - three edges in a group behind a round-robin client; the sample
//     origin with 50,000 generated stories (SSI teasers, images), two
//     staging replicas lagging 0–2 s; S3 on versitygw; a fault link in
//     front of the render backend, the staging API and S3;
//   - load: Zipf-distributed reads with a mix of Accept-Encoding, 1 %
//     misses, 5 % image variants; 10 CMS changes and 1 flush per second;
//     an image gets a new original now and then; a fault every
//     cfg.FaultEvery; the third edge killed with SIGKILL and restarted
//     every cfg.KillEvery;
//   - checked: no 5xx that no injected fault explains, no connection error
//     that no kill explains, every page whole and decodable; every change
//     served by every edge after it applied it (p99 reported, goal 2 s);
//     RSS, goroutines and open files flat on the edges never killed
//     (slope over the last two thirds, goal < 1 %/min); at the end the
//     queues drain and `caddy delivery-check` is clean on every edge.
//
// It prints the figures and writes integration/bench/out/soak.svg and
// soak.png (RSS, goroutines, open files, req/s, p99 over time).
func BenchmarkSoak(b *testing.B) {
	for range b.N {
		runSoak(b, soakConfigFromEnv())
	}
}

func runSoak(b *testing.B, cfg soakConfig) {
	s := startSoakSite(b, cfg)
	samples := &soakSamples{proc: make([][]procSample, len(s.edges))}
	runCtx, stopRun := context.WithCancel(context.Background())
	loadCtx, stopLoad := context.WithCancel(runCtx)
	var bg, load, trackers sync.WaitGroup
	var closeJobs sync.Once
	stopAll := func() { // also on a failure of the benchmark's goroutine
		stopLoad()
		load.Wait()
		closeJobs.Do(func() { close(s.fresh.jobs) })
		trackers.Wait()
		stopRun()
		bg.Wait()
	}
	b.Cleanup(stopAll)

	start := time.Now()
	s.timeline.start = start
	bg.Go(func() { s.sampler(runCtx, start, samples) })
	for _, e := range s.edges {
		bg.Go(func() { s.pollApplied(runCtx, e) })
	}
	for range freshWorkers {
		trackers.Go(func() { s.freshWorker(runCtx) })
	}
	var misses, revs atomic.Int64
	for w := range cfg.Workers {
		load.Go(func() { s.reader(loadCtx, w, &misses) })
	}
	for w := range imageReaders {
		load.Go(func() { s.imageReader(loadCtx, w) })
	}
	load.Go(func() { s.changer(loadCtx, &revs) })
	load.Go(func() { s.flusher(loadCtx) })

	killed := s.orchestrate(b, start)
	loadEnd := time.Now()

	// The end: load stops, the trackers settle the last changes, the
	// queues drain, every edge stops cleanly and is checked.
	stopLoad()
	load.Wait()
	closeJobs.Do(func() { close(s.fresh.jobs) })
	trackers.Wait()
	drain, drained := s.waitDrained(runCtx)
	stopRun()
	bg.Wait()
	s.readClient.CloseIdleConnections()
	s.pollClient.CloseIdleConnections()
	checks := s.checkRegistries(b)

	s.report(b, samples, killed, loadEnd.Sub(start), drain, drained, checks, revs.Load())
}

// soakFault is one kind of fault the links inject.
type soakFault struct {
	what     string
	link     func(*soakSite) faultLink
	begin    func(faultLink)
	repeat   bool // begin again every 500 ms while the fault lasts
	classes  int  // requests whose 5xx it explains
	disturbs bool // delays renders, or the edges apply changes in a burst after it
}

var soakFaults = []soakFault{
	{what: "render backend: connections reset every 500 ms", link: func(s *soakSite) faultLink { return s.renderLink },
		begin: func(l faultLink) { l.Reset() }, repeat: true, classes: htmlClasses, disturbs: true},
	{what: "staging API down", link: func(s *soakSite) faultLink { return s.stagingLink },
		begin: func(l faultLink) { l.Down() }, classes: imageClasses, disturbs: true},
	{what: "render backend: +250 ms latency per chunk", link: func(s *soakSite) faultLink { return s.renderLink },
		begin: func(l faultLink) { l.Latency(250 * time.Millisecond) }, classes: htmlClasses, disturbs: true},
	{what: "S3 down", link: func(s *soakSite) faultLink { return s.s3Link },
		begin: func(l faultLink) { l.Down() }, classes: imageClasses},
	{what: "staging API: +1 s latency per chunk", link: func(s *soakSite) faultLink { return s.stagingLink },
		begin: func(l faultLink) { l.Latency(time.Second) }, classes: imageClasses, disturbs: true},
}

// orchestrate runs the schedule on the benchmark's goroutine (a restart
// may fail the benchmark) until the duration is over: faults in turn,
// kills of the last edge, new replica lags, new image originals. It
// returns the edges it killed.
func (s *soakSite) orchestrate(b *testing.B, start time.Time) map[int]bool {
	cfg := s.cfg
	end := start.Add(cfg.Duration)
	quietFrom := end.Add(-cfg.Quiet)
	rng := rand.New(rand.NewPCG(21, 22))
	nextFault, nextKill := start.Add(cfg.FaultEvery), start.Add(cfg.KillEvery)
	nextLag, nextImage := start.Add(cfg.LagEvery), start.Add(cfg.ImageEvery)
	var (
		fault      *soakFault
		faultWin   *soakWindow
		faultUntil time.Time
		faultN     int
		imageRev   int
	)
	killed := map[int]bool{}
	victim := s.edges[len(s.edges)-1]
	lags := []time.Duration{0, 2 * time.Second} // as the origin starts
	lagTarget := slices.Clone(lags)
	for now := time.Now(); now.Before(end); now = time.Now() {
		switch {
		case fault != nil && now.After(faultUntil):
			fault.link(s).Up()
			s.timeline.close(faultWin)
			fault = nil
		case fault != nil && fault.repeat:
			fault.begin(fault.link(s))
		case fault == nil && now.After(nextFault) && now.Add(cfg.FaultFor).Before(quietFrom):
			f := soakFaults[faultN%len(soakFaults)]
			faultN++
			fault, faultUntil = &f, now.Add(cfg.FaultFor)
			faultWin = s.timeline.open(soakWindow{what: f.what, classes: f.classes, edge: -1, disturbs: f.disturbs})
			f.begin(f.link(s))
			nextFault = nextFault.Add(cfg.FaultEvery)
		}
		if now.After(nextKill) && now.Before(quietFrom) {
			s.killRestart(victim)
			killed[victim.index] = true
			nextKill = nextKill.Add(cfg.KillEvery)
		}
		if now.After(nextLag) {
			for i := range lagTarget {
				lagTarget[i] = time.Duration(rng.Int64N(int64(2 * time.Second)))
			}
			nextLag = nextLag.Add(cfg.LagEvery)
		}
		for i := range lags {
			lags[i] = lagStep(lags[i], lagTarget[i], orchestrateTick/2)
			if err := s.origin.Staging.SetLag(i, lags[i]); err != nil {
				b.Fatal(err)
			}
		}
		if now.After(nextImage) {
			imageRev++
			s.changeImage(rng.IntN(len(origin.Sections)*origin.StoriesPerSection), imageRev)
			nextImage = nextImage.Add(cfg.ImageEvery)
		}
		time.Sleep(orchestrateTick)
	}
	if fault != nil {
		fault.link(s).Up()
		s.timeline.close(faultWin)
	}
	return killed
}

// orchestrateTick is the pace of the schedule.
const orchestrateTick = 500 * time.Millisecond

// lagStep moves a replica's lag towards its target by at most step. A
// replica whose lag grows by less than the time that passes still moves
// forward, as a real one does; a jump would take back what it served.
func lagStep(lag, target, step time.Duration) time.Duration {
	switch {
	case target > lag+step:
		return lag + step
	case target < lag-step:
		return lag - step
	}
	return target
}

// killRestart kills an edge with SIGKILL (the client stops sending to it
// first, as a balancer's health check would soon after), leaves it down
// for a second and starts it again on the same data.
func (s *soakSite) killRestart(e *soakEdge) {
	w := s.timeline.open(soakWindow{what: fmt.Sprintf("edge %s killed (SIGKILL) and restarted", e.name),
		edge: e.index, kill: true})
	e.up.Store(false)
	e.Kill()
	time.Sleep(time.Second)
	e.Start()
	e.up.Store(true)
	s.timeline.close(w)
}

// changeImage gives a demo image a new original and publishes it: the
// image updates delete its stored variants, pages show new stamps.
func (s *soakSite) changeImage(n, rev int) {
	id := origin.ImageID(n)
	doc, ok := s.content.Latest(id)
	if !ok {
		return
	}
	s.content.SetBinary(doc.UUID, origin.DemoJPEG(1600, 900, 1000+rev))
	s.content.Update(id, map[string]any{"title": fmt.Sprintf("Bild %d · rev %d", n, rev)})
}

// waitDrained waits until every edge has applied the newest change and
// its queues are empty (twice in a row), at most two minutes.
func (s *soakSite) waitDrained(ctx context.Context) (time.Duration, bool) {
	start := time.Now()
	good := 0
	for time.Since(start) < 2*time.Minute {
		target := float64(s.content.LastSourceTime())
		ok := true
		for _, e := range s.edges {
			m, up := s.scrape(ctx, e)
			if !up || m["delivery_staging_applied_source_time_ms"] < target ||
				m[`delivery_queue_length{queue="removal"}`]+m[`delivery_queue_length{queue="pregeneration"}`] > 0 {
				ok = false
			}
		}
		if good = map[bool]int{true: good + 1, false: 0}[ok]; good >= 2 {
			return time.Since(start), true
		}
		if !sleepCtx(ctx, 250*time.Millisecond) {
			break
		}
	}
	return time.Since(start), false
}

// percentiles formats p50, p99 and max of ds.
func percentiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %v  p99 %v  max %v (%d)", benchkit.Percentile(ds, 50).Round(time.Millisecond),
		benchkit.Percentile(ds, 99).Round(time.Millisecond), benchkit.Percentile(ds, 100).Round(time.Millisecond), len(ds))
}
