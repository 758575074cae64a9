package caddymodule

import (
	"context"
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/imaging"
	"github.com/delivery-edge/edge/integration/origin"
	"github.com/delivery-edge/edge/internal/stagingtest"
	"github.com/delivery-edge/edge/stagingclient"
)

// TestImageNegativeSharedWithUpdates: the image handlers and the image
// update service of one app share the store's negative cache: an image
// unknown to the CMS is remembered for the handlers, and the update
// service's event for it ends that at once.
func TestImageNegativeSharedWithUpdates(t *testing.T) {
	content, client := stagingtest.Demo(t)
	a := &App{dataDir: t.TempDir(), log: zap.NewNop(),
		ImageUpdates: &StagingConfig{URLs: []string{client.BaseURL()}, Token: origin.DemoToken}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	f, err := provisionImageUpdates(a, ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer f.client.Close()
	// What ImageService.Provision does.
	store, err := acquireImageStore(a)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Release()
	access := imaging.NewAccess(imaging.AccessConfig{}, store, imaging.NewStagingCMS(client), nil,
		imaging.WithNegativeCache(store.negative))

	const id = "newimage"
	uuid := origin.DemoUUID(id)
	p := imaging.URLParts{UUID: uuid, ImageModified: 1, Variant: imaging.VariantOriginal, Format: "png"}
	for range 2 {
		if _, err := access.Lookup(t.Context(), p); imaging.HTTPStatus(err) != http.StatusNotFound {
			t.Fatalf("unknown image: %v, want 404", err)
		}
	}
	if st, ok := imageNegativeStats(); !ok || st.Hits < 1 || st.Entries < 1 {
		t.Fatalf("negative stats %+v (%v), want a hit and an entry", st, ok)
	}

	// Published: still remembered until the update service applies the
	// event.
	content.SetBinary(uuid, origin.DemoJPEG(320, 180, 1))
	ev := content.Put(origin.Document{ID: id, UUID: uuid, NodeType: "image"}, nil)
	if _, err := access.Lookup(t.Context(), p); imaging.HTTPStatus(err) != http.StatusNotFound {
		t.Fatalf("before the event: %v, want 404 (remembered)", err)
	}
	eng, err := cache.Open(cache.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	events := []stagingclient.Event{{SourceTime: ev.SourceTime, Kind: ev.Kind, ID: ev.ID, UUID: ev.UUID,
		NodeType: ev.NodeType, State: ev.State}}
	if err := f.apply(t.Context(), eng, events, ev.SourceTime); err != nil {
		t.Fatal(err)
	}
	if _, err := access.Lookup(t.Context(), p); err != nil {
		t.Fatalf("after the event: %v, want the image", err)
	}
}
