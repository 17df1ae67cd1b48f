package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/importer"
	"github.com/wattrec/wattrec/query"
)

// importHelp is import's description, with the columns from their one
// list.
func importHelp() string {
	var cols strings.Builder
	for _, c := range export.ImportColumns() {
		fmt.Fprintf(&cols, "  %-15s %s: %s\n", c[0], c[1], c[2])
	}
	return `Reads wattrec's raw exports back (Parquet, CSV, JSON Lines: export → import →
export gives the same rows, byte for byte), and CSV or JSON Lines files of other
loggers (nvidia-smi, Zeus's PowerMonitor, ...) with these columns, in any order
(JSON Lines: these keys), the format told by the content:
` + cols.String() + `A value holds only inside a live stream session, so imported readings need
sessions. A wattrec Parquet export carries its own (and its clock estimates,
counter readings, marks and endpoint info); for any other file, declare them:
  --observed FROM..TO  every stream of the file was live from FROM to TO (times
                       as for --from/--to; start and end are the file's first
                       reading and one ms past its last); every reading must lie
                       inside.
  --max-gap D          readings of an endpoint's stream further apart than D start
                       a new session, which runs from its first reading to one
                       poll period (the devices' most common spacing) past its
                       last. For zeusd's change-only GPU stream, pick D longer than
                       the longest flat stretch.
The same endpoint must not overlap in time (from its first reading, session or
counter reading to its last) with what --db holds or with another file. The result is written atomically: a new file, checked, renamed over --db
(created if missing), so a failed import changes nothing.`
}

func importCommand() *cli.Command {
	return &cli.Command{
		Name:        "import",
		Usage:       "read exports and other loggers' CSV or JSON Lines into a recording",
		UsageText:   "wattrec import --db run.db run.parquet\n   wattrec import --db smi.db --max-gap 2s nvidia-smi.csv",
		Description: importHelp(),
		Flags: []cli.Flag{dbFlag(),
			&cli.StringFlag{Name: "observed", Usage: "the files' streams were live `FROM..TO` (e.g. 2026-11-28T16:00:00Z..2026-11-28T17:00:00Z, or start..end)"},
			&cli.DurationFlag{Name: "max-gap", Usage: "readings further apart than `D` start a new session (e.g. 2s)"},
		},
		Action: func(c *cli.Context) error {
			path, err := dbPath(c)
			if err != nil {
				return err
			}
			if c.NArg() == 0 {
				return errors.New("import: give the FILEs to import")
			}
			opt, err := importOptions(c)
			if err != nil {
				return err
			}
			rep, err := importer.Import(c.Context, path, c.Args().Slice(), opt)
			if err != nil {
				return err
			}
			writeImportReport(c.App.Writer, path, rep, c)
			return nil
		},
	}
}

func importOptions(c *cli.Context) (importer.Options, error) {
	opt := importer.Options{Progress: c.App.ErrWriter}
	if c.IsSet("observed") && c.IsSet("max-gap") {
		return opt, errors.New("--observed and --max-gap: give one of them")
	}
	if c.IsSet("max-gap") {
		if d := c.Duration("max-gap"); d < time.Millisecond {
			return opt, fmt.Errorf("--max-gap %v: want a gap of at least 1ms", d)
		}
		opt.MaxGapMs = c.Duration("max-gap").Milliseconds()
	}
	if c.IsSet("observed") {
		s := c.String("observed")
		from, to, ok := strings.Cut(s, "..")
		if !ok || strings.TrimSpace(from) == "" || strings.TrimSpace(to) == "" {
			return opt, fmt.Errorf("--observed %q: want FROM..TO, e.g. 2026-11-28T16:00:00Z..2026-11-28T17:00:00Z or start..end", s)
		}
		now := time.Now()
		var r query.TimeRange
		var err error
		if r.From, err = query.ParseBound(from, now, time.Local); err != nil {
			return opt, fmt.Errorf("--observed: %w", err)
		}
		if r.To, err = query.ParseBound(to, now, time.Local); err != nil {
			return opt, fmt.Errorf("--observed: %w", err)
		}
		if r.From.Kind == query.BoundTime && r.To.Kind == query.BoundTime && r.To.Ms <= r.From.Ms {
			return opt, fmt.Errorf("--observed %q: the end is not after the start", s)
		}
		opt.Observed = &r
	}
	return opt, nil
}

func writeImportReport(w io.Writer, db string, rep *importer.Report, c *cli.Context) {
	for _, f := range rep.Files {
		from := "from the file"
		switch f.SessionsFrom {
		case importer.SessionsObserved:
			from = "--observed " + c.String("observed")
		case importer.SessionsMaxGap:
			from = "--max-gap " + c.Duration("max-gap").String()
		}
		fmt.Fprintf(w, "read     %s (%s): %d rows of %s; %d sessions (%s)", f.Path, f.Format, f.Rows, strings.Join(f.Endpoints, ", "), f.Sessions, from)
		if f.Format == export.FormatParquet && f.SessionsFrom == importer.SessionsFromFile {
			fmt.Fprintf(w, ", %d clock estimates, %d counter readings, %d marks", f.Clocks, f.Counters, f.Marks)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "wrote    %s: %s\n", db, rep.Counts)
}

func mergeCommand() *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "combine recordings (per node, say) into one new file",
		UsageText: "wattrec merge -o all.db node1.db node2.db",
		Description: `Copies every reading (seed flags and daemon times kept), stream session, clock
estimate, counter reading, run record and mark of each input into a new file,
with each endpoint's latest info; the first input's marks keep their ids, and a
mark equal to one already merged is kept once. The same endpoint may be in two
inputs only at times that do not overlap, or merge refuses, naming both files,
the endpoint and both spans, before it writes anything. The inputs are only read
(a file a running recorder holds is refused); the output is written atomically
(a temp file, checked, renamed into place) and an existing one is kept unless
--force.`,
		Flags: []cli.Flag{
			&cli.PathFlag{Name: "output", Aliases: []string{"o"}, Usage: "the new `FILE`", Required: true},
			&cli.BoolFlag{Name: "force", Usage: "replace an existing output file"},
		},
		Action: func(c *cli.Context) error {
			out := c.Path("output")
			if out == "" {
				return errors.New("-o is empty: give the new FILE")
			}
			if c.NArg() == 0 {
				return errors.New("merge: give the recordings to merge")
			}
			counts, err := importer.Merge(c.Context, out, c.Args().Slice(), c.Bool("force"), c.App.ErrWriter)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "wrote    %s: %s\n", out, counts)
			return nil
		},
	}
}
