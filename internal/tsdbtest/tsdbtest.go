// Package tsdbtest runs real time-series databases for tests:
// VictoriaMetrics and Prometheus (the Debian packages victoria-metrics
// and prometheus), each on 127.0.0.1 with a port of its own and its data
// in a test's temporary directory, started and stopped by PID. A test
// that needs one is skipped when its binary is missing, unless
// WATTREC_REQUIRE_TSDB=1 (CI sets it), which makes it fail instead.
package tsdbtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/wattrec/wattrec/internal/simtest"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 60 * time.Second

// Server is a VictoriaMetrics or Prometheus process.
type Server struct {
	Name     string // "victoria-metrics" or "prometheus"
	URL      string // http://127.0.0.1:port
	WriteURL string // its remote-write endpoint
	DataDir  string // where it keeps its data

	bin   string
	args  []string
	ready string // the path that answers 200 once it serves

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  simtest.SyncBuffer
}

// binary finds name or skips (fails with WATTREC_REQUIRE_TSDB=1).
func binary(tb testing.TB, name, pkg string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("WATTREC_REQUIRE_TSDB") == "1" {
		tb.Fatalf("%s is required (WATTREC_REQUIRE_TSDB=1) but not installed: apt-get install %s", name, pkg)
	}
	tb.Skipf("%s is not installed (apt-get install %s; WATTREC_REQUIRE_TSDB=1 makes this a failure)", name, pkg)
	return ""
}

// FreePort returns a loopback port nobody listens on now.
func FreePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// VictoriaMetrics starts a single-node VictoriaMetrics that keeps
// everything (retention 100 years) and shows samples at once (no search
// latency offset, no cache), with flags added to its command line. It is
// stopped when the test ends.
func VictoriaMetrics(tb testing.TB, flags ...string) *Server {
	tb.Helper()
	bin := binary(tb, "victoria-metrics", "victoria-metrics")
	addr := FreePort(tb)
	dir := filepath.Join(tb.TempDir(), "vm")
	s := &Server{Name: "victoria-metrics", URL: "http://" + addr, WriteURL: "http://" + addr + "/api/v1/write", DataDir: dir, bin: bin, ready: "/health",
		args: append([]string{"-httpListenAddr=" + addr, "-storageDataPath=" + dir,
			"-retentionPeriod=100y", "-search.latencyOffset=0s", "-search.disableCache", "-loggerLevel=WARN"}, flags...)}
	s.Start(tb)
	tb.Cleanup(func() { s.Stop(tb) })
	return s
}

// Prometheus starts a Prometheus with its remote-write receiver on,
// scraping targets (host:port of /metrics endpoints) every second.
// It is stopped when the test ends.
func Prometheus(tb testing.TB, targets ...string) *Server {
	tb.Helper()
	bin := binary(tb, "prometheus", "prometheus")
	dir := tb.TempDir()
	addr := FreePort(tb)
	cfg := "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
	if len(targets) > 0 {
		cfg += "  - job_name: wattrec\n    static_configs:\n      - targets: [" + strings.Join(quoted(targets), ", ") + "]\n"
	} else {
		cfg = "global:\n  scrape_interval: 1m\n"
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	s := &Server{Name: "prometheus", URL: "http://" + addr, WriteURL: "http://" + addr + "/api/v1/write", DataDir: data, bin: bin, ready: "/-/ready",
		args: []string{"--config.file=" + cfgPath, "--storage.tsdb.path=" + data,
			"--web.listen-address=" + addr, "--web.enable-remote-write-receiver", "--storage.tsdb.retention.time=100y", "--log.level=warn"}}
	s.Start(tb)
	tb.Cleanup(func() { s.Stop(tb) })
	return s
}

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// Start starts the server (again, on the same port and data) and waits
// until it is ready.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = &s.log, &s.log
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		tb.Fatalf("start %s: %v", s.Name, err)
	}
	done := make(chan struct{})
	go func() { // owned by Stop, which waits for done
		cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := http.Get(s.URL + s.ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			tb.Fatalf("%s exited at start:\n%s", s.Name, s.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not ready after %v:\n%s", s.Name, startTimeout, s.log.String())
		}
	}
}

// Stop stops the server by its PID (SIGTERM, then SIGKILL after 30 s)
// and waits for it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		tb.Errorf("%s did not stop within 30 s of SIGTERM", s.Name)
	}
}

// PID is the process ID of the running server, 0 when it is stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Log is what the server printed.
func (s *Server) Log() string { return s.log.String() }

// Flush makes what VictoriaMetrics took in searchable; Prometheus needs
// nothing.
func (s *Server) Flush(tb testing.TB) {
	tb.Helper()
	if s.Name != "victoria-metrics" {
		return
	}
	resp, err := http.Get(s.URL + "/internal/force_flush")
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
}

// mergeTimeout bounds how long ForceMerge waits.
const mergeTimeout = 5 * time.Minute

// ForceMerge flushes what VictoriaMetrics took in, merges its parts
// (/internal/force_merge, which merges in the background; it merges
// them as it sees fit, not necessarily into one) and waits for that
// merge to end; Prometheus needs nothing.
func (s *Server) ForceMerge(tb testing.TB) {
	tb.Helper()
	if s.Name != "victoria-metrics" {
		return
	}
	s.Flush(tb)
	m := s.metrics(tb)
	if m[`vm_parts{type="storage/small"}`]+m[`vm_parts{type="storage/big"}`] <= 1 {
		return // nothing to merge
	}
	merges := func(m map[string]float64) float64 {
		return m[`vm_merges_total{type="storage/small"}`] + m[`vm_merges_total{type="storage/big"}`]
	}
	before := merges(m)
	resp, err := http.Get(s.URL + "/internal/force_merge")
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s force_merge: %s", s.Name, resp.Status)
	}
	deadline := time.Now().Add(mergeTimeout)
	for {
		// The merge runs in a goroutine of its own: the server may look
		// idle before it begins, but not once a merge has been done.
		m := s.metrics(tb)
		busy := m["vm_active_force_merges"] + m[`vm_active_merges{type="storage/small"}`] + m[`vm_active_merges{type="storage/big"}`]
		if busy == 0 && merges(m) > before {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: no force merge done after %v:\n%s", s.Name, mergeTimeout, s.log.String())
		}
		<-time.After(50 * time.Millisecond)
	}
}

// metrics reads the server's own /metrics: series (name and labels as
// written) to value.
func (s *Server) metrics(tb testing.TB) map[string]float64 {
	tb.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s /metrics: %v", s.Name, err)
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// Sample is one element of an instant vector.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query evaluates expr at t with the Prometheus HTTP API (both servers
// speak it) and returns the instant vector.
func (s *Server) Query(tb testing.TB, expr string, t time.Time) []Sample {
	tb.Helper()
	q := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(t.UnixMilli())/1e3, 'f', 3, 64)}}
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	s.get(tb, "/api/v1/query?"+q.Encode(), &out)
	if out.Status != "success" {
		tb.Fatalf("%s: %s: %s", s.Name, expr, out.Error)
	}
	var vec []Sample
	for _, r := range out.Data.Result {
		str, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			tb.Fatalf("%s: %s: value %v", s.Name, expr, r.Value[1])
		}
		vec = append(vec, Sample{Metric: r.Metric, Value: v})
	}
	return vec
}

// Scalar is Query for an expression that yields one element; ok is
// false when it yields none.
func (s *Server) Scalar(tb testing.TB, expr string, t time.Time) (v float64, ok bool) {
	tb.Helper()
	vec := s.Query(tb, expr, t)
	switch len(vec) {
	case 0:
		return 0, false
	case 1:
		return vec[0].Value, true
	}
	tb.Fatalf("%s: %s: %d elements, want one", s.Name, expr, len(vec))
	return 0, false
}

// Series is one series' raw samples.
type Series struct {
	Metric     map[string]string
	Timestamps []int64 // ms
	Values     []float64
}

// Export returns the raw samples of the series that match selector in
// [from, to] (VictoriaMetrics' /api/v1/export; staleness markers come
// back as NaN).
func (s *Server) Export(tb testing.TB, selector string, from, to time.Time) []Series {
	tb.Helper()
	q := url.Values{"match[]": {selector}, "start": {strconv.FormatInt(from.Unix(), 10)}, "end": {strconv.FormatInt(to.Unix()+1, 10)}}
	resp, err := http.Get(s.URL + "/api/v1/export?" + q.Encode())
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s export: %s: %s", s.Name, resp.Status, body)
	}
	var out []Series
	dec := json.NewDecoder(bytes.NewReader(body))
	for dec.More() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Values     []any             `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := dec.Decode(&line); err != nil {
			tb.Fatalf("%s export: %v", s.Name, err)
		}
		sr := Series{Metric: line.Metric, Timestamps: line.Timestamps}
		for _, v := range line.Values {
			switch v := v.(type) {
			case float64:
				sr.Values = append(sr.Values, v)
			default: // "NaN" and friends come as strings
				f, _ := strconv.ParseFloat(fmt.Sprint(v), 64)
				sr.Values = append(sr.Values, f)
			}
		}
		out = append(out, sr)
	}
	return out
}

func (s *Server) get(tb testing.TB, path string, v any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s: %v", s.Name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, v); err != nil {
		tb.Fatalf("%s %s: %s: %v", s.Name, path, body, err)
	}
}
