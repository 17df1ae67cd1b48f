package remotewrite_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"go.uber.org/goleak"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/remotewrite"
	"github.com/wattrec/wattrec/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is where the fixture recording starts.
const t0 = int64(1_790_000_000_000)

// fixture opens fixtureAt's recording for the test; it is closed when the
// test ends.
func fixture(t *testing.T) (*store.DB, int64) {
	t.Helper()
	path, end := fixtureAt(t, t0)
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, end
}

// fixtureAt writes a recording of one endpoint: GPU 0 at 20 Hz that stays
// flat for six minutes in its second session, CPU 0 and DRAM 0 at
// 10 Hz, with a gap in the GPU stream and a tie. It returns the path
// and the end of the last session.
func fixtureAt(t *testing.T, t0 int64) (string, int64) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "run.db")
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const ep = "node1:4938"
	rng := rand.New(rand.NewPCG(1, 2))
	gpu := []query.Interval{{From: t0, To: t0 + 95_000}, {From: t0 + 97_500, To: t0 + 600_000}}
	cpu := query.Interval{From: t0 + 10, To: t0 + 600_000}
	b := store.Batch{Sessions: []store.Session{
		{Endpoint: ep, Stream: store.StreamGPU, Start: gpu[0].From, End: gpu[0].To, Reason: "server closed the stream"},
		{Endpoint: ep, Stream: store.StreamGPU, Start: gpu[1].From, End: gpu[1].To, Reason: "recorder stopped"},
		{Endpoint: ep, Stream: store.StreamCPU, Start: cpu.From, End: cpu.To, Reason: "recorder stopped"},
	}}
	mw := int64(100_000)
	for _, s := range gpu {
		for tm := s.From - 7; tm < s.To; tm += 50 {
			flat := tm > gpu[1].From+60_000 && tm < gpu[1].From+420_000
			if !flat {
				mw = 60_000 + rng.Int64N(240_000)
			} else if tm > gpu[1].From+60_100 {
				continue // change-only: nothing while flat
			}
			b.Readings = append(b.Readings, store.Reading{Endpoint: ep, Kind: store.KindGPU, TimeMs: tm, DaemonMs: tm - 3, MilliWatts: mw, Seed: tm < s.From})
			if tm == s.From+993 {
				b.Readings = append(b.Readings, store.Reading{Endpoint: ep, Kind: store.KindGPU, TimeMs: tm, DaemonMs: tm - 3, MilliWatts: mw + 5}) // a tie
			}
		}
	}
	for tm := cpu.From + 90; tm < cpu.To; tm += 100 { // some on the grid of re-sent values
		b.Readings = append(b.Readings,
			store.Reading{Endpoint: ep, Kind: store.KindCPU, TimeMs: tm, DaemonMs: tm - 3, MilliWatts: 40_000 + rng.Int64N(20_000)},
			store.Reading{Endpoint: ep, Kind: store.KindDRAM, TimeMs: tm, DaemonMs: tm - 3, MilliWatts: 5_000 + rng.Int64N(2_000)})
	}
	if err := db.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	return path, t0 + 600_000
}

// receiver is a fake remote-write receiver that checks what
// Prometheus checks (sorted labels, per series strictly increasing
// timestamps) and keeps every sample.
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	series map[string][]prompb.Sample
	reqs   int
	fail   func(n int) int // the status to answer request n with, 0: accept
}

func newReceiver(t *testing.T) (*receiver, *httptest.Server) {
	r := &receiver{t: t, series: map[string][]prompb.Sample{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs++
	if hr.Header.Get("Content-Encoding") != "snappy" || hr.Header.Get("Content-Type") != "application/x-protobuf" ||
		hr.Header.Get("X-Prometheus-Remote-Write-Version") != "0.1.0" {
		r.t.Errorf("request headers %v", hr.Header)
	}
	if got := hr.Header.Get("Authorization"); got != "Bearer s3cret" {
		r.t.Errorf("Authorization %q", got)
	}
	if got := hr.Header.Get("X-Scope-OrgID"); got != "lab" {
		r.t.Errorf("X-Scope-OrgID %q", got)
	}
	if r.fail != nil {
		if code := r.fail(r.reqs); code != 0 {
			http.Error(w, fmt.Sprintf("no (request %d)", r.reqs), code)
			return
		}
	}
	body, _ := io.ReadAll(hr.Body)
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		r.t.Fatalf("snappy: %v", err)
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		r.t.Fatalf("protobuf: %v", err)
	}
	for _, ts := range req.Timeseries {
		if !slices.IsSortedFunc(ts.Labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) }) {
			r.t.Errorf("labels not sorted: %v", ts.Labels)
		}
		var key []string
		for _, l := range ts.Labels {
			key = append(key, l.Name+"="+l.Value)
		}
		k := strings.Join(key, ",")
		for _, s := range ts.Samples {
			if prev := r.series[k]; len(prev) > 0 && s.Timestamp <= prev[len(prev)-1].Timestamp {
				r.t.Errorf("%s: sample at %d after one at %d: out of order", k, s.Timestamp, prev[len(prev)-1].Timestamp)
			}
			r.series[k] = append(r.series[k], prompb.Sample{Timestamp: s.Timestamp, Value: s.Value})
		}
	}
}

func (r *receiver) get(metric string, k store.SeriesKey) []prompb.Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.series[fmt.Sprintf("__name__=%s,cluster=c1,device=%d,endpoint=%s,job=train,kind=%s", metric, k.Device, k.Endpoint, k.Kind)]
}

func newSender(db *store.DB, url string, log io.Writer) *remotewrite.Sender {
	s := remotewrite.New(db, remotewrite.Receiver{URL: url, Header: http.Header{"X-Scope-OrgID": {"lab"}}, BearerToken: "s3cret"})
	s.Labels = []remotewrite.Label{{Name: "job", Value: "train"}, {Name: "cluster", Value: "c1"}}
	s.MaxSamples = 700 // many requests, series split across them
	s.MaxBackoff = 100 * time.Millisecond
	s.Logger = slog.New(slog.NewTextHandler(log, nil))
	return s
}

// holdJoules integrates samples the way PromQL's step rule reads them:
// each value holds until the next sample, a staleness marker holds
// nothing, over [from, to).
func holdJoules(ss []prompb.Sample, from, to int64) float64 {
	var j float64
	for i, s := range ss {
		if value.IsStaleNaN(s.Value) {
			continue
		}
		end := to
		if i+1 < len(ss) {
			end = ss[i+1].Timestamp
		}
		if a, b := max(s.Timestamp, from), min(end, to); b > a {
			j += s.Value * float64(b-a) / 1e3
		}
	}
	return j
}

// checkPushed compares what r received for every series of the file with
// the file's own energy: the power samples' step integral and the
// counter's increase over windows on the counter's samples, the gaps
// marked stale, and no silence longer than every while covered.
func checkPushed(t *testing.T, db *store.DB, r *receiver, every int64) {
	t.Helper()
	ctx := context.Background()
	plan, err := query.NewPlan(ctx, db, query.Filter{}, query.Periods{})
	if err != nil {
		t.Fatal(err)
	}
	energy := func(i int, w query.Interval) float64 {
		var e int64
		err := query.IntegrateBins(ctx, db, plan.Series[i].SeriesKey, plan.Specs[i], w, 0, func(_ query.Interval, res query.Result) error {
			e += res.EnergyUJ
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return float64(e) / 1e6
	}
	for i, st := range plan.Series {
		k := st.SeriesKey
		power, counter := r.get(remotewrite.PowerMetric, k), r.get(remotewrite.EnergyMetric, k)
		if len(power) == 0 || len(counter) == 0 {
			t.Fatalf("%s: %d power and %d energy samples", k, len(power), len(counter))
		}
		w := plan.Window
		if got, want := holdJoules(power, w.From, w.To), energy(i, w); math.Abs(got-want) > 1e-9*want {
			t.Errorf("%s: power samples integrate to %.6f J, the file to %.6f J", k, got, want)
		}
		if got, want := counter[len(counter)-1].Value, energy(i, w); math.Abs(got-want) > 1e-9*want {
			t.Errorf("%s: counter ends at %.6f J, the file's energy is %.6f J", k, got, want)
		}
		for j := 1; j < len(counter); j += 7 {
			a, b := counter[j-1], counter[j+min(5, len(counter)-1-j)]
			if got, want := b.Value-a.Value, energy(i, query.Interval{From: a.Timestamp, To: b.Timestamp}); math.Abs(got-want) > 1e-9*max(want, 1) {
				t.Errorf("%s: counter increase %.6f J over [%d, %d), the file's energy %.6f J", k, got, a.Timestamp, b.Timestamp, want)
			}
		}
		// Staleness: each gap of the series' sessions is marked where it
		// begins, and while covered no two samples are more than every
		// apart.
		stale := 0
		for j, s := range power {
			if value.IsStaleNaN(s.Value) {
				stale++
				continue
			}
			if j+1 < len(power) && power[j+1].Timestamp-s.Timestamp > every {
				t.Errorf("%s: %d ms without a sample at %d", k, power[j+1].Timestamp-s.Timestamp, s.Timestamp)
			}
		}
		if want := len(plan.Specs[i].Sessions); stale != want {
			t.Errorf("%s: %d staleness markers, want %d (one per session)", k, stale, want)
		}
	}
}

func TestSender_Push(t *testing.T) {
	db, _ := fixture(t)
	r, srv := newReceiver(t)
	var log bytes.Buffer
	s := newSender(db, srv.URL+"/api/v1/write", &log)
	if err := s.Push(context.Background(), query.TimeRange{}); err != nil {
		t.Fatal(err)
	}
	checkPushed(t, db, r, s.Every.Milliseconds())
	st := s.Stats()
	if st.Requests < 10 || st.SkippedRequests != 0 || st.Retries != 0 {
		t.Errorf("stats %+v", st)
	}
	if strings.Contains(log.String(), "s3cret") {
		t.Errorf("the token is in the log:\n%s", log.String())
	}

	// A second push has nothing left to send.
	n := r.reqs
	again := newSender(db, srv.URL+"/api/v1/write", io.Discard)
	if err := again.Push(context.Background(), query.TimeRange{}); err != nil {
		t.Fatal(err)
	}
	if r.reqs != n {
		t.Errorf("a push after a complete one sent %d requests", r.reqs-n)
	}
}

// TestSender_Resume: a push stopped halfway and one that fails and
// retries, in small requests one at a time, deliver the same samples as
// one push in one go, in big requests several at a time.
func TestSender_Resume(t *testing.T) {
	db, end := fixture(t)
	whole, srv := newReceiver(t)
	one := newSender(db, srv.URL, io.Discard)
	one.MaxSamples = remotewrite.DefaultMaxSamples // whole series per request, sent at once
	if err := one.Push(context.Background(), query.TimeRange{}); err != nil {
		t.Fatal(err)
	}

	split, srv2 := newReceiver(t)
	// The receiver is down (503, then 429) for a while.
	split.fail = func(n int) int {
		switch {
		case n < 4:
			return http.StatusServiceUnavailable
		case n < 6:
			return http.StatusTooManyRequests
		}
		return 0
	}
	first := newSender(db, srv2.URL, io.Discard)
	if err := first.Push(context.Background(), query.TimeRange{To: query.At(t0 + 123_457)}); err != nil {
		t.Fatal(err)
	}
	if st := first.Stats(); st.Retries != 5 || st.ThroughMs != t0+123_457 {
		t.Errorf("stats %+v, want 5 retries, through %d", st, t0+123_457)
	}
	// A new sender (a restart) goes on from the position in the file.
	if err := newSender(db, srv2.URL, io.Discard).Push(context.Background(), query.TimeRange{}); err != nil {
		t.Fatal(err)
	}
	if p, _, err := db.PushPosition(context.Background(), newSender(db, srv2.URL, io.Discard).Receiver.ID()); err != nil || p.ThroughMs != end+1 {
		t.Fatalf("position %d (%v), want %d", p.ThroughMs, err, end+1)
	}
	for k, want := range whole.series {
		if got := split.series[k]; !slices.EqualFunc(got, want, sameSample) {
			t.Errorf("%s: %d samples resumed, %d in one go", k, len(got), len(want))
		}
	}
}

// TestSender_Refused: a 4xx other than 429 skips that request, names it
// in the log once, and the push goes on.
func TestSender_Refused(t *testing.T) {
	db, _ := fixture(t)
	r, srv := newReceiver(t)
	r.fail = func(n int) int {
		if n == 3 || n == 4 {
			return http.StatusBadRequest
		}
		return 0
	}
	var log bytes.Buffer
	s := newSender(db, srv.URL, &log)
	if err := s.Push(context.Background(), query.TimeRange{}); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.SkippedRequests != 2 || st.Retries != 0 || st.SkippedSamples == 0 {
		t.Errorf("stats %+v, want 2 requests skipped, no retry", st)
	}
	if n := strings.Count(log.String(), "receiver refused a request"); n != 2 {
		// Two refusals with different messages: each is news.
		t.Errorf("%d refusals logged, want 2:\n%s", n, log.String())
	}
	if !strings.Contains(log.String(), "from=") || !strings.Contains(log.String(), "HTTP 400") {
		t.Errorf("the refusal does not name the batch:\n%s", log.String())
	}
}

func sameSample(a, b prompb.Sample) bool {
	return a.Timestamp == b.Timestamp && math.Float64bits(a.Value) == math.Float64bits(b.Value)
}

func TestReceiver_Check(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://vm:8428/api/v1/write", true},
		{"https://mimir.example/api/v1/push?x=1", true},
		{"ftp://vm/", false},
		{"vm:8428", false},
		{"http://user:pass@vm:8428/api/v1/write", false},
	} {
		err := remotewrite.Receiver{URL: tc.url}.Check()
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.url, err)
		}
		if err != nil && strings.Contains(err.Error(), "pass") {
			t.Errorf("%s: the error shows the password: %v", tc.url, err)
		}
	}
	if got := (remotewrite.Receiver{URL: "https://u:p@mimir.example/api/v1/push?token=x"}).ID(); got != "https://mimir.example/api/v1/push" {
		t.Errorf("ID %q", got)
	}
}

// TestSender_SmallWindows: pushing a second at a time, as a live push
// does, delivers the same samples as one push.
func TestSender_SmallWindows(t *testing.T) {
	db, end := fixture(t)
	whole, srv := newReceiver(t)
	if err := newSender(db, srv.URL, io.Discard).Push(context.Background(), query.TimeRange{}); err != nil {
		t.Fatal(err)
	}
	small, srv2 := newReceiver(t)
	s := newSender(db, srv2.URL, io.Discard)
	for to := t0 + 777; to < end+1000; to += 1000 {
		if err := s.Push(context.Background(), query.TimeRange{To: query.At(to)}); err != nil {
			t.Fatal(err)
		}
	}
	for k, want := range whole.series {
		if got := small.series[k]; !slices.EqualFunc(got, want, sameSample) {
			t.Errorf("%s: %d samples a second at a time, %d in one go", k, len(got), len(want))
		}
	}
}

// TestSender_Live: Sync pushes what live sessions have committed, Lag
// behind, ignores an open session of a recorder that died, and once the
// sessions ended, everything: the same samples as one push of the
// finished file.
func TestSender_Live(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "live.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const ep, dead = "node1:4938", "node0:4938"
	write := func(b store.Batch) {
		t.Helper()
		if err := db.Write(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	// A session left open by a recorder killed before this one started.
	write(store.Batch{Sessions: []store.Session{{Endpoint: dead, Stream: store.StreamGPU, Start: t0 - 100_000, End: t0 - 50_000, Open: true}},
		Readings: []store.Reading{{Endpoint: dead, Kind: store.KindGPU, TimeMs: t0 - 90_000, DaemonMs: t0 - 90_000, MilliWatts: 50_000}}})
	readings := func(from, to int64) []store.Reading {
		var rs []store.Reading
		for tm := from; tm < to; tm += 250 {
			rs = append(rs, store.Reading{Endpoint: ep, Kind: store.KindGPU, TimeMs: tm, DaemonMs: tm, MilliWatts: 100_000 + tm%7_000})
		}
		return rs
	}
	ses := store.Session{Endpoint: ep, Stream: store.StreamGPU, Start: t0, End: t0 + 60_000, Open: true}
	write(store.Batch{Sessions: []store.Session{ses}, Readings: readings(t0, t0+60_000)})

	live, srv := newReceiver(t)
	s := newSender(db, srv.URL, io.Discard)
	s.LiveSince = time.UnixMilli(t0 - 1000)
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Stats().ThroughMs, t0+60_000-s.Lag.Milliseconds(); got != want {
		t.Fatalf("through %d, want %d: Lag before the live session's last commit", got, want)
	}
	ses.End = t0 + 120_000
	write(store.Batch{Sessions: []store.Session{ses}, Readings: readings(t0+60_000, t0+120_000)})
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Stats().ThroughMs, t0+120_000-s.Lag.Milliseconds(); got != want {
		t.Fatalf("through %d, want %d", got, want)
	}
	ses.End, ses.Open = t0+130_000, false
	write(store.Batch{Sessions: []store.Session{ses}, Readings: readings(t0+120_000, t0+130_000)})
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Stats().ThroughMs, t0+130_001; got != want {
		t.Fatalf("through %d, want %d: past the end", got, want)
	}

	whole, srv2 := newReceiver(t)
	if err := newSender(db, srv2.URL, io.Discard).Push(ctx, query.TimeRange{}); err != nil {
		t.Fatal(err)
	}
	if len(whole.series) != len(live.series) {
		t.Fatalf("%d series live, %d in one push", len(live.series), len(whole.series))
	}
	for k, want := range whole.series {
		if got := live.series[k]; !slices.EqualFunc(got, want, sameSample) {
			t.Errorf("%s: %d samples live, %d in one push", k, len(got), len(want))
		}
	}
}

// TestSender_From: a push that starts afresh inside the recording
// starts the counter at the energy before it.
func TestSender_From(t *testing.T) {
	ctx := context.Background()
	db, _ := fixture(t)
	r, srv := newReceiver(t)
	from := t0 + 200_000
	if err := newSender(db, srv.URL, io.Discard).Push(ctx, query.TimeRange{From: query.At(from)}); err != nil {
		t.Fatal(err)
	}
	plan, err := query.NewPlan(ctx, db, query.Filter{}, query.Periods{})
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range plan.Series {
		var want int64
		err := query.IntegrateBins(ctx, db, st.SeriesKey, plan.Specs[i], query.Interval{From: plan.Window.From, To: from}, 0, func(_ query.Interval, res query.Result) error {
			want = res.EnergyUJ
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		counter := r.get(remotewrite.EnergyMetric, st.SeriesKey)
		if len(counter) == 0 || counter[0].Timestamp != from || counter[0].Value != float64(want)/1e6 {
			t.Errorf("%s: first counter sample %+v, want %.6f J at %d", st.SeriesKey, counter[:min(1, len(counter))], float64(want)/1e6, from)
		}
	}
}

// TestSender_EndpointLabels: an endpoint's own labels go on its series
// and win over the sender's labels of the same name.
func TestSender_EndpointLabels(t *testing.T) {
	db, _ := fixture(t)
	r, srv := newReceiver(t)
	s := newSender(db, srv.URL+"/api/v1/write", io.Discard)
	s.EndpointLabels = map[string][]remotewrite.Label{"node1:4938": {{Name: "cluster", Value: "c2"}, {Name: "rack", Value: "r1"}}}
	if err := s.Push(context.Background(), query.TimeRange{}); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.series) == 0 {
		t.Fatal("nothing received")
	}
	for k := range r.series {
		if !strings.Contains(k, "cluster=c2,") || !strings.Contains(k, ",rack=r1") || strings.Contains(k, "cluster=c1") || !strings.Contains(k, "job=train") {
			t.Errorf("series %s: want cluster=c2 and rack=r1 from the endpoint, job=train from the sender", k)
		}
	}
	s.EndpointLabels = map[string][]remotewrite.Label{"node1:4938": {{Name: "bad name", Value: "x"}}}
	if err := s.Check(); err == nil || !strings.Contains(err.Error(), "node1:4938") {
		t.Errorf("Check with a bad endpoint label: %v", err)
	}
}
