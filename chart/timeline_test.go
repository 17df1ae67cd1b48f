package chart

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// golden compares got with testdata/NAME.golden (rewritten with -update).
func golden(t *testing.T, got string) {
	t.Helper()
	path := filepath.Join("testdata", strings.ReplaceAll(t.Name(), "/", "_")+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./chart -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// workedWindow is the worked examples' window [1 s, 10 s).
var workedWindow = query.Filter{Range: query.Between(at(1), at(10))}

func render(t *testing.T, db *store.DB, req Request) (*timeline, []byte, layout) {
	t.Helper()
	tl, err := newTimeline(context.Background(), db, req)
	if err != nil {
		t.Fatal(err)
	}
	c, lay := tl.render()
	var buf bytes.Buffer
	if err := writeCanvas(&buf, c, tl.req.Format); err != nil {
		t.Fatal(err)
	}
	return tl, buf.Bytes(), lay
}

// TestTimeline_SVG: the worked examples drawn by device, kind and total,
// as the structure of their SVG: a line per group, the GPU's broken at
// its 2 s gap, a band per mark instance and one for the gap, and the
// legend's exact joules and coverage (GPU 0: 1750 J, 7/9).
func TestTimeline_SVG(t *testing.T) {
	db := workedExample(t)
	for _, by := range []string{query.ByDevice, query.ByKind, query.ByTotal} {
		t.Run(by, func(t *testing.T) {
			tl, svg, lay := render(t, db, Request{Filter: workedWindow, By: by, UTC: true})
			golden(t, summary(t, tl, string(svg), lay))
		})
	}
}

// TestTimeline_NoLineAcrossGap: no segment of the GPU's line spans any
// part of its gap, and the line reaches both of the gap's edges.
func TestTimeline_NoLineAcrossGap(t *testing.T) {
	db := workedExample(t)
	_, svg, lay := render(t, db, Request{Filter: workedWindow, UTC: true, Width: 2000})
	paths, _ := parseSVG(t, string(svg))
	gapFrom, gapTo := lay.x(float64(at(6))), lay.x(float64(at(8)))
	var left, right bool
	for _, piece := range pieces(paths, lineColor(0), lay.data.Rectangle) {
		for i := 1; i < len(piece); i++ {
			a, b := piece[i-1].X, piece[i].X
			if min(a, b) < gapTo-0.1 && max(a, b) > gapFrom+0.1 { // the SVG has 5 digits

				t.Fatalf("a segment from x=%v to x=%v crosses the gap %v..%v", a, b, gapFrom, gapTo)
			}
		}
		last, first := piece[len(piece)-1].X, piece[0].X
		left = left || abs(last-gapFrom) < 0.1
		right = right || abs(first-gapTo) < 0.1
	}
	if !left || !right {
		t.Errorf("the line does not reach the gap's edges (ends at its start: %v, starts at its end: %v)", left, right)
	}
}

func abs(x vg.Length) vg.Length { return max(x, -x) }

// pixel is the PNG pixel at data coordinates (ms, watts).
func pixel(img image.Image, lay layout, ms int64, watts float64) color.RGBA {
	x, y := lay.x(float64(ms)), lay.y(watts)
	h := img.Bounds().Dy()
	px, py := int(float64(x)*dpi/72), h-1-int(float64(y)*dpi/72)
	return color.RGBAModel.Convert(img.At(px, py)).(color.RGBA)
}

func white(c color.RGBA) bool { return c.R > 250 && c.G > 250 && c.B > 250 }

// TestTimeline_PNG decodes the worked examples' PNG and looks at the
// pixels where things must be: the gap band, a mark's tint, the GPU's
// line, the legend under the plot, and nothing in the margin.
func TestTimeline_PNG(t *testing.T) {
	db := workedExample(t)
	_, b, lay := render(t, db, Request{Filter: workedWindow, UTC: true, Format: FormatPNG})
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got != (image.Point{DefaultWidth, DefaultHeight}) {
		t.Errorf("size %v, want %dx%d", got, DefaultWidth, DefaultHeight)
	}
	if c := pixel(img, lay, at(7), 150); white(c) || max(c.R, c.G, c.B)-min(c.R, c.G, c.B) > 24 {
		t.Errorf("inside the gap: %v, want grey", c)
	}
	if c := pixel(img, lay, at(1.5), 200); white(c) || c.R < c.B+20 {
		t.Errorf("inside epoch #1: %v, want its amber tint", c)
	}
	blue := false // GPU 0 at 100 W over [1 s, 2 s): line colour within 2 px
	for dy := -1.5; dy <= 1.5; dy += 0.25 {
		c := pixel(img, lay, at(1.5), 100+dy*300/float64(lay.y(300)-lay.y(0))*0.75)
		blue = blue || (c.B > c.R+40 && c.B > 120)
	}
	if !blue {
		t.Error("no GPU line at (1.5 s, 100 W)")
	}
	legend := 0
	for y := int(float64(lay.data.Min.Y)*dpi/72) - 70; y > 0; y-- { // below the time axis
		for x := range img.Bounds().Dx() {
			if !white(color.RGBAModel.Convert(img.At(x, img.Bounds().Dy()-y)).(color.RGBA)) {
				legend++
			}
		}
	}
	if legend < 500 {
		t.Errorf("%d non-white pixels under the plot: no legend?", legend)
	}
	for y := range img.Bounds().Dy() { // the right margin
		if c := color.RGBAModel.Convert(img.At(img.Bounds().Dx()-3, y)).(color.RGBA); !white(c) {
			t.Fatalf("margin pixel (%d, %d) is %v", img.Bounds().Dx()-3, y, c)
		}
	}
}

// TestTimeline_Burst: an hour at 100 W with one second at 400 W, drawn
// 600 px wide (6 s a column): the burst's column reaches 400 W in the
// envelope, its mean is the column's exact average, the legend's joules
// are query's, and the PNG shows the spike.
func TestTimeline_Burst(t *testing.T) {
	t.Parallel()
	db, err := store.Open(filepath.Join(t.TempDir(), "burst.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const ep, hour = "n1:4938", 3600
	b := store.Batch{Sessions: []store.Session{{Endpoint: ep, Stream: store.StreamGPU, Start: at(0), End: at(hour)}}}
	for s := range int64(hour) {
		mw := int64(100_000)
		if s == 1800 {
			mw = 400_000
		}
		b.Readings = append(b.Readings, store.Reading{Endpoint: ep, Kind: store.KindGPU, TimeMs: at(float64(s)), DaemonMs: at(float64(s)), MilliWatts: mw})
	}
	if err := db.Write(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	req := Request{Format: FormatPNG, Width: 600, Height: 400, UTC: true}
	tl, png0, lay := render(t, db, req)
	tr := tl.lines[0].trace
	if tr.peakW != 400 {
		t.Errorf("envelope top %v W, want 400", tr.peakW)
	}
	if got, want := tl.lines[0].row.EnergyUJ, int64(hour*100_000_000+300_000_000); got != want {
		t.Errorf("legend energy %d µJ, want %d", got, want)
	}
	c := tl.grid.col(at(1800))
	colMs := tl.grid.start(c+1) - tl.grid.start(c)
	var cols *columns
	for _, s := range []store.SeriesKey{{Endpoint: ep, Kind: store.KindGPU}} {
		plan, err := query.NewPlan(context.Background(), db, query.Filter{}, query.Periods{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := readColumns(context.Background(), db, plan, tl.grid)
		if err != nil {
			t.Fatal(err)
		}
		_ = s
		cols = got[0]
	}
	bin := cols.bins[c]
	if bin.maxMW != 400_000 || bin.minMW != 100_000 || bin.valuedMs != colMs || bin.sumUJ != colMs*100_000+300_000_000 {
		t.Errorf("burst column %+v (width %d ms)", bin, colMs)
	}
	img, err := png.Decode(bytes.NewReader(png0))
	if err != nil {
		t.Fatal(err)
	}
	spike := false
	for dms := int64(-6000); dms <= 6000; dms += 500 {
		c := pixel(img, lay, at(1800)+dms, 380)
		spike = spike || (!white(c) && c.B > c.R)
	}
	if !spike {
		t.Error("no trace of the 400 W burst near (30 min, 380 W) in the PNG")
	}
}

// TestTimeline_Window: --window epoch plots the span of its instances,
// [1 s, 10 s), whatever the rest of the recording.
func TestTimeline_Window(t *testing.T) {
	db := workedExample(t)
	tl, err := newTimeline(context.Background(), db, Request{Window: "epoch"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tl.window, (query.Interval{From: at(1), To: at(10)}); got != want {
		t.Errorf("window %v, want %v", got, want)
	}
	if got := tl.lines[0].row.EnergyUJ; got != 1_750_000_000 {
		t.Errorf("GPU 0: %d µJ, want 1750 J", got)
	}
}

// TestNewTimeline_Errors: what a plot refuses, with which sentinel; all
// of them also match query.ErrInvalid.
func TestNewTimeline_Errors(t *testing.T) {
	db := workedExample(t)
	gpu9, err := query.ParseDevices("gpu:9")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  Request
		want error
		msg  string
	}{
		{"UnknownDevice", Request{Filter: query.Filter{Devices: gpu9}}, ErrNoSeries, "w.db: it has n1:4938 gpu:0, n1:4938 cpu:0, n1:4938 dram:0"},
		{"UnknownWindow", Request{Window: "warmup"}, query.ErrNoWindow, `no window named "warmup" (marks: epoch, step)`},
		{"EmptyWindow", Request{Filter: query.Filter{Range: query.Between(at(3), at(3))}}, query.ErrInvalid, "empty window"},
		{"NothingRecorded", Request{Filter: query.Filter{Range: query.Between(at(100), at(200))}}, ErrNoData, "their readings span"},
		{"Format", Request{Format: "gif"}, ErrFormat, `"gif"`},
		{"Width", Request{Width: 10}, query.ErrInvalid, "width 10 px"},
		{"By", Request{By: "node"}, query.ErrInvalid, `group by "node"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newTimeline(context.Background(), db, tc.req)
			if !errors.Is(err, tc.want) || !errors.Is(err, query.ErrInvalid) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v, want %v containing %q", err, tc.want, tc.msg)
			}
		})
	}
	t.Run("TooManyLines", func(t *testing.T) {
		db, err := store.Open(filepath.Join(t.TempDir(), "many.db"), store.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		b := store.Batch{Sessions: []store.Session{{Endpoint: "n1:4938", Stream: store.StreamGPU, Start: at(0), End: at(10)}}}
		for d := range int32(maxLines + 1) {
			b.Readings = append(b.Readings, store.Reading{Endpoint: "n1:4938", Kind: store.KindGPU, Device: d, TimeMs: at(0), DaemonMs: at(0), MilliWatts: 1000})
		}
		if err := db.Write(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		if _, err := newTimeline(context.Background(), db, Request{}); !errors.Is(err, ErrTooManyLines) {
			t.Errorf("%d GPUs by device: err = %v, want ErrTooManyLines", maxLines+1, err)
		}
		if _, err := newTimeline(context.Background(), db, Request{By: query.ByKind}); err != nil {
			t.Errorf("by kind: %v", err)
		}
	})
}

func TestFormatFor(t *testing.T) {
	for path, want := range map[string]string{"run.svg": FormatSVG, "a/b/RUN.PNG": FormatPNG, "run.jpg": "", "run": ""} {
		got, err := FormatFor(path)
		if got != want || (want == "") != errors.Is(err, ErrFormat) {
			t.Errorf("FormatFor(%q) = %q, %v; want %q", path, got, err, want)
		}
	}
}
