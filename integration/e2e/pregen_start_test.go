package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// TestPregenerationRunsAfterRestartWithoutARequest: a pre-generation job
// is under way when the edge is killed, so it stays queued. After the
// restart the queued page is rendered again at once, although no request
// reaches the site: the app gives the docroot (known from the site's
// `root` directive) its renderer when it starts.
func TestPregenerationRunsAfterRestartWithoutARequest(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	port := harness.FreePort(t)
	e := harness.StartEdge(t, groupOptions(o, []int{port}, port, "pregenerate {\nworkers 1\n}"))
	const page, file = "/politik/story101.html", "politik/story101.html"
	cachePages(t, e, page)
	waitFor(t, 10*time.Second, "page cached", func() bool { return e.Exists(file) })

	// The next render of the page takes long enough to kill the edge
	// during it.
	o.Faults(origin.Fault{Prefix: page, Delay: 3 * time.Second, Count: 1})
	flushOn(t, e, "story101") // a document key: the page is pre-generated
	waitFor(t, 10*time.Second, "pre-generation under way", func() bool { return o.Renders(page) == 2 })
	e.Kill()
	o.Faults()

	restart := time.Now()
	e.Start() // waits for the port to accept connections; sends no request
	waitFor(t, 10*time.Second, "the queued page rendered again without a request", func() bool {
		return o.Renders(page) == 3
	})
	t.Logf("queued page rendered %v after the restart began", time.Since(restart).Round(time.Millisecond))
	// The backend counts a render when its request arrives: the page is
	// installed a moment after that.
	waitFor(t, 5*time.Second, "the page in place after pre-generation", func() bool { return e.Exists(file) })
	if log := e.Log(); !strings.Contains(log, `"msg":"pre-generation ready"`) {
		t.Error("the edge did not log that pre-generation is ready at start")
	} else {
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, "pre-generation ready") {
				t.Log(line)
			}
		}
	}
}
