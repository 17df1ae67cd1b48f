package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/wattrec/wattrec/query"
)

// recording is the tables of what the file holds, whatever the report's
// filter: runs, endpoints, series, sessions, gaps, clocks and counters.
func (r *reader) recording() ([]table, error) {
	runs, err := r.db.Runs(r.ctx)
	if err != nil {
		return nil, err
	}
	eps, err := r.db.Endpoints(r.ctx)
	if err != nil {
		return nil, err
	}
	series, err := r.db.Series(r.ctx, "", true)
	if err != nil {
		return nil, err
	}

	runT := table{ID: "runs", Caption: "recorder runs", Head: []string{"started", "wattrec", "host", "servers"}}
	for _, run := range runs {
		runT.Rows = append(runT.Rows, row{Cells: []string{r.time(run.StartedMs), run.Version, run.Host, strings.Join(run.Servers, " ")}})
	}

	epT := table{ID: "endpoints", Caption: "endpoints", Head: []string{"endpoint", "network", "GPUs streamed", "GPU selection", "CPUs streamed", "CPU selection"}}
	seT := table{ID: "sessions", Caption: "stream sessions", Head: []string{"endpoint", "stream", "start", "end", "live", "events", "malformed", "ended because"},
		Num: []bool{false, false, false, false, true, true, true, false}}
	gapT := table{ID: "gaps", Caption: "gaps between sessions", Head: []string{"endpoint", "stream", "from", "to", "length", "cause"},
		Num: []bool{false, false, false, false, true, false}}
	clockT := table{ID: "clocks", Caption: "clock offsets (corrected = daemon + offset)", Head: []string{"endpoint", "estimates", "latest offset ms", "latest RTT ms", "lowest ms", "highest ms"},
		Num: []bool{false, true, true, true, true, true}}
	counterT := table{ID: "counters", Caption: "hardware energy counters", Head: []string{"series", "readings", "first", "last"},
		Num: []bool{false, true, false, false}}
	for _, ep := range eps {
		epT.Rows = append(epT.Rows, row{Cells: []string{ep.Endpoint, ep.Network, ints(ep.GPUs), ep.GPUSelection, ints(ep.CPUs), ep.CPUSelection}})
		sessions, err := r.db.Sessions(r.ctx, ep.Endpoint)
		if err != nil {
			return nil, err
		}
		for _, s := range sessions {
			why := s.Reason
			if s.Open {
				why = "still open (recorder running, or killed: it ends at its last commit)"
			}
			seT.Rows = append(seT.Rows, row{Cells: []string{ep.Endpoint, s.Stream.String(), r.time(s.Start), r.time(s.End), ms(s.End - s.Start),
				strconv.FormatUint(s.Events, 10), strconv.FormatUint(s.Malformed, 10), why}})
		}
		for _, g := range query.Gaps(sessions) {
			why := g.Reason
			if g.Recorder {
				why = "recorder not running"
			}
			gapT.Rows = append(gapT.Rows, row{Cells: []string{ep.Endpoint, g.Stream.String(), r.time(g.FromMs), r.time(g.ToMs), ms(g.ToMs - g.FromMs), why}})
		}
		clocks, err := r.db.ClockEstimates(r.ctx, ep.Endpoint)
		if err != nil {
			return nil, err
		}
		if len(clocks) > 0 {
			lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
			for _, c := range clocks {
				lo, hi = min(lo, c.OffsetUs), max(hi, c.OffsetUs)
			}
			last := clocks[len(clocks)-1]
			clockT.Rows = append(clockT.Rows, row{Cells: []string{ep.Endpoint, strconv.Itoa(len(clocks)), us(last.OffsetUs), us(last.RTTUs), us(lo), us(hi)}})
		}
		counters, err := r.db.CounterSeries(r.ctx, ep.Endpoint)
		if err != nil {
			return nil, err
		}
		for _, c := range counters {
			counterT.Rows = append(counterT.Rows, row{Cells: []string{c.SeriesKey.String(), strconv.Itoa(c.Readings), r.time(c.FirstMs), r.time(c.LastMs)}})
		}
	}

	serT := table{ID: "series", Caption: "series", Head: []string{"series", "readings", "seeds", "first", "last", "min W", "max W"},
		Num: []bool{false, true, true, false, false, true, true}}
	for _, s := range series {
		serT.Rows = append(serT.Rows, row{Cells: []string{s.SeriesKey.String(), strconv.Itoa(s.Readings), strconv.Itoa(s.SeedReadings),
			r.time(s.FirstMs), r.time(s.LastMs), watts(s.MinMW), watts(s.MaxMW)}})
	}

	var out []table
	for _, t := range []table{runT, epT, serT, seT, gapT, clockT, counterT} {
		if len(t.Rows) == 0 {
			continue
		}
		if n := len(t.Rows); n > maxListRows {
			t.Rows = t.Rows[:maxListRows]
			t.Note = fmt.Sprintf("… and %d more (wattrec info lists them all)", n-maxListRows)
		}
		out = append(out, t)
	}
	return out, nil
}

func ints(ids []int) string {
	if len(ids) == 0 {
		return "none"
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(id)
	}
	return strings.Join(parts, ", ")
}

func us(v int64) string { return strconv.FormatFloat(float64(v)/1000, 'f', 3, 64) }

func watts(mw int64) string { return strconv.FormatFloat(float64(mw)/1000, 'f', 3, 64) }
