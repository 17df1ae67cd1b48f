package query

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/wattrec/wattrec/store"
)

// RuleKind is one of the two ways a zeusd value covers time.
type RuleKind uint8

// The integration rules, one per kind of series. Their wording is in
// ruleText; every description of the rules (help, report headers, export
// metadata, README) is generated from it.
const (
	RuleHold     RuleKind = iota // GPU series
	RuleBackward                 // CPU package and DRAM series
)

// ruleText is the one wording of the rules: which series follow each,
// the one-line summary, and the full statement.
var ruleText = [...]struct{ name, kinds, summary, detail string }{
	RuleHold: {"hold", "GPU", "a value holds until the next reading",
		"zeusd sends a value only when it changes: it holds from its time until the next reading of that device, starting with the last value before the window."},
	RuleBackward: {"backward", "CPU/DRAM", "a value covers the poll period before it and holds until the next period",
		"a value is the average over the poll period that ended at its time: it covers (t - period, t] and holds until the next reading's period begins. The period is inferred from the spacing of readings, or given."},
}

// sessionRule is what both rules share.
const sessionRule = "a value holds only inside the live stream session it arrived in: a disconnection is a gap with no energy, and so is the start of a session before its first reading."

func (k RuleKind) String() string {
	if int(k) < len(ruleText) {
		return ruleText[k].name
	}
	return fmt.Sprintf("rule(%d)", uint8(k))
}

// Rule is how the readings of one series cover time.
type Rule struct {
	Kind RuleKind
	// PeriodMs is the daemon's poll period of the series: what a
	// RuleBackward value averages over, and for both rules how late a
	// change can be seen (the error bound, see Result.BoundUJ).
	PeriodMs int64
	// Inferred says PeriodMs was inferred from the series' readings, not
	// given or assumed.
	Inferred bool
}

// Shift is how far a value's effective start lies before its time: the
// poll period for RuleBackward, zero for RuleHold.
func (r Rule) Shift() int64 {
	if r.Kind == RuleBackward {
		return r.PeriodMs
	}
	return 0
}

// Reach is how far past a window's end a reading's time may lie and the
// reading still bear on the window (cover part of it, or bound a change
// that may have happened inside it): readings with time < end + Reach
// must be fed to integrate up to end.
func (r Rule) Reach() int64 { return r.PeriodMs + 1 }

// RulesSummary is the rules in one line, as report headers print them.
func RulesSummary() string {
	parts := make([]string, len(ruleText))
	for i, t := range ruleText {
		parts[i] = t.kinds + ": " + t.summary
	}
	return strings.Join(parts, "; ") + "; never across a gap"
}

// RulesText is the full statement of the rules, wrapped to width
// columns with the series they apply to in a left column.
func RulesText(width int) string {
	var b strings.Builder
	row := func(label, text string) {
		const indent = 10
		line := fmt.Sprintf("%-*s", indent, label)
		for _, word := range strings.Fields(text) {
			if len(line)+1+len(word) > width && strings.TrimSpace(line) != "" && len(line) > indent {
				b.WriteString(strings.TrimRight(line, " ") + "\n")
				line = strings.Repeat(" ", indent)
			}
			if len(line) > indent {
				line += " "
			}
			line += word
		}
		b.WriteString(line + "\n")
	}
	for _, t := range ruleText {
		row(t.kinds, t.detail)
	}
	row("Both", sessionRule)
	return b.String()
}

// ValueMeaning says what one stored value of a series of kind k stands
// for, as the export metadata describes power columns.
func ValueMeaning(k store.Kind) string {
	return ruleText[ruleKindOf(k)].summary
}

func ruleKindOf(k store.Kind) RuleKind {
	if k == store.KindGPU {
		return RuleHold
	}
	return RuleBackward
}

// zeusd's default poll periods (CPU 10 Hz, GPU 20 Hz), assumed when a
// series has too few readings to infer its own.
const (
	DefaultCPUPeriodMs = 100
	DefaultGPUPeriodMs = 50
)

// Periods fixes the poll periods of a read; zero means inferred per
// series.
type Periods struct {
	CPUMs int64 // CPU and DRAM: the backward rule's period
	GPUMs int64 // GPU: for the error bound only (the hold rule has none)
}

// ruleFor chooses the rule of series k: GPU values hold; CPU and DRAM
// values are backward. The poll period is the given one when it is set,
// else the period inferred from the readings near from, else zeusd's
// default.
func ruleFor(ctx context.Context, db *store.DB, k store.SeriesKey, periods Periods, from int64) (Rule, error) {
	kind, given, def := ruleKindOf(k.Kind), periods.CPUMs, int64(DefaultCPUPeriodMs)
	if kind == RuleHold {
		given, def = periods.GPUMs, DefaultGPUPeriodMs
	}
	if given > 0 {
		return Rule{Kind: kind, PeriodMs: given}, nil
	}
	p, err := inferPeriod(ctx, db, k, from)
	if err != nil || p == 0 {
		return Rule{Kind: kind, PeriodMs: def}, err
	}
	return Rule{Kind: kind, PeriodMs: p, Inferred: true}, nil
}

// inferPeriod finds a series' poll period: the most common positive
// spacing of daemon timestamps among its first readings from near the
// window (zeusd sends values on change, which real power readings almost
// always are, so most spacings are one period; a flat stretch gives a
// multiple, which only makes the error bound safer). 0 means too few
// readings to tell.
func inferPeriod(ctx context.Context, db *store.DB, k store.SeriesKey, from int64) (int64, error) {
	const want = 512
	counts := map[int64]int{}
	prev, n := int64(math.MinInt64), 0
	errEnough := errors.New("enough")
	scan := func(start int64) error {
		// In the chunks' own transaction: a few chunks, read quickly.
		err := db.ScanChunks(ctx, k, start, math.MaxInt64, func(c *store.Chunk) error {
			return c.Readings(func(r *store.Reading) error {
				if r.Seed || r.TimeMs < start {
					return nil
				}
				if d := r.DaemonMs - prev; prev != math.MinInt64 && d > 0 && d <= maxSpacingMs {
					counts[d]++
					n++
				}
				prev = r.DaemonMs
				if n >= want {
					return errEnough
				}
				return nil
			})
		})
		if errors.Is(err, errEnough) {
			return nil
		}
		return err
	}
	if err := scan(max(from, math.MinInt64+60_000) - 60_000); err != nil {
		return 0, err
	}
	if n < 8 { // too little near the window: use the whole series
		clear(counts)
		prev, n = math.MinInt64, 0
		if err := scan(math.MinInt64); err != nil {
			return 0, err
		}
	}
	if n < 3 {
		return 0, nil
	}
	return mostCommon(counts), nil
}

// periodsLine describes the poll periods of rules (series name → rule),
// for the report header: "; CPU period 100ms inferred (2 series); GPU
// period 50ms inferred (4 series)".
func periodsLine(rules map[string]Rule) string {
	periods := map[string]int{}
	for _, r := range rules {
		how := "inferred"
		if !r.Inferred {
			how = "assumed"
		}
		kind := "CPU"
		if r.Kind == RuleHold {
			kind = "GPU"
		}
		periods[fmt.Sprintf("%s period %s %s", kind, time.Duration(r.PeriodMs)*time.Millisecond, how)]++
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(periods)) {
		fmt.Fprintf(&b, "; %s (%d series)", k, periods[k])
	}
	return b.String()
}
