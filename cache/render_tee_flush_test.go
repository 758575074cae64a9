package cache

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// flushRecorder counts the flushes that reach the client and tells of
// each on a channel.
type flushRecorder struct {
	*httptest.ResponseRecorder
	flushes atomic.Int64
	flushed chan struct{}
}

func (fr *flushRecorder) Flush() {
	fr.flushes.Add(1)
	select {
	case fr.flushed <- struct{}{}:
	default:
	}
}

// TestFlushHold: reverse_proxy flushes an answer without a Content-Length
// after every piece. An answer that is stored reaches its client in one
// piece when it is done at once; a slow one still gets what it has so far
// flushed once FlushHold is over; an answer that is only passed on
// (uncacheable) is flushed as the backend asks.
func TestFlushHold(t *testing.T) {
	for _, tt := range []struct {
		name        string
		header      http.Header
		stall       bool  // wait after the first piece until the client got a flush
		wantFlushes int64 // flushes that reached the client during the render; -1: at least one
		stored      bool
	}{
		{"stored, done at once", nil, false, 0, true},
		{"stored, slow", nil, true, -1, true},
		{"passed on, uncacheable", http.Header{"Set-Cookie": {"a=b"}}, false, 3, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestSite(t)
			fr := &flushRecorder{ResponseRecorder: httptest.NewRecorder(), flushed: make(chan struct{}, 8)}
			var during int64
			render := func(w http.ResponseWriter, r *http.Request) error {
				for k, v := range tt.header {
					w.Header()[k] = v
				}
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusOK)
				rc := http.NewResponseController(w)
				_ = rc.Flush() // the headers on their own, as reverse_proxy does
				_, _ = w.Write([]byte("<p>one</p>"))
				_ = rc.Flush()
				if tt.stall {
					select {
					case <-fr.flushed:
					case <-time.After(5 * time.Second):
						t.Error("what the slow render wrote did not reach its client")
					}
				}
				_, _ = w.Write([]byte("<p>two</p>"))
				_ = rc.Flush()
				during = fr.flushes.Load()
				return nil
			}
			req := httptest.NewRequest(http.MethodGet, "/flush.html", nil)
			if err := s.ServeHTTP(fr, req, render); err != nil {
				t.Fatal(err)
			}
			if body := fr.Body.String(); body != "<p>one</p><p>two</p>" {
				t.Fatalf("body %q", body)
			}
			if tt.wantFlushes >= 0 && during != tt.wantFlushes || tt.wantFlushes < 0 && during < 1 {
				t.Errorf("%d flushes reached the client during the render, want %d", during, tt.wantFlushes)
			}
			if s.exists("flush.html") != tt.stored {
				t.Errorf("stored %v, want %v", s.exists("flush.html"), tt.stored)
			}
			time.Sleep(2 * FlushHold) // no flush once the render is over
			if n := fr.flushes.Load(); n != during {
				t.Errorf("%d flushes after the render ended", n-during)
			}
		})
	}
}

// TestFlushHoldEndsWithAPanickingRender: a render that panics after a
// flush was held back leaves no timer that would write to the client
// after the handler is gone.
func TestFlushHoldEndsWithAPanickingRender(t *testing.T) {
	s, _ := newTestSite(t)
	fr := &flushRecorder{ResponseRecorder: httptest.NewRecorder(), flushed: make(chan struct{}, 8)}
	render := func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("<p>one</p>"))
		_ = http.NewResponseController(w).Flush()
		panic("the render broke")
	}
	func() {
		defer func() {
			if v := recover(); v != "the render broke" {
				t.Errorf("recovered %v", v)
			}
		}()
		_ = s.ServeHTTP(fr, httptest.NewRequest(http.MethodGet, "/panic.html", nil), render)
	}()
	time.Sleep(2 * FlushHold)
	if n := fr.flushes.Load(); n != 0 {
		t.Errorf("%d flushes reached the client after the render panicked", n)
	}
}
