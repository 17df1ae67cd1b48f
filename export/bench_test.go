package export_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// memPeak samples the process's memory while an export runs (from its
// ProgressFunc, every few thousand rows).
type memPeak struct {
	heapInuse uint64 // Go heap in use
	rssAnon   int64  // anonymous resident memory (heap, stacks, runtime): not the mmapped bbolt file
}

func (m *memPeak) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.heapInuse = max(m.heapInuse, ms.HeapInuse)
	m.rssAnon = max(m.rssAnon, procStatus("RssAnon"))
}

// procStatus reads a kB field of /proc/self/status, in bytes; -1 where
// there is none.
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// resetPeakRSS resets VmHWM, the kernel's peak RSS, so that it measures
// from now on.
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// counter counts bytes written.
type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

type exporter func(ctx context.Context, w io.Writer, db *store.DB, opt export.Options) (int64, error)

var exporters = map[string]exporter{
	"Parquet": func(ctx context.Context, w io.Writer, db *store.DB, opt export.Options) (int64, error) {
		return export.Parquet(ctx, w, db, query.Filter{}, opt)
	},
	"CSV": func(ctx context.Context, w io.Writer, db *store.DB, opt export.Options) (int64, error) {
		return export.CSV(ctx, w, db, query.Filter{}, opt)
	},
	"JSONL": func(ctx context.Context, w io.Writer, db *store.DB, opt export.Options) (int64, error) {
		n, err := export.JSONL(ctx, w, db, query.Filter{}, opt)
		return int64(n), err
	},
	"Grid1s": func(ctx context.Context, w io.Writer, db *store.DB, opt export.Options) (int64, error) {
		return export.GridParquet(ctx, w, db, query.Filter{}, 1000, opt)
	},
}

// benchExport runs one exporter b.N times into a byte counter and reports
// rows/s, output MB/s, output size, peak Go heap and peak anonymous RSS.
func benchExport(b *testing.B, db *store.DB, run exporter) {
	b.Helper()
	ctx := context.Background()
	var peak memPeak
	var rows, size int64
	runtime.GC()
	resetPeakRSS()
	b.ResetTimer()
	for range b.N {
		var out counter
		n, err := run(ctx, &out, db, export.Options{Progress: func(int64, int64) { peak.sample() }})
		if err != nil {
			b.Fatal(err)
		}
		rows, size = n, out.n
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(rows), "rows")
	b.ReportMetric(float64(rows)/sec, "rows/s")
	b.ReportMetric(float64(size)/1e6, "out-MB")
	b.ReportMetric(float64(size)/1e6/sec, "out-MB/s")
	b.ReportMetric(float64(peak.heapInuse)/(1<<20), "peak-heap-MiB")
	if peak.rssAnon >= 0 {
		b.ReportMetric(float64(peak.rssAnon)/(1<<20), "peak-anon-RSS-MiB")
	}
	if hwm := procStatus("VmHWM"); hwm >= 0 {
		b.ReportMetric(float64(hwm)/(1<<20), "VmHWM-MiB") // includes the mmapped bbolt pages read
	}
}

// BenchmarkExport_2M exports a 2 M-reading synthetic store (one hour of
// 8 GPUs and 2 CPUs, packed) in each format, and reports the peak heap to
// show that memory does not grow with the recording.
func BenchmarkExport_2M(b *testing.B) {
	db := MustSyntheticDB(b, 2_000_000, time.Hour)
	for _, name := range []string{"Parquet", "CSV", "JSONL", "Grid1s"} {
		b.Run(name, func(b *testing.B) { benchExport(b, db, exporters[name]) })
	}
}

// BenchmarkExport_24h exports issue 4's data set: 24 h of 8 GPUs at
// 20 Hz (change-only) and 2 CPU packages with DRAM at 10 Hz, about 14.1 M
// readings, to a Parquet file through WriteFile (temp file, fsync,
// rename), and a 1 s grid of it. Generating the store takes minutes; set
// WATTREC_BENCH_DB to a path to keep it between runs (it is generated
// there if missing). Run it alone:
//
//	go test -run '^$' -bench Export_24h -benchtime 1x -timeout 30m ./export/
func BenchmarkExport_24h(b *testing.B) {
	path := os.Getenv("WATTREC_BENCH_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "24h.db")
	}
	if _, err := os.Stat(path); err != nil {
		start := time.Now()
		db, err := store.Open(path, store.Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := fillSynthetic(context.Background(), db, 14_100_000, 24*time.Hour); err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.Logf("generated %s in %s", path, time.Since(start).Round(time.Second))
	}
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if fi, err := os.Stat(path); err == nil {
		b.Logf("store: %s, %.0f MB", path, float64(fi.Size())/1e6)
	}
	out := filepath.Join(b.TempDir(), "run.parquet")
	for _, name := range []string{"Parquet", "Grid1s"} {
		b.Run(name, func(b *testing.B) {
			benchExport(b, db, func(ctx context.Context, w io.Writer, db *store.DB, opt export.Options) (n int64, err error) {
				err = export.WriteFile(out, true, func(f io.Writer) error {
					n, err = exporters[name](ctx, io.MultiWriter(f, w), db, opt)
					return err
				})
				return n, err
			})
		})
	}
}
