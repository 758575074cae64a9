// Package harness runs the real delivery edge for end-to-end tests and
// benchmarks: the Caddy binary built with this project's modules as a
// child process, on loopback ports, with its own data folder.
package harness

import (
	"bytes"
	"fmt"
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
	t       testing.TB
	Dir     string // working folder: Caddyfile, logs
	Config  string // path of the Caddyfile
	Port    int    // the port WaitFor checks
	mu      sync.Mutex
	cmd     *exec.Cmd
	log     *os.File
	waitErr chan error
}

// StartCaddy writes caddyfile into dir and runs the edge with it; port is
// the HTTP port to wait for. The process is killed at test cleanup.
func StartCaddy(t testing.TB, dir, caddyfile string, port int) *Caddy {
	t.Helper()
	c := &Caddy{t: t, Dir: dir, Config: filepath.Join(dir, "Caddyfile"), Port: port}
	if err := os.WriteFile(c.Config, []byte(caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Start()
	t.Cleanup(func() {
		c.Kill()
		if t.Failed() {
			c.DumpLog()
		}
	})
	return c
}

// Start (re)starts the process and waits until it accepts connections.
func (c *Caddy) Start() {
	c.t.Helper()
	c.mu.Lock()
	logf, err := os.OpenFile(filepath.Join(c.Dir, "caddy.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.mu.Unlock()
		c.t.Fatal(err)
	}
	cmd := exec.Command(Binary(c.t), "run", "--config", c.Config, "--adapter", "caddyfile")
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HOME="+c.Dir, "XDG_DATA_HOME="+filepath.Join(c.Dir, "xdg-data"),
		"XDG_CONFIG_HOME="+filepath.Join(c.Dir, "xdg-config"))
	if err := cmd.Start(); err != nil {
		c.mu.Unlock()
		c.t.Fatalf("start caddy: %v", err)
	}
	c.cmd, c.log = cmd, logf
	c.waitErr = make(chan error, 1)
	go func(ch chan error) { ch <- cmd.Wait() }(c.waitErr)
	c.mu.Unlock()
	c.WaitFor(c.Port)
}

// WaitFor waits until a loopback port accepts connections.
func (c *Caddy) WaitFor(port int) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-c.waitErr:
			c.DumpLog()
			c.t.Fatalf("caddy exited during start: %v", err)
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

// Kill stops the process with SIGKILL (a crash) and waits for it.
func (c *Caddy) Kill() { c.signal(syscall.SIGKILL) }

// Stop stops the process with SIGTERM (a clean shutdown) and waits.
func (c *Caddy) Stop() { c.signal(syscall.SIGTERM) }

func (c *Caddy) signal(sig syscall.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.waitErr:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.waitErr
	}
	c.log.Close()
	c.cmd = nil
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
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
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
