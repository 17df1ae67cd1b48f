package recording

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/wattrec/wattrec/control"
	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/store"
)

// Daemon is a recorder at work: it records into its file and, beside it,
// serves the file's reads and marks on the control socket (FILE.sock).
// Every read first commits what was received, so it sees everything up
// to now; marks are stamped with the recorder's clock and read the
// hardware counters.
type Daemon struct {
	Recorder *recorder.Recorder
	DB       *store.DB
	Logger   *slog.Logger
}

var _ control.Backend = (*Daemon)(nil)

// Run records until ctx is done, serving the control socket meanwhile,
// and returns once both have stopped: nil after a clean stop with
// everything received stored.
func (d *Daemon) Run(ctx context.Context) error {
	// The socket outlives ctx by the final flush: it stops after Run.
	ctlCtx, stopCtl := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCtl()
	srv := &control.Server{Backend: d, DB: d.DB.Path(), Logger: d.Logger}
	ctlDone := make(chan error, 1)
	go func() { ctlDone <- srv.Serve(ctlCtx, control.SocketPath(d.DB.Path())) }()

	runErr := d.Recorder.Run(ctx)
	stopCtl()
	if err := <-ctlDone; err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("control socket: %w", err))
	}
	return runErr
}

func (d *Daemon) file() *File { return &File{DB: d.DB, Now: d.Recorder.Client.Now} }

// Query commits what was received and writes the report of opt.
func (d *Daemon) Query(ctx context.Context, w io.Writer, opt query.Options) error {
	if err := d.flush(ctx); err != nil {
		return err
	}
	return d.file().Query(ctx, w, opt)
}

// Export commits what was received and writes the export req.
func (d *Daemon) Export(ctx context.Context, w io.Writer, req export.Request) error {
	if err := d.flush(ctx); err != nil {
		return err
	}
	return d.file().Export(ctx, w, req)
}

// Info commits what was received and writes the file's summary.
func (d *Daemon) Info(ctx context.Context, w io.Writer) error {
	if err := d.flush(ctx); err != nil {
		return err
	}
	return d.file().Info(ctx, w)
}

// Marks lists the marks named name ("" = all).
func (d *Daemon) Marks(ctx context.Context, name string) ([]store.Mark, error) {
	return d.DB.Marks(ctx, name)
}

// Mark performs req at the recorder's clock and reads the hardware
// counters, so that the window's energy can be checked against them.
func (d *Daemon) Mark(ctx context.Context, req control.MarkRequest) (store.Mark, error) {
	m, err := applyMark(ctx, d.DB, req, d.Recorder.Client.Now().UnixMilli())
	if err != nil {
		return m, err
	}
	if err := d.Recorder.Client.ReadCounters(ctx, store.TriggerMark); err != nil {
		d.Logger.Warn("reading counters at a mark", "mark", m.Name, "err", err)
	}
	d.Logger.Info("mark", "name", m.Name, "action", req.Action, "id", m.ID)
	return m, nil
}

func (d *Daemon) flush(ctx context.Context) error {
	if err := d.Recorder.Flush(ctx); err != nil {
		return fmt.Errorf("commit before read: %w", err)
	}
	return nil
}
