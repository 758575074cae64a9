//go:build linux

package harness

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"

	"github.com/delivery-edge/edge/integration/procgroup"
)

// TestEdgeLeavesNoProcess runs the edge in its own process group and
// checks that neither a crash (Kill), a clean Stop nor the test cleanup
// leaves a process of that group behind.
func TestEdgeLeavesNoProcess(t *testing.T) {
	var groups []int
	t.Run("run", func(t *testing.T) {
		dir, port := t.TempDir(), FreePort(t)
		c := StartCaddy(t, dir, fmt.Sprintf("{\n\tadmin off\n\tpersist_config off\n}\nhttp://127.0.0.1:%d {\n\trespond \"ok\"\n}\n", port), port)
		for i, stop := range []func(){c.Kill, c.Stop, nil} { // nil: left to the cleanup
			pid := c.Pid()
			if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
				t.Fatalf("edge %d runs in group %d (%v), want its own", pid, pgid, err)
			}
			if status, _, body := Get(t, nil, c.URL()); status != http.StatusOK || body != "ok" {
				t.Fatalf("edge answered %d %q", status, body)
			}
			groups = append(groups, pid)
			if stop == nil {
				break
			}
			stop()
			if c.Pid() != 0 {
				t.Fatalf("round %d: Pid %d after stopping", i, c.Pid())
			}
			if left := procgroup.Survivors(pid, nil); len(left) > 0 {
				t.Errorf("round %d: group %d not empty: %v", i, pid, left)
			}
			c.Start()
		}
	})
	if len(groups) != 3 {
		t.Fatalf("ran %d edges, want 3", len(groups))
	}
	for _, g := range groups {
		if left := procgroup.Survivors(g, nil); len(left) > 0 {
			t.Errorf("group %d not empty after the test: %v", g, left)
		}
	}
}
