package imaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/delivery-edge/edge/stagingclient"
)

// StagingCMS is the CMS of the image service over the client of the
// staging servers (docs/staging-api.md): image documents, their original
// bytes and the variant definitions. A document the staging servers do not
// serve (unknown, offline, deleted) or that is not an image maps to
// ErrNotFound; any other error means the CMS could not be asked, which the
// image service answers with 503.
type StagingCMS struct {
	c *stagingclient.Client
}

// NewStagingCMS returns the CMS that asks the staging servers through c.
func NewStagingCMS(c *stagingclient.Client) StagingCMS { return StagingCMS{c: c} }

// Image implements CMS.
func (s StagingCMS) Image(ctx context.Context, uuid string) (*ImageDoc, error) {
	d, err := s.c.Document(ctx, uuid)
	if err != nil {
		return nil, cmsNotFound(err)
	}
	if d.NodeType != stagingclient.NodeTypeImage {
		return nil, fmt.Errorf("document %s is of type %q, not an image: %w", uuid, d.NodeType, ErrNotFound)
	}
	doc := &ImageDoc{UUID: d.UUID, State: d.State, Modified: d.Modified, Focus: focusOf(d.Properties["focus"])}
	if doc.UUID == "" {
		doc.UUID = uuid
	}
	return doc, nil
}

// Original implements CMS.
func (s StagingCMS) Original(ctx context.Context, uuid string) (io.ReadCloser, error) {
	b, err := s.c.Binary(ctx, uuid)
	if err != nil {
		return nil, cmsNotFound(err)
	}
	return b.Body, nil
}

// Variants implements CMS.
func (s StagingCMS) Variants(ctx context.Context) ([]VariantDef, error) {
	defs, err := s.c.ImageVariants(ctx)
	if err != nil {
		return nil, cmsNotFound(err)
	}
	out := make([]VariantDef, len(defs))
	for i, d := range defs {
		out[i] = VariantDef{Name: d.Name, Aspect: d.Aspect, Width: d.Width, Modified: d.Modified}
	}
	return out, nil
}

// cmsNotFound adds ErrNotFound to the staging client's not found.
func cmsNotFound(err error) error {
	if errors.Is(err, stagingclient.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// focusOf reads the focal point property {"x":0..1,"y":0..1}; anything
// else (absent, malformed, out of range) means no focal point, and the
// crop is centred.
func focusOf(v any) *Point {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	x, okx := unitNumber(m["x"])
	y, oky := unitNumber(m["y"])
	if !okx || !oky {
		return nil
	}
	return &Point{X: x, Y: y}
}

func unitNumber(v any) (float64, bool) {
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			return 0, false
		}
	case string:
		var err error
		if f, err = strconv.ParseFloat(n, 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	if math.IsNaN(f) || f < 0 || f > 1 {
		return 0, false
	}
	return f, true
}

var _ CMS = StagingCMS{}
