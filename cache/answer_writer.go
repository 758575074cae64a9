package cache

import (
	"io"
	"net/http"
)

// answerWriter is the client's writer on every way but a hit: misses,
// renders, ".old" copies, answers passed on from the backend. When the
// header is written it strips every Delivery-* header the backend sent
// and sets the edge's own (Delivery-Stale, Cache-Status); when the request
// is over it reports the answer's status (Site.OnCacheStatus). Hits do
// without it: they never carry a backend's header, and set their status
// directly (setStatus) without allocating.
type answerWriter struct {
	http.ResponseWriter
	s           *Site
	r           *http.Request
	cs          CacheStatus
	wroteHeader bool
}

func (s *Site) newAnswer(w http.ResponseWriter, r *http.Request, c CacheStatus) *answerWriter {
	return &answerWriter{ResponseWriter: w, s: s, r: r, cs: c}
}

func (aw *answerWriter) WriteHeader(code int) {
	if code < 200 {
		stripDeliveryHeaders(aw.Header())
		aw.ResponseWriter.WriteHeader(code) // 1xx: the final answer follows
		return
	}
	if aw.wroteHeader {
		return
	}
	aw.wroteHeader = true
	aw.s.applyStatus(aw.Header(), aw.cs)
	aw.ResponseWriter.WriteHeader(code)
}

func (aw *answerWriter) Write(p []byte) (int, error) {
	if !aw.wroteHeader {
		aw.WriteHeader(http.StatusOK)
	}
	return aw.ResponseWriter.Write(p)
}

// ReadFrom keeps the file handed over by serveDisk an *os.File for the
// writer underneath, which turns it into sendfile.
func (aw *answerWriter) ReadFrom(src io.Reader) (int64, error) {
	if !aw.wroteHeader {
		aw.WriteHeader(http.StatusOK)
	}
	if rf, ok := aw.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(aw.ResponseWriter, src)
}

// FlushError passes flushes on (reverse_proxy flushes streamed answers),
// after the header, which a flush would otherwise send unchecked.
func (aw *answerWriter) FlushError() error {
	if !aw.wroteHeader {
		aw.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(aw.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the writer underneath (an
// upgraded connection of a request that is not cached is hijacked there).
func (aw *answerWriter) Unwrap() http.ResponseWriter { return aw.ResponseWriter }

// finish ends the answer: an error is answered by the caller (Caddy) after
// this, with the header prepared here; the status is reported.
func (aw *answerWriter) finish() {
	if !aw.wroteHeader {
		aw.s.applyStatus(aw.Header(), aw.cs)
	}
	aw.s.report(aw.r, aw.cs)
}
