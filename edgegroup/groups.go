package edgegroup

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
)

// DefaultServletPath is where a peer's cache servlet is when its URL has
// no path.
const DefaultServletPath = "/system/servlet/cache.servlet"

// Defaults and limits of the groups.
const (
	// DefaultFlushLogRetention is how long the flush log keeps entries
	// for catch-up syncs unless Config says otherwise.
	DefaultFlushLogRetention = 7 * 24 * time.Hour
	// maxOutboxAge: a flush not delivered to a peer within this time (or
	// the flush log retention, if shorter) is dropped from the outbox; the
	// peer's start-up sync still finds it in the flush log.
	maxOutboxAge = 24 * time.Hour
	// syncOverlap is subtracted from a peer's last seen flush time when
	// asking it for a sync, for flushes that reached it late or stamped by
	// a clock a little behind; applying them again is a no-op.
	syncOverlap = time.Minute
	// pruneInterval is how often the flush log and the outbox are pruned.
	pruneInterval = time.Hour
	pruneBatch    = 1000
	// outboxBatch is how many flushes a peer's worker takes at once, and
	// forwardParallel how many of them are in flight together.
	outboxBatch     = 64
	forwardParallel = 8
	// outboxIdle is how often an idle worker looks at the outbox without
	// being woken (a flush taken by another config during a reload).
	outboxIdle = time.Second
	// Retry backoff (doubling from the first, up to the cap, with jitter).
	retryFirst = 250 * time.Millisecond
	retryCap   = 15 * time.Second
	// peerTimeout bounds one request to a peer; maxSyncAnswer its answer.
	peerTimeout   = 10 * time.Second
	maxSyncAnswer = 256 << 20
)

// outboxLease keeps the workers of two overlapping configs (a reload)
// from delivering the same outbox.
const outboxLease = "flush-outbox"

// Config configures the groups of an edge.
type Config struct {
	// Password is the servlet password ("" = none). It must be equal on
	// all peers and is sent with forwarded flushes and syncs.
	Password string
	// Peers are the groups of edges that share flushes: group name →
	// the base or servlet URLs of the other edges of the group (see
	// PeerServletURL). A group may have no peers.
	Peers map[string][]string
	// FlushLogRetention is how long the flush log keeps entries for
	// catch-up syncs (0: DefaultFlushLogRetention).
	FlushLogRetention time.Duration
	// FlushLogMaxBytes caps the flush log in bytes, besides the retention:
	// past it the oldest flushes are pruned (0: cache.DefaultFlushLogMaxBytes).
	FlushLogMaxBytes int64
	// OutboxMaxBytes caps the outbox of each peer in bytes: past it the
	// peer's oldest undelivered flushes are dropped, and the peer learns
	// of them only from its next catch-up (0: cache.DefaultOutboxMaxBytes).
	OutboxMaxBytes int64
	// Logger gets the groups' log (nil: none).
	Logger *zap.Logger
}

// Groups forwards flushes to the peers of their group through the
// persistent outbox, catches up with the peers at start, and prunes the
// flush log. An edge needs it without groups too (pruning); the Servlet
// uses it to forward flushes and to start catch-ups.
type Groups struct {
	log       *zap.Logger
	password  string
	groups    map[string][]string // group -> servlet URLs of its peers
	peers     []string            // every peer once
	retention time.Duration
	maxAge    time.Duration
	logMax    int64 // caps in bytes (0: the engine's defaults)
	outboxMax int64
	client    *http.Client
	status    peerStatus

	mu      sync.Mutex
	ctx     context.Context // nil until started
	cancel  context.CancelFunc
	eng     *cache.Engine
	kicks   map[string]chan struct{} // peer -> wake-up of its worker
	syncing map[string]bool          // group -> a catch-up runs
	wg      sync.WaitGroup
}

// New checks the configuration and makes the groups; it connects to
// nothing.
func New(cfg Config) (*Groups, error) {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	g := &Groups{log: log, password: cfg.Password, groups: map[string][]string{}, retention: DefaultFlushLogRetention}
	if cfg.FlushLogRetention > 0 {
		g.retention = cfg.FlushLogRetention
	}
	g.maxAge = min(maxOutboxAge, g.retention)
	if cfg.FlushLogMaxBytes < 0 || cfg.OutboxMaxBytes < 0 {
		return nil, fmt.Errorf("flush log and outbox caps must not be negative")
	}
	g.logMax, g.outboxMax = cfg.FlushLogMaxBytes, cfg.OutboxMaxBytes
	for name, peers := range cfg.Peers {
		if name == "" || !validName(name, maxGroupLen) {
			return nil, fmt.Errorf("group %q: invalid name", name)
		}
		for _, p := range peers {
			u, err := PeerServletURL(p)
			if err != nil {
				return nil, fmt.Errorf("group %s: peer: %w", name, err)
			}
			if !slices.Contains(g.groups[name], u) {
				g.groups[name] = append(g.groups[name], u)
			}
			if !slices.Contains(g.peers, u) {
				g.peers = append(g.peers, u)
			}
		}
		if _, ok := g.groups[name]; !ok {
			g.groups[name] = nil
		}
	}
	g.client = &http.Client{
		Timeout: peerTimeout,
		Transport: &http.Transport{
			Proxy:                 nil, // peers are internal
			DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   forwardParallel * 2,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: peerTimeout,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return g, nil
}

// PeerServletURL makes the servlet URL of a peer: an http(s) URL with a
// host, DefaultServletPath when it has no path, no fragment.
func PeerServletURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL with a host", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = DefaultServletPath
	}
	u.Fragment = ""
	return u.String(), nil
}

// PeersOf returns the servlet URLs of a group's peers (nil for a group
// this edge does not know: the flush is then applied here only).
func (g *Groups) PeersOf(group string) []string { return g.groups[group] }

// Start sets the engine's caps of the flush log and the outbox and starts
// the outbox workers, the prune loop, the report of entries pruned by the
// caps and a catch-up of every group with its peers; they run until ctx
// ends or Stop.
func (g *Groups) Start(parent context.Context, eng *cache.Engine) {
	eng.SetFlushCaps(g.logMax, g.outboxMax)
	ctx, cancel := context.WithCancel(parent)
	g.mu.Lock()
	g.ctx, g.cancel, g.eng = ctx, cancel, eng
	g.kicks = map[string]chan struct{}{}
	g.syncing = map[string]bool{}
	for _, p := range g.peers {
		g.kicks[p] = make(chan struct{}, 1)
	}
	g.mu.Unlock()

	g.wg.Add(3)
	go g.pruneLoop(ctx, eng)
	go g.capReport(ctx, eng)
	go g.outboxLoop(ctx, eng)
	names := make([]string, 0, len(g.groups))
	for name := range g.groups {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		g.startSync(name, true)
	}
}

// Stop ends what Start started and waits for it.
func (g *Groups) Stop() {
	g.mu.Lock()
	cancel := g.cancel
	g.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	g.wg.Wait()
	g.client.CloseIdleConnections()
}

// Kick wakes the outbox workers (a flush was just queued for them).
func (g *Groups) Kick() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, ch := range g.kicks {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// TriggerSync starts a catch-up of a group from its peers in the
// background (a sync request with forward=true), unless one runs.
func (g *Groups) TriggerSync(group string) {
	if _, ok := g.groups[group]; ok {
		g.startSync(group, false)
	}
}
