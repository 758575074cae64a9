package cache

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// Announcing a deploy: the operator names a resource (as the render
// backend reports it in Delivery-Dependencies) and its new hash. The hash
// becomes the newest at once, so renders that report it are not taken for
// a change; every file rendered with another hash is invalidated now, by
// the rules of a content change. A render that started before the
// announcement and reports the old hash is a straggler (resources.go): its
// answer is outdated. One that started after it and still reports the old
// hash (a backend not deployed yet) is not taken for a change back for
// announcePin (which would invalidate the new pages), and at the end of it
// the files rendered with another hash meanwhile are invalidated too.

// announcePin outlasts a render that started before an announcement
// (DefaultRenderTimeout, with room for slower configured ones); a
// variable for the tests.
var announcePin = 2 * time.Minute

// Bounds of an announcement.
const (
	MaxResourceName = 1024 // bytes of a resource name
	MaxResourceHash = 256  // bytes of a hash
	maxPinned       = 1000 // announcements pinned at once
)

// ErrBadResource refuses an announcement without a name or hash, or with
// one beyond its bound.
var ErrBadResource = errors.New("invalid resource announcement")

// ErrTooManyAnnounced refuses an announcement while maxPinned others are
// pinned.
var ErrTooManyAnnounced = fmt.Errorf("more than %d resources announced within %s", maxPinned, announcePin)

// AnnounceResource records hash as the newest hash of the resource name
// and queues the files rendered with another hash; it returns how many.
func (e *Engine) AnnounceResource(name, hash string) (int, error) {
	if name == "" || hash == "" || len(name) > MaxResourceName || len(hash) > MaxResourceHash {
		return 0, fmt.Errorf("%w: name and hash must be set, at most %d and %d bytes", ErrBadResource,
			MaxResourceName, MaxResourceHash)
	}
	if err := e.resources.pin(name, hash, time.Now().Add(announcePin)); err != nil {
		return 0, err
	}
	d := Dependency{Kind: DepResource, Name: name, Hash: hash}
	files, err := e.inval.announce(d)
	if err != nil {
		return 0, err
	}
	time.AfterFunc(announcePin+announcePin/60, func() { e.resources.recheck(d) })
	e.log.Info("resource announced", zap.String("resource", name), zap.String("hash", hash), zap.Int("files", files))
	return files, nil
}

// pin makes hash the newest hash of name, pinned until until.
func (r *resourceHashes) pin(name, hash string, until time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for n, t := range r.pinned {
		if !now.Before(t) {
			delete(r.pinned, n)
		}
	}
	if _, ok := r.pinned[name]; !ok && len(r.pinned) >= maxPinned {
		return ErrTooManyAnnounced
	}
	if r.pinned == nil {
		r.pinned = map[string]time.Time{}
	}
	r.pinned[name] = until
	if r.hashes[name] != hash {
		r.hashes[name], r.learnt[name] = hash, now
	}
	return nil
}

// pinnedNow reports whether name's newest hash is pinned; called with
// r.mu held.
func (r *resourceHashes) pinnedNow(name string) bool {
	until, ok := r.pinned[name]
	return ok && time.Now().Before(until)
}

// newest is the newest known hash of a resource ("" if none).
func (r *resourceHashes) newest(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hashes[name]
}

// recheck, at the end of an announcement's pin, invalidates the files
// rendered with another hash since, unless a newer hash came meanwhile.
func (r *resourceHashes) recheck(d Dependency) {
	if r.newest(d.Name) != d.Hash {
		return
	}
	select {
	case r.changes <- d:
	default:
		r.log.Warn("resource change queue full; files rendered with an old hash after an announcement stay",
			zap.String("resource", d.Name))
	}
}

// announce stores d's hash as the newest and queues the files rendered
// with another one, in one transaction.
func (v *invalidator) announce(d Dependency) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var files []FileID
	err := v.reg.Update(func(tx *registry.Tx) error {
		files = files[:0]
		if err := tx.SetResourceHash(d.Name, d.Hash); err != nil {
			return err
		}
		err := tx.Find(DepResource, d.Name, func(id FileID, dep Dependency) bool {
			if dep.Hash != d.Hash {
				files = append(files, id)
			}
			return true
		})
		if err != nil || len(files) == 0 {
			return err
		}
		sortFileIDs(files)
		return v.queueFiles(tx, Job{Files: files, Priority: PriorityFor(len(files))}, false, time.Now())
	})
	if err != nil {
		return 0, fmt.Errorf("announce resource %s: %w", d.Name, err)
	}
	v.queued(files)
	return len(files), nil
}
