package benchkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/procgroup"
)

// StartNginx serves docroot on a loopback port with Debian's nginx
// (sendfile on, one worker per core, access log off). extra goes into the
// server block. nginx is stopped with its graceful quit at cleanup.
func StartNginx(tb testing.TB, docroot string, port int, extra string) *Server {
	tb.Helper()
	traversable(tb, docroot)
	dir := tb.TempDir()
	conf := fmt.Sprintf(`daemon off;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
	include /etc/nginx/mime.types;
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen 127.0.0.1:%[2]d;
		root %[3]s;
		%[4]s
	}
}
`, dir, port, docroot, extra)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	return StartServer(tb, port, syscall.SIGQUIT, "nginx", "-p", dir, "-c", path)
}

// traversable lets nginx's workers (another user) reach a docroot made by
// the test: every folder above it gets o+x, and the docroot's content o+r.
func traversable(tb testing.TB, docroot string) {
	tb.Helper()
	for d := filepath.Clean(docroot); d != "/" && d != "."; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil {
			tb.Fatal(err)
		}
		if info.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, info.Mode().Perm()|0o005); err != nil {
				tb.Fatal(err)
			}
		}
	}
	err := filepath.WalkDir(docroot, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(p, info.Mode().Perm()|0o004|map[bool]os.FileMode{true: 0o001}[d.IsDir()])
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// Server is a server process a benchmark started (nginx, varnishd, the
// bare Go server). It runs in its own process group and is stopped
// gracefully when the benchmark ends; see StartServer.
type Server struct {
	// URL is http://127.0.0.1:<port>.
	URL  string
	Port int

	proc *procgroup.Process
	log  string
}

// Pid is the pid of the process started, which leads its process group.
func (s *Server) Pid() int { return s.proc.Pid() }

// Observe lists the processes below the server now (nginx's workers,
// varnishd's child) and remembers them for the check at stop.
func (s *Server) Observe() []procgroup.Proc { return s.proc.Observe() }

// Log returns what the server wrote to stdout and stderr.
func (s *Server) Log() string { b, _ := os.ReadFile(s.log); return string(b) }

// StartProcess runs a server that stops on SIGTERM until the benchmark
// ends and waits until it listens on port.
func StartProcess(tb testing.TB, port int, name string, args ...string) *Server {
	tb.Helper()
	return StartServer(tb, port, syscall.SIGTERM, name, args...)
}

// stopGrace bounds a graceful stop before the group is killed.
const stopGrace = 10 * time.Second

// StartServer runs name in its own process group and waits until it
// listens on port. At cleanup it sends stop to the leader (SIGQUIT is
// nginx's graceful quit, what `nginx -s quit` sends), waits up to 10 s,
// then kills the whole group; a process of the group or below the leader
// that is still there fails the benchmark (after being killed).
func StartServer(tb testing.TB, port int, stop syscall.Signal, name string, args ...string) *Server {
	tb.Helper()
	logf, err := os.CreateTemp(tb.TempDir(), filepath.Base(name)+"-*.log")
	if err != nil {
		tb.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	proc, err := procgroup.Start(cmd, stop)
	if err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Port: port, proc: proc, log: logf.Name()}
	tb.Cleanup(func() {
		if err := proc.Stop(stopGrace); err != nil {
			tb.Errorf("stopping %s: %v", name, err)
		}
	})
	waitListening(tb, port, proc.Done(), func() string { return name + ":\n" + s.Log() })
	s.Observe()
	return s
}

// WaitPort waits until a loopback port accepts connections.
func WaitPort(tb testing.TB, port int, log func() string) {
	tb.Helper()
	waitListening(tb, port, nil, log)
}

// waitListening waits (20 s at most) until port accepts connections, and
// gives up early when exited is closed.
func waitListening(tb testing.TB, port int, exited <-chan struct{}, log func() string) {
	tb.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			tb.Fatalf("exited before listening on %d:\n%s", port, log())
		default:
		}
	}
	tb.Fatalf("nothing listens on %d:\n%s", port, log())
}
