package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"
)

// Bucket names of the registry file.
var (
	bucketRoots     = []byte("roots")     // docroot path -> root id
	bucketEntries   = []byte("entries")   // file id -> Entry (JSON)
	bucketIndex     = []byte("index")     // kind + name + 0 + file id -> props or hash
	bucketExpiry    = []byte("expiry")    // big-endian ms + file id -> ""
	bucketAccess    = []byte("access")    // file id -> big-endian ms of the last access
	bucketResources = []byte("resources") // resource name -> newest hash seen
	bucketMeta      = []byte("meta")      // small named values
)

// RegistryFile is the name of the bbolt file inside the data folder.
const RegistryFile = "registry.db"

// FileID names a cached file: the docroot it lives in and its slash-
// separated name relative to that docroot.
type FileID struct {
	Root uint16
	File string
}

func (id FileID) key() []byte {
	k := make([]byte, 2+len(id.File))
	binary.BigEndian.PutUint16(k, id.Root)
	copy(k[2:], id.File)
	return k
}

func fileIDOf(k []byte) FileID {
	return FileID{Root: binary.BigEndian.Uint16(k), File: string(k[2:])}
}

// Entry is what the registry knows about one cached file.
type Entry struct {
	// Key is the canonical URL of the file (see Mapper).
	Key string `json:"k"`
	// Host is the Host header of the request that rendered it; pre-
	// generation renders with the same host.
	Host string `json:"h,omitempty"`
	// Created is when the file was written (Unix ms).
	Created int64        `json:"c"`
	Deps    []Dependency `json:"d,omitempty"`
	Keys    []string     `json:"y,omitempty"`
	// Expires is the scheduled invalidation time (Unix ms, 0 = none).
	Expires int64 `json:"e,omitempty"`
	// Force is set when the render asked to always be pre-generated.
	Force bool `json:"f,omitempty"`
}

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
}

type pendingRecord struct {
	seq   uint64
	entry *Entry // nil: the file was removed
}

// OpenRegistry opens (or creates) the registry in dir, replays the journal
// of writes that a crash interrupted, and starts the background writer.
func OpenRegistry(dir string, log *zap.Logger) (*Registry, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	path := filepath.Join(dir, RegistryFile)
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
		wake: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{})}
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

// DB exposes the bbolt file to the other parts of the package (queues,
// flush log, source time) so their writes can share a transaction.
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

// Put records a freshly written file. It returns once the record is in the
// journal; the database follows in the background. An entry the database
// could not store is refused with a *LimitError and not journaled.
func (r *Registry) Put(id FileID, e Entry) error {
	if err := checkEntry(id, &e); err != nil {
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
	seq, err := r.journal.append(journalRecord{Root: id.Root, File: id.File, Entry: e})
	if err != nil {
		return err
	}
	r.pending[id] = pendingRecord{seq: seq, entry: e}
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return nil
}

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
	err = r.db.View(func(tx *bolt.Tx) error {
		e, found, err = r.GetTx(tx, id)
		return err
	})
	return e, found, err
}

// Find calls fn for every file with a dependency of the given kind on name,
// with that dependency, until fn returns false. It sees pending writes.
func (r *Registry) Find(kind DepKind, name string, fn func(FileID, Dependency) bool) error {
	return r.db.View(func(tx *bolt.Tx) error { return r.FindTx(tx, kind, name, fn) })
}

// FindTx is Find inside a transaction the caller holds.
func (r *Registry) FindTx(tx *bolt.Tx, kind DepKind, name string, fn func(FileID, Dependency) bool) error {
	return r.findMetaTx(tx, kind, name, func(id FileID, d Dependency, _ fileMeta) bool { return fn(id, d) })
}

// fileMeta is what the reverse index keeps of a file besides the
// dependency itself, so that matching and queueing need not read the
// (much larger, randomly placed) entries.
type fileMeta struct {
	created int64
	force   bool
}

// findMetaTx is FindTx that also yields the file's metadata.
func (r *Registry) findMetaTx(tx *bolt.Tx, kind DepKind, name string, fn func(FileID, Dependency, fileMeta) bool) error {
	pending := r.pendingSnapshot()
	prefix := indexPrefix(kind, name)
	c := tx.Bucket(bucketIndex).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		id := fileIDOf(k[len(prefix):])
		if _, overridden := pending[id]; overridden {
			continue
		}
		d, meta := dependencyFromIndex(kind, name, v)
		if !r.retired.visible(id, meta.created) {
			continue // a removed file's key awaiting the sweep
		}
		if !fn(id, d, meta) {
			return nil
		}
	}
	for id, e := range pending {
		if e == nil {
			continue
		}
		for _, d := range e.indexDeps() {
			if d.Kind == kind && d.Name == name && !fn(id, d, fileMeta{created: e.Created, force: e.Force}) {
				return nil
			}
		}
	}
	return nil
}

// hasPending reports whether the journal holds an unapplied record for id.
func (r *Registry) hasPending(id FileID) bool {
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

// GetTx is Get inside a transaction the caller holds.
func (r *Registry) GetTx(tx *bolt.Tx, id FileID) (Entry, bool, error) {
	r.mu.Lock()
	p, ok := r.pending[id]
	r.mu.Unlock()
	if ok {
		if p.entry == nil {
			return Entry{}, false, nil
		}
		return *p.entry, true, nil
	}
	v := tx.Bucket(bucketEntries).Get(id.key())
	if v == nil {
		return Entry{}, false, nil
	}
	var e Entry
	if err := unmarshalEntry(v, &e); err != nil {
		return Entry{}, false, fmt.Errorf("read registry entry %s: %w", id.File, err)
	}
	if !r.retired.visible(id, e.Created) {
		return Entry{}, false, nil // removed; the sweep deletes it
	}
	return e, true, nil
}

// indexDeps is every reverse-index item of an entry, keys included.
func (e *Entry) indexDeps() []Dependency {
	deps := e.Deps
	if len(e.Keys) > 0 {
		deps = make([]Dependency, 0, len(e.Deps)+len(e.Keys))
		deps = append(deps, e.Deps...)
		for _, k := range e.Keys {
			deps = append(deps, Dependency{Kind: DepKey, Name: k})
		}
	}
	return deps
}

func indexPrefix(kind DepKind, name string) []byte {
	p := make([]byte, 0, 2+len(name))
	p = append(p, byte(kind))
	p = append(p, name...)
	return append(p, 0)
}

// indexValue is the value of a reverse-index key: a flags byte (bit 0:
// forced pre-generation), the file's creation time (varint, Unix ms), then
// the properties (space separated) or, for a resource, its hash.
func indexValue(d Dependency, e *Entry) []byte {
	payload := d.Hash
	if d.Kind != DepResource {
		payload = strings.Join(d.Props, " ")
	}
	v := make([]byte, 1, 1+binary.MaxVarintLen64+len(payload))
	if e.Force {
		v[0] = 1
	}
	v = binary.AppendVarint(v, e.Created)
	return append(v, payload...)
}

func dependencyFromIndex(kind DepKind, name string, v []byte) (Dependency, fileMeta) {
	d := Dependency{Kind: kind, Name: name}
	var meta fileMeta
	if len(v) > 0 {
		meta.force = v[0]&1 != 0
		created, n := binary.Varint(v[1:])
		if n > 0 {
			meta.created = created
			v = v[1+n:]
		} else {
			v = nil
		}
	}
	switch {
	case kind == DepResource:
		d.Hash = string(v)
	case len(v) > 0:
		d.Props = strings.Fields(string(v))
	}
	return d, meta
}

// applyRecords writes journal records into the database: per file the
// last record wins; the old reverse-index keys are removed and the new
// ones added in sorted order, so each B+tree page is visited once per
// batch however the files' dependencies are spread. Records moved aside
// are left out.
func applyRecords(tx *bolt.Tx, recs []journalRecord) error {
	latest := make(map[FileID]*Entry, len(recs))
	for _, rec := range recs {
		if !rec.skip {
			latest[FileID{rec.Root, rec.File}] = rec.Entry
		}
	}
	return writeEntries(tx, latest)
}

// writeEntries replaces (nil: removes) the entries of the given files.
func writeEntries(tx *bolt.Tx, latest map[FileID]*Entry) error {
	entries := tx.Bucket(bucketEntries)
	var del, put sortedOps
	for id, e := range latest {
		key := id.key()
		if old := entries.Get(key); old != nil {
			var prev Entry
			if err := unmarshalEntry(old, &prev); err != nil {
				return fmt.Errorf("decode entry %s: %w", id.File, err)
			}
			del.index(key, &prev)
		}
		if e == nil {
			del.add(bucketEntries, key, nil)
			del.add(bucketAccess, key, nil)
			continue
		}
		put.add(bucketEntries, key, marshalEntry(e))
		put.index(key, e)
	}
	if err := del.apply(tx, true, nil); err != nil {
		return err
	}
	return put.apply(tx, false, nil)
}

// sortedOps collects writes per bucket to apply them in key order.
type sortedOps map[string][]kv

type kv struct{ k, v []byte }

func (o *sortedOps) add(bucket, k, v []byte) {
	if *o == nil {
		*o = sortedOps{}
	}
	(*o)[string(bucket)] = append((*o)[string(bucket)], kv{k, v})
}

// index adds the reverse-index (and expiry) keys of an entry.
func (o *sortedOps) index(fileKey []byte, e *Entry) {
	for _, d := range e.indexDeps() {
		o.add(bucketIndex, append(indexPrefix(d.Kind, d.Name), fileKey...), indexValue(d, e))
		if d.Kind == DepResource {
			o.add(bucketResources, []byte(d.Name), []byte(d.Hash))
		}
	}
	if e.Expires > 0 {
		o.add(bucketExpiry, expiryKey(e.Expires, fileKey), nil)
	}
}

// apply writes (or deletes) the collected keys bucket by bucket in key
// order; between, if set, runs every applyPause operations.
func (o sortedOps) apply(tx *bolt.Tx, del bool, between func()) error {
	n := 0
	for bucket, ops := range o {
		if del && bucket == string(bucketResources) {
			continue // the newest hash of a resource outlives its files
		}
		slices.SortFunc(ops, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
		b := tx.Bucket([]byte(bucket))
		for _, op := range ops {
			if n++; between != nil && n%applyPause == 0 {
				between()
			}
			var err error
			if del {
				err = b.Delete(op.k)
			} else {
				err = b.Put(op.k, op.v)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

const applyPause = 128

func expiryKey(ms int64, fileKey []byte) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(fileKey)), uint64(ms))
	return append(k, fileKey...)
}
