package cache

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// CheckReport lists what a consistency check of the registry against the
// docroots found. A healthy edge with drained queues reports nothing.
type CheckReport struct {
	Files, Entries int
	// Unregistered are cached files with no registry entry: nothing could
	// ever invalidate them.
	Unregistered []string
	// Dangling are entries whose file is gone and that no queue job
	// explains (with lazy removal these are normal until the cleanup runs).
	Dangling []string
	// BadIndex are reverse-index keys that do not match their entry, and
	// entries whose dependencies are missing from the index.
	BadIndex []string
	// TempFiles are files left in the temp folder.
	TempFiles []string
	// RetiredEntries and RetiredKeys count the entries and index keys of
	// removed files that wait for the background sweep (not a problem:
	// reads skip them).
	RetiredEntries, RetiredKeys int
}

// Problems is the number of findings.
func (r CheckReport) Problems() int {
	return len(r.Unregistered) + len(r.Dangling) + len(r.BadIndex) + len(r.TempFiles)
}

func (r CheckReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d files, %d entries, %d problems", r.Files, r.Entries, r.Problems())
	if r.RetiredEntries+r.RetiredKeys > 0 {
		fmt.Fprintf(&b, " (%d removed entries and %d index keys wait for the sweep)", r.RetiredEntries, r.RetiredKeys)
	}
	for _, l := range []struct {
		name string
		v    []string
	}{{"unregistered file", r.Unregistered}, {"dangling entry", r.Dangling}, {"bad index", r.BadIndex}, {"temp file", r.TempFiles}} {
		for i, v := range l.v {
			if i == 10 {
				fmt.Fprintf(&b, "\n  … %d more of %s", len(l.v)-10, l.name)
				break
			}
			fmt.Fprintf(&b, "\n  %s: %s", l.name, v)
		}
	}
	return b.String()
}

// CheckProgress is how far a consistency check has got.
type CheckProgress struct {
	Entries   int // registry entries checked
	IndexKeys int // reverse-index keys checked
	Folders   int // docroot folders listed
	Files     int // docroot files seen
}

// checkProgressEvery is how many steps pass between progress calls; the
// caller decides how often to show them.
const checkProgressEvery = 4096

// checkRun is one consistency check under way.
type checkRun struct {
	e        *Engine
	rep      CheckReport
	progress func(CheckProgress) // nil: none
	done     CheckProgress
	steps    int
}

// visible reports whether the entry with key k created at created is live
// (not retired by a removal). Without tombstones it needs no file id.
func (c *checkRun) visible(k []byte, created int64) bool {
	return c.e.reg.Retired() == 0 || c.e.reg.retired.visible(fileIDOf(k), created)
}

// step counts one unit of work and reports progress now and then.
func (c *checkRun) step() {
	c.steps++
	if c.progress != nil && c.steps%checkProgressEvery == 0 {
		c.progress(c.done)
	}
}

// Check compares the registry with the docroots it knows. Run it on an
// idle edge (or a stopped one's data folder): renders under way show up
// as findings. progress (optional) is called every few thousand steps and
// once at the end. The time is linear in entries, index keys and files:
// the registry is read in a few read transactions and each docroot is
// walked once, in the registry's key order, alongside a cursor over its
// entries.
func (e *Engine) Check(progress func(CheckProgress)) (CheckReport, error) {
	e.reg.Sync()
	c := &checkRun{e: e, progress: progress}
	if err := e.openAllStores(); err != nil {
		return c.rep, err
	}
	if err := e.reg.db.View(c.checkEntries); err != nil {
		return c.rep, err
	}
	e.mu.Lock()
	stores := make([]*Store, 0, len(e.stores))
	for _, s := range e.stores {
		stores = append(stores, s)
	}
	e.mu.Unlock()
	slices.SortFunc(stores, func(a, b *Store) int { return int(a.rootID) - int(b.rootID) })
	for _, s := range stores {
		if err := c.checkDocroot(s); err != nil {
			return c.rep, err
		}
	}
	if progress != nil {
		progress(c.done)
	}
	return c.rep, nil
}

// checkEntries checks every entry's reverse-index keys, and every index
// key's entry. Looking up the entry of each index key (a random read and
// a decode per key, and there are ten or so keys per entry) is needed only
// to name the bad keys: every index key an entry confirms is counted, and
// if the visible keys are as many, each of them is confirmed.
func (c *checkRun) checkEntries(tx *bolt.Tx) error {
	rep := &c.rep
	entries := tx.Bucket(bucketEntries)
	idx := tx.Bucket(bucketIndex)
	var key []byte // reused: index keys are looked up, never kept
	confirmed := 0 // distinct visible index keys of visible entries
	err := entries.ForEach(func(k, v []byte) error {
		c.done.Entries++
		c.step()
		rep.Entries++
		var entry Entry
		if err := unmarshalEntry(v, &entry); err != nil {
			rep.BadIndex = append(rep.BadIndex, fmt.Sprintf("%s: undecodable entry: %v", fileIDOf(k).File, err))
			return nil
		}
		if !c.visible(k, entry.Created) {
			rep.Entries--
			rep.RetiredEntries++
			return nil
		}
		deps := entry.indexDeps()
		for i, d := range deps {
			if slices.ContainsFunc(deps[:i], func(o Dependency) bool { return o.Kind == d.Kind && o.Name == d.Name }) {
				continue // one key for both
			}
			key = append(append(append(key[:0], byte(d.Kind)), d.Name...), 0)
			key = append(key, k...)
			iv := idx.Get(key)
			switch {
			case iv == nil:
				rep.BadIndex = append(rep.BadIndex, fmt.Sprintf("%s: %s %q not indexed", fileIDOf(k).File, d.Kind, d.Name))
			case c.visible(k, indexCreated(iv)):
				confirmed++
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	visible := 0
	cur := idx.Cursor()
	for k, iv := cur.First(); k != nil; k, iv = cur.Next() {
		c.done.IndexKeys++
		c.step()
		i := bytes.IndexByte(k, 0)
		if i < 1 || len(k) < i+3 {
			rep.BadIndex = append(rep.BadIndex, fmt.Sprintf("malformed index key %q", k))
			continue
		}
		if !c.visible(k[i+1:], indexCreated(iv)) {
			rep.RetiredKeys++
			continue
		}
		visible++
	}
	if visible != confirmed {
		c.findBadIndexKeys(idx, entries)
	}
	return nil
}

// findBadIndexKeys lists the visible index keys whose entry is missing or
// does not have the key's dependency.
func (c *checkRun) findBadIndexKeys(idx, entries *bolt.Bucket) {
	rep := &c.rep
	cur := idx.Cursor()
	for k, iv := cur.First(); k != nil; k, iv = cur.Next() {
		c.step()
		i := bytes.IndexByte(k, 0)
		if i < 1 || len(k) < i+3 {
			continue // reported
		}
		fk := k[i+1:]
		if !c.visible(fk, indexCreated(iv)) {
			continue
		}
		v := entries.Get(fk)
		if v == nil {
			rep.BadIndex = append(rep.BadIndex, fmt.Sprintf("index %c %q points to missing entry %s", k[0], k[1:i], fileIDOf(fk).File))
			continue
		}
		var entry Entry
		_ = unmarshalEntry(v, &entry)
		found := false
		for _, d := range entry.indexDeps() {
			if byte(d.Kind) == k[0] && d.Name == string(k[1:i]) {
				found = true
			}
		}
		if !found {
			rep.BadIndex = append(rep.BadIndex, fmt.Sprintf("index %c %q not in entry %s", k[0], k[1:i], fileIDOf(fk).File))
		}
	}
}

// openAllStores opens every docroot the registry knows.
func (e *Engine) openAllStores() error {
	var dirs []string
	err := e.reg.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRoots).ForEach(func(k, _ []byte) error {
			dirs = append(dirs, string(k))
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if _, err := e.Store(d); err != nil {
			return err
		}
	}
	return nil
}
