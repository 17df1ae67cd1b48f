package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/recording"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// TestMain lets a test run this binary as `wattrec`, with real signals:
// with WATTREC_TEST_MAIN=1 it runs main() instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("WATTREC_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// inProcess makes the CLI runs of parallel tests take turns: urfave/cli
// v2 shares its help flag and help command between apps and writes to
// them on every run. (No in-process run waits for another: recorders
// that run alongside a test are child processes.)
var inProcess sync.Mutex

// run runs the CLI in process and returns what it wrote, on standard
// output and error together.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &out
	inProcess.Lock()
	defer inProcess.Unlock()
	err := runApp(context.Background(), app, append([]string{"wattrec"}, args...))
	return out.String(), err
}

// runBoth is run with standard error apart.
func runBoth(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errOut
	inProcess.Lock()
	defer inProcess.Unlock()
	err = runApp(context.Background(), app, append([]string{"wattrec"}, args...))
	return out.String(), errOut.String(), err
}

// child starts this test binary as `wattrec args...`.
func child(t *testing.T, env []string, args ...string) (*exec.Cmd, *simtest.SyncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	// GORACE: a race-enabled binary otherwise lingers 1 s before exiting.
	cmd.Env = append(append(os.Environ(), "WATTREC_TEST_MAIN=1", "GORACE=atexit_sleep_ms=0"), env...)
	var out simtest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &out
}

func waitExit(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("wattrec did not exit within 30 s")
		return nil
	}
}

// stopChild stops a child wattrec with SIGTERM and fails t unless it
// exits cleanly; out is its output, for the failure.
func stopChild(t *testing.T, cmd *exec.Cmd, out *simtest.SyncBuffer) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := waitExit(t, cmd); err != nil {
		t.Fatalf("exit: %v\n%s", err, out)
	}
}

func hashFile(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestCLI_Help(t *testing.T) {
	out, err := run(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Example: wattrec record") {
		t.Errorf("--help has no example:\n%s", out)
	}
	for _, cmd := range []string{"record", "run", "query", "info", "export", "plot", "report", "import", "check", "repair", "simulate", "demo"} {
		out, err := run(t, cmd, "--help")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "wattrec "+cmd+" --") {
			t.Errorf("%s --help has no one-line example:\n%s", cmd, out)
		}
	}
}

func TestCLI_RecordRefuses(t *testing.T) {
	db := filepath.Join(t.TempDir(), "w.db")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"BadScheme", []string{"--server", "http://node1:4938"}, `unknown scheme "http"`},
		{"BadPort", []string{"--server", "node1:99999"}, "port"},
		{"EmptySocket", []string{"--server", "unix://"}, "empty socket path"},
		{"BadSelection", []string{"--server", "node1:4938?gpus=0,x"}, `"x" is not a device index`},
		{"UnknownOption", []string{"--server", "node1:4938?gpu=0"}, `unknown option "gpu"`},
		{"Duplicate", []string{"--server", "node1:4938", "--server", "tcp://node1:4938"}, "node1:4938 is given more than once"},
		{"MissingServersFile", []string{"--servers-file", "/nonexistent/servers"}, "--servers-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, append([]string{"record", "--db", db}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	t.Run("NoServer", func(t *testing.T) {
		t.Setenv("ZEUSD_SOCK_PATH", "")
		t.Setenv("ZEUSD_HOST_PORT", "")
		_, err := run(t, "record", "--db", db)
		if err == nil || !strings.Contains(err.Error(), "no zeusd server given") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ServersFileLine", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "servers")
		os.WriteFile(f, []byte("# cluster\nnode1:4938\n\nnode2:notaport # typo\n"), 0o644)
		_, err := run(t, "record", "--db", db, "--servers-file", f)
		if err == nil || !strings.Contains(err.Error(), f+":4:") {
			t.Fatalf("err = %v, want it to name %s:4", err, f)
		}
	})
}

// TestRecord_Env: without --server, record and run take the zeusd of
// ZEUSD_SOCK_PATH (a relative path too) or ZEUSD_HOST_PORT and the token
// of ZEUSD_TOKEN, as recorder.FromEnv reads them; a bad value names its
// variable and does not matter when --server is given. The refusals get
// the hint of their sentinel.
func TestRecord_Env(t *testing.T) {
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.AuthSecret = []byte("s3cret")
	_, srv, _ := simtest.Start(t, cfg, "unix")
	tok, err := simulator.MintToken(cfg.AuthSecret, "alice", []string{"gpu-read", "cpu-read"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, srv.Address)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	setenv := func(t *testing.T, sock, hostPort, token string) {
		t.Setenv("ZEUSD_SOCK_PATH", sock)
		t.Setenv("ZEUSD_HOST_PORT", hostPort)
		t.Setenv("ZEUSD_TOKEN", token)
	}

	t.Run("RelativeSockPathAndToken", func(t *testing.T) {
		setenv(t, rel, "node1:99999", tok) // the socket path comes first
		db := filepath.Join(dir, "env.db")
		if _, err := run(t, "run", "--db", db, "--log-level", "warn", "--", "true"); err != nil {
			t.Fatal(err)
		}
		d := simtest.OpenStored(t, db)
		sessions, err := d.Sessions(context.Background(), srv.Address) // recorded under its absolute path
		if err != nil || len(sessions) == 0 {
			t.Fatalf("sessions of %s: %v, %v", srv.Address, sessions, err)
		}
	})
	t.Run("BadHostPort", func(t *testing.T) {
		setenv(t, "", "node1:99999", "")
		_, err := run(t, "record", "--db", filepath.Join(dir, "bad.db"))
		if err == nil || !strings.Contains(err.Error(), "$ZEUSD_HOST_PORT") || !strings.Contains(err.Error(), "99999") {
			t.Fatalf("err = %v, want it to name $ZEUSD_HOST_PORT and its value", err)
		}
	})
	t.Run("BadEnvIgnoredWithServer", func(t *testing.T) {
		setenv(t, "", "node1:99999", tok) // the token still counts
		if _, err := run(t, "run", "--db", filepath.Join(dir, "flag.db"), "--server", "unix://"+srv.Address, "--log-level", "warn", "--", "true"); err != nil {
			t.Fatal(err)
		}
	})
	for _, tc := range []struct {
		name, server string
		want         error
		hint         string
	}{
		{"NoTokenHint", "unix://" + srv.Address + "?gpus=0", recorder.ErrTokenRequired, "set ZEUSD_TOKEN or --token-file"},
		{"MissingDeviceHint", "unix://" + srv.Address + "?gpus=7", recorder.ErrMissingDevice, "?gpus="},
		{"UnreachableHint", "unix://" + filepath.Join(dir, "none.sock"), recorder.ErrUnreachable, "is zeusd running there?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setenv(t, "", "", "")
			_, err := run(t, "record", "--db", filepath.Join(dir, tc.name+".db"), "--log-level", "error", "--server", tc.server)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if _, hint, _ := strings.Cut(withHint(err).Error(), "\n"); !strings.Contains(hint, tc.hint) {
				t.Errorf("hint %q, want %q", hint, tc.hint)
			}
		})
	}
}

// TestRecord_SIGTERM records from a simulator in a child process, stops
// the daemon, then sends SIGTERM: the child exits 0 and the file holds
// every value the daemon sent.
func TestRecord_SIGTERM(t *testing.T) {
	sent := simtest.NewLedger()
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.OnEvent = sent.OnEvent(t)
	_, srv, stopSim := simtest.Start(t, cfg, "unix")
	db := filepath.Join(t.TempDir(), "run.db")
	cmd, out := child(t, nil, "record", "--db", db, "--server", "unix://"+srv.Address, "--flush-interval", "5s", "--max-backoff", "100ms")

	sent.WaitEvents(t, 300)
	stopSim()
	// Both streams reached the end of what was sent once the recorder
	// tries to reconnect them.
	simtest.WaitFor(t, func() bool {
		log := out.String()
		return strings.Contains(log, "stream=gpu") && strings.Contains(log, "stream=cpu") &&
			strings.Count(log, "stream ended, reconnecting") >= 2
	})
	// The flush interval is 5 s: what is stored now was flushed by SIGTERM.
	stopChild(t, cmd, out)
	d := simtest.OpenStored(t, db)
	if err := d.Check(); err != nil {
		t.Fatalf("check: %v", err)
	}
	got, _ := simtest.Stored(t, d)
	simtest.Diff(t, got, sent.Values())
	sessions, err := d.Sessions(context.Background(), srv.Address)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		if s.Open {
			t.Errorf("session %+v left open after SIGTERM", s)
		}
	}
}

// TestRecord_Kill9: a recorder killed with -9 leaves a file that reopens,
// passes bbolt's check, and holds what was committed, with its sessions
// open up to the last commit.
func TestRecord_Kill9(t *testing.T) {
	sent := simtest.NewLedger()
	cfg := simtest.FastConfig(simulator.FormatSnapshot)
	cfg.OnEvent = sent.OnEvent(t)
	_, srv, _ := simtest.Start(t, cfg, "tcp")
	db := filepath.Join(t.TempDir(), "run.db")
	cmd, out := child(t, nil, "record", "--db", db, "--server", srv.Address, "--flush-interval", "20ms")
	simtest.WaitFor(t, func() bool { return strings.Contains(out.String(), "msg=recording") })
	sent.WaitEvents(t, 500)

	// While the recorder holds the file, info goes through its control
	// socket.
	out2, err := run(t, "info", "--db", db)
	if err != nil || !strings.Contains(out2, srv.Address) {
		t.Errorf("live info: %v\n%s", err, out2)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd)

	// The killed recorder left a stale control socket: read commands fall
	// back to the file.
	if _, err := os.Stat(db + ".sock"); err != nil {
		t.Errorf("expected a stale control socket after kill -9: %v", err)
	}
	if out, err := run(t, "info", "--db", db); err != nil || !strings.Contains(out, "still open") {
		t.Errorf("info after kill -9: %v\n%s", err, out)
	}
	d, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer d.Close()
	if err := d.Check(); err != nil {
		t.Fatalf("check after kill -9: %v", err)
	}
	got, _ := simtest.Stored(t, d)
	if simtest.Count(got) == 0 {
		t.Fatal("nothing committed before kill -9")
	}
	for v := range simtest.Extra(got, sent.Values()) {
		t.Fatalf("stored value %+v was never sent", v)
	}
	sessions, err := d.Sessions(context.Background(), srv.Address)
	if err != nil {
		t.Fatal(err)
	}
	open := 0
	for _, s := range sessions {
		if s.Open {
			open++
			if s.End <= s.Start {
				t.Errorf("open session %+v has no extent", s)
			}
		}
	}
	if open != 2 {
		t.Errorf("open sessions = %d, want 2 (gpu and cpu, cut by kill -9)", open)
	}
}

// TestExport_JSONL: golden output from a hand-built store, filters, the
// atomic -o, and the file stays unchanged.
// TestExport_ParquetAndGrid: -o FILE.parquet picks Parquet, --grid writes
// FILE.grid.parquet beside it, outputs are not replaced without --force,
// and the grid's bins sum to the query's joules.
func TestExport_ParquetAndGrid(t *testing.T) {
	_, srv, _ := simtest.Start(t, simtest.FastConfig(simulator.FormatSample), "unix")
	dir := t.TempDir()
	db := filepath.Join(dir, "run.db")
	if _, err := run(t, "run", "--db", db, "--server", "unix://"+srv.Address, "--log-level", "warn", "--", "sleep", "1"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run.parquet")
	if _, err := run(t, "export", "--db", db, "-o", out, "--grid", "250ms"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{out, filepath.Join(dir, "run.grid.parquet")} {
		b, err := os.ReadFile(p)
		if err != nil || len(b) < 8 || string(b[:4]) != "PAR1" || string(b[len(b)-4:]) != "PAR1" {
			t.Fatalf("%s is not a Parquet file: %v", p, err)
		}
	}
	if _, err := run(t, "export", "--db", db, "-o", out, "--grid", "250ms"); !errors.Is(err, export.ErrExists) {
		t.Errorf("existing output replaced without --force: %v", err)
	}

	window := []string{"--from", "start", "--to", "end"}
	grid, err := run(t, append([]string{"export", "--db", db, "--grid", "250ms", "--grid-only", "--format", "csv"}, window...)...)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(grid)).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("grid CSV: %v\n%s", err, grid)
	}
	col := slices.Index(rows[0], "energy_j")
	if col < 0 {
		t.Fatalf("grid CSV has no energy_j column: %v", rows[0])
	}
	var sum float64
	for _, r := range rows[1:] {
		v, err := strconv.ParseFloat(r[col], 64)
		if err != nil {
			t.Fatal(err)
		}
		sum += v
	}
	js, err := run(t, append([]string{"query", "--db", db, "--by", "total", "--format", "json"}, window...)...)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Rows []struct {
			Joules float64 `json:"joules"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil || len(rep.Rows) != 1 {
		t.Fatalf("query json: %v\n%s", err, js)
	}
	if want := rep.Rows[0].Joules; math.Abs(sum-want) > 1e-9*want {
		t.Errorf("grid bins sum to %.9f J, query says %.9f J", sum, want)
	}
}

// TestInfo_Locked: a file held by another process with no control socket
// answering is reported at once, not waited on forever.
func TestInfo_Locked(t *testing.T) {
	db := filepath.Join(t.TempDir(), "w.db")
	holder, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	start := time.Now()
	_, err = run(t, "info", "--db", db)
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "database is in use by a running recorder") {
		t.Errorf("info on a held file: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("info took %v on a held file", d)
	}
}

func TestExport_JSONL(t *testing.T) {
	db := filepath.Join(t.TempDir(), "w.db")
	d, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := int64(1_795_881_600_000) // 2026-11-28T16:00:00Z
	var b store.Batch
	for i := int64(0); i < 3; i++ {
		b.Readings = append(b.Readings,
			store.Reading{Endpoint: "n1:4938", Kind: store.KindGPU, Device: 1, TimeMs: base + i*50, DaemonMs: base + i*50 - 5000, MilliWatts: 75000 + i, Seed: i == 0},
			store.Reading{Endpoint: "n1:4938", Kind: store.KindGPU, Device: 0, TimeMs: base + i*50, DaemonMs: base + i*50 - 5000, MilliWatts: 120000 - i},
			store.Reading{Endpoint: "/run/zeusd.sock", Kind: store.KindDRAM, Device: 0, TimeMs: base + i*100, DaemonMs: base + i*100, MilliWatts: 12000},
			store.Reading{Endpoint: "/run/zeusd.sock", Kind: store.KindCPU, Device: 0, TimeMs: base + i*100, DaemonMs: base + i*100, MilliWatts: 85000},
		)
	}
	if err := d.Write(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	d.Close()
	before := hashFile(t, db)

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"All", nil},
		{"Filtered", []string{"--endpoint", "n1:4938", "--device", "gpu:1", "--from", "2026-11-28T16:00:00.050Z", "--to", "1795881600150"}},
		{"CPUIncludesDRAM", []string{"--device", "cpu:0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, append([]string{"export", "--db", db, "--format", "jsonl"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, out)
		})
	}
	t.Run("OutputFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out.jsonl")
		if _, err := run(t, "export", "--db", db, "-o", path); err != nil {
			t.Fatal(err)
		}
		want, _ := run(t, "export", "--db", db)
		got, _ := os.ReadFile(path)
		if string(got) != want {
			t.Errorf("-o wrote %d bytes, stdout had %d", len(got), len(want))
		}
		if _, err := run(t, "export", "--db", db, "-o", path); err == nil || !strings.Contains(err.Error(), "--force") {
			t.Errorf("existing output replaced without --force: %v", err)
		}
		if _, err := run(t, "export", "--db", db, "-o", path, "--force"); err != nil {
			t.Error(err)
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Errorf("temp files left behind: %v", entries)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for args, want := range map[string]string{
			"--endpoint nope:1":                       `endpoint "nope:1" is not in`,
			"--device tpu:0":                          `unknown kind "tpu"`,
			"--from 2026-13-01T00:00:00Z --to now":    "--from",
			"--from 1795881600150 --to 1795881600000": "is not after",
			"--format xml":                            "want parquet, csv or jsonl",
			"--grid 1s":                               "the grid is written as parquet or csv",
			"--grid-only":                             "--grid-only needs --grid",
		} {
			_, err := run(t, append([]string{"export", "--db", db}, strings.Fields(args)...)...)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("export %s: err = %v, want %q", args, err, want)
			}
		}
	})
	if _, err := run(t, "info", "--db", db); err != nil {
		t.Fatal(err)
	}
	if hashFile(t, db) != before {
		t.Fatal("a read-only command changed the database file")
	}
}

// TestQuery_Golden: the DESIGN.md worked examples as a store, queried in
// every output format.
func TestQuery_Golden(t *testing.T) {
	db := workedFile(t)
	before := hashFile(t, db)
	window := []string{"--from", "2026-11-28T16:00:01Z", "--to", "1795881610000"}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"Table", nil},
		{"JSON", []string{"--format", "json", "--by", "kind"}},
		{"CSV", []string{"--format", "csv", "--every", "3s", "--by", "total"}},
		{"Compare", []string{"--method", "compare", "--device", "cpu:0"}},
		{"Window", []string{"--window", "epoch", "--by", "kind"}},
		{"Counters", []string{"--device", "gpu:0,cpu:0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"query", "--db", db}, tc.args...)
			if tc.name != "Window" {
				args = append(args, window...)
			}
			out, err := run(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, out)
		})
	}
	t.Run("WorkedExample", func(t *testing.T) {
		out, err := run(t, append([]string{"query", "--db", db, "--format", "csv", "--device", "gpu:0"}, window...)...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, ",n1:4938 gpu:0,device,n1:4938,gpu,0,1750,1750000000,") || !strings.Contains(out, ",0.7777777777777778,1,2000,") {
			t.Errorf("worked example: want 1750 J, coverage 7/9, one 2 s gap:\n%s", out)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for args, want := range map[string]string{
			"--by node":        `group by "node"`,
			"--method simpson": `--method "simpson"`,
			"--format xml":     `--format "xml"`,
			"--device tpu:1":   `unknown kind "tpu"`,
		} {
			_, err := run(t, append([]string{"query", "--db", db}, strings.Fields(args)...)...)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("query %s: err = %v, want %q", args, err, want)
			}
		}
	})
	if hashFile(t, db) != before {
		t.Fatal("query changed the database file")
	}
}

func golden(t *testing.T, got string) {
	t.Helper()
	path := filepath.Join("testdata", strings.ReplaceAll(t.Name(), "/", "_")+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestDemo runs the README's demo briefly.
func TestDemo(t *testing.T) {
	db := filepath.Join(t.TempDir(), "demo.db")
	out, err := run(t, "demo", "--db", db, "--duration", "1s", "--gpu-hz", "100")
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"endpoint ", "gpu:3", "dram:1", `"kind":"gpu"`, "1 sessions"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

var _ io.Writer = (*simtest.SyncBuffer)(nil)

// TestLive_MarksAndQuery records from a simulator in a child process and,
// while it runs, marks windows through its control socket, queries them,
// then stops it and checks that the same queries on the closed file give
// the same joules.
func TestLive_MarksAndQuery(t *testing.T) {
	sent := simtest.NewLedger()
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.OnEvent = sent.OnEvent(t)
	_, srv, _ := simtest.Start(t, cfg, "unix")
	db := filepath.Join(t.TempDir(), "live.db")
	cmd, out := child(t, nil, "record", "--db", db, "--server", "unix://"+srv.Address, "--counter-interval", "100ms")
	simtest.WaitFor(t, func() bool { return strings.Contains(out.String(), "msg=recording") })

	for i := range 2 {
		if o, err := run(t, "mark", "begin", "--db", db, "epoch"); err != nil || !strings.Contains(o, `"epoch"`) {
			t.Fatalf("mark begin: %v %s", err, o)
		}
		sent.WaitEvents(t, int64(150*(i+1)))
		if _, err := run(t, "mark", "end", "--db", db, "epoch"); err != nil {
			t.Fatalf("mark end: %v", err)
		}
	}
	if _, err := run(t, "mark", "end", "--db", db, "epoch"); err == nil || !strings.Contains(err.Error(), `no open mark named "epoch"`) {
		t.Errorf("ending a mark that is not open: %v", err)
	}
	list, err := run(t, "mark", "list", "--db", db)
	if err != nil || strings.Count(list, "epoch") != 2 {
		t.Fatalf("mark list: %v\n%s", err, list)
	}

	// A CPU value covers the poll period before its stamp, so the readings
	// that cover an epoch's end arrive just after it: let them in first.
	sent.WaitEvents(t, sent.Events()+100)
	start := time.Now()
	live, err := run(t, "query", "--db", db, "--window", "epoch", "--format", "csv", "--by", "kind")
	if err != nil {
		t.Fatalf("live query: %v", err)
	}
	t.Logf("query --window against the running recorder: %v", time.Since(start))
	if !strings.Contains(live, "epoch #2,gpu,") || !strings.Contains(live, ",sum,total,") {
		t.Fatalf("live window query lacks instances or the sum:\n%s", live)
	}

	stopChild(t, cmd, out)
	after, err := run(t, "query", "--db", db, "--window", "epoch", "--format", "csv", "--by", "kind")
	if err != nil {
		t.Fatal(err)
	}
	// Both windows ended before the recorder stopped: every row is the same
	// (counter columns too, since the counters at each mark were committed).
	if live != after {
		t.Errorf("the same windows differ while recording and afterwards:\nlive:\n%s\nafter:\n%s", live, after)
	}
	// Every row carries the counter comparison, and the integral agrees
	// with the counters to within a few per cent.
	recs, err := csv.NewReader(strings.NewReader(after)).ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("query csv: %v\n%s", err, after)
	}
	col := slices.Index(recs[0], "integral_over_counter")
	if col < 0 {
		t.Fatalf("no integral_over_counter column in:\n%s", after)
	}
	for _, r := range recs[1:] {
		ratio, err := strconv.ParseFloat(r[col], 64)
		if err != nil || ratio < 0.95 || ratio > 1.05 {
			t.Errorf("integral_over_counter %q in row %v, want a ratio near 1", r[col], r)
		}
	}

	// mark add works on the closed file; begin does not.
	if _, err := run(t, "mark", "add", "--db", db, "--from", "now", "--to", "now"); err == nil {
		t.Error("mark add without a name was accepted")
	}
	if o, err := run(t, "mark", "add", "--db", db, "--from", "-1h", "--to", "now", "whole"); err != nil || !strings.Contains(o, `"whole"`) {
		t.Errorf("mark add on a closed file: %v %s", err, o)
	}
	if _, err := run(t, "mark", "begin", "--db", db, "late"); err == nil || !strings.Contains(err.Error(), "needs a running recorder") {
		t.Errorf("mark begin on a closed file: %v", err)
	}
}

// TestRun runs commands under `wattrec run` against a simulator.
func TestRun(t *testing.T) {
	_, srv, _ := simtest.Start(t, simtest.FastConfig(simulator.FormatSnapshot), "tcp")
	db := filepath.Join(t.TempDir(), "run.db")
	out, err := run(t, "run", "--db", db, "--server", srv.Address, "--log-level", "warn", "--", "sh", "-c", "exit 3")
	var code recording.ExitStatus
	if !errors.As(err, &code) || code != 3 {
		t.Fatalf("run -- sh -c 'exit 3': err = %v, want exit status 3", err)
	}
	for _, want := range []string{`energy while "sh -c exit 3" ran`, "total", "gpu:1", "dram:0"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	summary := filepath.Join(t.TempDir(), "run.json")
	if _, err := run(t, "run", "--db", db, "--server", srv.Address, "--summary-json", summary, "--", "true"); err != nil {
		t.Fatalf("run -- true: %v", err)
	}
	// The summary as `query --format json` of the command's window.
	b, err := os.ReadFile(summary)
	var rep struct {
		FromMs int64 `json:"from_ms"`
		ToMs   int64 `json:"to_ms"`
		Rows   []struct {
			Level string `json:"level"`
		} `json:"rows"`
	}
	if err != nil || json.Unmarshal(b, &rep) != nil || rep.ToMs <= rep.FromMs || len(rep.Rows) < 2 || rep.Rows[len(rep.Rows)-1].Level != "total" {
		t.Errorf("--summary-json: %v\n%s", err, b)
	}
	marks, err := run(t, "mark", "list", "--db", db)
	if err != nil || !strings.Contains(marks, "sh -c exit 3") || !strings.Contains(marks, "true") {
		t.Errorf("run windows not marked: %v\n%s", err, marks)
	}
	if _, err := run(t, "run", "--db", db, "--server", srv.Address); err == nil || !strings.Contains(err.Error(), "give the command after --") {
		t.Errorf("run without a command: %v", err)
	}
	if _, err := run(t, "run", "--db", db, "--server", srv.Address, "--", "/nonexistent/cmd"); err == nil {
		t.Error("run of a missing command succeeded")
	}
}
