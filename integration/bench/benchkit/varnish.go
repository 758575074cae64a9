package benchkit

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// Varnish is a running varnishd and its working folder.
type Varnish struct {
	*Server
	Workdir string
}

// StartVarnish runs Debian's varnishd (malloc storage) on a loopback port
// in front of backend (host:port). It is stopped with SIGTERM (the manager
// stops its child) at cleanup.
func StartVarnish(tb testing.TB, backend string, port int) *Varnish {
	tb.Helper()
	if _, err := exec.LookPath("varnishd"); err != nil {
		tb.Skip("varnishd not found (Debian: apt-get install varnish)")
	}
	work := tb.TempDir()
	if err := os.Chmod(work, 0o755); err != nil {
		tb.Fatal(err)
	}
	s := StartServer(tb, port, syscall.SIGTERM, "varnishd", "-F", "-n", work, "-a", fmt.Sprintf("127.0.0.1:%d", port),
		"-b", backend, "-s", "malloc,512m", "-p", "thread_pool_min=50")
	return &Varnish{Server: s, Workdir: work}
}

// Warm fetches every path once through Varnish.
func (v *Varnish) Warm(tb testing.TB, paths []string) {
	tb.Helper()
	for _, p := range paths {
		resp, err := http.Get(v.URL + p)
		if err != nil {
			tb.Fatalf("warming Varnish: %v", err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			tb.Fatalf("warming Varnish: GET %s: %d %v", p, resp.StatusCode, err)
		}
	}
}
