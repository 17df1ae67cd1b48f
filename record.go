package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wattrec/wattrec/metrics"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/recording"
	"github.com/wattrec/wattrec/store"
)

// recordFlags are shared by record and run.
func recordFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.PathFlag{Name: "db", EnvVars: []string{"WATTREC_DB"}, Usage: "bbolt `FILE` to append to (created if missing)"},
		configFlag(),
		&cli.StringSliceFlag{Name: "server", Aliases: []string{"s"}, Usage: "zeusd `SPEC`: host[:port], tcp://host[:port], unix:///path.sock, /path.sock or ./rel.sock, with optional ?gpus=0,1&cpus=none (repeatable)"},
		&cli.PathFlag{Name: "servers-file", Usage: "`FILE` with one SPEC a line, optionally followed by token-file=PATH (# comments)"},
		&cli.PathFlag{Name: "token-file", EnvVars: []string{"WATTREC_TOKEN_FILE"}, Usage: "`FILE` holding the zeusd JWT, readable by its owner only (default: $ZEUSD_TOKEN); never pass a token on the command line"},
		&cli.DurationFlag{Name: "flush-interval", Value: recorder.DefaultFlushInterval, Usage: "commit at least this often (at least " + recorder.MinInterval.String() + "); a crash loses at most this much"},
		&cli.DurationFlag{Name: "clock-interval", Value: recorder.DefaultClockInterval, Usage: "re-estimate each daemon's clock offset this often (0: only at start; else at least " + recorder.MinInterval.String() + ")"},
		&cli.IntFlag{Name: "clock-samples", Value: recorder.DefaultClockSamples, Usage: fmt.Sprintf("GET /time round trips per clock estimate (%d to %d)", recorder.MinClockSamples, recorder.MaxClockSamples)},
		&cli.DurationFlag{Name: "counter-interval", Value: recorder.DefaultCounterInterval, Usage: "read the hardware energy counters this often (also at start, stop and every mark; 0: only those; else at least " + recorder.MinInterval.String() + ")"},
		&cli.BoolFlag{Name: "keep-trying", Usage: "retry unreachable endpoints in the background instead of failing the start"},
		&cli.StringFlag{Name: "memory-limit", Value: "auto", Usage: "soft limit on the recorder's Go memory (heap, stacks; not the file's mapped pages), raised by the readings on their way to the file (all of a disk-full backlog): a `SIZE` such as 64MiB, auto (24 MiB + 128 KiB per endpoint, unless $GOMEMLIMIT is set, which then applies) or off"},
		&cli.DurationFlag{Name: "max-backoff", Value: recorder.DefaultMaxBackoff, Usage: "longest wait between reconnection attempts, to zeusd and to remote-write receivers (at least " + recorder.MinMaxBackoff.String() + ")"},
		metricsListenFlag(),
	}
	return append(append(flags, remoteWriteFlags()...), logLevelFlag("")) // the global --log-level unless given here
}

func recordCommand() *cli.Command {
	return &cli.Command{
		Name:      "record",
		Usage:     "stream every power event from zeusd endpoints into a bbolt file",
		UsageText: "wattrec record --db run.db --server node1:4938 --server 'tcp://node2:4938?gpus=0,1&cpus=none'",
		Description: `Connects to each zeusd endpoint, checks its devices and token, estimates its
clock offset, and records every GPU and CPU power event (clock-corrected, with
the daemon's own timestamp kept) until SIGINT or SIGTERM, then flushes and exits 0.
A second SIGINT or SIGTERM exits at once, with status 1, without waiting for the
final commit (what was committed stays).

With no --server or --servers-file, $ZEUSD_SOCK_PATH and then $ZEUSD_HOST_PORT
are used. The token comes from $ZEUSD_TOKEN or --token-file.

SIGHUP reloads the server list from the --config file's [[endpoint]] tables
and the --servers-file: new servers start, removed ones end their sessions,
nothing recorded is lost (the other settings stay as they were started).`,
		Flags: recordFlags(),
		Action: func(c *cli.Context) error {
			d, priorSize, err := newDaemon(c)
			if err != nil {
				return err
			}
			stopReloads := reloadOnHangup(c, d)
			err = errors.Join(d.Run(c.Context), closeDB(d.DB), discardUnstarted(d, priorSize))
			stopReloads()
			if err == nil {
				d.Logger.Info("recording stopped; everything received is stored", "db", d.DB.Path())
			}
			return err
		},
	}
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "record while a command runs, mark its window, and print its energy",
		UsageText: "wattrec run --db run.db --server node1:4938 -- python train.py --epochs 3",
		Description: `Starts recording (every record flag works), runs CMD once every endpoint is
streaming, forwards SIGINT and SIGTERM to it, stops recording after it exits, marks
its window with the command line, prints an energy summary (per device and total,
with coverage) on stderr, and exits with the command's status.`,
		Flags: append(recordFlags(),
			&cli.StringFlag{Name: "summary-json", Usage: "also write the energy summary to `FILE` as `wattrec query --format json` does (replaced if it exists)"}),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return errors.New("run: give the command after --, e.g. wattrec run --db run.db --server node1:4938 -- sleep 5")
			}
			d, priorSize, err := newDaemon(c)
			if err != nil {
				return err
			}
			args := c.Args().Slice()
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			sigs := make(chan os.Signal, 1)
			stop := interrupts.forwardTo(sigs)
			defer stop()
			err = recording.Run(c.Context, d, cmd, sigs, recording.Summary{Text: c.App.ErrWriter, JSONPath: c.String("summary-json")})
			var status recording.ExitStatus
			if err != nil && !errors.As(err, &status) {
				err = fmt.Errorf("run: %w", err)
			}
			return errors.Join(err, closeDB(d.DB), discardUnstarted(d, priorSize))
		},
	}
}

func closeDB(db *store.DB) error {
	if err := db.Close(); err != nil {
		return fmt.Errorf("close %s: %w", db.Path(), err)
	}
	return nil
}

// discardUnstarted undoes the file of a recording whose start failed,
// where opening it wrote one: a file this command created is removed,
// an empty one emptied again. A wattrec file is left as it was (nothing
// is written to it before the start succeeds). priorSize is the file's
// size before it was opened, -1 for none.
func discardUnstarted(d *recording.Daemon, priorSize int64) error {
	select {
	case <-d.Recorder.Started():
		return nil
	default:
	}
	var err error
	switch priorSize {
	case -1:
		err = os.Remove(d.DB.Path())
	case 0:
		err = os.Truncate(d.DB.Path(), 0)
	}
	if err != nil {
		return fmt.Errorf("undo %s after the failed start: %w", d.DB.Path(), err)
	}
	return nil
}

// settingFlags names the flag of each recorder setting, for its errors.
var settingFlags = map[string]string{
	"FlushInterval": "--flush-interval", "ClockInterval": "--clock-interval", "ClockSamples": "--clock-samples",
	"CounterInterval": "--counter-interval", "MaxBackoff": "--max-backoff", "MemoryLimit": "--memory-limit",
}

// flagError is a recorder setting out of its limits, as the flag that set
// it.
type flagError struct {
	flag string
	err  *recorder.SettingError
}

func (e flagError) Error() string {
	return fmt.Sprintf("%s %v: want %s", e.flag, e.err.Value, e.err.Want)
}
func (e flagError) Unwrap() error { return e.err }

// asFlagError names the flag of a recorder setting error.
func asFlagError(err error) error {
	var se *recorder.SettingError
	if errors.As(err, &se) && settingFlags[se.Setting] != "" {
		return flagError{settingFlags[se.Setting], se}
	}
	return err
}

// newDaemon builds a recorder and its control socket from the record
// flags, on the opened file, and returns the file's size before (-1: it
// did not exist). Settings are checked before the file is opened, so a
// bad flag creates no file.
func newDaemon(c *cli.Context) (d *recording.Daemon, priorSize int64, err error) {
	log, err := logger(c)
	if err != nil {
		return nil, 0, err
	}
	configured, err := applyConfig(c)
	if err != nil {
		return nil, 0, err
	}
	servers, err := serversFromFlags(c, configured.servers)
	if err != nil {
		return nil, 0, err
	}
	tok, err := token(c)
	if err != nil {
		return nil, 0, err
	}
	path, err := dbPath(c)
	if err != nil {
		return nil, 0, err
	}
	client := recorder.NewClient(servers)
	client.Token = tok
	client.ClockInterval = c.Duration("clock-interval")
	client.ClockSamples = c.Int("clock-samples")
	client.CounterInterval = c.Duration("counter-interval")
	client.KeepTrying = c.Bool("keep-trying")
	client.MaxBackoff = c.Duration("max-backoff")
	client.Logger = log
	rec := recorder.New(client, nil)
	rec.FlushInterval = c.Duration("flush-interval")
	if rec.MemoryLimit, err = memoryLimit(c.String("memory-limit"), len(servers)); err != nil {
		return nil, 0, err
	}
	rec.Version = wattrecVersion()
	for _, s := range servers {
		rec.Servers = append(rec.Servers, s.String())
	}
	if err := rec.Check(); err != nil {
		return nil, 0, asFlagError(err)
	}
	pushes, err := senders(c, log)
	if err != nil {
		return nil, 0, err
	}
	for _, s := range pushes {
		s.EndpointLabels = configured.labels
	}
	ln, err := metricsListener(c)
	if err != nil {
		return nil, 0, err
	}
	priorSize = -1
	if fi, err := os.Stat(path); err == nil {
		priorSize = fi.Size()
	}
	db, err := store.Open(path, store.Options{})
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, 0, err
	}
	rec.DB = db
	d = &recording.Daemon{Recorder: rec, DB: db, Logger: log, Senders: pushes}
	now := time.Now()
	for _, s := range pushes {
		s.DB, s.LiveSince, s.MaxBackoff = db, now, client.MaxBackoff
	}
	if ln != nil {
		d.Metrics, d.MetricsListener = metrics.New(now), ln
		d.Metrics.Size = db.Size
	}
	return d, priorSize, nil
}

// memoryLimit is the Recorder.MemoryLimit of --memory-limit for a
// recording of endpoints endpoints (0: the runtime's own). Its limits are
// the recorder's (Recorder.Check).
func memoryLimit(flag string, endpoints int) (int64, error) {
	switch flag {
	case "auto":
		if os.Getenv("GOMEMLIMIT") != "" {
			return 0, nil // the runtime applies it
		}
		return recorder.MemoryLimitFor(endpoints), nil
	case "off":
		return 0, nil
	}
	n, err := parseSize(flag)
	if err != nil {
		return 0, fmt.Errorf("--memory-limit %q: want a size such as 64MiB, auto or off: %w", flag, recorder.ErrSetting)
	}
	return n, nil
}

// parseSize reads a byte count: digits with an optional unit B, KiB, MiB,
// GiB (as GOMEMLIMIT has them), KB, MB or GB.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		scale  int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, scale := s, int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			num, scale = rest, u.scale
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/scale {
		return 0, errors.New("not a size")
	}
	return n * scale, nil
}

// serversFromFlags collects the servers of the config file (configured),
// --server and --servers-file, else of the zeusd environment variables.
func serversFromFlags(c *cli.Context, configured []recorder.Server) ([]recorder.Server, error) {
	servers := configured
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
		env, err := recorder.FromEnv()
		if err != nil {
			return nil, err
		}
		servers = env.Servers
	}
	return servers, recorder.CheckServers(servers)
}

// token reads --token-file or $ZEUSD_TOKEN: the token of the servers
// without their own. The value never reaches a log.
func token(c *cli.Context) (string, error) {
	if path := c.Path("token-file"); path != "" {
		return readSecret("--token-file", path)
	}
	env, _ := recorder.FromEnv() // its error is about the servers; the token is read regardless
	return env.Token, nil
}

// readSecret reads the token in the file at path, which flag named (see
// recorder.ReadTokenFile: the file must be private).
func readSecret(flag, path string) (string, error) {
	tok, err := recorder.ReadTokenFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	return tok, nil
}

// reloadOnHangup reloads the daemon's server list on each SIGHUP (the
// config file's [[endpoint]] tables and --servers-file, read again; the
// --server flags as given) until the returned stop is called. A list that
// does not load or check is logged and the recording goes on as it was.
func reloadOnHangup(c *cli.Context, d *recording.Daemon) (stop func()) {
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	done, quit := make(chan struct{}), make(chan struct{})
	go func() { // owned by stop, which waits for it
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-hups:
			}
			configured, err := applyConfig(c) // flags set at the start stay as they are
			var servers []recorder.Server
			if err == nil {
				servers, err = serversFromFlags(c, configured.servers)
			}
			if err != nil {
				d.Logger.Error("SIGHUP: the server list does not load; recording goes on unchanged", "err", err)
				continue
			}
			started, ended, err := d.Recorder.Client.SetServers(c.Context, servers)
			if err != nil {
				d.Logger.Error("SIGHUP: reloading the server list", "err", err)
			}
			d.Logger.Info("SIGHUP: server list reloaded", "servers", len(servers), "started", started, "ended", ended)
		}
	}()
	return func() {
		signal.Stop(hups)
		close(quit)
		<-done
	}
}
