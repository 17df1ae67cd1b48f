//go:build linux

package store

import (
	"syscall"
	"unsafe"

	bolt "go.etcd.io/bbolt"
)

// releaseMapped drops this process's mappings of the file's pages
// (madvise MADV_DONTNEED on bbolt's read-only shared map), so that its
// RSS does not grow with the file: every page a commit reads through the
// map stays mapped, and a long recording would show the whole file as
// resident. The pages stay in the page cache; the next access maps them
// again. It must run inside a write transaction, before the transaction
// allocates (allocating may grow and remap the file): only the writer
// remaps, so the map is stable meanwhile. Its error is ignored: the
// release only saves memory.
func releaseMapped(tx *bolt.Tx) {
	size := tx.Size() // the pages in use, all inside the map
	info := tx.DB().Info()
	if size <= 0 || info.Data == 0 {
		return
	}
	// The map is not Go memory: its address as a pointer, reinterpreted.
	start := *(*unsafe.Pointer)(unsafe.Pointer(&info.Data))
	mapped := unsafe.Slice((*byte)(start), size)
	_ = syscall.Madvise(mapped, syscall.MADV_DONTNEED)
}
