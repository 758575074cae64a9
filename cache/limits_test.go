package cache

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/delivery-edge/edge/cache/registry"
)

func quotedList(n int, item func(i int) string) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf("%q", item(i))
	}
	return strings.Join(items, ", ")
}

// valueOfLength is a list of k distinct strings of at most 1000 bytes,
// n bytes long in all (n large enough for k items of 6 bytes).
func valueOfLength(n int) string {
	k := (n + 1003) / 1004       // items of 1000 bytes: 2 quotes, 2 bytes of separator
	content := n - 2*k - 2*(k-1) // bytes inside the quotes
	items := make([]string, k)
	for i := range items {
		size := content / k
		if i < content%k {
			size++
		}
		items[i] = fmt.Sprintf("%06d", i) + strings.Repeat("x", size-6)
	}
	return quotedList(k, func(i int) string { return items[i] })
}

func TestParseRenderInfoLimits(t *testing.T) {
	name := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		header http.Header
		limit  bool // want a *LimitError
		bad    bool // want another error
	}{
		{"1000 keys", http.Header{HeaderCacheKeys: {quotedList(1000, func(i int) string { return fmt.Sprint("k", i) })}}, false, false},
		{"1001 keys", http.Header{HeaderCacheKeys: {quotedList(1001, func(i int) string { return fmt.Sprint("k", i) })}}, true, false},
		{"1001 keys over two lines", http.Header{HeaderCacheKeys: {
			quotedList(600, func(i int) string { return fmt.Sprint("a", i) }),
			quotedList(401, func(i int) string { return fmt.Sprint("b", i) })}}, true, false},
		{"1000 dependencies", http.Header{HeaderDependencies: {quotedList(1000, func(i int) string { return fmt.Sprint("d", i) })}}, false, false},
		{"1001 dependencies", http.Header{HeaderDependencies: {quotedList(1001, func(i int) string { return fmt.Sprint("d", i) })}}, true, false},
		{"key of 1024 bytes", http.Header{HeaderCacheKeys: {`"` + name(1024) + `"`}}, false, false},
		{"key of 1025 bytes", http.Header{HeaderCacheKeys: {`"` + name(1025) + `"`}}, true, false},
		{"token key of 1025 bytes", http.Header{HeaderCacheKeys: {name(1025)}}, true, false},
		{"key of 32768 bytes", http.Header{HeaderCacheKeys: {`"` + name(32768) + `"`}}, true, false},
		{"ID of 1024 bytes", http.Header{HeaderDependencies: {`"` + name(1024) + `"`}}, false, false},
		{"ID of 40000 bytes", http.Header{HeaderDependencies: {`"` + name(40000) + `"`}}, true, false},
		{"node of 1025 bytes", http.Header{HeaderDependencies: {`"/` + name(1024) + `";type=node`}}, true, false},
		{"hash of 1025 bytes", http.Header{HeaderDependencies: {`"t";type=resource;hash="` + name(1025) + `"`}}, true, false},
		{"property of 1025 bytes", http.Header{HeaderDependencies: {`"d";props="a ` + name(1025) + `"`}}, true, false},
		{"long property of a full dependency", http.Header{HeaderDependencies: {`"d";children;props="` + name(1025) + `"`}}, false, false},
		{"exactly 64 KiB of headers", http.Header{HeaderDependencies: {valueOfLength(MaxRenderHeaderBytes - len(HeaderDependencies))}}, false, false},
		{"64 KiB and one byte", http.Header{HeaderDependencies: {valueOfLength(MaxRenderHeaderBytes - len(HeaderDependencies) + 1)}}, true, false},
		{"65 KiB in items within limits", http.Header{HeaderDependencies: {quotedList(700, func(i int) string { return fmt.Sprintf("%04d%s", i, name(90)) })}}, true, false},
		{"other Delivery-* headers count", http.Header{HeaderCacheKeys: {`"k"`}, "Delivery-Other": {name(MaxRenderHeaderBytes)}}, true, false},
		{"other headers do not count", http.Header{HeaderCacheKeys: {`"k"`}, "X-Other": {name(MaxRenderHeaderBytes)}}, false, false},
		{"empty key", http.Header{HeaderCacheKeys: {`"a", ""`}}, false, true},
	}
	if n := len(valueOfLength(MaxRenderHeaderBytes - 21)); n != MaxRenderHeaderBytes-21 {
		t.Fatalf("valueOfLength made %d bytes", n)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRenderInfo(tt.header, time.Now())
			var le *LimitError
			switch {
			case tt.limit && !errors.As(err, &le):
				t.Fatalf("err = %v, want a *LimitError", err)
			case tt.bad && (err == nil || errors.As(err, &le)):
				t.Fatalf("err = %v, want a malformed-header error", err)
			case !tt.limit && !tt.bad && err != nil:
				t.Fatalf("err = %v, want none", err)
			}
		})
	}
}

// TestLimitsFitTheRegistry: whatever passes the render limits, with the
// longest file name the mapping produces, fits bbolt's key size.
func TestLimitsFitTheRegistry(t *testing.T) {
	id := FileID{Root: 1, File: strings.Repeat("f", maxFileBytes)}
	name := strings.Repeat("n", MaxNameBytes)
	e := Entry{Key: "/" + id.File, Expires: 1, Keys: []string{name},
		Deps: []Dependency{{Kind: DepResource, Name: name, Hash: name}, {Kind: DepDocument, Name: name, Props: []string{name}}}}
	if err := registry.CheckEntry(id, &e); err != nil {
		t.Fatalf("entry within the limits refused: %v", err)
	}
	// An index key is the kind, the name, a 0 byte, the root id (two
	// bytes) and the file name (registry/index.go).
	if n := 1 + len(name) + 1 + 2 + len(id.File); n > bolt.MaxKeySize/8 {
		t.Errorf("largest index key %d bytes; expected far below bbolt's %d", n, bolt.MaxKeySize)
	}
}

// TestSiteOverLimitsPassesThrough: an answer beyond the limits reaches the
// client and is not stored; each URL is logged once and every answer
// counted.
func TestSiteOverLimitsPassesThrough(t *testing.T) {
	dir := t.TempDir()
	core, logs := observer.New(zapcore.DebugLevel)
	eng, err := Open(Options{DataDir: filepath.Join(dir, "data"), Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	store, err := eng.Store(filepath.Join(dir, "docroot"))
	if err != nil {
		t.Fatal(err)
	}
	s := &Site{Store: store, RenderTimeout: 2 * time.Second}
	b := &backend{body: "<html>page</html>", header: http.Header{
		"Content-Type":  {"text/html"},
		HeaderCacheKeys: {`"` + strings.Repeat("k", 32768) + `"`},
	}}
	for range 3 {
		rec := serve(t, s, b, "GET", "/a/page.html")
		if rec.Code != 200 || rec.Body.String() != b.body || rec.Header().Get(HeaderCacheKeys) != "" {
			t.Fatalf("answer: %d %q %v", rec.Code, rec.Body, rec.Header())
		}
	}
	if n := b.renders.Load(); n != 3 {
		t.Errorf("renders = %d, want 3 (never cached)", n)
	}
	if s.exists("a/page.html") {
		t.Error("file stored")
	}
	if n := eng.Registry().OverLimits(); n != 3 {
		t.Errorf("OverLimits = %d, want 3", n)
	}
	if n := logs.FilterMessage("render record over limits; not cached").Len(); n != 1 {
		t.Errorf("logged %d times, want once", n)
	}
	eng.Registry().Sync()
	if _, ok, _ := eng.Registry().Get(store.ID("a/page.html")); ok {
		t.Error("registry has an entry")
	}
	if n := eng.Registry().JournalRejected(); n != 0 {
		t.Errorf("JournalRejected = %d, want 0: nothing should have reached the journal", n)
	}
}
