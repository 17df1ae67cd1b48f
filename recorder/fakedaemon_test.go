package recorder_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/store"
)

// fakeDaemon is a zeusd of the test's own, over a real socket, for the
// faults the simulator does not make: a stream that goes silent while
// its connection stays open, a get_power that fails or shows values the
// stream never sent, a restart without a GPU. The test decides every
// event it sends; the daemon clock is the local one.
type fakeDaemon struct {
	tb  testing.TB
	ts  *httptest.Server
	srv recorder.Server

	mu          sync.Mutex
	gpus, cpus  []int             // what the daemon has now
	gpuMW       map[int]int64     // what get_power answers
	cpuMW       map[int][2]int64  // package and DRAM
	powerStatus int               // non-zero: get_power answers it
	subs        map[*fakeSub]bool // open streams
	sent        map[simtest.Value]int
	requests    map[string]int // per path, answered
	refusals    int            // stream requests answered 400
	subscribed  chan *fakeSub  // every new stream
	changed     chan struct{}  // closed and replaced on every request
}

// fakeSub is one open stream.
type fakeSub struct {
	kind string // "gpu" or "cpu"
	ids  []int
	at   time.Time // when it was accepted

	mu   sync.Mutex
	w    http.ResponseWriter
	mute bool          // stuck: it sends nothing
	done bool          // the handler returned
	end  chan struct{} // closed to drop the connection
}

func newFakeDaemon(tb testing.TB, gpus, cpus []int) *fakeDaemon {
	f := &fakeDaemon{tb: tb, gpus: gpus, cpus: cpus, gpuMW: map[int]int64{}, cpuMW: map[int][2]int64{},
		subs: map[*fakeSub]bool{}, sent: map[simtest.Value]int{}, requests: map[string]int{},
		subscribed: make(chan *fakeSub, 1000), changed: make(chan struct{})}
	for _, id := range gpus {
		f.gpuMW[id] = 100_000 + int64(id)*1000
	}
	for _, id := range cpus {
		f.cpuMW[id] = [2]int64{50_000, 5_000}
	}
	f.ts = httptest.NewServer(http.HandlerFunc(f.serve))
	f.srv = recorder.Server{Network: "tcp", Address: strings.TrimPrefix(f.ts.URL, "http://")}
	tb.Cleanup(func() {
		f.dropStreams()
		f.ts.Close()
	})
	return f
}

func (f *fakeDaemon) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests[r.URL.Path]++
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	switch r.URL.Path {
	case "/discover":
		f.discover(w)
	case "/time":
		fmt.Fprintf(w, `{"timestamp_ms":%d}`, time.Now().UnixMilli())
	case "/gpu/get_power", "/cpu/get_power":
		f.getPower(w, r)
	case "/gpu/get_cumulative_energy", "/cpu/get_cumulative_energy":
		f.energy(w, r)
	case "/gpu/stream_power", "/cpu/stream_power":
		f.stream(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeDaemon) discover(w http.ResponseWriter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	type gpu struct {
		ID         int  `json:"id"`
		Cumulative bool `json:"cumulative_energy_available"`
	}
	type cpu struct {
		ID   int  `json:"id"`
		DRAM bool `json:"dram_available"`
	}
	d := struct {
		GPUs   []gpu    `json:"gpus"`
		CPUs   []cpu    `json:"cpus"`
		Groups []string `json:"enabled_api_groups"`
		Auth   bool     `json:"auth_required"`
	}{GPUs: []gpu{}, CPUs: []cpu{}, Groups: []string{"gpu-read", "cpu-read"}}
	for _, id := range f.gpus {
		d.GPUs = append(d.GPUs, gpu{id, true})
	}
	for _, id := range f.cpus {
		d.CPUs = append(d.CPUs, cpu{id, true})
	}
	json.NewEncoder(w).Encode(d)
}

// ids parses the request's device list for kind against what the daemon
// has now, answering 400 as zeusd does for unknown ones.
func (f *fakeDaemon) ids(w http.ResponseWriter, r *http.Request, kind string) ([]int, bool) {
	have := f.gpus
	if kind == "cpu" {
		have = f.cpus
	}
	raw, ok := r.URL.Query()[kind+"_ids"]
	if !ok {
		return slices.Clone(have), true
	}
	var ids, unknown []int
	for p := range strings.SplitSeq(raw[0], ",") {
		id, _ := strconv.Atoi(p)
		if slices.Contains(have, id) {
			ids = append(ids, id)
		} else {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"Unknown %s indices: %s. Available: %s"}`, strings.ToUpper(kind), ints(unknown), ints(have))
		return nil, false
	}
	return ids, true
}

func ints(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func (f *fakeDaemon) getPower(w http.ResponseWriter, r *http.Request) {
	kind := r.URL.Path[1:4]
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.powerStatus != 0 {
		w.WriteHeader(f.powerStatus)
		fmt.Fprint(w, `{"error":"the daemon is hung"}`)
		return
	}
	ids, ok := f.ids(w, r, kind)
	if !ok {
		return
	}
	m := map[string]any{}
	for _, id := range ids {
		if kind == "gpu" {
			m[strconv.Itoa(id)] = f.gpuMW[id]
		} else {
			m[strconv.Itoa(id)] = map[string]int64{"cpu_mw": f.cpuMW[id][0], "dram_mw": f.cpuMW[id][1]}
		}
	}
	json.NewEncoder(w).Encode(map[string]any{"timestamp_ms": time.Now().UnixMilli(), "power_mw": m})
}

// energy answers get_cumulative_energy with counters that grow with
// time.
func (f *fakeDaemon) energy(w http.ResponseWriter, r *http.Request) {
	kind := r.URL.Path[1:4]
	f.mu.Lock()
	defer f.mu.Unlock()
	ids, ok := f.ids(w, r, kind)
	if !ok {
		return
	}
	e := time.Now().UnixMilli() * 100
	m := map[string]map[string]int64{}
	for _, id := range ids {
		if kind == "gpu" {
			m[strconv.Itoa(id)] = map[string]int64{"energy_mj": e}
		} else {
			m[strconv.Itoa(id)] = map[string]int64{"cpu_energy_uj": e * 1000, "dram_energy_uj": e * 100}
		}
	}
	json.NewEncoder(w).Encode(m)
}

func (f *fakeDaemon) stream(w http.ResponseWriter, r *http.Request) {
	kind := r.URL.Path[1:4]
	f.mu.Lock()
	ids, ok := f.ids(w, r, kind)
	if !ok {
		f.refusals++
		f.mu.Unlock()
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	sub := &fakeSub{kind: kind, ids: ids, at: time.Now(), w: w, end: make(chan struct{})}
	f.subs[sub] = true
	f.mu.Unlock()
	f.subscribed <- sub

	select {
	case <-r.Context().Done():
	case <-sub.end:
	}
	f.mu.Lock()
	delete(f.subs, sub)
	f.mu.Unlock()
	sub.mu.Lock()
	sub.done = true
	sub.mu.Unlock()
}

// nextStream waits for the next stream of kind that opens.
func (f *fakeDaemon) nextStream(kind string) *fakeSub {
	f.tb.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case s := <-f.subscribed:
			if s.kind == kind {
				return s
			}
		case <-deadline:
			f.tb.Fatalf("no %s stream opened in 30 s", kind)
		}
	}
}

// waitRequests waits until cond, checked under the lock after every
// request the daemon answers, holds.
func (f *fakeDaemon) waitRequests(cond func(f *fakeDaemon) bool) {
	f.tb.Helper()
	deadline := time.After(30 * time.Second)
	for {
		f.mu.Lock()
		ok, changed := cond(f), f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			f.tb.Fatal("daemon requests: condition not met in 30 s")
		}
	}
}

// sendGPU sets GPU id to mw and sends it on every open GPU stream that
// is not stuck and asked for it, at once: no get_power sees the value
// before it is on its way. It returns the event's time.
func (f *fakeDaemon) sendGPU(id int, mw int64) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gpuMW[id] = mw
	now := time.Now()
	ms := now.UnixMilli()
	f.send("gpu", id, fmt.Sprintf(`{"timestamp_ms":%d,"gpu_id":%d,"power_mw":%d}`, ms, id, mw),
		simtest.Value{Kind: store.KindGPU, Device: int32(id), DaemonMs: ms, MW: mw})
	return now
}

// sendCPU sets CPU package id to mw (and its DRAM to a tenth) and sends
// it likewise. It returns the event's time.
func (f *fakeDaemon) sendCPU(id int, mw int64) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cpuMW[id] = [2]int64{mw, mw / 10}
	now := time.Now()
	ms := now.UnixMilli()
	f.send("cpu", id, fmt.Sprintf(`{"timestamp_ms":%d,"cpu_id":%d,"cpu_mw":%d,"dram_mw":%d}`, ms, id, mw, mw/10),
		simtest.Value{Kind: store.KindCPU, Device: int32(id), DaemonMs: ms, MW: mw},
		simtest.Value{Kind: store.KindDRAM, Device: int32(id), DaemonMs: ms, MW: mw / 10})
	return now
}

// send writes data to every open stream of kind that is not stuck and
// asked for device id, and counts vals as sent for each. f.mu is held, so
// that get_power shows a new value and the stream carries it at once.
func (f *fakeDaemon) send(kind string, id int, data string, vals ...simtest.Value) {
	for s := range f.subs {
		if s.kind != kind || !slices.Contains(s.ids, id) {
			continue
		}
		s.mu.Lock()
		if !s.mute && !s.done {
			if _, err := fmt.Fprintf(s.w, "data: %s\n\n", data); err == nil {
				s.w.(http.Flusher).Flush()
				for _, v := range vals {
					f.sent[v]++
				}
			}
		}
		s.mu.Unlock()
	}
}

// setGPU changes what get_power shows for GPU id without sending it.
func (f *fakeDaemon) setGPU(id int, mw int64) {
	f.mu.Lock()
	f.gpuMW[id] = mw
	f.mu.Unlock()
}

// setPowerStatus makes get_power answer status (0: normally).
func (f *fakeDaemon) setPowerStatus(status int) {
	f.mu.Lock()
	f.powerStatus = status
	f.mu.Unlock()
}

// muteStreams makes every open stream of kind stuck: open and silent.
func (f *fakeDaemon) muteStreams(kind string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		if s.kind == kind {
			s.mu.Lock()
			s.mute = true
			s.mu.Unlock()
		}
	}
}

// restart drops every stream and comes back with the devices given.
func (f *fakeDaemon) restart(gpus, cpus []int) {
	f.mu.Lock()
	f.gpus, f.cpus = gpus, cpus
	f.mu.Unlock()
	f.dropStreams()
}

func (f *fakeDaemon) dropStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		close(s.end)
		delete(f.subs, s)
	}
}

// values is the multiset of values written to streams.
func (f *fakeDaemon) values() map[simtest.Value]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[simtest.Value]int, len(f.sent))
	for k, n := range f.sent {
		out[k] = n
	}
	return out
}

// logBuffer collects a client's log lines (and shows them with -v).
type logBuffer struct {
	tb  testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

func captureLogs(tb testing.TB) (*logBuffer, *slog.Logger) {
	l := &logBuffer{tb: tb}
	return l, slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logBuffer) Write(p []byte) (int, error) {
	if testing.Verbose() {
		l.tb.Log(strings.TrimSpace(string(p)))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns the lines that contain every one of subs.
func (l *logBuffer) lines(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for line := range strings.SplitSeq(l.buf.String(), "\n") {
		if line != "" && !slices.ContainsFunc(subs, func(s string) bool { return !strings.Contains(line, s) }) {
			out = append(out, line)
		}
	}
	return out
}
