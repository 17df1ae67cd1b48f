// Package recording is a wattrec file as the commands use it: read
// through the recorder that holds it or from the file itself (Open),
// recorded by a Daemon that serves those reads on its control socket
// while it runs, and recorded around one command (Run). It wires the
// packages below it together and holds no rule of its own.
package recording

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/wattrec/wattrec/chart"
	"github.com/wattrec/wattrec/control"
	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/report"
	"github.com/wattrec/wattrec/store"
)

// ErrNeedsRecorder means a mark begin or end was asked of a file that no
// recorder holds: only a running recorder can stamp "now".
var ErrNeedsRecorder = errors.New("needs a running recorder")

// Reader answers the reads and marks of one wattrec file: a *File on the
// file itself, or a *control.Client through the recorder that holds it.
// Both give the same bytes.
type Reader interface {
	control.Backend
	Close() error
}

var (
	_ Reader = (*File)(nil)
	_ Reader = (*control.Client)(nil)
)

// Open returns a Reader on the wattrec file at path: through the control
// socket of the recorder that holds it, when one answers, else on the
// file itself, opened read-only unless writable (for marks). Either way
// the file must exist: Open never creates one.
func Open(ctx context.Context, path string, writable bool) (Reader, error) {
	client, err := control.Dial(ctx, path)
	if err == nil {
		return client, nil
	}
	if !errors.Is(err, control.ErrNoRecorder) {
		return nil, err
	}
	db, err := store.Open(path, store.Options{ReadOnly: !writable, MustExist: true})
	if err != nil {
		return nil, err
	}
	return &File{DB: db, Now: time.Now}, nil
}

// File answers reads and marks on an open store.
type File struct {
	DB  *store.DB
	Now func() time.Time // the clock of marks added to the file
}

// Query writes the energy report of opt.
func (f *File) Query(ctx context.Context, w io.Writer, opt query.Options) error {
	return query.Print(ctx, w, f.DB, opt)
}

// Export writes the export req.
func (f *File) Export(ctx context.Context, w io.Writer, req export.Request) error {
	return export.Write(ctx, w, f.DB, req)
}

// Plot draws the power timeline req.
func (f *File) Plot(ctx context.Context, w io.Writer, req chart.Request) error {
	return chart.Write(ctx, w, f.DB, req)
}

// Report writes the HTML report req.
func (f *File) Report(ctx context.Context, w io.Writer, req report.Request) error {
	return report.Write(ctx, w, f.DB, req)
}

// Info writes the file's summary.
func (f *File) Info(ctx context.Context, w io.Writer, format string) error {
	return query.Info(ctx, w, f.DB, format)
}

// Marks lists the marks named name ("" = all), ordered by begin time.
func (f *File) Marks(ctx context.Context, name string) ([]store.Mark, error) {
	return f.DB.Marks(ctx, name)
}

// Mark adds the window of an add request to the file. Begin and end need
// the recorder's clock: on a file they fail with ErrNeedsRecorder.
func (f *File) Mark(ctx context.Context, req control.MarkRequest) (store.Mark, error) {
	if req.Action == control.MarkBegin || req.Action == control.MarkEnd {
		return store.Mark{}, ErrNeedsRecorder
	}
	return applyMark(ctx, f.DB, req, f.Now().UnixMilli())
}

// Close closes the file.
func (f *File) Close() error { return f.DB.Close() }

// applyMark performs req on db at nowMs, each action in one transaction.
func applyMark(ctx context.Context, db *store.DB, req control.MarkRequest, nowMs int64) (store.Mark, error) {
	switch req.Action {
	case control.MarkBegin:
		return db.BeginMark(ctx, req.Name, req.Source, nowMs)
	case control.MarkEnd:
		return db.EndMark(ctx, req.Name, nowMs)
	case control.MarkAdd:
		return db.AddMark(ctx, req.Name, req.Source, req.FromMs, req.ToMs, nowMs)
	}
	return store.Mark{}, query.Invalid("mark action %q: want begin, end or add", req.Action)
}
