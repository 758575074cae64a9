package caddymodule

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/internal/retry"
)

// DefaultServletPath is where a peer's cache servlet is when its `peer`
// URL has no path.
const DefaultServletPath = "/system/servlet/cache.servlet"

// Defaults and limits of the groups feature.
const (
	defaultFlushLogRetention = 7 * 24 * time.Hour
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

// groupsFeature forwards flushes to the peers of their group through the
// persistent outbox, catches up with the peers at start-up, and prunes
// the flush log. It exists in every config (pruning is needed without
// groups too); the cache servlet finds it through the app.
type groupsFeature struct {
	log       *zap.Logger
	password  string              // servlet password, placeholders replaced
	groups    map[string][]string // group -> servlet URLs of its peers
	peers     []string            // every peer once
	retention time.Duration
	maxAge    time.Duration
	client    *http.Client

	mu      sync.Mutex
	ctx     context.Context // nil until started
	cancel  context.CancelFunc
	eng     *cache.Engine
	kicks   map[string]chan struct{} // peer -> wake-up of its worker
	syncing map[string]bool          // group -> a catch-up runs
	wg      sync.WaitGroup
}

// servletPassword is the app's servlet password with placeholders
// replaced. A password that is configured but resolves to nothing (an
// unset environment variable) is an error: the servlet would be open.
func servletPassword(a *App) (string, error) {
	if a.ServletPassword == "" {
		return "", nil
	}
	pw := caddy.NewReplacer().ReplaceKnown(a.ServletPassword, "")
	if pw == "" {
		return "", fmt.Errorf("servlet_password %q resolves to an empty value (is the environment variable set?)", a.ServletPassword)
	}
	return pw, nil
}

// peerServletURL makes the servlet URL of a `peer` entry: placeholders
// replaced, an http(s) URL with a host, DefaultServletPath when it has
// no path.
func peerServletURL(raw string) (string, error) {
	s := caddy.NewReplacer().ReplaceKnown(raw, "")
	if err := checkBaseURL(s); err != nil {
		return "", err
	}
	u, _ := url.Parse(s)
	if u.Path == "" || u.Path == "/" {
		u.Path = DefaultServletPath
	}
	u.Fragment = ""
	return u.String(), nil
}

func provisionGroups(a *App) (*groupsFeature, error) {
	pw, err := servletPassword(a)
	if err != nil {
		return nil, err
	}
	f := &groupsFeature{log: a.log.Named("groups"), password: pw, groups: map[string][]string{},
		retention: defaultFlushLogRetention}
	if a.FlushLogRetention > 0 {
		f.retention = timeDuration(a.FlushLogRetention)
	}
	f.maxAge = min(maxOutboxAge, f.retention)
	for name, g := range a.Groups {
		if name == "" || !validName(name, maxGroupLen) {
			return nil, fmt.Errorf("group %q: invalid name", name)
		}
		for _, p := range g.Peers {
			u, err := peerServletURL(p)
			if err != nil {
				return nil, fmt.Errorf("group %s: peer: %w", name, err)
			}
			if !slices.Contains(f.groups[name], u) {
				f.groups[name] = append(f.groups[name], u)
			}
			if !slices.Contains(f.peers, u) {
				f.peers = append(f.peers, u)
			}
		}
		if _, ok := f.groups[name]; !ok {
			f.groups[name] = nil
		}
	}
	f.client = &http.Client{
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
	return f, nil
}

// peersOf returns the servlet URLs of a group's peers (nil for a group
// this edge does not know: the flush is then applied here only).
func (f *groupsFeature) peersOf(group string) []string { return f.groups[group] }

func (f *groupsFeature) start(parent context.Context, eng *cache.Engine) {
	ctx, cancel := context.WithCancel(parent)
	f.mu.Lock()
	f.ctx, f.cancel, f.eng = ctx, cancel, eng
	f.kicks = map[string]chan struct{}{}
	f.syncing = map[string]bool{}
	for _, p := range f.peers {
		f.kicks[p] = make(chan struct{}, 1)
	}
	f.mu.Unlock()

	f.wg.Add(2)
	go f.pruneLoop(ctx, eng)
	go f.outboxLoop(ctx, eng)
	names := make([]string, 0, len(f.groups))
	for name := range f.groups {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		f.startSync(name, true)
	}
}

func (f *groupsFeature) stop() {
	f.mu.Lock()
	cancel := f.cancel
	f.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	f.wg.Wait()
	f.client.CloseIdleConnections()
}

// kick wakes the outbox workers (a flush was just queued for them).
func (f *groupsFeature) kick() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.kicks {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// triggerSync starts a catch-up of a group from its peers in the
// background (a sync request with forward=true), unless one runs.
func (f *groupsFeature) triggerSync(group string) {
	if _, ok := f.groups[group]; ok {
		f.startSync(group, false)
	}
}

// startSync catches up with every peer of a group: each peer is asked
// for the flushes since the last one seen from it, and what is new is
// applied. A peer that cannot be reached is retried in the background
// with backoff. At start-up the group is logged "ready" once every peer
// has answered or failed once.
func (f *groupsFeature) startSync(group string, startup bool) {
	f.mu.Lock()
	ctx, eng := f.ctx, f.eng
	if ctx == nil || ctx.Err() != nil || f.syncing[group] {
		f.mu.Unlock()
		return
	}
	f.syncing[group] = true
	f.wg.Add(1)
	f.mu.Unlock()

	peers := f.groups[group]
	go func() {
		defer f.wg.Done()
		defer func() {
			f.mu.Lock()
			delete(f.syncing, group)
			f.mu.Unlock()
		}()
		first := make(chan error, len(peers))
		var peerWG sync.WaitGroup
		for _, p := range peers {
			peerWG.Add(1)
			go func() {
				defer peerWG.Done()
				f.catchUp(ctx, eng, group, p, first)
			}()
		}
		reached, unreachable := 0, 0
		for range peers {
			select {
			case err := <-first:
				if err == nil {
					reached++
				} else {
					unreachable++
				}
			case <-ctx.Done():
				peerWG.Wait()
				return
			}
		}
		if startup {
			f.log.Info("flush group ready", zap.String("group", group), zap.Int("peers", len(peers)),
				zap.Int("caught_up", reached), zap.Int("unreachable", unreachable))
		}
		peerWG.Wait()
	}()
}

// catchUp syncs with one peer until it succeeds (or ctx ends); the result
// of the first attempt goes to first.
func (f *groupsFeature) catchUp(ctx context.Context, eng *cache.Engine, group, peer string, first chan<- error) {
	for attempt := 1; ; attempt++ {
		n, got, since, err := f.syncOnce(ctx, eng, group, peer)
		if attempt == 1 {
			first <- err
		}
		if err == nil {
			f.log.Info("caught up with peer", zap.String("group", group), zap.String("peer", peer),
				zap.Int64("since", since), zap.Int("listed", got), zap.Int("applied", n), zap.Int("attempts", attempt))
			return
		}
		if ctx.Err() != nil {
			return
		}
		if attempt == 1 {
			f.log.Warn("cannot sync with peer; retrying in the background", zap.String("group", group),
				zap.String("peer", peer), zap.Error(err))
		}
		if !retry.Sleep(ctx, retry.Backoff(attempt, retryFirst, retryCap)) {
			return
		}
	}
}

// syncOnce asks a peer for the flushes of a group since the last seen one
// and applies them.
func (f *groupsFeature) syncOnce(ctx context.Context, eng *cache.Engine, group, peer string) (applied, listed int, since int64, err error) {
	pos, err := eng.SyncPosition(group, peer)
	if err != nil {
		return 0, 0, 0, err
	}
	since = max(0, pos-syncOverlap.Milliseconds())
	body, err := f.call(ctx, peer, url.Values{
		paramAction: {actionSync}, paramGroup: {group}, paramSince: {strconv.FormatInt(since, 10)}, paramForward: {"false"},
	}, maxSyncAnswer)
	if err != nil {
		return 0, 0, since, err
	}
	flushes, bad := parseSyncAnswer(body)
	if bad > 0 {
		f.log.Warn("peer's sync answer has malformed lines; skipped", zap.String("peer", peer), zap.Int("lines", bad))
	}
	applied, err = eng.ApplySync(group, peer, flushes)
	return applied, len(flushes), since, err
}

// call POSTs to a peer's servlet: the parameters in the query string, the
// password in the form body (so it stays out of access logs). Only a 2xx
// answer counts; its body is returned.
func (f *groupsFeature) call(ctx context.Context, peer string, params url.Values, limit int64) ([]byte, error) {
	u, err := url.Parse(peer)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	var form url.Values
	if f.password != "" {
		form = url.Values{paramPassword: {f.password}}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return nil, fmt.Errorf("peer answered %s: %q", resp.Status, strings.TrimSpace(string(snippet)))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("peer's answer is larger than %d bytes", limit)
	}
	return body, nil
}

// forward delivers one flush to a peer, with forward=false (the peer
// never forwards it again) and the original timestamp.
func (f *groupsFeature) forward(ctx context.Context, fw cache.Forward) error {
	_, err := f.call(ctx, fw.Peer, url.Values{
		paramAction: {actionFlush}, paramKey: {fw.Key}, paramGroup: {fw.Group},
		paramForward: {"false"}, paramTimestamp: {strconv.FormatInt(fw.Time, 10)},
	}, 4096)
	return err
}

// outboxLoop takes the outbox lease and runs one worker per peer.
func (f *groupsFeature) outboxLoop(ctx context.Context, eng *cache.Engine) {
	defer f.wg.Done()
	if len(f.peers) == 0 {
		return
	}
	release, err := eng.Lease(ctx, outboxLease)
	if err != nil {
		return
	}
	defer release()
	var wg sync.WaitGroup
	for _, p := range f.peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.deliver(ctx, eng, p, f.kicks[p])
		}()
	}
	wg.Wait()
}

// deliver forwards the outbox of one peer until ctx ends: confirmed
// entries are deleted, failures back off (doubling, with jitter), entries
// older than the maximum age are dropped.
func (f *groupsFeature) deliver(ctx context.Context, eng *cache.Engine, peer string, kick <-chan struct{}) {
	failures := 0
	for ctx.Err() == nil {
		pending, err := eng.PendingForwards(peer, outboxBatch)
		if err != nil {
			f.log.Error("reading the flush outbox failed", zap.String("peer", peer), zap.Error(err))
			if !retry.Sleep(ctx, outboxIdle) {
				return
			}
			continue
		}
		cutoff := time.Now().Add(-f.maxAge).UnixMilli()
		var stale []uint64
		fresh := pending[:0]
		for _, fw := range pending {
			if fw.Queued < cutoff {
				stale = append(stale, fw.ID)
			} else {
				fresh = append(fresh, fw)
			}
		}
		if len(stale) > 0 {
			f.log.Warn("flushes not delivered within the maximum age; dropped (the peer's start-up sync still finds them)",
				zap.String("peer", peer), zap.Int("flushes", len(stale)), zap.Duration("max_age", f.maxAge))
			if err := eng.ForwardsDone(peer, stale); err != nil {
				f.log.Error("updating the flush outbox failed", zap.String("peer", peer), zap.Error(err))
			}
		}
		if len(fresh) == 0 {
			if len(stale) > 0 {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-kick:
			case <-time.After(outboxIdle):
			}
			continue
		}
		delivered, err := f.forwardAll(ctx, fresh)
		if derr := eng.ForwardsDone(peer, delivered); derr != nil {
			f.log.Error("updating the flush outbox failed", zap.String("peer", peer), zap.Error(derr))
		}
		if err == nil {
			if failures > 0 {
				f.log.Info("forwarding flushes to peer works again", zap.String("peer", peer), zap.Int("failed_attempts", failures))
			}
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		if failures == 1 {
			f.log.Warn("cannot forward flushes to peer; retrying with backoff", zap.String("peer", peer),
				zap.Int("pending", len(fresh)-len(delivered)), zap.Error(err))
		} else {
			f.log.Debug("forwarding flushes to peer failed again", zap.String("peer", peer),
				zap.Int("attempt", failures), zap.Error(err))
		}
		if !retry.Sleep(ctx, retry.Backoff(failures, retryFirst, retryCap)) {
			return
		}
	}
}

// forwardAll sends entries of one peer, a few at a time; it returns the
// IDs the peer confirmed and the last error.
func (f *groupsFeature) forwardAll(ctx context.Context, entries []cache.Forward) ([]uint64, error) {
	var (
		mu        sync.Mutex
		delivered []uint64
		lastErr   error
		wg        sync.WaitGroup
		sem       = make(chan struct{}, forwardParallel)
	)
	for _, fw := range entries {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := f.forward(ctx, fw)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				lastErr = err
				return
			}
			delivered = append(delivered, fw.ID)
		}()
	}
	wg.Wait()
	return delivered, lastErr
}

// pruneLoop deletes flush log entries older than the retention and
// outbox entries older than the maximum age, a minute after the start (so
// that start-up work comes first) and then hourly, in bounded batches.
func (f *groupsFeature) pruneLoop(ctx context.Context, eng *cache.Engine) {
	defer f.wg.Done()
	for wait := time.Minute; retry.Sleep(ctx, wait); wait = pruneInterval {
		f.prune(ctx, eng)
	}
}

func (f *groupsFeature) prune(ctx context.Context, eng *cache.Engine) {
	now := time.Now()
	for _, step := range []struct {
		what   string
		cutoff int64
		fn     func(int64, int) (int, error)
	}{
		{"flush log", now.Add(-f.retention).UnixMilli(), eng.PruneFlushLog},
		{"flush outbox", now.Add(-f.maxAge).UnixMilli(), eng.PruneOutbox},
	} {
		total := 0
		for ctx.Err() == nil {
			n, err := step.fn(step.cutoff, pruneBatch)
			total += n
			if err != nil {
				f.log.Error("pruning failed", zap.String("what", step.what), zap.Error(err))
				break
			}
			if n < pruneBatch {
				break
			}
		}
		if total > 0 {
			f.log.Info("pruned old entries", zap.String("what", step.what), zap.Int("entries", total))
		}
	}
}
