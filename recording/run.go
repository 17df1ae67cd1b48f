package recording

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/wattrec/wattrec/control"
	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
)

// ExitStatus is the exit status of the command Run ran, when it did not
// exit 0 (128 + the signal's number when a signal ended it).
type ExitStatus int

func (e ExitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// firstValuesWait bounds the wait for every stream's first value before
// the command starts: a flat GPU without a seed may take long.
const firstValuesWait = 5 * time.Second

// summaryTimeout bounds the energy summary after the command ended.
const summaryTimeout = time.Minute

// Run records with d while cmd runs: it starts recording, starts cmd once
// every stream delivered its first value (or after a few seconds), with
// hardware counter readings just before it starts and just after it
// ended that bracket its window,
// passes every signal from signals on to it, stops recording after it
// exited, marks its window with its command line (source "run"), and
// writes an energy summary (per device and total, with coverage) as
// summary says. Cancelling ctx does not stop the recording: the command's
// end does. It returns nil when cmd exited 0, an ExitStatus when it
// exited otherwise, and an error when recording or starting cmd failed
// (a summary that could not be written is said on summary.Text).
func Run(ctx context.Context, d *Daemon, cmd *exec.Cmd, signals <-chan os.Signal, summary Summary) error {
	// The recording stops when the command has ended, not before.
	ctx = context.WithoutCancel(ctx)
	recCtx, stopRec := context.WithCancel(ctx)
	defer stopRec()
	recDone := make(chan error, 1)
	go func() { recDone <- d.Run(recCtx) }()
	select {
	case <-d.Recorder.Started():
	case err := <-recDone:
		return fmt.Errorf("recording did not start: %w", err)
	}

	// Energy is known once every stream has its first value. Counter
	// readings just before the command starts and just after it ends
	// (the mark) bracket its window.
	waitCtx, cancelWait := context.WithTimeout(ctx, firstValuesWait)
	if err := d.Recorder.Client.WaitFirstValues(waitCtx); err != nil {
		d.Logger.Warn("starting the command before every stream delivered a value", "err", err)
	}
	cancelWait()

	name := strings.Join(cmd.Args, " ")
	begin := d.counterTime(ctx, name, true)
	cmdErr, err := runForwarding(cmd, signals)
	if err != nil {
		stopRec()
		return errors.Join(err, <-recDone)
	}
	end := d.counterTime(ctx, name, false)

	window := query.Interval{From: begin, To: max(end, begin+1)}
	if _, err := d.Mark(ctx, control.MarkRequest{Action: control.MarkAdd, Name: name, FromMs: window.From, ToMs: window.To, Source: "run"}); err != nil {
		d.Logger.Error("marking the command's window", "err", err)
	}
	stopRec()
	if err := <-recDone; err != nil {
		return fmt.Errorf("recording: %w", err)
	}

	fmt.Fprintf(summary.Text, "\nwattrec: energy while %q ran (%s):\n", name, time.Duration(window.Len())*time.Millisecond)
	sctx, cancel := context.WithTimeout(ctx, summaryTimeout)
	defer cancel()
	// One report, written as a table and, if asked, as JSON.
	rep, err := query.Energy(sctx, d.DB, query.Options{Filter: query.Filter{Range: query.Between(window.From, window.To)}})
	if err == nil {
		err = errors.Join(rep.Write(summary.Text, query.FormatTable), rep.WriteWarnings(summary.Text))
	}
	if err != nil {
		fmt.Fprintf(summary.Text, "wattrec: no energy summary: %v\n", err)
		return exitStatus(cmdErr)
	}
	if summary.JSONPath != "" {
		err := export.WriteFile(summary.JSONPath, true, func(w io.Writer) error { return rep.Write(w, query.FormatJSON) })
		if err != nil {
			fmt.Fprintf(summary.Text, "wattrec: no JSON summary in %s: %v\n", summary.JSONPath, err)
		}
	}
	return exitStatus(cmdErr)
}

// Summary says where Run writes its energy summary: a table (and its
// warnings) to Text, and the same report as `query --format json` to
// the file JSONPath, if set (replaced atomically).
type Summary struct {
	Text     io.Writer
	JSONPath string
}

// runForwarding starts cmd, passes signals on to it until it exits, and
// returns how it exited; err is a failure to start it.
func runForwarding(cmd *exec.Cmd, signals <-chan os.Signal) (cmdErr, err error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	for {
		select {
		case sig := <-signals:
			cmd.Process.Signal(sig)
		case err := <-waited:
			return err, nil
		}
	}
}

func exitStatus(err error) error {
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return ExitStatus(128 + int(ws.Signal()))
		}
		return ExitStatus(exitErr.ExitCode())
	}
	return err
}
