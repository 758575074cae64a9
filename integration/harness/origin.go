package harness

import (
	"encoding/json"
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
	// RenderURL is the render backend's base URL ("http://127.0.0.1:port").
	RenderURL string
	// RenderAddr is its host:port, for reverse_proxy.
	RenderAddr string
}

// StartOrigin seeds the demo content and serves the render backend on a
// loopback port until the test ends.
func StartOrigin(t testing.TB, cfg origin.RenderConfig) *Origin {
	t.Helper()
	c := origin.NewContent()
	origin.SeedDemo(c)
	rd := origin.NewRender(c, cfg)
	srv := httptest.NewServer(rd)
	t.Cleanup(srv.Close)
	return &Origin{Content: c, Render: rd, RenderURL: srv.URL, RenderAddr: srv.Listener.Addr().String()}
}

// Renders is how often path was rendered.
func (o *Origin) Renders(path string) int64 { return o.Render.Counts()[path] }

// Faults replaces the render backend's fault rules.
func (o *Origin) Faults(f ...origin.Fault) { o.Render.SetFaults(f) }

// MarshalJSON is for debug output in failing tests.
func (o *Origin) MarshalJSON() ([]byte, error) { return json.Marshal(o.Render.Counts()) }

var _ http.Handler = (*origin.Render)(nil)
