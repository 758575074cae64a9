package cache

import (
	"errors"
	"fmt"
	"path"
)

// A full disk: a render that cannot be written is passed on to its
// clients uncached (the temp file discarded at once), a record the data
// folder cannot take leaves the page uncached, and hits and ".old" copies
// are served as before. The condition is logged once when it starts and
// once when space is available again (registry.Space), and the health
// check reports it.

// HealthMinFreePercent is the free space, in percent of the file system,
// below which Health reports a docroot or the data folder: writes fail
// soon after.
const HealthMinFreePercent = 1

// Health reports why the cache cannot work as it should: the registry is
// closed or cannot be written, the data folder or a docroot cannot be
// written (the disk is full), or one of them has less than
// HealthMinFreePercent of its file system free. nil when all is well.
func (e *Engine) Health() error {
	var errs []error
	if err := e.reg.Health(); err != nil {
		errs = append(errs, err)
	}
	if err := lowSpace("data folder", e.reg.DataSpace().Dir()); err != nil {
		errs = append(errs, err)
	}
	for _, s := range e.docroots.all() {
		if err := s.health(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// health reports a docroot that cannot be written (tried again with a
// small file while it was full) or is low on space.
func (s *Store) health() error {
	if s.space.Full() != nil {
		s.space.Wrote() // space is back when a probe can be written
		if err := s.space.Full(); err != nil {
			return fmt.Errorf("docroot %s cannot be written: %w", s.dir, err)
		}
	}
	return lowSpace("docroot", s.dir)
}

// probeWrite writes and removes a small file in the temp folder.
func (s *Store) probeWrite() error {
	f, name, err := s.createTemp()
	if err != nil {
		return err
	}
	_, err = f.Write(make([]byte, 4096))
	err = errors.Join(err, f.Close())
	if rerr := s.root.Remove(name); rerr != nil && !quietRemoveError(rerr) {
		err = errors.Join(err, rerr)
	}
	return err
}

// lowSpace reports a folder whose file system has less than
// HealthMinFreePercent free (nil where that cannot be told).
func lowSpace(what, dir string) error {
	free, total, ok := freeSpace(dir)
	if !ok || total == 0 {
		return nil
	}
	if free*100 >= total*HealthMinFreePercent {
		return nil
	}
	return fmt.Errorf("%s %s: %d of %d bytes free (below %d%%)", what, path.Clean(dir), free, total, HealthMinFreePercent)
}

// SpaceStats are the writes refused for want of space since the start,
// and how often a folder was found full.
type SpaceStats struct {
	DocrootWrites, DataWrites   int64 // writes that failed for want of space
	DocrootPeriods, DataPeriods int64 // times a folder was found full
}

// SpaceStats returns the engine's figures of full disks.
func (e *Engine) SpaceStats() SpaceStats {
	d := e.reg.DataSpace()
	st := SpaceStats{DataWrites: d.Refused(), DataPeriods: d.Periods()}
	for _, s := range e.docroots.all() {
		st.DocrootWrites += s.space.Refused()
		st.DocrootPeriods += s.space.Periods()
	}
	return st
}
