package registry

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"
)

// Bucket names of the registry file (see the package comment).
var (
	bucketRoots     = []byte("roots")     // docroot path -> root id
	bucketEntries   = []byte("entries")   // file id -> Entry (binary codec, codec.go)
	bucketIndex     = []byte("index")     // kind + name + 0 + file id -> flags, created, props or hash
	bucketExpiry    = []byte("expiry")    // big-endian ms + file id -> ""
	bucketAccess    = []byte("access")    // file id -> big-endian ms of the last access
	bucketResources = []byte("resources") // resource name -> newest hash seen
	bucketMeta      = []byte("meta")      // small named values
)

// FileName is the name of the bbolt file inside the data folder.
const FileName = "registry.db"

// Registry is the persistent record of every cached file, its dependencies
// and the reverse indexes from documents, nodes, resources and keys to files.
// Writes go through a journal and are applied in batches in the background,
// so a response never waits for the database; reads see the journal's
// pending records, so they are correct in the meantime.
type Registry struct {
	db      *bolt.DB
	log     *zap.Logger
	journal *journal

	mu      sync.Mutex
	pending map[FileID]pendingRecord // written to the journal, not yet to bbolt
	wake    chan struct{}
	applied *sync.Cond // broadcast after every applied batch
	retired retiredSet // files whose index keys wait for the sweep (retire.go)
	closing chan struct{}
	done    chan struct{}

	rejected       atomic.Int64 // journal records moved aside
	rejectedLogged atomic.Bool
	overLimits     overLimits // renders not cached: record beyond a limit

	// The caps of the flush log and the outbox, and what they pruned
	// (flushlog_size.go).
	flushes flushBounds

	// entries is the number of entries, once asked for (query_count.go).
	entries entryCounter

	// space follows journal appends that fail for want of space, and
	// applyFailing is set while the writer cannot apply the journal
	// (health.go).
	space        *Space
	applyFailing atomic.Pointer[error]
}

type pendingRecord struct {
	seq   uint64
	entry *Entry // nil: the file was removed
}

// Open opens (or creates) the registry in dir, replays the journal of
// writes that a crash interrupted, and starts the background writer.
func Open(dir string, log *zap.Logger) (*Registry, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open registry %s: it is locked by another process", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRoots, bucketEntries, bucketIndex, bucketExpiry, bucketAccess,
			bucketResources, bucketMeta, bucketRetired} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return createQueueBuckets(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("prepare registry %s: %w", path, err)
	}
	r := &Registry{db: db, log: log, pending: map[FileID]pendingRecord{},
		wake: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{}),
		space: NewSpace("data folder", dir, log)}
	r.applied = sync.NewCond(&r.mu)
	if err := db.View(r.loadRetired); err != nil {
		db.Close()
		return nil, fmt.Errorf("read retired entries of %s: %w", path, err)
	}
	if r.journal, err = openJournal(filepath.Join(dir, "journal.log")); err != nil {
		db.Close()
		return nil, err
	}
	if err := r.replay(); err != nil {
		r.journal.close()
		db.Close()
		return nil, err
	}
	go r.writer()
	return r, nil
}

// DB exposes the bbolt file for tests and benchmarks that look at what
// is stored; the edge itself goes through the typed methods.
func (r *Registry) DB() *bolt.DB { return r.db }

// Close applies what is pending and closes the file.
func (r *Registry) Close() error {
	close(r.closing)
	<-r.done
	jerr := r.journal.close()
	return errors.Join(jerr, r.db.Close())
}

// Root returns the id of a docroot, assigning one on first use.
func (r *Registry) Root(docroot string) (uint16, error) {
	var id uint16
	err := r.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRoots)
		if v := b.Get([]byte(docroot)); len(v) == 2 {
			id = binary.BigEndian.Uint16(v)
			return nil
		}
		n := b.Stats().KeyN
		if n >= 1<<16-1 {
			return errors.New("too many docroots")
		}
		id = uint16(n + 1)
		return b.Put([]byte(docroot), binary.BigEndian.AppendUint16(nil, id))
	})
	if err != nil {
		return 0, fmt.Errorf("register docroot %s: %w", docroot, err)
	}
	return id, nil
}

// RootDir returns the docroot of a root id ("" if there is none).
func (r *Registry) RootDir(id uint16) string {
	var dir string
	_ = r.View(func(tx *Tx) error {
		return tx.Roots(func(d string, rid uint16) error {
			if rid == id {
				dir = d
			}
			return nil
		})
	})
	return dir
}

// RootDirs returns every docroot the registry knows.
func (r *Registry) RootDirs() ([]string, error) {
	var dirs []string
	err := r.View(func(tx *Tx) error {
		return tx.Roots(func(d string, _ uint16) error {
			dirs = append(dirs, d)
			return nil
		})
	})
	return dirs, err
}

// Put records a freshly written file. It returns once the record is in the
// journal; the database follows in the background. An entry the database
// could not store is refused with a *LimitError and not journaled.
func (r *Registry) Put(id FileID, e Entry) error {
	if err := CheckEntry(id, &e); err != nil {
		return fmt.Errorf("record of %s: %w", id.File, err)
	}
	return r.submit(id, &e)
}

// Remove forgets a file.
func (r *Registry) Remove(id FileID) error { return r.submit(id, nil) }

func (r *Registry) submit(id FileID, e *Entry) error {
	if e != nil {
		e.Created = r.retired.after(id, e.Created)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.submitLocked(id, e)
}

// submitLocked journals a record; r.mu is held.
func (r *Registry) submitLocked(id FileID, e *Entry) error {
	seq, err := r.journal.append(journalRecord{Root: id.Root, File: id.File, Entry: e})
	if err != nil {
		r.space.Failed(err)
		return err
	}
	r.space.Wrote()
	r.pending[id] = pendingRecord{seq: seq, entry: e}
	if len(r.journal.queue) >= wakeBatch {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// wakeBatch is how many submitted records wake the writer before its next
// tick. Below it the writer applies on its tick (applyEvery): the journal
// already holds the records and reads see them, and one transaction for
// all that came in meanwhile costs one disk sync, not one for every few
// records (a render storm wrote 2,000 files a second, and the writer
// committed as fast as the disk synced).
const wakeBatch = maxBatch / 2

// Sync waits until every record submitted so far is in the database.
func (r *Registry) Sync() {
	r.mu.Lock()
	defer r.mu.Unlock()
	target := r.journal.lastSeq()
	for r.journal.appliedSeq() < target {
		select {
		case <-r.done:
			return
		default:
		}
		select {
		case r.wake <- struct{}{}:
		default:
		}
		r.applied.Wait()
	}
}

// Get returns the entry of a file.
func (r *Registry) Get(id FileID) (e Entry, found bool, err error) {
	err = r.View(func(tx *Tx) error {
		e, found, err = tx.Get(id)
		return err
	})
	return e, found, err
}

// Find calls fn for every file with a dependency of the given kind on name,
// with that dependency, until fn returns false. It sees pending writes.
func (r *Registry) Find(kind DepKind, name string, fn func(FileID, Dependency) bool) error {
	return r.View(func(tx *Tx) error { return tx.Find(kind, name, fn) })
}

// HasPending reports whether the journal holds an unapplied record for id.
func (r *Registry) HasPending(id FileID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.pending[id]
	return ok
}

// pendingSnapshot copies the records not yet in the database.
func (r *Registry) pendingSnapshot() map[FileID]*Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	pending := make(map[FileID]*Entry, len(r.pending))
	for id, p := range r.pending {
		pending[id] = p.entry
	}
	return pending
}

// pendingEntry returns the journal's unapplied record of id, if any (a
// nil entry: the file was removed).
func (r *Registry) pendingEntry(id FileID) (*Entry, bool) {
	r.mu.Lock()
	p, ok := r.pending[id]
	r.mu.Unlock()
	return p.entry, ok
}

// ListFiles returns up to n files with an entry, in key order, starting
// after the file after (nil: from the first).
func (r *Registry) ListFiles(after *FileID, n int) ([]FileID, error) {
	var out []FileID
	err := r.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEntries).Cursor()
		k, _ := c.First()
		if after != nil {
			ak := after.key()
			k, _ = c.Seek(ak)
			if k != nil && bytes.Equal(k, ak) {
				k, _ = c.Next()
			}
		}
		for ; k != nil && len(out) < n; k, _ = c.Next() {
			out = append(out, fileIDOf(k))
		}
		return nil
	})
	return out, err
}
