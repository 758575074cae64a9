//go:build linux

package benchkit

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/delivery-edge/edge/integration/procgroup"
)

// started is what a sub-test leaves for the check after it: the leader of
// each server's group and every process seen below it while it ran.
type started struct {
	name string
	pgid int
	seen []procgroup.Proc
}

// TestServersLeaveNoProcess starts nginx (and Varnish in front of it, if
// installed) through the bench kit in a sub-test, as a benchmark does, and
// checks after the sub-test's cleanup that no process of their groups and
// none that ran below them is left: nginx's workers and varnishd's child
// used to survive their master and keep its ports.
func TestServersLeaveNoProcess(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx not found (Debian: apt-get install nginx-light)")
	}
	docroot := filepath.Join(t.TempDir(), "docroot")
	if err := os.MkdirAll(docroot, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(docroot, "a.html"), []byte("<p>a</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	var servers []started
	t.Run("run", func(t *testing.T) {
		nginx := StartNginx(t, docroot, freePort(t), "")
		get(t, nginx.URL+"/a.html")
		servers = append(servers, observed(t, "nginx", nginx, 1))
		if _, err := exec.LookPath("varnishd"); err != nil {
			t.Log("varnishd not found (Debian: apt-get install varnish); checking nginx only")
			return
		}
		varnish := StartVarnish(t, fmt.Sprintf("127.0.0.1:%d", nginx.Port), freePort(t))
		varnish.Warm(t, []string{"/a.html"})
		servers = append(servers, observed(t, "varnishd", varnish.Server, 1))
	})
	if len(servers) == 0 {
		t.Fatal("the sub-test started no server")
	}
	all, err := procgroup.Scan()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		for _, n := range all {
			if n.State == 'Z' {
				continue // a zombie holds no port; its reaper is not ours
			}
			if n.Pgid == s.pgid || n.Pid == s.pgid || seenIn(s.seen, n) || leadsTo(all, n, s.pgid) {
				t.Errorf("%s (group %d) left %v behind", s.name, s.pgid, n)
			}
		}
	}
}

// observed records a running server's group and the processes below it,
// and checks that it has at least min of them (so the test checks
// something: nginx's workers, varnishd's child).
func observed(t *testing.T, name string, s *Server, min int) started {
	t.Helper()
	seen := s.Observe()
	if len(seen) < min {
		t.Fatalf("%s: %d processes below the leader, want at least %d", name, len(seen), min)
	}
	for _, n := range seen {
		if n.Pgid != s.Pid() {
			t.Errorf("%s: %v is not in the server's own group %d", name, n, s.Pid())
		}
	}
	t.Logf("%s: leader %d, below it: %v", name, s.Pid(), seen)
	return started{name: name, pgid: s.Pid(), seen: seen}
}

func seenIn(seen []procgroup.Proc, n procgroup.Proc) bool {
	for _, o := range seen {
		if o.Pid == n.Pid && o.Start == n.Start {
			return true
		}
	}
	return false
}

// leadsTo reports whether n's parent chain reaches pid (bounded by the
// number of processes, so a cycle in a racy snapshot cannot loop).
func leadsTo(all []procgroup.Proc, n procgroup.Proc, pid int) bool {
	parent := map[int]int{}
	for _, p := range all {
		parent[p.Pid] = p.PPid
	}
	cur := n.PPid
	for range len(all) {
		if cur == pid {
			return true
		}
		next, ok := parent[cur]
		if !ok || cur <= 1 {
			return false
		}
		cur = next
	}
	return false
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func get(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
}
