package stagingclient

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestUnknownEventsTriage: an unknown kind is skipped, an unknown state of
// a known kind becomes a publication that changed every property, known
// events pass unchanged; each distinct kind/state pair is logged once and
// every unknown event is counted. (The mapping to cache changes is tested
// with the invalidation, in caddymodule.)
func TestUnknownEventsTriage(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	u := NewUnknownEvents(zap.New(core))
	ev := func(kind, state string, props ...string) Event {
		return Event{SourceTime: 1, Kind: kind, ID: "x", State: state, ChangedProperties: props}
	}
	for _, tc := range []struct {
		in   Event
		want Event
		ok   bool
	}{
		{ev("document", "published", "title"), ev("document", "published", "title"), true},
		{ev("folder", "published", "title"), Event{}, false},
		{ev("document", "saved", "copytext"), ev("document", "published"), true},
		{ev("yellow", "offline"), ev("yellow", "offline"), true},
		{ev("folder", "saved"), Event{}, false},
	} {
		got, ok := u.Triage(tc.in)
		if ok != tc.ok || (ok && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("Triage(%+v) = %+v %v, want %+v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	want := map[EventPair]int64{{"folder", "published"}: 1, {"document", "saved"}: 1, {"folder", "saved"}: 1}
	if got := u.Counts(); !reflect.DeepEqual(got, want) {
		t.Errorf("counts %v, want %v", got, want)
	}
	if n := logs.Len(); n != 3 {
		t.Errorf("%d log lines, want 3", n)
	}
	var quiet UnknownEvents // the zero value works and logs nothing
	if _, ok := quiet.Triage(ev("document", "saved")); !ok || quiet.Counts()[EventPair{"document", "saved"}] != 1 {
		t.Errorf("zero value: %v", quiet.Counts())
	}
}

// TestUnknownEventsBounded: past maxUnknownPairs distinct pairs, events are
// counted as other/other and the log says so once.
func TestUnknownEventsBounded(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	u := NewUnknownEvents(zap.New(core))
	for i := range maxUnknownPairs + 10 {
		for range 2 {
			u.Triage(Event{SourceTime: int64(i + 1), Kind: "document", ID: "s", State: fmt.Sprintf("state%d", i)})
		}
	}
	u.Triage(Event{SourceTime: 99, Kind: "kind\xff", ID: "s", State: "published"})
	counts := u.Counts()
	if len(counts) != maxUnknownPairs+1 {
		t.Errorf("%d distinct label pairs, want %d", len(counts), maxUnknownPairs+1)
	}
	if n := counts[EventPair{otherLabel, otherLabel}]; n != 2*10+1 {
		t.Errorf("other = %d, want 21", n)
	}
	if n := logs.Len(); n != maxUnknownPairs+1 {
		t.Errorf("%d log lines, want %d (one per pair, one for the limit)", n, maxUnknownPairs+1)
	}

	// A label value that is not valid UTF-8 never reaches Prometheus.
	u2 := &UnknownEvents{}
	u2.Triage(Event{Kind: "kind\xff", ID: "s", State: "published"})
	for p := range u2.Counts() {
		m := prometheus.MustNewConstMetric(prometheus.NewDesc("x", "x", []string{"kind", "state"}, nil),
			prometheus.CounterValue, 1, p.Kind, p.State)
		if m == nil {
			t.Fatal("no metric")
		}
	}
}
