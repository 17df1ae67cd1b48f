package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// Options tune Import: how the stream sessions of a file that carries
// none are declared. At most one of Observed and MaxGapMs is set.
type Options struct {
	// Observed, if set, is when every stream of such a file was live:
	// one session per endpoint and stream over it. Its bounds are
	// times, or start and end: the file's first reading and one ms past
	// its last. Every reading must lie inside it.
	Observed *query.TimeRange
	// MaxGapMs, if positive, derives the sessions from the readings:
	// readings of an endpoint's stream further apart than this start a
	// new session, which runs from its first reading to one poll period
	// (its devices' most common spacing) past its last. Each device's
	// readings must come in time order.
	MaxGapMs int64
	// Progress, if set, gets a progress bar per file (drawn only on a
	// terminal).
	Progress io.Writer
}

// Where the sessions of an imported file come from.
const (
	SessionsFromFile = "file"     // the export's own (Parquet metadata)
	SessionsObserved = "observed" // Options.Observed
	SessionsMaxGap   = "max-gap"  // Options.MaxGapMs
)

// FileReport says what Import read from one file.
type FileReport struct {
	Path   string
	Format string // export.FormatParquet, FormatCSV or FormatJSONL
	Rows   int64
	// Endpoints are the endpoints of its rows, sorted.
	Endpoints []string
	// Sessions is how many stream sessions it gave, and SessionsFrom
	// where they came from (SessionsFromFile, ...).
	Sessions     int
	SessionsFrom string
	// What its metadata brought besides (wattrec Parquet only).
	Clocks, Counters, Marks int
}

// Report says what Import did: per file, and the counts of the file it
// wrote.
type Report struct {
	Files  []FileReport
	Counts store.Counts
}

// Import reads files (see export.OpenRaw: wattrec's Parquet, CSV and
// JSON Lines exports, and CSV or JSON Lines files with the import
// columns) into the wattrec file at db, which is created if missing.
// Rows are stored as they are (an identical replay of a stored reading
// is one reading, as always), so exporting the result gives the rows
// read, byte for byte. A wattrec Parquet export brings its sessions,
// clock estimates, counter readings, marks and endpoint info back, the
// sessions clipped to its time filter; the sessions of any other file
// come from opt, and without them Import refuses it (ErrNoSessions).
//
// An endpoint may come from several files, or from a file and db, only
// at times that do not overlap (ErrOverlap names both). The result is
// written atomically: a new file (db's records first, its marks keeping
// their IDs, then each file's) checked and renamed over db, so a failed
// or interrupted import changes nothing. db is held read-only meanwhile:
// a file that a running recorder holds is store.ErrLocked.
func Import(ctx context.Context, db string, files []string, opt Options) (*Report, error) {
	if len(files) == 0 {
		return nil, errors.New("import: no files")
	}
	if opt.Observed != nil && opt.MaxGapMs > 0 {
		return nil, errors.New("import: declare the observed span or the longest gap, not both")
	}
	if opt.MaxGapMs < 0 {
		return nil, fmt.Errorf("import: longest gap %d ms: want a positive one", opt.MaxGapMs)
	}
	for _, f := range files {
		if same(f, db) {
			return nil, fmt.Errorf("import: %s is the file imported into", f)
		}
	}
	var base *store.DB
	_, err := os.Lstat(db)
	switch {
	case err == nil:
		if base, err = store.Open(db, store.Options{ReadOnly: true}); err != nil {
			return nil, err
		}
		defer base.Close()
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	rep := &Report{}
	rep.Counts, err = createFile(ctx, db, base != nil, func(out *store.DB) error {
		s := newSink(ctx, out)
		var known []*source
		if base != nil {
			src, err := spansOf(ctx, db, base)
			if err != nil {
				return err
			}
			known = append(known, src)
			if err := copyBase(ctx, s, base, opt.Progress); err != nil {
				return fmt.Errorf("copy %s: %w", db, err)
			}
		}
		for _, path := range files {
			fr, src, err := importFile(ctx, s, path, opt, known)
			if err != nil {
				return err
			}
			rep.Files = append(rep.Files, *fr)
			known = append(known, src)
		}
		return s.finish()
	})
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return rep, nil
}

// importFile reads one file into s and returns what it read and its
// endpoints' spans, which must not overlap those of known.
func importFile(ctx context.Context, s *sink, path string, opt Options, known []*source) (*FileReport, *source, error) {
	rf, err := export.OpenRaw(path)
	if err != nil {
		return nil, nil, err
	}
	defer rf.Close()
	fr := &FileReport{Path: path, Format: rf.Format}
	meta := rf.Meta
	switch {
	case meta != nil && !slices.Contains(meta.Thinned, "sessions"):
		fr.SessionsFrom = SessionsFromFile
	case opt.Observed != nil:
		fr.SessionsFrom = SessionsObserved
	case opt.MaxGapMs > 0:
		fr.SessionsFrom = SessionsMaxGap
	case meta != nil:
		return nil, nil, fmt.Errorf("%s: %w: its session list was thinned to fit the Parquet footer; declare its observed span", path, ErrNoSessions)
	default:
		return nil, nil, fmt.Errorf("%s: %w: a %s file carries none; declare its observed span", path, ErrNoSessions, rf.Format)
	}
	obs := newObserver(opt.Observed, opt.MaxGapMs)
	src := &source{name: path, spans: map[string]span{}}

	// The rows.
	bar := export.NewProgressBar(progressWriter(opt.Progress), "import")
	defer bar.Finish()
	s.flushed = func() { bar.Update(rf.Progress()) }
	defer func() { s.flushed = nil }()
	var r store.Reading
	for {
		err := rf.Next(&r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if fr.SessionsFrom != SessionsFromFile {
			if err := obs.add(&r, rf.Where); err != nil {
				return nil, nil, err
			}
		}
		src.add(r.Endpoint, r.TimeMs, r.TimeMs+1)
		if err := s.reading(&r); err != nil {
			return nil, nil, err
		}
	}
	fr.Rows, _ = rf.Progress()
	bar.Update(fr.Rows, fr.Rows)

	// The sessions, and what the metadata brings besides.
	var sessions []store.Session
	if fr.SessionsFrom == SessionsFromFile {
		for _, ss := range meta.Sessions {
			// An export's window cuts the sessions that overlap it:
			// nothing of them outside it was exported.
			ss.Start, ss.End = max(ss.Start, meta.Range.From), min(ss.End, meta.Range.To)
			if ss.Start < ss.End || ss.Start == ss.End && meta.Range == query.All {
				sessions = append(sessions, ss)
			}
		}
	} else if sessions, err = obs.sessions(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, ss := range sessions {
		src.add(ss.Endpoint, ss.Start, ss.End)
		if err := s.session(ss); err != nil {
			return nil, nil, err
		}
	}
	fr.Sessions = len(sessions)
	if meta != nil {
		for _, e := range meta.Endpoints {
			s.info(e)
		}
		for _, c := range meta.Clocks {
			if err := s.clock(c); err != nil {
				return nil, nil, err
			}
		}
		for i := range meta.Counters {
			c := &meta.Counters[i]
			src.add(c.Endpoint, c.TakenMs, c.TakenMs+1)
			if err := s.counter(c); err != nil {
				return nil, nil, err
			}
		}
		for _, m := range meta.Marks {
			if err := s.mark(m, false); err != nil {
				return nil, nil, err
			}
		}
		fr.Clocks, fr.Counters, fr.Marks = len(meta.Clocks), len(meta.Counters), len(meta.Marks)
	}
	fr.Endpoints = slices.Sorted(maps.Keys(src.spans))
	if err := overlap(src, known); err != nil {
		return nil, nil, err
	}
	return fr, src, s.flush()
}

// copyBase hands every record of the file imported into to s, its marks
// keeping their IDs, with a progress bar.
func copyBase(ctx context.Context, s *sink, base *store.DB, progress io.Writer) error {
	series, err := base.Series(ctx, "", false)
	if err != nil {
		return err
	}
	var done, total int64
	for _, k := range series {
		total += int64(k.Readings)
	}
	bar := export.NewProgressBar(progressWriter(progress), "copy")
	defer bar.Finish()
	return copyDB(ctx, s, base, true, func(n int) {
		done += int64(n)
		bar.Update(done, total)
	})
}
