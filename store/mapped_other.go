//go:build !linux

package store

import bolt "go.etcd.io/bbolt"

// releaseMapped does nothing here: it is the Linux release of the file's
// mapped pages (see mapped_linux.go).
func releaseMapped(*bolt.Tx) {}
