package edgegroup

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
)

// maxServletBody bounds a POSTed form; the parameters are short.
const maxServletBody = 64 << 10

// ServletConfig configures a Servlet.
type ServletConfig struct {
	// Password is the servlet password ("" = none).
	Password string
	// Groups forwards flushes and starts catch-ups (nil: neither).
	Groups *Groups
	// Engine returns the cache engine; an error means the cache is
	// disabled (the data folder is unusable), which every request is
	// answered with.
	Engine func() (*cache.Engine, error)
	// ClientIP returns the client's address as the server determined it
	// (trusted proxies considered); "" or nil: the connection's address.
	// Refused requests are counted, and wrong passwords limited, per
	// client address.
	ClientIP func(*http.Request) string
	// Counts counts refused requests by reason (nil: the servlet's own).
	Counts *RefusalCounts
	// Logger gets the servlet's log (nil: none).
	Logger *zap.Logger
}

// Servlet is the cache servlet (docs/cache-servlet.md): explicit flushes
// of cache keys and the synchronisation of flushes between the edges of a
// group. It answers every request. Parameters come from the query string
// or, for POST, from a form body.
type Servlet struct {
	cfg ServletConfig
	log *zap.Logger

	disabledLogged atomic.Bool // "cache disabled" is logged once until it works again
	// Refused requests are logged once per client address and minute,
	// with a count: wrong passwords at warn, other refusals at info. The
	// tracker of wrong passwords also limits them (ratelimit.go).
	refusedPassword, refusedOther *refusalLog
	held                          heldCount // requests held by the limit
	counts                        *RefusalCounts
}

// NewServlet returns the servlet; Close stops its timers.
func NewServlet(cfg ServletConfig) *Servlet {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	counts := cfg.Counts
	if counts == nil {
		counts = new(RefusalCounts)
	}
	return &Servlet{cfg: cfg, log: log,
		refusedPassword: newRefusalLog(log, zap.WarnLevel),
		refusedOther:    newRefusalLog(log, zap.InfoLevel),
		held:            heldCount{max: defaultLimitPolicy.maxHeld},
		counts:          counts,
	}
}

// Close stops the timers of the refusal logs; counts still pending are
// not logged.
func (s *Servlet) Close() {
	s.refusedPassword.close()
	s.refusedOther.close()
}

// ServeHTTP answers a flush or a sync.
func (s *Servlet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		s.counts.Other.Add(1)
		w.Header().Set("Allow", "GET, POST")
		answer(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxServletBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.counts.Other.Add(1)
			answer(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		// A malformed pair is dropped; what parsed is used, as a servlet
		// container would.
	}
	eng, err := s.cfg.Engine()
	if err != nil {
		if s.disabledLogged.CompareAndSwap(false, true) {
			s.log.Error("cache servlet: the cache is disabled (data folder unusable)", zap.Error(err))
		}
		answer(w, http.StatusInternalServerError, msgDisabled)
		return
	}
	s.disabledLogged.Store(false)
	// The password of a request with an action is checked under the limit
	// of its address; the action is checked first, as the answers' order
	// has it.
	var addr string
	var adm admission
	limited := s.cfg.Password != "" && validAction(r.Form.Get(paramAction))
	if limited {
		addr = s.clientAddr(r)
		var ok bool
		if adm, ok = s.admit(w, r, addr); !ok {
			return
		}
	}
	req, msg := parseServletRequest(r.Form, s.cfg.Password, time.Now())
	passwordRefused := msg == msgInvalidPassword || msg == msgPasswordRequired
	if limited {
		s.refusedPassword.t.done(addr, adm, true, passwordRefused)
	}
	if msg != "" {
		refusals := s.refusedOther
		if passwordRefused {
			refusals = s.refusedPassword
			s.counts.Password.Add(1)
		} else {
			s.counts.Other.Add(1)
		}
		if addr == "" {
			addr = s.clientAddr(r)
		}
		refusals.refused(addr, zap.String("reason", msg), zap.String("action", req.Action))
		answer(w, http.StatusInternalServerError, msg)
		return
	}
	groups := s.cfg.Groups
	switch req.Action {
	case actionFlush:
		var peers []string
		if req.Forward && groups != nil {
			peers = groups.PeersOf(req.Group)
		}
		applied, err := eng.Flush(req.Key, req.Group, req.Time, peers)
		if err != nil {
			s.log.Error("cache flush failed", zap.String("key", req.Key), zap.String("group", req.Group), zap.Error(err))
			answer(w, http.StatusInternalServerError, msgFailed)
			return
		}
		if applied && len(peers) > 0 {
			groups.Kick()
		}
		s.log.Info("cache flush", zap.String("key", req.Key), zap.String("group", req.Group),
			zap.Int64("timestamp", req.Time), zap.Bool("applied", applied), zap.Bool("forward", req.Forward),
			zap.Int("peers", len(peers)), zap.String("remote", r.RemoteAddr))
		w.WriteHeader(http.StatusOK)
	case actionSync:
		flushes, err := eng.FlushesSince(req.Group, req.Since)
		if err != nil {
			s.log.Error("reading the flush log failed", zap.String("group", req.Group), zap.Error(err))
			answer(w, http.StatusInternalServerError, msgFailed)
			return
		}
		if req.Forward && groups != nil {
			groups.TriggerSync(req.Group)
		}
		var body []byte
		for _, f := range flushes {
			body = appendSyncLine(body, f)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}
}

// admit applies the limit of wrong passwords to a request of addr: it
// answers 429 (ok false), or holds the request for the address's delay
// and lets it go on (ok true) — unless its client goes meanwhile (ok
// false, nothing answered). With ok true the caller reports the check's
// end to the tracker.
func (s *Servlet) admit(w http.ResponseWriter, r *http.Request, addr string) (adm admission, ok bool) {
	t := s.refusedPassword.t
	adm = t.admit(addr)
	if adm.retryAfter > 0 {
		s.tooMany(w, r, addr, adm.retryAfter)
		return adm, false
	}
	if adm.delay <= 0 {
		return adm, true
	}
	if !s.held.acquire() {
		t.done(addr, adm, false, false)
		s.tooMany(w, r, addr, time.Second)
		return adm, false
	}
	defer s.held.release()
	timer := time.NewTimer(adm.delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return adm, true
	case <-r.Context().Done():
		t.done(addr, adm, false, false)
		return adm, false
	}
}

// tooMany answers 429: too many failed passwords from the address, or too
// many requests held.
func (s *Servlet) tooMany(w http.ResponseWriter, r *http.Request, addr string, retryAfter time.Duration) {
	s.counts.RateLimited.Add(1)
	s.refusedPassword.refused(addr, zap.String("reason", msgTooManyFailures), zap.String("action", r.Form.Get(paramAction)))
	w.Header().Set("Retry-After", strconv.FormatInt(int64((retryAfter+time.Second-1)/time.Second), 10))
	answer(w, http.StatusTooManyRequests, msgTooManyFailures)
}

// clientAddr is the address a client's refused requests are counted under.
func (s *Servlet) clientAddr(r *http.Request) string {
	var ip string
	if s.cfg.ClientIP != nil {
		ip = s.cfg.ClientIP(r)
	}
	return clientAddr(r, ip)
}

// answer writes a plain-text answer.
func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(strings.TrimSpace(body)))
}

var _ http.Handler = (*Servlet)(nil)
