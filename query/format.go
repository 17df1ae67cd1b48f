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
	"time"
)

// Output formats of a report.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatCSV   = "csv"
)

// Write renders the report as FormatTable, FormatJSON or FormatCSV. With
// compare set, rows also carry the trapezoid integral and its relative
// difference from the exact (hold) integral.
func (rep *Report) Write(w io.Writer, format string, compare bool) error {
	switch format {
	case FormatTable, "":
		return rep.writeTable(w, compare)
	case FormatJSON:
		return rep.writeJSON(w, compare)
	case FormatCSV:
		return rep.writeCSV(w, compare)
	}
	return fmt.Errorf("format %q: want table, json or csv", format)
}

func (rep *Report) bucketed() bool {
	return len(rep.Rows) > 0 && (rep.Rows[0].FromMs != rep.FromMs || rep.Rows[len(rep.Rows)-1].ToMs != rep.ToMs || rep.Rows[0].ToMs != rep.ToMs)
}

// Rules describes the integration rules used, for the report's header.
func (rep *Report) Rules() string {
	var b strings.Builder
	b.WriteString("GPU: a value holds until the next reading; CPU/DRAM: a value covers the poll period before it and holds until the next period; never across a gap")
	periods := map[string][]string{}
	for name, p := range rep.Periods {
		how := "inferred"
		if !rep.Inferred[name] {
			how = "assumed"
		}
		key := fmt.Sprintf("%s %s", time.Duration(p)*time.Millisecond, how)
		periods[key] = append(periods[key], name)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range periods {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "; CPU period %s (%d series)", k, len(periods[k]))
	}
	return b.String()
}

func diffPct(r Row) float64 {
	if r.EnergyUJ == 0 {
		return math.NaN()
	}
	return (r.TrapezoidUJ - float64(r.EnergyUJ)) / float64(r.EnergyUJ) * 100
}

func (rep *Report) writeTable(w io.Writer, compare bool) error {
	fmt.Fprintf(w, "window %s → %s (%s)\n", FormatTime(rep.FromMs), FormatTime(rep.ToMs), durationHuman(rep.ToMs-rep.FromMs))
	fmt.Fprintf(w, "rules  %s\n\n", rep.Rules())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	bucketed := rep.bucketed()
	header := []string{"group", "joules", "avg W", "peak W", "duration", "samples", "coverage", "gaps", "longest gap"}
	if compare {
		header = append(header[:2], append([]string{"trapezoid J", "diff %"}, header[2:]...)...)
	}
	if bucketed {
		header = append([]string{"bucket"}, header...)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, r := range rep.Rows {
		cols := []string{r.Group, fmt.Sprintf("%.3f", r.Joules()), fmtFloat(r.AvgW(), 3), fmt.Sprintf("%.3f", float64(r.PeakMW)/1000),
			durationHuman(r.ToMs - r.FromMs), strconv.Itoa(r.Samples), fmt.Sprintf("%.4f", r.Coverage()), strconv.Itoa(r.Gaps), durationHuman(r.LongestGapMs)}
		if compare {
			cols = append(cols[:2], append([]string{fmt.Sprintf("%.3f", r.TrapezoidUJ/1e6), fmtFloat(diffPct(r), 4)}, cols[2:]...)...)
		}
		if bucketed {
			cols = append([]string{FormatTime(r.FromMs)}, cols...)
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t")
	}
	return tw.Flush()
}

func fmtFloat(f float64, prec int) string {
	if math.IsNaN(f) {
		return "-"
	}
	return strconv.FormatFloat(f, 'f', prec, 64)
}

// jsonRow is a row's JSON form; NaN averages become null.
type jsonRow struct {
	From          string   `json:"from"`
	To            string   `json:"to"`
	Group         string   `json:"group"`
	Joules        float64  `json:"joules"`
	EnergyUJ      int64    `json:"energy_uj"`
	AvgW          *float64 `json:"avg_w"`
	PeakW         float64  `json:"peak_w"`
	DurationMs    int64    `json:"duration_ms"`
	Samples       int      `json:"samples"`
	Coverage      float64  `json:"coverage"`
	Gaps          int      `json:"gaps"`
	LongestGapMs  int64    `json:"longest_gap_ms"`
	Series        int      `json:"series"`
	TrapezoidJ    *float64 `json:"trapezoid_joules,omitempty"`
	TrapezoidDiff *float64 `json:"trapezoid_diff_pct,omitempty"`
}

func optional(f float64) *float64 {
	if math.IsNaN(f) {
		return nil
	}
	return &f
}

func (rep *Report) writeJSON(w io.Writer, compare bool) error {
	out := struct {
		From    string           `json:"from"`
		To      string           `json:"to"`
		By      string           `json:"by"`
		Rules   string           `json:"rules"`
		Periods map[string]int64 `json:"cpu_period_ms,omitempty"`
		Rows    []jsonRow        `json:"rows"`
	}{From: FormatTime(rep.FromMs), To: FormatTime(rep.ToMs), By: rep.By, Rules: rep.Rules(), Periods: rep.Periods}
	for _, r := range rep.Rows {
		jr := jsonRow{From: FormatTime(r.FromMs), To: FormatTime(r.ToMs), Group: r.Group, Joules: r.Joules(), EnergyUJ: r.EnergyUJ,
			AvgW: optional(r.AvgW()), PeakW: float64(r.PeakMW) / 1000, DurationMs: r.ToMs - r.FromMs, Samples: r.Samples,
			Coverage: r.Coverage(), Gaps: r.Gaps, LongestGapMs: r.LongestGapMs, Series: r.Series}
		if compare {
			jr.TrapezoidJ, jr.TrapezoidDiff = optional(r.TrapezoidUJ/1e6), optional(diffPct(r))
		}
		out.Rows = append(out.Rows, jr)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func (rep *Report) writeCSV(w io.Writer, compare bool) error {
	cw := csv.NewWriter(w)
	header := []string{"from", "to", "group", "joules", "avg_w", "peak_w", "duration_ms", "samples", "coverage", "gaps", "longest_gap_ms"}
	if compare {
		header = append(header, "trapezoid_joules", "trapezoid_diff_pct")
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, r := range rep.Rows {
		rec := []string{FormatTime(r.FromMs), FormatTime(r.ToMs), r.Group, strconv.FormatFloat(r.Joules(), 'f', 6, 64),
			fmtFloat(r.AvgW(), 6), strconv.FormatFloat(float64(r.PeakMW)/1000, 'f', 3, 64), strconv.FormatInt(r.ToMs-r.FromMs, 10),
			strconv.Itoa(r.Samples), strconv.FormatFloat(r.Coverage(), 'f', 6, 64), strconv.Itoa(r.Gaps), strconv.FormatInt(r.LongestGapMs, 10)}
		if compare {
			rec = append(rec, strconv.FormatFloat(r.TrapezoidUJ/1e6, 'f', 6, 64), fmtFloat(diffPct(r), 6))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
