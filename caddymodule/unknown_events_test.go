package caddymodule

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/stagingclient"
)

// TestChangesOfUnknownEvents: an unknown kind is skipped, an unknown state
// of a known kind becomes a publication that changed every property, known
// events pass unchanged; each distinct kind/state pair is logged once and
// every unknown event is counted.
func TestChangesOfUnknownEvents(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	u := stagingclient.NewUnknownEvents(zap.New(core))
	ev := func(st int64, kind, id, state string, props ...string) stagingclient.Event {
		return stagingclient.Event{SourceTime: st, Kind: kind, ID: id, UUID: "u-" + id, State: state, ChangedProperties: props}
	}
	events := []stagingclient.Event{
		ev(1, "document", "story1", "published", "title"),
		ev(2, "folder", "story2", "published", "title"),  // unknown kind
		ev(3, "document", "story3", "saved", "copytext"), // unknown state
		ev(4, "node", "/politik", "archived"),            // unknown state
		ev(5, "folder", "story5", "published"),           // same pair as 2: counted, not logged again
		ev(6, "document", "story6", "saved", "title"),    // same pair as 3
		ev(7, "yellow", "story7", "offline"),
		ev(8, "folder", "story8", "saved"), // unknown both: skipped
	}
	got := changesOf(events, u)
	want := []cache.Change{
		{Kind: cache.DepDocument, ID: "story1", UUID: "u-story1", State: cache.StatePublished, ChangedProps: []string{"title"}, SourceTime: 1},
		{Kind: cache.DepDocument, ID: "story3", UUID: "u-story3", State: cache.StatePublished, SourceTime: 3},
		{Kind: cache.DepNode, ID: "/politik", UUID: "u-/politik", State: cache.StatePublished, SourceTime: 4},
		{Kind: cache.DepDocument, ID: "story6", UUID: "u-story6", State: cache.StatePublished, SourceTime: 6},
		{Kind: cache.DepYellow, ID: "story7", UUID: "u-story7", State: cache.StateOffline, SourceTime: 7},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("changes:\n got %+v\nwant %+v", got, want)
	}
	counts := u.Counts()
	wantCounts := map[stagingclient.EventPair]int64{{Kind: "folder", State: "published"}: 2, {Kind: "document", State: "saved"}: 2, {Kind: "node", State: "archived"}: 1, {Kind: "folder", State: "saved"}: 1}
	if !reflect.DeepEqual(counts, wantCounts) {
		t.Errorf("counts %v, want %v", counts, wantCounts)
	}
	if n := logs.Len(); n != 4 {
		t.Errorf("%d log lines, want one per distinct pair (4):\n%v", n, logs.All())
	}
	if n := logs.FilterMessageSnippet("unknown kind skipped").Len(); n != 2 {
		t.Errorf("%d lines about skipped kinds, want 2", n)
	}

	// The same batch again (the poller offers a failed batch again): the
	// same changes, counted again, nothing new in the log.
	if again := changesOf(events, u); !reflect.DeepEqual(again, want) {
		t.Errorf("second pass: %+v", again)
	}
	if n := logs.Len(); n != 4 {
		t.Errorf("%d log lines after the second pass, want still 4", n)
	}

	// The zero value works and logs nothing.
	var quiet stagingclient.UnknownEvents
	if got := changesOf(events, &quiet); !reflect.DeepEqual(got, want) {
		t.Errorf("zero value: %+v", got)
	}
}

// TestUnknownStateInvalidatesEveryDependent runs the changes through the
// cache: a page that reads only the title of a document is left alone by
// a known change of another property, and is invalidated by an event of
// an unknown state, which keeps the .old copy (no purge).
func TestUnknownStateInvalidatesEveryDependent(t *testing.T) {
	eng, err := cache.Open(cache.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	docroot := t.TempDir()
	st, err := eng.Store(docroot)
	if err != nil {
		t.Fatal(err)
	}
	const page = "teaser.html"
	if err := os.WriteFile(filepath.Join(docroot, page), []byte("teaser"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := eng.Registry().Put(st.ID(page), cache.Entry{Key: "/" + page, Created: time.Now().UnixMilli(),
		Deps: []cache.Dependency{{Kind: cache.DepDocument, Name: "story1", Props: []string{"title"}}}}); err != nil {
		t.Fatal(err)
	}
	eng.Registry().Sync()
	u := stagingclient.NewUnknownEvents(nil)
	apply := func(upTo int64, state string, props ...string) {
		t.Helper()
		ev := stagingclient.Event{SourceTime: upTo, Kind: "document", ID: "story1", State: state, ChangedProperties: props}
		if err := eng.ApplyChanges(changesOf([]stagingclient.Event{ev}, u), stagingPosition, upTo); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(name string) bool { _, err := os.Stat(filepath.Join(docroot, name)); return err == nil }

	apply(1, "published", "copytext")
	time.Sleep(300 * time.Millisecond) // the removal queue would act within this
	if !exists(page) {
		t.Fatal("a change of a property the page does not read invalidated it")
	}

	apply(2, "saved", "copytext")
	deadline := time.Now().Add(5 * time.Second)
	for exists(page) || !exists(page+cache.OldSuffix) {
		if time.Now().After(deadline) {
			t.Fatalf("after an unknown state: page present %v, .old present %v; want the page invalidated to .old",
				exists(page), exists(page+cache.OldSuffix))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if pos, err := eng.Position(stagingPosition); err != nil || pos != 2 {
		t.Errorf("position %d, %v; want 2", pos, err)
	}
	if !strings.Contains(fmt.Sprint(u.Counts()), "saved") {
		t.Errorf("counts %v", u.Counts())
	}
}
