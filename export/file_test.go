package export_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
)

// dirNames lists dir, hidden temp files included.
func dirNames(tb testing.TB, dir string) []string {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// failAfter is a writer that fails once n bytes went through.
type failAfter struct {
	w io.Writer
	n int
}

var errDiskFull = errors.New("no space left on device (simulated)")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n, _ := f.w.Write(p[:f.n])
		f.n = 0
		return n, errDiskFull
	}
	f.n -= len(p)
	return f.w.Write(p)
}

// TestWriteFile_Interrupted interrupts Parquet, CSV and grid exports,
// by cancelling the context halfway through and by a failing write, and
// checks that neither the output nor a temp file is left, and that an
// existing output is kept even with force.
func TestWriteFile_Interrupted(t *testing.T) {
	db := MustSyntheticDB(t, 60_000, 10*time.Minute)
	exporters := map[string]func(ctx context.Context, w io.Writer, opt export.Options) (int64, error){
		"Parquet": func(ctx context.Context, w io.Writer, opt export.Options) (int64, error) {
			opt.RowGroupRows = 5_000
			return export.Parquet(ctx, w, db, query.Filter{}, opt)
		},
		"CSV": func(ctx context.Context, w io.Writer, opt export.Options) (int64, error) {
			return export.CSV(ctx, w, db, query.Filter{}, opt)
		},
		"GridParquet": func(ctx context.Context, w io.Writer, opt export.Options) (int64, error) {
			opt.RowGroupRows = 5_000
			return export.GridParquet(ctx, w, db, query.Filter{}, 100, opt)
		},
		"GridCSV": func(ctx context.Context, w io.Writer, opt export.Options) (int64, error) {
			return export.GridCSV(ctx, w, db, query.Filter{}, 100, opt)
		},
	}
	for name, run := range exporters {
		for _, force := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "/New", true: "/ForceOverExisting"}[force], func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "out")
				if force {
					if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				check := func(err error, want error) {
					t.Helper()
					if !errors.Is(err, want) {
						t.Errorf("WriteFile: %v, want %v", err, want)
					}
					names := dirNames(t, dir)
					if force {
						if b, _ := os.ReadFile(path); string(b) != "old" || len(names) != 1 {
							t.Fatalf("after a failed export the directory has %v, %d bytes in out; want only the old file", names, len(b))
						}
					} else if len(names) != 0 {
						t.Fatalf("after a failed export the directory has %v, want nothing", names)
					}
				}

				// Cancelled halfway through, as SIGINT does.
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var total, done int64
				opt := export.Options{Progress: func(d, t int64) {
					if d > 0 && d >= t/2 {
						cancel()
					}
					done, total = d, t
				}}
				err := export.WriteFile(path, force, func(w io.Writer) error {
					_, err := run(ctx, w, opt)
					return err
				})
				check(err, context.Canceled)
				if done == 0 || done >= total {
					t.Errorf("cancelled at %d of %d rows: want halfway", done, total)
				}

				// A write that fails, as a full disk does.
				err = export.WriteFile(path, force, func(w io.Writer) error {
					_, err := run(context.Background(), &failAfter{w, 20_000}, export.Options{})
					return err
				})
				check(err, errDiskFull)

				// A panic in the exporter.
				func() {
					defer func() { recover() }()
					export.WriteFile(path, force, func(w io.Writer) error {
						w.Write([]byte("partial"))
						panic("boom")
					})
				}()
				check(context.Canceled, context.Canceled)
			})
		}
	}
}

func TestWriteFile(t *testing.T) {
	db := MustHandDB(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "run.parquet")
	write := func(w io.Writer) error {
		_, err := export.Parquet(context.Background(), w, db, query.Filter{}, export.Options{})
		return err
	}
	if err := export.WriteFile(path, false, write); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readArrow(t, first)
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}

	t.Run("ExistsWithoutForce", func(t *testing.T) {
		called := false
		err := export.WriteFile(path, false, func(io.Writer) error { called = true; return nil })
		if !errors.Is(err, export.ErrExists) || called {
			t.Errorf("WriteFile over an existing file: %v (write called: %v), want ErrExists before writing", err, called)
		}
	})
	t.Run("AppearsMeanwhile", func(t *testing.T) {
		// A file created while the export ran is not replaced without force.
		other := filepath.Join(dir, "other.parquet")
		err := export.WriteFile(other, false, func(w io.Writer) error {
			if err := os.WriteFile(other, []byte("theirs"), 0o644); err != nil {
				return err
			}
			return write(w)
		})
		if !errors.Is(err, export.ErrExists) {
			t.Errorf("WriteFile: %v, want ErrExists", err)
		}
		if b, _ := os.ReadFile(other); string(b) != "theirs" {
			t.Errorf("the other file now holds %q", b)
		}
		if names := dirNames(t, dir); len(names) != 2 {
			t.Errorf("directory has %v, want run.parquet and other.parquet", names)
		}
	})
	t.Run("Unwritable", func(t *testing.T) {
		called := false
		err := export.WriteFile(filepath.Join(dir, "missing", "run.parquet"), false, func(io.Writer) error { called = true; return nil })
		if !errors.Is(err, export.ErrUnwritable) || !errors.Is(err, os.ErrNotExist) || called {
			t.Errorf("WriteFile into a missing directory: %v (write called: %v), want ErrUnwritable before writing", err, called)
		}
	})
	t.Run("Force", func(t *testing.T) {
		if err := export.WriteFile(path, true, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); !bytes.Equal(b, []byte("new")) {
			t.Errorf("after force: %q", b)
		}
	})
}
