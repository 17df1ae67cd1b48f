package chart

import (
	"fmt"
	"image/color"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"
)

// svgPath is one <path> of a chart's SVG: its points (in the canvas'
// coordinates, points from the bottom left), and its fill or stroke.
type svgPath struct {
	pts         []vg.Point
	fill        color.RGBA // zero when not filled
	fillOpacity float64
	stroke      color.RGBA // zero when not stroked
	strokeWidth float64
}

var (
	pathRE  = regexp.MustCompile(`<path d="([^"]*)" style="([^"]*)" />`)
	pointRE = regexp.MustCompile(`[ML](-?[\d.e+-]+),(-?[\d.e+-]+)`)
	textRE  = regexp.MustCompile(`(?s)<text [^>]*>([^<]*)</text>`)
)

// parseSVG reads the paths and texts of a chart's SVG.
func parseSVG(t *testing.T, svg string) ([]svgPath, []string) {
	t.Helper()
	var paths []svgPath
	for _, m := range pathRE.FindAllStringSubmatch(svg, -1) {
		var p svgPath
		for _, pm := range pointRE.FindAllStringSubmatch(m[1], -1) {
			x, err1 := strconv.ParseFloat(pm[1], 64)
			y, err2 := strconv.ParseFloat(pm[2], 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("path point %q", pm[0])
			}
			p.pts = append(p.pts, vg.Point{X: vg.Length(x), Y: vg.Length(y)})
		}
		p.fillOpacity = 1
		for _, kv := range strings.Split(m[2], ";") {
			k, v, _ := strings.Cut(kv, ":")
			switch k {
			case "fill":
				p.fill = hexColor(v)
			case "fill-opacity":
				p.fillOpacity, _ = strconv.ParseFloat(v, 64)
			case "stroke":
				p.stroke, p.strokeWidth = hexColor(v), 1 // SVG's default width, which vgsvg leaves out
			case "stroke-width":
				p.strokeWidth, _ = strconv.ParseFloat(v, 64)
			}
		}
		paths = append(paths, p)
	}
	var texts []string
	for _, m := range textRE.FindAllStringSubmatch(svg, -1) {
		texts = append(texts, strings.ReplaceAll(m[1], "&#34;", `"`))
	}
	return paths, texts
}

func hexColor(s string) color.RGBA {
	if len(s) != 7 || s[0] != '#' {
		return color.RGBA{}
	}
	v, err := strconv.ParseUint(s[1:], 16, 32)
	if err != nil {
		return color.RGBA{}
	}
	return color.RGBA{uint8(v >> 16), uint8(v >> 8), uint8(v), 0xff}
}

// near reports whether two opaque colours are the same up to rounding
// (of a translucent colour's premultiplied form, too).
func near(a, b color.RGBA) bool {
	d := func(x, y uint8) bool { return x-y < 8 || y-x < 8 }
	return a.A != 0 && d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B)
}

// inside reports whether every point of p lies in r.
func (p svgPath) inside(r vg.Rectangle) bool {
	for _, pt := range p.pts {
		if pt.X < r.Min.X-0.01 || pt.X > r.Max.X+0.01 || pt.Y < r.Min.Y-0.01 || pt.Y > r.Max.Y+0.01 {
			return false
		}
	}
	return len(p.pts) > 0
}

// xRange is the horizontal extent of p.
func (p svgPath) xRange() (lo, hi vg.Length) {
	lo, hi = p.pts[0].X, p.pts[0].X
	for _, pt := range p.pts {
		lo, hi = min(lo, pt.X), max(hi, pt.X)
	}
	return lo, hi
}

// whisker reports whether p is a vertical stroke: an outlier's whisker.
func (p svgPath) whisker() bool { return len(p.pts) == 2 && p.pts[0].X == p.pts[1].X }

// pieces joins the stroked paths of colour c inside r that continue one
// another (a long line is stroked in parts that share their end
// points) into the pieces of one line; whiskers are not pieces.
func pieces(paths []svgPath, c color.RGBA, r vg.Rectangle) [][]vg.Point {
	var out [][]vg.Point
	for _, p := range paths {
		if !near(p.stroke, c) || p.strokeWidth != float64(lineWidth) || !p.inside(r) || p.whisker() {
			continue
		}
		if n := len(out); n > 0 && out[n-1][len(out[n-1])-1] == p.pts[0] {
			out[n-1] = append(out[n-1], p.pts[1:]...)
			continue
		}
		out = append(out, p.pts)
	}
	return out
}

// summary is the structure of a timeline's SVG, in words: the lines and
// how many pieces each is drawn in, the mark bands by colour, the gap
// bands with their times, and every text.
func summary(t *testing.T, tl *timeline, svg string, lay layout) string {
	t.Helper()
	paths, texts := parseSVG(t, svg)
	data := lay.data.Rectangle
	msAt := func(x vg.Length) string { // the time at canvas x, to 10 ms
		frac := float64(x-data.Min.X) / float64(data.Max.X-data.Min.X)
		return strconv.FormatFloat((float64(tl.window.From)+frac*float64(tl.window.Len())-t0)/1000, 'f', 2, 64) + "s"
	}
	wAt := func(y vg.Length) float64 { // the power at canvas y
		y0, y1 := lay.y(0), lay.y(100)
		return float64(y-y0) / float64(y1-y0) * 100
	}
	var b strings.Builder
	for i := range lineColors {
		if ps := pieces(paths, lineColor(i), data); len(ps) > 0 {
			fmt.Fprintf(&b, "line %d: %d pieces\n", i, len(ps))
		}
		for _, p := range paths {
			if near(p.stroke, lineColor(i)) && p.inside(data) && p.whisker() {
				lo, hi := min(p.pts[0].Y, p.pts[1].Y), max(p.pts[0].Y, p.pts[1].Y)
				fmt.Fprintf(&b, "line %d: whisker at %s from %.0f W to %.0f W\n", i, msAt(p.pts[0].X), wAt(lo), wAt(hi))
			}
		}
	}
	for _, p := range paths {
		if !p.inside(data) || p.fill.A == 0 {
			continue
		}
		lo, hi := p.xRange()
		for i, mc := range markColors {
			if near(p.fill, mc) && p.fillOpacity < 0.5 {
				fmt.Fprintf(&b, "mark band %d: %s → %s\n", i, msAt(lo), msAt(hi))
			}
		}
		if near(p.fill, gapColor) && p.fillOpacity < 0.5 {
			fmt.Fprintf(&b, "gap band: %s → %s\n", msAt(lo), msAt(hi))
		}
	}
	for _, s := range texts {
		fmt.Fprintf(&b, "text: %s\n", s)
	}
	return b.String()
}
