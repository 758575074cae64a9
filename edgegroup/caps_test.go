package edgegroup

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/delivery-edge/edge/cache"
)

// deadPeer is the URL of a port nothing listens on.
func deadPeer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestCapsBoundTheFlushLogAndTheOutbox: 600 flushes of 1 KB keys with the
// group's only peer down keep the flush log and its outbox under their
// caps; the pruning is logged once (not per flush) and counted.
func TestCapsBoundTheFlushLogAndTheOutbox(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	peer := deadPeer(t)
	const logMax, outboxMax = 128 << 10, 64 << 10
	e := newTestEdge(t, nil, both(inGroup("live", peer), func(c *edgeConfig) {
		c.LogMax, c.OutboxMax, c.Logger = logMax, outboxMax, zap.New(core)
	}))
	for i := range 600 {
		key := fmt.Sprintf("k%05d-%s", i, strings.Repeat("x", 1017))
		if code, body := e.do(http.MethodPost, url.Values{"action": {"flush"}, "key": {key}, "group": {"live"}}.Encode()); code != 200 {
			t.Fatalf("flush %d: %d %q", i, code, body)
		}
	}
	sizes, err := e.eng.FlushSizes()
	if err != nil {
		t.Fatal(err)
	}
	out := sizes.Outbox[peer+DefaultServletPath]
	if sizes.Log.Bytes > logMax || out.Bytes > outboxMax || sizes.Log.Entries < 50 || out.Entries < 50 {
		t.Fatalf("log %+v, outbox %+v", sizes.Log, out)
	}
	c := e.eng.FlushCounters()
	if c.LogPruned[cache.ReasonSize] != 600-sizes.Log.Entries ||
		c.OutboxDropped[cache.PeerReason{Peer: peer + DefaultServletPath, Reason: cache.ReasonSize}] < 600-out.Entries-1 {
		t.Fatalf("counters %+v (log %d, outbox %d)", c, sizes.Log.Entries, out.Entries)
	}
	eventually(t, "the pruning reported", func() bool {
		return logs.FilterMessageSnippet("size cap").Len() == 2
	})
	time.Sleep(100 * time.Millisecond) // no further lines for the same round
	lines := logs.FilterMessageSnippet("size cap").All()
	if len(lines) != 2 {
		t.Fatalf("%d lines: %v", len(lines), lines)
	}
	for _, l := range lines {
		f := l.ContextMap()
		if l.Level != zapcore.WarnLevel || (f["pruned"] == nil && f["dropped"] == nil) {
			t.Errorf("line %q %v", l.Message, f)
		}
	}
}

// TestGroupsStatus: each group's peers with their outbox and the last
// confirmed forward and sync.
func TestGroupsStatus(t *testing.T) {
	p := newRecordingPeer(t, nil)
	dead := deadPeer(t)
	before := time.Now() // the catch-up may be done before newTestEdge returns
	e := newTestEdge(t, nil, both(inGroup("live", p.srv.URL, dead), inGroup("preview", dead)))
	eventually(t, "the catch-up with the live peer", func() bool {
		st, _ := e.groups.Status()
		return !st[0].Peers[0].LastSync.IsZero()
	})
	e.do(http.MethodGet, "action=flush&key=home&group=live")
	e.do(http.MethodGet, "action=flush&key=news&group=preview")
	eventually(t, "the forward to the live peer", func() bool {
		st, _ := e.groups.Status()
		return !st[0].Peers[0].LastForward.IsZero()
	})
	st, err := e.groups.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 || st[0].Name != "live" || st[1].Name != "preview" || len(st[0].Peers) != 2 || len(st[1].Peers) != 1 {
		t.Fatalf("status %+v", st)
	}
	up, down := st[0].Peers[0], st[0].Peers[1]
	if up.URL != p.srv.URL+DefaultServletPath || up.OutboxEntries != 0 || up.LastSync.Before(before) || up.LastForward.Before(before) {
		t.Errorf("live peer %+v", up)
	}
	// The dead peer has both flushes waiting (one per group), never answered.
	if down.OutboxEntries != 2 || down.OutboxBytes == 0 || !down.LastSync.IsZero() || !down.LastForward.IsZero() {
		t.Errorf("dead peer %+v", down)
	}
	if st[1].Peers[0].OutboxEntries != 2 {
		t.Errorf("preview's peer %+v", st[1].Peers[0])
	}
}
