package cache

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/delivery-edge/edge/cache/registry"
)

// Purging from the admin API: one URL's file, or every registered file
// under a URL prefix, invalidated through the normal queues.

// PurgeMode says what a purge does with a file.
type PurgeMode string

// Purge modes.
const (
	// PurgeAsUsed chooses per file as a content change does: pre-generation
	// when it is on and the file was read recently (or asked for it),
	// removal otherwise.
	PurgeAsUsed PurgeMode = ""
	// PurgeRemove renames the file to ".old" (the next reader renders it
	// and gets the copy meanwhile).
	PurgeRemove PurgeMode = "remove"
	// PurgePregenerate renders the file again in place (the current file
	// is served until the new one replaces it).
	PurgePregenerate PurgeMode = "pregenerate"
)

// ErrBadPurgeMode refuses an unknown purge mode.
var ErrBadPurgeMode = fmt.Errorf("unknown purge mode (want %q or %q)", PurgeRemove, PurgePregenerate)

// Check reports whether m is a purge mode.
func (m PurgeMode) Check() error {
	switch m {
	case PurgeAsUsed, PurgeRemove, PurgePregenerate:
		return nil
	}
	return ErrBadPurgeMode
}

// purgeBatch is how many files one purge transaction queues.
const purgeBatch = 1000

// PurgeFile queues the invalidation of one file with priority 100; queued
// is false when there is nothing to purge (no entry, no regular file).
func (e *Engine) PurgeFile(s *Store, file string, mode PurgeMode) (queued bool, err error) {
	if err := mode.Check(); err != nil {
		return false, err
	}
	id := s.ID(file)
	v := e.inval
	v.mu.Lock()
	defer v.mu.Unlock()
	// A file on disk that is not registered is purged too, unless it is
	// not a regular file (a link is the operator's).
	info, lerr := s.root.Lstat(file)
	onDisk := lerr == nil && info.Mode().IsRegular()
	err = v.reg.Update(func(tx *registry.Tx) error {
		entry, found, err := tx.Get(id)
		if err != nil || (!found && !onDisk) {
			queued = false
			return err
		}
		queued = true
		return v.purgeTx(tx, []FileID{id}, map[FileID]registry.Meta{id: {Created: entry.Created, Force: entry.Force}},
			MaxPriority, mode, time.Now())
	})
	if err != nil {
		return false, fmt.Errorf("purge %s: %w", file, err)
	}
	if queued {
		v.queued([]FileID{id})
	}
	return queued, nil
}

// purgeTx queues files (with their index metadata) by mode.
func (v *invalidator) purgeTx(tx *registry.Tx, files []FileID, meta map[FileID]registry.Meta, prio int, mode PurgeMode,
	now time.Time) error {
	switch mode {
	case PurgeRemove:
		for _, id := range files {
			key, _ := KeyForFile(id.File)
			j := registry.QueuedJob{Root: id.Root, File: id.File, Op: registry.OpRename, Priority: prio,
				Enqueued: now.UnixMilli(), Source: now.UnixMilli(), Created: meta[id].Created, Key: key}
			if _, err := tx.Enqueue(registry.QueueRemoval, j); err != nil {
				return err
			}
		}
	case PurgePregenerate:
		for _, id := range files {
			if err := v.forcePregenTx(tx, id, prio, now.UnixMilli(), now); err != nil {
				return err
			}
		}
	default:
		return v.queueFilesMeta(tx, Job{Files: files, Priority: prio}, false, now, meta)
	}
	return nil
}

// FilePrefix is the file-name prefix of a URL path prefix ("/politik/" is
// "politik/", "/" every file): the path is decoded and each segment
// escaped as Mapper.Map does, the last one possibly a part of a name.
func FilePrefix(urlPrefix string) (string, error) {
	p, err := url.PathUnescape(urlPrefix)
	if err != nil || !strings.HasPrefix(p, "/") || strings.IndexByte(p, 0) >= 0 || strings.ContainsRune(p, '?') {
		return "", ErrBadPath
	}
	segs := strings.Split(p[1:], "/")
	var b strings.Builder
	for i, s := range segs {
		last := i == len(segs)-1
		if s == "." || s == ".." || (s == "" && !last) {
			return "", ErrBadPath
		}
		if i > 0 {
			b.WriteByte('/')
		}
		escapeSegment(&b, s)
	}
	if b.Len() > maxFileBytes {
		return "", ErrBadPath
	}
	return b.String(), nil
}

// CountPrefix counts the registered files of a docroot under a file-name
// prefix (FilePrefix).
func (e *Engine) CountPrefix(s *Store, prefix string) int {
	e.reg.Sync()
	n := 0
	_ = e.reg.View(func(tx *registry.Tx) error {
		n = tx.CountWithPrefix(s.rootID, prefix)
		return nil
	})
	return n
}

// PurgeResult is what a purge queued.
type PurgeResult struct {
	Files  int `json:"files"`  // registered files found
	Queued int `json:"queued"` // files queued
}

// PurgePrefix queues the invalidation of every registered file of a
// docroot whose name starts with prefix (FilePrefix), in batches of
// purgeBatch, each in its own transaction, with the priority of a change
// that touches them all. Files that are on disk but not registered are
// not touched (the consistency check finds them). It stops between
// batches when ctx ends.
func (e *Engine) PurgePrefix(ctx context.Context, s *Store, prefix string, mode PurgeMode, p Progress) (PurgeResult, error) {
	var res PurgeResult
	if err := mode.Check(); err != nil {
		return res, err
	}
	if p == nil {
		p = NoProgress{}
	}
	total := e.CountPrefix(s, prefix)
	p.SetTotal(int64(total))
	prio := PriorityFor(total)
	v := e.inval
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		var files []FileID
		var meta map[FileID]registry.Meta
		var more bool
		err := e.reg.View(func(tx *registry.Tx) error {
			var err error
			files, meta, more, err = tx.FilesWithPrefix(s.rootID, prefix, after, purgeBatch)
			return err
		})
		if err != nil || len(files) == 0 {
			return res, err
		}
		v.mu.Lock()
		err = v.reg.Update(func(tx *registry.Tx) error {
			return v.purgeTx(tx, files, meta, prio, mode, time.Now())
		})
		v.mu.Unlock()
		if err != nil {
			return res, fmt.Errorf("purge %s: %w", prefix, err)
		}
		v.queued(files)
		res.Files += len(files)
		res.Queued += len(files)
		p.Add(int64(len(files)))
		if !more {
			return res, nil
		}
		after = files[len(files)-1].File
	}
}
