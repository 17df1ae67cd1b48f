package recording

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/wattrec/wattrec/chart"
	"github.com/wattrec/wattrec/control"
	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/metrics"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/remotewrite"
	"github.com/wattrec/wattrec/report"
	"github.com/wattrec/wattrec/store"
)

// Daemon is a recorder at work: it records into its file and, beside it,
// serves the file's reads and marks on the control socket (FILE.sock).
// Every read first commits what was received, so it sees everything up
// to now; marks are stamped with the recorder's clock and read the
// hardware counters.
//
// With Metrics it serves them on MetricsListener (/metrics) while it
// records; with Senders it pushes the file to their remote-write
// receivers while it records, and once more after the final commit.
type Daemon struct {
	Recorder *recorder.Recorder
	DB       *store.DB
	Logger   *slog.Logger

	// Metrics, if set, observes the recorder's commits (it is made its
	// Observer) and is served on MetricsListener, which Run closes.
	Metrics         *metrics.Collector
	MetricsListener net.Listener
	// Senders push the file, each to its receiver.
	Senders []*remotewrite.Sender
	// FinalPushTimeout bounds the push after the final commit; zero
	// means DefaultFinalPushTimeout. What it leaves is pushed at the
	// next start.
	FinalPushTimeout time.Duration
}

// DefaultFinalPushTimeout bounds the push after the final commit.
const DefaultFinalPushTimeout = 10 * time.Second

var _ control.Backend = (*Daemon)(nil)

// Run records until ctx is done, serving the control socket (and the
// metrics, and pushing to the receivers) meanwhile, and returns once all
// have stopped: nil after a clean stop with everything received stored.
// Without a control socket it does not start (see control.Listen).
func (d *Daemon) Run(ctx context.Context) error {
	ln, err := control.Listen(d.DB.Path())
	if err != nil {
		if d.MetricsListener != nil {
			d.MetricsListener.Close()
		}
		return err
	}
	// The socket, the metrics and the pushes outlive ctx by the final
	// flush: they stop after the recorder.
	bgCtx, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBg()
	srv := &control.Server{Backend: d, DB: d.DB.Path(), Logger: d.Logger}
	ctlDone := make(chan error, 1)
	go func() { ctlDone <- srv.Serve(bgCtx, ln) }()
	metricsDone := make(chan error, 1)
	if d.Metrics != nil {
		d.Recorder.Observer = d.Metrics
		d.Metrics.Pushes = d.pushStats
		go func() { metricsDone <- metrics.Serve(bgCtx, d.MetricsListener, d.Metrics.Handler()) }()
	} else {
		metricsDone <- nil
	}
	pushCtx, stopPush := context.WithCancel(bgCtx)
	defer stopPush()
	var pushes sync.WaitGroup
	for _, s := range d.Senders {
		pushes.Add(1)
		go func() {
			defer pushes.Done()
			// Nothing is written to the file before the start succeeded,
			// push positions neither.
			select {
			case <-d.Recorder.Started():
			case <-pushCtx.Done():
				return
			}
			if err := s.Run(pushCtx); err != nil {
				d.Logger.Error("remote write stopped", "receiver", s.Receiver.ID(), "err", err)
			}
		}()
	}

	runErr := d.Recorder.Run(ctx)
	stopPush()
	pushes.Wait()
	select {
	case <-d.Recorder.Started():
		d.finalPush(bgCtx)
	default:
	}
	stopBg()
	if err := <-ctlDone; err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("control socket: %w", err))
	}
	if err := <-metricsDone; err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("metrics: %w", err))
	}
	return runErr
}

// finalPush pushes what the final commit added, to every receiver at
// once, within FinalPushTimeout.
func (d *Daemon) finalPush(ctx context.Context) {
	timeout := d.FinalPushTimeout
	if timeout <= 0 {
		timeout = DefaultFinalPushTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var pushes sync.WaitGroup
	for _, s := range d.Senders {
		pushes.Add(1)
		go func() {
			defer pushes.Done()
			if err := s.Sync(ctx); err != nil {
				d.Logger.Warn("remote write: the last samples are not delivered yet; the next start pushes them",
					"receiver", s.Receiver.ID(), "through", query.FormatTime(s.Stats().ThroughMs), "err", err)
			}
		}()
	}
	pushes.Wait()
}

// pushStats is the senders' state for the metrics.
func (d *Daemon) pushStats() []metrics.PushStats {
	out := make([]metrics.PushStats, len(d.Senders))
	for i, s := range d.Senders {
		st := s.Stats()
		out[i] = metrics.PushStats{Receiver: s.Receiver.ID(), Samples: st.Samples, SkippedSamples: st.SkippedSamples,
			Retries: st.Retries, ThroughMs: st.ThroughMs}
	}
	return out
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

// Plot commits what was received and draws the timeline req.
func (d *Daemon) Plot(ctx context.Context, w io.Writer, req chart.Request) error {
	if err := d.flush(ctx); err != nil {
		return err
	}
	return d.file().Plot(ctx, w, req)
}

// Report commits what was received and writes the report req.
func (d *Daemon) Report(ctx context.Context, w io.Writer, req report.Request) error {
	if err := d.flush(ctx); err != nil {
		return err
	}
	return d.file().Report(ctx, w, req)
}

// Info commits what was received and writes the file's summary.
func (d *Daemon) Info(ctx context.Context, w io.Writer, format string) error {
	if err := d.flush(ctx); err != nil {
		return err
	}
	return d.file().Info(ctx, w, format)
}

// Marks lists the marks named name ("" = all).
func (d *Daemon) Marks(ctx context.Context, name string) ([]store.Mark, error) {
	return d.DB.Marks(ctx, name)
}

// Mark performs req. A begin or an end reads the hardware counters first
// and stands at the time of those readings (the midpoints of their
// requests): a begin at the latest of them, an end at the earliest, so
// that every series' readings bracket the window, none inside it. It
// returns once they are stored. An add has its own times.
func (d *Daemon) Mark(ctx context.Context, req control.MarkRequest) (store.Mark, error) {
	now := d.Recorder.Client.Now().UnixMilli()
	if req.Action == control.MarkBegin || req.Action == control.MarkEnd {
		if err := store.CheckMarkName(req.Name); err != nil {
			return store.Mark{}, err
		}
		now = d.counterTime(ctx, req.Name, req.Action == control.MarkBegin)
	}
	m, err := applyMark(ctx, d.DB, req, now)
	if err != nil {
		return m, err
	}
	d.Logger.Info("mark", "name", m.Name, "action", req.Action, "id", m.ID)
	return m, nil
}

// counterTime reads the hardware counters for a mark, waits until the
// readings are stored, and returns the time a window that begins (or,
// with begin false, ends) there should take: the latest (the earliest)
// of their midpoints, or now when there are none.
func (d *Daemon) counterTime(ctx context.Context, mark string, begin bool) int64 {
	rs, err := d.Recorder.Client.ReadCounters(ctx, store.TriggerMark)
	if err != nil {
		d.Logger.Warn("reading counters at a mark", "mark", mark, "err", err)
	}
	if len(rs) == 0 {
		return d.Recorder.Client.Now().UnixMilli()
	}
	if err := d.Recorder.Flush(ctx); err != nil {
		d.Logger.Warn("storing the counter readings of a mark", "mark", mark, "err", err)
	}
	t := rs[0].TakenMs
	for _, r := range rs {
		if begin {
			t = max(t, r.TakenMs)
		} else {
			t = min(t, r.TakenMs)
		}
	}
	return t
}

func (d *Daemon) flush(ctx context.Context) error {
	if err := d.Recorder.Flush(ctx); err != nil {
		return fmt.Errorf("commit before read: %w", err)
	}
	return nil
}
