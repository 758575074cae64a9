package benchkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// StartNginx serves docroot on a loopback port with Debian's nginx
// (sendfile on, one worker per core, access log off) and returns the base
// URL. extra goes into the server block.
func StartNginx(tb testing.TB, docroot string, port int, extra string) string {
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
	StartProcess(tb, port, "nginx", "-p", dir, "-c", path)
	return fmt.Sprintf("http://127.0.0.1:%d", port)
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

// StartProcess runs a server process until the benchmark ends and waits
// until it listens on port.
func StartProcess(tb testing.TB, port int, name string, args ...string) {
	tb.Helper()
	cmd := exec.Command(name, args...)
	logf, err := os.CreateTemp(tb.TempDir(), filepath.Base(name)+"-*.log")
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	WaitPort(tb, port, func() string { b, _ := os.ReadFile(logf.Name()); return string(b) })
}

// WaitPort waits until a loopback port accepts connections.
func WaitPort(tb testing.TB, port int, log func() string) {
	tb.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
	}
	tb.Fatalf("nothing listens on %d:\n%s", port, log())
}
