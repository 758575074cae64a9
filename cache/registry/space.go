package registry

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Space follows whether writes to a folder fail for want of space (the
// file system is full, or the quota is used up). The condition is logged
// once when it starts and once when it ends, not at every write that
// fails; the writes it refused are counted; health checks ask Full.
type Space struct {
	what  string // "docroot", "data folder": for the log
	dir   string
	log   *zap.Logger
	probe func() error // a write of a whole page (Wrote); ProbeWrite(dir) unless WithProbe

	full    atomic.Bool
	refused atomic.Int64 // writes that failed for want of space
	periods atomic.Int64 // times the folder was found full

	mu    sync.Mutex
	err   error     // the write that found the folder full
	since time.Time // when
}

// NewSpace follows the folder dir; what names it in the log.
func NewSpace(what, dir string, log *zap.Logger) *Space {
	if log == nil {
		log = zap.NewNop()
	}
	return &Space{what: what, dir: dir, log: log, probe: func() error { return ProbeWrite(dir) }}
}

// WithProbe makes probe the write that tells whether space is back (for
// a folder where a stray probe file must not be seen, e.g. a docroot).
func (s *Space) WithProbe(probe func() error) *Space {
	s.probe = probe
	return s
}

// IsNoSpace reports whether err is a write that failed for want of space.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Failed notes a failed write and reports whether it failed for want of
// space. The first such failure after a write that worked is logged.
func (s *Space) Failed(err error) bool {
	if !IsNoSpace(err) {
		return false
	}
	s.refused.Add(1)
	if s.full.Load() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.full.Load() {
		s.err, s.since = err, time.Now()
		s.full.Store(true)
		s.periods.Add(1)
		s.log.Error("disk full: "+s.what+" cannot be written; logged again when space is available",
			zap.String("folder", s.dir), zap.Error(err))
	}
	return true
}

// Wrote notes a write that worked. While the folder is taken as full, a
// small write may still fit in a page the file system had given before:
// space counts as back only when a probe of a whole page can be written
// too (so the state does not flap between full and not).
func (s *Space) Wrote() {
	if !s.full.Load() {
		return
	}
	if s.probe() != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full.Load() {
		s.full.Store(false)
		s.log.Info("space available again: "+s.what+" is written again", zap.String("folder", s.dir),
			zap.Duration("full_for", time.Since(s.since).Round(time.Millisecond)), zap.Int64("writes_refused", s.refused.Load()))
		s.err = nil
	}
}

// Full returns the error of the write that found the folder full, or nil
// when the last write worked.
func (s *Space) Full() error {
	if !s.full.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Refused is the number of writes that failed for want of space.
func (s *Space) Refused() int64 { return s.refused.Load() }

// Periods is the number of times the folder was found full.
func (s *Space) Periods() int64 { return s.periods.Load() }

// Dir is the folder followed.
func (s *Space) Dir() string { return s.dir }
