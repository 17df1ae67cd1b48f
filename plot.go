package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wattrec/wattrec/chart"
	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/recording"
	"github.com/wattrec/wattrec/report"
)

// pictureFlags are the flags plot and report share beside the filters.
func pictureFlags(what string) []cli.Flag {
	return []cli.Flag{
		&cli.PathFlag{Name: "output", Aliases: []string{"o"}, Usage: what + " `FILE`", Required: true},
		&cli.BoolFlag{Name: "utc", Usage: "times in UTC (default: the local zone)"},
		&cli.BoolFlag{Name: "force", Usage: "replace an existing output file"},
	}
}

// outputPath is -o, which must not be empty.
func outputPath(c *cli.Context) (string, error) {
	if p := c.Path("output"); p != "" && p != "-" {
		return p, nil
	}
	return "", fmt.Errorf("-o %q: give the output FILE (written atomically, never to standard output)", c.Path("output"))
}

func plotCommand() *cli.Command {
	return &cli.Command{
		Name:      "plot",
		Usage:     "draw power over time as SVG or PNG: a line per device (or group), marks, gaps, joules in the legend",
		UsageText: "wattrec plot --db run.db -o run.svg --device gpu --from -1h --to now",
		ArgsUsage: dbArg,
		Description: `One line per device (--by endpoint, kind or total: per group), watts over time,
the time axis in the local zone (--utc: UTC). Each pixel column shows the mean power
of its time as the line, over a band from the lowest to the highest value in it, from
every reading: a burst of one second stays visible in a day. A line breaks at every gap
(a disconnection, the start of a session before its first value), never bridging it,
and gaps are shaded grey and hatched, at least 2 px wide. Marks are shaded and labelled;
--window NAME plots the span of that mark's instances. The legend gives each line's
joules and coverage over the plotted window: the exact numbers of wattrec query, never
computed from the pixels. The format comes from -o (.svg or .png); the file is written
atomically and an existing one is kept unless --force.`,
		Flags: append(filterFlags(), append(pictureFlags("picture"),
			&cli.StringFlag{Name: "by", Value: query.ByDevice, Usage: "one line per device, endpoint, kind or total"},
			&cli.StringFlag{Name: "window", Usage: "plot the span of the instances of the mark `NAME`"},
			&cli.IntFlag{Name: "width", Value: chart.DefaultWidth, Usage: "width in `PIXELS`"},
			&cli.IntFlag{Name: "height", Value: chart.DefaultHeight, Usage: "height in `PIXELS`"},
		)...),
		Action: func(c *cli.Context) error {
			out, req, err := plotRequest(c)
			if err != nil {
				return err
			}
			return withReader(c, false, func(rd recording.Reader) error {
				return export.WriteFile(out, c.Bool("force"), func(w io.Writer) error { return rd.Plot(c.Context, w, req) })
			})
		},
	}
}

func plotRequest(c *cli.Context) (string, chart.Request, error) {
	out, err := outputPath(c)
	if err != nil {
		return "", chart.Request{}, err
	}
	req := chart.Request{By: c.String("by"), Window: c.String("window"), Width: c.Int("width"), Height: c.Int("height"), UTC: c.Bool("utc")}
	if req.Format, err = chart.FormatFor(out); err != nil {
		return "", req, fmt.Errorf("-o: %w", err)
	}
	if !slices.Contains(query.Groupings, req.By) {
		return "", req, fmt.Errorf("--by %q: want device, endpoint, kind or total", req.By)
	}
	for _, side := range []struct {
		name     string
		v, least int
	}{{"width", req.Width, chart.MinWidth}, {"height", req.Height, chart.MinHeight}} {
		if side.v < side.least || side.v > chart.MaxSide {
			return "", req, fmt.Errorf("--%s %d: want %d to %d pixels", side.name, side.v, side.least, chart.MaxSide)
		}
	}
	req.Filter, err = filterFromFlags(c)
	return out, req, err
}

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "write one self-contained HTML page about a recording: energy tables, power timeline, windows, sessions and gaps",
		UsageText: "wattrec report --db run.db -o run.html",
		ArgsUsage: dbArg,
		Description: `One HTML file with everything inline (SVG and CSS; nothing is fetched, it opens
offline and prints on A4): the energy per device, endpoint and kind with coverage and
the hardware counter check (the numbers of wattrec query), the power timeline with its
marks and gaps, each mark's instances as a table and a bar chart, and the recording:
runs, endpoints, series, stream sessions, gaps, clock offsets and counters. --from,
--to, --endpoint and --device narrow the energy and the timeline. The file is written
atomically and an existing one is kept unless --force.`,
		Flags: append(filterFlags(), pictureFlags("HTML")...),
		Action: func(c *cli.Context) error {
			out, req, err := reportRequest(c)
			if err != nil {
				return err
			}
			return withReader(c, false, func(rd recording.Reader) error {
				return export.WriteFile(out, c.Bool("force"), func(w io.Writer) error { return rd.Report(c.Context, w, req) })
			})
		},
	}
}

func reportRequest(c *cli.Context) (string, report.Request, error) {
	out, err := outputPath(c)
	if err != nil {
		return "", report.Request{}, err
	}
	req := report.Request{UTC: c.Bool("utc"), Version: wattrecVersion(), Generated: time.Now()}
	req.Filter, err = filterFromFlags(c)
	return out, req, err
}
