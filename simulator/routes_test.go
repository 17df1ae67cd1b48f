package simulator_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wattrec/wattrec/simulator"
)

// wantAnswer checks a GET's status and exact body.
func (ts *testServer) wantAnswer(tb testing.TB, method, path string, code int, body string) {
	tb.Helper()
	got, _, b := ts.do(tb, method, path, "")
	if got != code || string(b) != body {
		tb.Errorf("%s %s: %d %s, want %d %s", method, path, got, b, code, body)
	}
}

// TestServer_GPUEnergy: gpu_ids is optional; a GPU without a counter
// fails the whole answer with zeusd's per-device error.
func TestServer_GPUEnergy(t *testing.T) {
	cfg := fastConfig()
	cfg.GPUs = 3
	cfg.CumulativeEnergy = []bool{true, false, true}
	ts := MustServe(t, cfg, "tcp")
	const notSupported = `{"errors":{"1":"NVML error: the requested operation is not available on the target device"}}`
	ts.wantAnswer(t, "GET", "/gpu/get_cumulative_energy", http.StatusBadRequest, notSupported)
	ts.wantAnswer(t, "GET", "/gpu/get_cumulative_energy?gpu_ids=1", http.StatusBadRequest, notSupported)
	ts.wantAnswer(t, "GET", "/gpu/get_cumulative_energy?gpu_ids=2,1", http.StatusBadRequest, notSupported)
	var got map[string]struct {
		EnergyMJ *int64 `json:"energy_mj"`
	}
	ts.getJSON(t, "/gpu/get_cumulative_energy?gpu_ids=2,0", "", &got)
	if len(got) != 2 || got["0"].EnergyMJ == nil || got["2"].EnergyMJ == nil {
		t.Errorf("gpu_ids=2,0: %+v, want GPUs 0 and 2", got)
	}

	cfg.CumulativeEnergy = nil
	all := MustServe(t, cfg, "tcp")
	got = nil
	all.getJSON(t, "/gpu/get_cumulative_energy", "", &got)
	if len(got) != 3 {
		t.Errorf("no gpu_ids: %+v, want every GPU", got)
	}
}

// TestServer_GPUSettings: the gpu-read routes a Python client calls, and
// the gpu-control routes that change what they read.
func TestServer_GPUSettings(t *testing.T) {
	cfg := fastConfig()
	ts := MustServe(t, cfg, "tcp")
	ts.wantAnswer(t, "GET", "/gpu/get_power_limit", 200, `{"0":{"power_limit_mw":350000},"1":{"power_limit_mw":350000}}`)
	ts.wantAnswer(t, "GET", "/gpu/get_power_limit_constraints?gpu_ids=1", 200, `{"1":{"min_power_limit_mw":100000,"max_power_limit_mw":350000}}`)
	ts.wantAnswer(t, "GET", "/gpu/get_persistence_mode", 200, `{"0":{"enabled":false},"1":{"enabled":false}}`)
	ts.wantAnswer(t, "POST", "/gpu/set_power_limit?gpu_ids=0&power_limit_mw=200000&block=true", 404,
		`{"error":"API group 'gpu-control' is not enabled on this server."}`)

	cfg.APIGroups = []string{simulator.GroupGPURead, simulator.GroupGPUControl}
	ctl := MustServe(t, cfg, "tcp")
	ctl.wantAnswer(t, "POST", "/gpu/set_power_limit?gpu_ids=0&power_limit_mw=200000&block=true", 200, "")
	ctl.wantAnswer(t, "POST", "/gpu/set_persistence_mode?gpu_ids=1&enabled=true&block=false", 200, "")
	ctl.wantAnswer(t, "GET", "/gpu/get_power_limit", 200, `{"0":{"power_limit_mw":200000},"1":{"power_limit_mw":350000}}`)
	ctl.wantAnswer(t, "GET", "/gpu/get_persistence_mode?gpu_ids=1", 200, `{"1":{"enabled":true}}`)
	// Outside the constraints: NVML's invalid argument, reported only when
	// the caller waits for the result.
	ctl.wantAnswer(t, "POST", "/gpu/set_power_limit?gpu_ids=0,1&power_limit_mw=50000&block=true", 400,
		`{"errors":{"0":"NVML error: a supplied argument was invalid","1":"NVML error: a supplied argument was invalid"}}`)
	ctl.wantAnswer(t, "POST", "/gpu/set_power_limit?gpu_ids=1&power_limit_mw=50000&block=false", 200, "")
	ctl.wantAnswer(t, "GET", "/gpu/get_power_limit?gpu_ids=1", 200, `{"1":{"power_limit_mw":350000}}`)
	ctl.wantAnswer(t, "POST", "/gpu/set_power_limit?gpu_ids=9&power_limit_mw=200000&block=true", 400, "GPU index 9 does not exist.")
	ctl.wantAnswer(t, "POST", "/gpu/set_power_limit?gpu_ids=0&power_limit_mw=200000", 400, "Query deserialize error: missing field `block`")
	ctl.wantAnswer(t, "POST", "/gpu/set_gpu_locked_clocks?gpu_ids=0&min_clock_mhz=900&max_clock_mhz=1400&block=true", 200, "")
	ctl.wantAnswer(t, "POST", "/gpu/reset_locked_clocks?gpu_ids=0&block=true", 200, "")
	ctl.wantAnswer(t, "GET", "/gpu/set_power_limit?gpu_ids=0&power_limit_mw=200000&block=true", 404, "")
}

// TestServer_APIGroups: a group that is not enabled is 404 on every path
// it owns, and /discover lists only the devices of the enabled kinds.
func TestServer_APIGroups(t *testing.T) {
	for _, tc := range []struct {
		groups   []string
		discover string
		gpu, cpu int // status of get_power
	}{
		{[]string{"cpu-read"}, `{"gpus":[],"cpus":[{"id":0,"dram_available":true}],"enabled_api_groups":["cpu-read"],"auth_required":false}`, 404, 200},
		{[]string{"gpu-control"}, `{"gpus":[{"id":0,"name":"Simulated GPU","pci_address":"0000:01:00.0","cumulative_energy_available":true}],"cpus":[],"enabled_api_groups":["gpu-control"],"auth_required":false}`, 404, 404},
		{[]string{"gpu-read", "cpu-read"}, `{"gpus":[{"id":0,"name":"Simulated GPU","pci_address":"0000:01:00.0","cumulative_energy_available":true}],"cpus":[{"id":0,"dram_available":true}],"enabled_api_groups":["gpu-read","cpu-read"],"auth_required":false}`, 200, 200},
	} {
		t.Run(strings.Join(tc.groups, ","), func(t *testing.T) {
			cfg := fastConfig()
			cfg.GPUs, cfg.CPUs, cfg.APIGroups = 1, 1, tc.groups
			ts := MustServe(t, cfg, "tcp")
			ts.wantAnswer(t, "GET", "/discover", 200, tc.discover)
			for _, p := range []struct {
				path string
				code int
			}{{"/gpu/get_power", tc.gpu}, {"/gpu/get_power_limit", tc.gpu}, {"/gpu/nope", tc.gpu}, {"/cpu/get_power", tc.cpu}} {
				if p.path == "/gpu/nope" && p.code == 200 {
					p.code = 404 // the group is on, the route does not exist
				}
				if code, _, b := ts.get(t, p.path, ""); code != p.code {
					t.Errorf("%s: status %d: %s, want %d", p.path, code, b, p.code)
				}
			}
			ts.wantAnswer(t, "GET", "/nope", 404, "")
		})
	}
}

// TestServer_Release050: zeusd 0.5.0's /discover has no pci_address and
// no cumulative_energy_available, and it lacks reset_locked_clocks; the
// rest is as on main.
func TestServer_Release050(t *testing.T) {
	cfg := fastConfig()
	cfg.Release = simulator.Release050
	cfg.CumulativeEnergy = []bool{true, false}
	cfg.APIGroups = []string{"gpu-read", "cpu-read", "gpu-control"}
	ts := MustServe(t, cfg, "tcp")
	ts.wantAnswer(t, "GET", "/discover", 200,
		`{"gpus":[{"id":0,"name":"Simulated GPU"},{"id":1,"name":"Simulated GPU"}],"cpus":[{"id":0,"dram_available":true},{"id":1,"dram_available":true}],"enabled_api_groups":["gpu-read","cpu-read","gpu-control"],"auth_required":false}`)
	ts.wantAnswer(t, "POST", "/gpu/reset_locked_clocks?gpu_ids=0&block=true", 404, "")
	ts.wantAnswer(t, "POST", "/gpu/reset_gpu_locked_clocks?gpu_ids=0&block=true", 200, "")
	ts.wantAnswer(t, "GET", "/gpu/get_power_limit?gpu_ids=0", 200, `{"0":{"power_limit_mw":350000}}`)
	ts.wantAnswer(t, "GET", "/gpu/get_cumulative_energy?gpu_ids=1", 400,
		`{"errors":{"1":"NVML error: the requested operation is not available on the target device"}}`)
}
