package bench

import (
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/faults"
)

// faultLink is a TCP link in front of one upstream that the soak breaks on
// purpose: the project's fault proxy (integration/faults) behind the few
// faults the soak uses.
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

// proxyLink is a faultLink over a faults.Proxy.
type proxyLink struct{ p *faults.Proxy }

var _ faultLink = proxyLink{}

func (l proxyLink) Addr() string { return l.p.Addr() }
func (l proxyLink) Down()        { l.p.Down() }
func (l proxyLink) Reset()       { l.p.ResetConnections() }
func (l proxyLink) Close()       { _ = l.p.Close() }

func (l proxyLink) Up() {
	l.p.Clear()
	_ = l.p.Up()
}

func (l proxyLink) Latency(d time.Duration) {
	_ = l.p.Remove("soak-latency-down")
	_ = l.p.Remove("soak-latency-up")
	if d > 0 {
		_ = l.p.Add(faults.Latency(d, 0).Named("soak-latency-down"))
		_ = l.p.Add(faults.Latency(d, 0).Named("soak-latency-up").On(faults.Upstream))
	}
}

func mustLink(b *testing.B, upstream string) faultLink {
	b.Helper()
	return proxyLink{faults.StartForTest(b, upstream)}
}
