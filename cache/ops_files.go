package cache

import (
	"net/url"
	"time"

	"github.com/delivery-edge/edge/cache/registry"
)

// FileReport is what the edge knows of one URL's file: its registry entry
// (when it was rendered, from what, until when), when it was last read,
// which queue holds it and what is on disk.
type FileReport struct {
	Docroot string `json:"docroot"`
	File    string `json:"file"`
	Key     string `json:"key"`
	// Registered: the registry has a (live) entry for the file.
	Registered bool `json:"registered"`
	// Ephemeral: the file expires too soon for the registry and is held in
	// memory until it does.
	Ephemeral bool       `json:"ephemeral,omitempty"`
	Host      string     `json:"host,omitempty"`
	Created   *time.Time `json:"created,omitempty"`
	LastRead  *time.Time `json:"last_read,omitempty"`
	Expires   *time.Time `json:"expires,omitempty"`
	// Pregenerate: the render asked to be pre-generated when invalidated.
	Pregenerate  bool               `json:"pregenerate,omitempty"`
	Dependencies []DependencyReport `json:"dependencies,omitempty"`
	Keys         []string           `json:"keys,omitempty"`
	// Resources are the resources the file was rendered with, with the
	// hash it was rendered with and the newest hash the edge knows.
	Resources []ResourceReport `json:"resources,omitempty"`
	// Queue is the job that waits for the file, if one does.
	Queue *QueueItem `json:"queue,omitempty"`
	Disk  DiskReport `json:"disk"`
}

// DependencyReport is one dependency of a file.
type DependencyReport struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Props are the properties read; none: a full dependency (any change).
	Props []string `json:"props,omitempty"`
	Hash  string   `json:"hash,omitempty"`
}

// ResourceReport is a resource a file was rendered with.
type ResourceReport struct {
	Name   string `json:"name"`
	Hash   string `json:"hash"`
	Newest string `json:"newest,omitempty"`
	// Current: rendered with the newest hash known.
	Current bool `json:"current"`
}

// DiskReport is what the docroot holds of a file.
type DiskReport struct {
	Exists      bool       `json:"exists"`
	Size        int64      `json:"size,omitempty"`
	Modified    *time.Time `json:"modified,omitempty"`
	Old         bool       `json:"old"` // a ".old" copy is there
	OldModified *time.Time `json:"old_modified,omitempty"`
}

func dependencyReport(d Dependency) DependencyReport {
	return DependencyReport{Kind: d.Kind.String(), Name: d.Name, Props: d.Props, Hash: d.Hash}
}

// FileOf is the file of a request URL (a path with an optional query) in
// the site's docroot; errors are those of Mapper.Map.
func (s *Site) FileOf(rawURL string) (Target, error) {
	u, err := url.ParseRequestURI(rawURL)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return Target{}, ErrBadPath
	}
	return s.Mapper.Map(u)
}

// File reports what the edge knows of one file of a docroot.
func (e *Engine) File(s *Store, t Target) (FileReport, error) {
	id := s.ID(t.File)
	rep := FileReport{Docroot: s.dir, File: t.File, Key: t.Key}
	rep.Ephemeral = s.ephemeral.names(s.rootID)[t.File]
	err := e.reg.View(func(tx *registry.Tx) error {
		entry, found, err := tx.Get(id)
		if err != nil {
			return err
		}
		if found {
			rep.Registered, rep.Host, rep.Pregenerate, rep.Keys = true, entry.Host, entry.Force, entry.Keys
			rep.Created, rep.Expires = msTime(entry.Created), msTime(entry.Expires)
			if entry.Key != "" {
				rep.Key = entry.Key
			}
			for _, d := range entry.Deps {
				if d.Kind == DepResource {
					newest := e.resources.newest(d.Name)
					rep.Resources = append(rep.Resources, ResourceReport{Name: d.Name, Hash: d.Hash, Newest: newest,
						Current: newest == "" || newest == d.Hash})
					continue
				}
				rep.Dependencies = append(rep.Dependencies, dependencyReport(d))
			}
		}
		rep.LastRead = msTime(e.access.LastAccess(tx, id))
		if q, j, ok := tx.Queued(registry.QueuedJob{Root: id.Root, File: id.File}); ok {
			item := queueItem(q, j, s.dir, time.Now())
			rep.Queue = &item
		}
		return nil
	})
	if info, err := s.root.Lstat(t.File); err == nil && info.Mode().IsRegular() {
		rep.Disk.Exists, rep.Disk.Size = true, info.Size()
		rep.Disk.Modified = msTime(info.ModTime().UnixMilli())
	}
	if info, err := s.root.Lstat(t.File + OldSuffix); err == nil && info.Mode().IsRegular() {
		rep.Disk.Old = true
		rep.Disk.OldModified = msTime(info.ModTime().UnixMilli())
	}
	return rep, err
}
