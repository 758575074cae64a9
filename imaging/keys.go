package imaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Store key layout (see the package documentation).
const (
	imgRoot = "img/"
	varRoot = "var/"
	// VariantsKey holds the variant definitions last seen, so that the
	// access side can serve stored variants while the CMS is unreachable.
	VariantsKey = "sys/variants"
	stateName   = "_state"
)

// ImagePrefix is the prefix of everything stored for image uuid.
func ImagePrefix(uuid string) string { return imgRoot + uuid + "/" }

// StateKey is the key of image uuid's state record.
func StateKey(uuid string) string { return imgRoot + uuid + "/" + stateName }

// VariantPrefix is the prefix of all stored versions of one variant of
// one image.
func VariantPrefix(uuid, variant string) string { return imgRoot + uuid + "/" + variant + "/" }

// VariantKey is the key of a generated variant: image uuid, variant name,
// the versions (Unix ms) of the image and the variant definition it was
// made from, the output width (0 for "original") and the canonical
// extension.
func VariantKey(uuid, variant string, imageModified, variantModified int64, width int, ext string) string {
	return VariantPrefix(uuid, variant) + strconv.FormatInt(imageModified, 10) + "-" +
		strconv.FormatInt(variantModified, 10) + "/" + strconv.Itoa(width) + "." + ext
}

// IndexKey is the index marker recording that image uuid has stored
// objects of variant.
func IndexKey(variant, uuid string) string { return varRoot + variant + "/" + uuid }

// IndexPrefix is the prefix of all index markers of variant.
func IndexPrefix(variant string) string { return varRoot + variant + "/" }

// variantKeyParts is a parsed VariantKey.
type variantKeyParts struct {
	uuid, variant                  string
	imageModified, variantModified int64
}

// parseVariantKey parses a key made by VariantKey.
func parseVariantKey(key string) (variantKeyParts, bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 5 || parts[0]+"/" != imgRoot {
		return variantKeyParts{}, false
	}
	im, vm, ok := strings.Cut(parts[3], "-")
	if !ok {
		return variantKeyParts{}, false
	}
	i, err1 := strconv.ParseInt(im, 10, 64)
	v, err2 := strconv.ParseInt(vm, 10, 64)
	if err1 != nil || err2 != nil {
		return variantKeyParts{}, false
	}
	return variantKeyParts{uuid: parts[1], variant: parts[2], imageModified: i, variantModified: v}, true
}

// imageState is the state record of an image (JSON at StateKey).
type imageState struct {
	// UUID is the image's UUID.
	UUID string `json:"uuid"`
	// State is published, offline or deleted.
	State string `json:"state"`
	// Modified is the image document version the stored variants are of.
	Modified int64 `json:"modified"`
	// SourceTime is the source time of the event that wrote an
	// offline/deleted marker.
	SourceTime int64 `json:"sourceTime,omitempty"`
	// Written is when the record was written (Unix ms).
	Written int64 `json:"written"`
}

// loadState reads the state record of uuid; (nil, nil) if there is none.
func loadState(ctx context.Context, st Store, uuid string) (*imageState, error) {
	obj, err := st.Get(ctx, StateKey(uuid))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	var s imageState
	if err := json.Unmarshal(obj.Data, &s); err != nil || s.State == "" {
		// A damaged record is treated as absent: the CMS is asked again.
		return nil, nil
	}
	return &s, nil
}

// saveState writes the state record, with the state also as metadata and,
// for offline/deleted markers, as the object tag "state" (S3 lifecycle
// rules and operators can select on it).
func saveState(ctx context.Context, st Store, s imageState) error {
	s.Written = time.Now().UnixMilli()
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode state of %s: %w", s.UUID, err)
	}
	key := StateKey(s.UUID)
	meta := map[string]string{"state": s.State, "modified": strconv.FormatInt(s.Modified, 10)}
	if err := st.Put(ctx, key, b, "application/json", meta); err != nil {
		return fmt.Errorf("%w: save state of %s: %w", ErrStoreUnavailable, s.UUID, err)
	}
	if s.State != StatePublished {
		tags := map[string]string{"state": s.State, "source-time": strconv.FormatInt(s.SourceTime, 10)}
		if err := st.SetTags(ctx, key, tags); err != nil {
			return fmt.Errorf("%w: tag state of %s: %w", ErrStoreUnavailable, s.UUID, err)
		}
	}
	return nil
}
