package cache

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/ssi"
)

// Includes that are misses: rendered through the cache's miss path, each
// once, into the answer. Their renders start ahead of the writer, so the
// missing parts of a page render in parallel.

// writeLive renders a missing include through the cache's miss path (one
// coalesced render, stored and registered on its own) straight into w.
func (a *ssiAssembly) writeLive(w io.Writer, l *ssiLive) {
	if a.stopped() {
		return
	}
	if bw, ok := w.(*bufio.Writer); ok {
		if err := bw.Flush(); err != nil { // what is ready goes out while the part renders
			a.err = errClientWrite
			return
		}
	}
	cw := &ssiCapture{a: a, out: w}
	err := a.missInto(cw, l)
	if a.err != nil || err == nil && (cw.ok() || cw.status == 0) {
		return
	}
	status := cw.status
	if err != nil {
		status = statusOf(err)
	}
	if status == 0 {
		status = http.StatusBadGateway
	}
	a.s.Store.log.Debug("SSI include failed", zap.String("url", l.t.Key), zap.Int("status", status), zap.Error(err))
	if !cw.wrote {
		a.write(w, []byte(ssi.Comment(l.t.Key, "failed: "+strconv.Itoa(status))))
	}
}

func (a *ssiAssembly) missInto(cw *ssiCapture, l *ssiLive) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
				panic(v)
			}
			err = &StatusError{Code: http.StatusBadGateway, Err: errors.New("render broke off")}
		}
	}()
	r := a.subRequest(l.parent, l.u)
	if l.flight != nil {
		if done, err := a.awaitAhead(cw, r, l); done {
			return err
		}
	}
	return a.s.miss(cw, r, l.t, a.render)
}

// ssiAhead is how many missing parts of one answer render at the same
// time, ahead of the writer that needs them.
const ssiAhead = 8

// prefetch starts the render of a missing part ahead of the writer, as a
// flight of the cache like any miss (or finds the flight that renders it
// already), so the missing parts of a page render in parallel and each
// once. A part that turned out not to be cacheable is not rendered ahead
// for a minute: the writer renders it itself, into the answer.
func (a *ssiAssembly) prefetch(r *http.Request, t Target) *flight {
	s := a.s
	if until, ok := s.SSI.uncacheable.Load(t.File); ok && time.Now().Before(until.(time.Time)) {
		return nil
	}
	f, leader := s.Store.flights.join(t.File)
	if !leader {
		return f
	}
	if s.Store.exists(t.File) {
		// Rendered and stored since it was looked up: nothing to do.
		s.Store.flights.finish(t.File, f, outcomeStored, http.StatusOK)
		return f
	}
	if a.ahead == nil {
		a.ahead = make(chan struct{}, ssiAhead)
	}
	ahead, render := a.ahead, a.render
	rr := s.detachedRequest(r)
	s.Store.goBackground(func() {
		ahead <- struct{}{}
		defer func() { <-ahead }()
		_ = s.lead(nil, rr, t, f, render, true)
		if f.outcome == outcomePassthrough {
			if s.SSI.uncacheableN.Add(1) > 10000 {
				s.SSI.uncacheable.Range(func(k, _ any) bool { s.SSI.uncacheable.Delete(k); return true })
				s.SSI.uncacheableN.Store(0)
			}
			s.SSI.uncacheable.Store(t.File, time.Now().Add(time.Minute))
		}
	})
	return f
}

// awaitAhead waits for the render started ahead and answers from it as
// the cache's miss path answers a request that waited for a render; done
// is false when the part must go through the miss path after all.
func (a *ssiAssembly) awaitAhead(cw *ssiCapture, r *http.Request, l *ssiLive) (done bool, err error) {
	f := l.flight
	select {
	case <-f.done:
	case <-r.Context().Done():
		return true, r.Context().Err()
	}
	switch f.outcome {
	case outcomeStored:
		file, info, epoch, ok := a.s.Store.openServe(l.t.File)
		if !ok {
			return false, nil // invalidated again at once
		}
		defer file.Close()
		a.s.serveFile(cw, r, file, info, epoch, l.t, statusCollapsed, a.render)
		return true, nil
	case outcomeGone:
		return true, &StatusError{Code: f.status, Err: errors.New("gone at the render backend")}
	case outcomeFailed, outcomeRejected:
		// A render that failed, or found no render slot in time: the
		// part's ".old" copy, else the "failed" comment.
		if a.s.serveOld(cw, r, l.t, a.render, statusStaleBusy) {
			return true, nil
		}
		return true, &StatusError{Code: f.status, Err: errors.New("render failed")}
	}
	return false, nil // not cacheable, or outdated: rendered for this answer
}

// ssiCapture is the response writer of an include rendered live: headers
// are dropped, a successful body goes into the assembly.
type ssiCapture struct {
	a      *ssiAssembly
	out    io.Writer
	header http.Header
	status int
	wrote  bool
}

func (c *ssiCapture) Header() http.Header {
	if c.header == nil {
		c.header = http.Header{}
	}
	return c.header
}

func (c *ssiCapture) WriteHeader(code int) {
	if code >= 200 && c.status == 0 {
		c.status = code
	}
}

func (c *ssiCapture) ok() bool { return c.status >= 200 && c.status < 300 }

func (c *ssiCapture) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if !c.ok() {
		return len(p), nil
	}
	c.wrote = true
	c.a.write(c.out, p)
	if c.a.stopped() {
		return 0, c.a.err
	}
	return len(p), nil
}
