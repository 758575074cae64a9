package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/delivery-edge/edge/integration/bench/benchkit"
	"github.com/delivery-edge/edge/integration/origin"
)

// soakStats are the counters every request of the soak adds to.
type soakStats struct {
	interval benchkit.Histogram             // reader latencies since the last sample
	total    benchkit.Histogram             // reader latencies of the whole run
	byClass  [numClasses]benchkit.Histogram // latencies of the whole run by class

	requests    [numClasses]atomic.Int64
	injected5xx [numClasses]atomic.Int64
	bad5xx      [numClasses]atomic.Int64 // no fault explains them
	badStatus   atomic.Int64             // other unexpected statuses (404 for a page…)
	badBody     atomic.Int64             // truncated, undecodable, SSI directives left
	ssiComments atomic.Int64             // pages with a part that failed (a comment in place)
	transport   atomic.Int64             // connection errors during a kill of that edge
	badConn     atomic.Int64             // connection errors no kill explains
	failovers   atomic.Int64             // requests the client sent to the next edge

	mu       sync.Mutex
	examples []string
}

func newSoakStats() *soakStats { return &soakStats{} }

// example keeps the first few problems for the report.
func (st *soakStats) example(format string, args ...any) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.examples) < 20 {
		st.examples = append(st.examples, fmt.Sprintf(format, args...))
	}
}

// soakAnswer is one answer as the soak reads it.
type soakAnswer struct {
	status int
	header http.Header
	body   []byte
	edge   *soakEdge
}

// maxSoakBody bounds what the soak reads of one answer.
const maxSoakBody = 16 << 20

// get sends a request round robin to the edges that are up; a connection
// error sends it to the next one (as a balancer would). Statuses are
// accounted for here; ok is false when no edge answered.
func (s *soakSite) get(ctx context.Context, class soakClass, path, acceptEncoding string) (soakAnswer, bool) {
	n := uint64(len(s.edges))
	first := s.rr.Add(1)
	for i := range n {
		e := s.edges[(first+i)%n]
		if !e.up.Load() {
			continue
		}
		if i > 0 {
			s.stats.failovers.Add(1)
		}
		if a, ok := s.getOn(ctx, e, class, path, acceptEncoding); ok {
			return a, true
		}
		if ctx.Err() != nil {
			return soakAnswer{}, false
		}
	}
	return soakAnswer{}, false
}

// getOn sends a request to one edge.
func (s *soakSite) getOn(ctx context.Context, e *soakEdge, class soakClass, path, acceptEncoding string) (soakAnswer, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.URL()+path, nil)
	if err != nil {
		panic(err) // the soak builds its own URLs
	}
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	client := s.readClient
	if class == classPoll {
		client = s.pollClient
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxSoakBody))
		resp.Body.Close()
	}
	t1 := time.Now()
	if err != nil {
		if ctx.Err() == nil {
			if s.timeline.explainsTransport(e.index, t0, t1) {
				s.stats.transport.Add(1)
			} else {
				s.stats.badConn.Add(1)
				s.stats.example("%s edge %s %s: %v", s.timeline.at(t0), e.name, path, err)
			}
		}
		return soakAnswer{}, false
	}
	s.stats.requests[class].Add(1)
	s.stats.byClass[class].Record(t1.Sub(t0))
	if class == classPage || class == classMiss || class == classImage {
		s.stats.interval.Record(t1.Sub(t0))
		s.stats.total.Record(t1.Sub(t0))
	}
	if resp.StatusCode >= 500 {
		if s.timeline.explains5xx(class, t0, t1) {
			s.stats.injected5xx[class].Add(1)
		} else {
			s.stats.bad5xx[class].Add(1)
			s.stats.example("%s edge %s %s: %d %q", s.timeline.at(t0), e.name, path, resp.StatusCode,
				truncate(string(body), 200))
		}
	}
	return soakAnswer{status: resp.StatusCode, header: resp.Header, body: body, edge: e}, true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// decoded returns the body of an answer without its Content-Encoding.
func decoded(a soakAnswer) ([]byte, error) {
	var r io.Reader
	switch ce := a.header.Get("Content-Encoding"); ce {
	case "":
		return a.body, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(a.body))
		if err != nil {
			return nil, err
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(a.body))
	default:
		return nil, fmt.Errorf("unexpected Content-Encoding %q", ce)
	}
	return io.ReadAll(io.LimitReader(r, maxSoakBody))
}

// checkPage checks a 200 HTML answer: it decodes by its Content-Encoding,
// is a whole page, and no SSI directive reached the reader.
func (s *soakSite) checkPage(path string, a soakAnswer) {
	body, err := decoded(a)
	text := string(body)
	switch {
	case err != nil:
		s.stats.badBody.Add(1)
		s.stats.example("edge %s %s: %s body: %v", a.edge.name, path, a.header.Get("Content-Encoding"), err)
	case !strings.HasSuffix(strings.TrimSpace(text), "</html>"):
		s.stats.badBody.Add(1)
		s.stats.example("edge %s %s: page not complete (%d bytes)", a.edge.name, path, len(text))
	case hasDirective(text):
		s.stats.badBody.Add(1)
		s.stats.example("edge %s %s: an SSI directive reached the reader", a.edge.name, path)
	case strings.Contains(text, "<!-- ssi:"):
		s.stats.ssiComments.Add(1)
	}
}

// Readers come in two pools of fixed size, so that image requests that
// wait for the CMS during a fault do not hold up the page readers (they
// are different clients in production too): image readers ask for image
// variants (5 % of all reads), page readers for pages by Zipf and for
// misses (1 % of all reads).
const (
	imageShare   = 0.05
	imageReaders = 16
)

// reader is one page reader: paced requests (its share of the page rate)
// until ctx ends.
func (s *soakSite) reader(ctx context.Context, w int, misses *atomic.Int64) {
	rng := rand.New(rand.NewPCG(uint64(w)+1, 0x50a6))
	zipf := rand.NewZipf(rng, 1.07, 2, uint64(len(s.pages)-1))
	rate := float64(s.cfg.RPS) * (1 - imageShare) / float64(s.cfg.Workers)
	paced(ctx, rng, rate, func() {
		if rng.IntN(95) == 0 { // 1 % of all reads
			p := s.stories[rng.IntN(len(s.stories))]
			path := fmt.Sprintf("%s?page=%d", p.path, misses.Add(1))
			if a, ok := s.get(ctx, classMiss, path, soakAcceptEncoding(rng)); ok {
				s.expectPage(path, a)
			}
			return
		}
		p := s.pages[zipf.Uint64()]
		if a, ok := s.get(ctx, classPage, p.path, soakAcceptEncoding(rng)); ok {
			s.expectPage(p.path, a)
		}
	})
}

// imageReader is one image reader.
func (s *soakSite) imageReader(ctx context.Context, w int) {
	rng := rand.New(rand.NewPCG(uint64(w)+1, 0x1a6e))
	paced(ctx, rng, float64(s.cfg.RPS)*imageShare/imageReaders, func() { s.readImage(ctx, rng) })
}

// paced calls do rate times a second until ctx ends; a worker that falls
// more than a second behind starts afresh instead of bursting.
func paced(ctx context.Context, rng *rand.Rand, rate float64, do func()) {
	every := time.Duration(float64(time.Second) / rate)
	next := time.Now().Add(time.Duration(rng.Int64N(int64(every))))
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		next = next.Add(every)
		if late := time.Since(next); late > time.Second {
			next = time.Now()
		}
		do()
	}
}

func (s *soakSite) expectPage(path string, a soakAnswer) {
	switch {
	case a.status == http.StatusOK:
		s.checkPage(path, a)
	case a.status < 500:
		s.stats.badStatus.Add(1)
		s.stats.example("edge %s %s: status %d", a.edge.name, path, a.status)
	}
}

// readImage asks for a variant of a demo image with the stamps of the
// image's current version.
func (s *soakSite) readImage(ctx context.Context, rng *rand.Rand) {
	n := len(origin.Sections) * origin.StoriesPerSection
	doc, ok := s.content.Latest(origin.ImageID(rng.IntN(n)))
	if !ok {
		return
	}
	v := soakVariants[rng.IntN(len(soakVariants))]
	path := soakVariantURL(s.content, doc, v.name, v.format, v.width)
	a, ok := s.get(ctx, classImage, path, "")
	if !ok {
		return
	}
	switch {
	case a.status == http.StatusOK:
		if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "image/") {
			s.stats.badBody.Add(1)
			s.stats.example("edge %s %s: Content-Type %q", a.edge.name, path, ct)
		}
	case a.status < 500:
		s.stats.badStatus.Add(1)
		s.stats.example("edge %s %s: status %d", a.edge.name, path, a.status)
	}
}
