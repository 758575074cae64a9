// Package faults is a fault-injecting TCP proxy for end-to-end tests and
// benchmarks: it sits on a loopback port in front of one upstream (a
// render backend, a staging server, an S3 store, a peer edge) and, while
// traffic flows, adds latency, limits bandwidth, resets connections,
// blackholes them or slices their data, and goes down and up again.
//
// The toxics and their names follow Shopify's toxiproxy. Toxiproxy itself
// (v2.5.0 to v2.12.0, the newest release) is not used: adding or removing a
// toxic while a client drops its connection deadlocks its toxic collection
// (Shopify/toxiproxy#412, #558; the fix, #760, is not released), and a
// load test whose clients time out does exactly that within seconds. Here
// a toxic change is a new immutable set that every connection reads before
// each chunk of data, and no lock is held while data moves.
package faults

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dialTimeout bounds the connect to the upstream of each new connection.
const dialTimeout = 5 * time.Second

// Proxy forwards the connections to its loopback address to the upstream,
// through the current toxics. Its methods are safe for concurrent use.
type Proxy struct {
	upstream string
	addr     string // fixed at Start, kept across Down/Up

	mu      sync.Mutex
	ln      net.Listener // nil while down
	set     []*active    // immutable; replaced on every change
	changed chan struct{}
	gen     uint64
	serial  uint64
	conns   map[*conn]struct{}
	closed  bool

	wg    sync.WaitGroup // accept loops and connections
	stats struct {
		accepted, refused, resets, timeouts, dropped atomic.Int64
	}
}

type active struct {
	Toxic
	id uint64
}

// Stats counts what a proxy did so far.
type Stats struct {
	Accepted int64 // connections accepted
	Refused  int64 // accepted but the upstream could not be reached
	Resets   int64 // connections reset by a reset_peer toxic
	Timeouts int64 // connections closed by a timeout toxic (its time, or its removal)
	Dropped  int64 // bytes dropped by timeout toxics
	Live     int   // connections open now
}

// Start listens on 127.0.0.1 at a free port and forwards to upstream
// (host:port).
func Start(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faults: listen: %w", err)
	}
	p := &Proxy{upstream: upstream, addr: ln.Addr().String(), changed: make(chan struct{}),
		conns: map[*conn]struct{}{}}
	p.serve(ln)
	return p, nil
}

// StartForTest is Start for a test: it fails the test on error and closes
// the proxy at the test's cleanup.
func StartForTest(t testing.TB, upstream string) *Proxy {
	t.Helper()
	p, err := Start(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// Addr is the proxy's host:port; it stays the same across Down and Up.
func (p *Proxy) Addr() string { return p.addr }

// URL is "http://" + Addr().
func (p *Proxy) URL() string { return "http://" + p.addr }

// Upstream is the address the proxy forwards to.
func (p *Proxy) Upstream() string { return p.upstream }

// Add adds a toxic; it acts on open connections at their next chunk of
// data, and on new ones. A toxic of the same name must be removed first.
func (p *Proxy) Add(t Toxic) error {
	if err := t.validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("faults: proxy closed")
	}
	for _, a := range p.set {
		if a.Name() == t.Name() {
			return fmt.Errorf("faults: toxic %q exists", t.Name())
		}
	}
	p.serial++
	set := append(append(make([]*active, 0, len(p.set)+1), p.set...), &active{Toxic: t, id: p.serial})
	p.publish(set)
	return nil
}

// Remove removes the toxic of that name.
func (p *Proxy) Remove(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, a := range p.set {
		if a.Name() == name {
			set := append(append(make([]*active, 0, len(p.set)), p.set[:i]...), p.set[i+1:]...)
			p.publish(set)
			return nil
		}
	}
	return fmt.Errorf("faults: no toxic %q", name)
}

// Clear removes every toxic.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.set) > 0 {
		p.publish(nil)
	}
}

// Toxics lists the toxics in the order they were added.
func (p *Proxy) Toxics() []Toxic {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Toxic, len(p.set))
	for i, a := range p.set {
		out[i] = a.Toxic
	}
	return out
}

// publish installs a new toxic set and wakes every connection waiting on
// the old one. p.mu is held.
func (p *Proxy) publish(set []*active) {
	p.set = set
	p.gen++
	close(p.changed)
	p.changed = make(chan struct{})
}

// current is the toxic set, its generation and the channel closed when it
// is replaced.
func (p *Proxy) current() ([]*active, uint64, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.set, p.gen, p.changed
}

// Down stops listening and closes every connection: the port refuses
// connections until Up. Toxics stay.
func (p *Proxy) Down() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.close(false)
	}
}

// ResetConnections resets (TCP RST) every connection open now; new ones
// pass as before.
func (p *Proxy) ResetConnections() {
	p.mu.Lock()
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.close(true)
	}
}

// Up listens again on the same address after Down.
func (p *Proxy) Up() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errors.New("faults: proxy closed")
	}
	if p.ln != nil {
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("faults: listen again on %s: %w", p.addr, err)
	}
	p.serve(ln)
	return nil
}

// Close takes the proxy down for good and waits until every connection
// it forwarded has ended.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.Down()
	p.wg.Wait()
	return nil
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	live := len(p.conns)
	p.mu.Unlock()
	return Stats{Accepted: p.stats.accepted.Load(), Refused: p.stats.refused.Load(),
		Resets: p.stats.resets.Load(), Timeouts: p.stats.timeouts.Load(),
		Dropped: p.stats.dropped.Load(), Live: live}
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	if p.closed || p.ln != nil {
		p.mu.Unlock()
		ln.Close()
		return
	}
	p.ln = ln
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				p.mu.Lock()
				mine := p.ln == ln
				p.mu.Unlock()
				if !mine {
					return // closed by Down or Close
				}
				time.Sleep(10 * time.Millisecond) // out of file descriptors: try again
				continue
			}
			p.stats.accepted.Add(1)
			p.wg.Add(1)
			go p.forward(ln, client)
		}
	}()
}

// forward dials the upstream for one accepted client and runs the
// connection until both directions end.
func (p *Proxy) forward(ln net.Listener, client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.upstream, dialTimeout)
	if err != nil {
		p.stats.refused.Add(1)
		client.Close()
		return
	}
	c := &conn{p: p, client: client, server: server, done: make(chan struct{})}
	p.mu.Lock()
	if p.ln != ln { // went down while dialling
		p.mu.Unlock()
		c.close(false)
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	c.run()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}
