package query_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

func TestRule_Shift(t *testing.T) {
	for _, tc := range []struct {
		name         string
		r            query.Rule
		shift, reach int64
	}{
		{"Hold", query.Rule{Kind: query.RuleHold}, 0, 1},
		// A hold value has no period to shift by; a reading up to a
		// period after the window bounds a change inside it.
		{"HoldPeriod", query.Rule{Kind: query.RuleHold, PeriodMs: 100}, 0, 101},
		{"Backward100", query.Rule{Kind: query.RuleBackward, PeriodMs: 100}, 100, 101},
		{"Backward250", query.Rule{Kind: query.RuleBackward, PeriodMs: 250, Inferred: true}, 250, 251},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.Shift(); got != tc.shift {
				t.Errorf("Shift() = %d, want %d", got, tc.shift)
			}
			if got := tc.r.Reach(); got != tc.reach {
				t.Errorf("Reach() = %d, want %d", got, tc.reach)
			}
		})
	}
}

// TestRule_Reach checks what Reach promises: readings stamped at or after
// a window's end + Reach change nothing in the integral of the window
// (the trapezoid aside, which interpolates towards the next reading),
// while the last reading before it can still matter.
func TestRule_Reach(t *testing.T) {
	const end = 10 * sec
	for _, rule := range []query.Rule{
		{Kind: query.RuleHold},
		{Kind: query.RuleBackward, PeriodMs: 100},
		{Kind: query.RuleBackward, PeriodMs: 1500},
	} {
		t.Run(fmt.Sprintf("%s/%d", rule.Kind, rule.PeriodMs), func(t *testing.T) {
			// The reading at end + Reach - 1 takes effect exactly at the
			// window's end: it holds no energy in the window, but the
			// trapezoid interpolates the value before it towards it.
			s := query.Spec{Rule: rule, Sessions: []query.Interval{{From: 0, To: 100 * sec}}}
			w := query.Interval{From: 0, To: end}
			last := query.Point{T: end + rule.Reach() - 1, MW: 300_000}
			base := []query.Point{{T: 0, MW: 100_000}}
			without, with := integrate(s, w, base), integrate(s, w, append(base, last))
			if with.EnergyUJ != without.EnergyUJ || with.ValuedMs != without.ValuedMs || with.Samples != without.Samples {
				t.Fatalf("a reading taking effect at the end changed the integral: %+v vs %+v", with, without)
			}
			if with.TrapezoidUJ <= without.TrapezoidUJ {
				t.Fatalf("trapezoid %v with the reading at end+Reach-1, %v without: want it to interpolate towards 300 W",
					with.TrapezoidUJ, without.TrapezoidUJ)
			}

			// Random series: cutting every reading at or after end + Reach
			// leaves the integral as it was.
			rng := rand.New(rand.NewPCG(uint64(rule.PeriodMs), 3))
			for i := 0; i < 300; i++ {
				_, pts := randomSeries(rng)
				s.Sessions = randomSessions(rng)
				w := query.Interval{From: rng.Int64N(3000), To: 3000 + rng.Int64N(20_000)}
				cut := w.To + rule.Reach()
				n, _ := slices.BinarySearchFunc(pts, cut, func(p query.Point, t int64) int {
					if p.T < t {
						return -1
					}
					return 1
				})
				all, fed := integrate(s, w, pts), integrate(s, w, pts[:n])
				all.TrapezoidUJ, fed.TrapezoidUJ = 0, 0
				if all != fed {
					t.Fatalf("case %d, window %+v: every reading %+v,\nonly those before end+Reach %+v", i, w, all, fed)
				}
			}
		})
	}
}

// randomSessions is a few live sessions with gaps, over the times
// randomSeries uses.
func randomSessions(rng *rand.Rand) []query.Interval {
	var out []query.Interval
	at := rng.Int64N(1000)
	for range 1 + rng.IntN(4) {
		start := at + rng.Int64N(2000)
		end := start + 1 + rng.Int64N(8000)
		out = append(out, query.Interval{From: start, To: end})
		at = end
	}
	return out
}

func TestRulesSummary(t *testing.T) {
	got := query.RulesSummary()
	for _, want := range []string{"GPU", "CPU/DRAM", "never across a gap", query.ValueMeaning(store.KindGPU), query.ValueMeaning(store.KindCPU)} {
		if !strings.Contains(got, want) {
			t.Errorf("RulesSummary() = %q, which lacks %q", got, want)
		}
	}
	if strings.Contains(got, "\n") {
		t.Errorf("RulesSummary() = %q: want one line", got)
	}
	// The GPU rule comes first, as the rule kinds are numbered.
	if strings.Index(got, "GPU") > strings.Index(got, "CPU/DRAM") {
		t.Errorf("RulesSummary() = %q: want GPU before CPU/DRAM", got)
	}
}

func TestRulesText(t *testing.T) {
	const indent = 10 // the label column
	labels := []string{"GPU", "CPU/DRAM", "Both"}
	// Unwrapped: one line per rule and one for what both share.
	wide := query.RulesText(1 << 20)
	if got := strings.Split(strings.TrimSuffix(wide, "\n"), "\n"); len(got) != len(labels) {
		t.Fatalf("RulesText(huge) has %d lines, want %d:\n%s", len(got), len(labels), wide)
	}
	for _, width := range []int{60, 82} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			text := query.RulesText(width)
			if !strings.HasSuffix(text, "\n") {
				t.Fatalf("RulesText(%d) does not end in a newline", width)
			}
			lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
			var rows []string // the labels, in order
			for i, line := range lines {
				if n := utf8.RuneCountInString(line); n > width {
					t.Errorf("line %d is %d columns, over %d: %q", i, n, width, line)
				}
				if line != strings.TrimRight(line, " ") {
					t.Errorf("line %d has trailing blanks: %q", i, line)
				}
				if len(line) <= indent || line[indent] == ' ' {
					t.Fatalf("line %d has no text in the text column: %q", i, line)
				}
				if label := strings.TrimSpace(line[:indent]); label != "" {
					rows = append(rows, label)
				} else if i == 0 {
					t.Fatalf("the first line has no label: %q", line)
				} else if prev, word := lines[i-1], strings.Fields(line)[0]; len(prev)+1+len(word) <= width {
					// Greedy wrapping: the word would have fitted above.
					t.Errorf("line %d starts with %q, which fits on line %d (%d + 1 + %d <= %d)", i, word, i-1, len(prev), len(word), width)
				}
			}
			if !slices.Equal(rows, labels) {
				t.Errorf("row labels %q, want %q", rows, labels)
			}
			// Wrapping loses and adds no word.
			if got, want := strings.Fields(text), strings.Fields(wide); !slices.Equal(got, want) {
				t.Errorf("RulesText(%d) words differ from the unwrapped text:\n%s\nvs\n%s", width, text, wide)
			}
			if width == 60 && len(lines) <= len(labels) {
				t.Errorf("RulesText(60) has %d lines: the rules did not wrap", len(lines))
			}
		})
	}
}

func TestValueMeaning(t *testing.T) {
	gpu, cpu, dram := query.ValueMeaning(store.KindGPU), query.ValueMeaning(store.KindCPU), query.ValueMeaning(store.KindDRAM)
	if gpu == "" || cpu == "" {
		t.Fatalf("ValueMeaning: GPU %q, CPU %q: want both set", gpu, cpu)
	}
	if gpu == cpu {
		t.Errorf("ValueMeaning(GPU) = ValueMeaning(CPU) = %q: the rules differ", gpu)
	}
	if dram != cpu {
		t.Errorf("ValueMeaning(DRAM) = %q, want CPU's %q: DRAM follows the CPU rule", dram, cpu)
	}
	// The meaning of a value is the rule's summary, nothing else.
	if !strings.Contains(query.RulesSummary(), "GPU: "+gpu) || !strings.Contains(query.RulesSummary(), "CPU/DRAM: "+cpu) {
		t.Errorf("RulesSummary() %q does not carry GPU %q and CPU/DRAM %q", query.RulesSummary(), gpu, cpu)
	}
}
