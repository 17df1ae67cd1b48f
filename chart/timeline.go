package chart

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// Formats of a chart.
const (
	FormatSVG = "svg"
	FormatPNG = "png"
)

// Size limits of a chart, in pixels (an SVG is drawn at the same 96
// pixels per inch as a PNG).
const (
	DefaultWidth  = 1200
	DefaultHeight = 600
	MinWidth      = 320
	MinHeight     = 240
	MaxSide       = 10_000
)

// Errors of a chart.
var (
	// ErrFormat means a chart was asked in a format other than SVG or PNG.
	ErrFormat = errors.New("unknown chart format")
	// ErrNoSeries means the filters match no series of the file.
	ErrNoSeries = errors.New("no series match the filters")
	// ErrNoData means no selected series has a value anywhere in the
	// window: there is nothing to draw.
	ErrNoData = errors.New("nothing recorded in the window")
	// ErrTooManyLines means the grouping gives more lines than a plot can
	// tell apart.
	ErrTooManyLines = errors.New("too many lines for one plot")
)

// FormatFor is the format of a chart written to path, from its
// extension: .svg or .png.
func FormatFor(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".svg":
		return FormatSVG, nil
	case ".png":
		return FormatPNG, nil
	default:
		return "", fmt.Errorf("%s: %w %q: want .svg or .png", path, ErrFormat, ext)
	}
}

// Request is a power timeline to draw.
type Request struct {
	Filter query.Filter // the series and the time range; zero = the whole recording
	// By groups the series into lines as query's rows: query.ByDevice
	// (the default: a line per series), ByEndpoint, ByKind or ByTotal.
	By string
	// Window names a mark: the plot spans its instances, from the first
	// one's begin to the last one's end (within the filter's range).
	Window        string
	Format        string // FormatSVG (default) or FormatPNG
	Width, Height int    // pixels; zero = DefaultWidth, DefaultHeight
	UTC           bool   // times in UTC, else in the local zone
}

// Write draws the timeline of req on db and writes it to w in
// req.Format.
func Write(ctx context.Context, w io.Writer, db *store.DB, req Request) error {
	t, err := newTimeline(ctx, db, req)
	if err != nil {
		return err
	}
	return t.write(w)
}

// timeline is a power timeline read from a file, ready to draw.
type timeline struct {
	req    Request
	file   string
	window query.Interval
	loc    *time.Location
	grid   grid
	lines  []line
	total  *query.Row       // the total row of the grouping, if it has one
	marks  []markBand       // in begin order
	gaps   []query.Interval // where any line has no value
}

// line is one drawn line: a group of query's report.
type line struct {
	row   query.Row // its energy over the window
	trace trace
}

// markBand is one mark instance, clipped to the window.
type markBand struct {
	name, label string // "epoch", "epoch #2"
	from, to    int64
	color       int // index into markColors, per name
}

// check fills in req's defaults and checks its values.
func (req *Request) check() error {
	req.By, req.Format = cmp.Or(req.By, query.ByDevice), cmp.Or(req.Format, FormatSVG)
	req.Width, req.Height = cmp.Or(req.Width, DefaultWidth), cmp.Or(req.Height, DefaultHeight)
	switch {
	case !slices.Contains(query.Groupings, req.By):
		return query.Invalid("group by %q: want device, endpoint, kind or total", req.By)
	case req.Format != FormatSVG && req.Format != FormatPNG:
		return query.Invalid("%w %q: want svg or png", ErrFormat, req.Format)
	case req.Width < MinWidth || req.Width > MaxSide:
		return query.Invalid("width %d px: want %d to %d", req.Width, MinWidth, MaxSide)
	case req.Height < MinHeight || req.Height > MaxSide:
		return query.Invalid("height %d px: want %d to %d", req.Height, MinHeight, MaxSide)
	}
	return nil
}

// newTimeline reads the timeline of req from db: the energy of each line
// over the window (query.Energy, as `wattrec query` reports it), the
// columns of every series (read in parallel), the gaps and the marks.
func newTimeline(ctx context.Context, db *store.DB, req Request) (*timeline, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	filter := req.Filter
	plan, err := selectSeries(ctx, db, filter)
	if err != nil {
		return nil, err
	}
	if req.Window != "" {
		inst, err := query.Energy(ctx, db, query.Options{Filter: filter, Window: req.Window, By: query.ByTotal})
		if err != nil {
			return nil, err
		}
		filter.Range = query.Between(inst.FromMs, inst.ToMs)
		if plan, err = query.NewPlan(ctx, db, filter, query.Periods{}); err != nil {
			return nil, err
		}
	}
	rep, err := query.Energy(ctx, db, query.Options{Filter: filter, By: req.By})
	if err != nil {
		return nil, err
	}
	t := &timeline{req: req, file: filepath.Base(db.Path()), window: query.Interval{From: rep.FromMs, To: rep.ToMs}, loc: time.Local}
	if req.UTC {
		t.loc = time.UTC
	}

	// One line per group row; the total row is the legend's last entry.
	index := map[string]int{}
	for _, r := range rep.Rows {
		if r.Group == "total" && req.By != query.ByTotal {
			t.total = &r
			continue
		}
		index[r.Group] = len(t.lines)
		t.lines = append(t.lines, line{row: r})
	}
	if len(t.lines) > maxLines {
		return nil, query.Invalid("%d lines (one per %s), more than the %d a plot tells apart: %w", len(t.lines), req.By, maxLines, ErrTooManyLines)
	}
	if !slices.ContainsFunc(t.lines, func(l line) bool { return l.row.ValuedMs > 0 }) {
		return nil, noData(plan, t.window)
	}

	// The columns of every series, then each line's trace.
	t.grid = newGrid(t.window, req.Width)
	cols, err := readColumns(ctx, db, plan, t.grid)
	if err != nil {
		return nil, err
	}
	members := make([][]*columns, len(t.lines))
	var gapLists [][]query.Interval
	for i, s := range plan.Series {
		l := index[query.Group(s.SeriesKey, req.By)]
		members[l] = append(members[l], cols[i])
		gapLists = append(gapLists, cols[i].gaps)
	}
	for i := range t.lines {
		t.lines[i].trace = traceOf(t.grid, members[i])
	}
	t.gaps = unionGaps(gapLists...)

	if t.marks, err = readMarks(ctx, db, t.window); err != nil {
		return nil, err
	}
	return t, nil
}

// selectSeries plans filter on db, refusing a filter that matches no
// series with a list of those the file has.
func selectSeries(ctx context.Context, db *store.DB, filter query.Filter) (*query.Plan, error) {
	plan, err := query.NewPlan(ctx, db, filter, query.Periods{})
	if err != nil {
		return nil, err
	}
	if len(plan.Series) > 0 {
		return plan, nil
	}
	all, err := db.Series(ctx, "", false)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, query.Invalid("%s holds no readings: %w", db.Path(), ErrNoData)
	}
	var have []string
	for _, s := range all {
		have = append(have, s.SeriesKey.String())
	}
	var asked []string
	for _, d := range filter.Devices {
		asked = append(asked, d.String())
	}
	asked = append(asked, filter.Endpoints...)
	return nil, query.Invalid("%w (%s) in %s: it has %s", ErrNoSeries, strings.Join(asked, ", "), db.Path(), list(have, 12))
}

// list joins the first n of items, and says how many more there are.
func list(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

// noData is the error of a window in which no selected series has a
// value, with the span the series do have.
func noData(plan *query.Plan, window query.Interval) error {
	first, last := plan.Series[0].FirstMs, plan.Series[0].LastMs
	for _, s := range plan.Series {
		first, last = min(first, s.FirstMs), max(last, s.LastMs)
	}
	return query.Invalid("%w: %s → %s holds no value of the %d selected series (their readings span %s → %s)",
		ErrNoData, query.FormatTime(window.From), query.FormatTime(window.To), len(plan.Series), query.FormatTime(first), query.FormatTime(last))
}

// readColumns reads the columns of each series of plan over g, several
// series at once (one per CPU, the file's read transactions run side by
// side); it returns once every reader has stopped.
func readColumns(ctx context.Context, db *store.DB, plan *query.Plan, g grid) ([]*columns, error) {
	cols := make([]*columns, len(plan.Series))
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(runtime.GOMAXPROCS(0))
	window := query.Interval{From: g.from, To: g.to}
	for i, s := range plan.Series {
		cols[i] = newColumns(g)
		eg.Go(func() error {
			if err := query.Steps(ctx, db, s.SeriesKey, plan.Specs[i], window, cols[i].add); err != nil {
				return fmt.Errorf("series %s: %w", s.SeriesKey, err)
			}
			cols[i].finish()
			return nil
		})
	}
	return cols, eg.Wait()
}

// readMarks returns the marks that overlap window, clipped to it and
// labelled as query labels window instances ("epoch #2" when the name
// repeats).
func readMarks(ctx context.Context, db *store.DB, window query.Interval) ([]markBand, error) {
	marks, err := db.Marks(ctx, "")
	if err != nil {
		return nil, err
	}
	count, seen, colors := map[string]int{}, map[string]int{}, map[string]int{}
	for _, m := range marks {
		count[m.Name]++
	}
	var out []markBand
	for _, m := range marks {
		seen[m.Name]++
		end := m.EndMs
		if m.Open {
			end = window.To
		}
		from, to := max(m.BeginMs, window.From), min(end, window.To)
		if to <= from {
			continue
		}
		if _, ok := colors[m.Name]; !ok {
			colors[m.Name] = len(colors) % len(markColors)
		}
		label := m.Name
		if count[m.Name] > 1 {
			label = fmt.Sprintf("%s #%d", m.Name, seen[m.Name])
		}
		out = append(out, markBand{name: m.Name, label: label, from: from, to: to, color: colors[m.Name]})
	}
	return out, nil
}
