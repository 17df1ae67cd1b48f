package query

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wattrec/wattrec/store"
)

// Gap is a stretch between two sessions of one stream during which
// nothing was watched.
type Gap struct {
	Stream   store.Stream
	FromMs   int64
	ToMs     int64
	Reason   string // why the earlier session ended
	Recorder bool   // the recorder was not running (the earlier session ended with the recorder)
}

// Gaps returns the gaps between consecutive sessions of each stream,
// ordered by start.
func Gaps(sessions []store.Session) []Gap {
	var out []Gap
	last := map[store.Stream]store.Session{}
	for _, s := range sessions { // ordered by start
		if prev, ok := last[s.Stream]; ok && s.Start > prev.End {
			out = append(out, Gap{Stream: s.Stream, FromMs: prev.End, ToMs: s.Start, Reason: prev.Reason,
				Recorder: prev.Open || prev.Reason == "recorder stopped"})
		}
		if prev, ok := last[s.Stream]; !ok || s.End >= prev.End {
			last[s.Stream] = s
		}
	}
	return out
}

// Info writes a human summary of the file: runs, endpoints, devices,
// time span, reading counts, sessions and gaps, clock offsets.
func Info(ctx context.Context, w io.Writer, db *store.DB) error {
	size, err := db.Size()
	if err != nil {
		return err
	}
	runs, err := db.Runs(ctx)
	if err != nil {
		return err
	}
	eps, err := db.Endpoints(ctx)
	if err != nil {
		return err
	}
	series, err := db.Series(ctx, "", true)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "file       %s (%s)\n", db.Path(), bytesHuman(size))
	if len(runs) > 0 {
		r := runs[len(runs)-1]
		fmt.Fprintf(w, "runs       %d (last started %s by wattrec %s", len(runs), FormatTime(r.StartedMs), r.Version)
		if r.Host != "" {
			fmt.Fprintf(w, " on %s", r.Host)
		}
		fmt.Fprintln(w, ")")
	}
	first, last, total, seeds := int64(math.MaxInt64), int64(math.MinInt64), 0, 0
	for _, s := range series {
		first, last = min(first, s.FirstMs), max(last, s.LastMs)
		total += s.Readings
		seeds += s.SeedReadings
	}
	if total == 0 {
		fmt.Fprintln(w, "readings   none")
	} else {
		fmt.Fprintf(w, "span       %s → %s (%s)\n", FormatTime(first), FormatTime(last), durationHuman(last-first))
		fmt.Fprintf(w, "readings   %d (%d seed) in %d series\n", total, seeds, len(series))
	}

	marks, err := db.Marks(ctx, "")
	if err != nil {
		return err
	}
	if len(marks) > 0 {
		count := map[string]int{}
		var names []string
		for _, m := range marks {
			if count[m.Name] == 0 {
				names = append(names, m.Name)
			}
			count[m.Name]++
		}
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = fmt.Sprintf("%q ×%d", n, count[n])
		}
		fmt.Fprintf(w, "marks      %d: %s (wattrec mark list)\n", len(marks), strings.Join(parts, ", "))
	}

	for _, ep := range eps {
		fmt.Fprintf(w, "\nendpoint %s", ep.Endpoint)
		if ep.Network != "" {
			fmt.Fprintf(w, " (%s)", ep.Network)
		}
		fmt.Fprintln(w)
		if ep.Discover != nil {
			fmt.Fprintf(w, "  devices  GPUs %v (selected: %s), CPUs %v (selected: %s)\n", orNone(ep.GPUs), ep.GPUSelection, orNone(ep.CPUs), ep.CPUSelection)
		}
		if err := clockInfo(ctx, w, db, ep.Endpoint); err != nil {
			return err
		}
		if err := sessionInfo(ctx, w, db, ep.Endpoint); err != nil {
			return err
		}
		counters, err := db.CounterSeries(ctx, ep.Endpoint)
		if err != nil {
			return err
		}
		if len(counters) > 0 {
			n, first, last := 0, int64(math.MaxInt64), int64(math.MinInt64)
			for _, c := range counters {
				n += c.Readings
				first, last = min(first, c.FirstMs), max(last, c.LastMs)
			}
			fmt.Fprintf(w, "  counters %d readings of %d hardware energy counters, %s → %s\n", n, len(counters), FormatTime(first), FormatTime(last))
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  series\treadings\tseed\tfirst\tlast\tmin W\tmax W\t")
		for _, s := range series {
			if s.Endpoint != ep.Endpoint {
				continue
			}
			fmt.Fprintf(tw, "  %s:%d\t%d\t%d\t%s\t%s\t%.3f\t%.3f\t\n", s.Kind, s.Device, s.Readings, s.SeedReadings,
				FormatTime(s.FirstMs), FormatTime(s.LastMs), float64(s.MinMW)/1000, float64(s.MaxMW)/1000)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func clockInfo(ctx context.Context, w io.Writer, db *store.DB, endpoint string) error {
	clocks, err := db.ClockEstimates(ctx, endpoint)
	if err != nil || len(clocks) == 0 {
		return err
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, c := range clocks {
		lo, hi = min(lo, c.OffsetUs), max(hi, c.OffsetUs)
	}
	c := clocks[len(clocks)-1]
	fmt.Fprintf(w, "  clock    %d estimates; latest offset %+.3f ms (RTT %.3f ms, %d samples); range %+.3f … %+.3f ms\n",
		len(clocks), float64(c.OffsetUs)/1000, float64(c.RTTUs)/1000, c.Samples, float64(lo)/1000, float64(hi)/1000)
	return nil
}

func sessionInfo(ctx context.Context, w io.Writer, db *store.DB, endpoint string) error {
	sessions, err := db.Sessions(ctx, endpoint)
	if err != nil || len(sessions) == 0 {
		return err
	}
	for _, stream := range []store.Stream{store.StreamGPU, store.StreamCPU} {
		var n, open int
		var live, events, malformed int64
		for _, s := range sessions {
			if s.Stream != stream {
				continue
			}
			n++
			live += s.End - s.Start
			events += int64(s.Events)
			malformed += int64(s.Malformed)
			if s.Open {
				open++
			}
		}
		if n == 0 {
			continue
		}
		var gaps, longest, gapTotal int64
		for _, g := range Gaps(sessions) {
			if g.Stream == stream {
				gaps++
				gapTotal += g.ToMs - g.FromMs
				longest = max(longest, g.ToMs-g.FromMs)
			}
		}
		fmt.Fprintf(w, "  %-8s %d sessions, live %s, %d events, %d malformed; %d gaps (total %s, longest %s)",
			stream.String()+" stream", n, durationHuman(live), events, malformed, gaps, durationHuman(gapTotal), durationHuman(longest))
		if open > 0 {
			fmt.Fprintf(w, "; %d still open (recorder running, or killed: it ends at its last commit)", open)
		}
		fmt.Fprintln(w)
	}
	for _, g := range Gaps(sessions) {
		why := g.Reason
		if g.Recorder {
			why = "recorder not running"
		}
		fmt.Fprintf(w, "    gap    %s %s → %s (%s): %s\n", g.Stream, FormatTime(g.FromMs), FormatTime(g.ToMs), durationHuman(g.ToMs-g.FromMs), why)
	}
	return nil
}

func orNone(ids []int) string {
	if len(ids) == 0 {
		return "none"
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func durationHuman(ms int64) string {
	return (time.Duration(ms) * time.Millisecond).String()
}

func bytesHuman(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
