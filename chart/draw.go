package chart

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/wattrec/wattrec/query"
)

// dpi is the resolution a chart is drawn at: its width and height in
// pixels at this many per inch are its size in points.
const dpi = 96

// pxLen is n pixels as a length.
func pxLen(n int) vg.Length { return vg.Length(n) * vg.Inch / dpi }

// Sizes inside a chart, in points.
const (
	margin      = vg.Length(8)
	lineWidth   = vg.Length(1)
	labelSize   = vg.Length(8)   // mark labels
	legendSize  = vg.Length(9)   // legend entries
	labelRows   = 2              // rows of mark labels above the lines
	minGapWidth = vg.Length(1.5) // 2 px: the narrowest gap band
	hatchStep   = vg.Length(5)
)

// layout is where a render put the data area of the plot, and the
// transforms from data to canvas coordinates (for tests that read the
// pixels back).
type layout struct {
	data draw.Canvas
	x, y func(float64) vg.Length
}

// Write draws the timeline in its request's format and size to w.
func (t *timeline) write(w io.Writer) error {
	c, _ := t.render()
	return writeCanvas(w, c, t.req.Format)
}

// writeCanvas writes a drawn canvas of format to w. An SVG names the
// typeface with fallbacks of the same metrics, for a viewer that lacks
// it.
func writeCanvas(w io.Writer, c vg.CanvasWriterTo, format string) error {
	if format != FormatSVG {
		_, err := c.WriteTo(w)
		return err
	}
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return err
	}
	_, err := w.Write(bytes.ReplaceAll(buf.Bytes(), []byte("font-family:Liberation Sans;"),
		[]byte("font-family:'Liberation Sans',Arial,Helvetica,sans-serif;")))
	return err
}

// render draws the timeline: the plot on top, the legend below it.
func (t *timeline) render() (vg.CanvasWriterTo, layout) {
	c := newCanvas(t.req.Format, t.req.Width, t.req.Height)
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	dc = draw.Crop(dc, margin, -margin, margin, -margin)

	legend := newLegendGrid(dc, t.legendEntries())
	plotArea := draw.Crop(dc, 0, 0, legend.height+margin, 0)
	p := t.plot(plotArea)
	p.Draw(plotArea)
	legend.draw(dc)

	data := p.DataCanvas(plotArea)
	x, y := p.Transforms(&data)
	return c, layout{data: data, x: x, y: y}
}

// newCanvas is a blank canvas of format, width × height pixels.
func newCanvas(format string, width, height int) vg.CanvasWriterTo {
	w, h := pxLen(width), pxLen(height)
	if format == FormatPNG {
		return vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi))}
	}
	return vgsvg.New(w, h)
}

// plot is the timeline's plot for a drawing area of area's size.
func (t *timeline) plot(area draw.Canvas) *plot.Plot {
	p := plot.New()
	restyle(p)
	p.Title.Text = t.title()
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "time (" + ZoneLabel(t.loc, time.UnixMilli(t.window.From)) + ")"
	p.Y.Label.Text = "power (W)"
	p.X.Padding, p.Y.Padding = 0, 0
	p.X.Tick.Marker = timeTicks{loc: t.loc, max: int(float64(area.Size().X) / 80)}
	p.Y.Tick.Marker = valueTicks{}
	p.X.Min, p.X.Max = float64(t.window.From), float64(t.window.To)

	// Room above the highest envelope for the mark labels.
	peak := 0.0
	for _, l := range t.lines {
		peak = max(peak, l.trace.peakW)
	}
	if peak == 0 {
		peak = 1
	}
	p.Y.Min, p.Y.Max = 0, peak*1.05
	if len(t.marks) > 0 {
		dataH := float64(area.Size().Y) - 70 // about: less the title and the time axis
		room := float64(labelRows*(labelSize+3) + 4)
		if dataH > 2*room {
			p.Y.Max = peak * 1.02 * dataH / (dataH - room)
		}
	}

	grid := plotter.NewGrid()
	grid.Vertical.Color, grid.Horizontal.Color = color.Gray{0xd8}, color.Gray{0xd8}
	p.Add(markBands(t.marks), grid, gapBands(t.gaps))
	for i := range t.lines {
		p.Add(envelope{&t.lines[i].trace, t.envelopeFill(i)})
	}
	for i := range t.lines {
		p.Add(polyline{&t.lines[i].trace, lineStyle(i)}, whiskers{&t.lines[i].trace, lineStyle(i)})
	}
	p.Add(markLabels(t.marks))
	return p
}

// title is the plot's heading: the file, the grouping and the window.
func (t *timeline) title() string {
	what := "power by " + t.req.By
	if t.req.By == query.ByTotal {
		what = "total power"
	}
	from, to := time.UnixMilli(t.window.From).In(t.loc), time.UnixMilli(t.window.To).In(t.loc)
	end := to.Format("2006-01-02 15:04:05")
	if to.Format("2006-01-02") == from.Format("2006-01-02") {
		end = to.Format("15:04:05")
	}
	s := fmt.Sprintf("%s: %s, %s → %s (%s)", t.file, what, from.Format("2006-01-02 15:04:05"), end, time.Duration(t.window.Len())*time.Millisecond)
	if t.req.Window != "" {
		s += fmt.Sprintf(", the instances of %q", t.req.Window)
	}
	return s
}

// envelopeFill is the fill of line i's envelope: fainter the more
// lines there are, so that where they overlap the lines still show.
func (t *timeline) envelopeFill(i int) color.RGBA {
	return alpha(lineColor(i), max(0.06, envelopeAlpha*min(1, 2/float64(len(t.lines)))))
}

func lineColor(i int) color.RGBA { return lineColors[i%len(lineColors)] }

func lineStyle(i int) draw.LineStyle {
	return draw.LineStyle{Color: lineColor(i), Width: lineWidth, Dashes: lineDashes[i/len(lineColors)%len(lineDashes)]}
}

// points is the values ys of a piece as canvas points: at its start,
// at each column's middle and at its end; a point on the level of the
// two before it moves the last one instead.
func (pc piece) points(trX, trY func(float64) vg.Length, ys []float64) []vg.Point {
	pts := make([]vg.Point, 0, len(ys)+2)
	add := func(x, y float64) {
		pt := vg.Point{X: trX(x), Y: trY(y)}
		if n := len(pts); n >= 2 && pts[n-1].Y == pt.Y && pts[n-2].Y == pt.Y {
			pts[n-1] = pt
			return
		}
		pts = append(pts, pt)
	}
	add(pc.from, ys[0])
	for i, x := range pc.x {
		add(x, ys[i])
	}
	add(pc.to, ys[len(ys)-1])
	return pts
}

// envelope fills the min/max band of a trace.
type envelope struct {
	tr   *trace
	fill color.Color
}

// Plot implements plot.Plotter.
func (e envelope) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, pc := range e.tr.pieces {
		if !pc.spread {
			continue
		}
		poly := pc.points(trX, trY, pc.max)
		lo := pc.points(trX, trY, pc.min)
		for j := len(lo) - 1; j >= 0; j-- {
			poly = append(poly, lo[j])
		}
		c.FillPolygon(e.fill, c.ClipPolygonXY(poly))
	}
}

// polyline strokes the mean line of a trace, each piece on its own.
type polyline struct {
	tr    *trace
	style draw.LineStyle
}

// pathPoints is the most points one stroked path has: a rasterizer
// takes time that grows faster than a path's length, so a long line is
// stroked in overlapping parts (the same picture).
const pathPoints = 64

// Plot implements plot.Plotter.
func (l polyline) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, pc := range l.tr.pieces {
		for _, part := range c.ClipLinesXY(pc.points(trX, trY, pc.mean)) {
			for len(part) > pathPoints {
				c.StrokeLines(l.style, part[:pathPoints])
				part = part[pathPoints-1:]
			}
			c.StrokeLines(l.style, part)
		}
	}
}

// Outliers: a column's reach above (or below) its mean is drawn as a
// whisker when it is at least whiskerMin and more than whiskerMin beyond
// twice the median reach of the columns up to whiskerSpan on either
// side: a burst shorter than a pixel, which the faint envelope alone
// would hide, but not the steady spread of a noisy line.
const (
	whiskerMin  = vg.Length(4)
	whiskerSpan = 8
)

// whiskers strokes a trace's outlying columns from the mean to their
// maximum (or minimum), in the line's style.
type whiskers struct {
	tr    *trace
	style draw.LineStyle
}

// Plot implements plot.Plotter.
func (w whiskers) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, pc := range w.tr.pieces {
		up, down := make([]vg.Length, len(pc.x)), make([]vg.Length, len(pc.x))
		for i := range pc.x {
			up[i], down[i] = trY(pc.max[i])-trY(pc.mean[i]), trY(pc.mean[i])-trY(pc.min[i])
		}
		for i, x := range pc.x {
			for _, end := range []struct {
				reach []vg.Length
				y     float64
			}{{up, pc.max[i]}, {down, pc.min[i]}} {
				if outlier(end.reach, i) {
					c.StrokeLines(w.style, c.ClipLinesXY([]vg.Point{{X: trX(x), Y: trY(pc.mean[i])}, {X: trX(x), Y: trY(end.y)}})...)
				}
			}
		}
	}
}

// outlier reports whether reach[i] stands out of its neighbourhood (see
// whiskerMin).
func outlier(reach []vg.Length, i int) bool {
	if reach[i] < whiskerMin {
		return false
	}
	near := slices.Clone(reach[max(0, i-whiskerSpan):min(len(reach), i+whiskerSpan+1)])
	slices.Sort(near)
	return reach[i] > 2*near[len(near)/2]+whiskerMin
}

// lineThumb is a line's legend sample: its envelope and its line.
type lineThumb struct {
	style draw.LineStyle
	fill  color.Color
}

// Thumbnail implements plot.Thumbnailer.
func (th lineThumb) Thumbnail(c *draw.Canvas) {
	y, h := c.Center().Y, (c.Max.Y-c.Min.Y)/3
	c.FillPolygon(th.fill, []vg.Point{{X: c.Min.X, Y: y - h}, {X: c.Max.X, Y: y - h}, {X: c.Max.X, Y: y + h}, {X: c.Min.X, Y: y + h}})
	c.StrokeLine2(th.style, c.Min.X, y, c.Max.X, y)
}

// span is the canvas x range of [from, to), at least minW wide
// (widened about its middle) and clipped to c; ok is false when nothing
// of it is inside c.
func span(c draw.Canvas, trX func(float64) vg.Length, from, to int64, minW vg.Length) (x0, x1 vg.Length, ok bool) {
	x0, x1 = trX(float64(from)), trX(float64(to))
	if x1-x0 < minW {
		mid := (x0 + x1) / 2
		x0, x1 = mid-minW/2, mid+minW/2
	}
	x0, x1 = max(x0, c.Min.X), min(x1, c.Max.X)
	return x0, x1, x1 > x0
}

func rect(x0, y0, x1, y1 vg.Length) []vg.Point {
	return []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
}

// markBands shades each mark over the plot's height, with a thin edge
// at its begin and end, so that adjacent instances stay apart.
type markBands []markBand

// Plot implements plot.Plotter.
func (ms markBands) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, m := range ms {
		x0, x1, ok := span(c, trX, m.from, m.to, 1)
		if !ok {
			continue
		}
		col := markColors[m.color]
		c.FillPolygon(alpha(col, markAlpha), rect(x0, c.Min.Y, x1, c.Max.Y))
		edge := draw.LineStyle{Color: alpha(col, 0.7), Width: 0.6}
		c.StrokeLine2(edge, x0, c.Min.Y, x0, c.Max.Y)
		c.StrokeLine2(edge, x1, c.Min.Y, x1, c.Max.Y)
	}
}

// markLabels writes each mark's label at the top of its band, in the
// first of the label rows where it overlaps no other label; a label
// with no room is left out (the legend still names the mark).
type markLabels []markBand

// Plot implements plot.Plotter.
func (ms markLabels) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	sty := textStyle(labelSize)
	rowEnd := make([]vg.Length, labelRows)
	for i := range rowEnd {
		rowEnd[i] = c.Min.X - 1
	}
	for _, m := range ms {
		x0, _, ok := span(c, trX, m.from, m.to, 1)
		if !ok {
			continue
		}
		x := x0 + 2
		w := sty.Width(m.label)
		if x+w > c.Max.X {
			x = c.Max.X - w
		}
		for r := range rowEnd {
			if x > rowEnd[r] {
				y := c.Max.Y - vg.Length(r+1)*(labelSize+3)
				box := sty.Rectangle(m.label)
				c.FillPolygon(alpha(color.RGBA{0xff, 0xff, 0xff, 0xff}, 0.8), rect(x-1, y+box.Min.Y-1, x+w+1, y+box.Max.Y+1))
				sty.Color = darker(markColors[m.color], 0.6)
				c.FillText(sty, vg.Point{X: x, Y: y}, m.label)
				rowEnd[r] = x + w + 4
				break
			}
		}
	}
}

// markThumb is a mark's legend sample.
type markThumb struct{ color color.RGBA }

// Thumbnail implements plot.Thumbnailer.
func (th markThumb) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(alpha(th.color, markAlpha*2), rect(c.Min.X, c.Min.Y, c.Max.X, c.Max.Y))
	c.StrokeLines(draw.LineStyle{Color: alpha(th.color, 0.7), Width: 0.6}, rect(c.Min.X, c.Min.Y, c.Max.X, c.Max.Y))
}

// gapBands shades, over the plot's height, each stretch where a line
// has no value, at least minGapWidth wide; a wide band is hatched, so it
// reads as "no data" in print too.
type gapBands []query.Interval

// Plot implements plot.Plotter.
func (gs gapBands) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, g := range gs {
		x0, x1, ok := span(c, trX, g.From, g.To, minGapWidth)
		if !ok {
			continue
		}
		fillGap(c, x0, x1)
	}
}

// fillGap draws a gap band over [x0, x1] and c's height.
func fillGap(c draw.Canvas, x0, x1 vg.Length) {
	c.FillPolygon(alpha(gapColor, gapAlpha), rect(x0, c.Min.Y, x1, c.Max.Y))
	if x1-x0 < 3*hatchStep {
		return
	}
	band := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{Min: vg.Point{X: x0, Y: c.Min.Y}, Max: vg.Point{X: x1, Y: c.Max.Y}}}
	h := c.Max.Y - c.Min.Y
	var hatch [][]vg.Point
	for x := x0 - h; x < x1; x += hatchStep {
		hatch = append(hatch, []vg.Point{{X: x, Y: c.Min.Y}, {X: x + h, Y: c.Max.Y}})
	}
	band.StrokeLines(draw.LineStyle{Color: alpha(gapColor, 0.6), Width: 0.4}, band.ClipLinesXY(hatch...)...)
}

// gapThumb is the gaps' legend sample.
type gapThumb struct{}

// Thumbnail implements plot.Thumbnailer.
func (gapThumb) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(alpha(gapColor, gapAlpha), rect(c.Min.X, c.Min.Y, c.Max.X, c.Max.Y))
	c.StrokeLine2(draw.LineStyle{Color: alpha(gapColor, 0.6), Width: 0.4}, c.Min.X, c.Min.Y, c.Max.X, c.Max.Y)
}

// legendEntry is one entry of the legend: its text and its sample, if
// any.
type legendEntry struct {
	text  string
	thumb plot.Thumbnailer
}

// legendEntries are the lines with their energy and coverage over the
// window, the total, the marks by name and the gaps.
func (t *timeline) legendEntries() []legendEntry {
	var out []legendEntry
	for i, l := range t.lines {
		out = append(out, legendEntry{energyText(l.row), lineThumb{lineStyle(i), t.envelopeFill(i)}})
	}
	if t.total != nil {
		out = append(out, legendEntry{text: energyText(*t.total)})
	}
	count, order := map[string]int{}, []markBand{}
	for _, m := range t.marks {
		if count[m.name] == 0 {
			order = append(order, m)
		}
		count[m.name]++
	}
	for _, m := range order {
		text := "mark " + m.name
		if n := count[m.name]; n > 1 {
			text += fmt.Sprintf(" (×%d)", n)
		}
		out = append(out, legendEntry{text, markThumb{markColors[m.color]}})
	}
	if len(t.gaps) > 0 {
		var ms int64
		for _, g := range t.gaps {
			ms += g.To - g.From
		}
		out = append(out, legendEntry{fmt.Sprintf("gap, where a line has no value (%d, %s in all)", len(t.gaps), time.Duration(ms)*time.Millisecond), gapThumb{}})
	}
	return out
}

// energyText is a row's legend text: its group, joules and coverage.
func energyText(r query.Row) string {
	return fmt.Sprintf("%s — %s, coverage %s", r.Group, Joules(r.Joules()), percent(r.Coverage()))
}

// Joules writes an energy as a chart's legend and labels do: four
// significant digits (more for a whole number of joules below 10 kJ)
// and a prefix: 1750 J, 90.00 J, 12.35 kJ, 3.456 MJ.
func Joules(j float64) string {
	v, unit := j, "J"
	for _, u := range []struct {
		from, size float64
		unit       string
	}{{1e10, 1e9, "GJ"}, {1e7, 1e6, "MJ"}, {1e4, 1e3, "kJ"}} {
		if math.Abs(j) >= u.from {
			v, unit = j/u.size, u.unit
			break
		}
	}
	decimals := 0
	a, _ := strconv.ParseFloat(strconv.FormatFloat(math.Abs(v), 'g', 4, 64), 64) // as rounded to 4 digits
	if a > 0 && a < 1000 {
		decimals = min(3, 3-int(math.Floor(math.Log10(a))))
	}
	return strconv.FormatFloat(v, 'f', decimals, 64) + " " + unit
}

// percent writes a fraction as a percentage that never rounds a
// shortfall away: 0.99996 is "99.99 %", not "100.00 %".
func percent(f float64) string {
	if f >= 1 {
		return "100 %"
	}
	return fmt.Sprintf("%.2f %%", math.Floor(f*1e4)/100)
}

// legendGrid lays out legend entries in columns across a canvas' width,
// at its bottom.
type legendGrid struct {
	columns [][]legendEntry
	colW    vg.Length
	height  vg.Length
	style   text.Style
}

const thumbWidth = vg.Length(16)

func newLegendGrid(c draw.Canvas, entries []legendEntry) legendGrid {
	g := legendGrid{style: textStyle(legendSize)}
	for _, e := range entries {
		g.colW = max(g.colW, thumbWidth+g.style.Width(" "+e.text)+18)
	}
	ncol := max(1, min(len(entries), int((c.Max.X-c.Min.X)/max(g.colW, 1))))
	rows := (len(entries) + ncol - 1) / ncol
	for i := 0; i < len(entries); i += rows {
		g.columns = append(g.columns, entries[i:min(i+rows, len(entries))])
	}
	g.height = vg.Length(rows) * (g.style.Height("Mg") + 3)
	return g
}

// draw draws the legend at the bottom of c.
func (g legendGrid) draw(c draw.Canvas) {
	for i, col := range g.columns {
		l := plot.NewLegend()
		l.TextStyle, l.Left, l.Top, l.ThumbnailWidth, l.Padding = g.style, true, true, thumbWidth, 3
		for _, e := range col {
			if e.thumb == nil {
				l.Add(e.text)
			} else {
				l.Add(e.text, e.thumb)
			}
		}
		x := c.Min.X + vg.Length(i)*g.colW
		l.Draw(draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: x, Y: c.Min.Y}, Max: vg.Point{X: x + g.colW, Y: c.Min.Y + g.height}}})
	}
}
