package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// TestStagingUnknownEventsDoNotStopInvalidation: a page of events that
// mixes known ones with kinds and states the edge does not know is applied
// (unknown kind skipped, unknown state = every dependent file changed,
// without a purge), each unknown kind/state is logged once and counted,
// and a title change after it still reaches the page.
func TestStagingUnknownEventsDoNotStopInvalidation(t *testing.T) {
	o := harness.StartOriginWith(t, harness.OriginOptions{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Global: o.StagingBlock("100ms", true),
		Route: "metrics /metrics"})
	pages := []string{storyPath, "/politik/story101.html", "/politik/story102.html", "/sport/story105.html"}
	for _, p := range pages {
		harness.Get(t, nil, e.URL()+p)
	}
	settle()
	before := modTimes(t, e, pages)
	if len(before) != len(pages) {
		t.Fatalf("cached %d of %d pages", len(before), len(pages))
	}

	doc := func(kind, id, state string, changed ...string) origin.Event {
		return origin.Event{Kind: kind, ID: id, UUID: origin.DemoUUID(id), NodeType: "story", State: state, ChangedProperties: changed}
	}
	// One step, so that the edge gets them in one answer.
	o.Content.AppendEvents(
		doc("folder", "story105", origin.StateDeleted),                           // unknown kind: skipped
		doc(origin.KindDocument, "story102", "saved", "a-property-nobody-reads"), // unknown state: every dependent
		doc(origin.KindDocument, "story101", origin.StatePublished, "copytext"),  // known
		doc("folder", "story105", origin.StateDeleted),                           // the same pair again: logged once
		origin.Event{Kind: "teaserGroup", ID: "tg1", State: "frozen"},            // unknown kind and state
	)
	title := fmt.Sprintf("Titel nach Unbekanntem %d", rand.Int())
	o.Content.Update("story100", map[string]any{"title": title})
	waitFor(t, 10*time.Second, "the new title on the story page", func() bool {
		_, _, body := harness.Get(t, nil, e.URL()+storyPath)
		return strings.Contains(body, title)
	})

	// story101 (known change of copytext) and story102 (unknown state)
	// are invalidated and keep their .old copies; story105 (unknown kind,
	// "deleted") is untouched.
	waitFor(t, 5*time.Second, "story101 and story102 invalidated", func() bool {
		return !e.Exists("politik/story101.html") && !e.Exists("politik/story102.html")
	})
	for _, f := range []string{"politik/story101.html", "politik/story102.html"} {
		if !e.Exists(f + cache.OldSuffix) {
			t.Errorf("%s: no .old copy; an unknown state must not purge", f)
		}
	}
	if info, err := os.Stat(e.File("sport/story105.html")); err != nil || !info.ModTime().Equal(before["/sport/story105.html"]) {
		t.Errorf("story105 changed by an event of an unknown kind: %v", err)
	}

	_, _, metrics := harness.Get(t, nil, e.URL()+"/metrics")
	for _, want := range []string{
		`delivery_staging_events_unknown_total{kind="folder",state="deleted"} 2`,
		`delivery_staging_events_unknown_total{kind="document",state="saved"} 1`,
		`delivery_staging_events_unknown_total{kind="teaserGroup",state="frozen"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	log := e.Log()
	for msg, n := range map[string]int{"event of an unknown kind skipped": 2, "event of an unknown state taken as a change": 1} {
		if got := strings.Count(log, msg); got != n {
			t.Errorf("%q logged %d times, want %d (once per kind and state)", msg, got, n)
		}
	}
}
