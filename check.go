package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "check a recording file for damage: bbolt's pages, every record and chunk",
		UsageText: "wattrec check --db run.db",
		ArgsUsage: dbArg,
		Description: `Reads the file page by page without trusting it (it works on files that other
commands refuse): both meta pages, the file's size against the pages they count,
every page of the tree (in the file, used once, keys in order), the freelist, every
record and chunk (each decoded; chunk sums and series stats recomputed), then, if
the pages are sound, bbolt's own check. Prints what it checked and every problem;
exits 1 when the file is damaged. It never writes. For a damaged file,
wattrec repair --db FILE -o NEW copies what is readable.`,
		Flags: []cli.Flag{dbFlag(), formatFlag("table or json")},
		Action: func(c *cli.Context) error {
			format, err := tableOrJSON(c)
			if err != nil {
				return err
			}
			path, err := dbPath(c)
			if err != nil {
				return err
			}
			rep, err := store.CheckFile(c.Context, path)
			if format == query.FormatJSON {
				if jerr := writeCheckJSON(c.App.Writer, rep); jerr != nil {
					return jerr
				}
			} else {
				writeCheckReport(c.App.Writer, rep)
			}
			if errors.Is(err, store.ErrCorrupt) {
				return checkFailed{err}
			}
			return err
		},
	}
}

// checkFailed is check's verdict on a damaged file: its hint is repair,
// not check again.
type checkFailed struct{ error }

func (e checkFailed) Unwrap() error { return e.error }

// writeCheckJSON writes r as one JSON object: what was checked, sound or
// not, and each problem's message.
func writeCheckJSON(w io.Writer, r *store.CheckReport) error {
	problems := []string{}
	for _, p := range r.Problems {
		problems = append(problems, p.Error())
	}
	b, err := json.MarshalIndent(struct {
		File          string       `json:"file"`
		SizeBytes     int64        `json:"size_bytes"`
		PageSize      int          `json:"page_size"`
		Pages         uint64       `json:"pages"`
		BranchPages   int          `json:"branch_pages"`
		LeafPages     int          `json:"leaf_pages"`
		OverflowPages int          `json:"overflow_pages"`
		FreePages     int          `json:"free_pages"`
		Records       store.Counts `json:"records"`
		BoltChecked   bool         `json:"bolt_checked"`
		Sound         bool         `json:"sound"`
		Problems      []string     `json:"problems"`
	}{r.Path, r.Size, r.PageSize, r.Pages, r.BranchPages, r.LeafPages, r.OverflowPages, r.FreePages, r.Records, r.BoltChecked,
		len(r.Problems) == 0, problems}, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func writeCheckReport(w io.Writer, r *store.CheckReport) {
	fmt.Fprintf(w, "file     %s (%d bytes)\n", r.Path, r.Size)
	if r.PageSize > 0 {
		fmt.Fprintf(w, "pages    %d of %d bytes: %d branch, %d leaf, %d overflow, %d free (meta pages, page tree and freelist checked)\n",
			r.Pages, r.PageSize, r.BranchPages, r.LeafPages, r.OverflowPages, r.FreePages)
		fmt.Fprintf(w, "records  %s (each decoded; chunk sums and series stats recomputed)\n", r.Records)
	}
	if r.BoltChecked {
		fmt.Fprintln(w, "bbolt    its own consistency check passed")
	}
	if len(r.Problems) == 0 {
		fmt.Fprintln(w, "sound")
		return
	}
	fmt.Fprintf(w, "damaged  %d problems:\n", len(r.Problems))
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  %v\n", p)
	}
}

func repairCommand() *cli.Command {
	return &cli.Command{
		Name:      "repair",
		Usage:     "copy every readable record of a damaged recording into a new file",
		UsageText: "wattrec repair --db run.db -o fixed.db",
		ArgsUsage: dbArg,
		Description: `Reads the file page by page as check does and writes every chunk and record
that decodes (runs, marks, endpoint info, sessions, clock estimates, counter
readings, readings) into a new file, which is checked and then put in place
(never over an existing file). Prints what it copied and, per bucket, what it
could not read. The damaged file is never written to.`,
		Flags: []cli.Flag{dbFlag(),
			&cli.PathFlag{Name: "output", Aliases: []string{"o"}, Usage: "the new `FILE` (must not exist)", Required: true}},
		Action: func(c *cli.Context) error {
			src, err := dbPath(c)
			if err != nil {
				return err
			}
			dst := c.Path("output")
			if dst == "" {
				return errors.New("-o is empty: give the new FILE")
			}
			rep, err := store.Repair(c.Context, src, dst)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "wrote    %s: %s\n", dst, rep.Copied)
			if len(rep.Lost) == 0 {
				fmt.Fprintln(c.App.Writer, "lost     nothing")
				return nil
			}
			fmt.Fprintf(c.App.Writer, "lost     %d parts:\n", len(rep.Lost))
			for _, l := range rep.Lost {
				fmt.Fprintf(c.App.Writer, "  %s\n", l)
			}
			return nil
		},
	}
}
