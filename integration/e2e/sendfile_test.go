package e2e

import (
	"bytes"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

var straceCalls = regexp.MustCompile(`(?m)^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?sendfile$`)

// TestHitsFromDiskUseSendfile counts the sendfile system calls of the real
// edge (hot set off, so every hit is served from disk) with strace: the
// kernel copies the file, through all of Caddy's response writers.
func TestHitsFromDiskUseSendfile(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace not installed")
	}
	o := harness.StartOrigin(t, origin.RenderConfig{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Global: "hot_cache off"})
	harness.Get(t, nil, e.URL()+storyPath) // the miss
	var out bytes.Buffer
	strace := exec.Command("strace", "-f", "-c", "-e", "trace=sendfile", "-p", strconv.Itoa(e.Pid()))
	strace.Stdout, strace.Stderr = &out, &out
	if err := strace.Start(); err != nil {
		t.Skipf("strace cannot attach: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	const hits = 20
	for range hits {
		harness.Get(t, nil, e.URL()+storyPath)
	}
	_ = strace.Process.Signal(syscall.SIGINT)
	_ = strace.Wait()
	m := straceCalls.FindStringSubmatch(out.String())
	if m == nil {
		if strings.Contains(out.String(), "Operation not permitted") {
			t.Skipf("strace not permitted here: %s", out.String())
		}
		t.Fatalf("no sendfile calls in:\n%s", out.String())
	}
	if n, _ := strconv.Atoi(m[1]); n < hits {
		t.Fatalf("%d sendfile calls for %d hits:\n%s", n, hits, out.String())
	}
}
