package cache

import (
	"testing"

	"go.uber.org/zap"
)

func TestRecentChanges(t *testing.T) {
	story1 := &Entry{Deps: []Dependency{{Kind: DepDocument, Name: "story1", Props: []string{"title"}}}, Keys: []string{"home"}}
	doc := func(id string, props ...string) Change {
		return Change{Kind: DepDocument, ID: id, State: StatePublished, ChangedProps: props}
	}
	tests := []struct {
		name   string
		before []Change // noted before the render began
		during []Change // noted while it ran
		want   bool
	}{
		{"no change", nil, nil, false},
		{"a change before the render", []Change{doc("story1")}, nil, false},
		{"its document", nil, []Change{doc("story1")}, true},
		{"its document by UUID", nil, []Change{{Kind: DepDocument, ID: "x", UUID: "story1", State: StateDeleted}}, true},
		{"a property it does not use", nil, []Change{doc("story1", "copytext")}, false},
		{"a property it uses", nil, []Change{doc("story1", "copytext", "title")}, true},
		{"another document", nil, []Change{doc("story2")}, false},
		{"a node of the same name", nil, []Change{{Kind: DepNode, ID: "story1", State: StatePublished}}, false},
		{"its key flushed", nil, []Change{{Kind: DepKey, ID: "home", State: StatePublished}}, true},
		{"another key", nil, []Change{{Kind: DepKey, ID: "news", State: StatePublished}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecentChanges(zap.NewNop())
			other := r.begin() // another render under way keeps the earlier changes
			for _, c := range tt.before {
				r.note(c)
			}
			mark := r.begin()
			for _, c := range tt.during {
				r.note(c)
			}
			put := false
			outdated, err := r.record(mark, story1, func() error { put = true; return nil })
			if err != nil || outdated != tt.want || put == tt.want {
				t.Errorf("outdated %v (put %v, %v), want %v", outdated, put, err, tt.want)
			}
			r.end(mark)
			r.end(other)
			if len(r.log) != 0 || len(r.renders) != 0 {
				t.Errorf("after the renders: %d changes, %d marks kept", len(r.log), len(r.renders))
			}
		})
	}
}

// TestRecentChangesKeepOnlyWhatRendersNeed: with no render under way
// nothing is kept; a change is kept as long as a render that began before
// it runs; past the bound the oldest go, and the renders that began before
// them are taken as outdated.
func TestRecentChangesKeepOnlyWhatRendersNeed(t *testing.T) {
	r := newRecentChanges(zap.NewNop())
	c := Change{Kind: DepDocument, ID: "story9", State: StatePublished}
	r.note(c)
	if len(r.log) != 0 {
		t.Fatalf("kept %d changes with no render under way", len(r.log))
	}
	first := r.begin()
	r.note(c)
	second := r.begin()
	r.note(c)
	r.end(first)
	if len(r.log) != 1 {
		t.Fatalf("kept %d changes for the second render, want 1", len(r.log))
	}
	r.end(second)
	if len(r.log) != 0 {
		t.Fatalf("kept %d changes with no render under way", len(r.log))
	}

	long := r.begin()
	for range recentChangesMax {
		r.note(c)
	}
	late := r.begin()
	r.note(c)
	if len(r.log) != recentChangesMax || r.overflowed() != 1 {
		t.Fatalf("log %d, overflowed %d; want the bound and 1", len(r.log), r.overflowed())
	}
	unrelated := &Entry{Deps: []Dependency{{Kind: DepDocument, Name: "story1"}}}
	if !r.touched(long, unrelated) {
		t.Error("a render that began before a dropped change is not taken as outdated")
	}
	if r.touched(late, unrelated) {
		t.Error("a render that began after the dropped change is taken as outdated")
	}
	r.end(long)
	r.end(late)
	if len(r.log) != 0 || r.full {
		t.Fatalf("after the renders: %d changes, full %v", len(r.log), r.full)
	}
}
