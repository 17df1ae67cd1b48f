package recorder_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/simulator"
)

// simulate serves a simulated zeusd with 2 GPUs and one CPU package on a
// Unix socket and returns the socket's path and a function that stops it.
// With a standing time (stand not zero) the daemon starts an hour before
// it and its clock then stands still, so every value is the same each run.
func simulate(stand time.Time) (string, func()) {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		panic(err)
	}
	cfg := simulator.DefaultConfig()
	cfg.GPUs, cfg.CPUs = 2, 1
	var clock atomic.Int64
	if !stand.IsZero() {
		clock.Store(stand.Add(-time.Hour).UnixNano())
		cfg.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	}
	sim, err := simulator.New(cfg)
	if err != nil {
		panic(err)
	}
	if !stand.IsZero() {
		clock.Store(stand.UnixNano())
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "zeusd.sock"))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- sim.Serve(ctx, ln) }()
	return ln.Addr().String(), func() { cancel(); <-served; os.RemoveAll(dir) }
}

// Example streams power from the zeusd the environment names, as zeus's
// PowerStreamingClient does, and reads it once more on request, as
// zeus's ZeusdClient does. The daemon is a simulated one whose clock
// stands still, so that the output is the same every run. README.md
// shows this example from "ctx :=" on (go test -run TestREADME -update
// rewrites it).
func Example() {
	sock, stop := simulate(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	defer stop()
	os.Setenv("ZEUSD_SOCK_PATH", sock) // as `export ZEUSD_SOCK_PATH=/run/zeusd/zeusd.sock` would
	defer os.Unsetenv("ZEUSD_SOCK_PATH")

	ctx := context.Background()
	env, err := recorder.FromEnv() // ZEUSD_SOCK_PATH, else ZEUSD_HOST_PORT, and ZEUSD_TOKEN
	if err != nil {
		fmt.Println(err)
		return
	}
	client := recorder.NewClient(env.Servers)
	client.Token = env.Token
	client.Logger = slog.New(slog.DiscardHandler)
	switch err := client.Start(ctx); {
	case errors.Is(err, recorder.ErrUnreachable):
		fmt.Println("is zeusd running?", err)
		return
	case errors.Is(err, recorder.ErrMissingDevice), errors.Is(err, recorder.ErrMissingScope):
		fmt.Println("the selection asks for more than the daemon and the token give:", err)
		return
	case err != nil:
		fmt.Println(err)
		return
	}
	defer client.Stop()

	// The snapshot is empty until every stream has delivered a value.
	if err := client.WaitFirstValues(ctx); err != nil {
		fmt.Println(err)
		return
	}
	endpoint := env.Servers[0].Endpoint()
	info, _ := client.Info(endpoint) // what /discover said, and what streams
	latest := client.Snapshot()[endpoint]
	for _, gpu := range info.Discovery.GPUs {
		fmt.Printf("GPU %d (%s): %.3f W\n", gpu.ID, gpu.Name, latest.GPUWatts[gpu.ID])
	}
	for _, cpu := range info.CPUs {
		fmt.Printf("CPU %d: %.3f W, DRAM %.3f W\n", cpu, latest.CPUs[cpu].PackageWatts, latest.CPUs[cpu].DRAMWatts)
	}

	// One-shot reads, without a stream.
	daemon, err := recorder.DialZeusd(ctx, env.Servers[0], env.Token)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer daemon.Close()
	power, err := daemon.Power(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, v := range power {
		fmt.Printf("%s %d: %d mW\n", v.Kind, v.Device, v.MilliWatts)
	}
	energy, err := daemon.Energy(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range energy {
		fmt.Printf("%s %d: counter at %d µJ\n", r.Kind, r.Device, r.EnergyUJ)
	}
	clock, err := daemon.Time(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("daemon clock:", time.UnixMilli(clock.DaemonMs).UTC())
	// Output:
	// GPU 0 (Simulated GPU): 284.894 W
	// GPU 1 (Simulated GPU): 86.176 W
	// CPU 0: 66.748 W, DRAM 5.037 W
	// gpu 0: 284894 mW
	// gpu 1: 86176 mW
	// cpu 0: 66748 mW
	// dram 0: 5037 mW
	// gpu 0: counter at 700403210000 µJ
	// gpu 1: counter at 691963992000 µJ
	// cpu 0: counter at 302983707670 µJ
	// dram 0: counter at 39985639260 µJ
	// daemon clock: 2026-01-01 00:00:00 +0000 UTC
}

// ExampleClient_Updates follows the latest readings as they change.
func ExampleClient_Updates() {
	sock, stop := simulate(time.Time{}) // a live clock
	defer stop()
	ctx := context.Background()

	server, err := recorder.ParseServer(sock + "?gpus=0,1")
	if err != nil {
		fmt.Println(err)
		return
	}
	client := recorder.NewClient([]recorder.Server{server})
	client.Logger = slog.New(slog.DiscardHandler)
	if err := client.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer client.Stop()

	// Each update yields a deep copy of the latest readings; a slow loop
	// gets the newest state, never a backlog.
	for snap := range client.Updates(ctx) {
		node := snap[server.Endpoint()]
		if len(node.GPUWatts) == 2 && len(node.CPUs) == 1 {
			fmt.Printf("%d GPUs, %d CPU package, DRAM: %v\n", len(node.GPUWatts), len(node.CPUs), node.CPUs[0].HasDRAM)
			break
		}
	}
	// Output: 2 GPUs, 1 CPU package, DRAM: true
}
