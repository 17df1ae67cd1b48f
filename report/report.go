// Package report writes the report of a recording as one self-contained
// HTML file (inline SVG and CSS, nothing fetched; it prints on paper
// too): the energy per device, endpoint, kind and window instance, with
// coverage and the hardware counter check (query.Energy's rows, the
// numbers `wattrec query` prints), the power timeline with its marks and
// gaps and a bar chart per window (package chart), and the recording
// itself: runs, endpoints, series, stream sessions and gaps, clock
// offsets and counters.
package report

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/wattrec/wattrec/chart"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// Request is a report to write.
type Request struct {
	Filter    query.Filter // the series and the window of the energy and the timeline; zero = all
	UTC       bool         // times in UTC, else in the local zone
	Version   string       // the wattrec version that writes it, for the footer
	Generated time.Time    // when it was asked for, for the footer; zero = left out
}

// Sizes of the report's pictures, in pixels.
const (
	timelineWidth, timelineHeight = 1100, 520
	barsWidth, barsHeight         = 1100, 320
)

// maxListRows is the most rows a list of the recording (sessions, gaps)
// shows; a last row says how many more there are.
const maxListRows = 200

//go:embed page.html
var pageText string

var page = template.Must(template.New("page").Parse(pageText))

// Write writes the report of req on db to w.
func Write(ctx context.Context, w io.Writer, db *store.DB, req Request) error {
	loc := time.Local
	if req.UTC {
		loc = time.UTC
	}
	r := &reader{ctx: ctx, db: db, loc: loc, filter: req.Filter}
	pg, err := r.page(req)
	if err != nil {
		return err
	}
	var buf bytes.Buffer // nothing is written unless the whole page is made
	if err := page.Execute(&buf, pg); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	_, err = buf.WriteTo(w)
	return err
}

// reader reads the parts of one report.
type reader struct {
	ctx    context.Context
	db     *store.DB
	loc    *time.Location
	filter query.Filter
}

// pageData is what the page template shows.
type pageData struct {
	File, Version, Generated, Zone string
	From, To, Duration             string
	Facts                          []fact
	Timeline                       template.HTML // inline SVG
	TimelineBy                     string
	Energy                         []table
	Rules                          string
	RulesText                      string
	Windows                        []windowPart
	Recording                      []table
	Warnings                       []string
}

// fact is a headline figure: its value and, in small print, a detail
// (the exact figure of a rounded one, or what it rests on).
type fact struct{ Label, Value, Detail string }

type windowPart struct {
	Name  string
	Bars  template.HTML
	Table table
	Note  string // why the window is not shown, if it is not
}

// table is one HTML table: a header row and rows of cells, each cell
// right-aligned when its column is numeric; a row may be a total.
type table struct {
	ID, Caption string
	Head        []string
	Num         []bool
	Rows        []row
	Note        string
}

// IsNum reports whether column i holds numbers.
func (t table) IsNum(i int) bool { return i < len(t.Num) && t.Num[i] }

type row struct {
	Cells []string
	Total bool
}

func (r *reader) page(req Request) (*pageData, error) {
	pg := &pageData{File: filepath.Base(r.db.Path()), Version: req.Version}
	if !req.Generated.IsZero() {
		pg.Generated = req.Generated.In(r.loc).Format("2006-01-02 15:04:05 MST")
	}

	// The timeline first: it refuses an empty window or unknown series
	// with the plot's own errors.
	svg, by, err := r.timeline()
	if err != nil {
		return nil, err
	}
	pg.Timeline, pg.TimelineBy = svg, by

	var byDevice *query.Report
	for _, by := range []string{query.ByDevice, query.ByEndpoint, query.ByKind} {
		rep, err := query.Energy(r.ctx, r.db, query.Options{Filter: r.filter, By: by})
		if err != nil {
			return nil, err
		}
		if by == query.ByDevice {
			byDevice = rep
		}
		pg.Energy = append(pg.Energy, r.energyTable("energy-"+by, "per "+by, rep))
	}
	pg.From, pg.To = r.time(byDevice.FromMs), r.time(byDevice.ToMs)
	pg.Duration = (time.Duration(byDevice.ToMs-byDevice.FromMs) * time.Millisecond).String()
	pg.Zone = chart.ZoneLabel(r.loc, time.UnixMilli(byDevice.FromMs))
	pg.Rules, pg.RulesText = byDevice.RulesLine(), query.RulesText(90)
	pg.Warnings = byDevice.Warnings
	pg.Facts = facts(byDevice)

	if pg.Windows, err = r.windows(); err != nil {
		return nil, err
	}
	if pg.Recording, err = r.recording(); err != nil {
		return nil, err
	}
	return pg, nil
}

// timeline draws the power timeline by device, or by endpoint or kind
// when there are too many devices for one plot.
func (r *reader) timeline() (template.HTML, string, error) {
	for _, by := range []string{query.ByDevice, query.ByEndpoint, query.ByKind} {
		var buf bytes.Buffer
		err := chart.Write(r.ctx, &buf, r.db, chart.Request{Filter: r.filter, By: by, UTC: r.loc == time.UTC,
			Format: chart.FormatSVG, Width: timelineWidth, Height: timelineHeight})
		if errors.Is(err, chart.ErrTooManyLines) {
			continue
		}
		if err != nil {
			return "", "", err
		}
		return inline(buf.Bytes()), by, nil
	}
	return "", "", fmt.Errorf("timeline by kind: %w", chart.ErrTooManyLines)
}

// svgSize is the size attributes of an SVG's root element.
var svgSize = regexp.MustCompile(`^<svg width="[^"]*" height="[^"]*"`)

// inline makes a chart's SVG document an element of the page: without
// its XML prologue, as wide as the page allows.
func inline(svg []byte) template.HTML {
	if i := bytes.Index(svg, []byte("<svg")); i >= 0 {
		svg = svg[i:]
	}
	svg = svgSize.ReplaceAll(svg, []byte(`<svg role="img" class="chart"`))
	return template.HTML(svg) // gonum escapes the text it draws
}

// energyTable is the rows of rep, as `wattrec query` prints them.
func (r *reader) energyTable(id, caption string, rep *query.Report) table {
	counters, anchored := false, false
	for _, q := range rep.Rows {
		counters = counters || q.CounterSeries > 0
		anchored = anchored || q.AnchoredSeries > 0
	}
	t := table{ID: id, Caption: caption, Head: []string{"group", "joules", "± J"}, Num: []bool{false, true, true}}
	if anchored {
		t.Head = append(t.Head, "anchored J", "± J", "bridged")
		t.Num = append(t.Num, true, true, true)
	}
	t.Head = append(t.Head, "avg W", "peak W", "samples", "coverage", "gaps", "longest gap")
	t.Num = append(t.Num, true, true, true, true, true, true)
	if rep.Window != "" {
		t.Head = append([]string{"window", "from", "duration"}, t.Head...)
		t.Num = append([]bool{false, false, true}, t.Num...)
	}
	if counters {
		t.Head = append(t.Head, "integral/counter")
		t.Num = append(t.Num, true)
	}
	for _, q := range rep.Rows {
		cells := []string{q.Group, fmt.Sprintf("%.3f", q.Joules()), fmt.Sprintf("%.3f", float64(q.BoundUJ)/1e6)}
		if anchored {
			if q.AnchoredSeries > 0 {
				cells = append(cells, fmt.Sprintf("%.3f", float64(q.AnchoredUJ)/1e6), fmt.Sprintf("%.3f", float64(q.AnchoredBoundUJ)/1e6), ms(q.BridgedMs))
			} else {
				cells = append(cells, "–", "–", "–")
			}
		}
		cells = append(cells, fixed(q.AvgW(), 3), fmt.Sprintf("%.3f", float64(q.PeakMW)/1000),
			strconv.Itoa(q.Samples), fmt.Sprintf("%.4f", q.Coverage()), strconv.Itoa(q.Gaps), ms(q.LongestGapMs))
		if rep.Window != "" {
			cells = append([]string{q.Instance, r.time(q.FromMs), ms(q.ToMs - q.FromMs)}, cells...)
		}
		if counters {
			cells = append(cells, fixed(q.CounterRatio(), 4))
		}
		t.Rows = append(t.Rows, row{Cells: cells, Total: q.Group == "total" || q.Instance == "sum"})
	}
	return t
}

// facts are the headline figures of a report by device.
func facts(rep *query.Report) []fact {
	var total query.Row
	devices := 0
	for _, r := range rep.Rows {
		if r.Group == "total" {
			total = r
		} else {
			devices++
		}
	}
	out := []fact{
		{"energy", chart.Joules(total.Joules()), fmt.Sprintf("%.3f ± %.3f J", total.Joules(), float64(total.BoundUJ)/1e6)},
		{"average power", fixed(total.AvgW(), 1) + " W", ""},
		{"coverage", fmt.Sprintf("%.2f %%", total.Coverage()*100), ""},
		{"series", strconv.Itoa(devices), ""},
		{"gaps", fmt.Sprintf("%d (longest %s)", total.Gaps, ms(total.LongestGapMs)), ""},
	}
	if total.AnchoredSeries > 0 {
		out = append(out, fact{"anchored to counters", chart.Joules(float64(total.AnchoredUJ) / 1e6),
			fmt.Sprintf("%.3f ± %.3f J, %d series", float64(total.AnchoredUJ)/1e6, float64(total.AnchoredBoundUJ)/1e6, total.AnchoredSeries)})
	}
	if total.CounterSeries > 0 {
		out = append(out, fact{"integral / counter", fixed(total.CounterRatio(), 4), fmt.Sprintf("%d series", total.CounterSeries)})
	}
	return out
}

// windows is a part per mark name in the window: its instances' energy
// as a table and as bars stacked by kind.
func (r *reader) windows() ([]windowPart, error) {
	marks, err := r.db.Marks(r.ctx, "")
	if err != nil {
		return nil, err
	}
	var names []string
	seen := map[string]bool{}
	for _, m := range marks {
		if !seen[m.Name] {
			seen[m.Name] = true
			names = append(names, m.Name)
		}
	}
	var out []windowPart
	for _, name := range names {
		rep, err := query.Energy(r.ctx, r.db, query.Options{Filter: r.filter, Window: name, By: query.ByTotal})
		switch {
		case errors.Is(err, query.ErrTooLarge):
			out = append(out, windowPart{Name: name, Note: "not shown: " + err.Error()})
			continue
		case errors.Is(err, query.ErrInvalid):
			continue // no instance overlaps the report's window
		case err != nil:
			return nil, err
		}
		byKind, err := query.Energy(r.ctx, r.db, query.Options{Filter: r.filter, Window: name, By: query.ByKind})
		if err != nil {
			return nil, err
		}
		var bars bytes.Buffer
		if err := chart.Bars(&bars, byKind, chart.FormatSVG, barsWidth, barsHeight); err != nil {
			return nil, fmt.Errorf("window %q: %w", name, err)
		}
		out = append(out, windowPart{Name: name, Bars: inline(bars.Bytes()), Table: r.energyTable("window-"+name, fmt.Sprintf("instances of %q", name), rep)})
	}
	return out, nil
}

// time formats Unix ms in the report's zone.
func (r *reader) time(msec int64) string {
	return time.UnixMilli(msec).In(r.loc).Format("2006-01-02 15:04:05.000")
}

func ms(d int64) string { return (time.Duration(d) * time.Millisecond).String() }

func fixed(f float64, prec int) string {
	if f != f { // NaN: nothing observed
		return "–"
	}
	return strconv.FormatFloat(f, 'f', prec, 64)
}
