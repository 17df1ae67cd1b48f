package export

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrExists is returned by WriteFile when the output exists and force is
// not set.
var ErrExists = errors.New("output file exists")

// WriteFile creates path atomically: readers see the old file or the
// complete new one, never a partial export. write gets a temp file in the
// same directory (".NAME.tmp-*"); on any error from write, a panic, or a
// failed sync, close or rename, the temp file is removed and path is left
// as it was. An existing path is kept unless force is set: it is checked
// before write runs, so a long export is not wasted, and again when the
// file is put in place.
func WriteFile(path string, force bool, write func(io.Writer) error) (err error) {
	if !force {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s: %w", path, ErrExists)
		}
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	tmp, placed := f.Name(), false
	defer func() {
		if !placed { // an error or a panic: leave nothing behind
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := place(tmp, path, force); err != nil {
		return err
	}
	placed = true
	return nil
}

// place moves tmp to path. Without force it never replaces a file that
// appeared meanwhile: a hard link fails if path exists. Where the file
// system has no hard links, it falls back to a check and a rename.
func place(tmp, path string, force bool) error {
	if !force {
		err := os.Link(tmp, path)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", path, ErrExists)
		}
		if err == nil {
			os.Remove(tmp)
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
