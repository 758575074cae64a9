package cache

import (
	"slices"
	"testing"
)

func TestChangeHits(t *testing.T) {
	full := Dependency{Kind: DepDocument, Name: "s"}
	topline := Dependency{Kind: DepDocument, Name: "s", Props: []string{"sophora:id", "topline"}}
	tests := []struct {
		name string
		c    Change
		d    Dependency
		want bool
	}{
		{"full dependency, any change", Change{State: StatePublished, ChangedProps: []string{"copytext"}}, full, true},
		{"property met", Change{State: StatePublished, ChangedProps: []string{"topline"}}, topline, true},
		{"property not met", Change{State: StatePublished, ChangedProps: []string{"copytext"}}, topline, false},
		{"nothing changed", Change{State: StatePublished, ChangedProps: []string{}}, topline, false},
		{"unknown properties", Change{State: StatePublished}, topline, true},
		{"deleted", Change{State: StateDeleted, ChangedProps: []string{"copytext"}}, topline, true},
		{"offline", Change{State: StateOffline}, topline, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.hits(tt.d); got != tt.want {
				t.Fatalf("hits = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPriorityFor(t *testing.T) {
	tests := []struct{ n, want int }{{0, 100}, {1, 100}, {2, 94}, {10, 80}, {100, 60}, {1000, 40}, {10000, 20}, {100000, 1}, {1e7, 1}}
	prev := 101
	for _, tt := range tests {
		got := PriorityFor(tt.n)
		if got != tt.want {
			t.Errorf("PriorityFor(%d) = %d, want %d", tt.n, got, tt.want)
		}
		if got > prev {
			t.Errorf("priority rises with file count at %d", tt.n)
		}
		prev = got
	}
}

func files(names ...string) []FileID {
	out := make([]FileID, len(names))
	for i, n := range names {
		out[i] = FileID{Root: 1, File: n}
	}
	return out
}

func TestSplitJobs(t *testing.T) {
	tests := []struct {
		name  string
		files []FileID
		doc   string
		want  [][]string
	}{
		{"none", nil, "story100", nil},
		{"own page smaller than rest: split", files("politik/story100.html", "a/index.html", "b/index.html"), "story100",
			[][]string{{"politik/story100.html"}, {"a/index.html", "b/index.html"}}},
		{"own group not smaller: one job", files("politik/story100.html", "politik/story100-print.html", "a/index.html"), "story100",
			[][]string{{"politik/story100.html", "politik/story100-print.html", "a/index.html"}}},
		{"prefix must be a whole ID", files("politik/story1000.html", "a/index.html", "b/index.html"), "story100",
			[][]string{{"politik/story1000.html", "a/index.html", "b/index.html"}}},
		{"only others", files("a/index.html", "b/index.html"), "story100", [][]string{{"a/index.html", "b/index.html"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs := SplitJobs(tt.files, tt.doc)
			if len(jobs) != len(tt.want) {
				t.Fatalf("got %d jobs, want %d: %+v", len(jobs), len(tt.want), jobs)
			}
			for i, j := range jobs {
				var names []string
				for _, f := range j.Files {
					names = append(names, f.File)
				}
				if !slices.Equal(names, tt.want[i]) {
					t.Errorf("job %d = %v, want %v", i, names, tt.want[i])
				}
				if j.Priority != PriorityFor(len(j.Files)) {
					t.Errorf("job %d priority %d for %d files", i, j.Priority, len(j.Files))
				}
			}
		})
	}
}
