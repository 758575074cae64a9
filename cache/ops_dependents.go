package cache

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

	"github.com/delivery-edge/edge/cache/registry"
)

// MaxDependentsPage bounds one page of dependents.
const MaxDependentsPage = 1000

// Dependent is a file that a change of something would invalidate, with
// the dependency that matches.
type Dependent struct {
	Docroot    string           `json:"docroot"`
	File       string           `json:"file"`
	Key        string           `json:"key,omitempty"`
	Created    *time.Time       `json:"created,omitempty"`
	Dependency DependencyReport `json:"dependency"`
	// Pregenerate: the render asked to be pre-generated when invalidated.
	Pregenerate bool `json:"pregenerate,omitempty"`
}

// DependentsPage is one page of dependents; Next, when set, asks for the
// next one.
type DependentsPage struct {
	Files []Dependent `json:"files"`
	Next  string      `json:"next,omitempty"`
}

// ErrBadCursor refuses a page cursor Dependents did not make.
var ErrBadCursor = errors.New("invalid page cursor")

// Dependents lists, page by page, the files with a dependency of kind on
// name: the files a change of it may invalidate (a change of properties a
// file's dependency does not read leaves that file alone; its dependency
// names the properties). cursor is the Next of the page before ("" for
// the first). Records still in the journal are applied first.
func (e *Engine) Dependents(kind DepKind, name, cursor string, limit int) (DependentsPage, error) {
	after, err := decodeCursor(cursor)
	if err != nil {
		return DependentsPage{}, err
	}
	limit = max(1, min(limit, MaxDependentsPage))
	e.reg.Sync()
	page := DependentsPage{Files: []Dependent{}}
	err = e.reg.View(func(tx *registry.Tx) error {
		dirs := e.rootDirs(tx)
		var last FileID
		more, err := tx.DependentsPage(kind, name, after, limit, func(id FileID, d Dependency, m registry.Meta) {
			key, _ := KeyForFile(id.File)
			page.Files = append(page.Files, Dependent{Docroot: dirs[id.Root], File: id.File, Key: key,
				Created: msTime(m.Created), Dependency: dependencyReport(d), Pregenerate: m.Force})
			last = id
		})
		if more {
			page.Next = encodeCursor(last)
		}
		return err
	})
	return page, err
}

func encodeCursor(id FileID) string {
	b := binary.BigEndian.AppendUint16(nil, id.Root)
	return base64.RawURLEncoding.EncodeToString(append(b, id.File...))
}

func decodeCursor(s string) (*FileID, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 3 || len(b) > 2+maxFileBytes {
		return nil, ErrBadCursor
	}
	return &FileID{Root: binary.BigEndian.Uint16(b), File: string(b[2:])}, nil
}
