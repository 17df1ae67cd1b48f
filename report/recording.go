package report

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/wattrec/wattrec/query"
)

// recording is the tables of what the file holds, whatever the report's
// filter: runs, endpoints, series, sessions, gaps, clocks and counters,
// from the file's summary (query.Summarize, what `wattrec info` shows)
// and its sessions.
func (r *reader) recording() ([]table, error) {
	sum, err := query.Summarize(r.ctx, r.db)
	if err != nil {
		return nil, err
	}
	runT := table{ID: "runs", Caption: "recorder runs", Head: []string{"started", "wattrec", "host", "servers"}}
	for _, run := range sum.Runs {
		host := ""
		if run.Host != nil {
			host = *run.Host
		}
		runT.Rows = append(runT.Rows, row{Cells: []string{r.time(run.StartedMs), run.Version, host, strings.Join(run.Servers, " ")}})
	}

	epT := table{ID: "endpoints", Caption: "endpoints", Head: []string{"endpoint", "network", "GPUs streamed", "GPU selection", "CPUs streamed", "CPU selection"}}
	serT := table{ID: "series", Caption: "series", Head: []string{"series", "readings", "seeds", "first", "last", "min W", "max W"},
		Num: []bool{false, true, true, false, false, true, true}}
	seT := table{ID: "sessions", Caption: "stream sessions", Head: []string{"endpoint", "stream", "start", "end", "live", "events", "malformed", "ended because"},
		Num: []bool{false, false, false, false, true, true, true, false}}
	gapT := table{ID: "gaps", Caption: "gaps between sessions", Head: []string{"endpoint", "stream", "from", "to", "length", "cause"},
		Num: []bool{false, false, false, false, true, false}}
	clockT := table{ID: "clocks", Caption: "clock offsets (corrected = daemon + offset)", Head: []string{"endpoint", "estimates", "latest offset ms", "latest RTT ms", "lowest ms", "highest ms"},
		Num: []bool{false, true, true, true, true, true}}
	counterT := table{ID: "counters", Caption: "hardware energy counters", Head: []string{"series", "readings", "first", "last"},
		Num: []bool{false, true, false, false}}
	or := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	for _, ep := range sum.Endpoints {
		epT.Rows = append(epT.Rows, row{Cells: []string{ep.Endpoint, or(ep.Network), ints(ep.GPUs), or(ep.GPUSelection), ints(ep.CPUs), or(ep.CPUSelection)}})
		for _, s := range ep.Series {
			serT.Rows = append(serT.Rows, row{Cells: []string{fmt.Sprintf("%s %s:%d", ep.Endpoint, s.Kind, s.Device), strconv.Itoa(s.Readings), strconv.Itoa(s.SeedReadings),
				r.time(s.FirstMs), r.time(s.LastMs), strconv.FormatFloat(s.MinW, 'f', 3, 64), strconv.FormatFloat(s.MaxW, 'f', 3, 64)}})
		}
		// Every session, which the summary counts but does not list.
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
		for _, g := range ep.Gaps {
			gapT.Rows = append(gapT.Rows, row{Cells: []string{ep.Endpoint, g.Stream, r.time(g.FromMs), r.time(g.ToMs), ms(g.ToMs - g.FromMs), g.Cause}})
		}
		if c := ep.Clock; c != nil {
			f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
			clockT.Rows = append(clockT.Rows, row{Cells: []string{ep.Endpoint, strconv.Itoa(c.Estimates), f(c.LatestOffsetMs), f(c.LatestRTTMs), f(c.MinOffsetMs), f(c.MaxOffsetMs)}})
		}
		for _, c := range ep.Counters {
			counterT.Rows = append(counterT.Rows, row{Cells: []string{fmt.Sprintf("%s %s:%d", ep.Endpoint, c.Kind, c.Device), strconv.Itoa(c.Readings), r.time(c.FirstMs), r.time(c.LastMs)}})
		}
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
