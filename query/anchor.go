package query

import (
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

// anchored is one series' counter-anchored energy over one window.
type anchored struct {
	ok bool // the counter anchors part of the window

	energyUJ, boundUJ   int64
	counterUJ, streamUJ int64 // the sources of energyUJ
	counterMs           int64 // window time inside used counter intervals
	bridgedMs           int64 // of it, without a stream value
	uncoveredMs         int64 // neither in a used counter interval nor valued by the stream

	// The check of the stream against the counter, over the counter
	// intervals the stream covers completely (used or not).
	checked                    bool
	checkCounterUJ, checkStrUJ int64
}

// streamOnly is the anchored figure of a series without usable counter
// readings: the stream's.
func streamOnly(res Result) anchored {
	return anchored{energyUJ: res.EnergyUJ, boundUJ: res.BoundUJ, streamUJ: res.EnergyUJ, uncoveredMs: res.WindowMs - res.ValuedMs}
}

// anchorReading is a counter reading used as an anchor, with the
// uncertainty of its time and the most power the series had around it.
type anchorReading struct {
	store.CounterReading
	uMs     int64 // |true reading time − TakenMs| <= uMs
	peakMW  int64 // the largest value held in [TakenMs − uMs, TakenMs + uMs]
	clamped bool  // taken outside the window where no stream was live, moved to its edge
}

// span is the part of a counter interval (or an edge stretch) that lies
// inside or outside the window: the stream's integral over it.
type span struct{ in, out Result }

func (s *span) add(r Result, inside bool) {
	p := &s.out
	if inside {
		p = &s.in
	}
	p.EnergyUJ += r.EnergyUJ
	p.BoundUJ += r.BoundUJ
	p.WindowMs += r.WindowMs
	p.ValuedMs += r.ValuedMs
}

// anchorSeries computes series k's counter-anchored energy over window
// from its counter readings there (see anchorsIn); res is the stream's
// integral of the window. An anchor just outside the window while the
// stream was live counts from its own time: the stream's integral of the
// stretch outside is taken off its interval's delta. warn takes one
// message per counter interval that is not used.
func anchorSeries(ctx context.Context, db *store.DB, k store.SeriesKey, spec Spec, window Interval, res Result, warn func(string)) (anchored, error) {
	as, err := anchorsIn(ctx, db, k, spec, window)
	if err != nil || len(as) < 2 {
		return streamOnly(res), err
	}
	if err := anchorPeaks(ctx, db, k, spec, as, res.PeakMW); err != nil {
		return anchored{}, err
	}

	// The stream from the first anchor (or the window's start) to the
	// last (or its end), cut at the anchors and the window's edges: per
	// counter interval i, spans[i+1]; before the first anchor, spans[0];
	// after the last, spans[len(as)].
	whole := Interval{min(window.From, as[0].TakenMs), max(window.To, as[len(as)-1].TakenMs)}
	cuts := []int64{window.From, window.To}
	for _, a := range as {
		cuts = append(cuts, a.TakenMs)
	}
	spans := make([]span, len(as)+1)
	i := 0 // anchors at or before the current piece
	err = integrateBins(ctx, db, k, spec, binner{at: whole.From, to: whole.To, cuts: sortedInside(cuts, whole)}, func(bin Interval, r Result) error {
		for i < len(as) && as[i].TakenMs <= bin.From {
			i++
		}
		spans[i].add(r, window.From <= bin.From && bin.To <= window.To)
		return nil
	})
	if err != nil {
		return anchored{}, err
	}

	resolution := int64(cpuCounterUJ)
	if k.Kind == store.KindGPU {
		resolution = gpuCounterUJ
	}
	var out anchored
	stream := func(r Result) {
		out.energyUJ += r.EnergyUJ
		out.streamUJ += r.EnergyUJ
		out.boundUJ += r.BoundUJ
		out.uncoveredMs += r.WindowMs - r.ValuedMs
	}
	stream(spans[0].in)
	stream(spans[len(as)].in)
	runFrom := -1 // the first anchor of the current run of used intervals
	endRun := func(last int) {
		if runFrom >= 0 {
			a, b := as[runFrom], as[last]
			out.boundUJ += resolution + a.uMs*a.peakMW + b.uMs*b.peakMW
			runFrom = -1
		}
	}
	for i := range len(as) - 1 {
		a, b, sp := as[i], as[i+1], spans[i+1]
		all := sp.in
		all.EnergyUJ, all.BoundUJ = sp.in.EnergyUJ+sp.out.EnergyUJ, sp.in.BoundUJ+sp.out.BoundUJ
		all.WindowMs, all.ValuedMs = sp.in.WindowMs+sp.out.WindowMs, sp.in.ValuedMs+sp.out.ValuedMs
		delta := b.EnergyUJ - a.EnergyUJ
		slack := float64(all.BoundUJ+resolution+a.uMs*a.peakMW+b.uMs*b.peakMW) + CounterTolerance*math.Abs(float64(delta))
		full := all.ValuedMs == all.WindowMs
		var why string
		switch {
		case sp.in.WindowMs == 0:
			continue // wholly outside the window
		case delta < 0:
			why = fmt.Sprintf("went down by %.3f J (a driver reload or daemon restart)", float64(-delta)/1e6)
		case full && math.Abs(float64(all.EnergyUJ-delta)) > slack:
			why = fmt.Sprintf("counted %.3f J where the stream, which covers it all, has %.3f J ± %.3f J", float64(delta)/1e6, all.Joules(), float64(all.BoundUJ)/1e6)
		case !full && float64(all.EnergyUJ-delta) > slack:
			why = fmt.Sprintf("counted %.3f J, less than the %.3f J the stream has in %.0f%% of it", float64(delta)/1e6, all.Joules(), 100*all.Coverage())
		case sp.out.ValuedMs < sp.out.WindowMs:
			why = "reaches outside the window where the stream has no value to take off"
		}
		if full && delta >= 0 && !a.clamped && !b.clamped {
			out.checked = true
			out.checkCounterUJ += delta
			out.checkStrUJ += all.EnergyUJ
		}
		if why != "" {
			warn(fmt.Sprintf("%s: hardware counter %s → %s %s: the stream is used there", k, FormatTime(a.TakenMs), FormatTime(b.TakenMs), why))
			stream(sp.in)
			endRun(i)
			continue
		}
		if runFrom < 0 {
			runFrom = i
		}
		out.ok = true
		out.energyUJ += delta - sp.out.EnergyUJ
		out.counterUJ += delta - sp.out.EnergyUJ
		out.boundUJ += sp.out.BoundUJ
		out.counterMs += sp.in.WindowMs
		out.bridgedMs += sp.in.WindowMs - sp.in.ValuedMs
	}
	endRun(len(as) - 1)
	// Without a gap to bridge, anchoring that does not tighten the bound
	// (CPU values are exact period averages: only the edges are
	// uncertain, and the counter's own edges are no better) is left out.
	if !out.ok || (out.bridgedMs == 0 && out.boundUJ >= res.BoundUJ) {
		o := streamOnly(res)
		o.checked, o.checkCounterUJ, o.checkStrUJ = out.checked, out.checkCounterUJ, out.checkStrUJ
		return o, nil
	}
	return out, nil
}

// anchorsIn returns the counter readings of k that can anchor window,
// with a round trip short enough, one per millisecond (the least
// uncertain): those taken inside it or at its edges, and the last one
// up to counterEdgeMs before it and the first up to counterEdgeMs after
// it. Such a reading outside keeps its time where the stream was live in
// between; where it was not (the recorder's start and stop readings,
// just outside its stream sessions), it anchors the edge, its time
// uncertain by the distance more.
func anchorsIn(ctx context.Context, db *store.DB, k store.SeriesKey, spec Spec, window Interval) ([]anchorReading, error) {
	cs, err := db.Counters(ctx, k, window.From-counterEdgeMs, sat(window.To, counterEdgeMs+1))
	if err != nil {
		return nil, err
	}
	var out []anchorReading
	for _, c := range cs {
		if c.RTTUs > counterMaxRTTUs {
			continue
		}
		// Half the round trip, and the millisecond TakenMs is rounded to.
		a := anchorReading{CounterReading: c, uMs: (c.RTTUs+999)/2000 + 1}
		switch n := len(out); {
		case c.TakenMs < window.From:
			if n > 0 {
				out = out[:0] // a later one before the window is closer
			}
		case c.TakenMs > window.To:
			if n > 0 && out[n-1].TakenMs > window.To {
				continue // an earlier one after the window is closer
			}
		}
		if c.TakenMs < window.From || c.TakenMs > window.To {
			edge := Interval{c.TakenMs, window.From}
			if c.TakenMs > window.To {
				edge = Interval{window.To + 1, c.TakenMs + 1}
			}
			if !live(spec.Sessions, edge) {
				a.uMs += edge.Len()
				a.TakenMs, a.clamped = min(max(c.TakenMs, window.From), window.To), true
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
	return out, nil
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

// anchorPeaks finds, for each anchor, the largest value the series held
// within the anchor's time uncertainty, in one scan; where the stream has
// no value there, the series' peak over the window (peakMW) stands in.
func anchorPeaks(ctx context.Context, db *store.DB, k store.SeriesKey, spec Spec, as []anchorReading, peakMW int64) error {
	first, last := as[0], as[len(as)-1]
	span := Interval{first.TakenMs - first.uMs, last.TakenMs + last.uMs + 1}
	var cuts []int64
	for _, a := range as {
		cuts = append(cuts, a.TakenMs-a.uMs, a.TakenMs+a.uMs+1)
	}
	cuts = sortedInside(cuts, span)
	i := 0
	return integrateBins(ctx, db, k, spec, binner{at: span.From, to: span.To, cuts: cuts}, func(bin Interval, r Result) error {
		for i < len(as) && as[i].TakenMs+as[i].uMs+1 <= bin.From {
			i++
		}
		for j := i; j < len(as) && as[j].TakenMs-as[j].uMs < bin.To; j++ {
			peak := r.PeakMW
			if r.ValuedMs < r.WindowMs {
				peak = max(peak, peakMW)
			}
			as[j].peakMW = max(as[j].peakMW, peak, 0)
		}
		return nil
	})
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
