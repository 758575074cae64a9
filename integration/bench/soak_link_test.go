package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faultLink is a TCP link in front of one upstream that the soak breaks on
// purpose. Any fault proxy fits (the project's integration/faults wraps
// toxiproxy); tcpLink below is the small one the soak starts with.
type faultLink interface {
	// Addr is the host:port clients dial instead of the upstream.
	Addr() string
	// Down resets every open connection and every new one until Up.
	Down()
	// Up ends Down and Latency: the link passes data untouched again.
	Up()
	// Latency delays every chunk of data in both directions by d (0: none).
	Latency(d time.Duration)
	// Reset resets (RST) every connection open now; new ones pass.
	Reset()
	// Close stops the link, closes its connections and waits for them.
	Close()
}

// tcpLink is a minimal fault proxy: one goroutine pair per connection,
// faults applied per chunk as it passes.
type tcpLink struct {
	ln       net.Listener
	upstream string
	down     atomic.Bool
	latency  atomic.Int64 // ns

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

var _ faultLink = (*tcpLink)(nil)

// newTCPLink listens on a free loopback port and forwards to upstream
// (host:port).
func newTCPLink(upstream string) (*tcpLink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &tcpLink{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

func (l *tcpLink) Addr() string { return l.ln.Addr().String() }

func (l *tcpLink) Down() {
	l.down.Store(true)
	l.Reset()
}

func (l *tcpLink) Up() {
	l.latency.Store(0)
	l.down.Store(false)
}

func (l *tcpLink) Latency(d time.Duration) { l.latency.Store(int64(d)) }

func (l *tcpLink) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		resetConn(c)
	}
}

func (l *tcpLink) Close() {
	_ = l.ln.Close()
	l.Reset()
	l.wg.Wait()
}

// resetConn closes a connection with RST instead of FIN.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (l *tcpLink) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return // closed
		}
		if l.down.Load() {
			resetConn(c)
			continue
		}
		l.wg.Add(1)
		go l.serve(c)
	}
}

func (l *tcpLink) track(c net.Conn, on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if on {
		l.conns[c] = struct{}{}
	} else {
		delete(l.conns, c)
	}
}

func (l *tcpLink) serve(client net.Conn) {
	defer l.wg.Done()
	up, err := net.DialTimeout("tcp", l.upstream, 5*time.Second)
	if err != nil {
		resetConn(client)
		return
	}
	l.track(client, true)
	l.track(up, true)
	defer func() {
		l.track(client, false)
		l.track(up, false)
	}()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.pipe(up, client) }()
	go func() { defer wg.Done(); l.pipe(client, up) }()
	wg.Wait()
	_ = client.Close()
	_ = up.Close()
}

// pipe copies src to dst, delaying each chunk by the current latency.
func (l *tcpLink) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(l.latency.Load()); d > 0 {
				time.Sleep(d)
			}
			if l.down.Load() {
				resetConn(dst)
				resetConn(src)
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				_ = src.Close()
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite() // pass the half-close on
					return
				}
			}
			// A reset or a closed link: end both directions.
			_ = dst.Close()
			_ = src.Close()
			return
		}
	}
}

// TestTCPLink: the soak's fault link passes data, delays it, refuses while
// down and resets the connections open at a Reset.
func TestTCPLink(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	defer close(hang)
	l, err := newTCPLink(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	get := func(path string) (time.Duration, error) {
		start := time.Now()
		resp, err := client.Get("http://" + l.Addr() + path)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && string(b) != "ok" {
			err = fmt.Errorf("body %q", b)
		}
		return time.Since(start), err
	}
	if _, err := get("/"); err != nil {
		t.Fatalf("through the link: %v", err)
	}
	l.Latency(150 * time.Millisecond)
	if d, err := get("/"); err != nil || d < 300*time.Millisecond {
		t.Fatalf("with latency: %v after %v, want ≥ 300ms (request and answer delayed)", err, d)
	}
	l.Down()
	if _, err := get("/"); err == nil {
		t.Fatal("link down: the request went through")
	}
	l.Up()
	if d, err := get("/"); err != nil || d > 150*time.Millisecond {
		t.Fatalf("link up again: %v after %v", err, d)
	}
	errc := make(chan error, 1)
	go func() { _, err := get("/hang"); errc <- err }()
	time.Sleep(200 * time.Millisecond)
	l.Reset()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("the request open at the reset succeeded")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the reset did not end the open request")
	}
	if _, err := get("/"); err != nil {
		t.Fatalf("after the reset: %v", err)
	}
}
