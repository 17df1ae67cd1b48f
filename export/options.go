package export

import (
	"math"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// DefaultRowGroupRows is the number of rows per Parquet row group: about
// 30 MiB of raw readings before compression (a few MiB after), large
// enough for fast scans and small enough to keep the writer's memory
// bounded.
const DefaultRowGroupRows = 1 << 20

// progressEvery is how many rows pass between calls of a ProgressFunc.
const progressEvery = 16 << 10

// ProgressFunc is told how far an export has come: rows written so far
// and an estimate of the total (from the store's per-series counts,
// scaled to the time filter). It is called from the exporting goroutine,
// every few thousand rows; the last call has done == total.
type ProgressFunc func(done, total int64)

// Options tune the exports. The zero value works: no version in the
// metadata, no progress, DefaultRowGroupRows, CPU periods inferred as
// query does. It travels as JSON (Progress excepted), e.g. in a control
// socket request.
type Options struct {
	// Version is the wattrec version recorded in the file's metadata.
	Version string `json:"version,omitempty"`
	// Progress, if set, is told how far the export has come.
	Progress ProgressFunc `json:"-"`
	// RowGroupRows caps the rows of a Parquet row group; zero means
	// DefaultRowGroupRows.
	RowGroupRows int64 `json:"row_group_rows,omitempty"`
	// CPUPeriodMs fixes the CPU/DRAM poll period of the integration rules;
	// zero means infer it per series.
	CPUPeriodMs int64 `json:"cpu_period_ms,omitempty"`
}

func (o Options) rowGroupRows() int64 {
	if o.RowGroupRows <= 0 {
		return DefaultRowGroupRows
	}
	return o.RowGroupRows
}

// progress counts rows and calls a ProgressFunc every progressEvery rows.
type progress struct {
	fn          ProgressFunc
	done, total int64
	next        int64
}

func newProgress(fn ProgressFunc, total int64) *progress {
	p := &progress{fn: fn, total: total, next: progressEvery}
	if fn != nil {
		fn(0, total)
	}
	return p
}

func (p *progress) add(n int64) {
	p.done += n
	if p.fn != nil && p.done >= p.next {
		p.next = p.done + progressEvery
		p.fn(p.done, max(p.total, p.done))
	}
}

// finish reports the final count as the total.
func (p *progress) finish() {
	if p.fn != nil {
		p.fn(p.done, p.done)
	}
}

// estimateRows estimates how many readings of series fall in iv: each
// series' count, scaled by the part of its time span iv covers
// (readings are spread about evenly in time).
func estimateRows(series []store.SeriesStats, iv query.Interval) int64 {
	from, to := iv.From, iv.To
	var n float64
	for _, s := range series {
		if from <= s.FirstMs && s.LastMs < to {
			n += float64(s.Readings)
			continue
		}
		lo, hi := max(from, s.FirstMs), min(to, s.LastMs+1)
		if hi <= lo {
			continue
		}
		n += float64(s.Readings) * float64(hi-lo) / float64(s.LastMs+1-s.FirstMs)
	}
	return int64(math.Round(n))
}
