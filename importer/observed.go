package importer

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// periodSpacings is how many spacings of a series' readings tell its
// poll period (as query infers it).
const periodSpacings = 512

// observer derives the stream sessions of a file that carries none from
// its readings, by one of two declarations: an observed span (every
// stream of the file live over it), or a longest gap (readings of an
// endpoint's stream further apart start a new session; a session runs
// from its first reading to one poll period past its last, the period
// being the series' most common spacing). Memory: a few words per series
// and per session.
type observer struct {
	span   *query.TimeRange // declared span, or nil
	maxGap int64            // longest gap in ms, when span is nil

	first, last int64 // the file's first and last reading
	streams     map[streamKey]uint64
	series      map[store.SeriesKey]*seriesGaps
}

type streamKey struct {
	endpoint string
	stream   store.Stream
}

// seriesGaps is one series' readings cut at the gaps.
type seriesGaps struct {
	runs     []run // finished runs
	cur      run
	spacings map[int64]int
	counted  int
}

// run is a stretch of readings without a gap.
type run struct {
	first, last int64
	n           uint64
}

func newObserver(span *query.TimeRange, maxGapMs int64) *observer {
	return &observer{span: span, maxGap: maxGapMs, first: math.MaxInt64, last: math.MinInt64,
		streams: map[streamKey]uint64{}, series: map[store.SeriesKey]*seriesGaps{}}
}

// add takes the next reading of the file; where names it for an error.
func (o *observer) add(r *store.Reading, where func() string) error {
	t := r.TimeMs
	if o.span != nil {
		if b := o.span.From; b.Kind == query.BoundTime && t < b.Ms {
			return fmt.Errorf("%s: %w: %s is before its start %s", where(), ErrOutside, query.FormatTime(t), query.FormatTime(b.Ms))
		}
		if b := o.span.To; b.Kind == query.BoundTime && t >= b.Ms {
			return fmt.Errorf("%s: %w: %s is not before its end %s", where(), ErrOutside, query.FormatTime(t), query.FormatTime(b.Ms))
		}
	}
	o.first, o.last = min(o.first, t), max(o.last, t)
	o.streams[streamKey{r.Endpoint, store.StreamOf(r.Kind)}]++
	if o.span != nil {
		return nil
	}
	k := r.Series()
	g := o.series[k]
	if g == nil {
		o.series[k] = &seriesGaps{cur: run{t, t, 1}, spacings: map[int64]int{}}
		return nil
	}
	d := t - g.cur.last
	switch {
	case d < 0:
		return fmt.Errorf("%s: %w: %s goes back from %s to %s, and gaps are told in time order", where(), ErrOrder, k, query.FormatTime(g.cur.last), query.FormatTime(t))
	case d > o.maxGap:
		g.runs = append(g.runs, g.cur)
		g.cur = run{t, t, 1}
		return nil
	case d > 0 && g.counted < periodSpacings:
		g.spacings[d]++
		g.counted++
	}
	g.cur.last, g.cur.n = t, g.cur.n+1
	return nil
}

// period is g's most common spacing (the smaller of equals), or 0 when
// it has none.
func (g *seriesGaps) period() int64 {
	best, bestN := int64(0), 0
	for d, n := range g.spacings {
		if n > bestN || n == bestN && d < best {
			best, bestN = d, n
		}
	}
	return best
}

// sessions returns the sessions the declaration gives the readings
// added, ordered by endpoint, stream and start.
func (o *observer) sessions() ([]store.Session, error) {
	keys := slices.SortedFunc(maps.Keys(o.streams), func(a, b streamKey) int {
		return cmp.Or(cmp.Compare(a.endpoint, b.endpoint), cmp.Compare(a.stream, b.stream))
	})
	var out []store.Session
	if o.span != nil {
		if len(keys) == 0 {
			return nil, nil
		}
		iv, err := o.span.Resolve(query.Interval{From: o.first, To: o.last + 1})
		if err != nil {
			return nil, fmt.Errorf("observed span: %w", err)
		}
		for _, k := range keys {
			out = append(out, store.Session{Endpoint: k.endpoint, Stream: k.stream, Start: iv.From, End: iv.To,
				Events: o.streams[k], Reason: "imported: end of the declared observed span"})
		}
		return out, nil
	}
	reason := fmt.Sprintf("imported: no reading for more than %v", time.Duration(o.maxGap)*time.Millisecond)
	for _, k := range keys {
		// The runs of the stream's series, each to one period past its
		// last reading; a series too sparse to tell its period takes the
		// stream's shortest, or 1 ms.
		type stretch struct {
			run
			end int64
		}
		var all []stretch
		fallback := int64(0)
		for sk, g := range o.series {
			if p := g.period(); sk.Endpoint == k.endpoint && store.StreamOf(sk.Kind) == k.stream && p > 0 && (fallback == 0 || p < fallback) {
				fallback = p
			}
		}
		for sk, g := range o.series {
			if sk.Endpoint != k.endpoint || store.StreamOf(sk.Kind) != k.stream {
				continue
			}
			p := cmp.Or(g.period(), fallback, 1)
			for _, r := range append(g.runs, g.cur) {
				all = append(all, stretch{r, r.last + p})
			}
		}
		slices.SortFunc(all, func(a, b stretch) int { return cmp.Compare(a.first, b.first) })
		// Runs of different devices join unless the gap rule splits them.
		cur := all[0]
		for _, s := range all[1:] {
			if s.first-cur.last > o.maxGap && s.first >= cur.end {
				out = append(out, store.Session{Endpoint: k.endpoint, Stream: k.stream, Start: cur.first, End: cur.end, Events: cur.n, Reason: reason})
				cur = s
				continue
			}
			cur.last, cur.end, cur.n = max(cur.last, s.last), max(cur.end, s.end), cur.n+s.n
		}
		out = append(out, store.Session{Endpoint: k.endpoint, Stream: k.stream, Start: cur.first, End: cur.end, Events: cur.n, Reason: "imported: last reading"})
	}
	return out, nil
}
