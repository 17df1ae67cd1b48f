package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/recording"
)

func dbFlag() cli.Flag {
	return &cli.PathFlag{Name: "db", Usage: "wattrec `FILE` (or the first argument, where the command takes none of its own)", EnvVars: []string{"WATTREC_DB"}}
}

// dbArg is the ArgsUsage of a command whose one argument, if any, is the
// file --db names: `wattrec info run.db`.
const dbArg = "[FILE]"

// dbPath is the wattrec file of the command: --db (or $WATTREC_DB), or
// its argument where it takes the file as one (dbArg), which wins over
// $WATTREC_DB but not over --db.
func dbPath(c *cli.Context) (string, error) {
	p := c.Path("db")
	if c.Command.ArgsUsage == dbArg {
		fromFlag := p != "" && p != os.Getenv("WATTREC_DB")
		switch {
		case c.NArg() > 1 || (c.NArg() == 1 && fromFlag):
			return "", fmt.Errorf("unexpected arguments %q: give the wattrec FILE once, with --db or as the argument", c.Args().Slice())
		case c.NArg() == 1:
			p = c.Args().First()
		}
	}
	switch {
	case p == "" && c.IsSet("db"):
		return "", errors.New("--db is empty: give the wattrec FILE")
	case p == "":
		return "", errors.New("no wattrec file: give --db FILE (or $WATTREC_DB)")
	}
	return p, nil
}

// formatFlag is --format of a command that writes a report for people
// (table, the default) or programs.
func formatFlag(choices string) cli.Flag {
	return &cli.StringFlag{Name: "format", Value: query.FormatTable, Usage: choices}
}

// tableOrJSON is the --format of a command that writes a table or JSON.
func tableOrJSON(c *cli.Context) (string, error) {
	format := c.String("format")
	if format != query.FormatTable && format != query.FormatJSON {
		return "", fmt.Errorf("--format %q: want table or json", format)
	}
	return format, nil
}

func filterFlags() []cli.Flag {
	return []cli.Flag{
		dbFlag(),
		&cli.StringFlag{Name: "from", Usage: "start `TIME` (inclusive): RFC 3339 (zone optional, default local), Unix s or ms, now, -15m, start"},
		&cli.StringFlag{Name: "to", Usage: "end `TIME` (exclusive); end is the end of the recording"},
		&cli.StringSliceFlag{Name: "endpoint", Usage: "only this endpoint (repeatable)"},
		&cli.StringFlag{Name: "device", Usage: "only these devices, e.g. gpu:0,gpu:1,cpu:0 (cpu:N includes its DRAM), or gpu"},
	}
}

// filterFromFlags parses --from, --to, --endpoint and --device.
func filterFromFlags(c *cli.Context) (query.Filter, error) {
	f := query.Filter{EndpointAliases: map[string]string{}}
	for _, e := range c.StringSlice("endpoint") {
		// Every form --server takes names the endpoint it records as; the
		// name as given wins where the file has it (an imported "smi").
		if srv, err := recorder.ParseServer(e); err == nil && srv.Endpoint() != e {
			f.EndpointAliases[e] = srv.Endpoint()
		}
		f.Endpoints = append(f.Endpoints, e)
	}
	if d := c.String("device"); d != "" {
		var err error
		if f.Devices, err = query.ParseDevices(d); err != nil {
			return f, fmt.Errorf("--device: %w", err)
		}
	}
	now := time.Now()
	var err error
	if f.Range.From, err = query.ParseBound(c.String("from"), now, time.Local); err != nil {
		return f, fmt.Errorf("--from: %w", err)
	}
	if f.Range.To, err = query.ParseBound(c.String("to"), now, time.Local); err != nil {
		return f, fmt.Errorf("--to: %w", err)
	}
	return f, nil
}

// withReader runs fn on the file of --db: through its recorder when one
// holds it, else on the file itself.
func withReader(c *cli.Context, writable bool, fn func(recording.Reader) error) error {
	path, err := dbPath(c)
	if err != nil {
		return err
	}
	rd, err := recording.Open(c.Context, path, writable)
	if err != nil {
		return err
	}
	return errors.Join(fn(rd), rd.Close())
}

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:      "info",
		Usage:     "summarise a recording: endpoints, devices, span, counts, sessions and gaps, clock offsets",
		UsageText: "wattrec info --db run.db",
		ArgsUsage: dbArg,
		Flags:     []cli.Flag{dbFlag(), formatFlag("table or json")},
		Action: func(c *cli.Context) error {
			format, err := tableOrJSON(c)
			if err != nil {
				return err
			}
			return withReader(c, false, func(rd recording.Reader) error { return rd.Info(c.Context, c.App.Writer, format) })
		},
	}
}

// queryHelp is query's description: the rules, from their one wording.
func queryHelp() string {
	return "Integration rules (integer mW x ms, converted to joules once at the end; the CPU\n" +
		"period can be given with --cpu-period):\n" + indent(query.RulesText(82), "  ") +
		`coverage = the fraction of the window (device-time) inside a live session with a
known value; gaps = stretches without one. DRAM is its own series, apart from the
CPU package. avg W = a device's joules / its observed seconds, and for a group the sum
of its devices' averages; peak W = the largest single-device value.
± J bounds |joules - the true energy of the covered time|: zeusd reports a GPU change
up to one poll period late (|change| x period each, --gpu-period), and a CPU/DRAM
value is exact for its whole period only (a period cut by the window counts its worst
split). Not bounded: a change that reverts before the next poll, and what happens
between the daemon's last poll and the recorder seeing a disconnection.
anchored J: where a device's hardware energy counter was read at least twice in the
row, the counter delta between its first and last reading there plus the stream
before and after; a gap between two readings is bridged by the counter. A counter
interval that goes backwards or disagrees with a stream that covers it (beyond both
bounds + 2 %) is left to the stream, with a warning. from counter = its share of the
anchored joules; bridged = gap time the counter covered; integral/counter = the
stream over the counter on the counter intervals it covers completely.
--from/--to: RFC 3339 (zone optional, default local), Unix s or ms, now, -15m,
start or end (of the recording). Default: the whole recording.`
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+prefix) + "\n"
}

func queryCommand() *cli.Command {
	return &cli.Command{
		Name:        "query",
		Usage:       "exact joules between two times, per device, endpoint, kind or in total, with coverage",
		UsageText:   "wattrec query --db run.db --from 2026-11-27T16:00:00Z --to 2026-11-27T17:00:00Z --by device --every 10m",
		ArgsUsage:   dbArg,
		Description: queryHelp(),
		Flags: append(filterFlags(),
			&cli.StringFlag{Name: "by", Value: query.ByDevice, Usage: "group rows by device, endpoint, kind or total (a total row follows the groups)"},
			&cli.StringFlag{Name: "every", Usage: "split the window into buckets of this `WIDTH`, aligned to the clock (e.g. 1m); \"window\" (with --window) is one bucket per instance, the default"},
			&cli.StringFlag{Name: "window", Usage: "report each instance of the mark `NAME` (wattrec mark) and their sum"},
			&cli.StringFlag{Name: "method", Value: query.MethodHold, Usage: "hold (the rules above), trapezoid (linear interpolation, for comparison) or compare (both, with their relative difference)"},
			&cli.DurationFlag{Name: "cpu-period", Usage: "CPU/DRAM poll period, at least 1ms (default: inferred per series)"},
			&cli.DurationFlag{Name: "gpu-period", Usage: "GPU poll period (zeusd --gpu-power-poll-hz), at least 1ms, for the error bound (default: inferred per series)"},
			formatFlag("table, json or csv"),
		),
		Action: func(c *cli.Context) error {
			opt, err := queryOptions(c)
			if err != nil {
				return err
			}
			return withReader(c, false, func(rd recording.Reader) error { return rd.Query(c.Context, c.App.Writer, opt) })
		},
	}
}

// msFlag is the duration flag name in milliseconds: 0 when unset, and
// at least 1 ms when set.
func msFlag(c *cli.Context, name, what string) (int64, error) {
	if !c.IsSet(name) {
		return 0, nil
	}
	if d := c.Duration(name); d < time.Millisecond {
		return 0, fmt.Errorf("--%s %v: want %s of at least 1ms", name, d, what)
	}
	return c.Duration(name).Milliseconds(), nil
}

func queryOptions(c *cli.Context) (query.Options, error) {
	opt := query.Options{By: c.String("by"), Method: c.String("method"), Format: c.String("format"), Window: c.String("window"), Warnings: c.App.ErrWriter}
	var err error
	if opt.CPUPeriodMs, err = msFlag(c, "cpu-period", "a poll period"); err != nil {
		return opt, err
	}
	if opt.GPUPeriodMs, err = msFlag(c, "gpu-period", "a poll period"); err != nil {
		return opt, err
	}
	if !slices.Contains(query.Methods, opt.Method) {
		return opt, fmt.Errorf("--method %q: want hold, trapezoid or compare", opt.Method)
	}
	if !slices.Contains([]string{query.FormatTable, query.FormatJSON, query.FormatCSV}, opt.Format) {
		return opt, fmt.Errorf("--format %q: want table, json or csv", opt.Format)
	}
	switch every := c.String("every"); {
	case every == "":
	case every == "window":
		if opt.Window == "" {
			return opt, errors.New("--every window needs --window NAME")
		}
	default:
		d, err := time.ParseDuration(every)
		if err != nil || d < time.Millisecond {
			return opt, fmt.Errorf("--every %q: want a width of at least 1ms, like 10s or 1m, or \"window\"", every)
		}
		opt.EveryMs = d.Milliseconds()
	}
	opt.Filter, err = filterFromFlags(c)
	return opt, err
}

// exportHelp is export's description, with the columns from their one
// list.
func exportHelp() string {
	var cols strings.Builder
	for _, col := range export.RawColumns() {
		fmt.Fprintf(&cols, "  %-15s %s\n", col[0], col[1])
	}
	return "One row per stored device value, ordered by endpoint, kind, device and time:\n" + cols.String() +
		`Parquet (zstd, dictionary-encoded endpoint and kind) is the default when -o ends in
.parquet, CSV for .csv, JSON Lines otherwise (the same columns and units as CSV).
The Parquet footer carries the integration rules, clock estimates, sessions and gaps,
counter readings, marks, each endpoint's /discover answer, the wattrec version and
the export's filters: wattrec import brings them back.
--grid WIDTH also writes an energy-conserving grid (RUN.grid.parquet beside -o):
per bin and device, energy_j (the exact integral over the bin by query's rules),
avg_power_w and coverage; the bins of a window sum to query's joules.
Files are written atomically (a temp file renamed into place); an existing file
is kept unless --force.`
}

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:        "export",
		Usage:       "write stored readings (and an energy grid) as Parquet, CSV or JSON Lines",
		UsageText:   "wattrec export --db run.db -o run.parquet --grid 1s --device gpu:0",
		ArgsUsage:   dbArg,
		Description: exportHelp(),
		Flags: append(filterFlags(),
			&cli.StringFlag{Name: "format", Usage: "parquet, csv or jsonl (default: from -o's extension, else jsonl)"},
			&cli.PathFlag{Name: "output", Aliases: []string{"o"}, Usage: "output `FILE` (default: standard output)"},
			&cli.DurationFlag{Name: "grid", Usage: "also write the energy grid with bins of this `WIDTH` (e.g. 1s)"},
			&cli.BoolFlag{Name: "grid-only", Usage: "write only the grid, to -o"},
			&cli.DurationFlag{Name: "cpu-period", Usage: "CPU/DRAM poll period for the grid, at least 1ms (default: inferred per series)"},
			&cli.BoolFlag{Name: "force", Usage: "replace existing output files"},
		),
		Action: func(c *cli.Context) error {
			outs, err := exportOutputs(c)
			if err != nil {
				return err
			}
			return withReader(c, false, func(rd recording.Reader) error {
				return recording.ExportFiles(c.Context, rd, outs, c.Bool("force"), c.App.Writer, c.App.ErrWriter)
			})
		},
	}
}

func exportOutputs(c *cli.Context) ([]export.Output, error) {
	filter, err := filterFromFlags(c)
	if err != nil {
		return nil, err
	}
	out := c.Path("output")
	if out == "-" {
		out = ""
	}
	format, err := export.FormatFor(out, c.String("format"))
	if err != nil {
		return nil, fmt.Errorf("--format %q: want parquet, csv or jsonl", c.String("format"))
	}
	gridMs, err := msFlag(c, "grid", "a bin width")
	if err != nil {
		return nil, err
	}
	cpuPeriodMs, err := msFlag(c, "cpu-period", "a poll period")
	if err != nil {
		return nil, err
	}
	req := export.Request{Filter: filter, Format: format, GridMs: gridMs,
		Options: export.Options{Version: wattrecVersion(), CPUPeriodMs: cpuPeriodMs}}
	return export.Outputs(out, req, c.Bool("grid-only"), c.Bool("force"))
}
