package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// The status page's history: the edge's figures every 10 s over the last
// 10 minutes, so that the page draws its sparklines at once rather than
// only from its own polls. Each sample is the Snapshot flattened into its
// numeric figures by JSON path ("queues.removal.length"; true is 1), so a
// figure added to the Snapshot joins the history without code here. Lists
// (the last invalidations) are not sampled.

const (
	statusSampleEvery = 10 * time.Second
	statusSamples     = 60 // 10 minutes
	// statusMaxFigures bounds a sample. The Snapshot's shape is fixed by
	// the code and its maps by the configuration (outcomes, groups,
	// peers), so only a very large configuration reaches it; the figures
	// after the first statusMaxFigures in path order are left out.
	statusMaxFigures = 512
)

// statusHistories holds one history per data folder across config
// reloads, so that a reload does not empty the page's graphs.
var statusHistories = caddy.NewUsagePool()

// statusHistory is the ring of the last statusSamples samples.
type statusHistory struct {
	mu      sync.Mutex
	samples [statusSamples]statusSample
	next, n int
}

type statusSample struct {
	at      time.Time
	figures map[string]float64
}

// Destruct implements caddy.Destructor; the history holds only memory.
func (*statusHistory) Destruct() error { return nil }

// add keeps s unless the newest sample is less than half an interval
// older: while a reload overlaps, the old and the new config's samplers
// both run.
func (h *statusHistory) add(s statusSample, every time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n > 0 {
		last := h.samples[(h.next-1+len(h.samples))%len(h.samples)]
		if s.at.Sub(last.at) < every/2 {
			return false
		}
	}
	h.samples[h.next] = s
	h.next = (h.next + 1) % len(h.samples)
	h.n = min(h.n+1, len(h.samples))
	return true
}

// StatusHistory is the history as the status page reads it: the sample
// times, and per figure its values at those times (null where a sample
// lacks the figure).
type StatusHistory struct {
	IntervalSeconds float64               `json:"interval_seconds"`
	Times           []int64               `json:"times"` // Unix ms, oldest first
	Series          map[string][]*float64 `json:"series"`
}

func (h *statusHistory) export(every time.Duration) StatusHistory {
	h.mu.Lock()
	samples := make([]statusSample, 0, h.n)
	for i := h.n; i > 0; i-- {
		samples = append(samples, h.samples[(h.next-i+len(h.samples))%len(h.samples)])
	}
	h.mu.Unlock()
	out := StatusHistory{IntervalSeconds: every.Seconds(), Times: make([]int64, len(samples)),
		Series: map[string][]*float64{}}
	for i, s := range samples {
		out.Times[i] = s.at.UnixMilli()
		for name, v := range s.figures {
			col := out.Series[name]
			if col == nil {
				col = make([]*float64, len(samples))
				out.Series[name] = col
			}
			col[i] = &v
		}
	}
	return out
}

// statusSampler takes the samples of one config's app.
type statusSampler struct {
	hist     *statusHistory
	snapshot func() Snapshot
	every    time.Duration
	log      *zap.Logger

	dropped atomic.Int64 // figures left out of samples (statusMaxFigures)
	warned  atomic.Bool

	cancel context.CancelFunc
	done   chan struct{}
}

// statusSampler returns the app's sampler, made on first use: the
// `delivery_status` handlers ask for it while the config is provisioned
// (one at a time), so an edge without a status page samples nothing.
func (a *App) statusSampler() (*statusSampler, error) {
	if a.status != nil {
		return a.status, nil
	}
	h, _, err := statusHistories.LoadOrNew(a.dataDir, func() (caddy.Destructor, error) { return new(statusHistory), nil })
	if err != nil {
		return nil, err
	}
	a.status = &statusSampler{hist: h.(*statusHistory), snapshot: a.Snapshot, every: statusSampleEvery, log: a.log}
	return a.status, nil
}

// startStatus starts the sampler, if a status page asked for one, tied to
// the app's context.
func (a *App) startStatus() {
	if a.status != nil {
		a.status.start(a.ctx)
	}
}

// stopStatus stops the sampler and waits for it.
func (a *App) stopStatus() {
	if a.status != nil {
		a.status.stop()
	}
}

// releaseStatus gives back this config's reference to the history.
func (a *App) releaseStatus() error {
	if a.status == nil {
		return nil
	}
	_, err := statusHistories.Delete(a.dataDir)
	return err
}

func (s *statusSampler) start(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.every)
		defer t.Stop()
		for {
			s.sample(time.Now())
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (s *statusSampler) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
	s.cancel = nil
}

// sample takes one sample of the app's figures.
func (s *statusSampler) sample(now time.Time) {
	figures, err := flattenFigures(s.snapshot())
	if err != nil {
		s.log.Error("status page: sampling the figures", zap.Error(err))
		return
	}
	if len(figures) > statusMaxFigures {
		names := make([]string, 0, len(figures))
		for name := range figures {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names[statusMaxFigures:] {
			delete(figures, name)
		}
		s.dropped.Add(int64(len(names) - statusMaxFigures))
		if s.warned.CompareAndSwap(false, true) {
			s.log.Warn("status page: the edge reports more figures than its history keeps; the rest are left out",
				zap.Int("figures", len(names)), zap.Int("kept", statusMaxFigures), zap.String("first_left_out", names[statusMaxFigures]))
		}
	}
	s.hist.add(statusSample{at: now, figures: figures}, s.every)
}

// history is the history for the page.
func (s *statusSampler) history() StatusHistory { return s.hist.export(s.every) }

// flattenFigures returns the numbers and booleans of v's JSON form by
// their dotted path; lists are left out.
func flattenFigures(v any) (map[string]float64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var tree any
	if err := json.Unmarshal(b, &tree); err != nil {
		return nil, err
	}
	out := map[string]float64{}
	flattenInto(out, "", tree)
	return out, nil
}

func flattenInto(out map[string]float64, prefix string, v any) {
	switch v := v.(type) {
	case float64:
		if prefix != "" {
			out[prefix] = v
		}
	case bool:
		if prefix != "" {
			out[prefix] = 0
			if v {
				out[prefix] = 1
			}
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			flattenInto(out, name, v[k])
		}
	}
}

// statusMetrics exposes the figures the history left out.
type statusMetrics struct {
	s       *statusSampler
	dropped *prometheus.Desc
}

func newStatusMetrics(s *statusSampler) *statusMetrics {
	return &statusMetrics{s: s, dropped: prometheus.NewDesc("delivery_status_figures_dropped_total",
		fmt.Sprintf("Figures left out of the status page's history (more than %d in one sample).", statusMaxFigures), nil, nil)}
}

// Describe implements prometheus.Collector.
func (m *statusMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.dropped }

// Collect implements prometheus.Collector.
func (m *statusMetrics) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(m.dropped, prometheus.CounterValue, float64(m.s.dropped.Load()))
}
