package cache

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// importCheckEntries writes registry entries for files of docroot straight
// into the data folder's registry.
func importCheckEntries(tb testing.TB, dataDir, docroot string, files []string) {
	tb.Helper()
	reg, err := OpenRegistry(dataDir, zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	defer reg.Close()
	root, err := reg.Root(docroot)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now().Add(-time.Hour).UnixMilli()
	i := 0
	if _, err := reg.Import(func() (ImportRecord, bool) {
		if i >= len(files) {
			return ImportRecord{}, false
		}
		name := files[i]
		i++
		return ImportRecord{ID: FileID{Root: root, File: name}, Entry: Entry{Key: "/" + name, Created: now,
			Deps: []Dependency{{Kind: DepDocument, Name: "doc-" + name}}, Keys: []string{"key-" + name}}}, true
	}); err != nil {
		tb.Fatal(err)
	}
}

// writeCheckFiles writes files (slash-separated names) into docroot.
func writeCheckFiles(tb testing.TB, docroot string, files ...string) {
	tb.Helper()
	for _, name := range files {
		full := filepath.Join(docroot, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// openChecked opens the engine of a generated data folder.
func openChecked(tb testing.TB, dataDir string) *Engine {
	tb.Helper()
	eng, err := Open(Options{DataDir: dataDir})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { eng.Close() })
	return eng
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestCheckFindings: names whose byte order differs from a folder-by-
// folder order ("a.html" < "a/b.html" < "a0.html" byte-wise, while "a"
// the folder lists between them), registered and not, with and without
// files; the edge's own companions are not findings.
func TestCheckFindings(t *testing.T) {
	dir := t.TempDir()
	dataDir, docroot := filepath.Join(dir, "data"), filepath.Join(dir, "docroot")
	registered := []string{
		"a.html", "a-b.html", "a/b.html", "a/index.html", "a0.html", "a.b/c.html", "ä.html",
		"b/c/d/e.html", "b/c.html", "b.html", "download.gz", "z/gone.html", "a/gone.html", "gone.html",
	}
	importCheckEntries(t, dataDir, docroot, registered)
	files := []string{
		"a.html", "a-b.html", "a/b.html", "a/index.html", "a0.html", "a.b/c.html", "ä.html",
		"b/c/d/e.html", "b/c.html", "b.html", "download.gz",
		// companions: precompressed copies of a page and of an .old copy,
		// and .old copies
		"a.html.gz", "a.html.br", "a/b.html.gz", "b/old.html.old", "b/old.html.gz", "b/old.html.br", "a0.html.old",
		// strays
		"a/stray.html", "stray.html", "a.b/stray.html", "b/c/d/stray.html", "orphan.html.gz", "zz/y.html",
	}
	writeCheckFiles(t, docroot, files...)
	eng := openChecked(t, dataDir)
	rep, err := eng.Check(nil)
	if err != nil {
		t.Fatal(err)
	}
	wantUnregistered := []string{"a.b/stray.html", "a/stray.html", "b/c/d/stray.html", "orphan.html.gz", "stray.html", "zz/y.html"}
	if got := sorted(rep.Unregistered); !slices.Equal(got, wantUnregistered) {
		t.Errorf("unregistered %q, want %q", got, wantUnregistered)
	}
	wantDangling := []string{"a/gone.html", "gone.html", "z/gone.html"}
	if got := sorted(rep.Dangling); !slices.Equal(got, wantDangling) {
		t.Errorf("dangling %q, want %q", got, wantDangling)
	}
	if rep.Files != 11+len(wantUnregistered) || rep.Entries != len(registered) || len(rep.BadIndex) != 0 || len(rep.TempFiles) != 0 {
		t.Errorf("report: %v", rep)
	}
}

// TestCheckHealthyCompanions: a healthy docroot with precompressed copies
// and .old copies has no findings.
func TestCheckHealthyCompanions(t *testing.T) {
	dir := t.TempDir()
	d := generateCheckData(t, dir, 300, 10)
	eng := openChecked(t, d.dataDir)
	rep, err := eng.Check(nil)
	if err != nil || rep.Problems() != 0 || rep.Files != 300 || rep.Entries != 300 {
		t.Fatalf("healthy docroot: %v %v", rep, err)
	}
}

// TestCheckDoesNotFollowSymlinks: a link to a folder or a file outside
// the docroot is neither walked nor reported.
func TestCheckDoesNotFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	dataDir, docroot, outside := filepath.Join(dir, "data"), filepath.Join(dir, "docroot"), filepath.Join(dir, "outside")
	importCheckEntries(t, dataDir, docroot, []string{"page.html"})
	writeCheckFiles(t, docroot, "page.html")
	writeCheckFiles(t, outside, "secret.html", "deeper/secret.html")
	for _, l := range []struct{ target, name string }{
		{outside, "linked"}, {filepath.Join(outside, "secret.html"), "secret.html"}, {"..", "up"},
	} {
		if err := os.Symlink(l.target, filepath.Join(docroot, l.name)); err != nil {
			t.Skipf("symlink: %v", err)
		}
	}
	eng := openChecked(t, dataDir)
	var last CheckProgress
	rep, err := eng.Check(func(p CheckProgress) { last = p })
	if err != nil || rep.Problems() != 0 || rep.Files != 1 {
		t.Fatalf("report: %v %v", rep, err)
	}
	if last.Files != 1 || last.Folders != 1 {
		t.Errorf("walked %d files in %d folders, want the page in the docroot", last.Files, last.Folders)
	}
}

// TestCheckTempFiles: files in the temp folder are findings, and the
// folder is not walked as part of the docroot.
func TestCheckTempFiles(t *testing.T) {
	dir := t.TempDir()
	dataDir, docroot := filepath.Join(dir, "data"), filepath.Join(dir, "docroot")
	importCheckEntries(t, dataDir, docroot, []string{"page.html"})
	writeCheckFiles(t, docroot, "page.html")
	eng := openChecked(t, dataDir)
	if _, err := eng.Store(docroot); err != nil { // removes stale temp files: add one after
		t.Fatal(err)
	}
	writeCheckFiles(t, docroot, TempDir+"/0123abcd")
	rep, err := eng.Check(nil)
	if err != nil || len(rep.TempFiles) != 1 || rep.TempFiles[0] != TempDir+"/0123abcd" || rep.Problems() != 1 {
		t.Fatalf("report: %v %v", rep, err)
	}
}

// TestCheckReadsTheRegistryInAFewTransactions: the check of 2,000 files
// opens a handful of read transactions, not one per file (which made a
// check of 200,000 files take minutes), and reports its progress.
func TestCheckReadsTheRegistryInAFewTransactions(t *testing.T) {
	dir := t.TempDir()
	const files = 2000
	d := generateCheckData(t, dir, files, 10)
	eng := openChecked(t, d.dataDir)
	before := eng.reg.DB().Stats().TxN
	var calls int
	var last CheckProgress
	rep, err := eng.Check(func(p CheckProgress) { calls++; last = p })
	if tx := eng.reg.DB().Stats().TxN - before; tx > 10 {
		t.Errorf("the check opened %d read transactions for %d files", tx, files)
	}
	if err != nil || rep.Problems() != 0 || rep.Files != files {
		t.Fatalf("report: %v %v", rep, err)
	}
	// 2,000 pages, 200 .gz, 200 .br, 200 .old; the docroot, 50 sections and
	// 200 folders; 2,000 entries with 4 index keys each.
	if last.Files != 2600 || last.Folders != 251 || last.Entries != files || last.IndexKeys != 4*files {
		t.Errorf("last progress %+v", last)
	}
	if calls < 2 {
		t.Errorf("progress called %d times", calls)
	}
}

// TestCheckWalkOrderIsKeyOrder: for random names (including bytes that
// sort before and after "/"), the order in which the walk meets files is
// the byte order of their names, which the merge with the registry cursor
// relies on.
func TestCheckWalkOrderIsKeyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", ".", "-", "0", "~", "é", " "}
	seen := map[string]bool{}
	var files []string
	for len(files) < 300 {
		var parts []string
		for range 1 + rng.IntN(3) {
			var b strings.Builder
			for range 1 + rng.IntN(3) {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			parts = append(parts, b.String())
		}
		name := strings.Join(parts, "/")
		if conflicts(seen, name) {
			continue
		}
		seen[name] = true
		files = append(files, name)
	}
	dir := t.TempDir()
	dataDir, docroot := filepath.Join(dir, "data"), filepath.Join(dir, "docroot")
	// Every file registered except every third; every fifth entry has no
	// file. Both lists come out in byte order only if the walk meets the
	// files in byte order.
	var registered, unregistered, dangling []string
	for i, f := range files {
		switch {
		case i%3 == 0:
			unregistered = append(unregistered, f)
			writeCheckFiles(t, docroot, f)
		case i%5 == 0:
			registered = append(registered, f)
			dangling = append(dangling, f)
		default:
			registered = append(registered, f)
			writeCheckFiles(t, docroot, f)
		}
	}
	importCheckEntries(t, dataDir, docroot, registered)
	eng := openChecked(t, dataDir)
	rep, err := eng.Check(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := sorted(unregistered); !slices.Equal(rep.Unregistered, want) {
		t.Errorf("unregistered (in walk order):\n%q\nwant\n%q", rep.Unregistered, want)
	}
	if want := sorted(dangling); !slices.Equal(rep.Dangling, want) {
		t.Errorf("dangling:\n%q\nwant\n%q", rep.Dangling, want)
	}
}

// conflicts reports whether name would need a file where a folder is, or
// the other way round, or is a companion or .old name.
func conflicts(seen map[string]bool, name string) bool {
	if strings.HasSuffix(name, ".gz") || strings.HasSuffix(name, ".br") || strings.HasSuffix(name, OldSuffix) ||
		strings.HasPrefix(name, InternalPrefix) {
		return true
	}
	for _, part := range strings.Split(name, "/") {
		if part == "." || part == ".." {
			return true
		}
	}
	for s := range seen {
		if strings.HasPrefix(s, name+"/") || strings.HasPrefix(name, s+"/") || s == name {
			return true
		}
	}
	return false
}

func TestCompareConcat(t *testing.T) {
	for _, c := range []struct{ a1, a2, b1, b2 string }{
		{"a", "/", "a.b", ""}, {"a", "", "a", "/"}, {"ab", "c", "a", "bc"}, {"", "", "", ""},
		{"a", "/", "a0", ""}, {"x", ".old", "x.o", "ld"}, {"é", "", "e", "/"}, {"", "b", "a", ""},
	} {
		want := strings.Compare(c.a1+c.a2, c.b1+c.b2)
		if got := compareConcat(c.a1, c.a2, c.b1, c.b2); got != want {
			t.Errorf("compareConcat(%q, %q, %q, %q) = %d, want %d", c.a1, c.a2, c.b1, c.b2, got, want)
		}
		if got := compareConcat(c.b1, c.b2, c.a1, c.a2); got != -want {
			t.Errorf("compareConcat(%q, %q, %q, %q) = %d, want %d", c.b1, c.b2, c.a1, c.a2, got, -want)
		}
	}
}
