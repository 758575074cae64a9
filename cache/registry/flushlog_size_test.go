package registry

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openFlushRegistry(t *testing.T) (*Registry, string) {
	t.Helper()
	dir := t.TempDir()
	r := openTestRegistry(t, dir)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { r.Close() }) })
	return r, dir
}

// bigKey is a key of n bytes unique for i.
func bigKey(i, n int) string {
	k := fmt.Sprintf("k%08d-", i)
	return k + strings.Repeat("x", n-len(k))
}

// takeFlushes records flushes i = from..to-1 (time 1000+i) of group g,
// each queued for peers, one transaction each, as the servlet does.
func takeFlushes(t *testing.T, r *Registry, from, to, keyLen int, peers ...string) {
	t.Helper()
	for i := from; i < to; i++ {
		f := Flush{Key: bigKey(i, keyLen), Group: "g", Time: int64(1000 + i)}
		if err := r.Update(func(tx *Tx) error {
			isNew, err := tx.LogFlush(f)
			if err != nil || !isNew {
				return fmt.Errorf("flush %d: new %v, %v", i, isNew, err)
			}
			return tx.QueueForwards(f, peers, time.UnixMilli(f.Time))
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// recount is what a full scan of the buckets finds (the counts of a file
// of an earlier version).
func recount(t *testing.T, r *Registry) FlushSizes {
	t.Helper()
	if err := r.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketFlushSizes) }); err != nil {
		t.Fatal(err)
	}
	s, err := r.FlushSizes()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sizesOf(t *testing.T, r *Registry) FlushSizes {
	t.Helper()
	s, err := r.FlushSizes()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sameSizes(a, b FlushSizes) bool {
	if a.Log != b.Log || len(a.Outbox) != len(b.Outbox) {
		return false
	}
	for p, s := range a.Outbox {
		if b.Outbox[p] != s {
			return false
		}
	}
	return true
}

// TestFlushSizesFollowEveryWrite: the kept counts equal a recount after
// flushes, a flush seen under a second group, age pruning, deliveries and
// drops.
func TestFlushSizesFollowEveryWrite(t *testing.T) {
	r, _ := openFlushRegistry(t)
	takeFlushes(t, r, 0, 50, 100, "http://a", "http://b")
	// The same flush under another group adds its index entries.
	if err := r.Update(func(tx *Tx) error {
		_, err := tx.LogFlush(Flush{Key: bigKey(3, 100), Group: "h", Time: 1003})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s := sizesOf(t, r)
	if s.Log.Entries != 51 || s.Outbox["http://a"].Entries != 50 || s.Outbox["http://b"].Entries != 50 {
		t.Fatalf("sizes %+v", s)
	}
	if n, err := r.PruneFlushLog(1010, 0); err != nil || n != 11 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	pending, _ := r.PendingForwards("http://a", 5)
	ids := []uint64{pending[0].ID, pending[1].ID, pending[2].ID}
	if err := r.ForwardsDone("http://a", ids); err != nil {
		t.Fatal(err)
	}
	if err := r.ForwardsDone("http://a", ids); err != nil { // again: nothing more to subtract
		t.Fatal(err)
	}
	if err := r.ForwardsDropped("http://a", []uint64{pending[3].ID}, ReasonAge); err != nil {
		t.Fatal(err)
	}
	if n, err := r.PruneOutbox(1020, 0); err != nil || n != 20+16 { // b: 20; a: 16 left of its first 20
		t.Fatalf("outbox pruned %d, %v", n, err)
	}
	kept := sizesOf(t, r)
	if kept.Log.Entries != 40 || kept.Outbox["http://a"].Entries != 30 || kept.Outbox["http://b"].Entries != 30 {
		t.Fatalf("sizes %+v", kept)
	}
	if again := recount(t, r); !sameSizes(kept, again) {
		t.Fatalf("kept %+v, recount %+v", kept, again)
	}
	c := r.FlushCounters()
	if c.LogPruned[ReasonAge] != 11 || c.OutboxDropped[PeerReason{"http://a", ReasonAge}] != 17 ||
		c.OutboxDropped[PeerReason{"http://b", ReasonAge}] != 20 || c.LogPruned[ReasonSize] != 0 {
		t.Fatalf("counters %+v", c)
	}
}

// TestFlushLogCapPrunesOldestFirst: past its cap the log loses its oldest
// flushes in the transaction that passed it; the count is signalled.
func TestFlushLogCapPrunesOldestFirst(t *testing.T) {
	r, _ := openFlushRegistry(t)
	const capBytes = 64 << 10
	r.SetFlushCaps(capBytes, 0)
	takeFlushes(t, r, 0, 200, 1024)
	s := sizesOf(t, r)
	if s.Log.Bytes > capBytes || s.Log.Bytes < capBytes-2*(1024+64) {
		t.Fatalf("log %+v, cap %d", s.Log, capBytes)
	}
	kept, err := r.FlushesSince("g", 0)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(kept)) != s.Log.Entries || kept[0].Time != int64(1000+200-len(kept)) || kept[len(kept)-1].Time != 1199 {
		t.Fatalf("kept %d flushes from %d to %d, count %d", len(kept), kept[0].Time, kept[len(kept)-1].Time, s.Log.Entries)
	}
	if c := r.FlushCounters(); c.LogPruned[ReasonSize] != int64(200-len(kept)) {
		t.Fatalf("pruned by size %d, want %d", c.LogPruned[ReasonSize], 200-len(kept))
	}
	select {
	case <-r.FlushCapHit():
	default:
		t.Fatal("no signal")
	}
	// A pruned flush is no longer known: it counts as new again.
	if seen, _ := r.FlushLogged(bigKey(0, 1024), 1000); seen {
		t.Fatal("the oldest flush is still logged")
	}
	if again := recount(t, r); !sameSizes(s, again) {
		t.Fatalf("kept %+v, recount %+v", s, again)
	}
}

// TestOutboxCapIsPerPeer: a peer's outbox over its cap loses its oldest
// entries; another peer's outbox is not touched.
func TestOutboxCapIsPerPeer(t *testing.T) {
	r, _ := openFlushRegistry(t)
	const capBytes = 32 << 10
	r.SetFlushCaps(0, capBytes)
	takeFlushes(t, r, 0, 100, 1024, "http://down") // up, say, delivered these at once
	takeFlushes(t, r, 100, 110, 1024, "http://down", "http://up")
	s := sizesOf(t, r)
	down := s.Outbox["http://down"]
	if down.Bytes > capBytes || down.Entries < 20 || s.Outbox["http://up"].Entries != 10 {
		t.Fatalf("outboxes %+v", s.Outbox)
	}
	pending, _ := r.PendingForwards("http://down", 0)
	if int64(len(pending)) != down.Entries || pending[len(pending)-1].Time != 1109 ||
		pending[0].Time != int64(1110-len(pending)) {
		t.Fatalf("down keeps %d entries from %d", len(pending), pending[0].Time)
	}
	c := r.FlushCounters()
	if c.OutboxDropped[PeerReason{"http://down", ReasonSize}] != 110-down.Entries ||
		c.OutboxDropped[PeerReason{"http://up", ReasonSize}] != 0 || s.Log.Entries != 110 {
		t.Fatalf("counters %+v, log %+v", c, s.Log)
	}
	if again := recount(t, r); !sameSizes(s, again) {
		t.Fatalf("kept %+v, recount %+v", s, again)
	}
}

// TestTrimFlushesAfterALoweredCap: a cap lowered below what is kept is
// reached in bounded batches.
func TestTrimFlushesAfterALoweredCap(t *testing.T) {
	r, _ := openFlushRegistry(t)
	takeFlushes(t, r, 0, 300, 200, "http://p")
	r.SetFlushCaps(10<<10, 5<<10)
	total := 0
	for range 100 {
		n, err := r.TrimFlushes(50)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if n < 50 {
			break
		}
	}
	s := sizesOf(t, r)
	if s.Log.Bytes > 10<<10 || s.Outbox["http://p"].Bytes > 5<<10 || int64(total) != 600-s.Log.Entries-s.Outbox["http://p"].Entries {
		t.Fatalf("after trimming %d: %+v", total, s)
	}
}

// TestFlushSizesOfAnEarlierFile: a file written before the counts existed
// is counted once, at the first read or write.
func TestFlushSizesOfAnEarlierFile(t *testing.T) {
	dir := t.TempDir()
	r := openTestRegistry(t, dir)
	takeFlushes(t, r, 0, 20, 100, "http://p")
	want := sizesOf(t, r)
	if err := r.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketFlushSizes) }); err != nil {
		t.Fatal(err)
	}
	r.Close()
	r2 := openTestRegistry(t, dir)
	defer r2.Close()
	takeFlushes(t, r2, 20, 21, 100, "http://p") // a write counts what is there first
	got := sizesOf(t, r2)
	if got.Log.Entries != want.Log.Entries+1 || got.Outbox["http://p"].Entries != 21 {
		t.Fatalf("sizes %+v, before %+v", got, want)
	}
}

// TestFlushFloodKeepsTheFileBounded: 11,000 flushes of 1 KB keys with a
// peer down (every flush stays in its outbox) grow registry.db by what
// the caps allow, not by the flood. Without caps the same flood grows the
// file by about 110 MB.
func TestFlushFloodKeepsTheFileBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("11,000 transactions")
	}
	r, dir := openFlushRegistry(t)
	r.db.NoSync = true // the file's size is the point, not durability
	const capBytes = 1 << 20
	r.SetFlushCaps(capBytes, capBytes)
	path := filepath.Join(dir, FileName)
	before := fileSize(t, path)
	takeFlushes(t, r, 0, 11_000, 1024, "http://down")
	after := fileSize(t, path)
	s := sizesOf(t, r)
	t.Logf("registry.db %d -> %d bytes (+%d); log %+v, outbox %+v", before, after, after-before, s.Log, s.Outbox["http://down"])
	if s.Log.Bytes > capBytes || s.Outbox["http://down"].Bytes > capBytes {
		t.Fatalf("over the caps: %+v", s)
	}
	// Two caps of 1 MiB; bbolt's pages are not full and freed pages are
	// reused only by later transactions: a few times the caps at most.
	if growth := after - before; growth > 16<<20 {
		t.Fatalf("registry.db grew by %d bytes", growth)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
