package registry

import (
	"sync"

	bolt "go.etcd.io/bbolt"
)

// The number of entries is kept rather than counted: bbolt has no count,
// and Bucket.Stats walks every page of the bucket (with a million entries,
// hundreds of megabytes paged in for one figure). The first caller counts
// once; from then on every transaction that adds or deletes entries adds
// its difference when it commits. While the count runs, the differences
// of transactions the count's snapshot does not see are kept aside and
// added at its end, so no write is counted twice or missed.

// entryCounter keeps the number of keys of the entries bucket.
type entryCounter struct {
	mu       sync.Mutex
	state    countState
	n        int64
	early    []txDelta // while counting: differences of write transactions, by id
	counting sync.Mutex
}

type countState uint8

const (
	countIdle     countState = iota // nobody asked: differences are not tracked
	countCounting                   // the first count runs
	countReady                      // n is the count
)

type txDelta struct {
	txid int
	d    int64
}

// tracking reports whether writes must report their differences.
func (c *entryCounter) tracking() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state != countIdle
}

// commit adds d to the count once tx commits.
func (c *entryCounter) commit(tx *bolt.Tx, d int64) {
	if d == 0 || !c.tracking() {
		return
	}
	id := tx.ID()
	tx.OnCommit(func() { c.add(id, d) })
}

func (c *entryCounter) add(txid int, d int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case countCounting:
		c.early = append(c.early, txDelta{txid, d})
	case countReady:
		c.n += d
	}
}

// EntryCount is the number of entries in the registry file, retired ones
// included (Retired tells how many of them wait for the sweep). The first
// call counts them; later calls return the kept count.
func (r *Registry) EntryCount() (int64, error) {
	c := &r.entries
	c.counting.Lock()
	defer c.counting.Unlock()
	c.mu.Lock()
	if c.state == countReady {
		n := c.n
		c.mu.Unlock()
		return n, nil
	}
	c.state, c.early = countCounting, nil
	c.mu.Unlock()
	// A write transaction that began before tracking started reports no
	// difference; bbolt runs one writer at a time, so once this empty
	// one has run, every such write has committed and the count's
	// snapshot below sees it.
	if err := r.db.Update(func(*bolt.Tx) error { return nil }); err != nil {
		c.mu.Lock()
		c.state, c.early = countIdle, nil
		c.mu.Unlock()
		return 0, err
	}
	var n int64
	var snapshot int
	err := r.db.View(func(tx *bolt.Tx) error {
		snapshot = tx.ID()
		n = int64(tx.Bucket(bucketEntries).Stats().KeyN)
		return nil
	})
	r.ReleaseMapping() // the count paged in the whole bucket
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.state, c.early = countIdle, nil
		return 0, err
	}
	for _, e := range c.early {
		if e.txid > snapshot { // committed after the snapshot: not counted yet
			n += e.d
		}
	}
	c.state, c.n, c.early = countReady, n, nil
	return n, nil
}

// trackApply reports the difference a batch of journal records makes to
// the number of entries, for the count (only once someone asked for it).
func (r *Registry) trackApply(tx *bolt.Tx, recs []journalRecord) {
	if !r.entries.tracking() {
		return
	}
	latest := make(map[FileID]bool, len(recs)) // file -> exists afterwards
	for _, rec := range recs {
		if !rec.skip {
			latest[FileID{rec.Root, rec.File}] = rec.Entry != nil
		}
	}
	b := tx.Bucket(bucketEntries)
	var d int64
	for id, after := range latest {
		before := b.Get(id.key()) != nil
		switch {
		case after && !before:
			d++
		case !after && before:
			d--
		}
	}
	r.entries.commit(tx, d)
}

// FileBytes is the size of the registry file.
func (r *Registry) FileBytes() int64 {
	var n int64
	_ = r.db.View(func(tx *bolt.Tx) error {
		n = tx.Size()
		return nil
	})
	return n
}
