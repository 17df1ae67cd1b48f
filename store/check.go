package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// CheckReport is what CheckFile examined and every problem it found.
type CheckReport struct {
	Path     string
	Size     int64  // the file's size in bytes
	PageSize int    // bbolt's page size
	Pages    uint64 // bbolt's high-water mark: the pages in use or free
	// The pages the walk reached, by kind, and the free ones.
	BranchPages, LeafPages, OverflowPages, FreePages int
	// Records counts the records that decoded.
	Records Counts
	// BoltChecked says bbolt's own check ran too: it runs only on a file
	// whose pages the walk found sound, since bbolt's checker would
	// crash on damaged ones.
	BoltChecked bool
	// Problems lists everything wrong, each wrapping ErrCorrupt. The
	// losses among them are what Repair leaves behind.
	Problems []error
	// Losses are the problems that lose records.
	Losses []Loss
}

// Err is nil for a sound file and otherwise says how many problems were
// found; it wraps ErrCorrupt.
func (r *CheckReport) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %w: %d problems", r.Path, ErrCorrupt, len(r.Problems))
}

// CheckFile checks the wattrec file at path without bbolt's trust in it:
// it reads the meta pages, walks every page of the tree (each page in
// the file and in use once, keys in order, the freelist consistent),
// decodes every record and chunk, checks the chunks' invariants (each
// chunk's readings sorted and inside its key range, its sums and the
// series stats right), and finally, when the pages are sound, runs
// bbolt's own check. It does not write, and reads a file that Open
// refuses. The error is the report's Err, or why the check could not
// run (a missing file, one that is not a wattrec file, another layout
// version).
func CheckFile(ctx context.Context, path string) (*CheckReport, error) {
	rep := &CheckReport{Path: path}
	if err := checkFile(ctx, rep, nil); err != nil {
		return rep, fmt.Errorf("check %s: %w", path, err)
	}
	return rep, rep.Err()
}

// Check checks the open file as CheckFile does and returns every problem
// found, joined; nil when the file is sound. Like bbolt's check on a read
// transaction, it must not run while the file is written.
func (db *DB) Check() error {
	rep := &CheckReport{Path: db.path}
	if err := checkFile(context.Background(), rep, db); err != nil {
		return err
	}
	return errors.Join(rep.Problems...)
}

// checkFile fills in rep. db, if not nil, is the file open already.
func checkFile(ctx context.Context, rep *CheckReport, db *DB) error {
	var bf *boltFile
	var err error
	if db != nil {
		bf, err = openBoltFile(rep.Path)
	} else {
		var unlock func()
		if bf, unlock, err = openShared(rep.Path); err == nil {
			defer unlock()
		}
	}
	if errors.Is(err, ErrCorrupt) {
		rep.Problems = append(rep.Problems, err)
		return nil
	} else if err != nil {
		return err
	}
	defer bf.Close()
	rep.Size, rep.PageSize, rep.Pages = bf.size, bf.pageSize, bf.meta.pgid
	for _, p := range []error{bf.metaProblem, bf.truncated} {
		if p != nil {
			rep.Problems = append(rep.Problems, p)
		}
	}
	c := &checker{rep: rep, series: map[SeriesKey]*seriesCheck{}, stored: map[SeriesKey]seriesStats{}}
	w := newWalker(bf)
	walk := &treeWalk{ctx: ctx, w: w, out: c}
	if err := walk.run(); err != nil {
		return err
	}
	rep.Records = walk.counts
	c.compareStats()
	free, errs := w.freeCheck()
	for _, err := range append(w.problems, errs...) {
		rep.Problems = append(rep.Problems, fmt.Errorf("%w: %v", ErrCorrupt, err))
	}
	rep.BranchPages, rep.LeafPages, rep.OverflowPages, rep.FreePages = w.branches, w.leaves, w.overflows, free
	if len(rep.Problems) > 0 {
		return nil
	}

	// The pages are sound: bbolt's checker can walk them.
	if db == nil {
		if db, err = Open(rep.Path, Options{ReadOnly: true}); err != nil {
			rep.Problems = append(rep.Problems, err)
			return nil
		}
		defer db.Close()
	}
	err = db.view(func(tx *bolt.Tx) error {
		for err := range tx.Check() { // drain fully: the checker sends until done
			rep.Problems = append(rep.Problems, fmt.Errorf("%w: bbolt: %v", ErrCorrupt, err))
		}
		return nil
	})
	if err != nil {
		rep.Problems = append(rep.Problems, err)
	}
	rep.BoltChecked = true
	return nil
}

// checkPages walks the page tree of the file at path, decoding no
// record: Open does it before bbolt reads a page.
func checkPages(path string) error {
	bf, err := openBoltFile(path)
	if err != nil {
		return err
	}
	defer bf.Close()
	if bf.truncated != nil {
		return bf.truncated
	}
	w := newWalker(bf)
	var errs []error
	var walk func(walkEntry)
	walk = func(e walkEntry) {
		if !e.bucket {
			return
		}
		r, err := parseBucket(e.value)
		if err != nil {
			errs = append(errs, fmt.Errorf("bucket %s: %w", printable(e.key), err))
			return
		}
		w.bucket(r, walk, func(l walkLoss) { errs = append(errs, l.err) })
	}
	w.bucket(walkRoot{page: bf.meta.root}, walk, func(l walkLoss) { errs = append(errs, l.err) })
	_, ferrs := w.freeCheck()
	errs = append(append(errs, w.problems...), ferrs...)
	if len(errs) > 0 {
		return fmt.Errorf("%w: %d problems with bbolt's pages, the first: %v", ErrCorrupt, len(errs), errs[0])
	}
	return nil
}

// checker is the records CheckFile's walk hands on: it counts them and
// checks the chunks of each series against each other and the stats.
type checker struct {
	rep    *CheckReport
	series map[SeriesKey]*seriesCheck
	stored map[SeriesKey]seriesStats // from the stats buckets
}

// seriesCheck is what the chunks of one series added up to so far.
type seriesCheck struct {
	stats seriesStats
	lastT int64 // of the last chunk
}

func (c *checker) created(int64)                    {}
func (c *checker) batch(*Batch) error               { return nil }
func (c *checker) stats(k SeriesKey, s seriesStats) { c.stored[k] = s }

func (c *checker) lost(l Loss) {
	c.rep.Losses = append(c.rep.Losses, l)
	c.rep.Problems = append(c.rep.Problems, l.error())
}

func (c *checker) chunk(k SeriesKey, h *chunkHeader, rs []rd) error {
	sums := chunkSums{peak: -1, hasSwing: true, ok: true}
	for i := 1; i < len(rs); i++ {
		sums.add(rs[i-1], rs[i])
	}
	if !h.sums.hasSwing { // written before the swing existed
		sums.swing, sums.hasSwing = 0, false
	}
	if sums.ok != h.sums.ok || (sums.ok && sums != h.sums) {
		return fmt.Errorf("sums %+v, the header says %+v: %w", sums, h.sums, ErrCorrupt)
	}
	s := c.series[k]
	if s == nil {
		s = &seriesCheck{}
		c.series[k] = s
	} else if h.firstT <= s.lastT {
		c.rep.Problems = append(c.rep.Problems, fmt.Errorf("series %s chunk %s starts at or before the end of the one before it (%s): %w",
			k, formatMs(h.firstT), formatMs(s.lastT), ErrCorrupt))
	}
	for _, r := range rs {
		s.stats.add(r)
	}
	s.lastT = h.lastT
	return nil
}

// compareStats checks each series' stats record against its chunks.
func (c *checker) compareStats() {
	keys := slices.SortedFunc(maps.Keys(c.series), func(a, b SeriesKey) int {
		return cmp.Or(cmp.Compare(a.Endpoint, b.Endpoint), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Device, b.Device))
	})
	for _, k := range keys {
		s := c.series[k]
		want, ok := c.stored[k]
		switch {
		case !ok:
			c.rep.Problems = append(c.rep.Problems, fmt.Errorf("series %s: stats missing: %w", k, ErrCorrupt))
		case want != s.stats:
			c.rep.Problems = append(c.rep.Problems, fmt.Errorf("series %s: stats %+v, the chunks hold %+v: %w", k, want, s.stats, ErrCorrupt))
		}
	}
}
