package imaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"go.uber.org/zap"
)

// Updater applies CMS change events to the image store (the image update
// service; README, "Image service", Updates). One edge runs it. It is safe for concurrent use, but
// events should be applied in source-time order; persisting the source time
// of the last applied event is the caller's job.
type Updater struct {
	store   Store
	cms     CMS
	log     *zap.Logger
	onImage func(uuid string)
}

// NewUpdater returns an Updater. cms is used for variant definitions (on
// variant events and in Cleanup). log may be nil.
func NewUpdater(store Store, cms CMS, log *zap.Logger) *Updater {
	if log == nil {
		log = zap.NewNop()
	}
	return &Updater{store: store, cms: cms, log: log}
}

// OnImageChange sets fn to be called with the UUID (canonical form) of
// every image event once it has been applied to the store, so that what is
// kept outside the store can follow: the access side's NegativeCache.Forget
// makes a newly published image servable at once. Call it before the
// first event.
func (u *Updater) OnImageChange(fn func(uuid string)) { u.onImage = fn }

// HandleEvent applies one event:
//
//   - an image that was published (changed) has all its stored objects
//     deleted, its state record included, so the next request fetches the
//     new version (a republished image thereby loses its offline/deleted
//     marker);
//   - an image that went offline or was deleted gets a marker (state record
//     with metadata and tag state=offline|deleted) first, and then all its
//     other objects are deleted; the access side answers 404/410 from the
//     marker without asking the CMS;
//   - a variant definition event compares the CMS's definitions with the
//     copy in the store and, for each variant that changed or disappeared,
//     deletes its objects across all images via the variant index.
//
// Events of other node types, and malformed ones, are ignored (logged). An
// image event that changed the store is logged at info level, one that
// found it as the event leaves it (a replay) at debug level. An
// error means the store or CMS failed; the event should be retried.
func (u *Updater) HandleEvent(ctx context.Context, ev ImageEvent) error {
	switch ev.NodeType {
	case NodeTypeImage:
		return u.imageChanged(ctx, ev)
	case NodeTypeImageVariant:
		return u.variantsChanged(ctx, ev)
	}
	return nil
}

func (u *Updater) imageChanged(ctx context.Context, ev ImageEvent) error {
	id, err := uuid.Parse(ev.UUID)
	if err != nil || len(ev.UUID) != 36 {
		u.log.Warn("image event without a valid uuid ignored", zap.String("uuid", ev.UUID), zap.String("id", ev.ID))
		return nil
	}
	uid := id.String()
	switch ev.State {
	case StateOffline, StateDeleted:
		prev, err := loadState(ctx, u.store, uid)
		if err != nil {
			return fmt.Errorf("image %s %s: %w", uid, ev.State, err)
		}
		if err := saveState(ctx, u.store, imageState{UUID: uid, State: ev.State, SourceTime: ev.SourceTime}); err != nil {
			return fmt.Errorf("image %s %s: %w", uid, ev.State, err)
		}
		n, err := u.deleteImageObjects(ctx, uid, true)
		if err != nil {
			return fmt.Errorf("image %s %s: %w", uid, ev.State, err)
		}
		u.logChange(n > 0 || prev == nil || prev.State != ev.State, "image marked",
			zap.String("uuid", uid), zap.String("state", ev.State), zap.Int("deleted", n))
		u.notifyImage(uid)
		return nil
	default: // published, or unknown = treat as changed
		n, err := u.store.DeletePrefix(ctx, ImagePrefix(uid))
		if err != nil {
			return fmt.Errorf("%w: image %s changed: %w", ErrStoreUnavailable, uid, err)
		}
		u.logChange(n > 0, "image changed, variants deleted", zap.String("uuid", uid), zap.Int("deleted", n))
		u.notifyImage(uid)
		return nil
	}
}

// notifyImage tells the OnImageChange hook.
func (u *Updater) notifyImage(uid string) {
	if u.onImage != nil {
		u.onImage(uid)
	}
}

// logChange logs what an event did: at info level when it changed the
// store, at debug level when it changed nothing. Events are applied again
// after a restart or a failed batch, and a store that already reflects
// them should not fill the log with one line per image.
func (u *Updater) logChange(changed bool, msg string, fields ...zap.Field) {
	if changed {
		u.log.Info(msg, fields...)
		return
	}
	u.log.Debug(msg, fields...)
}

// deleteImageObjects deletes every object of image uid, the state record
// unless keepState, in batches.
func (u *Updater) deleteImageObjects(ctx context.Context, uid string, keepState bool) (int, error) {
	keep := func(key string) bool { return keepState && key == StateKey(uid) }
	n, err := deleteListed(ctx, u.store, ImagePrefix(uid), keep, u.store.DeleteKeys)
	if err != nil {
		return n, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	return n, nil
}

func (u *Updater) variantsChanged(ctx context.Context, ev ImageEvent) error {
	current, err := u.cms.Variants(ctx)
	if err != nil {
		return fmt.Errorf("%w: variant definitions: %w", ErrCMSUnavailable, err)
	}
	previous, err := u.storedVariants(ctx)
	if err != nil {
		return err
	}
	changed := changedVariants(previous, current)
	if previous == nil {
		// No copy to compare with: only the event's own ID can be
		// attributed. Objects of other superseded definitions carry the
		// old version in their key, are never served again and go with
		// Cleanup.
		changed = nil
		for _, d := range current {
			if d.Name == ev.ID {
				changed = append(changed, d.Name)
			}
		}
	}
	for _, name := range changed {
		n, err := u.DeleteVariant(ctx, name)
		if err != nil {
			return err
		}
		// A definition that differs from the stored copy is a change even
		// when no objects of it were stored; a replay finds no difference.
		u.log.Info("variant definition changed, objects deleted", zap.String("variant", name), zap.Int("deleted", n))
	}
	b, err := json.Marshal(current)
	if err != nil {
		return fmt.Errorf("encode variant definitions: %w", err)
	}
	if err := u.store.Put(ctx, VariantsKey, b, "application/json", nil); err != nil {
		return fmt.Errorf("%w: save variant definitions: %w", ErrStoreUnavailable, err)
	}
	return nil
}

// storedVariants reads the definitions mirrored in the store (nil if none).
func (u *Updater) storedVariants(ctx context.Context) ([]VariantDef, error) {
	obj, err := u.store.Get(ctx, VariantsKey)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	var defs []VariantDef
	if err := json.Unmarshal(obj.Data, &defs); err != nil {
		u.log.Warn("stored variant definitions unreadable, ignored", zap.Error(err))
		return nil, nil
	}
	return defs, nil
}

// changedVariants returns the names whose definition differs between prev
// and cur, or that exist in only one of them.
func changedVariants(prev, cur []VariantDef) []string {
	old := indexVariants(prev)
	var names []string
	for _, d := range cur {
		if p, ok := old[d.Name]; !ok || p != d {
			names = append(names, d.Name)
		}
		delete(old, d.Name)
	}
	for name := range old {
		names = append(names, name)
	}
	return names
}

// DeleteVariant deletes the stored objects of variant across all images:
// it lists the variant's index markers in batches and deletes
// img/<uuid>/<variant>/ for each, then the markers. It returns the number
// of objects deleted.
func (u *Updater) DeleteVariant(ctx context.Context, variant string) (int, error) {
	if _, _, ok := ParseVariantName(variant); !ok || strings.Contains(variant, "/") {
		return 0, nil // not a name that can have objects
	}
	total := 0
	markers := make([]string, 0, deleteBatch)
	flush := func() error {
		for _, m := range markers {
			uid := m[strings.LastIndexByte(m, '/')+1:]
			n, err := u.store.DeletePrefix(ctx, VariantPrefix(uid, variant))
			total += n
			if err != nil {
				return err
			}
		}
		if err := u.store.DeleteKeys(ctx, markers); err != nil {
			return err
		}
		markers = markers[:0]
		return nil
	}
	err := u.store.List(ctx, IndexPrefix(variant), func(oi ObjectInfo) error {
		markers = append(markers, oi.Key)
		if len(markers) == deleteBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return total, fmt.Errorf("%w: delete variant %s: %w", ErrStoreUnavailable, variant, err)
	}
	return total, nil
}
