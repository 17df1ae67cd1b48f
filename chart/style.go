package chart

import (
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
)

// lineColors are the colours of the plotted lines, in order (Tableau
// 10 without its grey, which the gaps use); after them the colours
// repeat dashed.
var lineColors = []color.RGBA{
	{0x4e, 0x79, 0xa7, 0xff}, {0xf2, 0x8e, 0x2b, 0xff}, {0xe1, 0x57, 0x59, 0xff},
	{0x59, 0xa1, 0x4f, 0xff}, {0xb0, 0x7a, 0xa1, 0xff}, {0x76, 0xb7, 0xb2, 0xff},
	{0xed, 0xc9, 0x48, 0xff}, {0x9c, 0x75, 0x5f, 0xff}, {0xff, 0x9d, 0xa7, 0xff},
}

// lineDashes are the dash patterns of the rounds of colours.
var lineDashes = [][]vg.Length{nil, {vg.Points(4), vg.Points(2)}}

// markColors shade the marks, one colour per mark name.
var markColors = []color.RGBA{
	{0xff, 0xb3, 0x00, 0xff}, {0x00, 0x96, 0x88, 0xff}, {0x8e, 0x24, 0xaa, 0xff},
	{0x1e, 0x88, 0xe5, 0xff}, {0x7c, 0xb3, 0x42, 0xff}, {0xd8, 0x1b, 0x60, 0xff},
}

// Translucent fills: a mark's band, a line's envelope, a gap's band.
const (
	markAlpha     = 0.13
	envelopeAlpha = 0.28
	gapAlpha      = 0.30
)

// gapColor is the band drawn where a line has no value.
var gapColor = color.RGBA{0x80, 0x80, 0x80, 0xff}

// maxLines is the most lines a plot draws: its colours, twice.
var maxLines = len(lineColors) * len(lineDashes)

// alpha is c with opacity a, premultiplied as image/color wants.
func alpha(c color.RGBA, a float64) color.RGBA {
	m := func(v uint8) uint8 { return uint8(float64(v)*a + 0.5) }
	return color.RGBA{m(c.R), m(c.G), m(c.B), uint8(a*255 + 0.5)}
}

// darker is c at factor f of its brightness, opaque.
func darker(c color.RGBA, f float64) color.RGBA {
	m := func(v uint8) uint8 { return uint8(float64(v) * f) }
	return color.RGBA{m(c.R), m(c.G), m(c.B), 0xff}
}

// sans is the typeface of every text of a chart.
var sans = font.Font{Typeface: "Liberation", Variant: "Sans"}

// textStyle is sans at size points, in the default colour.
func textStyle(size vg.Length) text.Style {
	return text.Style{Color: color.Black, Font: font.From(sans, size), Handler: plot.DefaultTextHandler}
}

// restyle sets the fonts of p's title, axes and legend to sans.
func restyle(p *plot.Plot) {
	p.Title.TextStyle.Font = font.From(sans, 12)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans, 10)
		a.Tick.Label.Font = font.From(sans, 9)
	}
	p.Legend.TextStyle.Font = font.From(sans, 9)
}
