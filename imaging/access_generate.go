package imaging

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// generate makes the variant stored under key, once for all concurrent
// requests of this edge (singleflight), bounded by the generation
// semaphore. The work is detached from the first requester's context so
// that its going away does not fail the others.
func (a *Access) generate(ctx context.Context, p URLParts, key string, st *imageState, def VariantDef) (*Object, error) {
	ch := a.flights.DoChan("gen:"+key, func() (any, error) {
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.GenerateTimeout)
		defer cancel()
		return a.generateOnce(gctx, p, key, st, def)
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for generation of %s: %w", key, ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Object), nil
	}
}

func (a *Access) generateOnce(ctx context.Context, p URLParts, key string, st *imageState, def VariantDef) (_ *Object, err error) {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: no generation slot for %s: %w", ErrBusy, key, ctx.Err())
	}
	defer func() { <-a.sem }()

	// Another edge (or a flight that just ended) may have stored it.
	if obj, err := a.store.Get(ctx, key); err == nil {
		return obj, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	// From here on it is a generation: fetching the original, decoding,
	// resizing, encoding and storing. The wait for the slot is not part
	// of it (a full semaphore shows as 503s), nor are failed attempts.
	began := time.Now()
	defer func() {
		if err == nil {
			a.metrics.observeGeneration(time.Since(began))
		}
	}()
	doc, err := a.cms.Image(ctx, p.UUID)
	if err != nil {
		return nil, a.cmsError(p.UUID, "image "+p.UUID, err)
	}
	switch doc.State {
	case StateDeleted:
		return nil, fmt.Errorf("image %s: %w", p.UUID, ErrGone)
	case StateOffline:
		return nil, fmt.Errorf("image %s is offline: %w", p.UUID, ErrNotFound)
	}
	rc, err := a.cms.Original(ctx, p.UUID)
	if err != nil {
		return nil, a.cmsError(p.UUID, "original of "+p.UUID, err)
	}
	src, err := a.gen.ReadSource(rc)
	rc.Close()
	if err != nil {
		if isRefusal(err) {
			err = fmt.Errorf("original of %s: %w", p.UUID, err)
			a.noteRefused(p.UUID, st.Modified, err)
			return nil, err
		}
		return nil, fmt.Errorf("%w: original of %s: %w", ErrCMSUnavailable, p.UUID, err)
	}
	if (p.Format == "svg") != IsSVG(src) {
		return nil, fmt.Errorf("image %s: %s cannot be made from this original: %w", p.UUID, p.Format, ErrNotFound)
	}
	started := time.Now()
	res, err := a.gen.Generate(src, Spec{Aspect: p.Aspect(), Width: p.Width, Focus: doc.Focus, Format: p.Format})
	if err != nil {
		err = fmt.Errorf("generate %s: %w", key, err)
		if isRefusal(err) {
			// The state is not advanced to doc.Modified here, so the
			// next request looks for st.Modified: that is the version
			// to remember.
			a.noteRefused(p.UUID, st.Modified, err)
		}
		return nil, err
	}
	a.log.Debug("variant generated", zap.String("key", key), zap.Int("bytes", len(res.Data)),
		zap.Int("width", res.Width), zap.Int("height", res.Height), zap.Duration("took", time.Since(started)))

	obj := &Object{ObjectInfo: ObjectInfo{
		Key: key, Size: int64(len(res.Data)), ETag: contentETag(res.Data), ModTime: time.Now(),
		ContentType: res.ContentType,
		Meta: map[string]string{
			"uuid": p.UUID, "variant": p.Variant, "width": strconv.Itoa(p.Width),
			"image-modified":   strconv.FormatInt(doc.Modified, 10),
			"variant-modified": strconv.FormatInt(def.Modified, 10),
		},
	}, Data: res.Data}
	obj.Meta["etag"] = obj.ETag

	switch {
	case doc.Modified < st.Modified:
		// The CMS replica is behind the version the store knows: serve
		// what it has, briefly, but do not store it as that version.
		a.log.Info("image: CMS has an older version than the store, not storing",
			zap.String("uuid", p.UUID), zap.Int64("cms", doc.Modified), zap.Int64("store", st.Modified))
		obj.Meta["current"] = "false"
		return obj, nil
	case doc.Modified > st.Modified:
		// The image changed since the state was recorded (the update
		// event has not arrived yet): record and store the new version.
		if err := saveState(ctx, a.store, imageState{UUID: p.UUID, State: StatePublished, Modified: doc.Modified}); err != nil {
			return nil, err
		}
		key = VariantKey(p.UUID, p.Variant, doc.Modified, def.Modified, p.Width, p.Ext())
		obj.Key = key
	}
	// The index marker goes first, so that a variant definition change
	// always finds every image that has objects of the variant.
	if err := a.store.Put(ctx, IndexKey(p.Variant, p.UUID), nil, "", nil); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	if err := a.store.Put(ctx, key, res.Data, res.ContentType, obj.Meta); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	return obj, nil
}

// cmsError classifies a CMS error about image uuid: not found stays not
// found (and is remembered), anything else means the CMS is unavailable.
func (a *Access) cmsError(uuid, what string, err error) error {
	if errors.Is(err, ErrNotFound) {
		a.noteUnknown(uuid)
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrCMSUnavailable, what, err)
}

// contentETag is a strong ETag for data: 128 bits of its SHA-256.
func contentETag(data []byte) string {
	sum := sha256.Sum256(data)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}
