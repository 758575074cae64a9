package cache

import (
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// The registry's types, under the names the cache's users know them by
// (the registry package holds everything stored in bbolt).
type (
	Registry     = registry.Registry
	FileID       = registry.FileID
	Entry        = registry.Entry
	Dependency   = registry.Dependency
	DepKind      = registry.DepKind
	ImportRecord = registry.ImportRecord
	Flush        = registry.Flush
	Forward      = registry.Forward
	LimitError   = registry.LimitError
)

// Kinds of dependencies (registry.DepKind).
const (
	DepDocument = registry.DepDocument
	DepNode     = registry.DepNode
	DepYellow   = registry.DepYellow
	DepResource = registry.DepResource
	DepKey      = registry.DepKey
)

// Files of the data folder.
const (
	RegistryFile        = registry.FileName
	JournalRejectedFile = registry.JournalRejectedFile
)

// OpenRegistry opens the registry of a data folder on its own (registry.Open),
// for tools and tests that read or build one without an Engine.
func OpenRegistry(dir string, log *zap.Logger) (*Registry, error) { return registry.Open(dir, log) }
