package faults_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/delivery-edge/edge/integration/faults"
)

// A proxy in front of a backend: point the system under test at p.Addr()
// instead of the backend, then break the link while it runs.
func Example() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "rendered")
	}))
	defer backend.Close()
	p, err := faults.Start(backend.Listener.Addr().String())
	if err != nil {
		panic(err)
	}
	defer p.Close()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	p.Add(faults.Latency(50*time.Millisecond, 10*time.Millisecond)) // answers arrive 40–60 ms later
	resp, err := client.Get(p.URL())
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println("slow:", string(b))
	}

	p.Add(faults.ResetPeer(0)) // and now every answer is reset
	_, err = client.Get(p.URL())
	fmt.Println("reset:", err != nil)

	p.Clear()
	p.Add(faults.Timeout(0).On(faults.Upstream)) // requests vanish
	_, err = client.Get(p.URL())
	fmt.Println("blackhole:", err != nil)

	p.Clear()
	p.Down() // connections refused until Up
	_, err = client.Get(p.URL())
	fmt.Println("down:", err != nil)
	p.Up()
	resp, err = client.Get(p.URL())
	if err == nil {
		resp.Body.Close()
		fmt.Println("up:", resp.StatusCode)
	}
	// Output:
	// slow: rendered
	// reset: true
	// blackhole: true
	// down: true
	// up: 200
}
