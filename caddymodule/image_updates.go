package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/imaging"
	"github.com/delivery-edge/edge/internal/retry"
	"github.com/delivery-edge/edge/stagingclient"
)

// Names of the engine's positions and leases used by the image update
// service.
const (
	// imageUpdatesPosition is the stored source time of the image events
	// applied; its lease keeps the old and the new config of a reload from
	// applying the same events.
	imageUpdatesPosition = "image-updates"
	// imageCleanupLease keeps two configs from cleaning up at once.
	imageCleanupLease = "image-cleanup"
)

// Timing of the image store cleanup (not configurable yet).
const (
	imageCleanupFirst    = 10 * time.Minute
	imageCleanupInterval = 6 * time.Hour
	imageCleanupBatch    = 500
)

// imageUpdatesFeature is the image update service (`image_updates`): it
// follows the CMS events, applies image and image variant changes to the
// image store (imaging.Updater) and periodically removes objects of
// superseded versions.
type imageUpdatesFeature struct {
	client  *stagingclient.Client
	cfg     stagingclient.PollerConfig
	updater *imaging.Updater
	log     *zap.Logger
	unknown *stagingclient.UnknownEvents
	// poller is the event poller while it runs (for the lag metric).
	poller atomic.Pointer[stagingclient.Poller]

	// cleanupFirst and cleanupEvery time the cleanup job (tests shorten
	// them).
	cleanupFirst, cleanupEvery time.Duration

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// imageUpdatesSource is the staging configuration the update service reads
// events from: image_updates' own servers, or, without URLs, the `staging`
// block with image_updates' settings where it sets them.
func imageUpdatesSource(a *App) (*StagingConfig, error) {
	sc := *a.ImageUpdates
	if len(sc.URLs) > 0 {
		return &sc, nil
	}
	if a.Staging == nil {
		return nil, errors.New("image_updates: no server given and no `staging` block to read events from")
	}
	base := *a.Staging
	base.URLs = append([]string(nil), a.Staging.URLs...)
	if sc.Token != "" {
		base.Token = sc.Token
	}
	if sc.PollInterval != 0 {
		base.PollInterval = sc.PollInterval
	}
	if sc.LongPoll != 0 {
		base.LongPoll = sc.LongPoll
	}
	if sc.Timeout != 0 {
		base.Timeout = sc.Timeout
	}
	if sc.MaxAttempts != 0 {
		base.MaxAttempts = sc.MaxAttempts
	}
	if sc.CAFile != "" {
		base.CAFile = sc.CAFile
	}
	return &base, nil
}

func provisionImageUpdates(a *App, ctx caddy.Context) (*imageUpdatesFeature, error) {
	sc, err := imageUpdatesSource(a)
	if err != nil {
		return nil, err
	}
	log := a.log.Named("image_updates")
	client, cfg, err := newStagingClient(sc, "image_updates", log)
	if err != nil {
		return nil, err
	}
	cfg.Name = "image updates"
	store, err := acquireImageStore(a)
	if err != nil {
		client.Close()
		return nil, err
	}
	ctx.OnCancel(store.Release)
	updater := imaging.NewUpdater(store, imaging.NewStagingCMS(client), log)
	// An event for an image ends what the image handlers of this process
	// remember of it (unknown, original refused): a newly published image
	// is served at once instead of after negative_ttl.
	updater.OnImageChange(store.negative.Forget)
	f := &imageUpdatesFeature{
		client: client, cfg: cfg, log: log, updater: updater,
		cleanupFirst: imageCleanupFirst, cleanupEvery: imageCleanupInterval,
		unknown: stagingclient.NewUnknownEvents(log),
	}
	return f, nil
}

func (f *imageUpdatesFeature) start(parent context.Context, eng *cache.Engine) {
	ctx, cancel := context.WithCancel(parent)
	f.cancel = cancel
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		f.poll(ctx, eng)
	}()
	go func() {
		defer f.wg.Done()
		f.cleanupLoop(ctx, eng)
	}()
}

func (f *imageUpdatesFeature) stop() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	f.wg.Wait()
	f.client.Close()
}

// poll applies the event stream until the config is stopped, holding the
// engine's lease on it. The poller logs connection changes and failed
// batches once per change of state.
func (f *imageUpdatesFeature) poll(ctx context.Context, eng *cache.Engine) {
	started := false
	poller := stagingclient.NewPoller(f.client, f.cfg)
	err := stagingclient.Follow(ctx, eng, imageUpdatesPosition, poller, func(from int64) {
		started = true
		f.poller.Store(poller)
		f.log.Info("image update service started", zap.Int64("from_source_time", from),
			zap.String("server", f.client.BaseURL()))
	}, func(ctx context.Context, events []stagingclient.Event, upTo int64) error {
		return f.apply(ctx, eng, events, upTo)
	})
	var perr *stagingclient.PositionError
	switch {
	case errors.As(err, &perr):
		f.log.Error("cannot read the last applied source time; image updates are not applied", zap.Error(perr.Err))
	case !started: // stopped while waiting for the lease
	case err != nil && !errors.Is(err, context.Canceled):
		f.log.Error("image update service stopped", zap.Error(err))
	default:
		f.log.Info("image update service stopped")
	}
}

// apply hands the image and image variant events of a batch to the
// updater, in order, and then stores upTo. A failed event fails the batch,
// which the poller offers again; applying an event twice is harmless.
// Events of an unknown kind are skipped; an unknown state of an image
// counts as a change of it (see stagingclient.UnknownEvents).
func (f *imageUpdatesFeature) apply(ctx context.Context, eng *cache.Engine, events []stagingclient.Event, upTo int64) error {
	for _, ev := range events {
		if ev.NodeType != imaging.NodeTypeImage && ev.NodeType != imaging.NodeTypeImageVariant {
			continue
		}
		ev, ok := f.unknown.Triage(ev)
		if !ok {
			continue
		}
		err := f.updater.HandleEvent(ctx, imaging.ImageEvent{NodeType: ev.NodeType, UUID: ev.UUID, ID: ev.ID,
			State: ev.State, SourceTime: ev.SourceTime})
		if err != nil {
			return fmt.Errorf("%s %s (source time %d): %w", ev.NodeType, ev.ID, ev.SourceTime, err)
		}
	}
	return eng.SetPosition(imageUpdatesPosition, upTo)
}

// cleanupLoop runs the cleanup job some time after start and then at an
// interval, logging failures once until it works again.
func (f *imageUpdatesFeature) cleanupLoop(ctx context.Context, eng *cache.Engine) {
	release, err := eng.Lease(ctx, imageCleanupLease)
	if err != nil {
		return
	}
	defer release()
	failing := false
	for wait := f.cleanupFirst; retry.Sleep(ctx, wait); wait = f.cleanupEvery {
		started := time.Now()
		stats, err := f.updater.Cleanup(ctx, imageCleanupBatch)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			f.log.Warn("image store cleanup failed; retrying at the next interval", zap.Error(err),
				zap.Int("deleted", stats.Deleted), zap.Duration("next_in", f.cleanupEvery))
			failing = true
		case err == nil && failing:
			f.log.Info("image store cleanup works again", zap.Int("scanned", stats.Scanned),
				zap.Int("deleted", stats.Deleted), zap.Duration("took", time.Since(started)))
			failing = false
		}
	}
}
