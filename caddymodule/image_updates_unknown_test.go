package caddymodule

import (
	"context"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/imaging"
	"github.com/delivery-edge/edge/integration/origin"
	"github.com/delivery-edge/edge/internal/stagingtest"
	"github.com/delivery-edge/edge/stagingclient"
)

// TestImageUpdatesUnknownEvents reads events through the staging client
// from the sample origin and applies them: an image event of an unknown
// kind is skipped (a "deleted" one leaves the image served), an unknown
// state of an image counts as a change (its stored objects go, and it is
// not marked gone). The position moves on either way.
func TestImageUpdatesUnknownEvents(t *testing.T) {
	content := origin.NewContent()
	const id = "image1"
	content.SetBinary(origin.DemoUUID(id), origin.DemoJPEG(64, 48, 1))
	content.Put(origin.Document{ID: id, UUID: origin.DemoUUID(id), NodeType: "image"}, nil)
	client := stagingtest.Serve(t, content)
	store, err := imaging.NewFolderStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	eng, err := cache.Open(cache.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	core, logs := observer.New(zap.WarnLevel)
	f := &imageUpdatesFeature{client: client, log: zap.NewNop(),
		updater: imaging.NewUpdater(store, imaging.NewStagingCMS(client), zap.NewNop()),
		unknown: stagingclient.NewUnknownEvents(zap.New(core))}
	ctx := context.Background()

	// apply fetches the events after the stored position and applies them
	// as the poller would.
	apply := func() {
		t.Helper()
		since, _ := eng.Position(imageUpdatesPosition)
		page, err := client.Events(ctx, since, 0, 0)
		if err != nil {
			t.Fatalf("events: %v", err)
		}
		upTo, _ := page.UpTo()
		if err := f.apply(ctx, eng, page.Events, upTo); err != nil {
			t.Fatalf("apply: %v", err)
		}
		if pos, _ := eng.Position(imageUpdatesPosition); pos != content.LastSourceTime() {
			t.Fatalf("position %d, want %d", pos, content.LastSourceTime())
		}
	}
	apply() // the image's publication, before anything is stored

	img, _ := content.Latest(id)
	access := imaging.NewAccess(imaging.AccessConfig{}, store, imaging.NewStagingCMS(client), zap.NewNop())
	p := imaging.URLParts{UUID: img.UUID, ImageModified: img.Modified, Variant: imaging.VariantOriginal, Format: "png"}
	if _, err := access.Lookup(ctx, p); err != nil {
		t.Fatal(err)
	}
	objects := func() int {
		n := 0
		if err := store.List(ctx, imaging.ImagePrefix(img.UUID), func(imaging.ObjectInfo) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	stored := objects()
	if stored == 0 {
		t.Fatal("nothing stored for the image")
	}
	content.AppendEvents(origin.Event{Kind: "asset", ID: id, UUID: img.UUID, NodeType: "image", State: origin.StateDeleted})
	apply()
	if n := objects(); n != stored {
		t.Fatalf("an event of an unknown kind changed the image's objects: %d, want %d", n, stored)
	}
	if _, err := access.Lookup(ctx, p); err != nil {
		t.Fatalf("after an event of an unknown kind: %v", err)
	}

	content.AppendEvents(origin.Event{Kind: origin.KindDocument, ID: id, UUID: img.UUID, NodeType: "image", State: "saved"})
	apply()
	if n := objects(); n != 0 {
		t.Fatalf("%d objects left after an unknown state, want none (a change)", n)
	}
	if _, err := access.Lookup(ctx, p); err != nil {
		t.Fatalf("after an unknown state the image must be served again, not marked gone: %v", err)
	}

	want := map[stagingclient.EventPair]int64{{Kind: "asset", State: "deleted"}: 1, {Kind: "document", State: "saved"}: 1}
	if got := f.unknown.Counts(); len(got) != 2 || got[stagingclient.EventPair{Kind: "asset", State: "deleted"}] != 1 || got[stagingclient.EventPair{Kind: "document", State: "saved"}] != 1 {
		t.Errorf("counts %v, want %v", got, want)
	}
	if logs.Len() != 2 {
		t.Errorf("%d log lines, want 2", logs.Len())
	}
}
