package query

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
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
// difference from the exact (hold) integral.
func (rep *Report) Write(w io.Writer, format string) error {
	compare := rep.Compare
	switch format {
	case FormatTable, "":
		return rep.writeTable(w, compare)
	case FormatJSON:
		return rep.writeAll(&jsonSink{w: w})
	case FormatCSV:
		return rep.writeAll(&csvSink{w: w})
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

// periods maps each series of rule kind k to its poll period (ms).
func (rep *Report) periods(k RuleKind) map[string]int64 {
	out := map[string]int64{}
	for name, r := range rep.Rules {
		if r.Kind == k {
			out[name] = r.PeriodMs
		}
	}
	return out
}

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
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	return nil
}

func fmtFloat(f float64, prec int) string {
	if math.IsNaN(f) {
		return "-"
	}
	return strconv.FormatFloat(f, 'f', prec, 64)
}

// jsonRow is a row's JSON form; NaN averages become null.
type jsonRow struct {
	From         string   `json:"from"`
	To           string   `json:"to"`
	Group        string   `json:"group"`
	Joules       float64  `json:"joules"`
	EnergyUJ     int64    `json:"energy_uj"`
	AvgW         *float64 `json:"avg_w"`
	PeakW        float64  `json:"peak_w"`
	DurationMs   int64    `json:"duration_ms"`
	Samples      int      `json:"samples"`
	Coverage     float64  `json:"coverage"`
	Gaps         int      `json:"gaps"`
	LongestGapMs int64    `json:"longest_gap_ms"`
	Series       int      `json:"series"`
	Window       string   `json:"window,omitempty"`
	BoundJ       float64  `json:"joules_bound"`
	// Counter-anchored energy: null where no series of the row has a
	// counter anchor.
	AnchoredJ      *float64 `json:"anchored_joules"`
	AnchoredBoundJ *float64 `json:"anchored_bound_joules"`
	FromCounterJ   *float64 `json:"anchored_from_counter_joules"`
	FromStreamJ    *float64 `json:"anchored_from_stream_joules"`
	CounterMs      *int64   `json:"counter_ms"`
	BridgedMs      *int64   `json:"bridged_ms"`
	UncoveredMs    *int64   `json:"uncovered_ms"`
	// The check over counter intervals the stream covers completely.
	CounterJ      *float64 `json:"counter_joules"`
	CounterRatio  *float64 `json:"integral_over_counter"`
	TrapezoidJ    *float64 `json:"trapezoid_joules,omitempty"`
	TrapezoidDiff *float64 `json:"trapezoid_diff_pct,omitempty"`
}

func optional(f float64) *float64 {
	if math.IsNaN(f) {
		return nil
	}
	return &f
}

// jsonSink writes a report as one indented JSON object, row by row: the
// same bytes as encoding/json would write for the whole report.
type jsonSink struct {
	w io.Writer
	n int
}

func (j *jsonSink) begin(rep *Report) error {
	head, err := json.MarshalIndent(struct {
		From    string           `json:"from"`
		To      string           `json:"to"`
		By      string           `json:"by"`
		Rules   string           `json:"rules"`
		Periods map[string]int64 `json:"cpu_period_ms,omitempty"`
		GPU     map[string]int64 `json:"gpu_period_ms,omitempty"`
		Window  string           `json:"window,omitempty"`
	}{From: FormatTime(rep.FromMs), To: FormatTime(rep.ToMs), By: rep.By, Rules: rep.RulesLine(),
		Periods: rep.periods(RuleBackward), GPU: rep.periods(RuleHold), Window: rep.Window}, "", "  ")
	if err != nil {
		return err
	}
	head = append(head[:len(head)-len("\n}")], `,
  "rows": [`...)
	_, err = j.w.Write(head)
	return err
}

func (j *jsonSink) row(rep *Report, r Row) error {
	jr := jsonRow{From: FormatTime(r.FromMs), To: FormatTime(r.ToMs), Group: r.Group, Joules: r.Joules(), EnergyUJ: r.EnergyUJ,
		AvgW: optional(r.AvgW()), PeakW: float64(r.PeakMW) / 1000, DurationMs: r.ToMs - r.FromMs, Samples: r.Samples,
		Coverage: r.Coverage(), Gaps: r.Gaps, LongestGapMs: r.LongestGapMs, Series: r.Series, Window: r.Instance,
		BoundJ: float64(r.BoundUJ) / 1e6}
	if r.AnchoredSeries > 0 {
		jr.AnchoredJ, jr.AnchoredBoundJ = optional(float64(r.AnchoredUJ)/1e6), optional(float64(r.AnchoredBoundUJ)/1e6)
		jr.FromCounterJ, jr.FromStreamJ = optional(float64(r.FromCounterUJ)/1e6), optional(float64(r.FromStreamUJ)/1e6)
		jr.CounterMs, jr.BridgedMs, jr.UncoveredMs = &r.CounterMs, &r.BridgedMs, &r.UncoveredMs
	}
	if r.CounterSeries > 0 {
		jr.CounterJ, jr.CounterRatio = optional(float64(r.CounterUJ)/1e6), optional(r.CounterRatio())
	}
	if rep.Compare {
		jr.TrapezoidJ, jr.TrapezoidDiff = optional(r.TrapezoidUJ/1e6), optional(diffPct(r))
	}
	b, err := json.MarshalIndent(jr, "    ", "  ")
	if err != nil {
		return err
	}
	sep := ",\n    "
	if j.n == 0 {
		sep = "\n    "
	}
	j.n++
	_, err = io.WriteString(j.w, sep+string(b))
	return err
}

func (j *jsonSink) end(rep *Report) error {
	tail := "\n  ]"
	if j.n == 0 {
		tail = "]"
	}
	if len(rep.Warnings) > 0 {
		b, err := json.MarshalIndent(rep.Warnings, "  ", "  ")
		if err != nil {
			return err
		}
		tail += ",\n  \"warnings\": " + string(b)
	}
	_, err := io.WriteString(j.w, tail+"\n}\n")
	return err
}

// csvSink writes a report as CSV with a header line, row by row.
type csvSink struct {
	w  io.Writer
	cw *csv.Writer
}

func (c *csvSink) begin(rep *Report) error {
	c.cw = csv.NewWriter(c.w)
	header := []string{"from", "to", "window", "group", "joules", "joules_bound", "avg_w", "peak_w", "duration_ms", "samples", "coverage", "gaps", "longest_gap_ms",
		"anchored_joules", "anchored_bound_joules", "anchored_from_counter_joules", "anchored_from_stream_joules", "counter_ms", "bridged_ms", "uncovered_ms",
		"counter_joules", "integral_over_counter"}
	if rep.Compare {
		header = append(header, "trapezoid_joules", "trapezoid_diff_pct")
	}
	return c.cw.Write(header)
}

func (c *csvSink) row(rep *Report, r Row) error {
	joules := func(uj int64) string { return strconv.FormatFloat(float64(uj)/1e6, 'f', 6, 64) }
	anchoredCols := make([]string, 7)
	if r.AnchoredSeries > 0 {
		anchoredCols = []string{joules(r.AnchoredUJ), joules(r.AnchoredBoundUJ), joules(r.FromCounterUJ), joules(r.FromStreamUJ),
			strconv.FormatInt(r.CounterMs, 10), strconv.FormatInt(r.BridgedMs, 10), strconv.FormatInt(r.UncoveredMs, 10)}
	}
	counterJ, ratio := "", ""
	if r.CounterSeries > 0 {
		counterJ, ratio = joules(r.CounterUJ), fmtFloat(r.CounterRatio(), 6)
	}
	rec := []string{FormatTime(r.FromMs), FormatTime(r.ToMs), r.Instance, r.Group, strconv.FormatFloat(r.Joules(), 'f', 6, 64), joules(r.BoundUJ),
		fmtFloat(r.AvgW(), 6), strconv.FormatFloat(float64(r.PeakMW)/1000, 'f', 3, 64), strconv.FormatInt(r.ToMs-r.FromMs, 10),
		strconv.Itoa(r.Samples), strconv.FormatFloat(r.Coverage(), 'f', 6, 64), strconv.Itoa(r.Gaps), strconv.FormatInt(r.LongestGapMs, 10)}
	rec = append(rec, anchoredCols...)
	rec = append(rec, counterJ, ratio)
	if rep.Compare {
		rec = append(rec, strconv.FormatFloat(r.TrapezoidUJ/1e6, 'f', 6, 64), fmtFloat(diffPct(r), 6))
	}
	return c.cw.Write(rec)
}

func (c *csvSink) end(*Report) error {
	c.cw.Flush()
	return c.cw.Error()
}

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
