package imaging

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
)

// CleanupStats reports what a Cleanup run did.
type CleanupStats struct {
	// Scanned is the number of objects looked at.
	Scanned int `json:"scanned"`
	// Deleted is the number of objects deleted.
	Deleted int `json:"deleted"`
}

// orphanGrace is how old a variant object without a state record must be
// before Cleanup removes it (a generation may be storing it right now).
const orphanGrace = 10 * time.Minute

// Cleanup removes objects of superseded versions: variant objects made
// from an older image version than the image's state record, from an older
// version of their variant definition, or of a variant that is no longer
// defined; all variant objects of images marked offline or deleted; and
// variant objects without any state record older than 10 minutes (left by
// a generation racing with an update). It walks the store image by image
// and deletes in batches of at most batch keys (≤ 0 or > 1000: 1000), so
// memory stays bounded. The current variant definitions come from the CMS,
// else from the store's copy; without either, variant versions are not
// checked.
func (u *Updater) Cleanup(ctx context.Context, batch int) (CleanupStats, error) {
	if batch <= 0 || batch > 1000 {
		batch = 1000
	}
	var stats CleanupStats
	defs := u.currentVariants(ctx)
	var pending []string
	flush := func(force bool) error {
		for len(pending) >= batch || (force && len(pending) > 0) {
			n := min(len(pending), batch)
			if err := u.store.DeleteKeys(ctx, pending[:n]); err != nil {
				return err
			}
			stats.Deleted += n
			pending = pending[n:]
		}
		return nil
	}
	var group []ObjectInfo
	groupUUID := ""
	decide := func() error {
		pending = append(pending, u.superseded(ctx, groupUUID, group, defs)...)
		group = group[:0]
		return flush(false)
	}
	err := u.store.List(ctx, imgRoot, func(oi ObjectInfo) error {
		stats.Scanned++
		uid, _, _ := strings.Cut(strings.TrimPrefix(oi.Key, imgRoot), "/")
		if uid != groupUUID && len(group) > 0 {
			if err := decide(); err != nil {
				return err
			}
		}
		groupUUID = uid
		group = append(group, oi)
		return nil
	})
	if err == nil && len(group) > 0 {
		err = decide()
	}
	if err == nil {
		err = flush(true)
	}
	if err == nil && defs != nil {
		err = u.cleanupIndexes(ctx, defs, &stats)
	}
	if err != nil {
		return stats, fmt.Errorf("%w: cleanup: %w", ErrStoreUnavailable, err)
	}
	u.log.Info("image store cleanup", zap.Int("scanned", stats.Scanned), zap.Int("deleted", stats.Deleted))
	return stats, nil
}

// superseded returns the keys of group (all objects of image uid) that
// are no longer needed.
func (u *Updater) superseded(ctx context.Context, uid string, group []ObjectInfo, defs map[string]VariantDef) []string {
	var st *imageState
	hasState := false
	for _, oi := range group {
		if oi.Key == StateKey(uid) {
			hasState = true
		}
	}
	if hasState {
		var err error
		if st, err = loadState(ctx, u.store, uid); err != nil {
			return nil // unreadable now: leave it for the next run
		}
	}
	var out []string
	for _, oi := range group {
		k, ok := parseVariantKey(oi.Key)
		if !ok {
			continue
		}
		switch {
		case st == nil:
			if time.Since(oi.ModTime) > orphanGrace {
				out = append(out, oi.Key)
			}
		case st.State != StatePublished:
			out = append(out, oi.Key)
		case k.imageModified < st.Modified:
			out = append(out, oi.Key)
		case defs != nil:
			d, defined := defs[k.variant]
			if (!defined && k.variant != VariantOriginal) || (defined && k.variantModified < d.Modified) {
				out = append(out, oi.Key)
			}
		}
	}
	return out
}

// cleanupIndexes removes the index markers of variants that are no longer
// defined.
func (u *Updater) cleanupIndexes(ctx context.Context, defs map[string]VariantDef, stats *CleanupStats) error {
	seen := map[string]bool{}
	var gone []string
	err := u.store.List(ctx, varRoot, func(oi ObjectInfo) error {
		name, _, _ := strings.Cut(strings.TrimPrefix(oi.Key, varRoot), "/")
		if _, ok := defs[name]; !ok && name != VariantOriginal && !seen[name] {
			seen[name] = true
			gone = append(gone, name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range gone {
		n, err := u.store.DeletePrefix(ctx, IndexPrefix(name))
		stats.Deleted += n
		if err != nil {
			return err
		}
	}
	return nil
}

// currentVariants returns the variant definitions from the CMS, else from
// the store's copy, else nil.
func (u *Updater) currentVariants(ctx context.Context) map[string]VariantDef {
	list, err := u.cms.Variants(ctx)
	if err == nil {
		return indexVariants(list)
	}
	u.log.Warn("cleanup: CMS unreachable, using the stored variant definitions", zap.Error(err))
	obj, serr := u.store.Get(ctx, VariantsKey)
	if serr != nil {
		return nil
	}
	if err := json.Unmarshal(obj.Data, &list); err != nil {
		return nil
	}
	return indexVariants(list)
}
