//go:build unix

package export_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/wattrec/wattrec/export"
)

// TestWriteFile_NonRegular: with or without force, WriteFile replaces
// only a regular file: a named pipe, a symbolic link (and so its target),
// a directory or a device is refused with ErrNotRegular, naming what is
// there, before write runs.
func TestWriteFile_NonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, what string }{
		{fifo, "named pipe"}, {link, "symbolic link"}, {dir, "directory"}, {os.DevNull, "character device"},
	} {
		for _, force := range []bool{false, true} {
			called := false
			err := export.WriteFile(tc.path, force, func(w io.Writer) error { called = true; return nil })
			if !errors.Is(err, export.ErrNotRegular) || !strings.Contains(err.Error(), tc.path+" is a "+tc.what) || called {
				t.Errorf("%s, force %v: err = %v (write called: %v), want ErrNotRegular naming a %s", tc.path, force, err, called, tc.what)
			}
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Error("the link's target was replaced")
	}
	// A regular file is still replaced with force.
	if err := export.WriteFile(target, true, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "new" {
		t.Errorf("target = %q, want it replaced", b)
	}
}
