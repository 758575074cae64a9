package stagingclient

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/internal/retry"
)

// Defaults of PollerConfig.
const (
	DefaultPollInterval  = 500 * time.Millisecond
	DefaultPollLimit     = 100
	DefaultRetryBase     = 250 * time.Millisecond
	DefaultRetryMax      = 30 * time.Second
	DefaultLagLogMinimum = time.Second
)

// PollerConfig configures a Poller.
type PollerConfig struct {
	// Interval between polls when the poller is caught up and the server
	// does not hold requests. Default DefaultPollInterval.
	Interval time.Duration
	// LongPoll is the wait asked of the server (0 = plain polling). A
	// server that answers at once anyway is detected, and the poller then
	// polls every Interval.
	LongPoll time.Duration
	// Limit is the number of events asked for per request. Default
	// DefaultPollLimit.
	Limit int
	// RetryBase and RetryMax shape the backoff after a failed fetch or a
	// failed apply. Defaults DefaultRetryBase and DefaultRetryMax.
	RetryBase time.Duration
	RetryMax  time.Duration
	// LagLogMinimum: changes of the source-time lag smaller than this are
	// not logged. Default DefaultLagLogMinimum.
	LagLogMinimum time.Duration
	// Name tells pollers apart in the log ("invalidation", "image updates").
	Name string
	// Logger gets connection state changes and lag at info/warn, retries
	// at debug. Default: no logging.
	Logger *zap.Logger
}

// ApplyFunc applies a batch of events, in order. upTo is the source time up
// to which the batch is complete; the caller persists it together with the
// batch's effect. Returning nil means "durably applied up to upTo"; an
// error makes the poller offer the same batch again later. events may be
// empty when only the source time moved on.
type ApplyFunc func(ctx context.Context, events []Event, upTo int64) error

// Poller follows the event log of the staging servers and hands the events
// to an ApplyFunc, in order, never skipping a batch.
type Poller struct {
	c       *Client
	cfg     PollerConfig
	log     *zap.Logger
	running atomic.Bool

	mu sync.Mutex
	st PollerStats
}

// PollerStats is a snapshot of a Poller's state, for health checks,
// metrics and tests.
type PollerStats struct {
	Connected        bool          // the last fetch succeeded
	LongPolling      bool          // the server holds long polls (false: plain polling)
	Applied          int64         // source time applied up to
	ServerSourceTime int64         // newest source time the servers reported
	Lag              time.Duration // ServerSourceTime - Applied
	Polls            int64         // event requests that got an answer
	Batches          int64         // batches applied
	Events           int64         // events applied
	FetchErrors      int64
	ApplyErrors      int64
	LastError        string    // of the last failed fetch or apply
	LastContact      time.Time // of the last answer
}

// NewPoller makes a poller that reads through c.
func NewPoller(c *Client, cfg PollerConfig) *Poller {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultPollInterval
	}
	if cfg.LongPoll < 0 {
		cfg.LongPoll = 0
	}
	if cfg.Limit <= 0 {
		cfg.Limit = DefaultPollLimit
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = DefaultRetryBase
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	if cfg.RetryMax < cfg.RetryBase {
		cfg.RetryMax = cfg.RetryBase
	}
	if cfg.LagLogMinimum <= 0 {
		cfg.LagLogMinimum = DefaultLagLogMinimum
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.Name != "" {
		log = log.With(zap.String("poller", cfg.Name))
	}
	return &Poller{c: c, cfg: cfg, log: log}
}

// Stats returns a snapshot of the poller's state.
func (p *Poller) Stats() PollerStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// Lag is how far the applied source time is behind the newest source time
// the servers reported.
func (p *Poller) Lag() time.Duration { return p.Stats().Lag }

// ErrPollerRunning is returned by Run when the poller already runs.
var ErrPollerRunning = errors.New("stagingclient: poller is already running")

// connection states, for logging changes only once
const (
	stateUnknown = iota
	stateConnected
	stateLost
)

// Run polls events after from and calls apply with each batch in order
// until ctx is done; it then returns ctx's error. A failed fetch is retried
// with backoff; a failed apply gets the same batch again with backoff.
// apply is never called concurrently with itself.
//
// Run asks the server to hold requests (PollerConfig.LongPoll) while it is
// caught up. An empty answer that comes back sooner than Interval shows a
// server that does not hold requests: the poller then waits out the
// Interval itself (plain polling) and says so once in the log; it keeps
// asking for the wait, so it notices when the server starts to hold again.
func (p *Poller) Run(ctx context.Context, from int64, apply ApplyFunc) error {
	if !p.running.CompareAndSwap(false, true) {
		return ErrPollerRunning
	}
	defer p.running.Store(false)

	p.c.ObserveSourceTime(from) // no server older than what was applied may answer
	applied := from
	longPolling := p.cfg.LongPoll > 0
	p.update(func(st *PollerStats) {
		st.Applied = applied
		st.LongPolling = longPolling
	})

	var (
		state       = stateUnknown
		lostSince   time.Time
		failures    int // consecutive failed fetches
		caughtUp    bool
		loggedLag   time.Duration
		applyFailed bool
		// lagFloor: starting from nothing (from == 0), the lag is measured
		// from the first event, not from the epoch.
		lagFloor int64
	)
	lagOf := func(server int64) time.Duration { return msDuration(server - max(applied, lagFloor)) }
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		wait := time.Duration(0)
		if caughtUp && p.cfg.LongPoll > 0 {
			wait = p.cfg.LongPoll
		}
		start := time.Now()
		page, err := p.c.Events(ctx, applied, p.cfg.Limit, wait)
		elapsed := time.Since(start)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures++
			p.update(func(st *PollerStats) {
				st.Connected = false
				st.FetchErrors++
				st.LastError = err.Error()
			})
			if state != stateLost {
				lostSince = time.Now()
				switch {
				case errors.Is(err, ErrUnauthorized):
					p.log.Error("staging servers reject the access token; no events can be read until it is fixed",
						zap.Error(err), zap.String("url", p.c.BaseURL()))
				case errors.Is(err, ErrNotUpToDate):
					p.log.Warn("staging servers are behind the source time already applied; waiting for them to catch up",
						zap.Error(err), zap.Int64("applied_source_time", applied))
				case state == stateConnected:
					p.log.Warn("staging connection lost", zap.Error(err), zap.Int64("applied_source_time", applied))
				default:
					p.log.Warn("staging servers not reachable", zap.Error(err), zap.String("url", p.c.BaseURL()),
						zap.Int64("applied_source_time", applied))
				}
			}
			state = stateLost
			delay := retry.Backoff(failures, p.cfg.RetryBase, p.cfg.RetryMax)
			p.log.Debug("polling events failed, retrying", zap.Error(err), zap.Int("failures", failures), zap.Duration("backoff", delay))
			if !retry.Sleep(ctx, delay) {
				return ctx.Err()
			}
			continue
		}

		switch state {
		case stateUnknown:
			p.log.Info("staging connected", zap.String("url", p.c.BaseURL()),
				zap.Int64("server_source_time", page.SourceTime), zap.Int64("applied_source_time", applied))
		case stateLost:
			p.log.Info("staging connection restored", zap.String("url", p.c.BaseURL()),
				zap.Duration("down_for", time.Since(lostSince).Round(time.Millisecond)), zap.Int("failed_polls", failures),
				zap.Int64("server_source_time", page.SourceTime), zap.Int64("applied_source_time", applied))
		}
		state, failures = stateConnected, 0
		if applied == 0 && lagFloor == 0 && len(page.Events) > 0 {
			lagFloor = page.Events[0].SourceTime - 1
		}
		p.update(func(st *PollerStats) {
			st.Connected = true
			st.Polls++
			st.LastContact = time.Now()
			st.ServerSourceTime = max(st.ServerSourceTime, page.SourceTime)
			st.Lag = lagOf(st.ServerSourceTime)
		})

		upTo, more := page.UpTo()
		if len(page.Events) > 0 || upTo > applied {
			upTo = max(upTo, applied)
			// Apply the batch; on failure offer the very same batch again.
			for n := 1; ; n++ {
				err := apply(ctx, page.Events, upTo)
				if err == nil {
					if applyFailed {
						p.log.Info("applying events works again", zap.Int64("applied_source_time", upTo), zap.Int("attempts", n))
						applyFailed = false
					}
					break
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				p.update(func(st *PollerStats) {
					st.ApplyErrors++
					st.LastError = err.Error()
				})
				delay := retry.Backoff(n, p.cfg.RetryBase, p.cfg.RetryMax)
				if !applyFailed {
					p.log.Warn("applying events failed; retrying the same batch", zap.Error(err),
						zap.Int("events", len(page.Events)), zap.Int64("up_to", upTo))
					applyFailed = true
				} else {
					p.log.Debug("applying events failed again", zap.Error(err), zap.Int("attempt", n), zap.Duration("backoff", delay))
				}
				if !retry.Sleep(ctx, delay) {
					return ctx.Err()
				}
			}
			applied = upTo
			p.update(func(st *PollerStats) {
				st.Applied = applied
				st.Batches++
				st.Events += int64(len(page.Events))
				st.Lag = lagOf(st.ServerSourceTime)
			})
		}
		loggedLag = p.logLag(loggedLag, applied)

		caughtUp = !more
		if more {
			continue // page on at once
		}
		if wait > 0 && len(page.Events) == 0 {
			// Only an empty answer to a long poll tells whether the server
			// held it: one that came back sooner than Interval was not.
			held := elapsed >= p.cfg.Interval
			if held != longPolling {
				longPolling = held
				p.update(func(st *PollerStats) { st.LongPolling = held })
				if held {
					p.log.Info("staging server holds requests again; long polling", zap.Duration("wait", p.cfg.LongPoll))
				} else {
					p.log.Info("staging server answers long polls at once; polling at an interval instead",
						zap.Duration("interval", p.cfg.Interval), zap.Duration("answered_after", elapsed))
				}
			}
		}
		if p.cfg.LongPoll > 0 && longPolling {
			continue // the next request waits at the server
		}
		if !retry.Sleep(ctx, p.cfg.Interval-min(elapsed, p.cfg.Interval)) {
			return ctx.Err()
		}
	}
}

// logLag logs the lag at info level when it changed significantly since it
// was last logged, and returns the lag last logged.
func (p *Poller) logLag(logged time.Duration, applied int64) time.Duration {
	st := p.Stats()
	lag := st.Lag
	diff := lag - logged
	if diff < 0 {
		diff = -diff
	}
	if diff < max(p.cfg.LagLogMinimum, logged/2) {
		return logged
	}
	if lag < p.cfg.LagLogMinimum {
		p.log.Info("staging events caught up", zap.Duration("lag", lag), zap.Int64("applied_source_time", applied))
	} else {
		p.log.Info("staging events behind", zap.Duration("lag", lag), zap.Int64("applied_source_time", applied),
			zap.Int64("server_source_time", st.ServerSourceTime))
	}
	return lag
}

func (p *Poller) update(f func(*PollerStats)) {
	p.mu.Lock()
	f(&p.st)
	p.mu.Unlock()
}

func msDuration(ms int64) time.Duration {
	if ms < 0 {
		ms = 0
	}
	return time.Duration(ms) * time.Millisecond
}
