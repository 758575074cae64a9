// Package harness runs the real delivery edge for end-to-end tests and
// benchmarks: the Caddy binary built with this project's modules as a
// child process, on loopback ports, with its own data folder.
package harness

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/procgroup"
)

// EnvCaddy names the binary under test. Without it the binary is built
// from ./cmd/caddy with `go build` (the same modules xcaddy builds in).
const EnvCaddy = "DELIVERY_CADDY"

var (
	buildOnce sync.Once
	built     string
	buildErr  error
)

// Binary returns the path of the Caddy binary under test.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvCaddy); p != "" {
		if !filepath.IsAbs(p) { // relative to the project, not the test's folder
			p = filepath.Join(RepoRoot(), p)
		}
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "delivery-caddy-")
		if err != nil {
			buildErr = err
			return
		}
		built = filepath.Join(dir, "caddy")
		cmd := exec.Command("go", "build", "-o", built, "./cmd/caddy")
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// RepoRoot is the folder of the project's go.mod.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Caddy is one running edge.
type Caddy struct {
	t      testing.TB
	Dir    string // working folder: Caddyfile, logs
	Config string // path of the Caddyfile
	Port   int    // the port WaitFor checks
	mu     sync.Mutex
	proc   *procgroup.Process
	log    *os.File
}

// StartCaddy writes caddyfile into dir and runs the edge with it; port is
// the HTTP port to wait for. At test cleanup the edge is stopped (SIGTERM,
// SIGKILL to its process group after 10 s); a process of its group that
// outlived it fails the test.
func StartCaddy(t testing.TB, dir, caddyfile string, port int) *Caddy {
	t.Helper()
	c := &Caddy{t: t, Dir: dir, Config: filepath.Join(dir, "Caddyfile"), Port: port}
	if err := os.WriteFile(c.Config, []byte(caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Start()
	t.Cleanup(func() {
		if err := c.stop(syscall.SIGTERM, cleanupGrace); err != nil {
			t.Errorf("stopping the edge: %v", err)
		}
		if t.Failed() {
			c.DumpLog()
		}
	})
	return c
}

// cleanupGrace bounds the edge's clean shutdown at test cleanup; a
// request a test left hanging must not hold the suite.
const cleanupGrace = 10 * time.Second

// Start (re)starts the process and waits until it accepts connections
// and has started every app of its config: Caddy starts its apps in no
// fixed order, so the HTTP port may accept before the delivery app (and
// with it the admin API's routes) runs.
func (c *Caddy) Start() {
	c.t.Helper()
	c.mu.Lock()
	logf, err := os.OpenFile(filepath.Join(c.Dir, "caddy.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.mu.Unlock()
		c.t.Fatal(err)
	}
	logStart, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		logf.Close()
		c.mu.Unlock()
		c.t.Fatal(err)
	}
	cmd := exec.Command(Binary(c.t), "run", "--config", c.Config, "--adapter", "caddyfile")
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HOME="+c.Dir, "XDG_DATA_HOME="+filepath.Join(c.Dir, "xdg-data"),
		"XDG_CONFIG_HOME="+filepath.Join(c.Dir, "xdg-config"))
	proc, err := procgroup.Start(cmd, syscall.SIGTERM)
	if err != nil {
		logf.Close()
		c.mu.Unlock()
		c.t.Fatalf("start caddy: %v", err)
	}
	c.proc, c.log = proc, logf
	c.mu.Unlock()
	c.WaitFor(c.Port)
	c.waitServing(proc, logStart)
}

// servingLine is what `caddy run` logs once every app of the initial
// config has started.
const servingLine = `"msg":"serving initial configuration"`

// waitServing waits until the log, from offset on, says the process
// serves its initial configuration.
func (c *Caddy) waitServing(proc *procgroup.Process, offset int64) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c.logHas(offset, servingLine) {
			return
		}
		select {
		case <-proc.Done():
			c.DumpLog()
			c.t.Fatalf("caddy exited during start: %v", proc.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	c.DumpLog()
	c.t.Fatalf("caddy did not log %s within 30s", servingLine)
}

// logHas reports whether the log, from offset on, holds s.
func (c *Caddy) logHas(offset int64, s string) bool {
	f, err := os.Open(filepath.Join(c.Dir, "caddy.log"))
	if err != nil {
		return false
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, offset, 1<<40))
	return err == nil && bytes.Contains(b, []byte(s))
}

// WaitFor waits until a loopback port accepts connections.
func (c *Caddy) WaitFor(port int) {
	c.t.Helper()
	c.mu.Lock()
	proc := c.proc
	c.mu.Unlock()
	if proc == nil {
		c.t.Fatalf("caddy is not running; nothing will listen on %d", port)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-proc.Done():
			c.DumpLog()
			c.t.Fatalf("caddy exited during start: %v", proc.Err())
		default:
		}
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.DumpLog()
	c.t.Fatalf("caddy did not listen on %d", port)
}

// Kill stops the process with SIGKILL (a crash) and waits for it; its
// process group goes with it. A process left behind fails the test.
func (c *Caddy) Kill() {
	c.t.Helper()
	if err := c.stop(syscall.SIGKILL, 0); err != nil {
		c.t.Errorf("killing the edge: %v", err)
	}
}

// Stop stops the process with SIGTERM (a clean shutdown) and waits; after
// 20 s its process group is killed. A process of the group that outlived
// the edge fails the test.
func (c *Caddy) Stop() {
	c.t.Helper()
	if err := c.stop(syscall.SIGTERM, 20*time.Second); err != nil {
		c.t.Errorf("stopping the edge: %v", err)
	}
}

// stop ends the running process (SIGKILL: at once; otherwise sig and up
// to grace for a clean exit) and reports any process of its group that
// outlived it. Stopping a stopped edge does nothing.
func (c *Caddy) stop(sig syscall.Signal, grace time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return nil
	}
	var err error
	if sig == syscall.SIGKILL {
		err = c.proc.Kill()
	} else {
		err = c.proc.Stop(grace)
	}
	c.log.Close()
	c.proc = nil
	return err
}

// Log returns what the process wrote so far.
func (c *Caddy) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "caddy.log"))
	return string(b)
}

// DumpLog writes the tail of the process log to the test log.
func (c *Caddy) DumpLog() {
	lines := strings.Split(strings.TrimSpace(c.Log()), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	c.t.Logf("caddy log (tail):\n%s", strings.Join(lines, "\n"))
}

// Pid is the process id of the running edge (0 when stopped).
func (c *Caddy) Pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return 0
	}
	return c.proc.Pid()
}

// URL is the base URL of the edge's HTTP port.
func (c *Caddy) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", c.Port) }

// Get fetches a path from the edge and returns status, headers and body.
func Get(t testing.TB, client *http.Client, url string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, resp.Header, buf.String()
}
