package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wattrec/wattrec/control"
	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/simulator"
)

// hangingCounters serves a simulator whose get_cumulative_energy hangs
// once hang is closed, telling hung about each request it holds. It
// returns the socket path.
func hangingCounters(t *testing.T, cfg simulator.Config, hang <-chan struct{}, hung chan<- struct{}) string {
	t.Helper()
	sim, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api := sim.Handler()
	sock := filepath.Join(t.TempDir(), "zeusd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/get_cumulative_energy") {
			select {
			case <-hang:
				select {
				case hung <- struct{}{}:
				default:
				}
				<-r.Context().Done() // until the client gives up
				return
			default:
			}
		}
		api.ServeHTTP(w, r)
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		sim.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return sock
}

// TestRecord_SecondSignal: a second SIGTERM while the recorder waits on
// its final steps (here, a stop-time counter read the daemon never
// answers) exits at once with status 1, and the file keeps what was
// committed.
func TestRecord_SecondSignal(t *testing.T) {
	t.Parallel()
	sent := simtest.NewLedger()
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.OnEvent = sent.OnEvent(t)
	hang, hung := make(chan struct{}), make(chan struct{}, 1)
	sock := hangingCounters(t, cfg, hang, hung)
	db := filepath.Join(t.TempDir(), "run.db")
	cmd, out := child(t, nil, "record", "--db", db, "--server", "unix://"+sock, "--flush-interval", "50ms", "--counter-interval", "0")

	sent.WaitEvents(t, 200)
	close(hang)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hung: // the recorder is stopping, waiting on the daemon
	case <-time.After(30 * time.Second):
		t.Fatalf("no stop-time counter read after SIGTERM:\n%s", out)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := waitExit(t, cmd)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("after a second SIGTERM: %v, want exit status 1\n%s", err, out)
	}
	// The stop-time read would have waited its 2 s timeout.
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("exit took %v after the second SIGTERM", took)
	}
	if !strings.Contains(out.String(), "exiting without waiting for the final commit") {
		t.Errorf("no word about the abort:\n%s", out)
	}
	d := simtest.OpenStored(t, db)
	if err := d.Check(); err != nil {
		t.Fatalf("check: %v", err)
	}
	if _, n := simtest.Stored(t, d); n == 0 {
		t.Error("nothing committed before the abort")
	}
}

// TestRun_SummaryAfterCancel: Ctrl-C during `wattrec run` goes to the
// command; once it has exited, the energy summary is still printed (it
// used to fail with "context canceled"). Not parallel: urfave/cli's
// package-level help and version flags make two apps running at once in
// one process race.
func TestRun_SummaryAfterCancel(t *testing.T) {
	_, srv, _ := simtest.Start(t, simtest.FastConfig(simulator.FormatSample), "tcp")
	dir := t.TempDir()
	fifo := filepath.Join(dir, "gate")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out simtest.SyncBuffer
	var runErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		app := newApp()
		app.Writer, app.ErrWriter = &out, &out
		runErr = app.RunContext(ctx, []string{"wattrec", "run", "--db", filepath.Join(dir, "run.db"), "--server", srv.Address,
			"--log-level", "warn", "--", "cat", fifo})
	}()
	// Opening the FIFO for writing blocks until the command opens it: then
	// it runs. Cancel (Ctrl-C), then let it finish.
	gate, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	gate.Close()
	wg.Wait()
	if runErr != nil {
		t.Fatalf("run: %v\n%s", runErr, out.String())
	}
	for _, want := range []string{"energy while", "total", "gpu:0", "coverage"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "no energy summary") {
		t.Errorf("summary failed:\n%s", out.String())
	}
}

// TestLogLevel_Global: the global --log-level applies to record and run
// (they used to declare their own, which hid it), and a command's own
// --log-level still wins. Not parallel, like TestRun_SummaryAfterCancel.
func TestLogLevel_Global(t *testing.T) {
	_, srv, _ := simtest.Start(t, simtest.FastConfig(simulator.FormatSample), "tcp")
	// record: runs until cancelled once it is recording.
	logs := func(t *testing.T, before, after []string) string {
		db := filepath.Join(t.TempDir(), "w.db")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out simtest.SyncBuffer
		done := make(chan error, 1)
		go func() {
			app := newApp()
			app.Writer, app.ErrWriter = &out, &out
			args := append(append(append([]string{"wattrec"}, before...), "record", "--db", db, "--server", srv.Address), after...)
			done <- app.RunContext(ctx, args)
		}()
		simtest.WaitFor(t, func() bool { // streaming: the sessions are stored
			c, err := control.Dial(ctx, db)
			if err != nil {
				return false
			}
			defer c.Close()
			var info strings.Builder
			return c.Info(ctx, &info, "") == nil && strings.Contains(info.String(), "gpu stream")
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("record: %v\n%s", err, out.String())
		}
		return out.String()
	}
	for _, tc := range []struct {
		name          string
		before, after []string
		wantInfo      bool
	}{
		{"GlobalError", []string{"--log-level", "error"}, nil, false},
		{"CommandWins", []string{"--log-level", "error"}, []string{"--log-level", "debug"}, true},
		{"Default", nil, nil, true},
	} {
		t.Run("Record"+tc.name, func(t *testing.T) {
			out := logs(t, tc.before, tc.after)
			if got := strings.Contains(out, "level=INFO"); got != tc.wantInfo {
				t.Errorf("info lines logged = %v, want %v:\n%s", got, tc.wantInfo, out)
			}
		})
	}
	t.Run("Run", func(t *testing.T) {
		out, err := run(t, "--log-level", "error", "run", "--db", filepath.Join(t.TempDir(), "w.db"), "--server", srv.Address, "--", "true")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "level=INFO") || !strings.Contains(out, "energy while") {
			t.Errorf("run with the global --log-level error:\n%s", out)
		}
	})
}
