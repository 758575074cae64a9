package cache

import (
	"math"
	"path"
	"slices"
	"strings"

	"github.com/delivery-edge/edge/cache/registry"
)

// Content states of a Change.
const (
	StatePublished = "published"
	StateOffline   = "offline"
	StateDeleted   = "deleted"
)

// Change is one content change the cache must react to: a document, a
// structure node or a document's yellow data was published, taken offline
// or deleted. The staging client's events become Changes.
type Change struct {
	// Kind is DepDocument, DepNode or DepYellow.
	Kind DepKind
	// ID is the Sophora-style ID ("story100", "/politik"); UUID the
	// document's UUID. A dependency may name either.
	ID, UUID string
	// State is StatePublished, StateOffline or StateDeleted.
	State string
	// ChangedProps lists the changed properties of a published change; nil
	// means unknown, i.e. every property.
	ChangedProps []string
	// SourceTime is when the change happened at its source (the event's
	// source time, Unix ms; 0: unknown), for the invalidation latency.
	SourceTime int64
}

// gone reports whether the content is no longer published.
func (c Change) gone() bool { return c.State == StateOffline || c.State == StateDeleted }

// hits reports whether a file with dependency d is invalidated by c.
func (c Change) hits(d Dependency) bool {
	if c.gone() || c.ChangedProps == nil || d.Full() {
		return true
	}
	for _, p := range d.Props {
		if slices.Contains(c.ChangedProps, p) {
			return true
		}
	}
	return false
}

// touches reports whether c invalidates a file with entry e (as affected
// would find it through e's index items).
func (c Change) touches(e *Entry) bool {
	for _, name := range c.names() {
		if c.Kind == DepKey && slices.Contains(e.Keys, name) {
			return true
		}
		for _, d := range e.Deps {
			if d.Kind == c.Kind && d.Name == name && c.hits(d) {
				return true
			}
		}
	}
	return false
}

// names are the registry names a change may be recorded under.
func (c Change) names() []string {
	if c.UUID != "" && c.UUID != c.ID {
		return []string{c.ID, c.UUID}
	}
	return []string{c.ID}
}

// affected finds the files a change invalidates, each once, in a stable
// order, with their metadata from the index.
func affected(tx *registry.Tx, c Change) ([]FileID, map[FileID]registry.Meta, error) {
	seen := map[FileID]registry.Meta{}
	var out []FileID
	for _, name := range c.names() {
		if name == "" {
			continue
		}
		err := tx.FindMeta(c.Kind, name, func(id FileID, d Dependency, meta registry.Meta) bool {
			if _, dup := seen[id]; !dup && c.hits(d) {
				seen[id] = meta
				out = append(out, id)
			}
			return true
		})
		if err != nil {
			return nil, nil, err
		}
	}
	sortFileIDs(out)
	return out, seen, nil
}

// sortFileIDs sorts files by docroot, then name.
func sortFileIDs(ids []FileID) {
	slices.SortFunc(ids, func(a, b FileID) int {
		if a.Root != b.Root {
			return int(a.Root) - int(b.Root)
		}
		return strings.Compare(a.File, b.File)
	})
}

// Job is a group of files invalidated together, with one priority.
type Job struct {
	Files    []FileID
	Priority int
	// Source is the source time of the change (Unix ms; 0: none).
	Source int64
}

// MaxPriority and MinPriority bound job priorities; higher runs first.
const (
	MaxPriority         = 100
	MinPriority         = 1
	NonexistentPriority = 50 // a document that is not in the cache yet
)

// PriorityFor is the priority of a job of n files: 100 for one file,
// falling by 20 for every tenfold more, never below 1.
func PriorityFor(n int) int {
	if n <= 1 {
		return MaxPriority
	}
	p := MaxPriority - int(math.Round(20*math.Log10(float64(n))))
	return max(MinPriority, min(MaxPriority, p))
}

// SplitJobs builds the jobs of one change: the files whose name starts
// with the document's ID are split off into a job of their own only when
// they are fewer than the rest, so a story's own page is not held up by
// the hundreds of pages that merely link to it.
func SplitJobs(files []FileID, docID string) []Job {
	if len(files) == 0 {
		return nil
	}
	var own, rest []FileID
	for _, f := range files {
		if startsWithID(path.Base(f.File), docID) {
			own = append(own, f)
		} else {
			rest = append(rest, f)
		}
	}
	if len(own) == 0 || len(rest) == 0 || len(own) >= len(rest) {
		return []Job{{Files: files, Priority: PriorityFor(len(files))}}
	}
	return []Job{
		{Files: own, Priority: PriorityFor(len(own))},
		{Files: rest, Priority: PriorityFor(len(rest))},
	}
}

// startsWithID reports whether a file name begins with a document ID as a
// whole word: "story100.html" and "story100-print.html" do for
// "story100", "story1000.html" does not.
func startsWithID(name, id string) bool {
	if id == "" || !strings.HasPrefix(name, id) {
		return false
	}
	if len(name) == len(id) {
		return true
	}
	c := name[len(id)]
	return !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9')
}
