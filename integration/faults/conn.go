package faults

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// readSize is the largest chunk one read takes from a side.
const readSize = 32 << 10

// queued bounds the chunks read ahead of the writer of one direction; a
// slow direction (bandwidth, latency) holds the reader and so, through
// TCP, the sender.
const queued = 16

// conn is one client connection and its connection to the upstream.
type conn struct {
	p              *Proxy
	client, server net.Conn
	done           chan struct{} // closed by close
	once           sync.Once
}

type chunk struct {
	data     []byte
	at       time.Time     // when it was read
	delay    time.Duration // latency drawn for it …
	delayGen uint64        // … under this toxic set (0: none drawn)
}

// run forwards both directions until both ended, then closes both sides.
func (c *conn) run() {
	var wg sync.WaitGroup
	wg.Go(func() { c.pump(Upstream, c.client, c.server) })
	wg.Go(func() { c.pump(Downstream, c.server, c.client) })
	wg.Wait()
	c.close(false)
}

// close closes both sides; with reset they get a TCP RST and unsent data
// is dropped.
func (c *conn) close(reset bool) {
	c.once.Do(func() {
		if reset {
			for _, s := range []net.Conn{c.client, c.server} {
				if tc, ok := s.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
			}
		}
		c.client.Close()
		c.server.Close()
		close(c.done)
	})
}

// pump forwards one direction: a reader fills a short queue, the writer
// applies the toxics to each chunk.
func (c *conn) pump(dir Direction, src, dst net.Conn) {
	in := make(chan chunk, queued)
	var readErr error
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(in)
		for {
			buf := make([]byte, readSize)
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case in <- chunk{data: buf[:n], at: time.Now()}:
				case <-c.done:
					return
				}
			}
			if err != nil {
				readErr = err // read by the writer after in is closed
				return
			}
		}
	}()
	c.write(dir, in, &readErr, dst)
	// The writer returned because the input ended, or the connection is
	// closed (by it or by another), which ends the read.
	<-readDone
}

// meeting is what a toxic did to one direction of one connection.
type meeting struct {
	applies bool      // drawn from the toxicity when the toxic met the connection
	since   time.Time // when it met it
	resetAt time.Time // reset_peer: when data first met it, plus its delay
	dropped bool      // timeout: data was dropped
}

// effect is the sum of the toxics that apply to a direction now.
type effect struct {
	blackholes []*meeting
	closeAt    time.Time // earliest end of a timeout toxic with a time
	reset      *active
	latency    []*active
	rate       int64 // smallest bandwidth, 0 for none
	slicer     *active
}

type direction struct {
	dir Direction
	met map[uint64]*meeting
}

// sync notes the toxics that are new to this direction and forgets the
// removed ones; lost reports a removed blackhole that dropped data here.
func (d *direction) sync(set []*active, now time.Time) (lost bool) {
	present := make(map[uint64]bool, len(set))
	for _, a := range set {
		if a.dir != d.dir {
			continue
		}
		present[a.id] = true
		if d.met[a.id] == nil {
			d.met[a.id] = &meeting{applies: rand.Float64() < a.share(), since: now}
		}
	}
	for id, m := range d.met {
		if !present[id] {
			lost = lost || m.dropped
			delete(d.met, id)
		}
	}
	return lost
}

func (d *direction) effect(set []*active) effect {
	var e effect
	for _, a := range set {
		m := d.met[a.id]
		if a.dir != d.dir || m == nil || !m.applies {
			continue
		}
		switch a.kind {
		case kindTimeout:
			e.blackholes = append(e.blackholes, m)
			if end := m.since.Add(a.after); a.after > 0 && (e.closeAt.IsZero() || end.Before(e.closeAt)) {
				e.closeAt = end
			}
		case kindResetPeer:
			if e.reset == nil {
				e.reset = a
			}
		case kindLatency:
			e.latency = append(e.latency, a)
		case kindBandwidth:
			if e.rate == 0 || a.rate < e.rate {
				e.rate = a.rate
			}
		case kindSlicer:
			if e.slicer == nil {
				e.slicer = a
			}
		}
	}
	return e
}

// write sends what arrives on in to dst through the toxics of dir; it
// re-reads the toxic set before every step and whenever it changes.
func (c *conn) write(dir Direction, in <-chan chunk, readErr *error, dst net.Conn) {
	d := &direction{dir: dir, met: map[uint64]*meeting{}}
	var cur *chunk
	for {
		set, gen, changed := c.p.current()
		now := time.Now()
		lost := d.sync(set, now)
		e := d.effect(set)
		if lost || (!e.closeAt.IsZero() && !now.Before(e.closeAt)) {
			c.p.stats.timeouts.Add(1)
			c.close(false)
			return
		}
		var closeC <-chan time.Time
		if !e.closeAt.IsZero() {
			closeC = time.After(e.closeAt.Sub(now))
		}
		if cur == nil {
			select {
			case ch, ok := <-in:
				if !ok {
					c.endOfInput(dst, *readErr)
					return
				}
				cur = &ch
			case <-changed:
			case <-closeC:
			case <-c.done:
				return
			}
			continue
		}
		switch {
		case len(e.blackholes) > 0:
			for _, m := range e.blackholes {
				m.dropped = true
			}
			c.p.stats.dropped.Add(int64(len(cur.data)))
			cur = nil
			continue
		case e.reset != nil:
			m := d.met[e.reset.id]
			if m.resetAt.IsZero() {
				m.resetAt = now.Add(e.reset.after)
			}
			if wait := m.resetAt.Sub(now); wait > 0 {
				if !c.wait(wait, changed, closeC) {
					return
				}
				continue
			}
			c.p.stats.resets.Add(1)
			c.close(true)
			return
		case len(e.latency) > 0:
			if cur.delayGen != gen {
				cur.delay, cur.delayGen = drawLatency(e.latency), gen
			}
			if wait := cur.at.Add(cur.delay).Sub(now); wait > 0 {
				if !c.wait(wait, changed, closeC) {
					return
				}
				continue
			}
		}
		n, pause := len(cur.data), time.Duration(0)
		if s := e.slicer; s != nil {
			n = min(n, s.avgSize+rand.IntN(2*s.vary+1)-s.vary)
			pause = s.delay
		}
		if e.rate > 0 {
			n = min(n, int(max(1, e.rate/10))) // about ten writes a second
			pause += time.Duration(int64(n) * int64(time.Second) / e.rate)
		}
		if _, err := dst.Write(cur.data[:n]); err != nil {
			c.close(false)
			return
		}
		if cur.data = cur.data[n:]; len(cur.data) == 0 {
			cur = nil
		}
		// A slicer pauses between the pieces of a chunk, a bandwidth
		// limit after every write.
		if pause > 0 && (cur != nil || e.rate > 0) && !c.wait(pause, changed, closeC) {
			return
		}
	}
}

// wait sleeps for d, or until the toxics change or a timeout toxic's time
// is up; false when the connection was closed meanwhile.
func (c *conn) wait(d time.Duration, changed <-chan struct{}, closeC <-chan time.Time) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-changed:
	case <-closeC:
	case <-c.done:
		return false
	}
	return true
}

// endOfInput passes on the end of one direction: a clean end as a
// half-close, so the other direction can still finish; an error closes
// the connection.
func (c *conn) endOfInput(dst net.Conn, err error) {
	if err != nil && !errors.Is(err, io.EOF) {
		c.close(false)
		return
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		if tc.CloseWrite() == nil {
			return
		}
	}
	c.close(false)
}

func drawLatency(toxics []*active) time.Duration {
	var sum time.Duration
	for _, a := range toxics {
		sum += a.latency
		if a.jitter > 0 {
			sum += time.Duration(rand.Int64N(int64(2*a.jitter)+1)) - a.jitter
		}
	}
	return sum
}
