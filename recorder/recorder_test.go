package recorder_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

var _ recorder.Appender = (*store.DB)(nil)

func testLogger(tb testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ tb testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// running is a recorder in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
	client *recorder.Client
}

func startRecorder(t *testing.T, db *store.DB, servers ...recorder.Server) *running {
	t.Helper()
	client := recorder.NewClient(servers)
	client.Logger = testLogger(t)
	client.MaxBackoff = 200 * time.Millisecond
	return runRecorder(t, client, db)
}

// runRecorder records client into db in the background until the test
// ends or stop.
func runRecorder(t *testing.T, client *recorder.Client, db *store.DB) *running {
	t.Helper()
	rec := recorder.New(client, db)
	rec.FlushInterval = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), client: client}
	go func() { r.done <- rec.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stopWhenStored waits until db holds as many streamed values as want,
// stops r, and checks that db holds exactly want. It returns the number
// of seed readings stored.
func stopWhenStored(t *testing.T, db *store.DB, r *running, want map[simtest.Value]int) (seeds int) {
	t.Helper()
	simtest.WaitFor(t, func() bool { got, _ := simtest.Stored(t, db); return simtest.Covers(got, want) })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got, seeds := simtest.Stored(t, db)
	simtest.Diff(t, got, want)
	return seeds
}

func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // later calls see the same result
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("recorder did not stop")
		return nil
	}
}

// TestRecorder_Simulator records over TCP and a Unix socket, in both wire
// formats, and checks that the store holds exactly what was sent, with
// the 5 s clock skew corrected.
func TestRecorder_Simulator(t *testing.T) {
	for _, tc := range []struct{ network, format string }{
		{"tcp", simulator.FormatSample},
		{"unix", simulator.FormatSnapshot},
	} {
		t.Run(tc.network+"/"+tc.format, func(t *testing.T) {
			sent := simtest.NewLedger()
			cfg := simtest.FastConfig(tc.format)
			cfg.OnEvent = sent.OnEvent(t)
			_, srv, stopSim := simtest.Start(t, cfg, tc.network)
			db := simtest.MustOpenDB(t)
			r := startRecorder(t, db, srv)

			sent.WaitEvents(t, 300)
			// Stop the daemon first: every event it wrote reaches the
			// recorder before the connection's end.
			stopSim()
			if seeds := stopWhenStored(t, db, r, sent.Values()); seeds == 0 {
				t.Error("no seed readings stored")
			}

			// Corrected times: daemon time + ~5 s.
			ctx := context.Background()
			clocks, err := db.ClockEstimates(ctx, srv.Endpoint())
			if err != nil || len(clocks) == 0 {
				t.Fatalf("clock estimates: %v, %v", clocks, err)
			}
			if off := clocks[0].OffsetUs; off < 4_998_000 || off > 5_002_000 {
				t.Errorf("offset %d µs, want 5 s ± 2 ms", off)
			}
			err = db.Scan(ctx, store.SeriesKey{Endpoint: srv.Endpoint(), Kind: store.KindGPU, Device: 1}, -1<<62, 1<<62, func(r *store.Reading) error {
				if d := r.TimeMs - r.DaemonMs; d < 4998 || d > 5002 {
					return fmt.Errorf("reading corrected by %d ms, want ~5000", d)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}

			// Sessions: one per stream, closed because the daemon went away
			// (later reconnects fail and open none).
			sessions, err := db.Sessions(ctx, srv.Endpoint())
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range sessions {
				if s.Open || s.Reason == "" || s.End < s.Start {
					t.Errorf("session %+v: want closed with a reason", s)
				}
			}
			eps, err := db.Endpoints(ctx)
			if err != nil || len(eps) != 1 || !slices.Equal(eps[0].GPUs, []int{0, 1}) || len(eps[0].Discover) == 0 {
				t.Errorf("endpoint info = %+v, %v", eps, err)
			}
		})
	}
}

// TestRecorder_Reconnect drops the streams mid-way, again and again: the
// recorder reconnects, records a session gap each time and loses nothing.
func TestRecorder_Reconnect(t *testing.T) {
	sent := simtest.NewLedger()
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.OnEvent = sent.OnEvent(t)
	s, srv, stopSim := simtest.Start(t, cfg, "tcp")
	db := simtest.MustOpenDB(t)
	r := startRecorder(t, db, srv)

	drops := 0
	for target := int64(100); drops < 4; target += 100 {
		sent.WaitEvents(t, target)
		// Drop only once both streams are up, so each drop is a gap.
		simtest.WaitFor(t, func() bool { g, c := s.Subscribers(); return g == 1 && c == 1 })
		drops += min(1, s.DropStreams())
	}
	sent.WaitEvents(t, sent.Events()+50)
	stopSim()
	stopWhenStored(t, db, r, sent.Values())

	sessions, err := db.Sessions(context.Background(), srv.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	perStream := map[store.Stream]int{}
	for _, s := range sessions {
		perStream[s.Stream]++
		if s.Open {
			t.Errorf("session %+v still open", s)
		}
	}
	if perStream[store.StreamGPU] < 5 || perStream[store.StreamCPU] < 5 {
		t.Errorf("sessions per stream = %v, want ≥ 5 each after 4 drops", perStream)
	}
}

// fakeZeusd serves /discover and /time, and answers everything else with
// status, counting stream requests.
func fakeZeusd(t *testing.T, discover string, status int) (*httptest.Server, *atomic.Int64) {
	var streams atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/discover":
			fmt.Fprint(w, discover)
		case "/time":
			fmt.Fprintf(w, `{"timestamp_ms":%d}`, time.Now().UnixMilli())
		default:
			if strings.Contains(r.URL.Path, "stream") {
				streams.Add(1)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="zeusd"`)
			w.WriteHeader(status)
			fmt.Fprint(w, `{"error":"token expired"}`)
		}
	}))
	t.Cleanup(ts.Close)
	return ts, &streams
}

// TestRecorder_RefusedToken: 401 and 403 on a stream that passed the
// startup checks are retried with backoff (the daemon's key or the token
// may be fixed), logged once at ERROR with the daemon's message; the
// recorder keeps running.
func TestRecorder_RefusedToken(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			ts, streams := fakeZeusd(t, `{"gpus":[{"id":0}],"cpus":[],"enabled_api_groups":["gpu-read"],"auth_required":false}`, status)
			logs, logger := captureLogs(t)
			client := recorder.NewClient([]recorder.Server{{Network: "tcp", Address: strings.TrimPrefix(ts.URL, "http://")}})
			client.Logger, client.MaxBackoff = logger, recorder.MinMaxBackoff
			r := runRecorder(t, client, simtest.MustOpenDB(t))
			simtest.WaitFor(t, func() bool { return streams.Load() >= 5 })
			select {
			case err := <-r.done:
				t.Fatalf("recorder stopped after a refused token: %v", err)
			default:
			}
			if err := r.stop(t); err != nil {
				t.Fatalf("Run after cancel = %v, want nil", err)
			}
			lines := logs.lines("level=ERROR", fmt.Sprintf("HTTP %d", status), "token expired")
			if len(lines) != 1 {
				t.Errorf("%d ERROR lines for %d refusals, want 1:\n%s", len(lines), streams.Load(), strings.Join(lines, "\n"))
			}
		})
	}
}

// TestRecorder_ExpiredToken: a 401 after the expiry whoami gave for the
// token cannot be fixed by retrying: the stream stops with one error
// that wraps ErrTokenExpired, and with nothing else to record, Run
// returns it.
func TestRecorder_ExpiredToken(t *testing.T) {
	var streams atomic.Int64
	exp := time.Now().Add(-time.Minute).Unix()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/discover":
			fmt.Fprint(w, `{"gpus":[{"id":0}],"cpus":[],"enabled_api_groups":["gpu-read"],"auth_required":true}`)
		case "/time":
			fmt.Fprintf(w, `{"timestamp_ms":%d}`, time.Now().UnixMilli())
		case "/auth/whoami":
			fmt.Fprintf(w, `{"sub":"alice","scopes":["gpu-read"],"exp":%d}`, exp)
		default:
			if strings.Contains(r.URL.Path, "stream") {
				streams.Add(1)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="zeusd"`)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"token expired"}`)
		}
	}))
	t.Cleanup(ts.Close)
	client := recorder.NewClient([]recorder.Server{{Network: "tcp", Address: strings.TrimPrefix(ts.URL, "http://")}})
	client.Token, client.Logger, client.MaxBackoff = "a.b.c", testLogger(t), recorder.MinMaxBackoff
	r := runRecorder(t, client, simtest.MustOpenDB(t))
	var err error
	select {
	case err = <-r.done:
		r.done <- err // for the cleanup's stop
	case <-time.After(30 * time.Second):
		t.Fatal("recorder kept going after the only stream's token expired")
	}
	if !errors.Is(err, recorder.ErrTokenExpired) || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("err = %v, want ErrTokenExpired and the HTTP 401", err)
	}
	if got := streams.Load(); got != 1 {
		t.Errorf("stream requests = %d, want 1 (no retries)", got)
	}
}

// TestRecorder_ServerErrorRetries: 5xx is transient, so the stream retries.
func TestRecorder_ServerErrorRetries(t *testing.T) {
	ts, streams := fakeZeusd(t, `{"gpus":[{"id":0}],"cpus":[],"enabled_api_groups":["gpu-read"],"auth_required":false}`, http.StatusServiceUnavailable)
	db := simtest.MustOpenDB(t)
	r := startRecorder(t, db, recorder.Server{Network: "tcp", Address: strings.TrimPrefix(ts.URL, "http://")})
	simtest.WaitFor(t, func() bool { return streams.Load() >= 3 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
}

// TestClient_StartChecks covers the startup refusals.
func TestClient_StartChecks(t *testing.T) {
	cfg := simtest.FastConfig(simulator.FormatSample)
	_, srv, _ := simtest.Start(t, cfg, "unix")

	secretCfg := simtest.FastConfig(simulator.FormatSample)
	secretCfg.AuthSecret = []byte("s3cret")
	_, authSrv, _ := simtest.Start(t, secretCfg, "tcp")
	gpuOnly, err := simulator.MintToken(secretCfg.AuthSecret, "alice", []string{"gpu-read"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}

	deadAddr := closedAddr(t)
	for _, tc := range []struct {
		name    string
		server  recorder.Server
		token   string
		wantErr []string // substrings; empty: Start succeeds
	}{
		{"MissingGPUIndices", with(srv, recorder.Only(0, 7), recorder.All()), "", []string{srv.Endpoint(), "GPUs 0,7", "no such device index [7]", "[0, 1]"}},
		{"MissingCPUIndices", with(srv, recorder.All(), recorder.Only(3)), "", []string{"CPUs 3", "no such device index [3]", "[0]"}},
		{"NothingSelected", with(srv, recorder.None(), recorder.None()), "", []string{"nothing to read"}},
		{"Unreachable", recorder.Server{Network: "tcp", Address: deadAddr}, "", []string{"cannot reach zeusd at " + deadAddr}},
		{"NoTokenExplicit", with(authSrv, recorder.Only(0), recorder.All()), "", []string{"requires a token", "gpu-read"}},
		{"NoTokenUnset", authSrv, "", []string{"nothing to read"}},
		{"ScopeMissingExplicit", with(authSrv, recorder.All(), recorder.Only(0)), gpuOnly, []string{`missing scope "cpu-read"`, "[gpu-read]"}},
		{"ScopeMissingUnsetSkips", authSrv, gpuOnly, nil},
		{"BadToken", authSrv, "not-a-jwt", []string{"checking the token", "HTTP 401"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := recorder.NewClient([]recorder.Server{tc.server})
			c.Token = tc.token
			c.Logger = testLogger(t)
			err := c.Start(context.Background())
			defer c.Stop()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Start succeeded")
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// TestClient_StartSentinels: the refusals callers explain (main with a
// hint, a library user as zeus's exceptions) wrap a sentinel, and name no
// command-line flag. Missing indices are reported before a missing scope
// or token, as zeus does.
func TestClient_StartSentinels(t *testing.T) {
	t.Parallel()
	_, open, _ := simtest.Start(t, simtest.FastConfig(simulator.FormatSample), "unix")
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.AuthSecret = []byte("s3cret")
	_, authSrv, _ := simtest.Start(t, cfg, "tcp")
	gpuOnly, err := simulator.MintToken(cfg.AuthSecret, "alice", []string{"gpu-read"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	controlOnly, err := simulator.MintToken(cfg.AuthSecret, "bob", []string{"gpu-control"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	gpuGroup := simtest.FastConfig(simulator.FormatSample)
	gpuGroup.APIGroups = []string{simulator.GroupGPURead}
	_, gpuGroupSrv, _ := simtest.Start(t, gpuGroup, "tcp")
	deadAddr := closedAddr(t)
	for _, tc := range []struct {
		name    string
		servers []recorder.Server
		token   string
		want    []error
		not     []error
	}{
		{"NoServers", nil, "", []error{recorder.ErrNoServers}, nil},
		{"UnreachableTCP", []recorder.Server{{Network: "tcp", Address: deadAddr}}, "", []error{recorder.ErrUnreachable}, nil},
		{"UnreachableSocket", []recorder.Server{{Network: "unix", Address: filepath.Join(t.TempDir(), "none.sock")}}, "",
			[]error{recorder.ErrUnreachable}, nil},
		{"MissingDevice", []recorder.Server{with(open, recorder.Only(0, 7), recorder.All())}, "",
			[]error{recorder.ErrMissingDevice}, []error{recorder.ErrMissingScope, recorder.ErrUnreachable}},
		{"MissingDeviceBeforeToken", []recorder.Server{with(authSrv, recorder.Only(7), recorder.All())}, "",
			[]error{recorder.ErrMissingDevice}, []error{recorder.ErrMissingScope}},
		{"MissingDeviceBeforeScope", []recorder.Server{with(authSrv, recorder.All(), recorder.Only(3))}, gpuOnly,
			[]error{recorder.ErrMissingDevice}, []error{recorder.ErrMissingScope}},
		{"NoTokenExplicit", []recorder.Server{with(authSrv, recorder.Only(0), recorder.All())}, "",
			[]error{recorder.ErrTokenRequired, recorder.ErrMissingScope}, []error{recorder.ErrMissingDevice}},
		{"NoTokenUnset", []recorder.Server{authSrv}, "", // nothing to read
			[]error{recorder.ErrTokenRequired, recorder.ErrMissingScope}, nil},
		{"ScopeExplicit", []recorder.Server{with(authSrv, recorder.All(), recorder.Only(0))}, gpuOnly,
			[]error{recorder.ErrMissingScope}, []error{recorder.ErrTokenRequired, recorder.ErrMissingDevice}},
		{"ScopeUnset", []recorder.Server{authSrv}, controlOnly, // nothing to read
			[]error{recorder.ErrMissingScope}, []error{recorder.ErrTokenRequired}},
		{"GroupOffExplicit", []recorder.Server{with(gpuGroupSrv, recorder.All(), recorder.Only(0))}, "",
			// zeusd lists no CPU when cpu-read is off: a missing index,
			// for want of the group.
			[]error{recorder.ErrMissingDevice, recorder.ErrMissingScope}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := recorder.NewClient(tc.servers)
			c.Token = tc.token
			c.Logger = testLogger(t)
			err := c.Start(context.Background())
			defer c.Stop()
			if err == nil {
				t.Fatal("Start succeeded")
			}
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Errorf("Start = %v, want it to wrap %q", err, want)
				}
			}
			for _, not := range tc.not {
				if errors.Is(err, not) {
					t.Errorf("Start = %v wraps %q", err, not)
				}
			}
			if strings.Contains(err.Error(), "--") {
				t.Errorf("error %q names a command-line flag", err)
			}
		})
	}
}

// TestClient_KeepTrying: an endpoint that comes up late is recorded, and
// has no Info until its checks pass.
func TestClient_KeepTrying(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens yet

	client := recorder.NewClient([]recorder.Server{{Network: "tcp", Address: addr}})
	client.KeepTrying = true
	client.MaxBackoff = 100 * time.Millisecond
	client.Logger = testLogger(t)
	if err := client.Start(context.Background()); err != nil {
		t.Fatalf("Start with KeepTrying: %v", err)
	}
	defer client.Stop()
	if _, ok := client.Info(addr); ok {
		t.Error("Info reports an endpoint that was never reached")
	}

	s, err := simulator.New(simtest.FastConfig(simulator.FormatSample))
	if err != nil {
		t.Fatal(err)
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()

	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	for snap := range client.Updates(ctx2) {
		if pr, ok := snap[addr]; ok && len(pr.GPUWatts) == 2 && len(pr.CPUs) == 1 {
			if in, ok := client.Info(addr); !ok || !reflect.DeepEqual(in.GPUs, []int{0, 1}) {
				t.Errorf("Info of the late endpoint once it streams: %+v, %v", in, ok)
			}
			return
		}
	}
	t.Fatal("no readings from the late endpoint")
}

// TestClient_Snapshot checks the library view: deep copies, an Updates
// iterator that ends on Stop, and Stop twice.
func TestClient_Snapshot(t *testing.T) {
	_, srv, _ := simtest.Start(t, simtest.FastConfig(simulator.FormatSample), "tcp")
	client := recorder.NewClient([]recorder.Server{srv})
	client.Logger = testLogger(t)
	if err := client.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.WaitFirstValues(wctx); err != nil {
		t.Fatalf("WaitFirstValues: %v", err)
	}
	if first := client.Snapshot()[srv.Endpoint()]; len(first.GPUWatts) != 2 || len(first.CPUs) != 1 {
		t.Fatalf("after WaitFirstValues the snapshot lacks devices: %+v", first)
	}
	updates := 0
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for snap := range client.Updates(context.Background()) {
			updates++
			if updates == 20 {
				pr := snap[srv.Endpoint()]
				pr.GPUWatts[0] = -1 // must not leak into the client
				if got := client.Snapshot()[srv.Endpoint()].GPUWatts[0]; got == -1 {
					t.Error("Snapshot is not a deep copy")
				}
				client.Stop()
			}
		}
	}()
	select {
	case <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("Updates did not end after Stop")
	}
	client.Stop() // idempotent
	snap := client.Snapshot()[srv.Endpoint()]
	if len(snap.GPUWatts) != 2 || len(snap.CPUs) != 1 || !snap.CPUs[0].HasDRAM || snap.Time.IsZero() {
		t.Errorf("snapshot = %+v, want 2 GPUs and a CPU with DRAM", snap)
	}
	if updates < 20 {
		t.Errorf("updates = %d", updates)
	}
}

// TestRecorder_LiveView: a Recorder's client keeps no live view unless
// asked: Snapshot is nil and Updates ends at once. With KeepLatest set
// again after New it has both, besides storing.
func TestRecorder_LiveView(t *testing.T) {
	_, srv, _ := simtest.Start(t, simtest.FastConfig(simulator.FormatSample), "tcp")
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("KeepLatest=%v", keep), func(t *testing.T) {
			client := recorder.NewClient([]recorder.Server{srv})
			client.Logger = testLogger(t)
			rec := recorder.New(client, simtest.MustOpenDB(t))
			client.KeepLatest = keep
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- rec.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			}()
			wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
			defer wcancel()
			if err := client.WaitFirstValues(wctx); err != nil {
				t.Fatalf("WaitFirstValues: %v", err)
			}

			snap := client.Snapshot()
			if !keep {
				if snap != nil {
					t.Errorf("Snapshot = %+v, want nil", snap)
				}
				for range client.Updates(wctx) {
					t.Error("Updates yielded a snapshot")
					break
				}
				if wctx.Err() != nil {
					t.Error("Updates did not end at once")
				}
				return
			}
			if pr := snap[srv.Endpoint()]; len(pr.GPUWatts) != 2 || len(pr.CPUs) != 1 {
				t.Errorf("snapshot = %+v, want 2 GPUs and a CPU", pr)
			}
			for range client.Updates(wctx) {
				return
			}
			t.Error("Updates ended without a snapshot")
		})
	}
}

// TestRecorder_StoreFailure: when the store fails, Run stops with an error
// that says how much was not stored instead of hanging.
func TestRecorder_StoreFailure(t *testing.T) {
	_, srv, _ := simtest.Start(t, simtest.FastConfig(simulator.FormatSample), "tcp")
	client := recorder.NewClient([]recorder.Server{srv})
	client.Logger = testLogger(t)
	rec := recorder.New(client, failingStore{})
	rec.FlushInterval = 10 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- rec.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "not stored") {
			t.Fatalf("Run = %v, want the store error and a count of lost readings", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the store failed")
	}
}

type failingStore struct{}

func (failingStore) Write(context.Context, *store.Batch) error { return errors.New("disk full") }

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// with is s selecting gpus and cpus.
func with(s recorder.Server, gpus, cpus recorder.Selection) recorder.Server {
	s.GPUs, s.CPUs = gpus, cpus
	return s
}
