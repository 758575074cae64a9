package cache

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// FuzzRenderRecord feeds backend headers through what a render's record
// passes: ParseRenderInfo, the entry, the registry's checks, the journal
// and its apply into a real bbolt file. The invariant: an answer within
// the limits is stored exactly. (Records that bypassed the checks are
// registry.FuzzJournalRecord.)
func FuzzRenderRecord(f *testing.F) {
	f.Add(`"story100";props="topline title", "/politik";type=node`, `"k1", k2`, uint16(20))
	f.Add(`"t";type=resource;hash="abc"`, `"a"`, uint16(2000))
	f.Add(`"`+strings.Repeat("d", 1025)+`"`, `"`+strings.Repeat("k", 1024)+`"`, uint16(0))
	f.Add(`"x", "y";type=yellow`, strings.Repeat("k", 600), uint16(1000))
	f.Add("", "", uint16(0))

	dir := f.TempDir()
	reg, err := registry.Open(dir, zap.NewNop())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { reg.Close() })
	seq := 0

	f.Fuzz(func(t *testing.T, deps, keys string, fileLen uint16) {
		seq++
		file := fmt.Sprintf("f%d/", seq)
		file += strings.Repeat("x", int(fileLen)%(maxFileBytes-len(file)+1))
		id := FileID{Root: 1, File: file}
		h := http.Header{}
		if deps != "" {
			h.Set(HeaderDependencies, deps)
		}
		if keys != "" {
			h.Set(HeaderCacheKeys, keys)
		}

		// The render path: what ParseRenderInfo accepts is stored as is.
		info, err := ParseRenderInfo(h, time.Unix(1700000000, 0))
		if err != nil {
			return
		}
		if len(info.Deps) > MaxDependencies || len(info.Keys) > MaxCacheKeys {
			t.Fatalf("%d dependencies, %d keys accepted", len(info.Deps), len(info.Keys))
		}
		for _, k := range info.Keys {
			if k == "" || len(k) > MaxNameBytes {
				t.Fatalf("key of %d bytes accepted", len(k))
			}
		}
		for _, d := range info.Deps {
			if checkDependencySizes(d) != nil {
				t.Fatalf("dependency beyond the limits accepted: %.100v", d)
			}
		}
		e := Entry{Key: "/" + file, Created: 1700000000000, Deps: info.Deps, Keys: info.Keys}
		if err := reg.Put(id, e); err != nil {
			t.Fatalf("an answer within the limits was refused by the registry: %v", err)
		}
		rejected := reg.JournalRejected()
		syncWithin(t, reg, 20*time.Second)
		got, ok, err := reg.Get(id)
		if err != nil || !ok || !sameEntry(got, e) {
			t.Fatalf("stored entry: %v %v\n got %+v\nwant %+v", ok, err, got, e)
		}
		if reg.JournalRejected() != rejected {
			t.Fatal("a checked record was moved aside")
		}
	})
}

// sameEntry reports whether two entries are the same once stored: the
// registry's codec keeps no difference between a nil and an empty list.
func sameEntry(a, b Entry) bool {
	sameDep := func(x, y Dependency) bool {
		return x.Kind == y.Kind && x.Name == y.Name && x.Hash == y.Hash && slices.Equal(x.Props, y.Props)
	}
	return a.Key == b.Key && a.Host == b.Host && a.Created == b.Created && a.Expires == b.Expires &&
		a.Force == b.Force && slices.Equal(a.Keys, b.Keys) && slices.EqualFunc(a.Deps, b.Deps, sameDep)
}

// syncWithin is Registry.Sync with a deadline: a journal that cannot make
// progress fails the test instead of hanging it.
func syncWithin(t *testing.T, r *Registry, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		r.Sync()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("the registry journal made no progress in %v", d)
	}
}
