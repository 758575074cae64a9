package cache

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// TestAccessVisibleWhileFlushed: a read stays visible while its Flush
// waits for the database, and after it (to a transaction that began
// before the Flush committed: the evictor's and the invalidator's view);
// before, it was in neither place for that time.
func TestAccessVisibleWhileFlushed(t *testing.T) {
	reg, err := registry.Open(filepath.Join(t.TempDir(), "data"), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	a := NewAccessLog()
	id := FileID{Root: 1, File: "s/p1.html"}
	const ms = int64(1_700_000_000_123)
	a.Touch(id, ms)

	// A writer holds the database while the Flush waits for it.
	hold, held := make(chan struct{}), make(chan struct{})
	go func() {
		_ = reg.DB().Update(func(*bolt.Tx) error {
			close(held)
			<-hold
			return nil
		})
	}()
	<-held
	flushed := make(chan error, 1)
	go func() { _, err := a.Flush(reg); flushed <- err }()
	time.Sleep(50 * time.Millisecond) // the Flush has taken the batch and waits for the writer
	if got := a.Pending(id); got != ms {
		t.Errorf("while the Flush waits: Pending = %d, want %d", got, ms)
	}
	close(hold)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	var stored int64
	_ = reg.View(func(tx *registry.Tx) error { stored = tx.LastAccess(id); return nil })
	if stored != ms {
		t.Fatalf("stored %d, want %d", stored, ms)
	}
	if got := a.Pending(id); got != ms {
		t.Errorf("after the Flush: Pending = %d, want %d", got, ms)
	}
}
