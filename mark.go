package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wattrec/wattrec/control"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/recording"
	"github.com/wattrec/wattrec/store"
)

func markCommand() *cli.Command {
	return &cli.Command{
		Name:      "mark",
		Usage:     "name a window of the recording (begin/end while recording, add afterwards), or list them",
		UsageText: "wattrec mark begin --db run.db epoch",
		Description: `Windows may overlap, nest and repeat; query --window NAME reports each instance
and their sum. begin and end go through the running recorder (which also reads the
hardware counters at each mark); add also works on a closed file. From a script,
one HTTP call on the control socket FILE.sock does the same:
  curl --unix-socket run.db.sock -X POST http://localhost/v1/marks -d '{"action":"begin","name":"epoch"}'`,
		Subcommands: []*cli.Command{
			{Name: "begin", Usage: "open a window named NAME now", UsageText: "wattrec mark begin --db run.db NAME",
				Flags: []cli.Flag{dbFlag()}, Action: markAction(control.MarkBegin)},
			{Name: "end", Usage: "close the latest open window named NAME now", UsageText: "wattrec mark end --db run.db NAME",
				Flags: []cli.Flag{dbFlag()}, Action: markAction(control.MarkEnd)},
			{Name: "add", Usage: "add a window NAME from T0 to T1", UsageText: "wattrec mark add --db run.db --from 2026-11-27T16:00:00Z --to 2026-11-27T16:10:00Z NAME",
				Flags:  []cli.Flag{dbFlag(), &cli.StringFlag{Name: "from", Usage: "begin `TIME`"}, &cli.StringFlag{Name: "to", Usage: "end `TIME`"}},
				Action: markAction(control.MarkAdd)},
			{Name: "list", Usage: "list the marks", UsageText: "wattrec mark list --db run.db [NAME]", Flags: []cli.Flag{dbFlag(), formatFlag("table or json")},
				Action: func(c *cli.Context) error {
					format, err := tableOrJSON(c)
					if err != nil {
						return err
					}
					return withReader(c, false, func(rd recording.Reader) error {
						marks, err := rd.Marks(c.Context, c.Args().First())
						if err != nil {
							return err
						}
						if format == query.FormatJSON {
							return writeMarksJSON(c.App.Writer, marks)
						}
						return writeMarks(c.App.Writer, marks)
					})
				}},
		},
	}
}

// markAction performs one mark action through the recorder, or on the
// file when none holds it (add only).
func markAction(action string) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() != 1 {
			return fmt.Errorf("mark %s: want exactly one NAME, got %d arguments", action, c.NArg())
		}
		req := control.MarkRequest{Action: action, Name: c.Args().First(), Source: "cli"}
		if action == control.MarkAdd {
			if !c.IsSet("from") || !c.IsSet("to") {
				return errors.New("mark add: --from and --to are required")
			}
			now := time.Now()
			var err error
			if req.FromMs, err = query.ParseTime(c.String("from"), now, time.Local); err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			if req.ToMs, err = query.ParseTime(c.String("to"), now, time.Local); err != nil {
				return fmt.Errorf("--to: %w", err)
			}
		}
		return withReader(c, action == control.MarkAdd, func(rd recording.Reader) error {
			m, err := rd.Mark(c.Context, req)
			if err != nil {
				return fmt.Errorf("mark %s on %s: %w", action, c.Path("db"), err)
			}
			end := "open"
			if !m.Open {
				end = query.FormatTime(m.EndMs)
			}
			fmt.Fprintf(c.App.Writer, "mark %d %q: %s → %s\n", m.ID, m.Name, query.FormatTime(m.BeginMs), end)
			return nil
		})
	}
}

// writeMarksJSON writes marks as a JSON list, times as RFC 3339 and Unix
// ms; an open mark's end is null.
func writeMarksJSON(w io.Writer, marks []store.Mark) error {
	type jsonMark struct {
		ID      uint64  `json:"id"`
		Name    string  `json:"name"`
		Begin   string  `json:"begin"`
		BeginMs int64   `json:"begin_ms"`
		End     *string `json:"end"`
		EndMs   *int64  `json:"end_ms"`
		Open    bool    `json:"open"`
		Source  string  `json:"source"`
	}
	out := []jsonMark{}
	for _, m := range marks {
		j := jsonMark{ID: m.ID, Name: m.Name, Begin: query.FormatTime(m.BeginMs), BeginMs: m.BeginMs, Open: m.Open, Source: m.Source}
		if !m.Open {
			end, endMs := query.FormatTime(m.EndMs), m.EndMs
			j.End, j.EndMs = &end, &endMs
		}
		out = append(out, j)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func writeMarks(w io.Writer, marks []store.Mark) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tBEGIN\tEND\tSOURCE")
	for _, m := range marks {
		end := "open"
		if !m.Open {
			end = query.FormatTime(m.EndMs)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", m.ID, m.Name, query.FormatTime(m.BeginMs), end, m.Source)
	}
	return tw.Flush()
}
