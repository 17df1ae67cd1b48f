package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wattrec/wattrec/chart"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/report"
)

// BenchmarkPlot draws the power timeline of the 8 GPUs over the whole
// 24 h of the stored data set (every reading decoded into per-pixel
// envelopes, the legend's joules from query.Energy), warm, as `wattrec
// plot --device gpu` does, 1200 × 600 px, as SVG and PNG. It reports
// the time per plot, the file's size and the readings drawn; with
// WATTREC_BENCH_PLOT_DIR set it also leaves the pictures there.
func BenchmarkPlot(b *testing.B) {
	ctx := context.Background()
	for _, format := range []string{chart.FormatSVG, chart.FormatPNG} {
		b.Run(fmt.Sprintf("gpus=8/window=24h/format=%s", format), func(b *testing.B) {
			db := mustQueryDB(b)
			devs, err := query.ParseDevices("gpu")
			if err != nil {
				b.Fatal(err)
			}
			req := chart.Request{Format: format, UTC: true, Filter: query.Filter{Devices: devs,
				Range: query.Between(Start.UnixMilli()+OffsetMs, Start.Add(24*time.Hour).UnixMilli()+OffsetMs)}}
			var buf bytes.Buffer
			draw := func() {
				buf.Reset()
				if err := chart.Write(ctx, &buf, db, req); err != nil {
					b.Fatal(err)
				}
			}
			draw() // warm up
			b.ResetTimer()
			for range b.N {
				draw()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/plot")
			b.ReportMetric(float64(buf.Len())/1024, "KiB")
			series, err := db.Series(ctx, "", false)
			if err != nil {
				b.Fatal(err)
			}
			readings := 0
			for _, s := range series {
				if req.Filter.Match(s.SeriesKey) {
					readings += s.Readings
				}
			}
			b.ReportMetric(float64(readings), "readings")
			if dir := os.Getenv("WATTREC_BENCH_PLOT_DIR"); dir != "" {
				if err := os.WriteFile(filepath.Join(dir, "gpus8-24h."+format), buf.Bytes(), 0o644); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReport writes the HTML report of the whole 24 h data set (8
// GPUs, 2 CPUs with DRAM: the timeline of every series, the energy
// tables), warm, as `wattrec report` does. It reports the time per
// report and the file's size.
func BenchmarkReport(b *testing.B) {
	ctx := context.Background()
	b.Run("window=24h", func(b *testing.B) {
		db := mustQueryDB(b)
		req := report.Request{UTC: true, Version: "bench"}
		var buf bytes.Buffer
		write := func() {
			buf.Reset()
			if err := report.Write(ctx, &buf, db, req); err != nil {
				b.Fatal(err)
			}
		}
		write() // warm up
		b.ResetTimer()
		for range b.N {
			write()
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/report")
		b.ReportMetric(float64(buf.Len())/1024, "KiB")
		if dir := os.Getenv("WATTREC_BENCH_PLOT_DIR"); dir != "" {
			if err := os.WriteFile(filepath.Join(dir, "24h.html"), buf.Bytes(), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	})
}
