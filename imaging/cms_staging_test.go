package imaging

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/integration/origin"
	"github.com/delivery-edge/edge/internal/stagingtest"
	"github.com/delivery-edge/edge/stagingclient"
)

func TestStagingCMSMapping(t *testing.T) {
	content, client := stagingtest.Demo(t)
	cms := NewStagingCMS(client)
	ctx := context.Background()
	imgUUID := origin.DemoUUID(origin.ImageID(0))

	doc, err := cms.Image(ctx, imgUUID)
	if err != nil {
		t.Fatal(err)
	}
	latest, _ := content.Latest(imgUUID)
	if doc.UUID != imgUUID || doc.Modified != latest.Modified || doc.State != StatePublished {
		t.Fatalf("Image = %+v, want uuid %s modified %d published", doc, imgUUID, latest.Modified)
	}
	if doc.Focus == nil || doc.Focus.X != 0.3 || doc.Focus.Y != 0.4 {
		t.Fatalf("focus = %+v, want {0.3 0.4}", doc.Focus)
	}

	// A story is not an image; an unknown UUID is unknown; an offline
	// image is not served by staging: all 404.
	for _, id := range []string{origin.DemoUUID(origin.StoryID(0)), "00000000-1111-2222-3333-444444444444"} {
		if _, err := cms.Image(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Image(%s) error = %v, want ErrNotFound", id, err)
		}
	}
	content.SetState(origin.ImageID(1), origin.StateOffline)
	if _, err := cms.Image(ctx, origin.DemoUUID(origin.ImageID(1))); !errors.Is(err, ErrNotFound) {
		t.Errorf("offline image: error = %v, want ErrNotFound", err)
	}
	if _, err := cms.Original(ctx, origin.DemoUUID(origin.ImageID(1))); !errors.Is(err, ErrNotFound) {
		t.Errorf("original of offline image: error = %v, want ErrNotFound", err)
	}

	rc, err := cms.Original(ctx, imgUUID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	want, _ := content.Binary(imgUUID)
	if string(got) != string(want) {
		t.Fatalf("Original: %d bytes, want %d", len(got), len(want))
	}

	defs, err := cms.Variants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]VariantDef{}
	for _, d := range defs {
		byName[d.Name] = d
	}
	if d := byName["16x9-768"]; d.Aspect != "16x9" || d.Width != 768 || d.Modified == 0 {
		t.Fatalf("variant 16x9-768 = %+v", d)
	}
	if d := byName["4x3"]; d.Aspect != "4x3" || d.Width != 0 {
		t.Fatalf("variant 4x3 = %+v", d)
	}
}

func TestStagingCMSUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer srv.Close()
	client, err := stagingclient.New(stagingclient.Config{BaseURLs: []string{srv.URL}, Token: origin.DemoToken, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cms := NewStagingCMS(client)
	_, err = cms.Image(context.Background(), origin.DemoUUID("image200"))
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("error = %v, want a CMS failure that is not ErrNotFound", err)
	}
	// The access service classifies it as CMS unavailable: 503.
	access := NewAccess(AccessConfig{}, newTestFolderStore(t), cms, zap.NewNop())
	p := URLParts{UUID: origin.DemoUUID("image200"), ImageModified: 1, VariantModified: 1,
		Variant: VariantOriginal, Format: "jpg"}
	if _, err := access.Lookup(context.Background(), p); HTTPStatus(err) != http.StatusServiceUnavailable {
		t.Fatalf("Lookup error = %v (status %d), want 503", err, HTTPStatus(err))
	}
}

func TestFocusOf(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want *Point
	}{
		{map[string]any{"x": 0.25, "y": 1.0}, &Point{X: 0.25, Y: 1}},
		{map[string]any{"x": json.Number("0.5"), "y": "0"}, &Point{X: 0.5, Y: 0}},
		{map[string]any{"x": 1.5, "y": 0.5}, nil},
		{map[string]any{"x": 0.5}, nil},
		{map[string]any{"x": true, "y": 0.5}, nil},
		{"0.5,0.5", nil},
		{nil, nil},
	} {
		got := focusOf(tc.in)
		if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
			t.Errorf("focusOf(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}
