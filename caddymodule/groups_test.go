package caddymodule

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/delivery-edge/edge/edgegroup"
)

// gather collects the app's metrics: name -> joined label values -> value.
func gather(t *testing.T, a *App) map[string]map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(newMetricsCollector(a))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, f := range families {
		m := map[string]float64{}
		for _, metric := range f.GetMetric() {
			var labels []string
			for _, l := range metric.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			v := metric.GetGauge().GetValue()
			if c := metric.GetCounter(); c != nil {
				v = c.GetValue()
			}
			m[strings.Join(labels, ",")] = v
		}
		out[f.GetName()] = m
	}
	return out
}

// TestGroupCapsMetricsAndSnapshot: the app's flush_log_max_size and
// outbox_max_size reach the engine; what they prune, the outbox of a peer
// that is down and the servlet's refusals show in the metrics and the
// Snapshot.
func TestGroupCapsMetricsAndSnapshot(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	peer := dead + edgegroup.DefaultServletPath
	e := newTestEdge(t, func(a *App) {
		a.ServletPassword = "pw"
		a.Groups = map[string]GroupConfig{"live": {Peers: []string{dead}}}
		a.FlushLogMaxSize, a.OutboxMaxSize = 64<<10, 32<<10
	})
	refusedBefore := servletRefusals.Password.Load()
	if status, _ := e.do("action=sync&group=live&password=wrong"); status != 500 {
		t.Fatalf("wrong password: %d", status)
	}
	for i := range 100 {
		key := fmt.Sprintf("k%03d-%s", i, strings.Repeat("x", 1000))
		if status, body := e.do(url.Values{"action": {"flush"}, "key": {key}, "group": {"live"}, "password": {"pw"}}.Encode()); status != 200 {
			t.Fatalf("flush %d: %d %q", i, status, body)
		}
	}
	m := gather(t, e.app)
	if m["delivery_flush_log_pruned_total"]["size"] == 0 || m["delivery_flush_log_bytes"][""] > 64<<10 {
		t.Errorf("flush log metrics %v %v", m["delivery_flush_log_pruned_total"], m["delivery_flush_log_bytes"])
	}
	length := m["delivery_outbox_length"][peer]
	if length == 0 || m["delivery_outbox_bytes"][peer] > 32<<10 || m["delivery_outbox_dropped_total"][peer+",size"] != 100-length {
		t.Errorf("outbox metrics %v %v %v", m["delivery_outbox_length"], m["delivery_outbox_bytes"], m["delivery_outbox_dropped_total"])
	}
	if got := m["delivery_servlet_refused_total"]["password"]; got != float64(refusedBefore+1) {
		t.Errorf("servlet_refused_total{password} = %v, want %d", got, refusedBefore+1)
	}
	s := e.app.Snapshot()
	if len(s.Groups) != 1 || s.Groups[0].Name != "live" || len(s.Groups[0].Peers) != 1 {
		t.Fatalf("snapshot groups %+v", s.Groups)
	}
	p := s.Groups[0].Peers[0]
	if p.URL != peer || float64(p.OutboxLength) != length || p.LastForward != nil || p.LastSync != nil {
		t.Errorf("snapshot peer %+v", p)
	}
	if s.FlushLog == nil || s.FlushLog.Entries == 0 || s.FlushLog.Bytes > 64<<10 {
		t.Errorf("snapshot flush log %+v", s.FlushLog)
	}
}
