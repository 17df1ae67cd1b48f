package query

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/wattrec/wattrec/store"
)

// Counter-anchored energy: where a series' hardware energy counter was
// read at least twice inside a row's window (or at its edges), the
// energy between its first and last reading there is the counter's
// delta, exact up to the counter's resolution and the reading times, and
// only the stretches before the first and after the last come from the
// stream. A stretch of the stream that is missing (a gap) between two
// counter readings is bridged: the counter counted it. A counter
// interval is not used where the counter went down (a driver reload) or
// disagrees with a stream that covers it by more than the bounds of both
// and CounterTolerance; the stream stands in and the report warns. Where
// anchoring bridges no gap and does not tighten the bound, the stream's
// figure is the anchored one.

// CounterTolerance is the relative disagreement between a counter delta
// and the stream's integral over the same interval, beyond the error
// bounds of both, above which the counter is not used there.
const CounterTolerance = 0.02

// Limits on what a counter anchor may rest on.
const (
	// counterMaxRTTUs: a counter reading is stamped at the midpoint of its
	// request; a slow round trip makes that stamp, and so the delta's
	// interval, uncertain: such a reading is no anchor.
	counterMaxRTTUs = 50_000
	// counterEdgeMs: how far outside a window a counter reading may lie
	// and still anchor its edge.
	counterEdgeMs = 250
	// gpuCounterUJ and cpuCounterUJ are the counters' resolutions: a
	// GPU's counter counts whole mJ (NVML), a CPU's or DRAM domain's
	// RAPL units of 2^-14 J (61 µJ).
	gpuCounterUJ = 1000
	cpuCounterUJ = 62
)

// streamOnly is the anchored figure of a series without usable counter
// readings: the stream's.
func streamOnly(res Result) Anchoring {
	return Anchoring{AnchoredUJ: res.EnergyUJ, AnchoredBoundUJ: res.BoundUJ, FromStreamUJ: res.EnergyUJ, UncoveredMs: res.WindowMs - res.ValuedMs}
}

// anchorReading is a counter reading used as an anchor, with the
// uncertainty of its time and the most power the series had around it.
type anchorReading struct {
	TakenMs  int64 // the reading's time, or the window's edge it anchors
	EnergyUJ int64
	uMs      int64 // |true reading time − TakenMs| <= uMs
	peakMW   int64 // at least the largest value held in [TakenMs − uMs, TakenMs + uMs]
	clamped  bool  // taken outside the window where no stream was live, moved to its edge
}

// span is the part of a counter interval (or an edge stretch) that lies
// inside or outside the window: the stream's integral over it.
type span struct{ in, out Result }

func (s *span) add(r Result, inside bool) {
	if inside {
		s.in = sumUp(s.in, r)
	} else {
		s.out = sumUp(s.out, r)
	}
}

// all is the span's integral inside and outside the window together.
func (s *span) all() Result { return sumUp(s.in, s.out) }

// sumUp adds the figures anchoring uses of two stretches of one series.
func sumUp(a, b Result) Result {
	a.EnergyUJ += b.EnergyUJ
	a.BoundUJ += b.BoundUJ
	a.WindowMs += b.WindowMs
	a.ValuedMs += b.ValuedMs
	a.PeakMW = max(a.PeakMW, b.PeakMW)
	return a
}

// peak is the largest value held in the span, or fallback where the
// stream has no value in part of it.
func (s *span) peak(fallback int64) int64 {
	p := max(s.in.PeakMW, s.out.PeakMW)
	if s.in.ValuedMs < s.in.WindowMs || s.out.ValuedMs < s.out.WindowMs {
		p = max(p, fallback)
	}
	return p
}

// unit is a run of consecutive counter intervals [lo, hi] (interval i
// lies between anchors i and i+1) judged as one: the stream's integral
// over it, and whether its counter delta is used.
type unit struct {
	lo, hi int
	sp     span
	used   bool
}

// anchorSeries computes series k's counter-anchored energy over window
// from its anchors there (see selectAnchors); res is the stream's
// integral of the window. An anchor just outside the window while the
// stream was live counts from its own time: the stream's integral of the
// stretch outside is taken off its interval's delta. warn takes one
// message per counter interval that is not used.
//
// The counter intervals inside one stream session are judged together,
// as a run (its first and last interval apart, so that the power at its
// ends is known closely), which needs the stream's integral at a few
// anchors only and keeps the chunks between them undecoded; each of its
// intervals must still count forwards and no more than the device's peak
// power can give (from the chunks' headers). A run that fails is judged
// interval by interval, and so is every interval that spans a gap.
func anchorSeries(ctx context.Context, db *store.DB, k store.SeriesKey, spec Spec, window Interval, res Result, as []anchorReading, warn func(string)) (Anchoring, error) {
	if len(as) < 2 {
		return streamOnly(res), nil
	}
	whole := Interval{min(window.From, as[0].TakenMs), max(window.To, as[len(as)-1].TakenMs)}
	units, edges, err := integrateUnits(ctx, db, k, spec, window, whole, as, runUnits(spec.Sessions, as))
	if err != nil {
		return Anchoring{}, err
	}
	resolution := int64(cpuCounterUJ)
	if k.Kind == store.KindGPU {
		resolution = gpuCounterUJ
	}
	var out Anchoring
	var judged []unit
	for _, u := range units {
		why, err := judge(ctx, db, k, as, u, resolution)
		if err != nil {
			return Anchoring{}, err
		}
		if why == "" || u.lo == u.hi {
			u.used = why == ""
			if !u.used {
				warn(fmt.Sprintf("%s: hardware counter %s → %s %s: the stream is used there", k, FormatTime(as[u.lo].TakenMs), FormatTime(as[u.hi+1].TakenMs), why))
			}
			out.addCheck(as, u)
			judged = append(judged, u)
			continue
		}
		// Interval by interval.
		single := make([]unit, 0, u.hi-u.lo+1)
		for i := u.lo; i <= u.hi; i++ {
			single = append(single, unit{lo: i, hi: i})
		}
		parts, _, err := integrateUnits(ctx, db, k, spec, window, Interval{as[u.lo].TakenMs, as[u.hi+1].TakenMs}, as, single)
		if err != nil {
			return Anchoring{}, err
		}
		for _, p := range parts {
			why, err := judge(ctx, db, k, as, p, resolution)
			if err != nil {
				return Anchoring{}, err
			}
			p.used = why == ""
			if !p.used {
				warn(fmt.Sprintf("%s: hardware counter %s → %s %s: the stream is used there", k, FormatTime(as[p.lo].TakenMs), FormatTime(as[p.hi+1].TakenMs), why))
			}
			out.addCheck(as, p)
			judged = append(judged, p)
		}
	}

	// The power around each anchor: at most the largest value of the
	// spans on either side of it.
	for j, u := range judged {
		before := edges[0]
		if j > 0 {
			before = judged[j-1].sp
		}
		as[u.lo].peakMW = max(before.peak(res.PeakMW), u.sp.peak(res.PeakMW))
	}
	last := judged[len(judged)-1]
	as[last.hi+1].peakMW = max(last.sp.peak(res.PeakMW), edges[1].peak(res.PeakMW))

	stream := func(r Result) {
		out.AnchoredUJ += r.EnergyUJ
		out.FromStreamUJ += r.EnergyUJ
		out.AnchoredBoundUJ += r.BoundUJ
		out.UncoveredMs += r.WindowMs - r.ValuedMs
	}
	stream(edges[0].in)
	stream(edges[1].in)
	runFrom := -1 // the first anchor of the current run of used units
	endRun := func(at int) {
		if runFrom >= 0 {
			a, b := as[runFrom], as[at]
			out.AnchoredBoundUJ += resolution + a.uMs*a.peakMW + b.uMs*b.peakMW
			runFrom = -1
		}
	}
	for _, u := range judged {
		if !u.used {
			stream(u.sp.in)
			endRun(u.lo)
			continue
		}
		if runFrom < 0 {
			runFrom = u.lo
		}
		delta := as[u.hi+1].EnergyUJ - as[u.lo].EnergyUJ
		out.AnchoredSeries = 1
		out.AnchoredUJ += delta - u.sp.out.EnergyUJ
		out.FromCounterUJ += delta - u.sp.out.EnergyUJ
		out.AnchoredBoundUJ += u.sp.out.BoundUJ
		out.CounterMs += u.sp.in.WindowMs
		out.BridgedMs += u.sp.in.WindowMs - u.sp.in.ValuedMs
	}
	endRun(len(as) - 1)
	// Without a gap to bridge, anchoring that does not tighten the bound
	// (CPU values are exact period averages: only the edges are
	// uncertain, and the counter's own edges are no better) is left out.
	if out.AnchoredSeries == 0 || (out.BridgedMs == 0 && out.AnchoredBoundUJ >= res.BoundUJ) {
		o := streamOnly(res)
		o.CounterSeries, o.CounterUJ, o.CounterIntegralUJ = out.CounterSeries, out.CounterUJ, out.CounterIntegralUJ
		return o, nil
	}
	return out, nil
}

// addCheck adds a unit the stream covers completely to the check of the
// stream against the counter.
func (a *Anchoring) addCheck(as []anchorReading, u unit) {
	delta := as[u.hi+1].EnergyUJ - as[u.lo].EnergyUJ
	all := u.sp.all()
	if all.ValuedMs == all.WindowMs && delta >= 0 && u.sp.in.WindowMs > 0 && !as[u.lo].clamped && !as[u.hi+1].clamped {
		a.CounterSeries = 1
		a.CounterUJ += delta
		a.CounterIntegralUJ += all.EnergyUJ
	}
}

// judge says why the counter delta of unit u is not to be used, or "".
// Its anchors' peaks are not known yet: the timing terms of the slack use
// the unit's own peak.
func judge(ctx context.Context, db *store.DB, k store.SeriesKey, as []anchorReading, u unit, resolution int64) (string, error) {
	a, b, all := as[u.lo], as[u.hi+1], u.sp.all()
	delta := b.EnergyUJ - a.EnergyUJ
	peak := u.sp.peak(0)
	slack := float64(all.BoundUJ+resolution+(a.uMs+b.uMs)*peak) + CounterTolerance*math.Abs(float64(delta))
	full := all.ValuedMs == all.WindowMs
	switch {
	case u.sp.in.WindowMs == 0:
		return "lies outside the window", nil
	case delta < 0:
		return fmt.Sprintf("went down by %.3f J (a driver reload or daemon restart)", float64(-delta)/1e6), nil
	case full && math.Abs(float64(all.EnergyUJ-delta)) > slack:
		return fmt.Sprintf("counted %.3f J where the stream, which covers it all, has %.3f J ± %.3f J", float64(delta)/1e6, all.Joules(), float64(all.BoundUJ)/1e6), nil
	case !full && float64(all.EnergyUJ-delta) > slack:
		return fmt.Sprintf("counted %.3f J, less than the %.3f J the stream has in %.0f%% of it", float64(delta)/1e6, all.Joules(), 100*all.Coverage()), nil
	case u.sp.out.ValuedMs < u.sp.out.WindowMs:
		return "reaches outside the window where the stream has no value to take off", nil
	}
	if u.lo == u.hi {
		return "", nil
	}
	// A run: each interval forwards, and within the device's peak.
	return plausible(ctx, db, k, as[u.lo:u.hi+2], resolution)
}

// plausible checks each counter interval between consecutive anchors of
// as: the counter must not go down, nor count more than the largest
// value the stream had around the interval (from the chunks' headers,
// which are read without decoding) could give over it.
func plausible(ctx context.Context, db *store.DB, k store.SeriesKey, as []anchorReading, resolution int64) (string, error) {
	for i := 1; i < len(as); i++ {
		if d := as[i].EnergyUJ - as[i-1].EnergyUJ; d < 0 {
			return fmt.Sprintf("went down by %.3f J between %s and %s", float64(-d)/1e6, FormatTime(as[i-1].TakenMs), FormatTime(as[i].TakenMs)), nil
		}
	}
	// The largest value of each chunk, with the value it carries in.
	type extent struct{ from, to, peak int64 }
	var chunks []extent
	carry := int64(0)
	err := db.ScanChunks(ctx, k, as[0].TakenMs, as[len(as)-1].TakenMs+1, func(c *store.Chunk) error {
		chunks = append(chunks, extent{c.FirstMs, c.LastMs, max(carry, c.PeakMW, c.FirstMW, c.LastMW)})
		carry = c.LastMW
		return nil
	})
	if err != nil {
		return "", err
	}
	j := 0
	for i := 1; i < len(as); i++ {
		a, b := as[i-1], as[i]
		for j < len(chunks)-1 && chunks[j+1].from <= a.TakenMs {
			j++
		}
		peak := int64(0)
		for m := j; m < len(chunks) && chunks[m].from <= b.TakenMs; m++ {
			peak = max(peak, chunks[m].peak)
		}
		if m := min(len(chunks)-1, j+1); len(chunks) > 0 && chunks[m].from > b.TakenMs {
			peak = max(peak, chunks[m].peak) // a backward value after b covers part of the interval
		}
		d := b.EnergyUJ - a.EnergyUJ
		limit := float64(peak*(b.TakenMs-a.TakenMs+a.uMs+b.uMs)+resolution) * (1 + CounterTolerance)
		if float64(d) > limit {
			return fmt.Sprintf("counted %.3f J between %s and %s, more than %.3f W, the most the stream had there, can give",
				float64(d)/1e6, FormatTime(a.TakenMs), FormatTime(b.TakenMs), float64(peak)/1000), nil
		}
	}
	return "", nil
}

// runUnits groups the counter intervals between anchors as: the
// intervals inside one stream session form a run, judged as its first
// interval, its middle and its last interval; an interval that spans a
// gap or a session's edge is a unit of its own.
func runUnits(sessions []Interval, as []anchorReading) []unit {
	n := len(as) - 1
	inside := func(i int) int { // the session interval i lies in, or -1
		a, b := as[i].TakenMs, as[i+1].TakenMs
		for s, ses := range sessions {
			if ses.From <= a && b <= ses.To {
				return s
			}
		}
		return -1
	}
	var out []unit
	for i := 0; i < n; {
		s := inside(i)
		j := i
		for s >= 0 && j+1 < n && inside(j+1) == s {
			j++
		}
		switch {
		case j == i:
			out = append(out, unit{lo: i, hi: i})
		case j == i+1:
			out = append(out, unit{lo: i, hi: i}, unit{lo: j, hi: j})
		default:
			out = append(out, unit{lo: i, hi: i}, unit{lo: i + 1, hi: j - 1}, unit{lo: j, hi: j})
		}
		i = j + 1
	}
	return out
}

// integrateUnits integrates the stream over each unit (in order, without
// gaps between them) and over what whole holds outside them (before the
// first unit's first anchor, after the last's last), in one scan of whole
// cut at the units' ends and the window's edges.
func integrateUnits(ctx context.Context, db *store.DB, k store.SeriesKey, spec Spec, window, whole Interval, as []anchorReading, units []unit) ([]unit, [2]span, error) {
	last := as[units[len(units)-1].hi+1].TakenMs
	cuts := []int64{window.From, window.To}
	for _, u := range units {
		cuts = append(cuts, as[u.lo].TakenMs)
	}
	cuts = append(cuts, last)
	var edges [2]span
	i := -1 // the unit of the current piece; -1 before the first, len(units) after the last
	err := integrateBins(ctx, db, k, spec, binner{at: whole.From, to: whole.To, cuts: sortedInside(cuts, whole)}, func(bin Interval, r Result) error {
		for i+1 < len(units) && as[units[i+1].lo].TakenMs <= bin.From {
			i++
		}
		if i >= 0 && bin.From >= as[units[i].hi+1].TakenMs {
			i = len(units)
		}
		inside := window.From <= bin.From && bin.To <= window.To
		switch {
		case i < 0:
			edges[0].add(r, inside)
		case i == len(units):
			edges[1].add(r, inside)
		default:
			units[i].sp.add(r, inside)
		}
		return nil
	})
	return units, edges, err
}

// counterAt is one stored counter reading, as anchoring needs it.
type counterAt struct{ takenMs, energyUJ, rttUs int64 }

// readCounters reads the counter readings of k that can anchor a window
// inside span: those taken within counterEdgeMs of it.
func readCounters(ctx context.Context, db *store.DB, k store.SeriesKey, span Interval) ([]counterAt, error) {
	var out []counterAt
	err := db.EachCounter(ctx, k, span.From-counterEdgeMs, sat(span.To, counterEdgeMs+1), func(c *store.CounterReading) error {
		out = append(out, counterAt{c.TakenMs, c.EnergyUJ, c.RTTUs})
		return nil
	})
	return out, err
}

// selectAnchors returns the counter readings among cs (in time order)
// that can anchor window, with a round trip short enough, one per
// millisecond (the least uncertain): those taken inside it or at its
// edges, and the last one up to counterEdgeMs before it and the first up
// to counterEdgeMs after it, when no reading inside lies that near the
// edge. Such a reading outside keeps its time where the stream was live
// in between; where it was not (the recorder's start and stop readings,
// just outside its stream sessions), it anchors the edge, its time
// uncertain by the distance more.
func selectAnchors(cs []counterAt, spec Spec, window Interval) []anchorReading {
	i, _ := slices.BinarySearchFunc(cs, window.From-counterEdgeMs, func(c counterAt, t int64) int { return cmp.Compare(c.takenMs, t) })
	var out []anchorReading
	for _, c := range cs[i:] {
		if c.takenMs > sat(window.To, counterEdgeMs) {
			break
		}
		if c.rttUs > counterMaxRTTUs {
			continue
		}
		// Half the round trip, and the millisecond TakenMs is rounded to.
		a := anchorReading{TakenMs: c.takenMs, EnergyUJ: c.energyUJ, uMs: (c.rttUs+999)/2000 + 1}
		switch n := len(out); {
		case c.takenMs < window.From:
			out = out[:0] // a later one before the window is closer
		case c.takenMs > window.To:
			if n > 0 && out[n-1].TakenMs > window.To {
				continue // an earlier one after the window is closer
			}
		}
		if c.takenMs < window.From || c.takenMs > window.To {
			edge := Interval{c.takenMs, window.From}
			if c.takenMs > window.To {
				edge = Interval{window.To + 1, c.takenMs + 1}
			}
			if !live(spec.Sessions, edge) {
				a.uMs += edge.Len()
				a.TakenMs, a.clamped = min(max(c.takenMs, window.From), window.To), true
			}
		}
		if n := len(out); n > 0 && out[n-1].TakenMs == a.TakenMs {
			if a.uMs < out[n-1].uMs {
				out[n-1] = a
			}
			continue
		}
		out = append(out, a)
	}
	// A reading outside is only for an edge without one inside near it:
	// a mark's own readings stand at its edges, and one taken later just
	// past the window must not change its answer.
	outside := func(a anchorReading) bool { return a.clamped || a.TakenMs < window.From || a.TakenMs > window.To }
	if n := len(out); n >= 2 && outside(out[0]) && !outside(out[1]) && out[1].TakenMs-window.From <= counterEdgeMs {
		out = out[1:]
	}
	if n := len(out); n >= 2 && outside(out[n-1]) && !outside(out[n-2]) && window.To-out[n-2].TakenMs <= counterEdgeMs {
		out = out[:n-1]
	}
	return out
}

// live reports whether a session overlaps iv.
func live(sessions []Interval, iv Interval) bool {
	for _, s := range sessions {
		if clip(s, iv).Len() > 0 {
			return true
		}
	}
	return false
}

// sortedInside sorts ts, drops repeats and keeps those strictly inside
// iv: the cuts of a binner.
func sortedInside(ts []int64, iv Interval) []int64 {
	slices.Sort(ts)
	out := ts[:0]
	for _, t := range ts {
		if iv.From < t && t < iv.To && (len(out) == 0 || out[len(out)-1] != t) {
			out = append(out, t)
		}
	}
	return out
}
