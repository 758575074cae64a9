package registry

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.uber.org/zap"
)

func openTestRegistry(t *testing.T, dir string) *Registry {
	t.Helper()
	r, err := Open(dir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func findFiles(t *testing.T, r *Registry, kind DepKind, name string) []string {
	t.Helper()
	var files []string
	if err := r.Find(kind, name, func(id FileID, _ Dependency) bool {
		files = append(files, id.File)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

func TestRegistryIndexes(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	a := FileID{1, "politik/story100.html"}
	b := FileID{1, "politik/index.html"}
	mustPut := func(id FileID, e Entry) {
		t.Helper()
		if err := r.Put(id, e); err != nil {
			t.Fatal(err)
		}
	}
	mustPut(a, Entry{Key: "/politik/story100.html", Deps: []Dependency{
		{Kind: DepDocument, Name: "story100"},
		{Kind: DepDocument, Name: "story101", Props: []string{"title", "topline"}},
		{Kind: DepResource, Name: "page.tmpl", Hash: "v1"},
	}, Keys: []string{"story100"}, Expires: 1234})
	mustPut(b, Entry{Key: "/politik/", Deps: []Dependency{{Kind: DepNode, Name: "/politik"}, {Kind: DepDocument, Name: "story100", Props: []string{"title"}}}})

	check := func(stage string) {
		t.Helper()
		tests := []struct {
			kind DepKind
			name string
			want []string
		}{
			{DepDocument, "story100", []string{b.File, a.File}},
			{DepDocument, "story101", []string{a.File}},
			{DepNode, "/politik", []string{b.File}},
			{DepResource, "page.tmpl", []string{a.File}},
			{DepKey, "story100", []string{a.File}},
			{DepDocument, "story1", nil},
		}
		for _, tt := range tests {
			if got := findFiles(t, r, tt.kind, tt.name); !slices.Equal(got, tt.want) {
				t.Errorf("%s: Find(%s %q) = %v, want %v", stage, tt.kind, tt.name, got, tt.want)
			}
		}
		var props []string
		_ = r.Find(DepDocument, "story101", func(_ FileID, d Dependency) bool { props = d.Props; return true })
		if !slices.Equal(props, []string{"title", "topline"}) {
			t.Errorf("%s: props = %v", stage, props)
		}
	}
	check("pending") // before the writer applied anything: read from the journal's records
	r.Sync()
	check("applied")

	// Re-rendering replaces the old dependencies.
	mustPut(a, Entry{Key: "/politik/story100.html", Deps: []Dependency{{Kind: DepDocument, Name: "story102"}}})
	r.Sync()
	if got := findFiles(t, r, DepDocument, "story101"); got != nil {
		t.Errorf("old dependency survived: %v", got)
	}
	if got := findFiles(t, r, DepDocument, "story102"); !slices.Equal(got, []string{a.File}) {
		t.Errorf("new dependency missing: %v", got)
	}
	if err := r.Remove(b); err != nil {
		t.Fatal(err)
	}
	if got := findFiles(t, r, DepNode, "/politik"); got != nil {
		t.Errorf("removed file still found (pending): %v", got)
	}
	r.Sync()
	if got := findFiles(t, r, DepNode, "/politik"); got != nil {
		t.Errorf("removed file still found: %v", got)
	}
	if _, ok, _ := r.Get(b); ok {
		t.Error("removed entry still there")
	}
}

// TestRegistryJournalReplay simulates a crash between the journal write
// and the database write: the records must be applied on the next open.
func TestRegistryJournalReplay(t *testing.T) {
	dir := t.TempDir()
	r := openTestRegistry(t, dir)
	if err := r.Put(FileID{1, "a.html"}, Entry{Key: "/a.html", Deps: []Dependency{{Kind: DepDocument, Name: "doc"}}}); err != nil {
		t.Fatal(err)
	}
	r.Sync()
	journal, err := os.ReadFile(filepath.Join(dir, "journal.log"))
	if err != nil {
		t.Fatal(err)
	}
	r.Close()

	// Append what a killed process leaves behind: two records after the
	// applied position that never reached the database.
	var crashed []byte
	for _, rec := range []journalRecord{
		{Seq: 2, Root: 1, File: "b.html", Entry: &Entry{Key: "/b.html", Deps: []Dependency{{Kind: DepDocument, Name: "doc"}}}},
		{Seq: 3, Root: 1, File: "a.html"},
	} {
		line, _ := json.Marshal(rec)
		crashed = append(crashed, append(line, '\n')...)
	}
	if err := os.WriteFile(filepath.Join(dir, "journal.log"), append(journal, crashed...), 0o600); err != nil {
		t.Fatal(err)
	}

	r = openTestRegistry(t, dir)
	defer r.Close()
	if got := findFiles(t, r, DepDocument, "doc"); !slices.Equal(got, []string{"b.html"}) {
		t.Fatalf("after replay: %v, want [b.html]", got)
	}
}

func TestRegistryRootIDs(t *testing.T) {
	dir := t.TempDir()
	r := openTestRegistry(t, dir)
	a1, _ := r.Root("/srv/a")
	b1, _ := r.Root("/srv/b")
	a2, _ := r.Root("/srv/a")
	r.Close()
	r = openTestRegistry(t, dir)
	defer r.Close()
	a3, _ := r.Root("/srv/a")
	if a1 == b1 || a1 != a2 || a1 != a3 {
		t.Fatalf("root ids: a=%d b=%d a=%d a(reopened)=%d", a1, b1, a2, a3)
	}
}
