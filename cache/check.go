package cache

import (
	"fmt"
	"strings"

	"github.com/delivery-edge/edge/cache/registry"
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
	// UnregisteredIDs and DanglingIDs are Unregistered and Dangling with
	// their docroots, for a repair.
	UnregisteredIDs, DanglingIDs []FileID
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
	reg       *registry.Registry
	ephemeral *ephemeralFiles // files that expire without an entry
	cfg       *settings
	rep       CheckReport
	progress  func(CheckProgress) // nil: none
	done      CheckProgress
	steps     int
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
	c := &checkRun{reg: e.reg, ephemeral: e.ephemeral, cfg: e.cfg, progress: progress}
	if err := e.docroots.openAll(); err != nil {
		return c.rep, err
	}
	if err := e.reg.View(c.checkIndex); err != nil {
		return c.rep, err
	}
	for _, s := range e.docroots.all() {
		if err := c.checkDocroot(s); err != nil {
			return c.rep, err
		}
	}
	if progress != nil {
		progress(c.done)
	}
	return c.rep, nil
}

// checkIndex runs the registry's half of the check: entries against
// their reverse-index keys.
func (c *checkRun) checkIndex(tx *registry.Tx) error {
	ir, err := tx.CheckIndex(func(s registry.CheckStep) {
		switch s {
		case registry.StepEntry:
			c.done.Entries++
		case registry.StepIndexKey:
			c.done.IndexKeys++
		}
		c.step()
	})
	c.rep.Entries, c.rep.RetiredEntries, c.rep.RetiredKeys = ir.Entries, ir.RetiredEntries, ir.RetiredKeys
	c.rep.BadIndex = append(c.rep.BadIndex, ir.BadIndex...)
	return err
}
