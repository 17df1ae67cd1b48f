package bench

import (
	"context"
	"os"
	"runtime"
	"runtime/metrics"
	"syscall"
	"testing"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
)

// BenchmarkExport writes every reading of the stored 24 h data set as the
// raw Parquet table (export.Parquet, as `wattrec export --format parquet`
// does, default options), into a writer that only counts the bytes: the
// file system's writes are left out, so the time is the store's reads,
// the encoding and the compression. cache=warm has the file in the page
// cache; cache=cold drops the page cache before each export (sync; echo 3
// > /proc/sys/vm/drop_caches, root only: skipped otherwise), so that the
// mmapped file's pages are read from disk again. It reports the seconds
// per export (s), the rows, rows/s, the output's bytes per row
// (B/sample) and the peak of the Go heap's live objects (peak-heap-MiB,
// sampled every few thousand rows).
func BenchmarkExport(b *testing.B) {
	for _, cache := range []string{"warm", "cold"} {
		b.Run("span=24h/cache="+cache, func(b *testing.B) {
			db := mustQueryDB(b)
			ctx := context.Background()
			var peak heapPeak
			var out countingWriter
			var rows int64
			run := func() {
				out = 0
				n, err := export.Parquet(ctx, &out, db, query.Filter{}, export.Options{Version: "bench",
					Progress: func(int64, int64) { peak.sample() }})
				if err != nil {
					b.Fatal(err)
				}
				rows = n
			}
			if cache == "cold" {
				if err := dropCaches(); err != nil {
					b.Skipf("cannot drop the page cache: %v", err)
				}
			} else {
				run() // warm up: the file is in the page cache
			}
			runtime.GC()
			peak = heapPeak{}
			b.ResetTimer()
			for range b.N {
				if cache == "cold" {
					b.StopTimer()
					if err := dropCaches(); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				run()
			}
			b.StopTimer()
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec, "s")
			b.ReportMetric(float64(rows), "rows")
			b.ReportMetric(float64(rows)/sec, "rows/s")
			b.ReportMetric(float64(out)/float64(rows), "B/sample")
			b.ReportMetric(float64(peak.bytes)/(1<<20), "peak-heap-MiB")
		})
	}
}

// dropCaches writes the kernel's dirty pages back and drops the clean
// ones from the page cache, the mmapped store's included.
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
