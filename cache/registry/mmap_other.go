//go:build !linux

package registry

import bolt "go.etcd.io/bbolt"

// releaseMapping is a no-op where the kernel's accounting of shared file
// mappings differs; see the Linux version.
func releaseMapping(*bolt.DB) error { return nil }
