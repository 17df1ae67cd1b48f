package importer

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// span is the time an endpoint takes up in one source: [from, to) over
// its readings, stream sessions and counter readings. Clock estimates
// do not count: an export carries the estimate in force at its start,
// taken before it.
type span struct{ from, to int64 }

var emptySpan = span{math.MaxInt64, math.MinInt64}

func (s *span) add(from, to int64) {
	s.from, s.to = min(s.from, from), max(s.to, to)
}

func (s span) overlaps(o span) bool { return s.from < o.to && o.from < s.to }

func (s span) String() string {
	return fmt.Sprintf("%s to %s", query.FormatTime(s.from), query.FormatTime(s.to))
}

// source is one input of an import or merge: its name (a path) and the
// span of each of its endpoints.
type source struct {
	name  string
	spans map[string]span
}

func (s *source) add(endpoint string, from, to int64) {
	sp, ok := s.spans[endpoint]
	if !ok {
		sp = emptySpan
	}
	sp.add(from, to)
	s.spans[endpoint] = sp
}

// overlap checks that no endpoint of s overlaps in time with the same
// endpoint in one of others. The error wraps ErrOverlap and names the
// endpoint, both sources and both spans.
func overlap(s *source, others []*source) error {
	for _, o := range others {
		for _, ep := range slices.Sorted(maps.Keys(s.spans)) {
			a, b := s.spans[ep], o.spans[ep]
			if _, ok := o.spans[ep]; ok && a.overlaps(b) {
				return fmt.Errorf("%w: endpoint %s is in %s (%v) and in %s (%v)", ErrOverlap, ep, o.name, b, s.name, a)
			}
		}
	}
	return nil
}

// spansOf reads the span of each endpoint of db.
func spansOf(ctx context.Context, name string, db *store.DB) (*source, error) {
	src := &source{name: name, spans: map[string]span{}}
	series, err := db.Series(ctx, "", false)
	if err != nil {
		return nil, err
	}
	for _, s := range series {
		src.add(s.Endpoint, s.FirstMs, s.LastMs+1)
	}
	counters, err := db.CounterSeries(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, c := range counters {
		src.add(c.Endpoint, c.FirstMs, c.LastMs+1)
	}
	eps, err := db.Endpoints(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range eps {
		ss, err := db.Sessions(ctx, e.Endpoint)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			src.add(s.Endpoint, s.Start, s.End)
		}
	}
	return src, nil
}
