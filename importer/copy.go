package importer

import (
	"context"
	"math"

	"github.com/wattrec/wattrec/store"
)

// copyDB hands every record of src to s: runs, endpoint info, sessions,
// clock estimates, counter readings, marks (with their IDs when keepIDs)
// and readings, seed flags and daemon times included. progress, if set,
// is told of every batch of readings handed on.
func copyDB(ctx context.Context, s *sink, src *store.DB, keepIDs bool, progress func(readings int)) error {
	runs, err := src.Runs(ctx)
	if err != nil {
		return err
	}
	for _, r := range runs {
		if err := s.run(r); err != nil {
			return err
		}
	}
	marks, err := src.Marks(ctx, "")
	if err != nil {
		return err
	}
	for _, m := range marks {
		if err := s.mark(m, keepIDs); err != nil {
			return err
		}
	}
	eps, err := src.Endpoints(ctx)
	if err != nil {
		return err
	}
	for _, e := range eps {
		s.info(e)
		sessions, err := src.Sessions(ctx, e.Endpoint)
		if err != nil {
			return err
		}
		for _, ss := range sessions {
			if err := s.session(ss); err != nil {
				return err
			}
		}
		clocks, err := src.ClockEstimates(ctx, e.Endpoint)
		if err != nil {
			return err
		}
		for _, c := range clocks {
			if err := s.clock(c); err != nil {
				return err
			}
		}
	}
	counters, err := src.CounterSeries(ctx, "")
	if err != nil {
		return err
	}
	for _, c := range counters {
		if err := src.EachCounter(ctx, c.SeriesKey, math.MinInt64, math.MaxInt64, s.counter); err != nil {
			return err
		}
	}
	series, err := src.Series(ctx, "", false)
	if err != nil {
		return err
	}
	for _, k := range series {
		n := 0
		err := src.Scan(ctx, k.SeriesKey, math.MinInt64, math.MaxInt64, func(r *store.Reading) error {
			if n++; n == batchRecords && progress != nil {
				progress(n)
				n = 0
			}
			return s.reading(r)
		})
		if err != nil {
			return err
		}
		if progress != nil {
			progress(n)
		}
	}
	return nil
}
