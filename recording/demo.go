package recording

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

// DemoOptions configure Demo.
type DemoOptions struct {
	DB        string           // the file to record into
	Duration  time.Duration    // how long to record
	Simulator simulator.Config // the simulated zeusd
	Version   string           // stored with the run
	Logger    *slog.Logger
}

// Demo starts a simulated zeusd on a Unix socket in a temporary
// directory, records it into opt.DB for opt.Duration, and writes what
// was stored to w: the info summary, the energy by kind, and the first
// raw readings of gpu:0 as JSON Lines.
func Demo(ctx context.Context, w io.Writer, opt DemoOptions) (err error) {
	sim, err := simulator.New(opt.Simulator)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "wattrec-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "zeusd.sock")
	ln, err := simulator.Listen("", sock)
	if err != nil {
		return err
	}
	simCtx, stopSim := context.WithCancel(ctx)
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Serve(simCtx, ln) }()
	defer func() { stopSim(); <-simDone }()

	db, err := store.Open(opt.DB, store.Options{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	srv := recorder.Server{Network: "unix", Address: sock}
	client := recorder.NewClient([]recorder.Server{srv})
	client.Logger = opt.Logger
	rec := recorder.New(client, db)
	rec.Version, rec.Servers = opt.Version, []string{srv.String()}
	fmt.Fprintf(w, "recording the simulated zeusd at %s into %s for %s...\n", sock, opt.DB, opt.Duration)
	recCtx, cancel := context.WithTimeout(ctx, opt.Duration)
	defer cancel()
	if err := rec.Run(recCtx); err != nil {
		return err
	}

	fmt.Fprintln(w)
	if err := query.Info(ctx, w, db, query.FormatTable); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nenergy by kind (wattrec query --by kind):")
	if err := query.Print(ctx, w, db, query.Options{By: query.ByKind}); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nfirst readings of gpu:0 (wattrec export --format jsonl --device gpu:0):")
	var buf strings.Builder
	gpu0 := query.Filter{Devices: []query.DeviceFilter{{Kind: store.KindGPU}}}
	if _, err := export.JSONL(ctx, &buf, db, gpu0, export.Options{}); err != nil {
		return err
	}
	lines := strings.SplitN(buf.String(), "\n", 6)
	fmt.Fprintln(w, strings.Join(lines[:min(5, len(lines))], "\n"))
	return nil
}
