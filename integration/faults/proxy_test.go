package faults

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// echoServer answers every connection with what it sends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
			})
		}
	})
	return ln.Addr().String()
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends msg and reads it back, within limit.
func roundTrip(c net.Conn, msg []byte, limit time.Duration) ([]byte, time.Duration, error) {
	start := time.Now()
	c.SetDeadline(start.Add(limit))
	defer c.SetDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { _, err := c.Write(msg); errc <- err }()
	got := make([]byte, len(msg))
	_, err := io.ReadFull(c, got)
	if werr := <-errc; err == nil {
		err = werr
	}
	return got, time.Since(start), err
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPassThroughKeepsEveryByte(t *testing.T) {
	p := StartForTest(t, echoServer(t))
	c := dial(t, p)
	msg := randomBytes(1 << 20)
	got, _, err := roundTrip(c, msg, 10*time.Second)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("1 MiB through the proxy: equal %v, %v", bytes.Equal(got, msg), err)
	}
}

func TestLatencyDelaysBothWaysAndLifts(t *testing.T) {
	p := StartForTest(t, echoServer(t))
	if err := p.Add(Latency(150*time.Millisecond, 0)); err != nil {
		t.Fatal(err)
	}
	if err := p.Add(Latency(100*time.Millisecond, 50*time.Millisecond).On(Upstream)); err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	for range 3 {
		_, took, err := roundTrip(c, []byte("ping"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if took < 200*time.Millisecond { // 150 + 100 ± 50
			t.Fatalf("round trip with latency took %v, want at least 200ms", took)
		}
	}
	// Removing a toxic releases the data that waits for it at once.
	go func() { time.Sleep(50 * time.Millisecond); p.Clear() }()
	p.Add(Latency(10*time.Second, 0).Named("long"))
	if _, took, err := roundTrip(c, []byte("ping"), 5*time.Second); err != nil || took > 3*time.Second {
		t.Fatalf("data held by a removed latency: %v after %v", err, took)
	}
}

func TestBandwidthLimitsRate(t *testing.T) {
	p := StartForTest(t, echoServer(t))
	p.Add(Bandwidth(100 << 10))
	c := dial(t, p)
	msg := randomBytes(60 << 10)
	got, took, err := roundTrip(c, msg, 10*time.Second)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("equal %v, %v", bytes.Equal(got, msg), err)
	}
	if took < 400*time.Millisecond { // 60 KiB at 100 KiB/s: 0.6 s
		t.Fatalf("60 KiB at 100 KiB/s took %v", took)
	}
}

func TestSlicerKeepsDataAndPaces(t *testing.T) {
	p := StartForTest(t, echoServer(t))
	p.Add(Slicer(100, 50, 5*time.Millisecond).On(Upstream))
	c := dial(t, p)
	msg := randomBytes(4000) // at least 27 slices of at most 150 bytes
	got, took, err := roundTrip(c, msg, 10*time.Second)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("equal %v, %v", bytes.Equal(got, msg), err)
	}
	if took < 100*time.Millisecond {
		t.Fatalf("sliced into pieces 5ms apart, 4000 bytes took only %v", took)
	}
}

func TestResetPeerResetsBothSides(t *testing.T) {
	p := StartForTest(t, echoServer(t))
	c := dial(t, p)
	if _, _, err := roundTrip(c, []byte("before"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Add(ResetPeer(0))
	_, _, err := roundTrip(c, []byte("after"), 5*time.Second)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after reset_peer: %v, want connection reset", err)
	}
	if s := p.Stats(); s.Resets != 1 {
		t.Fatalf("stats %+v", s)
	}
	// New connections are reset too, until the toxic goes.
	c2 := dial(t, p)
	if _, _, err := roundTrip(c2, []byte("x"), 5*time.Second); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("new connection: %v", err)
	}
	p.Remove("reset_peer_downstream")
	if _, _, err := roundTrip(dial(t, p), []byte("x"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestTimeoutBlackholesThenClosesWhatLostData(t *testing.T) {
	p := StartForTest(t, echoServer(t))
	lost, kept := dial(t, p), dial(t, p)
	for _, c := range []net.Conn{lost, kept} {
		if _, _, err := roundTrip(c, []byte("hello"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	p.Add(Timeout(0).On(Upstream))
	_, _, err := roundTrip(lost, []byte("into the hole"), 300*time.Millisecond)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("blackholed connection: %v, want a timeout", err)
	}
	if s := p.Stats(); s.Dropped != int64(len("into the hole")) {
		t.Fatalf("stats %+v", s)
	}
	p.Remove("timeout_upstream")
	lost.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := lost.Read(make([]byte, 16)); err == nil {
		t.Fatalf("connection that lost data still open after the blackhole lifted (read %d)", n)
	}
	if _, _, err := roundTrip(kept, []byte("still here"), 5*time.Second); err != nil {
		t.Fatalf("connection that lost nothing: %v", err)
	}

	// With a time, the connection is closed that long after the toxic met it.
	p.Add(Timeout(200 * time.Millisecond))
	start := time.Now()
	kept.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := kept.Read(make([]byte, 1)); err == nil || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("timeout 200ms: %v after %v", err, time.Since(start))
	}
}

func TestToxicityZeroSparesConnections(t *testing.T) {
	p := StartForTest(t, echoServer(t))
	p.Add(ResetPeer(0).WithToxicity(0))
	if _, _, err := roundTrip(dial(t, p), []byte("x"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestDownRefusesAndUpServesOnTheSamePort(t *testing.T) {
	p := StartForTest(t, echoServer(t))
	c := dial(t, p)
	p.Down()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("open connection survived Down")
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("connect while down succeeded")
	}
	if err := p.Up(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := roundTrip(dial(t, p), []byte("back"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestUnreachableUpstreamClosesClient(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	p := StartForTest(t, addr)
	c := dial(t, p)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a proxy without upstream succeeded")
	}
	if s := p.Stats(); s.Refused != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestBadToxicsRefused(t *testing.T) {
	p := StartForTest(t, echoServer(t))
	for _, tx := range []Toxic{{}, Latency(time.Second, 2*time.Second), Bandwidth(0), Slicer(10, 10, 0),
		Timeout(-1), ResetPeer(0).WithToxicity(2)} {
		if err := p.Add(tx); err == nil {
			t.Errorf("%v accepted", tx)
		}
	}
	p.Add(Latency(0, 0))
	if err := p.Add(Latency(time.Second, 0)); err == nil {
		t.Error("second toxic of the same name accepted")
	}
	if err := p.Remove("nope"); err == nil {
		t.Error("removing an unknown toxic succeeded")
	}
}

// TestToxicChangesUnderLoadNeverHang is the load toxiproxy 2.12 deadlocks
// under (its toxic collection waits for a link whose client has gone):
// HTTP clients that give up after 30 ms while toxics come and go.
func TestToxicChangesUnderLoadNeverHang(t *testing.T) {
	body := strings.Repeat("x", 256<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	defer srv.Close()
	p := StartForTest(t, srv.Listener.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var requests atomic.Int64
	for range 16 {
		wg.Go(func() {
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			c := &http.Client{Timeout: 30 * time.Millisecond, Transport: tr}
			for ctx.Err() == nil {
				if resp, err := c.Get(p.URL()); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				requests.Add(1)
			}
		})
	}
	toxics := []Toxic{Latency(20*time.Millisecond, 10*time.Millisecond), Bandwidth(1 << 20), ResetPeer(5 * time.Millisecond),
		Timeout(0), Slicer(512, 256, time.Millisecond)}
	deadline := time.Now().Add(3 * time.Second)
	rounds := 0
	for ; time.Now().Before(deadline); rounds++ {
		done := make(chan struct{})
		go func() {
			defer close(done)
			tx := toxics[rounds%len(toxics)]
			p.Add(tx)
			time.Sleep(20 * time.Millisecond)
			p.Remove(tx.Name())
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cancel()
			t.Fatalf("toxic change hung in round %d", rounds)
		}
	}
	cancel()
	wg.Wait()
	t.Logf("%d toxic changes under %d requests; %+v", rounds, requests.Load(), p.Stats())
	if status, _, got := get(t, p.URL()); status != 200 || got != body {
		t.Fatalf("after the load: %d, whole body %v", status, got == body)
	}
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: tr}).Get(url)
	if err != nil {
		t.Fatalf("GET %s after the load: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}
