package importer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wattrec/wattrec/store"
)

// createFile builds the wattrec file at path atomically: fill writes into
// a fresh store on a temp file beside it (".NAME.tmp-*", committed
// without fsync), which is then closed, checked page by page
// (store.CheckFile, whose counts it returns), synced and put in place.
// On any error, a cancelled ctx or a panic, the temp file is removed and
// path is left as it was. An existing path is refused (ErrExists) unless
// replace, and then only a regular file is replaced; the new file keeps
// the old one's mode. Without replace a file that appears at path
// meanwhile is kept: the new one is linked into place, which fails if
// path exists.
func createFile(ctx context.Context, path string, replace bool, fill func(*store.DB) error) (counts store.Counts, err error) {
	mode, err := replaceable(path, replace)
	if err != nil {
		return counts, err
	}
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
	if err := place(tmp, path, replace); err != nil {
		return counts, err
	}
	placed = true
	return rep.Records, nil
}

// replaceable checks that path is missing or, with replace, a regular
// file, and returns the mode the new file gets.
func replaceable(path string, replace bool) (fs.FileMode, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0o600, nil
	case err != nil:
		return 0, err
	case !fi.Mode().IsRegular():
		return 0, fmt.Errorf("%s is not a regular file (%v): it is never replaced", path, fi.Mode().Type())
	case !replace:
		return 0, fmt.Errorf("%s: %w", path, ErrExists)
	}
	return fi.Mode().Perm(), nil
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

// place moves tmp to path: a rename that replaces a regular file, or,
// without replace, a hard link that fails if path exists (with a check
// and a rename where the file system has no hard links).
func place(tmp, path string, replace bool) error {
	if replace {
		if _, err := replaceable(path, true); err != nil {
			return err
		}
	} else {
		err := os.Link(tmp, path)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", path, ErrExists)
		}
		if err == nil {
			os.Remove(tmp) // the link holds the file now
			return nil
		}
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s: %w", path, ErrExists)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename to %s: %w", path, err)
	}
	return nil
}
