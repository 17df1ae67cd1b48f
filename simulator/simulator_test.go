package simulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/wattrec/wattrec/simulator"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 5 * time.Second

// fastConfig returns a small node polled at 200 Hz.
func fastConfig() simulator.Config {
	cfg := simulator.DefaultConfig()
	cfg.GPUs, cfg.CPUs = 2, 2
	cfg.GPUPollHz, cfg.CPUPollHz = 200, 200
	cfg.Seed = 42
	return cfg
}

// testServer is a simulator serving on a real listener.
type testServer struct {
	*simulator.Server
	client *http.Client
	base   string // URL prefix
	cancel context.CancelFunc
	done   chan error // Serve's result
}

// MustServe starts a simulator for cfg on a loopback TCP port (network
// "tcp") or a Unix socket in a temp dir ("unix"). On cleanup it stops the
// server and checks that Serve returned nil in time.
func MustServe(tb testing.TB, cfg simulator.Config, network string) *testServer {
	tb.Helper()
	switch network {
	case "tcp":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		return MustServeOn(tb, cfg, ln)
	case "unix":
		ln, err := net.Listen("unix", filepath.Join(tb.TempDir(), "z.sock"))
		if err != nil {
			tb.Fatal(err)
		}
		return MustServeOn(tb, cfg, ln)
	}
	tb.Fatalf("unknown network %q", network)
	return nil
}

// MustServeOn starts a simulator for cfg on ln, a TCP or Unix listener,
// as MustServe does.
func MustServeOn(tb testing.TB, cfg simulator.Config, ln net.Listener) *testServer {
	tb.Helper()
	s, err := simulator.New(cfg)
	if err != nil {
		ln.Close()
		tb.Fatal(err)
	}
	ts := &testServer{Server: s, done: make(chan error, 1)}
	tr := &http.Transport{}
	ts.base = "http://" + ln.Addr().String()
	if ln.Addr().Network() == "unix" {
		path := ln.Addr().String()
		ts.base = "http://localhost"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}
	}
	ts.start(ln)
	ts.client = &http.Client{Transport: tr}
	tb.Cleanup(func() {
		if err := ts.stop(); err != nil {
			tb.Error(err)
		}
		tr.CloseIdleConnections()
	})
	return ts
}

func (ts *testServer) start(ln net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	go func() { ts.done <- ts.Serve(ctx, ln) }()
}

// stop cancels Serve and waits for it; it is idempotent.
func (ts *testServer) stop() error {
	ts.cancel()
	select {
	case err, ok := <-ts.done:
		if ok {
			close(ts.done)
		}
		if err != nil {
			return fmt.Errorf("serve returned %w", err)
		}
		return nil
	case <-time.After(waitTimeout):
		return errors.New("serve did not return after cancel")
	}
}

// get does a GET with an optional bearer token and returns the status,
// the headers and the body.
func (ts *testServer) get(tb testing.TB, path, token string) (int, http.Header, []byte) {
	tb.Helper()
	auth := ""
	if token != "" {
		auth = "Bearer " + token
	}
	return ts.do(tb, http.MethodGet, path, auth)
}

// do sends a request with an optional Authorization header and returns
// the status, the headers and the body.
func (ts *testServer) do(tb testing.TB, method, path, auth string) (int, http.Header, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, ts.base+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// getJSON does a GET that must answer 200 and decodes the body strictly.
func (ts *testServer) getJSON(tb testing.TB, path, token string, v any) {
	tb.Helper()
	code, _, b := ts.get(tb, path, token)
	if code != http.StatusOK {
		tb.Fatalf("GET %s: status %d: %s", path, code, b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("GET %s: decode %s: %v", path, b, err)
	}
}

// stream is an open SSE stream read by a goroutine.
type stream struct {
	events chan string // payloads; closed when the stream ends
	err    chan error  // the read's result, sent before events is closed
}

// openStream opens an SSE stream, checks its headers and reads it with
// go-sse. On cleanup it closes the body and waits for the reader.
func (ts *testServer) openStream(tb testing.TB, path, token string) *stream {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.base+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tb.Fatalf("GET %s: status %d: %s", path, resp.StatusCode, b)
	}
	if got, want := resp.Header.Get("Content-Type"), "text/event-stream"; got != want {
		tb.Errorf("Content-Type=%q, want %q", got, want)
	}
	if got, want := resp.Header.Get("Cache-Control"), "no-cache"; got != want {
		tb.Errorf("Cache-Control=%q, want %q", got, want)
	}
	return readStream(tb, resp.Body, 1<<16)
}

// readStream reads the SSE stream body with go-sse into a stream with
// room for buffer events. With buffer 0 it reads an event only when the
// test takes the previous one, as a client that stops reading; otherwise
// a full buffer is an error. On cleanup it closes the body and waits for
// the reader.
func readStream(tb testing.TB, body io.ReadCloser, buffer int) *stream {
	st := &stream{events: make(chan string, buffer), err: make(chan error, 1)}
	go func() {
		defer close(st.events)
		var rerr error
		for ev, err := range sse.Read(body, nil) {
			if err != nil {
				rerr = err
				break
			}
			if buffer == 0 {
				st.events <- ev.Data
				continue
			}
			select {
			case st.events <- ev.Data:
			default:
				rerr = errors.New("test buffer full")
			}
			if rerr != nil {
				break
			}
		}
		st.err <- rerr
	}()
	tb.Cleanup(func() {
		body.Close()
		for range st.events { // wait for the reader to exit
		}
	})
	return st
}

// next returns the next payload, failing if the stream ends or stalls.
func (st *stream) next(tb testing.TB) string {
	tb.Helper()
	select {
	case data, ok := <-st.events:
		if !ok {
			tb.Fatalf("stream ended: %v", <-st.err)
		}
		return data
	case <-time.After(waitTimeout):
		tb.Fatal("no event in time")
	}
	return ""
}

// end waits for the stream to end and returns the reader's error.
func (st *stream) end(tb testing.TB) error {
	tb.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-st.events:
			if !ok {
				return <-st.err
			}
		case <-timeout:
			tb.Fatal("stream did not end")
		}
	}
}

// decodeStrict decodes one JSON payload, rejecting unknown fields.
func decodeStrict(tb testing.TB, data string, v any) {
	tb.Helper()
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("decode %s: %v", data, err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitTimeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			tb.Fatalf("timed out waiting for %s", what)
		}
	}
}

type gpuSample struct {
	TimestampMS *int64 `json:"timestamp_ms"`
	GPUID       *int   `json:"gpu_id"`
	PowerMW     *int64 `json:"power_mw"`
}

type cpuSample struct {
	TimestampMS *int64          `json:"timestamp_ms"`
	CPUID       *int            `json:"cpu_id"`
	CPUMW       *int64          `json:"cpu_mw"`
	DRAMMW      json.RawMessage `json:"dram_mw"` // must be present, maybe null
}

type cpuValue struct {
	CPUMW  *int64          `json:"cpu_mw"`
	DRAMMW json.RawMessage `json:"dram_mw"`
}

func decodeGPUSample(tb testing.TB, data string) (ts int64, id int, mw int64) {
	tb.Helper()
	var s gpuSample
	decodeStrict(tb, data, &s)
	if s.TimestampMS == nil || s.GPUID == nil || s.PowerMW == nil {
		tb.Fatalf("incomplete GPU sample %s", data)
	}
	return *s.TimestampMS, *s.GPUID, *s.PowerMW
}

// checkDRAM checks a dram_mw field: null without DRAM, 3-20 W with.
func checkDRAM(tb testing.TB, raw json.RawMessage, has bool, data string) {
	tb.Helper()
	if raw == nil {
		tb.Fatalf("dram_mw missing in %s", data)
	}
	if !has {
		if string(raw) != "null" {
			tb.Fatalf("dram_mw=%s, want null in %s", raw, data)
		}
		return
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || v < 3000 || v > 20000 {
		tb.Fatalf("dram_mw=%s, want 3000..20000 in %s", raw, data)
	}
}

func TestServer_Discover(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			cfg := fastConfig()
			cfg.DRAM = []bool{true, false}
			cfg.CumulativeEnergy = []bool{true, false}
			ts := MustServe(t, cfg, network)
			type gpu struct {
				ID                        int    `json:"id"`
				Name                      string `json:"name"`
				PCIAddress                string `json:"pci_address"`
				CumulativeEnergyAvailable bool   `json:"cumulative_energy_available"`
			}
			type cpu struct {
				ID            int  `json:"id"`
				DRAMAvailable bool `json:"dram_available"`
			}
			type discover struct {
				GPUs             []gpu    `json:"gpus"`
				CPUs             []cpu    `json:"cpus"`
				EnabledAPIGroups []string `json:"enabled_api_groups"`
				AuthRequired     *bool    `json:"auth_required"`
			}
			var got discover
			ts.getJSON(t, "/discover", "", &got)
			no := false
			want := discover{
				GPUs: []gpu{{0, "Simulated GPU", "0000:01:00.0", true}, {1, "Simulated GPU", "0000:02:00.0", false}},
				CPUs: []cpu{{0, true}, {1, false}}, EnabledAPIGroups: []string{"gpu-read", "cpu-read"}, AuthRequired: &no,
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v, want %+v", got, want)
			}
			if code, _, b := ts.get(t, "/auth/whoami", ""); code != http.StatusNotFound {
				t.Fatalf("whoami with auth off: status %d: %s", code, b)
			}
		})
	}
}

func TestServer_Time(t *testing.T) {
	cfg := fastConfig()
	cfg.ClockOffset = -90 * time.Second
	ts := MustServe(t, cfg, "tcp")
	var got struct {
		TimestampMS int64 `json:"timestamp_ms"`
	}
	before := time.Now().Add(cfg.ClockOffset).UnixMilli()
	ts.getJSON(t, "/time", "", &got)
	after := time.Now().Add(cfg.ClockOffset).UnixMilli()
	if got.TimestampMS < before || got.TimestampMS > after {
		t.Fatalf("timestamp_ms=%d, want within [%d, %d]", got.TimestampMS, before, after)
	}
}

func TestServer_Auth(t *testing.T) {
	secret := []byte("test-secret")
	cfg := fastConfig()
	cfg.AuthSecret = secret
	cfg.APIGroups = []string{"gpu-read"}
	ts := MustServe(t, cfg, "unix")
	mint := func(secret []byte, scopes []string, exp time.Time) string { return mustMint(t, secret, scopes, exp) }
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	gpuTok := mint(secret, []string{"gpu-read"}, exp)
	cpuTok := mint(secret, []string{"cpu-read"}, time.Time{})

	t.Run("PublicDiscover", func(t *testing.T) {
		var d struct {
			AuthRequired bool `json:"auth_required"`
		}
		code, _, b := ts.get(t, "/discover", "")
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		if err := json.Unmarshal(b, &d); err != nil || !d.AuthRequired {
			t.Fatalf("auth_required not true in %s (%v)", b, err)
		}
		if code, _, _ := ts.get(t, "/time", ""); code != http.StatusOK {
			t.Fatalf("/time status %d", code)
		}
	})
	t.Run("Whoami", func(t *testing.T) {
		var got struct {
			Sub    string   `json:"sub"`
			Scopes []string `json:"scopes"`
			Exp    *int64   `json:"exp"`
		}
		ts.getJSON(t, "/auth/whoami", gpuTok, &got)
		if got.Sub != "alice" || !slices.Equal(got.Scopes, []string{"gpu-read"}) || got.Exp == nil || *got.Exp != exp.Unix() {
			t.Fatalf("whoami=%+v", got)
		}
		_, _, b := ts.get(t, "/auth/whoami", cpuTok)
		if bytes.Contains(b, []byte(`"exp"`)) {
			t.Fatalf("exp present for a token that never expires: %s", b)
		}
	})
	unauthorized := map[string]string{
		"NoToken":     "",
		"Garbage":     "not-a-jwt",
		"WrongSecret": mint([]byte("other"), []string{"gpu-read"}, time.Time{}),
		"Expired":     mint(secret, []string{"gpu-read"}, time.Now().Add(-2*time.Minute)), // past the 60 s leeway
	}
	for name, tok := range unauthorized {
		t.Run("401/"+name, func(t *testing.T) {
			for _, path := range []string{"/auth/whoami", "/gpu/get_power", "/gpu/stream_power"} {
				code, h, b := ts.get(t, path, tok)
				if code != http.StatusUnauthorized {
					t.Fatalf("%s: status %d, want 401: %s", path, code, b)
				}
				if got, want := h.Get("WWW-Authenticate"), `Bearer realm="zeusd"`; got != want {
					t.Fatalf("%s: WWW-Authenticate=%q, want %q", path, got, want)
				}
			}
		})
	}
	t.Run("403", func(t *testing.T) {
		if code, _, b := ts.get(t, "/gpu/get_power", cpuTok); code != http.StatusForbidden {
			t.Fatalf("status %d, want 403: %s", code, b)
		}
		if code, _, b := ts.get(t, "/gpu/get_power", gpuTok); code != http.StatusOK {
			t.Fatalf("with scope: status %d: %s", code, b)
		}
	})
	t.Run("404GroupDisabled", func(t *testing.T) {
		for _, tok := range []string{"", cpuTok} {
			code, _, b := ts.get(t, "/cpu/get_power", tok)
			if code != http.StatusNotFound {
				t.Fatalf("status %d, want 404", code)
			}
			if got, want := strings.TrimSpace(string(b)), `{"error":"API group 'cpu-read' is not enabled on this server."}`; got != want {
				t.Fatalf("body %s, want %s", got, want)
			}
		}
	})
}

// TestServer_BadRequest: zeusd's 400s. Bad or unknown ids are JSON
// {"error":...}, worded per route kind; query strings that zeusd's serde
// structs refuse are text/plain.
func TestServer_BadRequest(t *testing.T) {
	cfg := fastConfig()
	ts := MustServe(t, cfg, "tcp")
	// text: a text/plain body "Query deserialize error: " + want;
	// otherwise {"error":want}.
	tests := []struct {
		path, want string
		text       bool
	}{
		{"/gpu/get_power?gpu_ids=7", "GPU 7 not found", false},
		{"/gpu/get_power?gpu_ids=1,9,8", "GPU 8 not found", false},
		{"/gpu/stream_power?gpu_ids=0,9,9,8", "Unknown GPU indices: [8, 9]. Available: [0, 1]", false},
		{"/cpu/stream_power?cpu_ids=5", "Unknown CPU indices: [5]. Available: [0, 1]", false},
		{"/cpu/get_power?cpu_ids=2", "CPU 2 not found", false},
		{"/gpu/get_power?gpu_ids=", "gpu_ids must contain at least one GPU index", false},
		{"/gpu/get_power?gpu_ids=%20", "gpu_ids must contain at least one GPU index", false},
		{"/gpu/get_power?gpu_ids=a", "Invalid GPU index: a", false},
		{"/gpu/get_power?gpu_ids=-1", "Invalid GPU index: -1", false},
		{"/gpu/get_power?gpu_ids=0,,1", "gpu_ids contains an empty GPU index", false},
		{"/gpu/get_power?gpu_ids=%zz", "Invalid GPU index: %zz", false},
		{"/gpu/get_cumulative_energy?gpu_ids=2", "GPU 2 not found", false},
		{"/gpu/get_power_limit?gpu_ids=5", "GPU 5 not found", false},
		{"/cpu/get_cumulative_energy?cpu=true&dram=true&cpu_ids=3", "CPU 3 not found", false},
		{"/gpu/get_power?foo=1", "unknown field `foo`, expected `gpu_ids`", true},
		{"/gpu/get_power?cpu_ids=0", "unknown field `cpu_ids`, expected `gpu_ids`", true},
		{"/gpu/stream_power?gpu_ids=0&gpu_ids=1", "duplicate field `gpu_ids`", true},
		{"/gpu/stream_power?bar", "unknown field `bar`, expected `gpu_ids`", true},
		{"/cpu/stream_power?gpu_ids=0", "unknown field `gpu_ids`, expected `cpu_ids`", true},
		{"/cpu/get_cumulative_energy?cpu=true", "missing field `dram`", true},
		{"/cpu/get_cumulative_energy", "missing field `cpu`", true},
		{"/cpu/get_cumulative_energy?cpu=yes&dram=true", "provided string was not `true` or `false`", true},
		{"/cpu/get_cumulative_energy?cpu=true&dram=true&gpu_ids=0", "unknown field `gpu_ids`, expected one of `cpu_ids`, `cpu`, `dram`", true},
	}
	for _, tt := range tests {
		code, h, b := ts.get(t, tt.path, "")
		var e struct {
			Error string `json:"error"`
		}
		switch {
		case tt.text:
			want := "Query deserialize error: " + tt.want
			if code != http.StatusBadRequest || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || string(b) != want {
				t.Errorf("%s: status %d, %s: %q; want 400 text/plain %q", tt.path, code, h.Get("Content-Type"), b, want)
			}
		case code != http.StatusBadRequest || h.Get("Content-Type") != "application/json" || json.Unmarshal(b, &e) != nil:
			t.Errorf("%s: status %d, %s: %s; want 400 {\"error\":...}", tt.path, code, h.Get("Content-Type"), b)
		case e.Error != tt.want:
			t.Errorf("%s: error %q, want %q", tt.path, e.Error, tt.want)
		}
	}
	// A '+' sign and spaces around ids are fine, as Rust parses them.
	if code, _, b := ts.get(t, "/gpu/get_power?gpu_ids=%2B1,%200", ""); code != http.StatusOK {
		t.Errorf("gpu_ids=+1, 0: status %d: %s", code, b)
	}
	if got, want := fmt.Sprint(ts.Subscribers()), "0 0"; got != want {
		t.Errorf("subscribers after rejected streams: %s, want %s", got, want)
	}
}

func TestServer_StreamSample(t *testing.T) {
	cfg := fastConfig()
	cfg.GPUs = 3
	cfg.DRAM = []bool{true, false}
	ts := MustServe(t, cfg, "tcp")

	t.Run("GPU", func(t *testing.T) {
		st := ts.openStream(t, "/gpu/stream_power", "")
		last := map[int]int64{}
		lastTS := map[int]int64{}
		for range 300 {
			data := st.next(t)
			tsMS, id, mw := decodeGPUSample(t, data)
			if id < 0 || id >= cfg.GPUs || mw < 59_000 || mw > 301_000 || tsMS%5 != 0 {
				t.Fatalf("implausible event %s", data)
			}
			if prev, ok := last[id]; ok && prev == mw {
				t.Fatalf("gpu %d repeated %d mW: %s", id, mw, data)
			}
			if prev, ok := lastTS[id]; ok && tsMS <= prev {
				t.Fatalf("gpu %d timestamps not increasing: %d after %d", id, tsMS, prev)
			}
			last[id], lastTS[id] = mw, tsMS
		}
		if len(last) != cfg.GPUs {
			t.Fatalf("saw gpus %v, want all %d", last, cfg.GPUs)
		}
	})
	t.Run("GPUFiltered", func(t *testing.T) {
		st := ts.openStream(t, "/gpu/stream_power?gpu_ids=1", "")
		for range 20 {
			if _, id, _ := decodeGPUSample(t, st.next(t)); id != 1 {
				t.Fatalf("got gpu %d on a gpu_ids=1 stream", id)
			}
		}
	})
	t.Run("CPU", func(t *testing.T) {
		st := ts.openStream(t, "/cpu/stream_power", "")
		seen := map[int]bool{}
		for range 100 {
			data := st.next(t)
			var s cpuSample
			decodeStrict(t, data, &s)
			if s.TimestampMS == nil || s.CPUID == nil || s.CPUMW == nil {
				t.Fatalf("incomplete CPU sample %s", data)
			}
			if *s.CPUMW < 20_000 || *s.CPUMW > 150_000 {
				t.Fatalf("cpu_mw out of range in %s", data)
			}
			checkDRAM(t, s.DRAMMW, cfg.DRAM[*s.CPUID], data)
			seen[*s.CPUID] = true
		}
		if len(seen) != cfg.CPUs {
			t.Fatalf("saw cpus %v", seen)
		}
	})
	t.Run("CPUFiltered", func(t *testing.T) {
		st := ts.openStream(t, "/cpu/stream_power?cpu_ids=1", "")
		for range 10 {
			var s cpuSample
			data := st.next(t)
			decodeStrict(t, data, &s)
			if s.CPUID == nil || *s.CPUID != 1 {
				t.Fatalf("want only cpu 1, got %s", data)
			}
		}
	})
}

// TestServer_StreamSnapshot: as the older daemons did, each event holds
// every device the stream asked for, changed or not, and comes when any
// device changed.
func TestServer_StreamSnapshot(t *testing.T) {
	cfg := fastConfig()
	cfg.GPUs = 3
	cfg.Format = simulator.FormatSnapshot
	cfg.DRAM = []bool{false, true}
	ts := MustServe(t, cfg, "unix")

	type gpuSnapshot struct {
		TimestampMS *int64           `json:"timestamp_ms"`
		PowerMW     map[string]int64 `json:"power_mw"`
	}
	read := func(t *testing.T, st *stream, prevTS *int64) gpuSnapshot {
		t.Helper()
		data := st.next(t)
		var ev gpuSnapshot
		decodeStrict(t, data, &ev)
		if ev.TimestampMS == nil || *ev.TimestampMS <= *prevTS {
			t.Fatalf("bad snapshot %s after ts %d", data, *prevTS)
		}
		*prevTS = *ev.TimestampMS
		return ev
	}
	t.Run("GPU", func(t *testing.T) {
		st := ts.openStream(t, "/gpu/stream_power", "")
		var prev map[string]int64
		prevTS := int64(-1)
		for range 100 {
			ev := read(t, st, &prevTS)
			if len(ev.PowerMW) != cfg.GPUs {
				t.Fatalf("snapshot holds %v, want all %d GPUs", ev.PowerMW, cfg.GPUs)
			}
			if reflect.DeepEqual(ev.PowerMW, prev) {
				t.Fatalf("snapshot %v sent though no GPU changed", ev.PowerMW)
			}
			prev = ev.PowerMW
		}
	})
	t.Run("GPUFiltered", func(t *testing.T) {
		st := ts.openStream(t, "/gpu/stream_power?gpu_ids=0,2", "")
		var prev map[string]int64
		prevTS := int64(-1)
		repeats := 0
		for range 200 {
			ev := read(t, st, &prevTS)
			if _, ok := ev.PowerMW["1"]; ok || len(ev.PowerMW) != 2 {
				t.Fatalf("snapshot holds %v, want GPUs 0 and 2", ev.PowerMW)
			}
			// GPU 1 changing alone still sends GPUs 0 and 2.
			if reflect.DeepEqual(ev.PowerMW, prev) {
				repeats++
			}
			prev = ev.PowerMW
		}
		if repeats == 0 {
			t.Error("no snapshot repeated GPUs 0 and 2: events come only when they change")
		}
	})
	t.Run("CPU", func(t *testing.T) {
		st := ts.openStream(t, "/cpu/stream_power", "")
		for range 30 {
			data := st.next(t)
			var ev struct {
				TimestampMS *int64              `json:"timestamp_ms"`
				PowerMW     map[string]cpuValue `json:"power_mw"`
			}
			decodeStrict(t, data, &ev)
			if ev.TimestampMS == nil || len(ev.PowerMW) != cfg.CPUs {
				t.Fatalf("bad snapshot %s", data)
			}
			for id, v := range ev.PowerMW {
				d, err := strconv.Atoi(id)
				if err != nil || d < 0 || d >= cfg.CPUs || v.CPUMW == nil {
					t.Fatalf("bad entry %q in %s", id, data)
				}
				checkDRAM(t, v.DRAMMW, cfg.DRAM[d], data)
			}
		}
	})
}

func TestServer_DropStreams(t *testing.T) {
	ts := MustServe(t, fastConfig(), "unix")
	g := ts.openStream(t, "/gpu/stream_power", "")
	c := ts.openStream(t, "/cpu/stream_power", "")
	g.next(t)
	c.next(t)
	if gpu, cpu := ts.Subscribers(); gpu != 1 || cpu != 1 {
		t.Fatalf("subscribers %d, %d; want 1, 1", gpu, cpu)
	}
	if got, want := ts.DropStreams(), 2; got != want {
		t.Fatalf("DropStreams()=%d, want %d", got, want)
	}
	for name, st := range map[string]*stream{"gpu": g, "cpu": c} {
		if err := st.end(t); err == nil {
			t.Errorf("%s stream ended cleanly, want a broken connection", name)
		}
	}
	if gpu, cpu := ts.Subscribers(); gpu != 0 || cpu != 0 {
		t.Fatalf("subscribers %d, %d after drop", gpu, cpu)
	}
	// A client can reconnect.
	ts.openStream(t, "/gpu/stream_power", "").next(t)

	// Shutting down ends live streams cleanly.
	last := ts.openStream(t, "/gpu/stream_power", "")
	last.next(t)
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	if err := last.end(t); err != nil {
		t.Fatalf("stream ended with %v on shutdown, want a clean end", err)
	}
}

// steps is a per-device step function of power, in mW from ms times.
type steps map[int][][2]int64 // device -> [start ms, mW], by start

// integral returns ∫ over [a, b) ms in mW·ms (= µJ). The step function
// must cover a.
func (s steps) integral(tb testing.TB, d int, a, b int64) int64 {
	tb.Helper()
	ps := s[d]
	if len(ps) == 0 || ps[0][0] > a {
		tb.Fatalf("device %d: trace does not cover %d", d, a)
	}
	var sum int64
	for i, p := range ps {
		end := int64(1 << 62)
		if i+1 < len(ps) {
			end = ps[i+1][0]
		}
		lo, hi := max(p[0], a), min(end, b)
		if hi > lo {
			sum += (hi - lo) * p[1]
		}
	}
	return sum
}

// TestServer_EnergyMatchesStream: the counters are the integral of what a
// stream that keeps up carries. A measurement during which the streams
// lost values (a loaded machine can stall the reader past a poll period:
// the stream coalesces, as zeusd's does) is repeated.
func TestServer_EnergyMatchesStream(t *testing.T) {
	cfg := fastConfig()
	cfg.ClockOffset = -3 * time.Second
	cfg.DRAM = []bool{true, false}
	var skipped atomic.Int64
	cfg.OnEvent = func(e simulator.Event) { skipped.Add(int64(e.Skipped)) }
	ts := MustServe(t, cfg, "tcp")
	const periodMS = 5
	daemonMS := func() int64 { return time.Now().Add(cfg.ClockOffset).UnixMilli() }

	gpu, cpu, dram := steps{}, steps{}, steps{}
	var gpuTS, cpuTS int64 // latest event timestamps
	g := ts.openStream(t, "/gpu/stream_power", "")
	c := ts.openStream(t, "/cpu/stream_power", "")
	// readUntil consumes events until both streams passed daemon time ms.
	readUntil := func(ms int64) {
		t.Helper()
		for gpuTS < ms || cpuTS < ms || len(gpu) < cfg.GPUs || len(cpu) < cfg.CPUs {
			select {
			case data := <-g.events:
				tsMS, id, mw := decodeGPUSample(t, data)
				gpu[id] = append(gpu[id], [2]int64{tsMS, mw})
				gpuTS = tsMS
			case data := <-c.events:
				var s cpuSample
				decodeStrict(t, data, &s)
				// A CPU value is the average over the previous period.
				cpu[*s.CPUID] = append(cpu[*s.CPUID], [2]int64{*s.TimestampMS - periodMS, *s.CPUMW})
				if cfg.DRAM[*s.CPUID] {
					v, _ := strconv.ParseInt(string(s.DRAMMW), 10, 64)
					dram[*s.CPUID] = append(dram[*s.CPUID], [2]int64{*s.TimestampMS - periodMS, v})
				}
				cpuTS = *s.TimestampMS
			case <-time.After(waitTimeout):
				t.Fatalf("streams stalled before %d", ms)
			}
		}
	}
	type energies struct {
		gpu map[string]struct {
			EnergyMJ int64 `json:"energy_mj"`
		}
		cpu map[string]struct {
			CPU  *int64 `json:"cpu_energy_uj"`
			DRAM *int64 `json:"dram_energy_uj"`
		}
		gpuAt, cpuAt [2]int64 // daemon ms bracket of each call
	}
	// call does a GET and returns the daemon ms bracket around it.
	call := func(path string, v any) [2]int64 {
		a := daemonMS()
		ts.getJSON(t, path, "", v)
		return [2]int64{a, daemonMS() + 1}
	}
	measure := func() (e energies) {
		e.gpuAt = call("/gpu/get_cumulative_energy?gpu_ids=0,1", &e.gpu)
		e.cpuAt = call("/cpu/get_cumulative_energy?cpu=true&dram=true", &e.cpu)
		return e
	}

	readUntil(0) // the first tick sends every device
	var e1, e2 energies
	for attempt := 1; ; attempt++ {
		before := skipped.Load()
		e1 = measure()
		readUntil(e1.cpuAt[1] + 500)
		e2 = measure()
		readUntil(e2.cpuAt[1] + 2*periodMS)
		if n := skipped.Load() - before; n == 0 {
			break
		} else if attempt == 5 {
			t.Fatalf("the streams lost values in each of %d measurements (%d in the last)", attempt, n)
		} else {
			t.Logf("measurement %d: the streams lost %d values; measuring again", attempt, n)
		}
	}

	// check compares a counter delta (in µJ) between calls at1 and at2
	// with the stream's integral, bracketed by the call times, allowing
	// slack µJ of rounding.
	check := func(name string, s steps, d int, at1, at2 [2]int64, delta, slack int64) {
		t.Helper()
		lo := s.integral(t, d, at1[1], at2[0]) - slack
		hi := s.integral(t, d, at1[0], at2[1]) + slack
		if delta < lo || delta > hi {
			t.Errorf("%s %d: counter delta %d µJ outside stream bracket [%d, %d]", name, d, delta, lo, hi)
		}
		if hi-lo > delta/4 {
			t.Errorf("%s %d: bracket [%d, %d] too wide to mean anything", name, d, lo, hi)
		}
	}
	for d := range cfg.GPUs {
		k := strconv.Itoa(d)
		check("gpu", gpu, d, e1.gpuAt, e2.gpuAt, (e2.gpu[k].EnergyMJ-e1.gpu[k].EnergyMJ)*1000, 1000)
	}
	// Each CPU average is rounded down to 1 mW (5 µJ a tick), each counter
	// reading to 1 µJ.
	slack := 6*(e2.cpuAt[1]-e1.cpuAt[0])/periodMS + 2
	for d := range cfg.CPUs {
		k := strconv.Itoa(d)
		check("cpu", cpu, d, e1.cpuAt, e2.cpuAt, *e2.cpu[k].CPU-*e1.cpu[k].CPU, slack)
		if cfg.DRAM[d] {
			check("dram", dram, d, e1.cpuAt, e2.cpuAt, *e2.cpu[k].DRAM-*e1.cpu[k].DRAM, slack)
		} else if e2.cpu[k].DRAM != nil {
			t.Errorf("cpu %d has no DRAM but dram_energy_uj=%d", d, *e2.cpu[k].DRAM)
		}
	}
}

func TestServer_Deterministic(t *testing.T) {
	frozen := time.Date(2026, 11, 27, 16, 0, 0, 123e6, time.UTC)
	power := func(seed int64) string {
		cfg := fastConfig()
		cfg.Seed = seed
		cfg.Now = func() time.Time { return frozen }
		ts := MustServe(t, cfg, "tcp")
		_, _, g := ts.get(t, "/gpu/get_power", "")
		_, _, c := ts.get(t, "/cpu/get_power", "")
		_, _, e := ts.get(t, "/gpu/get_cumulative_energy?gpu_ids=0,1", "")
		if got, want := strings.TrimSpace(string(e)), `{"0":{"energy_mj":0},"1":{"energy_mj":0}}`; got != want {
			t.Errorf("energy with a frozen clock %s, want %s", got, want)
		}
		return string(g) + string(c)
	}
	a, b, other := power(7), power(7), power(8)
	if a != b {
		t.Fatalf("same seed, different readings:\n%s\n%s", a, b)
	}
	if a == other {
		t.Fatalf("different seeds, same readings: %s", a)
	}
	want := fmt.Sprintf(`{"timestamp_ms":%d,"power_mw":{"0":`, frozen.UnixMilli()/5*5) // 200 Hz grid
	if !strings.HasPrefix(a, want) {
		t.Fatalf("get_power %s, want prefix %s", a, want)
	}
}

func TestServer_OnEvent(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	cfg := fastConfig()
	cfg.OnEvent = func(e simulator.Event) {
		mu.Lock()
		defer mu.Unlock()
		got[e.Stream]++
	}
	ts := MustServe(t, cfg, "tcp")
	g := ts.openStream(t, "/gpu/stream_power", "")
	c := ts.openStream(t, "/cpu/stream_power", "")
	for range 5 {
		g.next(t)
		c.next(t)
	}
	// OnEvent runs after the flush, so the client may see an event first.
	waitFor(t, "OnEvent calls", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got["gpu"] >= 5 && got["cpu"] >= 5
	})
}

func TestNew_Invalid(t *testing.T) {
	base := simulator.DefaultConfig()
	tests := map[string]func(*simulator.Config){
		"NegativeGPUs":  func(c *simulator.Config) { c.GPUs = -1 },
		"DRAMLength":    func(c *simulator.Config) { c.DRAM = []bool{true} },
		"CumulativeLen": func(c *simulator.Config) { c.CumulativeEnergy = []bool{true} },
		"ZeroGPUHz":     func(c *simulator.Config) { c.GPUPollHz = 0 },
		"FastCPUHz":     func(c *simulator.Config) { c.CPUPollHz = 5000 },
		"Format":        func(c *simulator.Config) { c.Format = "" },
		"EmptySecret":   func(c *simulator.Config) { c.AuthSecret = []byte{} },
		"UnknownGroup":  func(c *simulator.Config) { c.APIGroups = []string{"gpu-write"} },
		"Release":       func(c *simulator.Config) { c.Release = "0.4.0" },
	}
	names := make([]string, 0, len(tests))
	for name := range tests {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		cfg := base
		tests[name](&cfg)
		if _, err := simulator.New(cfg); err == nil {
			t.Errorf("%s: New accepted an invalid config", name)
		}
	}
	if _, err := simulator.New(simulator.Config{Format: simulator.FormatSample}); err != nil {
		t.Errorf("a node without devices: %v", err)
	}
	if _, err := simulator.MintToken(nil, "a", nil, time.Time{}); err == nil {
		t.Error("MintToken accepted an empty secret")
	}
}

func TestServer_ServeOnce(t *testing.T) {
	ts := MustServe(t, fastConfig(), "tcp")
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Serve(context.Background(), ln); !errors.Is(err, simulator.ErrClosed) {
		t.Fatalf("second Serve: %v, want ErrClosed", err)
	}
}

func Example() {
	s, err := simulator.New(simulator.Config{GPUs: 1, CPUs: 1, GPUPollHz: 20, CPUPollHz: 10, Format: simulator.FormatSample})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + ln.Addr().String() + "/discover")
	if err != nil {
		panic(err)
	}
	io.Copy(os.Stdout, resp.Body)
	resp.Body.Close()

	cancel()
	if err := <-done; err != nil {
		panic(err)
	}
	// Output:
	// {"gpus":[{"id":0,"name":"Simulated GPU","pci_address":"0000:01:00.0","cumulative_energy_available":true}],"cpus":[{"id":0,"dram_available":true}],"enabled_api_groups":["gpu-read","cpu-read"],"auth_required":false}
}
