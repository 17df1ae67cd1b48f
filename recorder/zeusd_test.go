package recorder_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

// settableClock is a simulator's true clock that moves only when told.
type settableClock struct{ ns atomic.Int64 }

func newSettableClock() *settableClock {
	c := &settableClock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *settableClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *settableClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// rawGet asks the simulator's handler for path directly, as the oracle of
// what a read should return.
func rawGet(t *testing.T, sim *simulator.Server, path string, v any) {
	t.Helper()
	rec := httptest.NewRecorder()
	sim.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func dial(t *testing.T, srv recorder.Server, token string) *recorder.Zeusd {
	t.Helper()
	z, err := recorder.DialZeusd(context.Background(), srv, token)
	if err != nil {
		t.Fatalf("DialZeusd: %v", err)
	}
	t.Cleanup(z.Close)
	return z
}

// TestZeusd_Reads: one-shot reads over both transports return what the
// daemon answers, typed, with device ids and units, and no store.
func TestZeusd_Reads(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		t.Run(network, func(t *testing.T) {
			clock := newSettableClock()
			cfg := simtest.FastConfig(simulator.FormatSample) // the daemon clock is 5 s behind
			cfg.Now = clock.now
			sim, srv, _ := simtest.Start(t, cfg, network)
			z := dial(t, srv, "")
			ctx := context.Background()

			in := z.Info()
			if in.Endpoint != srv.Endpoint() || !reflect.DeepEqual(in.GPUs, []int{0, 1}) || !reflect.DeepEqual(in.CPUs, []int{0}) ||
				in.GPUSkip != "" || in.CPUSkip != "" || len(in.Discovery.GPUs) != 2 || len(in.Discovery.CPUs) != 1 ||
				in.Discovery.GPUs[1].ID != 1 || in.Discovery.GPUs[1].Name == "" || !in.Discovery.CPUs[0].DRAMAvailable {
				t.Fatalf("Info = %+v", in)
			}

			t.Run("Time", func(t *testing.T) {
				s, err := z.Time(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := s.DaemonMs, clock.now().Add(-5*time.Second).UnixMilli(); got != want {
					t.Errorf("DaemonMs = %d, want %d (the simulated daemon clock)", got, want)
				}
				if s.Sent.After(s.Received) {
					t.Errorf("Sent %v after Received %v", s.Sent, s.Received)
				}
			})

			t.Run("Power", func(t *testing.T) {
				got, err := z.Power(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var gpu struct {
					TimestampMs int64            `json:"timestamp_ms"`
					PowerMW     map[string]int64 `json:"power_mw"`
				}
				rawGet(t, sim, "/gpu/get_power", &gpu)
				var cpu struct {
					TimestampMs int64 `json:"timestamp_ms"`
					PowerMW     map[string]struct {
						CPU  int64 `json:"cpu_mw"`
						DRAM int64 `json:"dram_mw"`
					} `json:"power_mw"`
				}
				rawGet(t, sim, "/cpu/get_power", &cpu)
				want := []recorder.Value{
					{Kind: store.KindGPU, Device: 0, DaemonMs: gpu.TimestampMs, MilliWatts: gpu.PowerMW["0"]},
					{Kind: store.KindGPU, Device: 1, DaemonMs: gpu.TimestampMs, MilliWatts: gpu.PowerMW["1"]},
					{Kind: store.KindCPU, Device: 0, DaemonMs: cpu.TimestampMs, MilliWatts: cpu.PowerMW["0"].CPU},
					{Kind: store.KindDRAM, Device: 0, DaemonMs: cpu.TimestampMs, MilliWatts: cpu.PowerMW["0"].DRAM},
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("Power =\n%+v, want\n%+v", got, want)
				}
				for _, v := range got {
					if v.MilliWatts <= 0 {
						t.Errorf("%+v: no power", v)
					}
				}
			})

			t.Run("Energy", func(t *testing.T) {
				before, err := z.Energy(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var gpu map[string]struct {
					MJ int64 `json:"energy_mj"`
				}
				rawGet(t, sim, "/gpu/get_cumulative_energy", &gpu)
				var cpu map[string]struct {
					CPU  int64 `json:"cpu_energy_uj"`
					DRAM int64 `json:"dram_energy_uj"`
				}
				rawGet(t, sim, "/cpu/get_cumulative_energy?cpu=true&dram=true", &cpu)
				wantUJ := map[[2]int64]int64{
					{int64(store.KindGPU), 0}:  gpu["0"].MJ * 1000, // mJ on the wire, µJ in the reading
					{int64(store.KindGPU), 1}:  gpu["1"].MJ * 1000,
					{int64(store.KindCPU), 0}:  cpu["0"].CPU,
					{int64(store.KindDRAM), 0}: cpu["0"].DRAM,
				}
				if len(before) != len(wantUJ) {
					t.Fatalf("Energy = %+v, want %d readings", before, len(wantUJ))
				}
				for _, r := range before {
					key := [2]int64{int64(r.Kind), int64(r.Device)}
					if want, ok := wantUJ[key]; !ok || r.EnergyUJ != want || r.Endpoint != srv.Endpoint() || r.Trigger != store.TriggerMark || r.RTTUs < 0 {
						t.Errorf("reading %+v, want %d µJ from %s on request", r, want, srv.Endpoint())
					}
				}

				// Ten simulated seconds later every counter has grown by
				// its average power times ten seconds.
				clock.advance(10 * time.Second)
				after, err := z.Energy(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for i, r := range after {
					mW := (r.EnergyUJ - before[i].EnergyUJ) / 10 / 1000 // µJ over 10 s → mW
					if r.Kind != before[i].Kind || r.Device != before[i].Device || mW <= 0 || mW > 1_000_000 {
						t.Errorf("%v %d: %d → %d µJ in 10 s (%d mW average)", r.Kind, r.Device, before[i].EnergyUJ, r.EnergyUJ, mW)
					}
				}
			})
		})
	}
}

// TestZeusd_Selection: a Zeusd reads the devices its Server selects.
func TestZeusd_Selection(t *testing.T) {
	_, srv, _ := simtest.Start(t, simtest.FastConfig(simulator.FormatSnapshot), "unix")
	srv.GPUs, srv.CPUs = recorder.Only(1), recorder.None()
	z := dial(t, srv, "")
	if in := z.Info(); !reflect.DeepEqual(in.GPUs, []int{1}) || in.CPUs != nil || !strings.Contains(in.CPUSkip, "none") {
		t.Fatalf("Info = %+v", in)
	}
	power, err := z.Power(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(power) != 1 || power[0].Kind != store.KindGPU || power[0].Device != 1 {
		t.Errorf("Power = %+v, want GPU 1 alone", power)
	}
	energy, err := z.Energy(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(energy) != 1 || energy[0].Kind != store.KindGPU || energy[0].Device != 1 {
		t.Errorf("Energy = %+v, want GPU 1 alone", energy)
	}
}

// TestZeusd_NoCounter: GPUs without an energy counter are left out of
// Energy, whether /discover says so or (zeusd 0.5.0) the daemon refuses.
func TestZeusd_NoCounter(t *testing.T) {
	for _, release := range []string{simulator.ReleaseMain, simulator.Release050} {
		t.Run(release, func(t *testing.T) {
			cfg := simtest.FastConfig(simulator.FormatSample)
			cfg.Release = release
			cfg.CumulativeEnergy = []bool{true, false}
			_, srv, _ := simtest.Start(t, cfg, "tcp")
			z := dial(t, srv, "")
			for range 2 { // the refused GPU is not asked again
				energy, err := z.Energy(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, r := range energy {
					got = append(got, r.Kind.String()+strconv.Itoa(int(r.Device)))
				}
				if want := []string{"gpu0", "cpu0", "dram0"}; !reflect.DeepEqual(got, want) {
					t.Fatalf("Energy read %v, want %v", got, want)
				}
			}
		})
	}
}

// TestZeusd_Auth: the token decides what a Zeusd reads, as for a Client.
func TestZeusd_Auth(t *testing.T) {
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.AuthSecret = []byte("s3cret")
	_, srv, _ := simtest.Start(t, cfg, "tcp")
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	gpuOnly, err := simulator.MintToken(cfg.AuthSecret, "alice", []string{"gpu-read"}, exp)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("NoToken", func(t *testing.T) {
		_, err := recorder.DialZeusd(context.Background(), srv, "")
		if !errors.Is(err, recorder.ErrTokenRequired) || !errors.Is(err, recorder.ErrMissingScope) {
			t.Fatalf("DialZeusd = %v, want ErrTokenRequired and ErrMissingScope", err)
		}
	})
	t.Run("ScopeSkipsCPUs", func(t *testing.T) {
		z := dial(t, srv, gpuOnly)
		in := z.Info()
		if in.Subject != "alice" || !in.TokenExpiry.Equal(exp) || !reflect.DeepEqual(in.GPUs, []int{0, 1}) || in.CPUs != nil ||
			!strings.Contains(in.CPUSkip, `missing scope "cpu-read"`) {
			t.Fatalf("Info = %+v", in)
		}
		power, err := z.Power(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(power) != 2 || power[0].Kind != store.KindGPU || power[1].Kind != store.KindGPU {
			t.Errorf("Power = %+v, want the 2 GPUs", power)
		}
	})
	t.Run("ScopeExplicit", func(t *testing.T) {
		s := srv
		s.CPUs = recorder.Only(0)
		_, err := recorder.DialZeusd(context.Background(), s, gpuOnly)
		if !errors.Is(err, recorder.ErrMissingScope) || errors.Is(err, recorder.ErrTokenRequired) {
			t.Fatalf("DialZeusd = %v, want ErrMissingScope alone", err)
		}
	})
	t.Run("MissingBeforeScope", func(t *testing.T) {
		s := srv
		s.CPUs = recorder.Only(5)
		_, err := recorder.DialZeusd(context.Background(), s, gpuOnly)
		if !errors.Is(err, recorder.ErrMissingDevice) || errors.Is(err, recorder.ErrMissingScope) {
			t.Fatalf("DialZeusd = %v, want ErrMissingDevice alone", err)
		}
	})
}

// TestZeusd_Unreachable: a daemon that cannot be reached, at the dial or
// after it, is ErrUnreachable.
func TestZeusd_Unreachable(t *testing.T) {
	_, srv, stop := simtest.Start(t, simtest.FastConfig(simulator.FormatSample), "unix")
	z := dial(t, srv, "")
	stop()
	ctx := context.Background()
	if _, err := z.Power(ctx); !errors.Is(err, recorder.ErrUnreachable) {
		t.Errorf("Power = %v, want ErrUnreachable", err)
	}
	if _, err := z.Energy(ctx); !errors.Is(err, recorder.ErrUnreachable) {
		t.Errorf("Energy = %v, want ErrUnreachable", err)
	}
	if _, err := z.Time(ctx); !errors.Is(err, recorder.ErrUnreachable) {
		t.Errorf("Time = %v, want ErrUnreachable", err)
	}
	_, err := recorder.DialZeusd(ctx, srv, "")
	if !errors.Is(err, recorder.ErrUnreachable) || !strings.Contains(err.Error(), "cannot reach zeusd at "+srv.Endpoint()) {
		t.Errorf("DialZeusd = %v, want ErrUnreachable naming the endpoint", err)
	}

	// A cancelled read is the caller's doing, not the daemon's.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := z.Time(cctx); !errors.Is(err, context.Canceled) || errors.Is(err, recorder.ErrUnreachable) {
		t.Errorf("Time with a cancelled context = %v, want context.Canceled alone", err)
	}
}
