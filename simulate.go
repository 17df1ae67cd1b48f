package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wattrec/wattrec/recording"
	"github.com/wattrec/wattrec/simulator"
)

func simulatorFlags() []cli.Flag {
	def := simulator.DefaultConfig()
	return []cli.Flag{
		&cli.IntFlag{Name: "gpus", Value: def.GPUs, Usage: "simulated GPUs"},
		&cli.IntFlag{Name: "cpus", Value: def.CPUs, Usage: "simulated CPU packages (each with DRAM unless --no-dram)"},
		&cli.Float64Flag{Name: "gpu-hz", Value: def.GPUPollHz, Usage: "GPU poll rate"},
		&cli.Float64Flag{Name: "cpu-hz", Value: def.CPUPollHz, Usage: "CPU poll rate"},
		&cli.StringFlag{Name: "format", Value: def.Format, Usage: "stream format: sample (current zeusd) or snapshot (older zeusd)"},
		&cli.Int64Flag{Name: "seed", Value: def.Seed, Usage: "trace seed: the same seed gives the same power traces"},
		&cli.DurationFlag{Name: "clock-offset", Usage: "daemon clock minus true clock, e.g. -5s"},
		&cli.Float64Flag{Name: "clock-drift", Usage: "the daemon clock runs fast by this many `PPM` (negative: slow)"},
		&cli.StringSliceFlag{Name: "enable", Value: cli.NewStringSlice(simulator.GroupGPURead, simulator.GroupCPURead),
			Usage: "API `GROUPS` to enable, as zeusd's --enable: " + strings.Join(simulator.KnownGroups(), ", ")},
		&cli.IntSliceFlag{Name: "no-dram", Usage: "CPU package `IDS` without a DRAM domain, e.g. 1 or 0,2 (their dram_mw is null)"},
		&cli.IntSliceFlag{Name: "no-counter", Usage: "GPU `IDS` without an energy counter, e.g. 0,2 (get_cumulative_energy refuses them)"},
		&cli.StringFlag{Name: "zeusd-version", Value: simulator.ReleaseMain,
			Usage: "zeusd to imitate: " + simulator.ReleaseMain + " or " + simulator.Release050 + " (no pci_address or cumulative_energy_available in /discover)"},
	}
}

// simulatorConfig turns the simulator flags into a Config, refusing
// unknown API groups and releases and device ids the node lacks.
func simulatorConfig(c *cli.Context) (simulator.Config, error) {
	cfg := simulator.DefaultConfig()
	cfg.GPUs, cfg.CPUs = c.Int("gpus"), c.Int("cpus")
	cfg.GPUPollHz, cfg.CPUPollHz = c.Float64("gpu-hz"), c.Float64("cpu-hz")
	cfg.Format, cfg.Seed, cfg.ClockOffset = c.String("format"), c.Int64("seed"), c.Duration("clock-offset")
	cfg.ClockDriftPPM = c.Float64("clock-drift")
	cfg.APIGroups = c.StringSlice("enable")
	for _, g := range cfg.APIGroups {
		if !slices.Contains(simulator.KnownGroups(), g) {
			return cfg, fmt.Errorf("--enable %q: not an API group (%s)", g, strings.Join(simulator.KnownGroups(), ", "))
		}
	}
	switch cfg.Release = c.String("zeusd-version"); cfg.Release {
	case simulator.ReleaseMain, simulator.Release050:
	default:
		return cfg, fmt.Errorf("--zeusd-version %q: want %s or %s", cfg.Release, simulator.ReleaseMain, simulator.Release050)
	}
	var err error
	if cfg.DRAM, err = deviceMask(c, "no-dram", cfg.CPUs, "CPU packages"); err != nil {
		return cfg, err
	}
	cfg.CumulativeEnergy, err = deviceMask(c, "no-counter", cfg.GPUs, "GPUs")
	return cfg, err
}

// deviceMask returns, for the n devices, false for those the id list flag
// names and true for the others; nil when the flag is not set.
func deviceMask(c *cli.Context, flag string, n int, devices string) ([]bool, error) {
	ids := c.IntSlice(flag)
	if ids == nil {
		return nil, nil
	}
	mask := make([]bool, n)
	for i := range mask {
		mask[i] = true
	}
	for _, id := range ids {
		if id < 0 || id >= n {
			return nil, fmt.Errorf("--%s %d: the node has %d %s (ids 0 to %d)", flag, id, n, devices, n-1)
		}
		mask[id] = false
	}
	return mask, nil
}

func simulateCommand() *cli.Command {
	return &cli.Command{
		Name:      "simulate",
		Usage:     "serve a simulated zeusd (discover, time, auth, get_power, cumulative energy, both stream formats)",
		UsageText: "wattrec simulate --listen 127.0.0.1:4938 --gpus 4 --cpus 2 --clock-offset -5s",
		Description: `Serves the zeusd API over TCP or a Unix socket (mode 666, as zeusd's) until
SIGINT/SIGTERM, with deterministic, seeded power traces. A reader that falls
behind keeps its connection and gets the latest value of each device, as from
zeusd. --auth-secret-file turns on JWT auth with the file's raw bytes as the
HS256 key (as zeusd's --signing-key-path: a trailing newline is part of it);
--token-out then writes a token with every read scope (mode 0600).`,
		Flags: append(simulatorFlags(),
			&cli.StringFlag{Name: "listen", Usage: "TCP `ADDR` to serve on (default " + simulator.DefaultAddr + ")"},
			&cli.PathFlag{Name: "socket", Usage: "Unix socket `PATH` to serve on instead"},
			&cli.PathFlag{Name: "auth-secret-file", Usage: "`FILE` whose raw bytes are the HS256 key, as zeusd's --signing-key-path; enables auth"},
			&cli.PathFlag{Name: "token-out", Usage: "write a token for gpu-read and cpu-read to `FILE`"},
		),
		Action: func(c *cli.Context) error {
			cfg, err := simulatorConfig(c)
			if err != nil {
				return err
			}
			if err := simulatorAuth(c, &cfg); err != nil {
				return err
			}
			sim, err := simulator.New(cfg)
			if err != nil {
				return err
			}
			ln, err := simulator.Listen(c.String("listen"), c.Path("socket"))
			if errors.Is(err, simulator.ErrAddrAndSocket) {
				return errors.New("give --listen or --socket, not both")
			} else if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "simulated zeusd on %s (%d GPUs, %d CPUs, %s format)\n", ln.Addr(), cfg.GPUs, cfg.CPUs, cfg.Format)
			return sim.Serve(c.Context, ln)
		},
	}
}

// simulatorAuth reads --auth-secret-file into cfg and writes --token-out.
func simulatorAuth(c *cli.Context, cfg *simulator.Config) error {
	if path := c.Path("auth-secret-file"); path != "" {
		secret, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("--auth-secret-file: %w", err)
		}
		if len(secret) == 0 {
			return fmt.Errorf("--auth-secret-file %s is empty", path)
		}
		cfg.AuthSecret = secret // raw bytes, as zeusd reads its key file
	}
	out := c.Path("token-out")
	if out == "" {
		return nil
	}
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
	return nil
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
			cfg, err := simulatorConfig(c)
			if err != nil {
				return err
			}
			db, err := dbPath(c)
			if err != nil {
				return err
			}
			return recording.Demo(c.Context, c.App.Writer, recording.DemoOptions{DB: db, Duration: c.Duration("duration"),
				Simulator: cfg, Version: wattrecVersion(), Logger: log})
		},
	}
}
