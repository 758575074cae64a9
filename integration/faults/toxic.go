package faults

import (
	"fmt"
	"time"
)

// Direction is the way data flows through a proxied connection.
type Direction int

const (
	// Downstream is from the upstream server to the client: answers.
	Downstream Direction = iota
	// Upstream is from the client to the upstream server: requests.
	Upstream
)

func (d Direction) String() string {
	if d == Upstream {
		return "upstream"
	}
	return "downstream"
}

type kind int

const (
	kindLatency kind = iota + 1
	kindBandwidth
	kindResetPeer
	kindTimeout
	kindSlicer
)

func (k kind) String() string {
	return [...]string{"", "latency", "bandwidth", "reset_peer", "timeout", "slicer"}[k]
}

// Toxic is one fault on one direction of every connection through a proxy,
// named after toxiproxy's toxics of the same names. Build one with
// [Latency], [Bandwidth], [ResetPeer], [Timeout] or [Slicer]; it applies
// to Downstream and to every connection unless changed with [Toxic.On]
// and [Toxic.WithToxicity].
type Toxic struct {
	name     string
	kind     kind
	dir      Direction
	toxicity float64 // share of connections, when setShare; else 1
	setShare bool

	latency, jitter time.Duration // latency
	rate            int64         // bandwidth, bytes per second
	after           time.Duration // reset_peer, timeout
	avgSize, vary   int           // slicer
	delay           time.Duration // slicer
}

// Latency delays every chunk of data by latency ± jitter (uniform), counted
// from when the proxy read it, so a steady stream is shifted, not slowed.
func Latency(latency, jitter time.Duration) Toxic {
	return Toxic{kind: kindLatency, latency: latency, jitter: jitter}
}

// Bandwidth limits the direction to bytesPerSecond per connection.
func Bandwidth(bytesPerSecond int64) Toxic {
	return Toxic{kind: kindBandwidth, rate: bytesPerSecond}
}

// ResetPeer resets the connection (TCP RST to both sides, unsent data
// dropped) after the first data that flows in its direction, after a
// further delay of after.
func ResetPeer(after time.Duration) Toxic {
	return Toxic{kind: kindResetPeer, after: after}
}

// Timeout is a blackhole: data in its direction is dropped. With after >
// 0 the connection is also closed that long after the toxic met it. When
// the toxic is removed, connections that lost data to it are closed (what
// follows would be garbage to the other side); the others carry on.
func Timeout(after time.Duration) Toxic {
	return Toxic{kind: kindTimeout, after: after}
}

// Slicer cuts every chunk into pieces of avgSize ± sizeVariation bytes
// written delay apart, as a slow or fragmenting network delivers them.
func Slicer(avgSize, sizeVariation int, delay time.Duration) Toxic {
	return Toxic{kind: kindSlicer, avgSize: avgSize, vary: sizeVariation, delay: delay}
}

// Named sets the toxic's name (default "<type>_<direction>").
func (t Toxic) Named(name string) Toxic { t.name = name; return t }

// On sets the direction the toxic acts on (default Downstream).
func (t Toxic) On(d Direction) Toxic { t.dir = d; return t }

// WithToxicity makes the toxic act on a share p (0..1) of the
// connections, drawn per connection when the toxic first meets it
// (default 1: all of them).
func (t Toxic) WithToxicity(p float64) Toxic { t.toxicity, t.setShare = p, true; return t }

func (t Toxic) share() float64 {
	if !t.setShare {
		return 1
	}
	return t.toxicity
}

// Name is the toxic's name.
func (t Toxic) Name() string {
	if t.name != "" {
		return t.name
	}
	return t.kind.String() + "_" + t.dir.String()
}

func (t Toxic) String() string {
	switch t.kind {
	case kindLatency:
		return fmt.Sprintf("%s: latency %v±%v", t.Name(), t.latency, t.jitter)
	case kindBandwidth:
		return fmt.Sprintf("%s: bandwidth %d B/s", t.Name(), t.rate)
	case kindResetPeer:
		return fmt.Sprintf("%s: reset after %v", t.Name(), t.after)
	case kindTimeout:
		return fmt.Sprintf("%s: blackhole, close after %v", t.Name(), t.after)
	case kindSlicer:
		return fmt.Sprintf("%s: slices of %d±%d B every %v", t.Name(), t.avgSize, t.vary, t.delay)
	}
	return t.Name()
}

func (t Toxic) validate() error {
	switch {
	case t.kind == 0:
		return fmt.Errorf("faults: a toxic needs a type (use Latency, Bandwidth, …)")
	case t.dir != Upstream && t.dir != Downstream:
		return fmt.Errorf("faults: %s: bad direction %d", t.Name(), t.dir)
	case t.toxicity < 0 || t.toxicity > 1:
		return fmt.Errorf("faults: %s: toxicity %v outside 0..1", t.Name(), t.toxicity)
	case t.latency < 0 || t.jitter < 0 || t.after < 0 || t.delay < 0:
		return fmt.Errorf("faults: %s: negative duration", t.Name())
	case t.jitter > t.latency:
		return fmt.Errorf("faults: %s: jitter %v larger than latency %v", t.Name(), t.jitter, t.latency)
	case t.kind == kindBandwidth && t.rate <= 0:
		return fmt.Errorf("faults: %s: bandwidth must be positive (use Timeout for none)", t.Name())
	case t.kind == kindSlicer && (t.avgSize <= 0 || t.vary < 0 || t.vary >= t.avgSize):
		return fmt.Errorf("faults: %s: slice size %d±%d", t.Name(), t.avgSize, t.vary)
	}
	return nil
}
