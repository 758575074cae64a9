package cache

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// docroots are the stores the engine has opened, by folder and by the
// registry's root id. Queue work finds a file's store by root id, opening
// the docroot if no handler has yet (after a restart).
type docroots struct {
	reg  *registry.Registry
	log  *zap.Logger
	deps storeDeps // what every store is given

	mu     sync.Mutex
	byDir  map[string]*Store
	byRoot map[uint16]*Store
}

func newDocroots(reg *registry.Registry, log *zap.Logger, deps storeDeps) *docroots {
	return &docroots{reg: reg, log: log, deps: deps, byDir: map[string]*Store{}, byRoot: map[uint16]*Store{}}
}

// open returns the store of a docroot, opening it on first use.
func (d *docroots) open(docroot string) (*Store, error) {
	dir, err := filepath.Abs(docroot)
	if err != nil {
		return nil, fmt.Errorf("docroot %q: %w", docroot, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.byDir[dir]; ok {
		return s, nil
	}
	id, err := d.reg.Root(dir)
	if err != nil {
		return nil, err
	}
	s, err := openStore(dir, id, d.deps)
	if err != nil {
		return nil, err
	}
	d.byDir[dir] = s
	d.byRoot[id] = s
	return s, nil
}

// byID returns the store of a root id; with open it opens the docroot if
// no handler has yet (e.g. queue work after a restart).
func (d *docroots) byID(id uint16, open bool) *Store {
	d.mu.Lock()
	s := d.byRoot[id]
	d.mu.Unlock()
	if s != nil || !open {
		return s
	}
	dir := d.reg.RootDir(id)
	if dir == "" {
		return nil
	}
	s, err := d.open(dir)
	if err != nil {
		d.log.Error("cannot open docroot for queued work", zap.String("docroot", dir), zap.Error(err))
		return nil
	}
	return s
}

// openAll opens every docroot the registry knows.
func (d *docroots) openAll() error {
	dirs, err := d.reg.RootDirs()
	if err != nil {
		return err
	}
	for _, dir := range dirs {
		if _, err := d.open(dir); err != nil {
			return err
		}
	}
	return nil
}

// all returns the open stores in the order of their root ids.
func (d *docroots) all() []*Store {
	d.mu.Lock()
	stores := make([]*Store, 0, len(d.byDir))
	for _, s := range d.byDir {
		stores = append(stores, s)
	}
	d.mu.Unlock()
	slices.SortFunc(stores, func(a, b *Store) int { return int(a.rootID) - int(b.rootID) })
	return stores
}

// markOutdated tells renders under way for these files that their result
// may predate a change.
func (d *docroots) markOutdated(files []FileID) {
	for _, id := range files {
		if s := d.byID(id.Root, false); s != nil {
			s.flights.invalidate(id.File)
		}
	}
}

// closeAll closes every store.
func (d *docroots) closeAll() []error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, s := range d.byDir {
		errs = append(errs, s.close())
	}
	return errs
}
