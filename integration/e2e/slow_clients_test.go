package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// Slow and idle clients: Caddy's server timeouts (the `servers` global
// option of Caddyfile.example) close the connections of clients that send
// their request, or read their answer, too slowly, so they cannot use up
// the edge's file descriptors and starve normal readers.

const (
	slowlorisConns = 5000
	neverReaders   = 20
	// The test edge's timeouts: those of Caddyfile.example, but write 10s
	// instead of 2m, so that the test sees the edge give up on a reader
	// within its time.
	slowReadHeader = 10 * time.Second
	slowWrite      = 10 * time.Second
	slowTimeouts   = "servers {\n\ttimeouts {\n\t\tread_header 10s\n\t\tread_body 10s\n\t\twrite 10s\n\t\tidle 1m\n\t}\n}\n"
	// closeSlack is how much later than its timeout a connection may be
	// closed (timer granularity, a busy machine, detection here).
	closeSlack = 4 * time.Second
	// bigFile is the size of the answer never read: far more than the
	// socket buffers of both sides hold.
	bigFile = 32 << 20
)

// raiseOpenFiles raises the soft limit of open files to the hard one (at
// most 1,048,576) and skips the test if that is below need. Setting it
// explicitly makes children (the edge) inherit it.
func raiseOpenFiles(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot read the open-file limit: %v", err)
	}
	if want := min(lim.Max, 1<<20); want >= need {
		lim.Cur = want
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Skipf("cannot raise the open-file limit to %d: %v", want, err)
		}
	}
	if lim.Cur < need {
		t.Skipf("open-file limit %d (hard %d), the test needs %d: raise the hard limit (ulimit -Hn)", lim.Cur, lim.Max, need)
	}
}

// slowEdge is a test edge with the slow-client timeouts and a 32 MiB file
// in its docroot.
func slowEdge(t *testing.T) (*harness.Edge, []string) {
	t.Helper()
	o := harness.StartOrigin(t, origin.RenderConfig{})
	dir, port := t.TempDir(), harness.FreePort(t)
	if err := os.MkdirAll(filepath.Join(dir, "docroot"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docroot", "big.bin"), bytes.Repeat([]byte("0123456789abcdef"), bigFile/16), 0o644); err != nil {
		t.Fatal(err)
	}
	cf := harness.EdgeOptions{Origin: o.RenderAddr}.Caddyfile(dir, port)
	cf = strings.Replace(cf, "persist_config off\n", "persist_config off\n"+slowTimeouts, 1)
	c := harness.StartCaddy(t, dir, cf, port)
	e := &harness.Edge{Caddy: c, DataDir: filepath.Join(dir, "data"), Docroot: filepath.Join(dir, "docroot")}
	var pages []string
	for n := range 10 {
		pages = append(pages, fmt.Sprintf("/%s/%s.html", []string{"politik", "sport"}[n/5], origin.StoryID(n)))
	}
	cachePages(t, e, pages...)
	return e, pages
}

// slowStats is what the slowloris clients saw.
type slowStats struct {
	open, opened, closed, dialErrs atomic.Int64
	mu                             sync.Mutex
	longest                        time.Duration // longest life of a connection the edge closed
	overdue                        int           // connections open longer than read_header + slack
}

// slowloris keeps one connection to addr busy sending a request header
// one byte every two seconds or so, and opens a new one when the edge
// closes it, until stop.
func slowloris(addr string, st *slowStats, stop <-chan struct{}) {
	time.Sleep(rand.N(2 * time.Second)) // do not all knock at once
	header := []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + strings.Repeat("z", 4096))
	buf := make([]byte, 512)
	for {
		select {
		case <-stop:
			return
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			st.dialErrs.Add(1)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		st.open.Add(1)
		st.opened.Add(1)
		start := time.Now()
		closedByEdge := false
	trickle:
		for i := 0; ; i++ {
			if time.Since(start) > slowReadHeader+closeSlack {
				st.mu.Lock()
				st.overdue++
				st.mu.Unlock()
				break
			}
			c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(header[i%len(header) : i%len(header)+1]); err != nil {
				closedByEdge = true
				break
			}
			c.SetReadDeadline(time.Now().Add(1500*time.Millisecond + rand.N(time.Second)))
			for {
				_, err := c.Read(buf)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // time for the next byte
				}
				if err != nil {
					closedByEdge = true
					break trickle
				}
				// An answer (a 408): the edge gives up; read to its close.
			}
			select {
			case <-stop:
				break trickle
			default:
			}
		}
		life := time.Since(start)
		c.Close()
		st.open.Add(-1)
		if closedByEdge {
			st.closed.Add(1)
			st.mu.Lock()
			st.longest = max(st.longest, life)
			st.mu.Unlock()
		}
	}
}

// neverReader asks for the big file, reads the answer's header and then
// nothing; after the write timeout and some slack it reads what is there
// and reports whether the body was cut short (the edge gave up on it).
func neverReader(addr string) (cut bool, got int64, err error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false, 0, err
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		return false, 0, err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4096), nil)
	if err != nil {
		return false, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != bigFile {
		return false, 0, fmt.Errorf("big file: %d, %d bytes", resp.StatusCode, resp.ContentLength)
	}
	time.Sleep(slowWrite + closeSlack)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err = io.Copy(io.Discard, resp.Body)
	return got < bigFile, got, err
}

func TestSlowClientsDoNotStarveReaders(t *testing.T) {
	raiseOpenFiles(t, slowlorisConns+neverReaders+2000)
	e, pages := slowEdge(t)
	addr := fmt.Sprintf("127.0.0.1:%d", e.Port)
	readers := func(d time.Duration) (loadRun, loadRun) {
		var keep, fresh loadRun
		var wg sync.WaitGroup
		wg.Go(func() { keep = hitLoad(e.URL(), pages, 6, d, nil) })
		wg.Go(func() {
			fresh = runLoad(loadOptions{base: e.URL(), paths: pages, workers: 2, d: d, fresh: true, pause: 5 * time.Millisecond})
		})
		wg.Wait()
		return keep, fresh
	}
	keepBefore, freshBefore := readers(3 * time.Second)

	var st slowStats
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range slowlorisConns {
		wg.Go(func() { slowloris(addr, &st, stop) })
	}
	type cutResult struct {
		cut bool
		got int64
		err error
	}
	cuts := make(chan cutResult, neverReaders)
	for range neverReaders {
		go func() {
			cut, got, err := neverReader(addr)
			cuts <- cutResult{cut, got, err}
		}()
	}
	waitFor(t, 10*time.Second, "5,000 slowloris connections open", func() bool { return st.open.Load() >= slowlorisConns*95/100 })
	t.Logf("%d slowloris connections open", st.open.Load())
	// Readers while the slow connections are held and, after read_header,
	// closed and opened again.
	keepWith, freshWith := readers(slowReadHeader + 3*time.Second)
	close(stop)
	wg.Wait()
	var cut int
	var rest int64
	for range neverReaders {
		r := <-cuts
		if !r.cut {
			t.Errorf("a client that never read got the whole answer later (%d bytes, %v): the edge kept writing", r.got, r.err)
			continue
		}
		cut++
		rest = max(rest, r.got)
	}
	t.Logf("never-readers: the edge cut %d of %d answers of %d MiB within write %v + %v (at most %d bytes were left to read)",
		cut, neverReaders, bigFile>>20, slowWrite, closeSlack, rest)
	keepAfter, freshAfter := readers(3 * time.Second)

	st.mu.Lock()
	t.Logf("slowloris: %d connections opened, %d closed by the edge, longest %v (read_header %v), %d overdue, %d dial errors",
		st.opened.Load(), st.closed.Load(), st.longest.Round(10*time.Millisecond), slowReadHeader, st.overdue, st.dialErrs.Load())
	if st.overdue > 0 || st.longest > slowReadHeader+closeSlack {
		t.Errorf("%d slowloris connections open longer than read_header %v + %v", st.overdue, slowReadHeader, closeSlack)
	}
	if st.closed.Load() < slowlorisConns*9/10 {
		t.Errorf("only %d of %d slowloris connections were closed by the edge", st.closed.Load(), slowlorisConns)
	}
	st.mu.Unlock()
	checkP99(t, "readers on keep-alive connections during a slowloris", keepBefore, keepWith, keepAfter)
	checkP99(t, "readers on new connections during a slowloris", freshBefore, freshWith, freshAfter)
}

// TestExampleSetsServerTimeouts: Caddyfile.example sets the four server
// timeouts the README describes.
func TestExampleSetsServerTimeouts(t *testing.T) {
	out, err := exec.Command(harness.Binary(t), "adapt", "--config", filepath.Join(harness.RepoRoot(), "Caddyfile.example"),
		"--adapter", "caddyfile").Output()
	if err != nil {
		t.Fatalf("caddy adapt Caddyfile.example: %v", err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]map[string]any `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{"read_header_timeout": 10 * time.Second, "read_timeout": 10 * time.Second,
		"write_timeout": 2 * time.Minute, "idle_timeout": time.Minute}
	for name, srv := range cfg.Apps.HTTP.Servers {
		for k, d := range want {
			if v, _ := srv[k].(float64); time.Duration(v) != d {
				t.Errorf("server %s: %s = %v, want %v", name, k, srv[k], d)
			}
		}
	}
	if len(cfg.Apps.HTTP.Servers) == 0 {
		t.Fatal("no servers in the adapted example")
	}
}
