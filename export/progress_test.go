package export_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
)

// TestOptions_Progress checks what every exporter tells its ProgressFunc:
// a first call at 0, counts that only grow, and a last call with
// done == total == the rows written.
func TestOptions_Progress(t *testing.T) {
	db := MustSyntheticDB(t, 100_000, 10*time.Minute)
	ctx := context.Background()
	for name, run := range map[string]func(opt export.Options) (int64, error){
		"Parquet": func(opt export.Options) (int64, error) {
			return export.Parquet(ctx, io.Discard, db, query.Filter{}, opt)
		},
		"ParquetWindow": func(opt export.Options) (int64, error) {
			return export.Parquet(ctx, io.Discard, db, query.Filter{Range: query.Between(t0+60_000, t0+300_000)}, opt)
		},
		"CSV": func(opt export.Options) (int64, error) { return export.CSV(ctx, io.Discard, db, query.Filter{}, opt) },
		"GridParquet": func(opt export.Options) (int64, error) {
			return export.GridParquet(ctx, io.Discard, db, query.Filter{}, 50, opt)
		},
		"GridCSV": func(opt export.Options) (int64, error) {
			return export.GridCSV(ctx, io.Discard, db, query.Filter{}, 50, opt)
		},
	} {
		t.Run(name, func(t *testing.T) {
			var calls [][2]int64
			n, err := run(export.Options{Progress: func(done, total int64) { calls = append(calls, [2]int64{done, total}) }})
			if err != nil {
				t.Fatal(err)
			}
			if len(calls) < 4 {
				t.Fatalf("%d progress calls for %d rows: %v", len(calls), n, calls)
			}
			if calls[0][0] != 0 {
				t.Errorf("first call %v, want done = 0", calls[0])
			}
			for i := 1; i < len(calls); i++ {
				if calls[i][0] < calls[i-1][0] || calls[i][0] > calls[i][1] {
					t.Fatalf("call %d: %v after %v", i, calls[i], calls[i-1])
				}
			}
			if last := calls[len(calls)-1]; last != [2]int64{n, n} {
				t.Errorf("last call %v, want [%d %d]", last, n, n)
			}
			// The first estimate is within 2% of the truth.
			if est := calls[0][1]; est < n*98/100 || est > n*102/100 {
				t.Errorf("estimated %d rows, wrote %d", est, n)
			}
		})
	}
}

func TestProgressBar(t *testing.T) {
	t.Run("NotATerminal", func(t *testing.T) {
		var buf bytes.Buffer
		bar := export.NewProgressBar(&buf, "export")
		bar.Update(0, 10)
		bar.Update(10, 10)
		bar.Finish()
		if buf.Len() != 0 {
			t.Errorf("drew %q on a buffer", buf.String())
		}
		f, err := os.Create(t.TempDir() + "/out")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		bar = export.NewProgressBar(f, "export")
		bar.Update(10, 10)
		bar.Finish()
		if fi, _ := f.Stat(); fi.Size() != 0 {
			t.Errorf("drew %d bytes into a regular file", fi.Size())
		}
	})
}
