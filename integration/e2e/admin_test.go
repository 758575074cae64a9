package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// adminClient calls the edge's admin API.
type adminClient struct {
	t    *testing.T
	base string
}

// call sends a request (body: nil or a value for JSON) and decodes the
// JSON answer into out (may be nil); it returns the status.
func (a adminClient) call(method, path string, body, out any) int {
	a.t.Helper()
	var r io.Reader
	if s, ok := body.(string); ok {
		r = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 10<<20))
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			a.t.Fatalf("%s %s: %d, not JSON: %v: %q", method, path, resp.StatusCode, err, raw)
		}
	}
	return resp.StatusCode
}

type adminJob struct {
	ID     string          `json:"id"`
	Kind   string          `json:"kind"`
	State  string          `json:"state"`
	Done   int64           `json:"done"`
	Total  int64           `json:"total"`
	Error  string          `json:"error"`
	Errors []string        `json:"errors"`
	Result json.RawMessage `json:"result"`
}

// job starts a job and waits (bounded) until it has finished.
func (a adminClient) job(path string, body any) adminJob {
	a.t.Helper()
	var j adminJob
	if st := a.call(http.MethodPost, path, body, &j); st != http.StatusAccepted || j.ID == "" {
		a.t.Fatalf("POST %s: %d %+v, want 202 and a job", path, st, j)
	}
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	for j.State == "running" || j.State == "" {
		if time.Now().After(deadline) {
			a.t.Fatalf("job %s (%s) still running: %+v", j.ID, j.Kind, j)
		}
		time.Sleep(50 * time.Millisecond)
		if st := a.call(http.MethodGet, "/delivery/jobs/"+j.ID, nil, &j); st != http.StatusOK {
			a.t.Fatalf("GET job: %d", st)
		}
	}
	a.t.Logf("job %s %s: %s in %s, %d/%d, result %s", j.Kind, j.ID, j.State, time.Since(start).Round(time.Millisecond),
		j.Done, j.Total, j.Result)
	return j
}

func TestAdminAPI(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	adminAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Admin: adminAddr})
	a := adminClient{t: t, base: "http://" + adminAddr}

	// Errors are Caddy's admin errors: {"error": …} with a status.
	var apiErr struct {
		Error string `json:"error"`
	}
	if st := a.call(http.MethodGet, "/delivery/nothing", nil, &apiErr); st != http.StatusNotFound || apiErr.Error == "" {
		t.Errorf("unknown route: %d %q", st, apiErr.Error)
	}
	if st := a.call(http.MethodPost, "/delivery/stats", nil, &apiErr); st != http.StatusMethodNotAllowed {
		t.Errorf("POST stats: %d", st)
	}
	if st := a.call(http.MethodPost, "/delivery/purge", "{not json", &apiErr); st != http.StatusBadRequest {
		t.Errorf("bad JSON: %d", st)
	}
	if st := a.call(http.MethodPost, "/delivery/purge", map[string]string{"url": "/a", "mode": "explode"}, &apiErr); st != http.StatusBadRequest {
		t.Errorf("bad mode: %d", st)
	}

	if st, _, _ := harness.Get(t, nil, e.URL()+storyPath); st != 200 {
		t.Fatalf("story: %d", st)
	}

	var stats struct {
		Cache struct {
			Hits    int64            `json:"hits"`
			Renders map[string]int64 `json:"renders"`
		} `json:"cache"`
		Registry struct {
			Files     int64 `json:"files"`
			FileBytes int64 `json:"file_bytes"`
		} `json:"registry"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st := a.call(http.MethodGet, "/delivery/stats", nil, &stats); st != 200 {
			t.Fatalf("stats: %d", st)
		}
		if stats.Registry.Files >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if stats.Cache.Renders["stored"] != 1 || stats.Registry.Files != 1 || stats.Registry.FileBytes == 0 {
		t.Errorf("stats: %+v", stats)
	}

	var file struct {
		Registered bool   `json:"registered"`
		File       string `json:"file"`
		Resources  []struct {
			Name, Hash string
		} `json:"resources"`
		Disk struct {
			Exists bool `json:"exists"`
		} `json:"disk"`
	}
	if st := a.call(http.MethodGet, "/delivery/files?url="+storyPath, nil, &file); st != 200 || !file.Registered ||
		!file.Disk.Exists || file.File != "politik/story100.html" || len(file.Resources) != 1 {
		t.Fatalf("files: %d %+v", st, file)
	}

	var deps struct {
		Files []struct {
			File string `json:"file"`
		} `json:"files"`
	}
	if st := a.call(http.MethodGet, "/delivery/dependents?resource="+file.Resources[0].Name, nil, &deps); st != 200 ||
		len(deps.Files) != 1 || deps.Files[0].File != "politik/story100.html" {
		t.Errorf("dependents: %d %+v", st, deps)
	}
	if st := a.call(http.MethodGet, "/delivery/dependents", nil, &apiErr); st != http.StatusBadRequest {
		t.Errorf("dependents without a name: %d", st)
	}

	var q struct {
		Queue string            `json:"queue"`
		Jobs  []json.RawMessage `json:"jobs"`
	}
	if st := a.call(http.MethodGet, "/delivery/queues?queue=removal&limit=10", nil, &q); st != 200 || q.Queue != "removal" {
		t.Errorf("queues: %d %+v", st, q)
	}
	if st := a.call(http.MethodGet, "/delivery/queues?queue=other", nil, &apiErr); st != http.StatusBadRequest {
		t.Errorf("unknown queue: %d", st)
	}

	// Purge: through the removal queue, the file becomes ".old".
	var pr struct{ Files, Queued int }
	if st := a.call(http.MethodPost, "/delivery/purge", map[string]string{"url": storyPath, "mode": "remove"}, &pr); st != 200 || pr.Queued != 1 {
		t.Fatalf("purge: %d %+v", st, pr)
	}
	waitFor(t, 10*time.Second, "purged file renamed to .old", func() bool {
		return !e.Exists("politik/story100.html") && e.Exists("politik/story100.html.old")
	})

	// Warm renders what is not cached.
	j := a.job("/delivery/warm", map[string]any{"urls": []string{storyPath, "/politik/story101.html"}})
	if j.State != "done" || !e.Exists("politik/story100.html") || !e.Exists("politik/story101.html") {
		t.Fatalf("warm: %+v", j)
	}

	// Announcing a new template hash invalidates both pages.
	var ann struct{ Invalidated int }
	if st := a.call(http.MethodPost, "/delivery/resources", map[string]string{"name": file.Resources[0].Name, "hash": "v-next"}, &ann); st != 200 || ann.Invalidated != 2 {
		t.Errorf("resources: %d %+v", st, ann)
	}

	var fl struct {
		Applied bool `json:"applied"`
	}
	if st := a.call(http.MethodPost, "/delivery/flush", map[string]string{"key": "some-key", "group": "g1"}, &fl); st != 200 || !fl.Applied {
		t.Errorf("flush: %d %+v", st, fl)
	}
	if st := a.call(http.MethodPost, "/delivery/flush", map[string]string{"key": "some-key"}, &apiErr); st != http.StatusBadRequest {
		t.Errorf("flush without group: %d", st)
	}

	// The check finds an unregistered file and the repair renames it.
	if err := os.WriteFile(e.File("stray.html"), []byte("stray"), 0o644); err != nil {
		t.Fatal(err)
	}
	j = a.job("/delivery/check", map[string]bool{"repair": true})
	if j.State != "done" || !strings.Contains(string(j.Result), "stray.html") || e.Exists("stray.html") {
		t.Errorf("check: %+v", j)
	}

	// Rebuild: the docroot is emptied while serving; the next read renders.
	if st, _, _ := harness.Get(t, nil, e.URL()+storyPath); st != 200 {
		t.Fatalf("story: %d", st)
	}
	before := o.Renders(storyPath)
	j = a.job("/delivery/rebuild", nil)
	if j.State != "done" || e.Exists("politik/story100.html") {
		t.Fatalf("rebuild: %+v", j)
	}
	if st, _, body := harness.Get(t, nil, e.URL()+storyPath); st != 200 || !strings.Contains(body, "Politik") {
		t.Fatalf("after rebuild: %d", st)
	}
	if o.Renders(storyPath) != before+1 {
		t.Errorf("renders after rebuild: %d, want %d", o.Renders(storyPath), before+1)
	}

	// A job can be listed and a finished one is kept; an unknown one is 404.
	if st := a.call(http.MethodGet, "/delivery/jobs/"+j.ID, nil, &j); st != 200 || j.State != "done" {
		t.Errorf("job: %d %+v", st, j)
	}
	if st := a.call(http.MethodDelete, "/delivery/jobs/nope", nil, &apiErr); st != http.StatusNotFound {
		t.Errorf("unknown job: %d", st)
	}
}
