package chart

import (
	"cmp"
	"math/bits"
	"slices"

	"github.com/wattrec/wattrec/query"
)

// grid splits a window [from, to) into n columns of (nearly) equal
// width, one per pixel of the plot: column c is [start(c), start(c+1)).
type grid struct {
	from, to int64
	n        int
}

// newGrid is the grid of n columns over window, fewer when the window
// is shorter than n ms (a column is at least one ms).
func newGrid(window query.Interval, n int) grid {
	return grid{from: window.From, to: window.To, n: int(min(int64(n), window.Len()))}
}

// start is the first millisecond of column c (to for c == n).
func (g grid) start(c int) int64 {
	hi, lo := bits.Mul64(uint64(c), uint64(g.to-g.from))
	q, _ := bits.Div64(hi, lo, uint64(g.n))
	return g.from + int64(q)
}

// col is the column that holds t, from <= t < to: the last c with
// start(c) <= t, which is floor(((t - from + 1)·n − 1) / (to − from)).
func (g grid) col(t int64) int {
	hi, lo := bits.Mul64(uint64(t-g.from+1), uint64(g.n))
	lo, borrow := bits.Sub64(lo, 1, 0)
	hi -= borrow
	q, _ := bits.Div64(hi, lo, uint64(g.to-g.from))
	return int(q)
}

// colMs is the width of a column in ms (the narrowest one).
func (g grid) colMs() int64 { return (g.to - g.from) / int64(g.n) }

// bin sums up the values that held in one column.
type bin struct {
	valuedMs     int64 // ms of the column with a value
	sumUJ        int64 // Σ value × ms: the column's exact energy, mW·ms
	minMW, maxMW int64 // the range of the values, when valuedMs > 0
}

// mean is the column's average power in mW while it had a value.
func (b bin) mean() float64 { return float64(b.sumUJ) / float64(b.valuedMs) }

// columns is one series over a window, downsampled to the grid's
// columns: each column's range (min/max envelope) and exact mean of
// the values that held in it, from every step of the series, so that
// a 1 ms burst still sets its column's max. Its gaps are exact, except
// that gaps less than half a column apart are merged (the valued
// stretch between them is narrower than a pixel).
type columns struct {
	grid    grid
	bins    []bin
	gaps    []query.Interval // stretches of the window without a value, in order
	lastEnd int64            // end of the last step added

	c          int   // the column of the last step's end
	cFrom, cTo int64 // its span
}

func newColumns(g grid) *columns {
	return &columns{grid: g, bins: make([]bin, g.n), lastEnd: g.from, cFrom: g.start(0), cTo: g.start(1)}
}

// add takes the next step of the series (query.Steps' order: in time,
// disjoint, inside the grid's window).
func (s *columns) add(step query.Interval, mw int64) {
	if step.From > s.lastEnd {
		s.gap(query.Interval{From: s.lastEnd, To: step.From})
	}
	s.lastEnd = step.To
	for t := step.From; t < step.To; {
		for t >= s.cTo { // steps come in order: the columns only move on
			s.c++
			s.cFrom, s.cTo = s.cTo, s.grid.start(s.c+1)
		}
		end := min(step.To, s.cTo)
		b := &s.bins[s.c]
		if b.valuedMs == 0 {
			b.minMW, b.maxMW = mw, mw
		} else {
			b.minMW, b.maxMW = min(b.minMW, mw), max(b.maxMW, mw)
		}
		b.valuedMs += end - t
		b.sumUJ += (end - t) * mw
		t = end
	}
}

// finish ends the series at the end of the window.
func (s *columns) finish() {
	if s.lastEnd < s.grid.to {
		s.gap(query.Interval{From: s.lastEnd, To: s.grid.to})
	}
}

func (s *columns) gap(iv query.Interval) {
	if n := len(s.gaps); n > 0 && iv.From-s.gaps[n-1].To < max(1, s.grid.colMs()/2) {
		s.gaps[n-1].To = iv.To
		return
	}
	s.gaps = append(s.gaps, iv)
}

// unionGaps merges the gaps of several series (each in order) into one
// ordered list of disjoint stretches: where at least one of them has no
// value.
func unionGaps(lists ...[]query.Interval) []query.Interval {
	var all []query.Interval
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.SortFunc(all, func(a, b query.Interval) int { return cmp.Compare(a.From, b.From) })
	var out []query.Interval
	for _, iv := range all {
		if n := len(out); n > 0 && iv.From <= out[n-1].To {
			out[n-1].To = max(out[n-1].To, iv.To)
			continue
		}
		out = append(out, iv)
	}
	return out
}

// complement is the stretches of window outside gaps (ordered, disjoint).
func complement(window query.Interval, gaps []query.Interval) []query.Interval {
	var out []query.Interval
	at := window.From
	for _, g := range gaps {
		if g.From > at {
			out = append(out, query.Interval{From: at, To: g.From})
		}
		at = max(at, g.To)
	}
	if at < window.To {
		out = append(out, query.Interval{From: at, To: window.To})
	}
	return out
}

// trace is what one line of the plot draws: for each stretch without a
// gap of any of its series (a piece), each column's mean, minimum and
// maximum in watts. A line of several series sums them: its mean is the
// sum of their means, and its envelope lies between the sums of their
// minima and of their maxima, which bounds the sum.
type trace struct {
	pieces []piece
	peakW  float64 // the top of the envelope
}

// piece is one stretch of a line without a gap, [from, to) in Unix ms:
// the columns it covers, each drawn at x (its middle, inside the
// piece), and the piece's ends drawn with its first and last column's
// values.
type piece struct {
	from, to       float64
	x              []float64
	mean, min, max []float64
	spread         bool // whether the envelope has any width
}

// traceOf draws the series together as one line.
func traceOf(g grid, members []*columns) trace {
	var gapLists [][]query.Interval
	for _, m := range members {
		gapLists = append(gapLists, m.gaps)
	}
	var tr trace
	for _, iv := range complement(query.Interval{From: g.from, To: g.to}, unionGaps(gapLists...)) {
		var p piece
		flush := func(to int64) {
			if len(p.x) > 0 {
				p.to = float64(to)
				tr.pieces = append(tr.pieces, p)
			}
			p = piece{}
		}
		for c, last := g.col(iv.From), g.col(iv.To-1); c <= last; c++ {
			var mean, mn, mx float64
			ok := true
			for _, m := range members {
				b := m.bins[c]
				if b.valuedMs == 0 {
					ok = false
					break
				}
				mean += b.mean() / 1000
				mn += float64(b.minMW) / 1000
				mx += float64(b.maxMW) / 1000
			}
			x0, x1 := max(g.start(c), iv.From), min(g.start(c+1), iv.To)
			if !ok { // no value in the whole column: a gap merged away
				flush(x0)
				continue
			}
			if len(p.x) == 0 {
				p.from = float64(x0)
			}
			p.x = append(p.x, float64(x0+x1)/2)
			p.mean, p.min, p.max = append(p.mean, mean), append(p.min, mn), append(p.max, mx)
			p.spread = p.spread || mx > mn
			tr.peakW = max(tr.peakW, mx)
		}
		flush(iv.To)
	}
	return tr
}
