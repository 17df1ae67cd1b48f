package importer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/store"
)

// createFile builds the wattrec file at path atomically: fill writes into
// a fresh store on a temp file beside it (".NAME.tmp-*", committed
// without fsync), which is then closed, checked page by page
// (store.CheckFile, whose counts it returns), synced and put in place.
// On any error, a cancelled ctx or a panic, the temp file is removed and
// path is left as it was. An existing path is refused (export.ErrExists) unless
// replace, and then only a regular file is replaced; the new file keeps
// the old one's mode. Without replace a file that appears at path
// meanwhile is kept: the new one is linked into place, which fails if
// path exists.
func createFile(ctx context.Context, path string, replace bool, fill func(*store.DB) error) (counts store.Counts, err error) {
	if err := export.Replaceable(path, replace); err != nil {
		return counts, err
	}
	mode := newMode(path)
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return counts, fmt.Errorf("create %s: %w", path, err)
	}
	tmp := f.Name()
	f.Close()
	placed := false
	defer func() {
		if !placed {
			os.Remove(tmp)
		}
	}()
	db, err := store.Open(tmp, store.Options{NoSync: true}) // synced once, at the end
	if err != nil {
		return counts, err
	}
	err = fill(db)
	if err == nil {
		err = ctx.Err()
	}
	if err = errors.Join(err, db.Close()); err != nil {
		return counts, err
	}
	rep, err := store.CheckFile(ctx, tmp)
	if err != nil {
		return counts, fmt.Errorf("check the new file: %w", err)
	}
	if len(rep.Problems) > 0 {
		return counts, fmt.Errorf("check the new file: %w", errors.Join(rep.Problems...))
	}
	if err := syncFile(tmp, mode); err != nil {
		return counts, err
	}
	if err := export.Place(tmp, path, replace); err != nil {
		return counts, err
	}
	placed = true
	return rep.Records, nil
}

// newMode is the mode the new file at path gets: the old file's, or 0600.
// path passed export.Replaceable.
func newMode(path string) fs.FileMode {
	if fi, err := os.Lstat(path); err == nil {
		return fi.Mode().Perm()
	}
	return 0o600
}

// syncFile sets path's mode and flushes it to disk.
func syncFile(path string, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = errors.Join(f.Chmod(mode), f.Sync(), f.Close())
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}
