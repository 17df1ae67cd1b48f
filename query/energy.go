package query

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"slices"
	"strings"

	"github.com/wattrec/wattrec/store"
)

// Grouping of query rows.
const (
	ByDevice   = "device"
	ByEndpoint = "endpoint"
	ByKind     = "kind"
	ByTotal    = "total"
)

// Integration methods of a report.
const (
	MethodHold      = "hold"      // the rules (RulesText): exact
	MethodTrapezoid = "trapezoid" // linear interpolation between readings, for comparison
	MethodCompare   = "compare"   // both, with their relative difference
)

// Methods and Groupings list the valid Options.Method and Options.By.
var (
	Methods   = []string{MethodHold, MethodTrapezoid, MethodCompare}
	Groupings = []string{ByDevice, ByEndpoint, ByKind, ByTotal}
)

// Options describe an energy query.
type Options struct {
	Filter      Filter // the series, and the time range; zero = the whole recording
	By          string // ByDevice (default), ByEndpoint, ByKind or ByTotal
	EveryMs     int64  // bucket width; 0 = one bucket for the whole window
	CPUPeriodMs int64  // CPU/DRAM poll period; 0 = infer it per series
	GPUPeriodMs int64  // GPU poll period, for the error bound; 0 = infer it per series
	// Window names a mark: the report has one set of rows per instance of
	// it (clipped to the filter's time range, if any) and one for their sum.
	Window string
	Method string // MethodHold (default), MethodTrapezoid or MethodCompare
	Format string // for Print: FormatTable (default), FormatJSON or FormatCSV
	// Warnings takes the report's warnings, for Print, one line each
	// (they are also in the JSON); nil drops them.
	Warnings io.Writer
}

// Row is one group in one bucket.
type Row struct {
	FromMs, ToMs int64
	Instance     string // with a Window: "epoch #3", or "sum"
	Group        string // "n1:4938 gpu:0", "n1:4938", "gpu" or "total"
	// Level is what the row sums: one device (ByDevice), an endpoint, a
	// kind, or everything (the total row, and every row ByTotal); Key
	// holds the parts of the group the level names (the endpoint of an
	// endpoint row, the kind of a kind row, all three for a device).
	Level  string
	Key    store.SeriesKey
	Result     // summed over the group's series
	Series int // series in the group; PeakMW is the largest single-device value

	Anchoring // counter-anchored energy, summed over the group's series

	avgW     float64 // Σ over the row's observed series of each one's average power
	observed int     // series with observed time
}

// Report is the answer to an energy query.
type Report struct {
	FromMs, ToMs int64
	By           string
	Rules        map[string]Rule // series → the rule used (its poll period)
	Rows         []Row           // per bucket: the groups, then a total row (ByDevice, ByEndpoint, ByKind)
	Window       string          // the mark the buckets are instances of, if any
	Compare      bool            // rows carry the trapezoid integral beside the exact one
	Warnings     []string        // integral and counter disagree, ... (at most maxWarnings, then a count)

	dropped int               // warnings beyond maxWarnings
	keys    []store.SeriesKey // the series, in plan order
	times   [2]struct {       // formatTime's memory
		ms int64
		s  string
	}
}

// Limits on the rows of one report (buckets or window instances ×
// series, with the group and total rows). A report held in memory (a
// table, Energy's answer) takes at most MaxReportRows, a few tens of MB;
// streamed CSV and JSON take more, in constant memory, up to
// MaxStreamedRows (the work grows with them). The grid export streams
// any number of bins, faster.
const (
	MaxReportRows   = 100_000
	MaxStreamedRows = 10_000_000
)

// ErrTooLarge means a report would have more than MaxReportRows rows.
var ErrTooLarge = errors.New("report too large")

// checkRows refuses a report of windows × (series + the total row) rows
// beyond maxRows.
func checkRows(windows int64, series int, what string, maxRows int64) error {
	if rows := windows * int64(series+1); windows > maxRows || rows > maxRows {
		return Invalid("%d %s × %d series = %d rows, more than this report holds (%d): %w", windows, what, series, rows, maxRows, ErrTooLarge)
	}
	return nil
}

// Print runs the energy query opt on db and writes the report to w in
// opt.Format. CSV and JSON rows are written as they are made, so that
// their memory does not grow with the number of buckets (up to
// MaxStreamedRows); a table is aligned over all its rows, so it holds
// them (up to MaxReportRows).
func Print(ctx context.Context, w io.Writer, db *store.DB, opt Options) error {
	var rep *Report
	var err error
	switch opt.Format {
	case "", FormatTable:
		if rep, err = Energy(ctx, db, opt); err == nil {
			err = rep.Write(w, FormatTable)
		}
	case FormatCSV:
		rep, err = energy(ctx, db, opt, &csvSink{rowBuffer: rowBuffer{w: w}}, MaxStreamedRows)
	case FormatJSON:
		rep, err = energy(ctx, db, opt, &jsonSink{rowBuffer: rowBuffer{w: w}}, MaxStreamedRows)
	default:
		return Invalid("format %q: want table, json or csv", opt.Format)
	}
	if err != nil || opt.Warnings == nil {
		return err
	}
	return rep.WriteWarnings(opt.Warnings)
}

// Energy integrates every series that passes opt.Filter over the window
// (or each bucket of it) by the integration rules (see Rule), and
// returns the whole report (at most MaxReportRows rows).
func Energy(ctx context.Context, db *store.DB, opt Options) (*Report, error) {
	var c collector
	rep, err := energy(ctx, db, opt, &c, MaxReportRows)
	if err != nil {
		return nil, err
	}
	rep.Rows = c.rows
	return rep, nil
}

// rowSink takes a report as it is made: its header (everything but the
// rows and warnings), each row in order, then the finished report (with
// its warnings, without its rows).
type rowSink interface {
	begin(rep *Report) error
	row(rep *Report, r Row) error
	end(rep *Report) error
}

type collector struct{ rows []Row }

func (c *collector) begin(*Report) error        { return nil }
func (c *collector) row(_ *Report, r Row) error { c.rows = append(c.rows, r); return nil }
func (c *collector) end(*Report) error          { return nil }

// energy runs opt, handing the report to sink as it is made; a report of
// more than maxRows rows is refused before it starts.
func energy(ctx context.Context, db *store.DB, opt Options, sink rowSink, maxRows int64) (*Report, error) {
	if opt.By == "" {
		opt.By = ByDevice
	}
	if !slices.Contains(Groupings, opt.By) {
		return nil, Invalid("group by %q: want device, endpoint, kind or total", opt.By)
	}
	if opt.Method == "" {
		opt.Method = MethodHold
	}
	if !slices.Contains(Methods, opt.Method) {
		return nil, Invalid("method %q: want hold, trapezoid or compare", opt.Method)
	}
	if opt.EveryMs < 0 {
		return nil, Invalid("bucket width %d ms: must be positive", opt.EveryMs)
	}
	plan, err := NewPlan(ctx, db, opt.Filter, Periods{CPUMs: opt.CPUPeriodMs, GPUMs: opt.GPUPeriodMs})
	if err != nil {
		return nil, err
	}
	if len(plan.Series) == 0 {
		return nil, Invalid("no series in %s match the filters", db.Path())
	}
	series := plan.Series
	rep := &Report{By: opt.By, FromMs: plan.Window.From, ToMs: plan.Window.To, Rules: plan.Rules(), Compare: opt.Method == MethodCompare}
	for _, s := range series {
		rep.keys = append(rep.keys, s.SeriesKey)
	}

	windows, err := reportWindows(ctx, db, opt, plan, rep, maxRows)
	if err != nil {
		return nil, err
	}
	if err := sink.begin(rep); err != nil {
		return nil, err
	}
	emit := func(r Row) error {
		if opt.Method == MethodTrapezoid {
			r.EnergyUJ = int64(math.Round(r.TrapezoidUJ))
		}
		return sink.row(rep, r)
	}
	sums := map[string]*Row{}
	var sumOrder []string
	parts := sumParts{} // for the sum rows' averages
	// The groups, the same in every bucket: series i adds to
	// groups[groupOf[i]], in the order of their first series, then the
	// total row (unless the groups are the total).
	var groups []Row
	groupOf := make([]int, len(series))
	index := map[string]int{}
	for i, s := range series {
		key, gk := groupKey(s.SeriesKey, opt.By)
		g, ok := index[key]
		if !ok {
			g = len(groups)
			index[key] = g
			groups = append(groups, Row{Group: key, Level: opt.By, Key: gk})
		}
		groupOf[i] = g
	}
	if opt.By != ByTotal {
		groups = append(groups, Row{Group: ByTotal, Level: ByTotal})
	}
	rows := make([]Row, len(groups)) // one bucket's
	row := func(bucket Interval, label string, cells []cell) error {
		for g := range rows {
			rows[g] = Row{FromMs: bucket.From, ToMs: bucket.To, Instance: label, Group: groups[g].Group, Level: groups[g].Level, Key: groups[g].Key}
		}
		for i, s := range series {
			res, cnt := cells[i].res, cells[i].anc
			rows[groupOf[i]].add(res, cnt)
			if opt.By != ByTotal {
				rows[len(rows)-1].add(res, cnt)
			}
			if opt.Window != "" {
				parts.add(rows[groupOf[i]].Group, s.SeriesKey, res)
				if opt.By != ByTotal {
					parts.add(ByTotal, s.SeriesKey, res)
				}
			}
		}
		for g := range rows {
			if err := emit(rows[g]); err != nil {
				return err
			}
			if opt.Window == "" {
				continue
			}
			key := rows[g].Group
			sum := sums[key]
			if sum == nil {
				sum = &Row{FromMs: bucket.From, Instance: "sum", Group: key, Level: rows[g].Level, Key: rows[g].Key}
				sums[key], sumOrder = sum, append(sumOrder, key)
			}
			sum.merge(&rows[g])
			sum.ToMs = max(sum.ToMs, bucket.To)
		}
		return nil
	}
	// The windows in blocks: each series is read once per block (its
	// chunks in one scan when the windows are a report's buckets, its
	// counter readings once), and a block holds at most maxBlockCells
	// series' figures.
	block := max(1, maxBlockCells/len(series))
	var ws []Interval
	var labels []string
	flush := func() error {
		if len(ws) == 0 {
			return nil
		}
		cells, err := measure(ctx, db, plan, ws, opt.EveryMs, opt.Window == "", func(w int, msg string) {
			rep.warn(strings.TrimSpace(labels[w] + " " + msg))
		})
		if err != nil {
			return err
		}
		for w := range ws {
			if err := row(ws[w], labels[w], cells[w]); err != nil {
				return err
			}
		}
		ws, labels = ws[:0], labels[:0]
		return nil
	}
	for bucket, label := range windows {
		ws, labels = append(ws, bucket), append(labels, label)
		if len(ws) == block {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	for _, key := range sumOrder {
		sum := sums[key]
		sum.avgW, sum.observed = 0, 0
		for _, k := range rep.keys { // in plan order: the same float sum every time
			p, ok := parts[key][k]
			if ok && p[1] > 0 {
				sum.avgW += float64(p[0]) / float64(p[1]) / 1000
				sum.observed++
			}
		}
		if err := emit(*sum); err != nil {
			return nil, err
		}
	}
	if rep.dropped > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("… and %d more warnings like these", rep.dropped))
	}
	return rep, sink.end(rep)
}

// maxBlockCells bounds the series × windows whose figures a report holds
// at once (a few hundred bytes each).
const maxBlockCells = 1 << 15

// cell is one series' figures over one window of a report.
type cell struct {
	res Result
	anc Anchoring
}

// measure integrates every series of plan over each of ws, in order, and
// anchors it to its counter readings: cells[w][i] is series i over ws[w].
// With buckets set, ws are consecutive buckets of width every, which one
// scan of a series' chunks integrates all at once (IntegrateBins); else
// (window instances, which may overlap) each is integrated apart. warn
// takes window w's warnings.
func measure(ctx context.Context, db *store.DB, plan *Plan, ws []Interval, every int64, buckets bool, warn func(w int, msg string)) ([][]cell, error) {
	cells := make([][]cell, len(ws))
	for w := range cells {
		cells[w] = make([]cell, len(plan.Series))
	}
	span := Interval{ws[0].From, ws[0].To}
	for _, w := range ws {
		span = Interval{min(span.From, w.From), max(span.To, w.To)}
	}
	for i, s := range plan.Series {
		k, spec := s.SeriesKey, plan.Specs[i]
		if buckets {
			w := 0
			err := integrateBins(ctx, db, k, spec, binner{at: span.From, to: span.To, every: every}, func(_ Interval, r Result) error {
				cells[w][i].res = r
				w++
				return nil
			})
			if err != nil {
				return nil, err
			}
		} else {
			for w, win := range ws {
				r, err := integrateSeries(ctx, db, k, spec, win)
				if err != nil {
					return nil, err
				}
				cells[w][i].res = r
			}
		}
		cs, err := readCounters(ctx, db, k, span)
		if err != nil {
			return nil, err
		}
		for w, win := range ws {
			res := cells[w][i].res
			a, err := anchorSeries(ctx, db, k, spec, win, res, selectAnchors(cs, spec, win), func(msg string) { warn(w, msg) })
			if err != nil {
				return nil, err
			}
			cells[w][i].anc = a
		}
	}
	return cells, nil
}

// maxWarnings bounds the warnings of one report; the rest are counted.
const maxWarnings = 100

func (rep *Report) warn(msg string) {
	if len(rep.Warnings) < maxWarnings {
		rep.Warnings = append(rep.Warnings, msg)
		return
	}
	rep.dropped++
}

// Anchoring is counter-anchored energy (see CounterTolerance), of one
// series or summed over a row's: each series anchored by its hardware
// counter where it was read at least twice inside the window, else its
// stream integral.
type Anchoring struct {
	// AnchoredSeries counts the series with an anchor; without one the
	// figures are the stream's.
	AnchoredSeries  int
	AnchoredUJ      int64 // FromCounterUJ + FromStreamUJ
	AnchoredBoundUJ int64 // bounds |AnchoredUJ − the true energy of CounterMs and the valued time|
	FromCounterUJ   int64 // counter deltas
	FromStreamUJ    int64 // the stream's integral of the rest
	CounterMs       int64 // window time inside the counter intervals used (device-ms)
	BridgedMs       int64 // of it, the time without a stream value: a gap the counter bridged
	UncoveredMs     int64 // the time neither covers (device-ms)

	// The check of the stream against the counter: the counter deltas
	// over the counter intervals inside the window that the stream
	// covers completely, and the stream's integral over them.
	CounterUJ         int64
	CounterIntegralUJ int64
	CounterSeries     int // series with such intervals
}

func (a *Anchoring) add(o Anchoring) {
	a.AnchoredSeries += o.AnchoredSeries
	a.AnchoredUJ += o.AnchoredUJ
	a.AnchoredBoundUJ += o.AnchoredBoundUJ
	a.FromCounterUJ += o.FromCounterUJ
	a.FromStreamUJ += o.FromStreamUJ
	a.CounterMs += o.CounterMs
	a.BridgedMs += o.BridgedMs
	a.UncoveredMs += o.UncoveredMs
	a.CounterUJ += o.CounterUJ
	a.CounterIntegralUJ += o.CounterIntegralUJ
	a.CounterSeries += o.CounterSeries
}

// add sums one series' result into a group row. Window, valued and live
// time add up across series, so a group's coverage is the fraction of
// device-time observed.
func (r *Row) add(res Result, a Anchoring) {
	r.Anchoring.add(a)
	r.EnergyUJ += res.EnergyUJ
	r.BoundUJ += res.BoundUJ
	r.TrapezoidUJ += res.TrapezoidUJ
	r.WindowMs += res.WindowMs
	r.ValuedMs += res.ValuedMs
	r.LiveMs += res.LiveMs
	r.PeakMW = max(r.PeakMW, res.PeakMW)
	r.Samples += res.Samples
	r.Gaps += res.Gaps
	r.LongestGapMs = max(r.LongestGapMs, res.LongestGapMs)
	r.Series++
	if res.ValuedMs > 0 {
		r.avgW += float64(res.EnergyUJ) / float64(res.ValuedMs) / 1000
		r.observed++
	}
}

// sumParts holds, per group of a window report, each series' energy
// and observed time over all instances: a sum row's average power is the
// sum of its series' averages over their own observed time.
type sumParts map[string]map[store.SeriesKey][2]int64

func (p sumParts) add(group string, k store.SeriesKey, res Result) {
	if p[group] == nil {
		p[group] = map[store.SeriesKey][2]int64{}
	}
	e := p[group][k]
	p[group][k] = [2]int64{e[0] + res.EnergyUJ, e[1] + res.ValuedMs}
}

// merge adds another row of the same group (another window instance):
// the same series, observed again.
func (r *Row) merge(o *Row) {
	n, anchoredN, counterN := r.Series, r.AnchoredSeries, r.CounterSeries
	r.add(o.Result, o.Anchoring)
	r.Series = max(n, o.Series)
	r.AnchoredSeries = max(anchoredN, o.AnchoredSeries)
	r.CounterSeries = max(counterN, o.CounterSeries)
}

// CounterRatio is integrated energy / counter delta over the counter
// intervals the stream covers completely; NaN without any.
func (r Row) CounterRatio() float64 {
	if r.CounterSeries == 0 || r.CounterUJ == 0 {
		return math.NaN()
	}
	return float64(r.CounterIntegralUJ) / float64(r.CounterUJ)
}

// reportWindows returns the windows to integrate with their labels: the
// instances of opt.Window (clipped to the filter's time range), or the
// buckets of the report's window. It refuses more than maxRows rows.
func reportWindows(ctx context.Context, db *store.DB, opt Options, plan *Plan, rep *Report, maxRows int64) (iter.Seq2[Interval, string], error) {
	if opt.Window == "" {
		if err := checkRows(BinCount(plan.Window, opt.EveryMs), len(plan.Series), "buckets", maxRows); err != nil {
			return nil, err
		}
		return func(yield func(Interval, string) bool) {
			for b := (binner{at: plan.Window.From, to: plan.Window.To, every: opt.EveryMs}); !b.done(); {
				if !yield(b.next(), "") {
					return
				}
			}
		}, nil
	}
	if opt.EveryMs != 0 {
		return nil, Invalid("a window report has one row set per instance: drop the bucket width")
	}
	marks, err := db.Marks(ctx, opt.Window)
	if err != nil {
		return nil, err
	}
	if err := checkRows(int64(len(marks)), len(plan.Series), "instances", maxRows); err != nil {
		return nil, err
	}
	if len(marks) == 0 {
		all, err := db.Marks(ctx, "")
		if err != nil {
			return nil, err
		}
		names := map[string]bool{}
		var have []string
		for _, m := range all {
			if !names[m.Name] {
				names[m.Name] = true
				have = append(have, m.Name)
			}
		}
		if len(have) == 0 {
			return nil, invalidAs(ErrNoWindow, "no window named %q: %s has no marks", opt.Window, db.Path())
		}
		return nil, invalidAs(ErrNoWindow, "no window named %q (marks: %s)", opt.Window, strings.Join(have, ", "))
	}
	rep.Window = opt.Window
	var ws []Interval
	var labels []string
	for i, m := range marks {
		end := m.EndMs
		if m.Open { // still running: up to the end of the data
			end = plan.Window.To
		}
		w := clip(Interval{m.BeginMs, end}, plan.Range)
		if w.Len() == 0 {
			continue
		}
		ws = append(ws, w)
		labels = append(labels, fmt.Sprintf("%s #%d", m.Name, i+1))
	}
	if len(ws) == 0 {
		return nil, Invalid("no instance of window %q overlaps %s → %s", opt.Window, FormatTime(rep.FromMs), FormatTime(rep.ToMs))
	}
	rep.FromMs, rep.ToMs = ws[0].From, ws[0].To
	for _, w := range ws {
		rep.FromMs, rep.ToMs = min(rep.FromMs, w.From), max(rep.ToMs, w.To)
	}
	return func(yield func(Interval, string) bool) {
		for i, w := range ws {
			if !yield(w, labels[i]) {
				return
			}
		}
	}, nil
}

// counterShare is the part of the anchored energy that came from
// counter deltas; NaN without anchored energy.
func (r Row) counterShare() float64 {
	if r.AnchoredUJ == 0 {
		return math.NaN()
	}
	return float64(r.FromCounterUJ) / float64(r.AnchoredUJ)
}

// AvgW is the group's average power while observed: the sum of its
// series' average powers, each its energy over its own observed time (a
// device observed half the window counts with its average, not half of
// it); NaN when nothing was observed.
func (r Row) AvgW() float64 {
	if r.observed == 0 {
		return math.NaN()
	}
	return r.avgW
}

// groupKey is the group of series k when rows are grouped by by: its
// name, and the parts of k that name it.
func groupKey(k store.SeriesKey, by string) (string, store.SeriesKey) {
	switch by {
	case ByEndpoint:
		return k.Endpoint, store.SeriesKey{Endpoint: k.Endpoint}
	case ByKind:
		return k.Kind.String(), store.SeriesKey{Kind: k.Kind}
	case ByTotal:
		return ByTotal, store.SeriesKey{}
	}
	return seriesName(k), k
}
