package imaging

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingStore counts Gets per key.
type countingStore struct {
	Store
	gets map[string]*atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, key string) (*Object, error) {
	if s.gets[key] == nil {
		s.gets[key] = new(atomic.Int64)
	}
	s.gets[key].Add(1)
	return s.Store.Get(ctx, key)
}

func (s *countingStore) n(key string) int64 {
	if c := s.gets[key]; c != nil {
		return c.Load()
	}
	return 0
}

func TestMemoryCache(t *testing.T) {
	ctx := context.Background()
	inner := &countingStore{Store: newTestFolderStore(t), gets: map[string]*atomic.Int64{}}
	now := time.Unix(1000, 0)
	m := new(Metrics)
	s := NewMemoryCache(inner, 1<<20, time.Second, nil).CountIn(m)
	s.now = func() time.Time { return now }

	uuid := "491e3bf6-3b4a-4f3e-9a43-0c6b8f4f1d2a"
	variant := VariantKey(uuid, "16x9-768", 5, 6, 768, "jpg")
	state := StateKey(uuid)
	for _, k := range []string{variant, state, VariantsKey, IndexKey("16x9-768", uuid)} {
		if err := inner.Put(ctx, k, []byte("data of "+k), "application/octet-stream", nil); err != nil {
			t.Fatal(err)
		}
	}
	get := func(key string) string {
		t.Helper()
		obj, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get %s: %v", key, err)
		}
		return string(obj.Data)
	}

	// Variants are kept; the variant definitions and index markers never.
	for range 3 {
		get(variant)
		get(VariantsKey)
		get(IndexKey("16x9-768", uuid))
	}
	if inner.n(variant) != 1 || inner.n(VariantsKey) != 3 || inner.n(IndexKey("16x9-768", uuid)) != 3 {
		t.Fatalf("store gets: variant %d, variants %d, index %d", inner.n(variant), inner.n(VariantsKey),
			inner.n(IndexKey("16x9-768", uuid)))
	}

	// Variants are counted by where they came from; nothing else is.
	if ms := m.Snapshot(); ms.FromStore != 1 || ms.FromMemory != 2 {
		t.Fatalf("variants from the store %d, from memory %d; want 1 and 2", ms.FromStore, ms.FromMemory)
	}

	// State records: for the TTL only.
	get(state)
	get(state)
	if inner.n(state) != 1 {
		t.Fatalf("state read %d times within the TTL", inner.n(state))
	}
	now = now.Add(1500 * time.Millisecond)
	get(state)
	if inner.n(state) != 2 {
		t.Fatalf("state read %d times after the TTL, want 2", inner.n(state))
	}

	// Writes and deletes through the cache drop what they touch.
	if err := s.Put(ctx, state, []byte("new state"), "application/json", nil); err != nil {
		t.Fatal(err)
	}
	if got := get(state); got != "new state" {
		t.Fatalf("state after Put = %q", got)
	}
	if _, err := s.DeletePrefix(ctx, ImagePrefix(uuid)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, variant); !errors.Is(err, ErrNotFound) {
		t.Fatalf("variant after DeletePrefix: %v, want ErrNotFound", err)
	}

	// The byte bound evicts the least recently used; an object larger
	// than an eighth of it is not kept at all.
	small := NewMemoryCache(inner, 8<<10, time.Second, nil)
	keys := make([]string, 10)
	for i := range keys {
		keys[i] = VariantKey(uuid, "1x1-144", int64(i), 1, 144, "webp")
		if err := inner.Put(ctx, keys[i], []byte(strings.Repeat("x", 600)), "image/webp", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := small.Get(ctx, keys[i]); err != nil {
			t.Fatal(err)
		}
	}
	if small.bytes > 8<<10 || small.lru.Len() >= 10 {
		t.Fatalf("cache holds %d bytes in %d entries, bound 8 KiB", small.bytes, small.lru.Len())
	}
	if _, ok := small.byKey[keys[0]]; ok {
		t.Fatal("the least recently used entry was not evicted")
	}
	big := VariantKey(uuid, "original", 1, 1, 0, "png")
	if err := inner.Put(ctx, big, []byte(strings.Repeat("y", 2<<10)), "image/png", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := small.Get(ctx, big); err != nil {
		t.Fatal(err)
	}
	if _, ok := small.byKey[big]; ok {
		t.Fatal("an object above an eighth of the bound was kept")
	}
}

// failingStore fails every Get with err while fail is set.
type failingStore struct {
	Store
	fail  atomic.Bool
	err   error
	gets  atomic.Int64
	delay time.Duration
}

func (s *failingStore) Get(ctx context.Context, key string) (*Object, error) {
	s.gets.Add(1)
	time.Sleep(s.delay)
	if s.fail.Load() {
		return nil, s.err
	}
	return s.Store.Get(ctx, key)
}

// TestMemoryCacheStaleIfError: an expired state record is served while the
// store fails, for StaleIfError at most; "not found" is never papered over.
func TestMemoryCacheStaleIfError(t *testing.T) {
	ctx := context.Background()
	inner := &failingStore{Store: newTestFolderStore(t), err: errors.New("connection reset by peer")}
	now := time.Unix(1000, 0)
	s := NewMemoryCache(inner, 1<<20, time.Second, nil)
	s.now = func() time.Time { return now }
	state := StateKey("491e3bf6-3b4a-4f3e-9a43-0c6b8f4f1d2a")
	if err := inner.Put(ctx, state, []byte(`{"state":"published"}`), "application/json", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, state); err != nil {
		t.Fatal(err)
	}
	inner.fail.Store(true)
	now = now.Add(2 * time.Second) // expired
	obj, err := s.Get(ctx, state)
	if err != nil || string(obj.Data) != `{"state":"published"}` || s.StaleServed() != 1 {
		t.Fatalf("expired record while the store fails: %v %v (stale served %d)", obj, err, s.StaleServed())
	}
	now = now.Add(StaleIfError) // past the grace
	if _, err := s.Get(ctx, state); err == nil {
		t.Fatal("a record expired longer than StaleIfError ago was served")
	}
	// Not found while a stale record is at hand: not found.
	inner.fail.Store(false)
	if _, err := s.Get(ctx, state); err != nil {
		t.Fatal(err)
	}
	if err := inner.Store.Delete(ctx, state); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	if _, err := s.Get(ctx, state); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted record: %v, want not found", err)
	}
}

// TestMemoryCacheRefreshCoalesced: concurrent readers of an expired state
// record cause one read of the store.
func TestMemoryCacheRefreshCoalesced(t *testing.T) {
	ctx := context.Background()
	inner := &failingStore{Store: newTestFolderStore(t), delay: 50 * time.Millisecond}
	s := NewMemoryCache(inner, 1<<20, time.Millisecond, nil)
	state := StateKey("491e3bf6-3b4a-4f3e-9a43-0c6b8f4f1d2a")
	if err := inner.Put(ctx, state, []byte(`{"state":"published"}`), "application/json", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, state); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	inner.gets.Store(0)
	done := make(chan error, 20)
	for range 20 {
		go func() { _, err := s.Get(ctx, state); done <- err }()
	}
	for range 20 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := inner.gets.Load(); n != 1 {
		t.Fatalf("%d reads of the store for 20 concurrent readers of an expired record, want 1", n)
	}
}
