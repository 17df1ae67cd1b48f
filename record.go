package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/recording"
	"github.com/wattrec/wattrec/store"
)

// recordFlags are shared by record and run.
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
		logLevelFlag(""), // the global --log-level unless given here
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
A second SIGINT or SIGTERM exits at once, with status 1, without waiting for the
final commit (what was committed stays).

With no --server or --servers-file, $ZEUSD_SOCK_PATH and then $ZEUSD_HOST_PORT
are used. The token comes from $ZEUSD_TOKEN or --token-file.`,
		Flags: recordFlags(),
		Action: func(c *cli.Context) error {
			d, err := newDaemon(c)
			if err != nil {
				return err
			}
			err = errors.Join(d.Run(c.Context), closeDB(d.DB))
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
		Flags: recordFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return errors.New("run: give the command after --, e.g. wattrec run --db run.db --server node1:4938 -- sleep 5")
			}
			d, err := newDaemon(c)
			if err != nil {
				return err
			}
			args := c.Args().Slice()
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			sigs := make(chan os.Signal, 1)
			stop := interrupts.forwardTo(sigs)
			defer stop()
			err = recording.Run(c.Context, d, cmd, sigs, c.App.ErrWriter)
			var status recording.ExitStatus
			if err != nil && !errors.As(err, &status) {
				err = fmt.Errorf("run: %w", err)
			}
			return errors.Join(err, closeDB(d.DB))
		},
	}
}

func closeDB(db *store.DB) error {
	if err := db.Close(); err != nil {
		return fmt.Errorf("close %s: %w", db.Path(), err)
	}
	return nil
}

// newDaemon builds a recorder and its control socket from the record
// flags, on the opened file.
func newDaemon(c *cli.Context) (*recording.Daemon, error) {
	log, err := logger(c)
	if err != nil {
		return nil, err
	}
	servers, err := serversFromFlags(c)
	if err != nil {
		return nil, err
	}
	tok, err := token(c)
	if err != nil {
		return nil, err
	}
	if c.Duration("flush-interval") <= 0 {
		return nil, fmt.Errorf("--flush-interval %v: must be positive", c.Duration("flush-interval"))
	}
	db, err := store.Open(c.Path("db"), store.Options{})
	if err != nil {
		return nil, err
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
	return &recording.Daemon{Recorder: rec, DB: db, Logger: log}, nil
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
