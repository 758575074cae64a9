package harness

import (
	"fmt"
	"net/http"
	"testing"
)

// TestStartWaitsForEveryApp restarts an edge with an admin endpoint and
// asks its admin API right after each Start. Caddy starts its apps in no
// fixed order, so the HTTP port can accept while the delivery app has not
// started and its admin routes still answer 503; Start must wait for
// Caddy's "serving initial configuration" too.
func TestStartWaitsForEveryApp(t *testing.T) {
	admin := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	e := StartEdge(t, EdgeOptions{Origin: "127.0.0.1:1", Admin: admin})
	var offset int64 // where this round's log begins
	for round := range 8 {
		if !e.logHas(offset, servingLine) {
			t.Fatalf("round %d: Start returned before caddy logged %s", round, servingLine)
		}
		if status, _, body := Get(t, nil, "http://"+admin+"/delivery/stats"); status != http.StatusOK {
			t.Fatalf("round %d: admin stats right after Start: %d %s", round, status, body)
		}
		e.Stop()
		offset = int64(len(e.Log()))
		e.Start()
	}
}
