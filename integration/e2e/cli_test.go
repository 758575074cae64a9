package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// cliResult is one run of the built binary's `delivery` command.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs `caddy <args…>` (bounded) and returns its exit status and
// output.
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.Binary(t), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("caddy %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("caddy %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// want checks the exit status and that stdout holds each of parts.
func (r cliResult) want(t *testing.T, code int, parts ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	for _, p := range parts {
		if !strings.Contains(r.stdout, p) {
			t.Errorf("stdout lacks %q:\n%s", p, r.stdout)
		}
	}
}

// jsonOf decodes stdout.
func (r cliResult) jsonOf(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
}

// addStories publishes n more stories in /politik (cli0.html …).
func addStories(o *harness.Origin, n int) []string {
	urls := make([]string, n)
	for i := range n {
		id := fmt.Sprintf("cli%d", i)
		o.Content.Put(origin.Document{ID: id, UUID: origin.DemoUUID(id), NodeType: "story", State: origin.StatePublished,
			Properties: map[string]any{"section": "/politik", "title": "CLI " + id}}, nil)
		urls[i] = "/politik/" + id + ".html"
	}
	return urls
}

func TestCLI(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	adminAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Admin: adminAddr})
	addr := "--address=" + adminAddr
	dc := func(args ...string) cliResult {
		t.Helper()
		return runCLI(t, append(append([]string{"delivery"}, args...), addr)...)
	}

	// Usage errors: 2; an edge that does not answer: 1.
	dc().want(t, 2)
	dc("nosuch").want(t, 2)
	dc("files").want(t, 2)
	dc("stats", "--nosuch").want(t, 2)
	dc("rebuild").want(t, 2)
	dc("purge").want(t, 2)
	dc("dependents").want(t, 2)
	runCLI(t, "delivery", "stats", fmt.Sprintf("--address=127.0.0.1:%d", harness.FreePort(t))).want(t, 1)
	// The admin address is found in the config, as caddy reload finds it.
	cfg := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(cfg, []byte("{\n\tadmin "+adminAddr+"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runCLI(t, "delivery", "stats", "--config", cfg).want(t, 0, "cache.hits")

	if st, _, _ := harness.Get(t, nil, e.URL()+storyPath); st != 200 {
		t.Fatalf("story: %d", st)
	}
	waitFor(t, 10*time.Second, "the story registered", func() bool {
		var s struct {
			Registry struct{ Files int } `json:"registry"`
		}
		dc("stats", "--json").jsonOf(t, &s)
		return s.Registry.Files == 1
	})

	dc("stats").want(t, 0, "cache.renders.stored", "queues.removal.length", "registry.files")
	dc("queues").want(t, 0, "QUEUE", "removal: empty", "pregeneration: empty")
	var q struct {
		Removal struct{ Queue string } `json:"removal"`
	}
	dc("queues", "--json").jsonOf(t, &q)
	if q.Removal.Queue != "removal" {
		t.Errorf("queues --json: %+v", q)
	}
	dc("queues", "--queue", "nosuch").want(t, 1)

	files := dc("files", storyPath)
	files.want(t, 0, "registered", "politik/story100.html", "dependencies:", "resources:")
	var f struct {
		Registered bool `json:"registered"`
		Resources  []struct {
			Name string `json:"name"`
		} `json:"resources"`
	}
	dc("files", storyPath, "--json").jsonOf(t, &f)
	if !f.Registered || len(f.Resources) != 1 {
		t.Fatalf("files --json: %+v", f)
	}
	if r := dc("files", storyPath, "--host", "nosuch.example"); r.code != 1 || !strings.Contains(r.stderr, "unknown host") {
		t.Errorf("unknown host: exit %d, stderr %s", r.code, r.stderr)
	}

	dc("dependents", "--resource", f.Resources[0].Name).want(t, 0, "/politik/story100.html", "1 files")
	var deps struct {
		Files []struct {
			File string `json:"file"`
		} `json:"files"`
	}
	dc("dependents", "--document", "story100", "--json").jsonOf(t, &deps)
	if len(deps.Files) != 1 || deps.Files[0].File != "politik/story100.html" {
		t.Errorf("dependents --json: %+v", deps)
	}

	dc("purge", storyPath, "--mode", "remove").want(t, 0, "purged: 1 files, 1 queued")
	dc("purge", storyPath, "--mode", "explode").want(t, 2)
	waitFor(t, 10*time.Second, "purged file renamed to .old", func() bool {
		return !e.Exists("politik/story100.html") && e.Exists("politik/story100.html.old")
	})
	var pr struct{ Files, Queued int }
	dc("purge", "--prefix", "/sport/", "--json").jsonOf(t, &pr)

	// Warm: off a terminal, no bar; the final line and the result.
	dc("warm", storyPath, "/politik/story101.html").want(t, 0, "warm done: 2/2 urls", "warm.rendered")
	if !e.Exists("politik/story100.html") || !e.Exists("politik/story101.html") {
		t.Error("warm did not render the pages")
	}
	var j struct {
		State  string `json:"state"`
		Result struct {
			Warm struct{ Cached int } `json:"warm"`
		} `json:"result"`
	}
	dc("warm", storyPath, "--json").jsonOf(t, &j)
	if j.State != "done" || j.Result.Warm.Cached != 1 {
		t.Errorf("warm --json: %+v", j)
	}
	urlFile := filepath.Join(t.TempDir(), "urls")
	os.WriteFile(urlFile, []byte("# pages\n/politik/story102.html\n"), 0o644)
	dc("warm", "--from", urlFile).want(t, 0, "warm done: 1/1 urls")

	dc("resource", f.Resources[0].Name, "v-next").want(t, 0, "files invalidated")
	var ann struct{ Invalidated int }
	dc("resource", f.Resources[0].Name, "v-next2", "--json").jsonOf(t, &ann)
	dc("flush", "some-key", "--group", "g1").want(t, 0, `flushed "some-key" in group "g1"`)
	dc("flush", "some-key").want(t, 2)

	// Check: a stray file is a finding (exit 1), --repair renames it.
	if err := os.WriteFile(e.File("stray.html"), []byte("stray"), 0o644); err != nil {
		t.Fatal(err)
	}
	dc("check").want(t, 1, "check done", "unregistered  stray.html")
	var cr struct {
		Result struct{ Problems int } `json:"result"`
	}
	dc("check", "--json").jsonOf(t, &cr)
	if cr.Result.Problems != 1 {
		t.Errorf("check --json: %+v", cr)
	}
	dc("check", "--repair").want(t, 1, "repaired:", "1 unregistered files renamed")
	if e.Exists("stray.html") {
		t.Error("the repair left stray.html")
	}
	dc("check").want(t, 0, "0 problems")

	// A warm under a terminal draws the bar and ends with the final line
	// (the renders slowed down so that the bar is drawn with its total).
	urls := addStories(o, 200)
	o.Faults(origin.Fault{Prefix: "/politik/cli", Delay: 30 * time.Millisecond})
	os.WriteFile(urlFile, []byte(strings.Join(urls, "\n")), 0o644)
	bin := harness.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pty := exec.CommandContext(ctx, "script", "-qec", fmt.Sprintf("%s delivery warm --from %s %s", bin, urlFile, addr), "/dev/null")
	out, err := pty.CombinedOutput()
	t.Logf("warm under a terminal: %v\n%q", err, out)
	if err != nil || !bytes.Contains(out, []byte("warm done: 200/200 urls")) || !bytes.Contains(out, []byte("urls/s")) ||
		!bytes.Contains(out, []byte("/200 ")) {
		t.Errorf("warm under a terminal: %v\n%q", err, out)
	}

	// Ctrl-C cancels the job on the edge and exits 1.
	o.Faults(origin.Fault{Prefix: "/politik/cli", Delay: 200 * time.Millisecond})
	dc("rebuild", "--yes").want(t, 0, "rebuild done")
	sig := exec.CommandContext(ctx, bin, "delivery", "warm", "--from", urlFile, "--concurrency", "1", addr)
	var sigOut bytes.Buffer
	sig.Stdout, sig.Stderr = &sigOut, &sigOut
	if err := sig.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	sig.Process.Signal(syscall.SIGINT)
	err = sig.Wait()
	t.Logf("interrupted warm: %v\n%s", err, sigOut.String())
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !regexp.MustCompile(`warm cancelled: \d+/200 urls`).MatchString(sigOut.String()) {
		t.Errorf("interrupted warm: %v\n%s", err, sigOut.String())
	}
	o.Faults()

	// Offline: the edge stopped, the data folder is checked directly; the
	// old name still works and says it is deprecated.
	e.Stop()
	runCLI(t, "delivery", "check", "--offline", "--data_dir", e.DataDir).want(t, 0, "0 problems")
	os.WriteFile(e.File("stray2.html"), []byte("stray"), 0o644)
	r := runCLI(t, "delivery-check", "--data_dir", e.DataDir)
	r.want(t, 1, "stray2.html")
	if !strings.Contains(r.stderr, "deprecated") {
		t.Errorf("delivery-check: no deprecation note: %s", r.stderr)
	}
	var off struct {
		Check struct{ Problems int } `json:"check"`
	}
	runCLI(t, "delivery", "check", "--offline", "--json", "--data_dir", e.DataDir).jsonOf(t, &off)
	if off.Check.Problems != 1 {
		t.Errorf("check --offline --json: %+v", off)
	}
	runCLI(t, "delivery", "check", "--offline", "--repair", "--data_dir", e.DataDir).want(t, 1, "repaired:")
	runCLI(t, "delivery", "check", "--offline", "--data_dir", e.DataDir).want(t, 0, "0 problems")
}
