package registry

import (
	"errors"
	"fmt"
	"os"
)

// noteApply remembers whether the writer could apply the journal the last
// time it tried.
func (r *Registry) noteApply(err error) {
	if err == nil {
		r.applyFailing.Store(nil)
		return
	}
	r.applyFailing.Store(&err)
}

// Health reports why the registry cannot take writes now: it is closed,
// the data folder was full at the last journal append (and still is: it
// is tried with a small file), or the journal cannot be applied to the
// database. nil when none of these holds.
func (r *Registry) Health() error {
	select {
	case <-r.closing:
		return errors.New("registry closed")
	default:
	}
	if r.space.Full() != nil {
		r.space.Wrote() // space is back when a probe can be written
		if err := r.space.Full(); err != nil {
			return fmt.Errorf("registry journal: %w", err)
		}
	}
	if p := r.applyFailing.Load(); p != nil {
		return fmt.Errorf("registry database: %w", *p)
	}
	return nil
}

// DataSpace follows the data folder's journal appends that failed for
// want of space.
func (r *Registry) DataSpace() *Space { return r.space }

// probeSize is what ProbeWrite writes: one page, so that a write into a
// page the file system still had does not count as space.
const probeSize = 4096

// ProbeWrite writes and removes a small file in dir, to tell whether it
// can be written again.
func ProbeWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".space-probe-*")
	if err != nil {
		return err
	}
	_, err = f.Write(make([]byte, probeSize))
	err = errors.Join(err, f.Close(), os.Remove(f.Name()))
	return err
}
