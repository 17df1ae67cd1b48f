package export

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// Export formats.
const (
	FormatParquet = "parquet"
	FormatCSV     = "csv"
	FormatJSONL   = "jsonl"
)

// Formats lists the export formats.
var Formats = []string{FormatParquet, FormatCSV, FormatJSONL}

// Request is one export: the raw readings that pass Filter or, with
// GridMs, their energy grid, in Format.
type Request struct {
	Filter  query.Filter
	Format  string // FormatParquet, FormatCSV or FormatJSONL (default; the grid has no JSONL)
	GridMs  int64  // bin width of the grid; 0: the raw readings
	Options Options
}

// Write runs req against db and writes the export to w.
func Write(ctx context.Context, w io.Writer, db *store.DB, req Request) error {
	var err error
	switch {
	case req.GridMs != 0 && req.Format == FormatParquet:
		_, err = GridParquet(ctx, w, db, req.Filter, req.GridMs, req.Options)
	case req.GridMs != 0 && req.Format == FormatCSV:
		_, err = GridCSV(ctx, w, db, req.Filter, req.GridMs, req.Options)
	case req.GridMs != 0:
		err = query.Invalid("format %q: the grid is written as parquet or csv", req.Format)
	case req.Format == FormatParquet:
		_, err = Parquet(ctx, w, db, req.Filter, req.Options)
	case req.Format == FormatCSV:
		_, err = CSV(ctx, w, db, req.Filter, req.Options)
	case req.Format == FormatJSONL || req.Format == "":
		_, err = JSONL(ctx, w, db, req.Filter, req.Options)
	default:
		err = query.Invalid("format %q: want parquet, csv or jsonl", req.Format)
	}
	return err
}

// FormatFor is the format of an export to path: format when it is set,
// else the one path's extension names (.parquet or .pq, .csv), else
// JSON Lines.
func FormatFor(path, format string) (string, error) {
	if format != "" {
		if !slices.Contains(Formats, format) {
			return "", query.Invalid("format %q: want parquet, csv or jsonl", format)
		}
		return format, nil
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".parquet", ".pq":
		return FormatParquet, nil
	case ".csv":
		return FormatCSV, nil
	}
	return FormatJSONL, nil
}

// GridPath is where the grid of an export to path goes: beside it, with
// ".grid" before the extension (run.parquet → run.grid.parquet).
func GridPath(path string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + ".grid" + ext
}

// Output is one file an export writes: Path ("" for standard output)
// and what goes into it.
type Output struct {
	Path    string
	Request Request
}

// Outputs are the files of an export of req to path: the raw readings
// unless gridOnly, and the grid (req.GridMs > 0) beside them or, with
// gridOnly, at path. An existing file is refused (ErrExists) unless force,
// and anything but a regular file always (ErrNotRegular), before anything
// is written.
func Outputs(path string, req Request, gridOnly, force bool) ([]Output, error) {
	gridMs := req.GridMs
	switch {
	case gridMs < 0:
		return nil, query.Invalid("grid bin %d ms: want at least 1 ms", gridMs)
	case gridOnly && gridMs == 0:
		return nil, ErrNoGrid
	case gridMs > 0 && req.Format == FormatJSONL:
		return nil, ErrGridFormat
	case gridMs > 0 && !gridOnly && path == "":
		return nil, ErrGridNeedsFile
	}
	var outs []Output
	if !gridOnly {
		raw := req
		raw.GridMs = 0
		outs = append(outs, Output{path, raw})
	}
	if gridMs > 0 {
		p := path
		if !gridOnly {
			p = GridPath(path)
		}
		outs = append(outs, Output{p, req})
	}
	for _, o := range outs {
		if o.Path == "" {
			continue
		}
		if err := Replaceable(o.Path, force); err != nil {
			return nil, err
		}
	}
	return outs, nil
}
