package recorder_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/simulator"
)

// Example streams power from a zeusd (here a simulated one on a Unix
// socket) with the library client: start, read live snapshots, stop.
func Example() {
	// A simulated zeusd with 2 GPUs and one CPU package.
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	cfg := simulator.DefaultConfig()
	cfg.GPUs, cfg.CPUs = 2, 1
	sim, _ := simulator.New(cfg)
	ln, _ := net.Listen("unix", filepath.Join(dir, "zeusd.sock"))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- sim.Serve(ctx, ln) }()
	defer func() { cancel(); <-served }()

	// The client: same selections as zeus's PowerStreamingClient.
	server, err := recorder.ParseServer("unix://" + ln.Addr().String() + "?gpus=0,1")
	if err != nil {
		fmt.Println(err)
		return
	}
	client := recorder.NewClient([]recorder.Server{server})
	client.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := client.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer client.Stop()

	// Each update yields a deep copy of the latest readings.
	for snap := range client.Updates(ctx) {
		node := snap[server.Endpoint()]
		if len(node.GPUWatts) == 2 && len(node.CPUs) == 1 {
			fmt.Printf("%d GPUs, %d CPU package, DRAM: %v\n", len(node.GPUWatts), len(node.CPUs), node.CPUs[0].HasDRAM)
			break
		}
	}
	// Output: 2 GPUs, 1 CPU package, DRAM: true
}
