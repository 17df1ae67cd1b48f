// Command wattrec records the GPU and CPU power that zeusd daemons stream
// and turns it into energy numbers. main.go is the wiring: flags, the
// environment and error messages; the work is in the packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wattrec/wattrec/control"
	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module's build info.
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := newApp().RunContext(ctx, os.Args); err != nil {
		var code exitCode
		if errors.As(err, &code) { // wattrec run: the command's own status
			os.Exit(code.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "wattrec:", err)
		os.Exit(1)
	}
}

func wattrecVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// newApp builds the command tree; tests call it with their own Writer.
func newApp() *cli.App {
	return &cli.App{
		Name:      "wattrec",
		Usage:     "record zeusd GPU/CPU power and turn it into energy numbers you can trust",
		UsageText: "wattrec [--log-level info] COMMAND [flags]\n\nExample: wattrec record --db run.db --server node1:4938 --server unix:///run/zeusd/zeusd.sock",
		Version:   wattrecVersion(),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		},
		Commands:                  []*cli.Command{recordCommand(), runCommand(), queryCommand(), markCommand(), infoCommand(), exportCommand(), simulateCommand(), demoCommand()},
		DisableSliceFlagSeparator: true,                         // specs like ?gpus=0,1 contain commas
		ExitErrHandler:            func(*cli.Context, error) {}, // main decides how to exit
		Suggest:                   true,
	}
}

// logger writes structured logs to the app's error writer.
func logger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	return slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level})), nil
}

// recordFlags are shared by record and demo.
func recordFlags() []cli.Flag {
	return []cli.Flag{
		&cli.PathFlag{Name: "db", Usage: "bbolt `FILE` to append to (created if missing)", Required: true},
		&cli.StringSliceFlag{Name: "server", Aliases: []string{"s"}, Usage: "zeusd `SPEC`: host:port, tcp://host:port, unix:///path.sock or /path.sock, with optional ?gpus=0,1&cpus=none (repeatable)"},
		&cli.PathFlag{Name: "servers-file", Usage: "`FILE` with one SPEC a line (# comments)"},
		&cli.PathFlag{Name: "token-file", Usage: "`FILE` holding the zeusd JWT (default: $ZEUSD_TOKEN); never pass a token on the command line"},
		&cli.DurationFlag{Name: "flush-interval", Value: recorder.DefaultFlushInterval, Usage: "commit at least this often; a crash loses at most this much"},
		&cli.DurationFlag{Name: "clock-interval", Value: recorder.DefaultClockInterval, Usage: "re-estimate each daemon's clock offset this often (0: only at start)"},
		&cli.IntFlag{Name: "clock-samples", Value: recorder.DefaultClockSamples, Usage: "GET /time round trips per clock estimate (at least 5)"},
		&cli.DurationFlag{Name: "counter-interval", Value: recorder.DefaultCounterInterval, Usage: "read the hardware energy counters this often (also at start, stop and every mark; 0: only those)"},
		&cli.BoolFlag{Name: "keep-trying", Usage: "retry unreachable endpoints in the background instead of failing the start"},
		&cli.DurationFlag{Name: "max-backoff", Value: recorder.DefaultMaxBackoff, Usage: "longest wait between reconnection attempts"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
	}
}

func recordCommand() *cli.Command {
	return &cli.Command{
		Name:      "record",
		Usage:     "stream every power event from zeusd endpoints into a bbolt file",
		UsageText: "wattrec record --db run.db --server node1:4938 --server 'tcp://node2:4938?gpus=0,1&cpus=none'",
		Description: `Connects to each zeusd endpoint, checks its devices and token, estimates its
clock offset, and records every GPU and CPU power event (clock-corrected, with
the daemon's own timestamp kept) until SIGINT or SIGTERM, then flushes and exits 0.

With no --server or --servers-file, $ZEUSD_SOCK_PATH and then $ZEUSD_HOST_PORT
are used. The token comes from $ZEUSD_TOKEN or --token-file.`,
		Flags:  recordFlags(),
		Action: func(c *cli.Context) error { return record(c, c.Context) },
	}
}

// serversFromFlags collects the servers of --server, --servers-file and
// the zeusd environment variables.
func serversFromFlags(c *cli.Context) ([]recorder.Server, error) {
	var servers []recorder.Server
	for _, spec := range c.StringSlice("server") {
		s, err := recorder.ParseServer(spec)
		if err != nil {
			return nil, err
		}
		servers = append(servers, s)
	}
	if path := c.Path("servers-file"); path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--servers-file: %w", err)
		}
		defer f.Close()
		more, err := recorder.ParseServersFile(f, path)
		if err != nil {
			return nil, err
		}
		servers = append(servers, more...)
	}
	if len(servers) == 0 {
		for _, env := range []string{"ZEUSD_SOCK_PATH", "ZEUSD_HOST_PORT"} {
			if v := os.Getenv(env); v != "" {
				s, err := recorder.ParseServer(v)
				if err != nil {
					return nil, fmt.Errorf("$%s: %w", env, err)
				}
				servers = append(servers, s)
				break
			}
		}
	}
	return servers, recorder.CheckServers(servers)
}

// token reads --token-file or $ZEUSD_TOKEN. The value never reaches a log.
func token(c *cli.Context) (string, error) {
	if path := c.Path("token-file"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("--token-file %s is empty", path)
		}
		return tok, nil
	}
	return strings.TrimSpace(os.Getenv("ZEUSD_TOKEN")), nil
}

// newRecorder builds a recorder from the record flags, on an open file.
func newRecorder(c *cli.Context, log *slog.Logger) (*recorder.Recorder, *store.DB, error) {
	servers, err := serversFromFlags(c)
	if err != nil {
		return nil, nil, err
	}
	tok, err := token(c)
	if err != nil {
		return nil, nil, err
	}
	if c.Duration("flush-interval") <= 0 {
		return nil, nil, fmt.Errorf("--flush-interval %v: must be positive", c.Duration("flush-interval"))
	}
	db, err := store.Open(c.Path("db"), store.Options{})
	if err != nil {
		return nil, nil, explainOpen(err)
	}
	client := recorder.NewClient(servers)
	client.Token = tok
	client.ClockInterval = c.Duration("clock-interval")
	client.ClockSamples = c.Int("clock-samples")
	client.CounterInterval = c.Duration("counter-interval")
	client.KeepTrying = c.Bool("keep-trying")
	client.MaxBackoff = c.Duration("max-backoff")
	client.Logger = log
	rec := recorder.New(client, db)
	rec.FlushInterval = c.Duration("flush-interval")
	rec.Version = wattrecVersion()
	for _, s := range servers {
		rec.Servers = append(rec.Servers, s.String())
	}
	return rec, db, nil
}

func record(c *cli.Context, ctx context.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	rec, db, err := newRecorder(c, log)
	if err != nil {
		return err
	}
	runErr := recordWithControl(ctx, rec, db, log)
	if err := db.Close(); err != nil {
		return errors.Join(runErr, fmt.Errorf("close %s: %w", c.Path("db"), err))
	}
	if runErr == nil {
		log.Info("recording stopped; everything received is stored", "db", c.Path("db"))
	}
	return runErr
}

// recordWithControl runs rec and, beside it, the control socket that lets
// query, export, info and mark reach the file while it is held.
func recordWithControl(ctx context.Context, rec *recorder.Recorder, db *store.DB, log *slog.Logger) error {
	ctlCtx, stopCtl := context.WithCancel(context.WithoutCancel(ctx))
	ctl := &control.Server{DB: db, Flush: rec.Flush, Mark: markHook(rec, db, log), Logger: log}
	path := control.SocketPath(db.Path())
	ctlDone := make(chan error, 1)
	go func() { ctlDone <- ctl.Serve(ctlCtx, path) }()

	runErr := rec.Run(ctx)
	stopCtl()
	if err := <-ctlDone; err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("control socket: %w", err))
	}
	return runErr
}

// markHook stores a mark and reads the hardware counters at it, so that a
// window's energy can be checked against them.
func markHook(rec *recorder.Recorder, db *store.DB, log *slog.Logger) func(context.Context, control.MarkRequest) (store.Mark, error) {
	return func(ctx context.Context, req control.MarkRequest) (store.Mark, error) {
		m, err := control.ApplyMark(ctx, db, req, rec.Client.Now().UnixMilli())
		if err != nil {
			return m, err
		}
		if err := rec.Client.ReadCounters(ctx, store.TriggerMark); err != nil {
			log.Warn("reading counters at a mark", "mark", m.Name, "err", err)
		}
		log.Info("mark", "name", m.Name, "action", req.Action, "id", m.ID)
		return m, nil
	}
}

// explainOpen adds a hint to a lock error.
func explainOpen(err error) error {
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w\n(is `wattrec record` running on this file? stop it or read a copy)", err)
	}
	return err
}

// openReadOnly opens a file for a read-only command.
func openReadOnly(path string) (*store.DB, error) {
	db, err := store.Open(path, store.Options{ReadOnly: true})
	return db, explainOpen(err)
}

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:      "info",
		Usage:     "summarise a recording: endpoints, devices, span, counts, sessions and gaps, clock offsets",
		UsageText: "wattrec info --db run.db",
		Flags: []cli.Flag{
			&cli.PathFlag{Name: "db", Usage: "wattrec `FILE`", Required: true},
		},
		Action: func(c *cli.Context) error {
			return withData(c,
				func(rc *control.Client) error { return rc.Info(c.Context, c.App.Writer) },
				func(db *store.DB) error { return query.Info(c.Context, c.App.Writer, db) })
		},
	}
}

func filterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "from", Usage: "start `TIME` (inclusive): RFC 3339 (zone optional, default local), Unix s or ms, now, -15m"},
		&cli.StringFlag{Name: "to", Usage: "end `TIME` (exclusive)"},
		&cli.StringSliceFlag{Name: "endpoint", Usage: "only this endpoint (repeatable)"},
		&cli.StringFlag{Name: "device", Usage: "only these devices, e.g. gpu:0,gpu:1,cpu:0 (cpu:N includes its DRAM), or gpu"},
	}
}

// filterFromFlags builds a query.Filter. "start" and "end" stand for the
// ends of the recording, which is also what an omitted bound means; with
// neither bound the filter covers all time.
func filterFromFlags(c *cli.Context) (query.Filter, error) {
	f := query.Filter{Endpoints: c.StringSlice("endpoint")}
	if d := c.String("device"); d != "" {
		var err error
		if f.Devices, err = query.ParseDevices(d); err != nil {
			return f, fmt.Errorf("--device: %w", err)
		}
	}
	from, to := c.String("from"), c.String("to")
	if from == "" && to == "" {
		return f, nil
	}
	now := time.Now()
	var err error
	switch from {
	case "", "start":
		f.FromStart = true
	case "end":
		return f, errors.New("--from end: the window would be empty")
	default:
		if f.FromMs, err = query.ParseTime(from, now, time.Local); err != nil {
			return f, fmt.Errorf("--from: %w", err)
		}
	}
	switch to {
	case "", "end":
		f.ToEnd = true
	case "start":
		return f, errors.New("--to start: the window would be empty")
	default:
		if f.ToMs, err = query.ParseTime(to, now, time.Local); err != nil {
			return f, fmt.Errorf("--to: %w", err)
		}
	}
	if !f.FromStart && !f.ToEnd && f.ToMs <= f.FromMs {
		return f, fmt.Errorf("--to %s is not after --from %s", query.FormatTime(f.ToMs), query.FormatTime(f.FromMs))
	}
	return f, nil
}

// withData runs a read command through the running recorder's control
// socket when there is one, or on the file opened read-only otherwise.
func withData(c *cli.Context, remote func(*control.Client) error, local func(*store.DB) error) error {
	path := c.Path("db")
	client, err := control.Dial(c.Context, path)
	switch {
	case err == nil:
		defer client.Close()
		return remote(client)
	case !errors.Is(err, control.ErrNoRecorder):
		return err
	}
	db, err := openReadOnly(path)
	if err != nil {
		return err
	}
	defer db.Close()
	return local(db)
}

func queryCommand() *cli.Command {
	return &cli.Command{
		Name:      "query",
		Usage:     "exact joules between two times, per device, endpoint, kind or in total, with coverage",
		UsageText: "wattrec query --db run.db --from 2026-11-27T16:00:00Z --to 2026-11-27T17:00:00Z --by device --every 10m",
		Description: `Integration rules (integer mW x ms, converted to joules once at the end):
  GPU       zeusd sends a value only when it changes: it holds from its time until the
            next reading of that device, starting with the last value before --from.
  CPU/DRAM  a value is the average over the poll period that ended at its time: it
            covers (t - period, t] and holds until the next reading's period begins.
            The period is inferred from the spacing of readings (or --cpu-period).
  Both      a value holds only inside the live stream session it arrived in: a
            disconnection is a gap with no energy, and so is the start of a session
            before its first reading.
coverage = the fraction of the window (device-time) inside a live session with a
known value; gaps = stretches without one. DRAM is its own series, apart from the
CPU package. avg W = joules / observed seconds; peak W = the largest single-device value.
--from/--to: RFC 3339 (zone optional, default local), Unix s or ms, now, -15m,
start or end (of the recording). Default: the whole recording.`,
		Flags: append(filterFlags(),
			&cli.PathFlag{Name: "db", Usage: "wattrec `FILE`", Required: true},
			&cli.StringFlag{Name: "by", Value: query.ByDevice, Usage: "group rows by device, endpoint, kind or total (a total row follows the groups)"},
			&cli.StringFlag{Name: "every", Usage: "split the window into buckets of this `WIDTH`, aligned to the clock (e.g. 1m); \"window\" (with --window) is one bucket per instance, the default"},
			&cli.StringFlag{Name: "window", Usage: "report each instance of the mark `NAME` (wattrec mark) and their sum"},
			&cli.StringFlag{Name: "method", Value: "hold", Usage: "hold (the rules above), trapezoid (linear interpolation, for comparison) or compare (both, with their relative difference)"},
			&cli.DurationFlag{Name: "cpu-period", Usage: "CPU/DRAM poll period (default: inferred per series)"},
			&cli.StringFlag{Name: "format", Value: query.FormatTable, Usage: "table, json or csv"},
		),
		Action: func(c *cli.Context) error {
			method := c.String("method")
			if !slices.Contains([]string{"hold", "trapezoid", "compare"}, method) {
				return fmt.Errorf("--method %q: want hold, trapezoid or compare", method)
			}
			format := c.String("format")
			if !slices.Contains([]string{query.FormatTable, query.FormatJSON, query.FormatCSV}, format) {
				return fmt.Errorf("--format %q: want table, json or csv", format)
			}
			var everyMs int64
			switch every := c.String("every"); {
			case every == "":
			case every == "window":
				if c.String("window") == "" {
					return errors.New("--every window needs --window NAME")
				}
			default:
				d, err := time.ParseDuration(every)
				if err != nil || d < time.Millisecond {
					return fmt.Errorf("--every %q: want a width of at least 1ms, like 10s or 1m, or \"window\"", every)
				}
				everyMs = d.Milliseconds()
			}
			filter, err := filterFromFlags(c)
			if err != nil {
				return err
			}
			req := control.QueryRequest{Method: method, Format: format, Options: query.Options{Filter: filter, By: c.String("by"),
				EveryMs: everyMs, CPUPeriodMs: c.Duration("cpu-period").Milliseconds(), Window: c.String("window")}}
			return withData(c,
				func(rc *control.Client) error { return rc.Query(c.Context, c.App.Writer, req) },
				func(db *store.DB) error { return control.Query(c.Context, c.App.Writer, db, req) })
		},
	}
}

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write stored readings (and an energy grid) as Parquet, CSV or JSON Lines",
		UsageText: "wattrec export --db run.db -o run.parquet --grid 1s --device gpu:0",
		Description: `One row per stored device value, ordered by endpoint, kind, device and time:
time (clock-corrected, UTC ms), daemon_time_ms, endpoint, kind (gpu, cpu, dram),
device, power_w, seed (read with get_power at a (re)connect, not streamed).
Parquet (zstd, dictionary-encoded endpoint and kind) is the default when -o ends in
.parquet, CSV for .csv, JSON Lines otherwise. The Parquet footer carries the
integration rules, clock estimates, sessions and gaps, each endpoint's /discover
answer, the wattrec version and the export's filters.
--grid WIDTH also writes an energy-conserving grid (RUN.grid.parquet beside -o):
per bin and device, energy_j (the exact integral over the bin by query's rules),
avg_power_w and coverage; the bins of a window sum to query's joules.
Files are written atomically (a temp file renamed into place); an existing file
is kept unless --force.`,
		Flags: append(filterFlags(),
			&cli.PathFlag{Name: "db", Usage: "wattrec `FILE`", Required: true},
			&cli.StringFlag{Name: "format", Usage: "parquet, csv or jsonl (default: from -o's extension, else jsonl)"},
			&cli.PathFlag{Name: "output", Aliases: []string{"o"}, Usage: "output `FILE` (default: standard output)"},
			&cli.DurationFlag{Name: "grid", Usage: "also write the energy grid with bins of this `WIDTH` (e.g. 1s)"},
			&cli.BoolFlag{Name: "grid-only", Usage: "write only the grid, to -o"},
			&cli.DurationFlag{Name: "cpu-period", Usage: "CPU/DRAM poll period for the grid (default: inferred per series)"},
			&cli.BoolFlag{Name: "force", Usage: "replace existing output files"},
		),
		Action: exportAction,
	}
}

func exportAction(c *cli.Context) error {
	filter, err := filterFromFlags(c)
	if err != nil {
		return err
	}
	out := c.Path("output")
	if out == "-" {
		out = ""
	}
	format := c.String("format")
	if format == "" {
		switch strings.ToLower(filepath.Ext(out)) {
		case ".parquet", ".pq":
			format = "parquet"
		case ".csv":
			format = "csv"
		default:
			format = "jsonl"
		}
	}
	if !slices.Contains([]string{"parquet", "csv", "jsonl"}, format) {
		return fmt.Errorf("--format %q: want parquet, csv or jsonl", format)
	}
	gridMs := c.Duration("grid").Milliseconds()
	switch {
	case c.IsSet("grid") && gridMs < 1:
		return fmt.Errorf("--grid %v: want a bin width of at least 1ms", c.Duration("grid"))
	case c.Bool("grid-only") && gridMs == 0:
		return errors.New("--grid-only needs --grid WIDTH")
	case gridMs > 0 && format == "jsonl":
		return errors.New("the grid is written as parquet or csv: use -o FILE.parquet or --format csv")
	case gridMs > 0 && !c.Bool("grid-only") && out == "":
		return errors.New("--grid writes a second file beside -o: give -o FILE (or --grid-only for standard output)")
	}
	opt := export.Options{Version: wattrecVersion(), CPUPeriodMs: c.Duration("cpu-period").Milliseconds()}

	type job struct {
		path   string
		gridMs int64
	}
	var jobs []job
	if !c.Bool("grid-only") {
		jobs = append(jobs, job{out, 0})
	}
	if gridMs > 0 {
		path := out
		if !c.Bool("grid-only") {
			ext := filepath.Ext(out)
			path = strings.TrimSuffix(out, ext) + ".grid" + ext
		}
		jobs = append(jobs, job{path, gridMs})
	}
	// Refuse before writing anything when an output exists.
	for _, j := range jobs {
		if _, err := os.Lstat(j.path); j.path != "" && err == nil && !c.Bool("force") {
			return fmt.Errorf("%s: %w", j.path, export.ErrExists)
		}
	}
	for _, j := range jobs {
		req := control.ExportRequest{Filter: filter, Format: format, GridMs: j.gridMs, Options: opt}
		label := "export"
		if j.gridMs > 0 {
			label = "grid"
		}
		write := func(w io.Writer) error {
			return withData(c,
				func(rc *control.Client) error { return rc.Export(c.Context, w, req) },
				func(db *store.DB) error {
					bar := export.NewProgressBar(c.App.ErrWriter, label)
					req.Options.Progress = bar.Update
					err := control.Export(c.Context, w, db, req)
					bar.Finish()
					return err
				})
		}
		if j.path == "" {
			if err := write(c.App.Writer); err != nil {
				return err
			}
			continue
		}
		if err := export.WriteFile(j.path, c.Bool("force"), write); err != nil {
			return err
		}
	}
	return nil
}

func markCommand() *cli.Command {
	dbFlag := &cli.PathFlag{Name: "db", Usage: "wattrec `FILE`", Required: true}
	act := func(action string) func(c *cli.Context) error {
		return func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("mark %s: want exactly one NAME, got %d arguments", action, c.NArg())
			}
			req := control.MarkRequest{Action: action, Name: c.Args().First(), Source: "cli"}
			if action == control.MarkAdd {
				if !c.IsSet("from") || !c.IsSet("to") {
					return errors.New("mark add: --from and --to are required")
				}
				now := time.Now()
				var err error
				if req.FromMs, err = query.ParseTime(c.String("from"), now, time.Local); err != nil {
					return fmt.Errorf("--from: %w", err)
				}
				if req.ToMs, err = query.ParseTime(c.String("to"), now, time.Local); err != nil {
					return fmt.Errorf("--to: %w", err)
				}
			}
			var m store.Mark
			err := withRecorder(c, func(rc *control.Client) (err error) {
				m, err = rc.Mark(c.Context, req)
				return err
			}, func() error {
				if action != control.MarkAdd {
					return fmt.Errorf("mark %s needs a running recorder on %s (none answers on %s); for a finished recording use: wattrec mark add NAME --from T0 --to T1",
						action, c.Path("db"), control.SocketPath(c.Path("db")))
				}
				// A closed file: write the mark into it directly.
				db, err := store.Open(c.Path("db"), store.Options{})
				if err != nil {
					return explainOpen(err)
				}
				m, err = control.ApplyMark(c.Context, db, req, time.Now().UnixMilli())
				return errors.Join(err, db.Close())
			})
			if err != nil {
				return err
			}
			end := "open"
			if !m.Open {
				end = query.FormatTime(m.EndMs)
			}
			fmt.Fprintf(c.App.Writer, "mark %d %q: %s → %s\n", m.ID, m.Name, query.FormatTime(m.BeginMs), end)
			return nil
		}
	}
	return &cli.Command{
		Name:      "mark",
		Usage:     "name a window of the recording (begin/end while recording, add afterwards), or list them",
		UsageText: "wattrec mark begin --db run.db epoch",
		Description: `Windows may overlap, nest and repeat; query --window NAME reports each instance
and their sum. begin and end go through the running recorder (which also reads the
hardware counters at each mark); add also works on a closed file. From a script,
one HTTP call on the control socket FILE.sock does the same:
  curl --unix-socket run.db.sock -X POST http://localhost/v1/marks -d '{"action":"begin","name":"epoch"}'`,
		Subcommands: []*cli.Command{
			{Name: "begin", Usage: "open a window named NAME now", UsageText: "wattrec mark begin --db run.db NAME", Flags: []cli.Flag{dbFlag}, Action: act(control.MarkBegin)},
			{Name: "end", Usage: "close the latest open window named NAME now", UsageText: "wattrec mark end --db run.db NAME", Flags: []cli.Flag{dbFlag}, Action: act(control.MarkEnd)},
			{Name: "add", Usage: "add a window NAME from T0 to T1", UsageText: "wattrec mark add --db run.db --from 2026-11-27T16:00:00Z --to 2026-11-27T16:10:00Z NAME",
				Flags: []cli.Flag{dbFlag, &cli.StringFlag{Name: "from", Usage: "begin `TIME`"}, &cli.StringFlag{Name: "to", Usage: "end `TIME`"}}, Action: act(control.MarkAdd)},
			{Name: "list", Usage: "list the marks", UsageText: "wattrec mark list --db run.db [NAME]", Flags: []cli.Flag{dbFlag}, Action: func(c *cli.Context) error {
				var marks []store.Mark
				err := withData(c, func(rc *control.Client) (err error) {
					marks, err = rc.Marks(c.Context, c.Args().First())
					return err
				}, func(db *store.DB) (err error) {
					marks, err = db.Marks(c.Context, c.Args().First())
					return err
				})
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tBEGIN\tEND\tSOURCE")
				for _, m := range marks {
					end := "open"
					if !m.Open {
						end = query.FormatTime(m.EndMs)
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", m.ID, m.Name, query.FormatTime(m.BeginMs), end, m.Source)
				}
				return tw.Flush()
			}},
		},
	}
}

// withRecorder runs remote when a recorder answers on the file's control
// socket, and offline otherwise.
func withRecorder(c *cli.Context, remote func(*control.Client) error, offline func() error) error {
	client, err := control.Dial(c.Context, c.Path("db"))
	switch {
	case err == nil:
		defer client.Close()
		return remote(client)
	case errors.Is(err, control.ErrNoRecorder):
		return offline()
	}
	return err
}

// exitCode is a command's exit status that main passes on without a
// message (wattrec run exits with its command's status).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// ExitCode is the status to exit with.
func (e exitCode) ExitCode() int { return int(e) }

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "record while a command runs, mark its window, and print its energy",
		UsageText: "wattrec run --db run.db --server node1:4938 -- python train.py --epochs 3",
		Description: `Starts recording (every record flag works), runs CMD once every endpoint is
streaming, forwards SIGINT and SIGTERM to it, stops recording after it exits, marks
its window with the command line, prints an energy summary (per device and total,
with coverage) on stderr, and exits with the command's status.`,
		Flags: recordFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return errors.New("run: give the command after --, e.g. wattrec run --db run.db --server node1:4938 -- sleep 5")
			}
			log, err := logger(c)
			if err != nil {
				return err
			}
			rec, db, err := newRecorder(c, log)
			if err != nil {
				return err
			}
			defer db.Close()

			// Signals go to the command; recording stops only after it exits.
			sigs := make(chan os.Signal, 4)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sigs)
			recCtx, stopRec := context.WithCancel(context.WithoutCancel(c.Context))
			defer stopRec()
			recDone := make(chan error, 1)
			go func() { recDone <- recordWithControl(recCtx, rec, db, log) }()
			select {
			case <-rec.Started():
			case err := <-recDone:
				return fmt.Errorf("run: recording did not start: %w", err)
			}

			// Energy is known once every stream has its first value; a flat
			// GPU without a seed may take long, so do not wait forever.
			waitCtx, cancelWait := context.WithTimeout(c.Context, 5*time.Second)
			if err := rec.Client.WaitFirstValues(waitCtx); err != nil {
				log.Warn("starting the command before every stream delivered a value", "err", err)
			}
			cancelWait()
			// Counter readings just before the command starts and just after
			// it ends (the mark) bracket its window.
			if err := rec.Client.ReadCounters(c.Context, store.TriggerMark); err != nil {
				log.Warn("reading counters before the command", "err", err)
			}
			args := c.Args().Slice()
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			begin := rec.Client.Now()
			if err := cmd.Start(); err != nil {
				stopRec()
				return errors.Join(fmt.Errorf("run: %w", err), <-recDone)
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			var cmdErr error
		wait:
			for {
				select {
				case sig := <-sigs:
					cmd.Process.Signal(sig)
				case cmdErr = <-waited:
					break wait
				}
			}
			end := rec.Client.Now()

			name := strings.Join(args, " ")
			if _, err := markHook(rec, db, log)(context.WithoutCancel(c.Context), control.MarkRequest{Action: control.MarkAdd,
				Name: name, FromMs: begin.UnixMilli(), ToMs: max(end.UnixMilli(), begin.UnixMilli()+1), Source: "run"}); err != nil {
				log.Error("marking the command's window", "err", err)
			}
			stopRec()
			if err := <-recDone; err != nil {
				return fmt.Errorf("run: recording: %w", err)
			}

			fmt.Fprintf(c.App.ErrWriter, "\nwattrec: energy while %q ran (%s):\n", name, end.Sub(begin).Round(time.Millisecond))
			rep, err := query.Energy(c.Context, db, query.Options{Filter: query.Filter{FromMs: begin.UnixMilli(), ToMs: max(end.UnixMilli(), begin.UnixMilli()+1)}})
			if err == nil {
				err = rep.Write(c.App.ErrWriter, query.FormatTable, false)
			}
			if err != nil {
				fmt.Fprintf(c.App.ErrWriter, "wattrec: no energy summary: %v\n", err)
			}

			var exitErr *exec.ExitError
			switch {
			case cmdErr == nil:
				return nil
			case errors.As(cmdErr, &exitErr):
				if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					return exitCode(128 + int(ws.Signal()))
				}
				return exitCode(exitErr.ExitCode())
			}
			return fmt.Errorf("run: %w", cmdErr)
		},
	}
}

func simulatorFlags() []cli.Flag {
	def := simulator.DefaultConfig()
	return []cli.Flag{
		&cli.IntFlag{Name: "gpus", Value: def.GPUs, Usage: "simulated GPUs"},
		&cli.IntFlag{Name: "cpus", Value: def.CPUs, Usage: "simulated CPU packages (each with DRAM)"},
		&cli.Float64Flag{Name: "gpu-hz", Value: def.GPUPollHz, Usage: "GPU poll rate"},
		&cli.Float64Flag{Name: "cpu-hz", Value: def.CPUPollHz, Usage: "CPU poll rate"},
		&cli.StringFlag{Name: "format", Value: def.Format, Usage: "stream format: sample (current zeusd) or snapshot (older zeusd)"},
		&cli.Int64Flag{Name: "seed", Value: def.Seed, Usage: "trace seed: the same seed gives the same power traces"},
		&cli.DurationFlag{Name: "clock-offset", Usage: "daemon clock minus true clock, e.g. -5s"},
	}
}

func simulatorConfig(c *cli.Context) simulator.Config {
	cfg := simulator.DefaultConfig()
	cfg.GPUs, cfg.CPUs = c.Int("gpus"), c.Int("cpus")
	cfg.GPUPollHz, cfg.CPUPollHz = c.Float64("gpu-hz"), c.Float64("cpu-hz")
	cfg.Format, cfg.Seed, cfg.ClockOffset = c.String("format"), c.Int64("seed"), c.Duration("clock-offset")
	return cfg
}

func simulateCommand() *cli.Command {
	return &cli.Command{
		Name:      "simulate",
		Usage:     "serve a simulated zeusd (discover, time, auth, get_power, cumulative energy, both stream formats)",
		UsageText: "wattrec simulate --listen 127.0.0.1:4938 --gpus 4 --cpus 2 --clock-offset -5s",
		Description: `Serves the zeusd API over TCP or a Unix socket until SIGINT/SIGTERM, with
deterministic, seeded power traces. --auth-secret-file turns on JWT auth;
--token-out then writes a token with every read scope (mode 0600).`,
		Flags: append(simulatorFlags(),
			&cli.StringFlag{Name: "listen", Usage: "TCP `ADDR` to serve on (default 127.0.0.1:4938)"},
			&cli.PathFlag{Name: "socket", Usage: "Unix socket `PATH` to serve on instead"},
			&cli.PathFlag{Name: "auth-secret-file", Usage: "`FILE` with the HS256 secret; enables auth"},
			&cli.PathFlag{Name: "token-out", Usage: "write a token for gpu-read and cpu-read to `FILE`"},
		),
		Action: func(c *cli.Context) error {
			cfg := simulatorConfig(c)
			if path := c.Path("auth-secret-file"); path != "" {
				secret, err := os.ReadFile(path)
				if err != nil {
					return fmt.Errorf("--auth-secret-file: %w", err)
				}
				if len(strings.TrimSpace(string(secret))) == 0 {
					return fmt.Errorf("--auth-secret-file %s is empty", path)
				}
				cfg.AuthSecret = []byte(strings.TrimSpace(string(secret)))
			}
			if out := c.Path("token-out"); out != "" {
				if cfg.AuthSecret == nil {
					return errors.New("--token-out needs --auth-secret-file")
				}
				tok, err := simulator.MintToken(cfg.AuthSecret, "wattrec-demo", []string{simulator.GroupGPURead, simulator.GroupCPURead}, time.Time{})
				if err != nil {
					return err
				}
				if err := os.WriteFile(out, []byte(tok+"\n"), 0o600); err != nil {
					return fmt.Errorf("--token-out: %w", err)
				}
			}
			sim, err := simulator.New(cfg)
			if err != nil {
				return err
			}
			ln, err := listen(c.String("listen"), c.Path("socket"))
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "simulated zeusd on %s (%d GPUs, %d CPUs, %s format)\n", ln.Addr(), cfg.GPUs, cfg.CPUs, cfg.Format)
			return sim.Serve(c.Context, ln)
		},
	}
}

// listen opens the simulator's listener; a stale socket file is replaced.
func listen(addr, socket string) (net.Listener, error) {
	switch {
	case addr != "" && socket != "":
		return nil, errors.New("give --listen or --socket, not both")
	case socket != "":
		if fi, err := os.Lstat(socket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(socket)
		}
		ln, err := net.Listen("unix", socket)
		if err != nil {
			return nil, fmt.Errorf("--socket: %w", err)
		}
		return ln, nil
	case addr == "":
		addr = "127.0.0.1:4938"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--listen: %w", err)
	}
	return ln, nil
}

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:      "demo",
		Usage:     "start a simulated zeusd on a Unix socket, record it for a while, and show what was stored",
		UsageText: "wattrec demo --db demo.db --duration 10s",
		Flags: append(simulatorFlags(),
			&cli.PathFlag{Name: "db", Value: "demo.db", Usage: "bbolt `FILE` to record into"},
			&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "how long to record"},
		),
		Action: func(c *cli.Context) error {
			log, err := logger(c)
			if err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "wattrec-demo-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			sim, err := simulator.New(simulatorConfig(c))
			if err != nil {
				return err
			}
			sock := filepath.Join(dir, "zeusd.sock")
			ln, err := listen("", sock)
			if err != nil {
				return err
			}
			simCtx, stopSim := context.WithCancel(c.Context)
			simDone := make(chan error, 1)
			go func() { simDone <- sim.Serve(simCtx, ln) }()
			defer func() { stopSim(); <-simDone }()

			db, err := store.Open(c.Path("db"), store.Options{})
			if err != nil {
				return explainOpen(err)
			}
			srv := recorder.Server{Network: "unix", Address: sock}
			client := recorder.NewClient([]recorder.Server{srv})
			client.Logger = log
			rec := recorder.New(client, db)
			rec.Version, rec.Servers = wattrecVersion(), []string{srv.String()}
			fmt.Fprintf(c.App.Writer, "recording the simulated zeusd at %s into %s for %s...\n", sock, c.Path("db"), c.Duration("duration"))
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("duration"))
			defer cancel()
			if err := rec.Run(ctx); err != nil {
				db.Close()
				return err
			}
			fmt.Fprintln(c.App.Writer)
			if err := query.Info(c.Context, c.App.Writer, db); err != nil {
				db.Close()
				return err
			}
			fmt.Fprintln(c.App.Writer, "\nenergy by kind (wattrec query --by kind):")
			rep, err := query.Energy(c.Context, db, query.Options{By: query.ByKind})
			if err == nil {
				err = rep.Write(c.App.Writer, query.FormatTable, false)
			}
			if err != nil {
				db.Close()
				return err
			}
			fmt.Fprintln(c.App.Writer, "\nfirst readings of gpu:0 (wattrec export --format jsonl):")
			var buf strings.Builder
			if _, err := export.JSONL(c.Context, &buf, db, query.Filter{Devices: []query.DeviceFilter{{Kind: store.KindGPU}}}); err != nil {
				db.Close()
				return err
			}
			lines := strings.SplitN(buf.String(), "\n", 6)
			fmt.Fprintln(c.App.Writer, strings.Join(lines[:min(5, len(lines))], "\n"))
			return db.Close()
		},
	}
}
