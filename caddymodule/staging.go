package caddymodule

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/stagingclient"
)

// stagingPosition names the stored source time of the staging events.
const stagingPosition = "staging"

// Defaults of the staging block.
const (
	defaultLongPoll = 25 * time.Second
)

// stagingFeature polls the staging servers for content changes and hands
// them to the invalidation engine.
type stagingFeature struct {
	client *stagingclient.Client
	cfg    stagingclient.PollerConfig
	log    *zap.Logger

	poller  atomic.Pointer[stagingclient.Poller]
	unknown *stagingclient.UnknownEvents
	cancel  context.CancelFunc
	done    chan struct{}
}

// newStagingClient makes a client from a staging block, with placeholders
// replaced and everything checked; it connects nowhere.
func newStagingClient(sc *StagingConfig, option string, log *zap.Logger) (*stagingclient.Client, stagingclient.PollerConfig, error) {
	repl := caddy.NewReplacer()
	urls := make([]string, len(sc.URLs))
	for i, u := range sc.URLs {
		urls[i] = repl.ReplaceKnown(u, "")
		if err := checkBaseURL(urls[i]); err != nil {
			return nil, stagingclient.PollerConfig{}, fmt.Errorf("%s: %w", option, err)
		}
	}
	token := repl.ReplaceKnown(sc.Token, "")
	if err := stagingclient.ValidateToken(token); err != nil {
		return nil, stagingclient.PollerConfig{}, fmt.Errorf("%s: token: %w", option, err)
	}
	var roots *x509.CertPool
	if caFile := repl.ReplaceKnown(sc.CAFile, ""); caFile != "" {
		// Reading the file here lets `caddy validate` report a missing
		// or empty one; nothing is dialled.
		var err error
		if roots, err = stagingclient.LoadCAFile(caFile); err != nil {
			return nil, stagingclient.PollerConfig{}, fmt.Errorf("%s: ca_file: %w", option, err)
		}
	}
	longPoll := defaultLongPoll
	switch {
	case sc.LongPoll < 0:
		longPoll = 0
	case sc.LongPoll > 0:
		longPoll = timeDuration(sc.LongPoll)
	}
	client, err := stagingclient.New(stagingclient.Config{
		BaseURLs:    urls,
		Token:       token,
		Timeout:     timeDuration(sc.Timeout),
		MaxAttempts: sc.MaxAttempts,
		RootCAs:     roots,
		Logger:      log,
	})
	if err != nil {
		return nil, stagingclient.PollerConfig{}, fmt.Errorf("%s: %w", option, err)
	}
	return client, stagingclient.PollerConfig{
		Interval: timeDuration(sc.PollInterval),
		LongPoll: longPoll,
		Name:     option,
		Logger:   log,
	}, nil
}

func provisionStaging(a *App) (*stagingFeature, error) {
	log := a.log.Named("staging")
	client, cfg, err := newStagingClient(a.Staging, "staging", log)
	if err != nil {
		return nil, err
	}
	return &stagingFeature{client: client, cfg: cfg, log: log, unknown: stagingclient.NewUnknownEvents(log)}, nil
}

func (f *stagingFeature) start(parent context.Context, eng *cache.Engine) {
	ctx, cancel := context.WithCancel(parent)
	f.cancel, f.done = cancel, make(chan struct{})
	go f.run(ctx, eng)
}

// run applies the event stream until the config is stopped. It follows
// the stream under the engine's lease, so the old and the new config of a
// reload never apply the same events.
func (f *stagingFeature) run(ctx context.Context, eng *cache.Engine) {
	defer close(f.done)
	poller := stagingclient.NewPoller(f.client, f.cfg)
	err := stagingclient.Follow(ctx, eng, stagingPosition, poller, func(from int64) {
		f.log.Info("polling staging servers for changes", zap.Int64("from_source_time", from),
			zap.String("server", f.client.BaseURL()))
		f.poller.Store(poller)
	}, func(_ context.Context, events []stagingclient.Event, upTo int64) error {
		return eng.ApplyChanges(changesOf(events, f.unknown), stagingPosition, upTo)
	})
	var perr *stagingclient.PositionError
	switch {
	case errors.As(err, &perr):
		f.log.Error("cannot read the last applied source time; not polling", zap.Error(perr.Err))
	case err != nil && !errors.Is(err, context.Canceled):
		f.log.Error("staging poller stopped", zap.Error(err))
	}
}

func (f *stagingFeature) stop() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	<-f.done
	f.client.Close()
}

// changesOf turns staging events into cache changes; unknown decides
// about events of a kind or state the edge does not know.
func changesOf(events []stagingclient.Event, unknown *stagingclient.UnknownEvents) []cache.Change {
	out := make([]cache.Change, 0, len(events))
	for _, ev := range events {
		ev, ok := unknown.Triage(ev)
		if !ok {
			continue
		}
		c := cache.Change{ID: ev.ID, UUID: ev.UUID, State: ev.State, ChangedProps: ev.ChangedProperties, SourceTime: ev.SourceTime}
		switch ev.Kind {
		case stagingclient.KindNode:
			c.Kind = cache.DepNode
		case stagingclient.KindYellow:
			c.Kind = cache.DepYellow
		default: // KindDocument: triage passes known kinds only
			c.Kind = cache.DepDocument
		}
		out = append(out, c)
	}
	return out
}
