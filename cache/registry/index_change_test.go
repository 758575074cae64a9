package registry

import (
	"testing"
)

// TestIndexChange: writing an entry over an older one deletes only the
// index keys it lost and puts only keys that are new or changed.
func TestIndexChange(t *testing.T) {
	doc := func(n string) Dependency { return Dependency{Kind: DepDocument, Name: n} }
	res := func(n, h string) Dependency { return Dependency{Kind: DepResource, Name: n, Hash: h} }
	fileKey := FileID{Root: 1, File: "a.html"}.key()
	tests := []struct {
		name       string
		prev, e    *Entry
		dels, puts int // index-bucket operations
	}{
		{"new entry", nil, &Entry{Created: 1, Deps: []Dependency{doc("d1"), res("t", "v1")}}, 0, 2},
		{"same dependencies and time", &Entry{Created: 1, Deps: []Dependency{doc("d1"), res("t", "v1")}},
			&Entry{Created: 1, Deps: []Dependency{doc("d1"), res("t", "v1")}}, 0, 0},
		{"re-rendered: same dependencies, new time", &Entry{Created: 1, Deps: []Dependency{doc("d1"), res("t", "v1")}},
			&Entry{Created: 2, Deps: []Dependency{doc("d1"), res("t", "v1")}}, 0, 2},
		{"a dependency lost, one gained", &Entry{Created: 1, Deps: []Dependency{doc("d1"), doc("d2")}},
			&Entry{Created: 1, Deps: []Dependency{doc("d1"), doc("d3")}}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var del, put sortedOps
			indexChange(&del, &put, fileKey, tt.prev, tt.e)
			if got := len(del[string(bucketIndex)]); got != tt.dels {
				t.Errorf("%d index keys deleted, want %d", got, tt.dels)
			}
			if got := len(put[string(bucketIndex)]); got != tt.puts {
				t.Errorf("%d index keys put, want %d", got, tt.puts)
			}
		})
	}
}
