package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// TestCLIMeasure times a warm of 500 URLs and a rebuild of a docroot of
// 100,000 files through `caddy delivery` under a pseudo terminal and logs
// the progress bars' final lines. It measures, it asserts nothing about
// speed; run it on purpose:
//
//	CLI_MEASURE=1 DELIVERY_CADDY=/tmp/caddy-w3-cli go test ./integration/e2e -run TestCLIMeasure -v
func TestCLIMeasure(t *testing.T) {
	if os.Getenv("CLI_MEASURE") == "" {
		t.Skip("set CLI_MEASURE=1 to measure")
	}
	o := harness.StartOrigin(t, origin.RenderConfig{})
	adminAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Admin: adminAddr})
	urls := addStories(o, 500)
	urlFile := filepath.Join(t.TempDir(), "urls")
	if err := os.WriteFile(urlFile, []byte(strings.Join(urls, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	underTerminal := func(args string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		out, err := exec.CommandContext(ctx, "script", "-qec",
			fmt.Sprintf("%s delivery %s --address %s", harness.Binary(t), args, adminAddr), "/dev/null").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%q", args, err, out)
		}
		final := regexp.MustCompile(`\w+ done: [^\r\n]*`).Find(out)
		t.Logf("caddy delivery %s: %s wall; final line: %s", args, time.Since(start).Round(time.Millisecond), final)
		return string(final)
	}
	if f := underTerminal("warm --from " + urlFile); !strings.Contains(f, "500/500") {
		t.Errorf("warm: %q", f)
	}

	// 100,000 files in 1,000 folders, as the docroot of a big site.
	for d := range 1000 {
		dir := e.File(fmt.Sprintf("m/%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("p%d.html", i)), []byte("<p>page</p>"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if f := underTerminal("rebuild --yes"); !strings.Contains(f, "rebuild done") {
		t.Errorf("rebuild: %q", f)
	}
}
