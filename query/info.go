package query

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
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

// Summary is what a file holds, as `wattrec info` shows it (and, with
// its JSON tags, `wattrec info --format json`).
type Summary struct {
	File      string       `json:"file"`
	SizeBytes int64        `json:"size_bytes"`
	Runs      []SummaryRun `json:"runs"`
	// The span of the readings; null without readings.
	From         *string             `json:"from"`
	FromMs       *int64              `json:"from_ms"`
	To           *string             `json:"to"`
	ToMs         *int64              `json:"to_ms"`
	Readings     int                 `json:"readings"`
	SeedReadings int                 `json:"seed_readings"`
	Marks        []SummaryMarks      `json:"marks"`
	Endpoints    []SummaryEndpoint   `json:"endpoints"`
	series       []store.SeriesStats // for the text
}

// SummaryRun is one start of a recorder on the file.
type SummaryRun struct {
	Started   string   `json:"started"`
	StartedMs int64    `json:"started_ms"`
	Version   string   `json:"version"`
	Host      *string  `json:"host"`
	Servers   []string `json:"servers"`
}

// SummaryMarks counts the marks of one name.
type SummaryMarks struct {
	Name      string `json:"name"`
	Instances int    `json:"instances"`
}

// SummaryEndpoint is one endpoint of a Summary.
type SummaryEndpoint struct {
	Endpoint     string           `json:"endpoint"`
	Network      *string          `json:"network"`
	GPUs         []int            `json:"gpus"` // streamed
	GPUSelection *string          `json:"gpu_selection"`
	CPUs         []int            `json:"cpus"`
	CPUSelection *string          `json:"cpu_selection"`
	Clock        *SummaryClock    `json:"clock"`
	Streams      []SummaryStream  `json:"streams"`
	Gaps         []SummaryGap     `json:"gaps"`
	Counters     []SummaryCounter `json:"counters"`
	Series       []SummarySeries  `json:"series"`
	discovered   bool
}

// SummaryClock is an endpoint's clock estimates: offset = corrected −
// daemon time.
type SummaryClock struct {
	Estimates      int     `json:"estimates"`
	LatestOffsetMs float64 `json:"latest_offset_ms"`
	LatestRTTMs    float64 `json:"latest_rtt_ms"`
	LatestSamples  int     `json:"latest_samples"`
	MinOffsetMs    float64 `json:"min_offset_ms"`
	MaxOffsetMs    float64 `json:"max_offset_ms"`
}

// SummaryStream is one stream's sessions.
type SummaryStream struct {
	Stream       string `json:"stream"`
	Sessions     int    `json:"sessions"`
	Open         int    `json:"open"`
	LiveMs       int64  `json:"live_ms"`
	Events       int64  `json:"events"`
	Malformed    int64  `json:"malformed"`
	Gaps         int    `json:"gaps"`
	GapMs        int64  `json:"gap_ms"`
	LongestGapMs int64  `json:"longest_gap_ms"`
}

// SummaryGap is one gap between sessions.
type SummaryGap struct {
	Stream string `json:"stream"`
	From   string `json:"from"`
	FromMs int64  `json:"from_ms"`
	To     string `json:"to"`
	ToMs   int64  `json:"to_ms"`
	Cause  string `json:"cause"`
}

// SummaryCounter is one series' hardware counter readings.
type SummaryCounter struct {
	Kind     string `json:"kind"`
	Device   int32  `json:"device"`
	Readings int    `json:"readings"`
	FirstMs  int64  `json:"first_ms"`
	LastMs   int64  `json:"last_ms"`
}

// SummarySeries is one series' readings.
type SummarySeries struct {
	Kind         string  `json:"kind"`
	Device       int32   `json:"device"`
	Readings     int     `json:"readings"`
	SeedReadings int     `json:"seed_readings"`
	FirstMs      int64   `json:"first_ms"`
	LastMs       int64   `json:"last_ms"`
	MinW         float64 `json:"min_w"`
	MaxW         float64 `json:"max_w"`
}

// Summarize reads the summary of db.
func Summarize(ctx context.Context, db *store.DB) (*Summary, error) {
	size, err := db.Size()
	if err != nil {
		return nil, err
	}
	runs, err := db.Runs(ctx)
	if err != nil {
		return nil, err
	}
	eps, err := db.Endpoints(ctx)
	if err != nil {
		return nil, err
	}
	series, err := db.Series(ctx, "", true)
	if err != nil {
		return nil, err
	}
	marks, err := db.Marks(ctx, "")
	if err != nil {
		return nil, err
	}
	sum := &Summary{File: db.Path(), SizeBytes: size, series: series, Runs: []SummaryRun{}, Marks: []SummaryMarks{}, Endpoints: []SummaryEndpoint{}}
	for _, r := range runs {
		sum.Runs = append(sum.Runs, SummaryRun{FormatTime(r.StartedMs), r.StartedMs, r.Version, optionalString(r.Host), r.Servers})
	}
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for _, s := range series {
		first, last = min(first, s.FirstMs), max(last, s.LastMs)
		sum.Readings += s.Readings
		sum.SeedReadings += s.SeedReadings
	}
	if sum.Readings > 0 {
		from, to := FormatTime(first), FormatTime(last)
		sum.From, sum.FromMs, sum.To, sum.ToMs = &from, &first, &to, &last
	}
	for _, m := range marks {
		if i := slices.IndexFunc(sum.Marks, func(s SummaryMarks) bool { return s.Name == m.Name }); i >= 0 {
			sum.Marks[i].Instances++
		} else {
			sum.Marks = append(sum.Marks, SummaryMarks{m.Name, 1})
		}
	}
	for _, ep := range eps {
		e := SummaryEndpoint{Endpoint: ep.Endpoint, Network: optionalString(ep.Network), GPUs: ep.GPUs, CPUs: ep.CPUs,
			GPUSelection: optionalString(ep.GPUSelection), CPUSelection: optionalString(ep.CPUSelection), discovered: ep.Discover != nil,
			Streams: []SummaryStream{}, Gaps: []SummaryGap{}, Counters: []SummaryCounter{}, Series: []SummarySeries{}}
		if err := e.read(ctx, db, series); err != nil {
			return nil, err
		}
		sum.Endpoints = append(sum.Endpoints, e)
	}
	return sum, nil
}

// read fills e's clock, streams, gaps, counters and series.
func (e *SummaryEndpoint) read(ctx context.Context, db *store.DB, series []store.SeriesStats) error {
	clocks, err := db.ClockEstimates(ctx, e.Endpoint)
	if err != nil {
		return err
	}
	if len(clocks) > 0 {
		lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
		for _, c := range clocks {
			lo, hi = min(lo, c.OffsetUs), max(hi, c.OffsetUs)
		}
		c := clocks[len(clocks)-1]
		e.Clock = &SummaryClock{len(clocks), float64(c.OffsetUs) / 1000, float64(c.RTTUs) / 1000, c.Samples, float64(lo) / 1000, float64(hi) / 1000}
	}
	sessions, err := db.Sessions(ctx, e.Endpoint)
	if err != nil {
		return err
	}
	gaps := Gaps(sessions)
	for _, stream := range []store.Stream{store.StreamGPU, store.StreamCPU} {
		st := SummaryStream{Stream: stream.String()}
		for _, s := range sessions {
			if s.Stream == stream {
				st.Sessions++
				st.LiveMs += s.End - s.Start
				st.Events += int64(s.Events)
				st.Malformed += int64(s.Malformed)
				if s.Open {
					st.Open++
				}
			}
		}
		for _, g := range gaps {
			if g.Stream == stream {
				st.Gaps++
				st.GapMs += g.ToMs - g.FromMs
				st.LongestGapMs = max(st.LongestGapMs, g.ToMs-g.FromMs)
			}
		}
		if st.Sessions > 0 {
			e.Streams = append(e.Streams, st)
		}
	}
	for _, g := range gaps {
		cause := g.Reason
		if g.Recorder {
			cause = "recorder not running"
		}
		e.Gaps = append(e.Gaps, SummaryGap{g.Stream.String(), FormatTime(g.FromMs), g.FromMs, FormatTime(g.ToMs), g.ToMs, cause})
	}
	counters, err := db.CounterSeries(ctx, e.Endpoint)
	if err != nil {
		return err
	}
	for _, c := range counters {
		e.Counters = append(e.Counters, SummaryCounter{c.Kind.String(), c.Device, c.Readings, c.FirstMs, c.LastMs})
	}
	for _, s := range series {
		if s.Endpoint == e.Endpoint {
			e.Series = append(e.Series, SummarySeries{s.Kind.String(), s.Device, s.Readings, s.SeedReadings, s.FirstMs, s.LastMs,
				float64(s.MinMW) / 1000, float64(s.MaxMW) / 1000})
		}
	}
	return nil
}

// Info writes the summary of db in format: FormatTable (for people) or
// FormatJSON.
func Info(ctx context.Context, w io.Writer, db *store.DB, format string) error {
	if format != "" && format != FormatTable && format != FormatJSON {
		return Invalid("format %q: want table or json", format)
	}
	sum, err := Summarize(ctx, db)
	if err != nil {
		return err
	}
	if format == FormatJSON {
		b, err := json.MarshalIndent(sum, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	return sum.writeText(w)
}

// writeText writes the summary for people.
func (sum *Summary) writeText(w io.Writer) error {
	fmt.Fprintf(w, "file       %s (%s)\n", sum.File, bytesHuman(sum.SizeBytes))
	if n := len(sum.Runs); n > 0 {
		r := sum.Runs[n-1]
		fmt.Fprintf(w, "runs       %d (last started %s by wattrec %s", n, r.Started, r.Version)
		if r.Host != nil {
			fmt.Fprintf(w, " on %s", *r.Host)
		}
		fmt.Fprintln(w, ")")
	}
	if sum.Readings == 0 {
		fmt.Fprintln(w, "readings   none")
	} else {
		fmt.Fprintf(w, "span       %s → %s (%s)\n", *sum.From, *sum.To, durationHuman(*sum.ToMs-*sum.FromMs))
		fmt.Fprintf(w, "readings   %d (%d seed) in %d series\n", sum.Readings, sum.SeedReadings, len(sum.series))
	}
	if len(sum.Marks) > 0 {
		parts := make([]string, len(sum.Marks))
		total := 0
		for i, m := range sum.Marks {
			parts[i] = fmt.Sprintf("%q ×%d", m.Name, m.Instances)
			total += m.Instances
		}
		fmt.Fprintf(w, "marks      %d: %s (wattrec mark list)\n", total, strings.Join(parts, ", "))
	}
	for _, e := range sum.Endpoints {
		fmt.Fprintf(w, "\nendpoint %s", e.Endpoint)
		if e.Network != nil {
			fmt.Fprintf(w, " (%s)", *e.Network)
		}
		fmt.Fprintln(w)
		if e.discovered {
			fmt.Fprintf(w, "  devices  GPUs %v (selected: %s), CPUs %v (selected: %s)\n", orNone(e.GPUs), deref(e.GPUSelection), orNone(e.CPUs), deref(e.CPUSelection))
		}
		if c := e.Clock; c != nil {
			fmt.Fprintf(w, "  clock    %d estimates; latest offset %+.3f ms (RTT %.3f ms, %d samples); range %+.3f … %+.3f ms\n",
				c.Estimates, c.LatestOffsetMs, c.LatestRTTMs, c.LatestSamples, c.MinOffsetMs, c.MaxOffsetMs)
		}
		for _, st := range e.Streams {
			fmt.Fprintf(w, "  %-8s %d sessions, live %s, %d events, %d malformed; %d gaps (total %s, longest %s)",
				st.Stream+" stream", st.Sessions, durationHuman(st.LiveMs), st.Events, st.Malformed, st.Gaps, durationHuman(st.GapMs), durationHuman(st.LongestGapMs))
			if st.Open > 0 {
				fmt.Fprintf(w, "; %d still open (recorder running, or killed: it ends at its last commit)", st.Open)
			}
			fmt.Fprintln(w)
		}
		for _, g := range e.Gaps {
			fmt.Fprintf(w, "    gap    %s %s → %s (%s): %s\n", g.Stream, g.From, g.To, durationHuman(g.ToMs-g.FromMs), g.Cause)
		}
		if len(e.Counters) > 0 {
			n, first, last := 0, int64(math.MaxInt64), int64(math.MinInt64)
			for _, c := range e.Counters {
				n += c.Readings
				first, last = min(first, c.FirstMs), max(last, c.LastMs)
			}
			fmt.Fprintf(w, "  counters %d readings of %d hardware energy counters, %s → %s\n", n, len(e.Counters), FormatTime(first), FormatTime(last))
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  series\treadings\tseed\tfirst\tlast\tmin W\tmax W\t")
		for _, s := range e.Series {
			fmt.Fprintf(tw, "  %s:%d\t%d\t%d\t%s\t%s\t%.3f\t%.3f\t\n", s.Kind, s.Device, s.Readings, s.SeedReadings,
				FormatTime(s.FirstMs), FormatTime(s.LastMs), s.MinW, s.MaxW)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
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
