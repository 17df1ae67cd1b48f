package bench

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/importer"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// importSpan is the stretch of the data set the import and merge
// benchmarks use: about a million readings.
const importSpan = 2 * time.Hour

// importDB is that stretch stored once, with counter readings, under
// Endpoint; its path.
var importDB = sync.OnceValues(func() (string, error) {
	r, err := Replay(importSpan)
	if err != nil {
		return "", err
	}
	path := filepath.Join(tmpDir, "import.db")
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		return "", err
	}
	return path, errors.Join(Build(context.Background(), db, r, importSpan, 1<<16, true), db.Close())
})

// BenchmarkImport is export and then import of the same ~1 M readings,
// in each format, warm (files in the page cache): the export writes the
// file (export.Write, as `wattrec export -o` does), the import reads it
// into a new file (importer.Import, as `wattrec import` does, the CSV
// and JSON Lines with --observed start..end), checked and synced. It
// reports both rates in readings per second.
func BenchmarkImport(b *testing.B) {
	src, err := importDB()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, format := range export.Formats {
		b.Run("format="+format, func(b *testing.B) {
			var exportS, importS float64
			var rows int64
			for i := range b.N {
				db, err := store.Open(src, store.Options{ReadOnly: true})
				if err != nil {
					b.Fatal(err)
				}
				file := filepath.Join(b.TempDir(), "run."+format)
				start := time.Now()
				err = export.WriteFile(file, true, func(w io.Writer) error {
					return export.Write(ctx, w, db, export.Request{Format: format})
				})
				exportS += time.Since(start).Seconds()
				db.Close()
				if err != nil {
					b.Fatal(err)
				}
				opt := importer.Options{}
				if format != export.FormatParquet {
					opt.Observed = &query.TimeRange{From: query.Bound{Kind: query.BoundStart}, To: query.Bound{Kind: query.BoundEnd}}
				}
				start = time.Now()
				rep, err := importer.Import(ctx, filepath.Join(b.TempDir(), "imported.db"), []string{file}, opt)
				importS += time.Since(start).Seconds()
				if err != nil {
					b.Fatal(err)
				}
				if i == 0 {
					fi, _ := os.Stat(file)
					b.ReportMetric(float64(fi.Size())/float64(rep.Counts.Readings), "file-bytes/reading")
				}
				rows = int64(rep.Counts.Readings)
			}
			b.ReportMetric(float64(rows), "readings")
			b.ReportMetric(float64(rows)*float64(b.N)/exportS, "export-readings/s")
			b.ReportMetric(float64(rows)*float64(b.N)/importS, "import-readings/s")
		})
	}
}

// BenchmarkMerge merges two recordings of ~1 M readings each (the data
// set, and the same under another endpoint) into a new file, checked and
// synced, as `wattrec merge` does.
func BenchmarkMerge(b *testing.B) {
	a, err := importDB()
	if err != nil {
		b.Fatal(err)
	}
	other := filepath.Join(tmpDir, "import-node2.db")
	if err := renamed(a, other, "node2:4938"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var counts store.Counts
	for range b.N {
		if counts, err = importer.Merge(context.Background(), filepath.Join(b.TempDir(), "all.db"), []string{a, other}, false, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(counts.Readings), "readings")
	b.ReportMetric(float64(counts.Readings)*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
}

// renamed writes the readings, sessions and counter readings of src
// into a new file at dst under endpoint.
func renamed(src, dst, endpoint string) error {
	ctx := context.Background()
	in, err := store.Open(src, store.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := store.Open(dst, store.Options{NoSync: true})
	if err != nil {
		return err
	}
	defer out.Close()
	var batch store.Batch
	flush := func() error {
		err := out.Write(ctx, &batch)
		batch.Reset()
		return err
	}
	ss, err := in.Sessions(ctx, Endpoint)
	if err != nil {
		return err
	}
	for _, s := range ss {
		s.Endpoint = endpoint
		batch.Sessions = append(batch.Sessions, s)
	}
	series, err := in.Series(ctx, "", false)
	if err != nil {
		return err
	}
	for _, s := range series {
		cs, err := in.Counters(ctx, s.SeriesKey, math.MinInt64, math.MaxInt64)
		if err != nil {
			return err
		}
		for _, c := range cs {
			c.Endpoint = endpoint
			batch.Counters = append(batch.Counters, c)
		}
		err = in.Scan(ctx, s.SeriesKey, math.MinInt64, math.MaxInt64, func(r *store.Reading) error {
			rr := *r
			rr.Endpoint = endpoint
			batch.Readings = append(batch.Readings, rr)
			if len(batch.Readings) < 1<<16 {
				return nil
			}
			return flush()
		})
		if err != nil {
			return err
		}
	}
	return flush()
}
