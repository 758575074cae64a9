package benchkit

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// StartVarnish runs Debian's varnishd (malloc storage) on a loopback port
// in front of backend (host:port) and returns its base URL.
func StartVarnish(tb testing.TB, backend string, port int) string {
	tb.Helper()
	if _, err := exec.LookPath("varnishd"); err != nil {
		tb.Skip("varnishd not found (Debian: apt-get install varnish)")
	}
	work := tb.TempDir()
	if err := os.Chmod(work, 0o755); err != nil {
		tb.Fatal(err)
	}
	StartProcess(tb, port, "varnishd", "-F", "-n", work, "-a", fmt.Sprintf("127.0.0.1:%d", port),
		"-b", backend, "-s", "malloc,512m", "-p", "thread_pool_min=50")
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}
