package chart

import (
	"fmt"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/wattrec/wattrec/query"
)

// MaxBars is the most window instances Bars draws; the rest are left
// out, and its title says so.
const MaxBars = 200

// maxBarLabels is the most bars that are labelled with their energy.
const maxBarLabels = 30

// Bars draws the energy of each instance of a window report
// (query.Energy with Window set) as a bar, stacked by the report's groups
// (a report grouped by total has one), in format at width × height
// pixels: the joules of the report's rows, never recomputed.
func Bars(w io.Writer, rep *query.Report, format string, width, height int) error {
	if rep.Window == "" {
		return query.Invalid("a bar chart shows the instances of a window: the report has none")
	}
	req := Request{Format: format, Width: width, Height: height}
	if err := req.check(); err != nil {
		return err
	}

	// Instances in order, and per group its joules in each.
	var instances []string
	groups, index := []string{}, map[string]int{}
	joulesOf := map[string]map[string]float64{} // group → instance → J
	for _, r := range rep.Rows {
		if r.Instance == "sum" || (r.Group == "total" && rep.By != query.ByTotal) {
			continue
		}
		if _, ok := index[r.Instance]; !ok {
			index[r.Instance] = len(instances)
			instances = append(instances, r.Instance)
		}
		if joulesOf[r.Group] == nil {
			groups = append(groups, r.Group)
			joulesOf[r.Group] = map[string]float64{}
		}
		joulesOf[r.Group][r.Instance] = r.Joules()
	}
	shown := instances[:min(len(instances), MaxBars)]
	sums := make([]float64, len(shown))
	top := 0.0
	for i, inst := range shown {
		for _, g := range groups {
			sums[i] += joulesOf[g][inst]
		}
		top = max(top, sums[i])
	}
	scale, unit := energyUnit(top)

	p := plot.New()
	restyle(p)
	p.Title.Text = fmt.Sprintf("energy per instance of %q", rep.Window)
	if len(shown) < len(instances) {
		p.Title.Text += fmt.Sprintf(" (the first %d of %d)", len(shown), len(instances))
	}
	p.Y.Label.Text = "energy (" + unit + ")"
	p.Y.Tick.Marker = valueTicks{}
	p.Y.Min, p.Y.Max = 0, max(top/scale*1.12, 1e-9)
	barW := min(0.7*float64(pxLen(width)-60)/float64(len(shown)), 48)
	var below *plotter.BarChart
	for i, g := range groups {
		vals := make(plotter.Values, len(shown))
		for j, inst := range shown {
			vals[j] = joulesOf[g][inst] / scale
		}
		b, err := plotter.NewBarChart(vals, vg.Length(max(barW, 1)))
		if err != nil {
			return fmt.Errorf("bars of %s: %w", g, err)
		}
		b.Color, b.LineStyle = lineColor(i), draw.LineStyle{Color: darker(lineColor(i), 0.7), Width: 0.4}
		if below != nil {
			b.StackOn(below)
		}
		below = b
		p.Add(b)
		if len(groups) > 1 {
			p.Legend.Add(g, b)
		}
	}
	if len(shown) <= maxBarLabels { // each bar's total on top of it
		labels := plotter.XYLabels{XYs: make(plotter.XYs, len(shown)), Labels: make([]string, len(shown))}
		for i, sum := range sums {
			labels.XYs[i] = plotter.XY{X: float64(i), Y: sum / scale}
			labels.Labels[i] = Joules(sum)
		}
		l, err := plotter.NewLabels(labels)
		if err != nil {
			return err
		}
		for i := range l.TextStyle {
			l.TextStyle[i] = textStyle(labelSize)
			l.TextStyle[i].XAlign, l.TextStyle[i].YAlign = draw.XCenter, draw.YBottom
		}
		l.Offset.Y = 2
		p.Add(l)
	}
	p.Legend.Top, p.Legend.Left = true, false
	p.Legend.TextStyle, p.Legend.Padding = textStyle(legendSize), 2
	p.X.Tick.Marker = nominalTicks{names: shown, max: int(float64(pxLen(width)) / 60)}
	p.X.Min, p.X.Max = -0.5, float64(len(shown))-0.5

	c := newCanvas(req.Format, req.Width, req.Height)
	dc := draw.New(c)
	p.Draw(draw.Crop(dc, margin, -margin, margin, -margin))
	return writeCanvas(w, c, req.Format)
}

// energyUnit is the unit energies up to top are drawn in, and its size
// in joules.
func energyUnit(top float64) (float64, string) {
	switch {
	case top >= 1e7:
		return 1e6, "MJ"
	case top >= 1e4:
		return 1e3, "kJ"
	}
	return 1, "J"
}

// nominalTicks labels the bars 0, 1, ... with their names, every k-th one
// when there are more than max.
type nominalTicks struct {
	names []string
	max   int
}

// Ticks implements plot.Ticker.
func (nt nominalTicks) Ticks(_, _ float64) []plot.Tick {
	every := int(math.Ceil(float64(len(nt.names)) / float64(max(nt.max, 1))))
	var ticks []plot.Tick
	for i, name := range nt.names {
		if i%every == 0 {
			ticks = append(ticks, plot.Tick{Value: float64(i), Label: name})
		}
	}
	return ticks
}
