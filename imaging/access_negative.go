package imaging

import (
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// remembered returns the remembered answer for image uuid at the stored
// version (0: the store knows nothing of it), or nil if the CMS must be
// asked: a 404 for an image the CMS did not know, a 422 for an original of
// that version that was refused under this service's limits.
func (a *Access) remembered(uuid string, version int64) error {
	if a.cfg.NegativeTTL < 0 {
		return nil
	}
	e, ok := a.negative.get(uuid)
	if !ok {
		return nil
	}
	switch {
	case e.kind == negUnknown:
		a.negative.hit()
		return fmt.Errorf("image %s unknown to the CMS (remembered): %w", uuid, ErrNotFound)
	case e.kind == negRefused && e.version == version && e.scope == a.scope:
		a.negative.hit()
		return fmt.Errorf("original refused (remembered): %w", e.reason)
	}
	return nil
}

// noteUnknown remembers that the CMS does not know image uuid.
func (a *Access) noteUnknown(uuid string) {
	if a.cfg.NegativeTTL < 0 {
		return
	}
	a.noteNegative(negEntry{uuid: uuid, kind: negUnknown})
}

// noteRefused remembers that the original of image uuid at the stored
// version was refused with err, and logs it: with the entry it is logged
// once per image and TTL, not per request.
func (a *Access) noteRefused(uuid string, version int64, err error) {
	if a.cfg.NegativeTTL < 0 {
		return
	}
	a.log.Warn("image: original refused; answering 422 for it", zap.String("uuid", uuid),
		zap.Int64("version", version), zap.Duration("remembered_for", a.cfg.NegativeTTL), zap.Error(err))
	a.noteNegative(negEntry{uuid: uuid, kind: negRefused, version: version, scope: a.scope, reason: err})
}

func (a *Access) noteNegative(e negEntry) {
	if a.negative.note(e, a.cfg.NegativeTTL) {
		a.log.Warn("image: negative cache full, dropping its oldest entries (logged once; see the evicted count)",
			zap.Int("max_entries", a.negative.max))
	}
}

// isRefusal reports whether err says that the original cannot be served
// (too large, not decodable), which holds until the image changes.
func isRefusal(err error) bool {
	return errors.Is(err, ErrSourceTooLarge) || errors.Is(err, ErrUnsupported)
}
