package query

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Output formats of a report.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatCSV   = "csv"
)

// Write renders the report as FormatTable, FormatJSON or FormatCSV. With
// Compare set, rows also carry the trapezoid integral and its relative
// difference from the exact (hold) integral. Warnings are in the JSON;
// WriteWarnings writes them apart.
func (rep *Report) Write(w io.Writer, format string) error {
	compare := rep.Compare
	switch format {
	case FormatTable, "":
		return rep.writeTable(w, compare)
	case FormatJSON:
		return rep.writeAll(&jsonSink{rowBuffer: rowBuffer{w: w}})
	case FormatCSV:
		return rep.writeAll(&csvSink{rowBuffer: rowBuffer{w: w}})
	}
	return Invalid("format %q: want table, json or csv", format)
}

func (rep *Report) hasCounters() bool {
	return slices.ContainsFunc(rep.Rows, func(r Row) bool { return r.CounterSeries > 0 || r.AnchoredSeries > 0 })
}

func (rep *Report) bucketed() bool {
	return len(rep.Rows) > 0 && (rep.Rows[0].FromMs != rep.FromMs || rep.Rows[len(rep.Rows)-1].ToMs != rep.ToMs || rep.Rows[0].ToMs != rep.ToMs)
}

// RulesLine describes the integration rules used in one line, for the
// report's header.
func (rep *Report) RulesLine() string { return RulesSummary() + periodsLine(rep.Rules) }

func diffPct(r Row) float64 {
	if r.EnergyUJ == 0 {
		return math.NaN()
	}
	return (r.TrapezoidUJ - float64(r.EnergyUJ)) / float64(r.EnergyUJ) * 100
}

func (rep *Report) writeTable(w io.Writer, compare bool) error {
	fmt.Fprintf(w, "window %s → %s (%s)", FormatTime(rep.FromMs), FormatTime(rep.ToMs), durationHuman(rep.ToMs-rep.FromMs))
	if rep.Window != "" {
		fmt.Fprintf(w, ", instances of %q", rep.Window)
	}
	fmt.Fprintf(w, "\nrules  %s\n\n", rep.RulesLine())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	bucketed, counters := rep.bucketed() && rep.Window == "", rep.hasCounters()
	header := []string{"group", "joules", "± J"}
	if compare {
		header = append(header, "trapezoid J", "diff %")
	}
	if counters {
		header = append(header, "anchored J", "± J", "from counter", "bridged", "integral/counter")
	}
	header = append(header, "avg W", "peak W", "duration", "samples", "coverage", "gaps", "longest gap")
	if rep.Window != "" {
		header = append([]string{"window", "from"}, header...)
	} else if bucketed {
		header = append([]string{"bucket"}, header...)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, r := range rep.Rows {
		cols := []string{r.Group, fmt.Sprintf("%.3f", r.Joules()), fmt.Sprintf("%.3f", float64(r.BoundUJ)/1e6)}
		if compare {
			cols = append(cols, fmt.Sprintf("%.3f", r.TrapezoidUJ/1e6), fmtFloat(diffPct(r), 4))
		}
		if counters {
			if r.AnchoredSeries > 0 {
				cols = append(cols, fmt.Sprintf("%.3f", float64(r.AnchoredUJ)/1e6), fmt.Sprintf("%.3f", float64(r.AnchoredBoundUJ)/1e6),
					fmtFloat(r.counterShare()*100, 1)+" %", durationHuman(r.BridgedMs))
			} else {
				cols = append(cols, "-", "-", "-", "-")
			}
			cols = append(cols, fmtFloat(r.CounterRatio(), 4))
		}
		cols = append(cols, fmtFloat(r.AvgW(), 3), fmt.Sprintf("%.3f", float64(r.PeakMW)/1000),
			durationHuman(r.ToMs-r.FromMs), strconv.Itoa(r.Samples), fmt.Sprintf("%.4f", r.Coverage()), strconv.Itoa(r.Gaps), durationHuman(r.LongestGapMs))
		if rep.Window != "" {
			cols = append([]string{r.Instance, FormatTime(r.FromMs)}, cols...)
		} else if bucketed {
			cols = append([]string{FormatTime(r.FromMs)}, cols...)
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t")
	}
	return tw.Flush()
}

// WriteWarnings writes the report's warnings to w, one "warning: " line
// each.
func (rep *Report) WriteWarnings(w io.Writer) error {
	for _, warn := range rep.Warnings {
		if _, err := fmt.Fprintf(w, "warning: %s\n", warn); err != nil {
			return err
		}
	}
	return nil
}

func fmtFloat(f float64, prec int) string {
	if math.IsNaN(f) {
		return "-"
	}
	return strconv.FormatFloat(f, 'f', prec, 64)
}

// jsonRow is a row's JSON form (the schema is in README.md): every key
// on every row, null where a value is unknown or does not apply.
type jsonRow struct {
	From     string  `json:"from" doc:"start of the row's window, RFC 3339 UTC"`
	FromMs   int64   `json:"from_ms" doc:"the same, Unix ms"`
	To       string  `json:"to" doc:"end of the row's window (exclusive), RFC 3339 UTC"`
	ToMs     int64   `json:"to_ms" doc:"the same, Unix ms"`
	Window   *string `json:"window" doc:"the mark name of a --window report, else null"`
	Instance *string `json:"instance" doc:"\"epoch #3\" or \"sum\" in a --window report, else null"`
	Group    string  `json:"group" doc:"the row's group as the table shows it: \"n1:4938 gpu:0\", \"n1:4938\", \"gpu\" or \"total\""`
	Level    string  `json:"level" doc:"what the row sums: device, endpoint, kind or total"`
	Endpoint *string `json:"endpoint" doc:"the endpoint of a device or endpoint row, else null"`
	Kind     *string `json:"kind" doc:"gpu, cpu or dram on a device or kind row, else null"`
	Device   *int32  `json:"device" doc:"the device index on a device row, else null"`

	Joules       float64  `json:"joules" doc:"stream energy by the rules (exact: integer mW·ms, converted once)"`
	EnergyUJ     int64    `json:"energy_uj" doc:"the same in µJ, an integer"`
	BoundJ       float64  `json:"joules_bound" doc:"bound on |joules − the true energy of the covered time| (see Error bounds)"`
	AvgW         *float64 `json:"avg_w" doc:"sum over the row's devices of each one's joules / its observed seconds; null if nothing was observed"`
	PeakW        float64  `json:"peak_w" doc:"largest single-device value that held for a while"`
	DurationMs   int64    `json:"duration_ms" doc:"to_ms − from_ms"`
	Samples      int      `json:"samples" doc:"readings whose own time lies in the window"`
	Coverage     float64  `json:"coverage" doc:"fraction of the row's device-time inside a live session with a known value"`
	Gaps         int      `json:"gaps" doc:"stretches of the window without a value"`
	LongestGapMs int64    `json:"longest_gap_ms" doc:"the longest of them"`
	Series       int      `json:"series" doc:"devices in the row"`
	// Counter-anchored energy: null where no series of the row has a
	// counter anchor.
	AnchoredJ      *float64 `json:"anchored_joules" doc:"counter-anchored energy; null without a counter anchor in the row"`
	AnchoredBoundJ *float64 `json:"anchored_bound_joules" doc:"its bound"`
	FromCounterJ   *float64 `json:"anchored_from_counter_joules" doc:"the part of it from counter deltas"`
	FromStreamJ    *float64 `json:"anchored_from_stream_joules" doc:"the part from the stream"`
	CounterMs      *int64   `json:"counter_ms" doc:"device-time inside the counter intervals used"`
	BridgedMs      *int64   `json:"bridged_ms" doc:"of it, gap time the counter bridged"`
	UncoveredMs    *int64   `json:"uncovered_ms" doc:"device-time neither the counter nor the stream covers"`
	// The check over counter intervals the stream covers completely.
	CounterJ     *float64 `json:"counter_joules" doc:"counter delta over the row's counter intervals the stream covers completely; else null"`
	CounterRatio *float64 `json:"integral_over_counter" doc:"the stream's joules over those intervals / that delta"`
	// With --method compare.
	TrapezoidJ    *float64 `json:"trapezoid_joules" doc:"with --method compare: linear interpolation between readings, else null"`
	TrapezoidDiff *float64 `json:"trapezoid_diff_pct" doc:"its difference from joules, %"`
}

// ReportColumns lists the keys of a report row (the JSON keys and the CSV
// columns, in order) with what each means.
func ReportColumns() [][2]string {
	t := reflect.TypeFor[jsonRow]()
	out := make([][2]string, t.NumField())
	for i := range out {
		out[i] = [2]string{t.Field(i).Tag.Get("json"), t.Field(i).Tag.Get("doc")}
	}
	return out
}

func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// rowValues holds what a jsonRow's pointers point to, so that building
// one allocates nothing: a sink keeps one and builds each row in it,
// valid until the next.
type rowValues struct {
	row                                                 Row
	window, instance, kind                              string
	avg, anchored, anchoredBound, fromCounter, fromStr  float64
	counterJ, counterRatio, trapezoid, trapezoidDiffPct float64
}

// set stores v in dst and returns dst, or nil when !ok (null).
func set[T any](dst *T, v T, ok bool) *T {
	if !ok {
		return nil
	}
	*dst = v
	return dst
}

// number is set for a float: NaN is null.
func number(dst *float64, f float64) *float64 { return set(dst, f, !math.IsNaN(f)) }

// newJSONRow builds r's row in v (see rowValues).
func newJSONRow(rep *Report, r Row, v *rowValues) jsonRow {
	v.row = r
	rv := &v.row
	jr := jsonRow{From: rep.formatTime(r.FromMs), FromMs: r.FromMs, To: rep.formatTime(r.ToMs), ToMs: r.ToMs,
		Window: set(&v.window, rep.Window, rep.Window != ""), Instance: set(&v.instance, r.Instance, r.Instance != ""),
		Group: r.Group, Level: r.Level,
		Joules: r.Joules(), EnergyUJ: r.EnergyUJ, BoundJ: float64(r.BoundUJ) / 1e6, AvgW: number(&v.avg, r.AvgW()), PeakW: float64(r.PeakMW) / 1000,
		DurationMs: r.ToMs - r.FromMs, Samples: r.Samples, Coverage: r.Coverage(), Gaps: r.Gaps, LongestGapMs: r.LongestGapMs, Series: r.Series}
	switch r.Level {
	case ByDevice:
		jr.Endpoint, jr.Kind, jr.Device = &rv.Key.Endpoint, set(&v.kind, r.Key.Kind.String(), true), &rv.Key.Device
	case ByEndpoint:
		jr.Endpoint = &rv.Key.Endpoint
	case ByKind:
		jr.Kind = set(&v.kind, r.Key.Kind.String(), true)
	}
	if r.AnchoredSeries > 0 {
		jr.AnchoredJ, jr.AnchoredBoundJ = number(&v.anchored, float64(r.AnchoredUJ)/1e6), number(&v.anchoredBound, float64(r.AnchoredBoundUJ)/1e6)
		jr.FromCounterJ, jr.FromStreamJ = number(&v.fromCounter, float64(r.FromCounterUJ)/1e6), number(&v.fromStr, float64(r.FromStreamUJ)/1e6)
		jr.CounterMs, jr.BridgedMs, jr.UncoveredMs = &rv.CounterMs, &rv.BridgedMs, &rv.UncoveredMs
	}
	if r.CounterSeries > 0 {
		jr.CounterJ, jr.CounterRatio = number(&v.counterJ, float64(r.CounterUJ)/1e6), number(&v.counterRatio, r.CounterRatio())
	}
	if rep.Compare {
		jr.TrapezoidJ, jr.TrapezoidDiff = number(&v.trapezoid, r.TrapezoidUJ/1e6), number(&v.trapezoidDiffPct, diffPct(r))
	}
	return jr
}

// formatTime is FormatTime, remembering the last two answers: a
// bucket's rows share their times.
func (rep *Report) formatTime(ms int64) string {
	for _, t := range rep.times {
		if t.ms == ms && t.s != "" {
			return t.s
		}
	}
	s := FormatTime(ms)
	rep.times[1], rep.times[0] = rep.times[0], struct {
		ms int64
		s  string
	}{ms, s}
	return s
}

// jsonPeriod is the poll period used for one series.
type jsonPeriod struct {
	Endpoint string `json:"endpoint"`
	Kind     string `json:"kind"`
	Device   int32  `json:"device"`
	Rule     string `json:"rule"`
	PeriodMs int64  `json:"period_ms"`
	Inferred bool   `json:"inferred"`
}

// jsonSink writes a report as one indented JSON object, row by row: the
// same bytes as encoding/json would write for the whole report.
type jsonSink struct {
	rowBuffer
	n    int
	vals rowValues
}

func (j *jsonSink) begin(rep *Report) error {
	periods := []jsonPeriod{}
	for _, k := range rep.keys {
		r := rep.Rules[seriesName(k)]
		periods = append(periods, jsonPeriod{k.Endpoint, k.Kind.String(), k.Device, r.Kind.String(), r.PeriodMs, r.Inferred})
	}
	head, err := json.MarshalIndent(struct {
		From    string       `json:"from"`
		FromMs  int64        `json:"from_ms"`
		To      string       `json:"to"`
		ToMs    int64        `json:"to_ms"`
		By      string       `json:"by"`
		Window  *string      `json:"window"`
		Rules   string       `json:"rules"`
		Periods []jsonPeriod `json:"periods"`
	}{From: FormatTime(rep.FromMs), FromMs: rep.FromMs, To: FormatTime(rep.ToMs), ToMs: rep.ToMs, By: rep.By,
		Window: optionalString(rep.Window), Rules: rep.RulesLine(), Periods: periods}, "", "  ")
	if err != nil {
		return err
	}
	head = append(head[:len(head)-len("\n}")], `,
  "rows": [`...)
	j.buf = append(j.buf, head...)
	return nil
}

func (j *jsonSink) row(rep *Report, r Row) error {
	sep := ",\n    "
	if j.n == 0 {
		sep = "\n    "
	}
	j.n++
	jr := newJSONRow(rep, r, &j.vals)
	var err error
	if j.buf, err = jr.appendJSON(append(j.buf, sep...)); err != nil {
		return err
	}
	return j.added()
}

func (j *jsonSink) end(rep *Report) error {
	tail := "\n  ]"
	if j.n == 0 {
		tail = "]"
	}
	warnings := rep.Warnings
	if warnings == nil {
		warnings = []string{}
	}
	b, err := json.MarshalIndent(warnings, "  ", "  ")
	if err != nil {
		return err
	}
	tail += ",\n  \"warnings\": " + string(b)
	j.buf = append(j.buf, tail+"\n}\n"...)
	return j.flush()
}

// csvSink writes a report as CSV with a header line, row by row. The
// columns are the JSON keys, in order; an unknown value is empty.
type csvSink struct {
	rowBuffer
	vals rowValues
}

// rowBuffer gathers the bytes of a CSV or JSON sink's rows and writes
// them flushBytes at a time.
type rowBuffer struct {
	w   io.Writer
	buf []byte // not yet written
}

const flushBytes = 64 << 10

// added writes the rows gathered once they are flushBytes or more.
func (b *rowBuffer) added() error {
	if len(b.buf) >= flushBytes {
		return b.flush()
	}
	return nil
}

func (b *rowBuffer) flush() error {
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

func (c *csvSink) begin(rep *Report) error {
	c.buf = appendCSVHeader(make([]byte, 0, flushBytes+4<<10))
	return nil
}

func (c *csvSink) row(rep *Report, r Row) error {
	jr := newJSONRow(rep, r, &c.vals)
	c.buf = jr.appendCSV(c.buf)
	return c.added()
}

func (c *csvSink) end(*Report) error { return c.flush() }

// writeAll hands a finished report to sink.
func (rep *Report) writeAll(sink rowSink) error {
	if err := sink.begin(rep); err != nil {
		return err
	}
	for _, r := range rep.Rows {
		if err := sink.row(rep, r); err != nil {
			return err
		}
	}
	return sink.end(rep)
}
