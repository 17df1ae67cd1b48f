package recorder

import (
	"testing"

	"github.com/wattrec/wattrec/store"
)

var viewBatch = store.Batch{Readings: []store.Reading{
	{Endpoint: "node1:4938", Kind: store.KindGPU, Device: 0, TimeMs: 1762000000000, MilliWatts: 75000},
	{Endpoint: "node1:4938", Kind: store.KindCPU, Device: 0, TimeMs: 1762000000000, MilliWatts: 85000},
}}

// TestNew_NoLiveView: a Recorder's client (the wattrec record daemon)
// does no per-batch work for a live view nobody reads: no readings kept,
// no update signal made.
func TestNew_NoLiveView(t *testing.T) {
	c := NewClient(nil)
	New(c, nil)
	if allocs := testing.AllocsPerRun(100, func() { c.emit(viewBatch) }); allocs != 0 {
		t.Errorf("emit allocates %v times per batch, want 0", allocs)
	}
	if got := len(c.latest); got != 0 {
		t.Errorf("the client keeps the latest readings of %d endpoints, want none", got)
	}
}

// TestNewClient_LiveView: a library client keeps the view by default.
func TestNewClient_LiveView(t *testing.T) {
	c := NewClient(nil)
	c.emit(viewBatch)
	pr := c.Snapshot()["node1:4938"]
	if got, want := pr.GPUWatts[0], 75.0; got != want {
		t.Errorf("GPU 0: %v W, want %v", got, want)
	}
	if got, want := pr.CPUs[0].PackageWatts, 85.0; got != want {
		t.Errorf("CPU 0: %v W, want %v", got, want)
	}
}
