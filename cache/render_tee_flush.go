package cache

import (
	"net/http"
	"sync"
	"time"
)

// FlushHold is how long the flushes of an answer that is being stored are
// held back after its headers. reverse_proxy flushes an answer without a
// Content-Length after every piece it copies, and its headers on their
// own before that: a write to the client's socket each, where one at the
// end would do. A render that is done within FlushHold reaches its
// client in one piece, as nginx's proxy_buffering sends it; past
// FlushHold what was held is flushed and every later flush is passed on,
// so a slow render still streams to its client.
const FlushHold = 50 * time.Millisecond

// flushHold passes a stored render's flushes on to its client, or holds
// them back (see FlushHold). Its lock keeps the client's writer to one
// goroutine at a time: its timer flushes from a goroutine of its own.
type flushHold struct {
	mu      sync.Mutex
	headers time.Time   // when the answer's headers were written
	timer   *time.Timer // flushes what is held when the hold is over
	held    bool        // a flush is waiting for the hold to end
	over    bool        // the render is over: the client is the handler's again
}

// Flush passes flushes on to a streaming client; those of an answer being
// stored are held back for a moment (FlushHold).
func (tw *teeWriter) Flush() {
	fh := &tw.flushes
	fh.mu.Lock()
	defer fh.mu.Unlock()
	if !tw.wroteClient || tw.clientDead || fh.over {
		return
	}
	if tw.tmp != nil {
		if wait := FlushHold - time.Since(fh.headers); wait > 0 {
			fh.held = true
			if fh.timer == nil {
				fh.timer = time.AfterFunc(wait, tw.flushHeld)
			}
			return
		}
	}
	fh.held = false
	_ = http.NewResponseController(tw.client).Flush()
}

// flushHeld flushes what was held back once the hold is over, unless the
// render ended first.
func (tw *teeWriter) flushHeld() {
	fh := &tw.flushes
	fh.mu.Lock()
	defer fh.mu.Unlock()
	if !fh.held || fh.over || tw.clientDead {
		return
	}
	fh.held = false
	_ = http.NewResponseController(tw.client).Flush()
}

// writeClient passes p on to the client, under the lock the hold's timer
// takes too.
func (tw *teeWriter) writeClient(p []byte) {
	tw.flushes.mu.Lock()
	defer tw.flushes.mu.Unlock()
	if _, err := tw.client.Write(p); err != nil {
		tw.clientDead = true // keep rendering for the file and the others
	}
}

// endFlushes stops the hold's timer when the render is over: from then on
// only the handler's goroutine writes to the client (what is held goes
// out as the handler's answer ends).
func (tw *teeWriter) endFlushes() {
	fh := &tw.flushes
	fh.mu.Lock()
	defer fh.mu.Unlock()
	fh.over = true
	if fh.timer != nil {
		fh.timer.Stop()
	}
}
