package export

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Errors of WriteFile and Outputs.
var (
	// ErrExists means the output exists and force is not set.
	ErrExists = errors.New("output file exists")
	// ErrNotRegular means the output path holds something other than a
	// regular file (a directory, named pipe, device, socket or symbolic
	// link): WriteFile never replaces it, even with force.
	ErrNotRegular = errors.New("not a regular file")
	// ErrUnwritable means the output could not be written where it was
	// asked: its directory is missing or not writable, or the disk is
	// full. The message says which.
	ErrUnwritable = errors.New("output not writable")
	// ErrNoGrid means a grid-only export was asked without a bin width.
	ErrNoGrid = errors.New("a grid-only export needs a grid bin width")
	// ErrGridFormat means a grid was asked in JSON Lines.
	ErrGridFormat = errors.New("the grid is written as parquet or csv, not jsonl")
	// ErrGridNeedsFile means a grid beside the readings was asked without
	// an output file to put it beside.
	ErrGridNeedsFile = errors.New("the grid goes to a second file beside the readings: it needs an output file")
)

// WriteFile creates path atomically: readers see the old file or the
// complete new one, never a partial export. write gets a temp file in the
// same directory (".NAME.tmp-*"); on any error from write, a panic, or a
// failed sync, close or rename, the temp file is removed and path is left
// as it was. An existing path is kept unless force is set: it is checked
// before write runs, so a long export is not wasted, and again when the
// file is put in place. Whatever force says, WriteFile replaces only a
// regular file: anything else is ErrNotRegular.
func WriteFile(path string, force bool, write func(io.Writer) error) (err error) {
	if err := Replaceable(path, force); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return unwritable(fmt.Errorf("create %s: %w", path, err))
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
		return unwritable(fmt.Errorf("sync %s: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		return unwritable(fmt.Errorf("close %s: %w", tmp, err))
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := Place(tmp, path, force); err != nil {
		return err
	}
	placed = true
	return nil
}

// unwritable marks err as ErrUnwritable, keeping its message.
func unwritable(err error) error { return unwritableError{err} }

type unwritableError struct{ error }

func (e unwritableError) Is(target error) bool { return target == ErrUnwritable }
func (e unwritableError) Unwrap() error        { return e.error }

// Replaceable checks that path is missing, or (with force) a regular
// file: the rule of every file wattrec writes.
func Replaceable(path string, force bool) error {
	fi, err := os.Lstat(path)
	switch {
	case err != nil:
		return nil
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is a %s: %w, and only a regular file is ever replaced", path, fileKind(fi.Mode()), ErrNotRegular)
	case !force:
		return fmt.Errorf("%s: %w", path, ErrExists)
	}
	return nil
}

// fileKind names what a non-regular file is.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}

// Place moves the complete file tmp to path. Without force it never replaces a file that
// appeared meanwhile: a hard link fails if path exists. Where the file
// system has no hard links, it falls back to a check and a rename. With
// force it replaces only a regular file.
func Place(tmp, path string, force bool) error {
	if force {
		if err := Replaceable(path, true); err != nil {
			return err
		}
	} else {
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
