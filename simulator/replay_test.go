package simulator_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/wattrec/wattrec/simulator"
)

// MustServeReplay serves r on loopback TCP until cleanup, and checks
// that Serve returns nil.
func MustServeReplay(tb testing.TB, r *simulator.Replay) *testServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, ln) }()
	tr := &http.Transport{}
	ts := &testServer{base: "http://" + ln.Addr().String(), client: &http.Client{Transport: tr}, cancel: cancel, done: done}
	tb.Cleanup(func() {
		if err := ts.stop(); err != nil {
			tb.Error(err)
		}
		tr.CloseIdleConnections()
	})
	return ts
}

var replayFrom = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestReplay_Values(t *testing.T) {
	cfg := fastConfig()
	r, err := simulator.NewReplay(cfg, replayFrom, replayFrom.Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"gpu", "cpu"} {
		var vals []simulator.ReplayValue
		for v := range r.Values(kind) {
			vals = append(vals, v)
		}
		var again []simulator.ReplayValue
		for v := range r.Values(kind) {
			again = append(again, v)
		}
		if !reflect.DeepEqual(vals, again) {
			t.Fatalf("%s: two walks differ", kind)
		}
		// The first tick sends every device at the span's start; then
		// each device only when it changed, inside the span, in order.
		if len(vals) < 2 || vals[0].DaemonMs != replayFrom.UnixMilli() || vals[1].DaemonMs != vals[0].DaemonMs {
			t.Fatalf("%s: first values %+v", kind, vals[:2])
		}
		last := map[int]simulator.ReplayValue{}
		prevMs := int64(0)
		for _, v := range vals {
			if v.DaemonMs < prevMs || v.DaemonMs >= replayFrom.Add(5*time.Second).UnixMilli() {
				t.Fatalf("%s: %+v out of order or outside the span", kind, v)
			}
			if l, ok := last[v.Device]; ok && l.Power == v.Power && l.DRAM == v.DRAM {
				t.Fatalf("%s: %+v repeats the last value", kind, v)
			}
			last[v.Device], prevMs = v, v.DaemonMs
			if kind == "cpu" && !v.HasDRAM {
				t.Fatalf("cpu value without DRAM: %+v", v)
			}
		}
		if got, want := len(last), 2; got != want {
			t.Fatalf("%s: %d devices, want %d", kind, got, want)
		}
	}
}

func TestReplay_Stream(t *testing.T) {
	for _, format := range []string{simulator.FormatSample, simulator.FormatSnapshot} {
		t.Run(format, func(t *testing.T) {
			cfg := fastConfig()
			cfg.Format = format
			r, err := simulator.NewReplay(cfg, replayFrom, replayFrom.Add(3*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			ts := MustServeReplay(t, r)

			// get_power: the tick before the span.
			var seed struct {
				TimestampMs int64          `json:"timestamp_ms"`
				PowerMW     map[string]any `json:"power_mw"`
			}
			ts.getJSON(t, "/gpu/get_power", "", &seed)
			if got, want := seed.TimestampMs, replayFrom.UnixMilli()-5; got != want || len(seed.PowerMW) != 2 {
				t.Fatalf("get_power %+v, want timestamp %d and 2 GPUs", seed, want)
			}

			for _, kind := range []string{"gpu", "cpu"} {
				var want []simulator.ReplayValue
				for v := range r.Values(kind) {
					if v.Device == 1 {
						want = append(want, v)
					}
				}
				param := map[string]string{"gpu": "gpu_ids", "cpu": "cpu_ids"}[kind]
				st := ts.openStream(t, "/"+kind+"/stream_power?"+param+"=1", "")
				var got []simulator.ReplayValue
				for len(got) < len(want) {
					data := st.next(t)
					if format == simulator.FormatSample {
						var ev struct {
							TimestampMs int64  `json:"timestamp_ms"`
							GPUID       *int   `json:"gpu_id"`
							CPUID       *int   `json:"cpu_id"`
							PowerMW     int64  `json:"power_mw"`
							CPUMW       int64  `json:"cpu_mw"`
							DRAMMW      *int64 `json:"dram_mw"`
						}
						decodeStrict(t, data, &ev)
						v := simulator.ReplayValue{DaemonMs: ev.TimestampMs, Power: ev.PowerMW}
						if kind == "gpu" {
							v.Device = *ev.GPUID
						} else {
							v.Device, v.Power, v.DRAM, v.HasDRAM = *ev.CPUID, ev.CPUMW, *ev.DRAMMW, true
						}
						got = append(got, v)
						continue
					}
					var ev struct {
						TimestampMs int64                      `json:"timestamp_ms"`
						PowerMW     map[string]json.RawMessage `json:"power_mw"`
					}
					decodeStrict(t, data, &ev)
					if len(ev.PowerMW) != 1 {
						t.Fatalf("snapshot of device 1 only holds %s", data)
					}
					v := simulator.ReplayValue{DaemonMs: ev.TimestampMs, Device: 1}
					if kind == "gpu" {
						decodeStrict(t, string(ev.PowerMW["1"]), &v.Power)
					} else {
						var c struct {
							CPUMW  int64 `json:"cpu_mw"`
							DRAMMW int64 `json:"dram_mw"`
						}
						decodeStrict(t, string(ev.PowerMW["1"]), &c)
						v.Power, v.DRAM, v.HasDRAM = c.CPUMW, c.DRAMMW, true
					}
					got = append(got, v)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s stream differs from Values (%d values)", kind, len(want))
				}
			}
			// Both streams wrote their span and stay open until the
			// replay stops; then they end cleanly.
			waitFor(t, "both streams finished", func() bool { return r.Finished() == 2 })
			if r.Events() == 0 {
				t.Fatal("no events counted")
			}
		})
	}
}

func TestNewReplay_Invalid(t *testing.T) {
	if _, err := simulator.NewReplay(fastConfig(), replayFrom, replayFrom); err == nil {
		t.Fatal("empty span accepted")
	}
	bad := fastConfig()
	bad.Format = "xml"
	if _, err := simulator.NewReplay(bad, replayFrom, replayFrom.Add(time.Second)); err == nil {
		t.Fatal("bad config accepted")
	}
}
