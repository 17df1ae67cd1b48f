package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wattrec/wattrec/chart"
	"github.com/wattrec/wattrec/control"
	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/recording"
	"github.com/wattrec/wattrec/report"
	"github.com/wattrec/wattrec/store"
)

// backend answers from a store directly, as a recording.File does, and
// also begins and ends marks (at nowMs), as a recorder does.
type backend struct {
	*recording.File
	nowMs int64
}

func (b *backend) Mark(ctx context.Context, req control.MarkRequest) (store.Mark, error) {
	switch req.Action {
	case control.MarkBegin:
		return b.DB.BeginMark(ctx, req.Name, req.Source, b.nowMs)
	case control.MarkEnd:
		return b.DB.EndMark(ctx, req.Name, b.nowMs)
	}
	return b.File.Mark(ctx, req)
}

var _ control.Backend = (*control.Client)(nil)

// serve starts a control server on a fresh file with a few readings.
func serve(t *testing.T) (*backend, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "w.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := store.Batch{Sessions: []store.Session{{Endpoint: "n1:4938", Stream: store.StreamGPU, Start: 0, End: 10_000, Open: true}},
		// A counter that disagrees with the stream: a query warns.
		Counters: []store.CounterReading{
			{Endpoint: "n1:4938", Kind: store.KindGPU, TakenMs: 2000, EnergyUJ: 0, Trigger: store.TriggerPeriodic},
			{Endpoint: "n1:4938", Kind: store.KindGPU, TakenMs: 5000, EnergyUJ: 900_000_000, Trigger: store.TriggerPeriodic},
		}}
	for i := int64(0); i < 10; i++ {
		b.Readings = append(b.Readings, store.Reading{Endpoint: "n1:4938", Kind: store.KindGPU, TimeMs: i * 1000, DaemonMs: i * 1000, MilliWatts: 100_000 + i})
	}
	if err := db.Write(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	be := &backend{File: &recording.File{DB: db, Now: time.Now}, nowMs: 5_000}
	srv := &control.Server{Backend: be, DB: path}
	ln := mustListen(t, path)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Stat(control.SocketPath(path)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left behind: %v", err)
		}
		db.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(control.SocketPath(path)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("control socket did not appear")
		}
		<-time.After(5 * time.Millisecond)
	}
	return be, path
}

func TestServer(t *testing.T) {
	ctx := context.Background()
	be, path := serve(t)
	fi, err := os.Stat(control.SocketPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("socket mode %o, want 600", got)
	}
	c, err := control.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	t.Run("QuerySameAsLocal", func(t *testing.T) {
		opt := query.Options{Filter: query.Filter{Range: query.Between(500, 9500), Devices: []query.DeviceFilter{{Kind: store.KindGPU, AnyDevice: true}}},
			Format: query.FormatCSV, Method: query.MethodCompare, By: query.ByKind}
		var remote, local bytes.Buffer
		if err := c.Query(ctx, &remote, opt); err != nil {
			t.Fatal(err)
		}
		if err := be.Query(ctx, &local, opt); err != nil {
			t.Fatal(err)
		}
		if remote.String() != local.String() || !strings.Contains(remote.String(), "trapezoid_joules") || !strings.Contains(remote.String(), ",gpu,") {
			t.Fatalf("remote:\n%s\nlocal:\n%s", remote.String(), local.String())
		}
	})
	t.Run("WarningsComeThrough", func(t *testing.T) {
		var remote, local bytes.Buffer
		opt := query.Options{Format: query.FormatCSV, Warnings: &remote}
		if err := c.Query(ctx, io.Discard, opt); err != nil {
			t.Fatal(err)
		}
		opt.Warnings = &local
		if err := be.Query(ctx, io.Discard, opt); err != nil {
			t.Fatal(err)
		}
		if remote.String() != local.String() || !strings.HasPrefix(remote.String(), "warning: n1:4938 gpu:0: hardware counter") {
			t.Fatalf("warnings through the socket %q, local %q", remote.String(), local.String())
		}
	})
	t.Run("ExportSameAsLocal", func(t *testing.T) {
		req := export.Request{Filter: query.Filter{Range: query.TimeRange{From: query.At(2000), To: query.Bound{Kind: query.BoundEnd}}}, Format: export.FormatCSV}
		var remote, local bytes.Buffer
		if err := c.Export(ctx, &remote, req); err != nil {
			t.Fatal(err)
		}
		if err := be.Export(ctx, &local, req); err != nil {
			t.Fatal(err)
		}
		if remote.String() != local.String() || strings.Count(remote.String(), "\n") != 1+8 {
			t.Fatalf("remote:\n%s\nlocal:\n%s", remote.String(), local.String())
		}
	})
	t.Run("PlotAndReportSameAsLocal", func(t *testing.T) {
		window := query.Filter{Range: query.Between(500, 9500)}
		for _, format := range []string{chart.FormatSVG, chart.FormatPNG} {
			req := chart.Request{Filter: window, Format: format, Width: 640, Height: 320, UTC: true}
			var remote, local bytes.Buffer
			if err := c.Plot(ctx, &remote, req); err != nil {
				t.Fatal(err)
			}
			if err := be.Plot(ctx, &local, req); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(remote.Bytes(), local.Bytes()) || remote.Len() < 1000 {
				t.Fatalf("%s: remote %d bytes, local %d", format, remote.Len(), local.Len())
			}
		}
		req := report.Request{Filter: window, UTC: true, Version: "v1.2.3", Generated: time.Date(2026, 11, 28, 17, 0, 0, 0, time.UTC)}
		var remote, local bytes.Buffer
		if err := c.Report(ctx, &remote, req); err != nil {
			t.Fatal(err)
		}
		if err := be.Report(ctx, &local, req); err != nil {
			t.Fatal(err)
		}
		if remote.String() != local.String() || !strings.Contains(remote.String(), "wattrec v1.2.3 at 2026-11-28 17:00:00 UTC") {
			t.Fatalf("remote report (%d bytes) differs from local (%d)", remote.Len(), local.Len())
		}
	})
	t.Run("ErrorsKeepTheirSentinels", func(t *testing.T) {
		for _, tc := range []struct {
			req  chart.Request
			want error
		}{
			{chart.Request{Window: "nope"}, query.ErrNoWindow},
			{chart.Request{Filter: query.Filter{Devices: []query.DeviceFilter{{Kind: store.KindCPU, AnyDevice: true}}}}, chart.ErrNoSeries},
			{chart.Request{Filter: query.Filter{Range: query.Between(50_000, 60_000)}}, chart.ErrNoData},
			{chart.Request{Format: "gif"}, chart.ErrFormat},
		} {
			err := c.Plot(ctx, &bytes.Buffer{}, tc.req)
			if !errors.Is(err, tc.want) || !errors.Is(err, query.ErrInvalid) {
				t.Errorf("plot %+v: err = %v, want %v and query.ErrInvalid through the socket", tc.req, err, tc.want)
			}
		}
		err := c.Query(ctx, &bytes.Buffer{}, query.Options{By: "node"})
		if !errors.Is(err, query.ErrInvalid) || !strings.Contains(err.Error(), `group by "node"`) {
			t.Fatalf("err = %v, want query.ErrInvalid", err)
		}
		err = c.Export(ctx, &bytes.Buffer{}, export.Request{Filter: query.Filter{Endpoints: []string{"nope:1"}}})
		if !errors.Is(err, query.ErrInvalid) || !strings.Contains(err.Error(), `endpoint "nope:1" is not in`) {
			t.Fatalf("err = %v", err)
		}
		err = c.Query(ctx, &bytes.Buffer{}, query.Options{EveryMs: 1, Filter: query.Filter{Range: query.Between(0, 1_000_000_000)}})
		if !errors.Is(err, query.ErrTooLarge) || !errors.Is(err, query.ErrInvalid) {
			t.Fatalf("1 ms buckets: %v, want query.ErrTooLarge and ErrInvalid through the socket", err)
		}
		err = c.Query(ctx, &bytes.Buffer{}, query.Options{Filter: query.Filter{Range: query.Between(5000, 4000)}})
		if !errors.Is(err, query.ErrInvalid) || !strings.Contains(err.Error(), "is not after") {
			t.Fatalf("empty window: %v", err)
		}
		_, err = c.Mark(ctx, control.MarkRequest{Action: control.MarkEnd, Name: "never-begun"})
		if !errors.Is(err, store.ErrNoOpenMark) {
			t.Fatalf("end of a mark never begun: %v, want store.ErrNoOpenMark", err)
		}
		_, err = c.Mark(ctx, control.MarkRequest{Action: control.MarkBegin, Name: "a\nb"})
		if !errors.Is(err, store.ErrInvalidMark) {
			t.Fatalf("a name with a newline: %v, want store.ErrInvalidMark", err)
		}
	})
	t.Run("Marks", func(t *testing.T) {
		m, err := c.Mark(ctx, control.MarkRequest{Action: control.MarkBegin, Name: "epoch"})
		if err != nil || m.ID == 0 || !m.Open || m.BeginMs != 5_000 {
			t.Fatalf("begin: %+v, %v", m, err)
		}
		if _, err := c.Mark(ctx, control.MarkRequest{Action: "pause", Name: "epoch"}); err == nil || !strings.Contains(err.Error(), `mark action "pause"`) {
			t.Fatalf("bad action: %v", err)
		}
		marks, err := c.Marks(ctx, "epoch")
		if err != nil || len(marks) != 1 || marks[0].ID != m.ID {
			t.Fatalf("marks = %+v, %v", marks, err)
		}
		if marks, err := c.Marks(ctx, "none"); err != nil || marks == nil || len(marks) != 0 {
			t.Fatalf("marks of no name = %#v, %v; want an empty list", marks, err)
		}
	})
}

// TestWire_Tagged: every request is sent as snake_case JSON with bounds
// and devices in their text forms, so that renaming a Go field cannot
// silently change the wire format.
func TestWire_Tagged(t *testing.T) {
	req := control.QueryRequest{Selection: control.Selection{From: query.At(1000), To: query.Bound{Kind: query.BoundEnd},
		Devices: []query.DeviceFilter{{Kind: store.KindCPU, Device: 1}}}, By: "kind", EveryMs: 60_000, Window: "epoch"}
	js, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"from":"1000","to":"end","devices":["cpu:1"],"by":"kind","every_ms":60000,"window":"epoch"}`
	if string(js) != want {
		t.Fatalf("wire form\n%s\nwant\n%s", js, want)
	}
	var back control.QueryRequest
	if err := json.Unmarshal(js, &back); err != nil || back.From != req.From || back.To != req.To || back.Devices[0] != req.Devices[0] {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	for _, tc := range []struct {
		v    any
		want string
	}{
		{control.PlotRequest{By: "kind", Window: "epoch", Format: "png", Width: 800, Height: 400, UTC: true}, `{"from":"","to":"","by":"kind","window":"epoch","format":"png","width":800,"height":400,"utc":true}`},
		{control.ReportRequest{UTC: true, Version: "v1", GeneratedMs: 5}, `{"from":"","to":"","utc":true,"version":"v1","generated_ms":5}`},
	} {
		if js, err := json.Marshal(tc.v); err != nil || string(js) != tc.want {
			t.Errorf("wire form\n%s\nwant\n%s", js, tc.want)
		}
	}
}

func TestDial_NoRecorder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	if _, err := control.Dial(context.Background(), path); !errors.Is(err, control.ErrNoRecorder) {
		t.Fatalf("no socket: %v", err)
	}
	// A stale socket file (a recorder killed with -9) is no recorder either.
	ln, err := net.Listen("unix", control.SocketPath(path))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := control.Dial(context.Background(), path); !errors.Is(err, control.ErrNoRecorder) {
		t.Fatalf("stale socket: %v", err)
	}
	// And a new recorder replaces it.
	_, _ = serveOn(t, path)
}

func serveOn(t *testing.T, path string) (*store.DB, error) {
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ln := mustListen(t, path)
	go func() {
		done <- (&control.Server{Backend: &recording.File{DB: db, Now: time.Now}, DB: path}).Serve(ctx, ln)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := control.Dial(context.Background(), path); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not replace the stale socket")
		}
		<-time.After(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return db, db.Close()
}

// mustListen binds the control socket of the file at path.
func mustListen(t *testing.T, path string) *control.Listener {
	t.Helper()
	ln, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestListen_LongPath: a file whose socket path is too long for a Unix
// socket gets its socket in a short private directory, with a link
// beside the file that clients follow; both go when the server stops,
// and a stale pair (a recorder killed with -9) is replaced.
func TestListen_LongPath(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	dir := filepath.Join(t.TempDir(), strings.Repeat("a-long-directory-name-", 5))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "run.db")
	if len(control.SocketPath(path)) <= 108 {
		t.Fatalf("%s is short", path)
	}
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for round := range 2 {
		ln := mustListen(t, path)
		link, err := os.Readlink(control.SocketPath(path))
		if err != nil || len(link) > 103 {
			t.Fatalf("round %d: %s links to %q (%v), want a short socket path", round, control.SocketPath(path), link, err)
		}
		if fi, err := os.Stat(filepath.Dir(link)); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("round %d: the socket's directory %s: %v, %v; want mode 700", round, filepath.Dir(link), fi, err)
		}
		if round == 0 { // killed with -9: the socket and its link stay behind
			ln.Close()
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- (&control.Server{Backend: &recording.File{DB: db, Now: time.Now}, DB: path}).Serve(ctx, ln)
		}()
		c, err := control.Dial(context.Background(), path)
		if err != nil {
			t.Fatalf("Dial through the link: %v", err)
		}
		var out bytes.Buffer
		if err := c.Info(context.Background(), &out, ""); err != nil || !strings.Contains(out.String(), "run.db") {
			t.Errorf("info through the link: %v\n%s", err, out.String())
		}
		c.Close()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{control.SocketPath(path), link} {
			if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s left behind: %v", p, err)
			}
		}
	}
}

// TestListen_NoPlace: when even the private directory cannot be used,
// Listen fails, naming the problem, rather than leave the recorder
// without a socket.
func TestListen_NoPlace(t *testing.T) {
	runtime := t.TempDir()
	if err := os.Mkdir(filepath.Join(runtime, "wattrec"), 0o755); err != nil { // not private
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", runtime)
	t.Setenv("TMPDIR", runtime)
	path := filepath.Join(t.TempDir(), strings.Repeat("x", 120), "run.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := control.Listen(path)
	if !errors.Is(err, control.ErrSocketPath) || !strings.Contains(err.Error(), "not a private directory") {
		t.Fatalf("Listen: %v, want ErrSocketPath naming the directory", err)
	}
}
