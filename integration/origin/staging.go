// # Staging API
//
// [NewStaging] serves the staging API of docs/staging-api.md on one handler, played by
// N replicas behind a round-robin balancer (per request, or per connection
// with StagingConfig.PerConnection). Every request needs
// "Authorization: Bearer <token>" (StagingConfig.Tokens, default
// [DemoToken]; otherwise 401). A replica whose applied source time is older
// than the request's Delivery-Source-Time header answers 503
// {"error":"NotUpToDate","sourceTime":<its own>}. Every answer carries the
// replica's source time in Delivery-Source-Time.
//
//	GET /api/v1/events?since=<ms>&limit=<n>[&wait=<seconds>]
//	    {"events":[…],"sourceTime":<replica's>}; limit capped at 100; with
//	    wait the request is held until the replica has an event after since
//	    (unless StagingConfig.NoLongPoll)
//	GET /api/v1/documents/<id or uuid>          the published document, else 404
//	GET /api/v1/documents/<id or uuid>/binary   the original bytes of an image
//	GET /api/v1/imagevariants                   the variant definitions
//
// # Admin API
//
// [AdminHandler] (mounted by Staging under /admin/ of the same port) changes
// the content. It has no authentication: it is for tests and demos on
// loopback. Bodies and answers are JSON; changes answer with the event they
// caused. Document IDs with a slash ("/politik") are sent path-escaped
// ("%2Fpolitik").
//
//	POST   /admin/documents                  create or replace and publish a document:
//	       {"id":"story1","uuid":"…","nodeType":"story","state":"published",
//	        "properties":{…},"changedProperties":["title"]}
//	       uuid defaults to the existing one or DemoUUID(id), nodeType to the
//	       existing one or "story", state to "published"; without
//	       changedProperties the event says "everything changed"
//	GET    /admin/documents                  every document's newest version (summary)
//	GET    /admin/documents/<id>             the newest version, whatever its state
//	PATCH  /admin/documents/<id>             set properties {"topline":"…"} and publish;
//	                                         the event's changedProperties are the keys sent
//	POST   /admin/documents/<id>/publish     publish again (every property changed)
//	POST   /admin/documents/<id>/offline     take offline
//	DELETE /admin/documents/<id>             delete
//	POST   /admin/documents/<id>/yellow      record a change of the yellow data
//	PUT    /admin/documents/<id>/binary      set an image's original bytes (raw body) and
//	                                         publish a new version (?event=false: bytes only)
//	GET    /admin/imagevariants              the variant definitions
//	PUT    /admin/imagevariants              replace them: [{"name":"16x9-768","aspect":"16x9","width":768}]
//	GET    /admin/events?since=<ms>&limit=<n>  the primary's event log (limit default 1000)
//	POST   /admin/events                     append raw events, any kind and state, no document
//	                                         change: [{"kind":"folder","id":"story1","state":"saved"}]
//	GET    /admin/stats                      {"lastSourceTime","events","documents","staging":{…}}
//	PUT    /admin/staging/replicas/<i>       {"lag":"2s","down":true} (either field optional)
package origin

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DemoToken is the access token the staging API accepts when no tokens are
// configured (the one in Caddyfile.example).
const DemoToken = "00000000-0000-0000-0000-000000000000"

// HeaderSourceTime carries the client's newest source time on requests and
// the answering replica's source time on answers.
const HeaderSourceTime = "Delivery-Source-Time"

// StagingConfig configures the staging API of the sample origin.
type StagingConfig struct {
	// Replicas is the number of staging servers behind the balancer
	// (default 1).
	Replicas int
	// Lag is how far every replica is behind the primary: a replica at
	// wall time T has applied the events with source time <= T-Lag. Source
	// times are wall-clock milliseconds, except when more than one event a
	// millisecond is written, when they run a little ahead of the clock.
	Lag time.Duration
	// Lags sets the lag per replica (index i for replica i) and overrides
	// Lag for the replicas it covers.
	Lags []time.Duration
	// Tokens are the accepted access tokens; empty accepts DemoToken only.
	Tokens []string
	// NoLongPoll makes the events endpoint ignore wait and answer at once.
	NoLongPoll bool
	// MaxWait caps the wait of a long poll (default 60s).
	MaxWait time.Duration
	// MaxLimit caps the events per answer (default 100).
	MaxLimit int
	// PerConnection balances per TCP connection (like an L4 balancer)
	// instead of per request. A new connection goes to the next replica.
	PerConnection bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Staging serves the staging API of docs/staging-api.md from a Content store: N
// replicas with a configurable lag behind a round-robin balancer, all on
// one http.Handler. It also mounts the admin API under /admin/.
type Staging struct {
	c        *Content
	cfg      StagingConfig
	replicas []*stagingReplica
	next     atomic.Uint64
	api      *http.ServeMux
	admin    http.Handler

	connMu sync.Mutex
	conns  map[string]*stagingConnPin // RemoteAddr -> replica (PerConnection)

	closed    chan struct{}
	closeOnce sync.Once
}

type stagingReplica struct {
	index        int
	lag          atomic.Int64 // ns
	down         atomic.Bool
	requests     atomic.Int64
	notUpToDate  atomic.Int64
	unauthorized atomic.Int64
	longPolls    atomic.Int64
	holding      atomic.Int64 // long polls being held now
}

type stagingConnPin struct {
	replica  int
	lastSeen time.Time
}

type stagingReplicaKey struct{}

// NewStaging makes the staging API over c.
func NewStaging(c *Content, cfg StagingConfig) *Staging {
	if cfg.Replicas <= 0 {
		cfg.Replicas = max(1, len(cfg.Lags))
	}
	if len(cfg.Tokens) == 0 {
		cfg.Tokens = []string{DemoToken}
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = time.Minute
	}
	if cfg.MaxLimit <= 0 {
		cfg.MaxLimit = 100
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Staging{c: c, cfg: cfg, conns: map[string]*stagingConnPin{}, closed: make(chan struct{})}
	for i := range cfg.Replicas {
		r := &stagingReplica{index: i}
		lag := cfg.Lag
		if i < len(cfg.Lags) {
			lag = cfg.Lags[i]
		}
		r.lag.Store(int64(lag))
		s.replicas = append(s.replicas, r)
	}
	s.api = http.NewServeMux()
	s.api.HandleFunc("GET /api/v1/events", s.events)
	s.api.HandleFunc("GET /api/v1/documents/{id}", s.document)
	s.api.HandleFunc("GET /api/v1/documents/{id}/binary", s.binary)
	s.api.HandleFunc("GET /api/v1/imagevariants", s.variants)
	s.api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			stagingError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "the staging API is read-only")
			return
		}
		stagingError(w, http.StatusNotFound, "NotFound", "no such endpoint: "+r.URL.Path)
	})
	s.admin = newAdminAPI(c, s)
	return s
}

// Close makes held long polls return. The handler keeps answering.
func (s *Staging) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// ServeHTTP picks a replica and lets it answer; /admin/ goes to the admin
// API.
func (s *Staging) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/admin" || strings.HasPrefix(r.URL.Path, "/admin/") {
		s.admin.ServeHTTP(w, r)
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		stagingError(w, http.StatusNotFound, "NotFound", "no such endpoint: "+r.URL.Path)
		return
	}
	rep := s.pick(r)
	rep.requests.Add(1)
	if rep.down.Load() {
		// What a balancer answers when the server behind it fails.
		stagingError(w, http.StatusBadGateway, "BadGateway", fmt.Sprintf("replica %d is down", rep.index))
		return
	}
	if !s.authorized(r) {
		rep.unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="staging"`)
		stagingError(w, http.StatusUnauthorized, "Unauthorized", "missing or unknown access token")
		return
	}
	applied := s.appliedOf(rep)
	if v := r.Header.Get(HeaderSourceTime); v != "" {
		need, err := strconv.ParseInt(v, 10, 64)
		if err != nil || need < 0 {
			stagingError(w, http.StatusBadRequest, "BadRequest", HeaderSourceTime+" must be a source time in ms")
			return
		}
		if need > applied {
			rep.notUpToDate.Add(1)
			w.Header().Set(HeaderSourceTime, strconv.FormatInt(applied, 10))
			stagingJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "NotUpToDate", "sourceTime": applied})
			return
		}
	}
	w.Header().Set(HeaderSourceTime, strconv.FormatInt(applied, 10))
	s.api.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stagingReplicaKey{}, rep)))
}

func (s *Staging) pick(r *http.Request) *stagingReplica {
	n := uint64(len(s.replicas))
	if !s.cfg.PerConnection {
		return s.replicas[(s.next.Add(1)-1)%n]
	}
	now := time.Now()
	s.connMu.Lock()
	defer s.connMu.Unlock()
	pin, ok := s.conns[r.RemoteAddr]
	if !ok {
		if len(s.conns) >= 4096 {
			for k, p := range s.conns {
				if now.Sub(p.lastSeen) > 2*time.Minute {
					delete(s.conns, k)
				}
			}
		}
		pin = &stagingConnPin{replica: int((s.next.Add(1) - 1) % n)}
		s.conns[r.RemoteAddr] = pin
	}
	pin.lastSeen = now
	return s.replicas[pin.replica]
}

func (s *Staging) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	tok = strings.TrimSpace(tok)
	good := 0
	for _, t := range s.cfg.Tokens {
		good |= subtle.ConstantTimeCompare([]byte(tok), []byte(t))
	}
	return good == 1
}

// appliedOf is the source time up to which the replica has applied the log.
func (s *Staging) appliedOf(rep *stagingReplica) int64 {
	lag := time.Duration(rep.lag.Load())
	if lag <= 0 {
		return s.c.LastSourceTime()
	}
	return s.c.SourceTimeAsOf(s.cfg.Now().Add(-lag).UnixMilli())
}

// SetLag changes the lag of replica i.
func (s *Staging) SetLag(i int, lag time.Duration) error {
	if i < 0 || i >= len(s.replicas) {
		return fmt.Errorf("no replica %d (have %d)", i, len(s.replicas))
	}
	s.replicas[i].lag.Store(int64(lag))
	return nil
}

// SetDown makes replica i fail (the balancer answers 502 for it) or
// recover.
func (s *Staging) SetDown(i int, down bool) error {
	if i < 0 || i >= len(s.replicas) {
		return fmt.Errorf("no replica %d (have %d)", i, len(s.replicas))
	}
	s.replicas[i].down.Store(down)
	return nil
}

// ReplicaStats are the counters of one replica.
type ReplicaStats struct {
	Index        int   `json:"index"`
	LagMillis    int64 `json:"lagMillis"`
	Down         bool  `json:"down"`
	SourceTime   int64 `json:"sourceTime"` // applied up to
	Requests     int64 `json:"requests"`
	NotUpToDate  int64 `json:"notUpToDate"`
	Unauthorized int64 `json:"unauthorized"`
	LongPolls    int64 `json:"longPolls"` // requests that were held
	Holding      int64 `json:"holding"`   // long polls being held now
}

// StagingStats are the counters of the staging API, per replica and
// summed up.
type StagingStats struct {
	Replicas     []ReplicaStats `json:"replicas"`
	Requests     int64          `json:"requests"`
	NotUpToDate  int64          `json:"notUpToDate"`
	Unauthorized int64          `json:"unauthorized"`
	LongPolls    int64          `json:"longPolls"`
	Holding      int64          `json:"holding"`
}

// Stats returns the counters.
func (s *Staging) Stats() StagingStats {
	var st StagingStats
	for _, r := range s.replicas {
		rs := ReplicaStats{
			Index:        r.index,
			LagMillis:    time.Duration(r.lag.Load()).Milliseconds(),
			Down:         r.down.Load(),
			SourceTime:   s.appliedOf(r),
			Requests:     r.requests.Load(),
			NotUpToDate:  r.notUpToDate.Load(),
			Unauthorized: r.unauthorized.Load(),
			LongPolls:    r.longPolls.Load(),
			Holding:      r.holding.Load(),
		}
		st.Replicas = append(st.Replicas, rs)
		st.Requests += rs.Requests
		st.NotUpToDate += rs.NotUpToDate
		st.Unauthorized += rs.Unauthorized
		st.LongPolls += rs.LongPolls
		st.Holding += rs.Holding
	}
	return st
}
