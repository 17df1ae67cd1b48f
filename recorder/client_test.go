package recorder_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

// TestClient_Info: a started client says, per endpoint, what /discover
// answered and which devices it streams, as a deep copy.
func TestClient_Info(t *testing.T) {
	t.Parallel()
	_, both, _ := simtest.Start(t, simtest.FastConfig(simulator.FormatSample), "unix")
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.Release = simulator.Release050
	_, old, _ := simtest.Start(t, cfg, "tcp")
	old.GPUs, old.CPUs = recorder.Only(1), recorder.None()

	client := recorder.NewClient([]recorder.Server{both, old})
	client.Logger = testLogger(t)
	if _, ok := client.Info(both.Endpoint()); ok {
		t.Error("Info before Start reports an endpoint")
	}
	if err := client.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer client.Stop()

	in, ok := client.Info(both.Endpoint())
	if !ok || in.Endpoint != both.Endpoint() || !reflect.DeepEqual(in.GPUs, []int{0, 1}) || !reflect.DeepEqual(in.CPUs, []int{0}) ||
		len(in.Discovery.GPUs) != 2 || in.Discovery.GPUs[0].PCIAddress == "" || in.Discovery.GPUs[0].CumulativeEnergyAvailable == nil ||
		!reflect.DeepEqual(in.Access.Groups, []string{"gpu-read", "cpu-read"}) {
		t.Fatalf("Info(%s) = %+v, %v", both.Endpoint(), in, ok)
	}
	in.GPUs[0], in.Discovery.GPUs[0].Name = 99, "changed" // must not leak into the client
	*in.Discovery.GPUs[0].CumulativeEnergyAvailable = false
	again, _ := client.Info(both.Endpoint())
	if again.GPUs[0] != 0 || again.Discovery.GPUs[0].Name == "changed" || !*again.Discovery.GPUs[0].CumulativeEnergyAvailable {
		t.Errorf("Info is not a deep copy: %+v", again)
	}

	in, ok = client.Info(old.Endpoint())
	if !ok || !reflect.DeepEqual(in.GPUs, []int{1}) || in.CPUs != nil || !strings.Contains(in.CPUSkip, "none") ||
		in.Discovery.GPUs[0].PCIAddress != "" || in.Discovery.GPUs[0].CumulativeEnergyAvailable != nil { // zeusd 0.5.0 does not say
		t.Fatalf("Info(%s) = %+v, %v", old.Endpoint(), in, ok)
	}
	if _, ok := client.Info("elsewhere:4938"); ok {
		t.Error("Info reports an endpoint the client does not have")
	}
}

// TestLib_NoStore: the library needs no store. A client without a Sink
// streams into Snapshot and reads its counters, and a Zeusd reads on
// request; no store.DB exists in this test.
func TestLib_NoStore(t *testing.T) {
	t.Parallel()
	_, srv, _ := simtest.Start(t, simtest.FastConfig(simulator.FormatSnapshot), "unix")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	client := recorder.NewClient([]recorder.Server{srv})
	client.Logger = testLogger(t)
	if client.Sink != nil || !client.KeepLatest {
		t.Fatalf("NewClient: Sink %v, KeepLatest %v; want no sink, latest kept", client.Sink != nil, client.KeepLatest)
	}
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer client.Stop()
	if err := client.WaitFirstValues(ctx); err != nil {
		t.Fatal(err)
	}
	if pr := client.Snapshot()[srv.Endpoint()]; len(pr.GPUWatts) != 2 || len(pr.CPUs) != 1 || pr.Time.IsZero() {
		t.Fatalf("Snapshot after WaitFirstValues = %+v", pr)
	}
	if _, err := client.ReadCounters(ctx, store.TriggerMark); err != nil {
		t.Fatalf("ReadCounters: %v", err)
	}

	z, err := recorder.DialZeusd(ctx, srv, "")
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	if power, err := z.Power(ctx); err != nil || len(power) != 4 {
		t.Fatalf("Power = %+v, %v; want 2 GPUs, a CPU package and its DRAM", power, err)
	}
}
