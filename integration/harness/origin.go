package harness

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/delivery-edge/edge/integration/origin"
)

// Origin is the sample origin running inside the test process, so tests
// can change content and read the render counters directly.
type Origin struct {
	Content *origin.Content
	Render  *origin.Render
	Staging *origin.Staging
	// RenderURL is the render backend's base URL ("http://127.0.0.1:port").
	RenderURL string
	// RenderAddr is its host:port, for reverse_proxy.
	RenderAddr string
	// StagingURL is the base URL of the staging API (and /admin/).
	StagingURL string
}

// OriginOptions configure the sample origin of a test.
type OriginOptions struct {
	Render  origin.RenderConfig
	Staging origin.StagingConfig
	// Content, when set, is used instead of freshly seeded demo content
	// (e.g. to keep content across an origin restart).
	Content *origin.Content
}

// StartOrigin seeds the demo content and serves the render backend and
// the staging API on loopback ports until the test ends.
func StartOrigin(t testing.TB, cfg origin.RenderConfig) *Origin {
	t.Helper()
	return StartOriginWith(t, OriginOptions{Render: cfg})
}

// StartOriginWith is StartOrigin with staging options.
func StartOriginWith(t testing.TB, o OriginOptions) *Origin {
	t.Helper()
	c := o.Content
	if c == nil {
		c = origin.NewContent()
		origin.SeedDemo(c)
	}
	rd := origin.NewRender(c, o.Render)
	srv := httptest.NewServer(rd)
	t.Cleanup(srv.Close)
	st := origin.NewStaging(c, o.Staging)
	stSrv := httptest.NewServer(st)
	t.Cleanup(func() {
		st.Close()
		stSrv.Close()
	})
	return &Origin{Content: c, Render: rd, Staging: st, RenderURL: srv.URL, RenderAddr: srv.Listener.Addr().String(),
		StagingURL: stSrv.URL}
}

// Renders is how often path was rendered.
func (o *Origin) Renders(path string) int64 { return o.Render.Counts()[path] }

// Faults replaces the render backend's fault rules.
func (o *Origin) Faults(f ...origin.Fault) { o.Render.SetFaults(f) }

// StagingBlock is the `staging` option of the delivery app for this origin.
func (o *Origin) StagingBlock(pollInterval string, longPoll bool) string {
	lp := "long_poll off"
	if longPoll {
		lp = "long_poll 20s"
	}
	return "staging " + o.StagingURL + " {\ntoken " + origin.DemoToken + "\npoll_interval " + pollInterval + "\n" + lp + "\n}"
}

var _ http.Handler = (*origin.Render)(nil)
