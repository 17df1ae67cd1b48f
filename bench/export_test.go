package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"syscall"
	"testing"
	"time"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// BenchmarkExport writes every reading of the stored 24 h data set as the
// raw Parquet table (export.Parquet, as `wattrec export --format parquet`
// does, default options), into a writer that only counts the bytes: the
// file system's writes are left out, so the time is the store's reads,
// the encoding and the compression.
//
// cache=warm exports from the open DB, its file in the page cache.
// cache=cold is what an export of a file that is not in the page cache
// costs: each round drops the page cache (sync; echo 3 >
// /proc/sys/vm/drop_caches, root only: skipped otherwise), then opens a
// copy of the file read-only, exports and closes it, and the time
// includes the Open (open-s reports it alone: Open reads every page to
// check the tree, which leaves the file in the page cache). The copy is
// there because dropping the page cache does not evict the pages of a
// file that a process has mapped and touched, as the open DB's are.
//
// It reports the seconds per export (s), the rows, rows/s, the output's
// bytes per row (B/sample) and the peak of the Go heap's objects
// (peak-heap-MiB, sampled every few thousand rows).
func BenchmarkExport(b *testing.B) {
	for _, cache := range []string{"warm", "cold"} {
		b.Run("span=24h/cache="+cache, func(b *testing.B) {
			ctx := context.Background()
			db := mustQueryDB(b)
			var peak heapPeak
			var out countingWriter
			var rows int64
			run := func(db *store.DB) {
				out = 0
				n, err := export.Parquet(ctx, &out, db, query.Filter{}, export.Options{Version: "bench",
					Progress: func(int64, int64) { peak.sample() }})
				if err != nil {
					b.Fatal(err)
				}
				rows = n
			}
			var path string
			if cache == "cold" {
				if err := dropCaches(); err != nil {
					b.Skipf("cannot drop the page cache: %v", err)
				}
				path = filepath.Join(tmpDir, "export-cold.db")
				if err := copyFile(path, db.Path()); err != nil {
					b.Fatal(err)
				}
				defer os.Remove(path)
			} else {
				run(db) // warm up
			}
			runtime.GC()
			peak = heapPeak{}
			var opening time.Duration
			b.ResetTimer()
			for range b.N {
				if cache == "warm" {
					run(db)
					continue
				}
				b.StopTimer()
				if err := dropCaches(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				cold, err := store.Open(path, store.Options{ReadOnly: true})
				if err != nil {
					b.Fatal(err)
				}
				opening += time.Since(start)
				run(cold)
				if err := cold.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec, "s")
			if cache == "cold" {
				b.ReportMetric(opening.Seconds()/float64(b.N), "open-s")
			}
			b.ReportMetric(float64(rows), "rows")
			b.ReportMetric(float64(rows)/sec, "rows/s")
			b.ReportMetric(float64(out)/float64(rows), "B/sample")
			b.ReportMetric(float64(peak.bytes)/(1<<20), "peak-heap-MiB")
		})
	}
}

// dropCaches writes the kernel's dirty pages back and drops the clean
// ones from the page cache, except those of files a process has mapped.
func dropCaches() error {
	f, err := os.OpenFile("/proc/sys/vm/drop_caches", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	syscall.Sync()
	if _, err := f.WriteString("3\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyFile copies the file src to dst. src may be a DB open for writing
// that nobody writes to meanwhile.
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Close()
}

// heapPeak follows the largest size of the Go heap's objects (live and
// not yet swept), read without stopping the world.
type heapPeak struct {
	bytes uint64
	m     [1]metrics.Sample
}

func (p *heapPeak) sample() {
	p.m[0].Name = "/memory/classes/heap/objects:bytes"
	metrics.Read(p.m[:])
	p.bytes = max(p.bytes, p.m[0].Value.Uint64())
}
