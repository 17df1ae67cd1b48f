package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/store"
)

// Merge writes the recordings at inputs into one new wattrec file at
// out: every reading (seed flags and daemon times kept), stream session,
// clock estimate, counter reading, run record and mark, and each
// endpoint's latest info. The first input's marks keep their IDs; the
// others' get new ones after them, and a mark equal to one already
// merged (all but its ID) is kept once. The same endpoint may be in
// several inputs only at times that do not overlap (its readings,
// sessions and counter readings); otherwise Merge refuses before it
// writes anything, naming both files, the endpoint and both spans
// (ErrOverlap).
//
// Each input is opened read-only and held for the whole merge, so a file
// that a running recorder holds is store.ErrLocked. out is written
// atomically (see createFile): it must not exist unless force (and then
// no recorder may hold it), and it must not be one of the inputs. progress, if set, gets a progress bar
// (drawn only on a terminal).
func Merge(ctx context.Context, out string, inputs []string, force bool, progress io.Writer) (store.Counts, error) {
	if len(inputs) == 0 {
		return store.Counts{}, errors.New("merge: no input files")
	}
	if err := export.Replaceable(out, force); err != nil {
		return store.Counts{}, err
	}
	var dbs []*store.DB
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
	}()
	if force {
		// Never replace a file a running recorder writes to: it would go
		// on writing to the old one. Hold it, so that none starts.
		held, err := store.Open(out, store.Options{ReadOnly: true})
		switch {
		case errors.Is(err, store.ErrLocked):
			return store.Counts{}, err
		case err == nil:
			defer held.Close()
		}
	}
	var (
		sources []*source
		total   int64
	)
	for _, in := range inputs {
		if same(in, out) {
			return store.Counts{}, fmt.Errorf("merge: the output %s is also an input", out)
		}
		db, err := store.Open(in, store.Options{ReadOnly: true})
		if err != nil {
			return store.Counts{}, err
		}
		dbs = append(dbs, db)
		src, err := spansOf(ctx, in, db)
		if err != nil {
			return store.Counts{}, fmt.Errorf("merge %s: %w", in, err)
		}
		if err := overlap(src, sources); err != nil {
			return store.Counts{}, fmt.Errorf("merge: %w", err)
		}
		sources = append(sources, src)
		series, err := db.Series(ctx, "", false)
		if err != nil {
			return store.Counts{}, err
		}
		for _, s := range series {
			total += int64(s.Readings)
		}
	}

	counts, err := createFile(ctx, out, force, func(db *store.DB) error {
		bar := export.NewProgressBar(progressWriter(progress), "merge")
		defer bar.Finish()
		var done int64
		bar.Update(done, total)
		s := newSink(ctx, db)
		for i, in := range dbs {
			err := copyDB(ctx, s, in, i == 0, func(n int) {
				done += int64(n)
				bar.Update(done, total)
			})
			if err != nil {
				return fmt.Errorf("merge %s: %w", inputs[i], err)
			}
		}
		return s.finish()
	})
	if err != nil {
		return counts, fmt.Errorf("merge: %w", err)
	}
	return counts, nil
}

// same reports whether paths a and b name the same existing file.
func same(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// progressWriter is w, or io.Discard when there is none.
func progressWriter(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
