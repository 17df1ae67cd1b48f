package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"github.com/wattrec/wattrec/retry"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// Metric names.
const (
	PowerMetric  = "wattrec_power_watts"
	EnergyMetric = "wattrec_energy_joules_total"
)

// Default sender settings.
const (
	// DefaultEvery is how often a held value is sent again: well inside
	// the 5 minutes after which Prometheus and VictoriaMetrics take a
	// silent series for gone.
	DefaultEvery = 15 * time.Second
	// MinEvery and MaxEvery bound Every: more often only multiplies the
	// samples, less often lets a flat series go stale.
	MinEvery = time.Second
	MaxEvery = 4 * time.Minute
	// DefaultLag is how far a live push stays behind the recorder's last
	// commit, for readings that arrive late.
	DefaultLag = 2 * time.Second
	// DefaultPoll is how often a live push looks for new readings.
	DefaultPoll = time.Second
	// DefaultMaxSamples bounds the samples of one request.
	DefaultMaxSamples = 50_000
	// DefaultConcurrency is how many requests of a window may be in
	// flight at once.
	DefaultConcurrency = 4
	// DefaultMaxBackoff caps the wait between attempts at a request.
	DefaultMaxBackoff = 30 * time.Second
	// DefaultRequestTimeout bounds one request.
	DefaultRequestTimeout = 30 * time.Second
)

// Bounds of a push window: the samples of all series in [from, to) are
// built, sent and acknowledged before the position moves to the next.
// Its length adapts to about windowSamples samples, within
// [minWindow, maxWindow]; maxWindow also keeps the samples of one
// window within the hour before the newest that Prometheus accepts.
const (
	windowSamples = 200_000
	minWindow     = int64(time.Second / time.Millisecond)
	maxWindow     = int64(10 * time.Minute / time.Millisecond)
)

// Label is a label added to every series pushed (job, cluster, ...).
type Label struct{ Name, Value string }

// ownLabels are the labels the sender sets itself.
var ownLabels = []string{"__name__", "device", "endpoint", "kind"}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// CheckLabel says whether l may be added: a Prometheus label name that
// is not reserved (no "__" prefix) nor one the sender sets, and a
// value.
func CheckLabel(l Label) error {
	switch {
	case !labelName.MatchString(l.Name) || len(l.Name) >= 2 && l.Name[:2] == "__":
		return fmt.Errorf("label %q: want a name of letters, digits and _, not starting with a digit or __", l.Name)
	case slices.Contains(ownLabels, l.Name):
		return fmt.Errorf("label %q: wattrec sets it itself", l.Name)
	case l.Value == "":
		return fmt.Errorf("label %q: empty value", l.Name)
	}
	return nil
}

// Stats count what a Sender sent.
type Stats struct {
	Samples         int64 // in requests the receiver acknowledged
	Requests        int64 // acknowledged
	SkippedSamples  int64 // in requests it refused (ErrRefused)
	SkippedRequests int64
	Retries         int64 // attempts that failed and were repeated
	ThroughMs       int64 // the push position: every sample before it is done
}

// Sender pushes the series of one wattrec file to one remote-write
// receiver, from the file: the file is its write-ahead log. It reads
// behind the recorder, window by window in time order, and moves its
// position, which it keeps in the file (store.PushPosition), only when
// the receiver has acknowledged a window's requests (2xx) or refused one
// for good (a 4xx other than 429, which is logged and skipped). Other
// failures (network, 5xx, 429) are retried with capped, jittered
// backoff, so a receiver that is down, or a recorder restart, loses
// nothing: the push catches up in order. Set the exported fields before
// the first call; the methods must not be called concurrently.
type Sender struct {
	DB       *store.DB
	Receiver Receiver
	Labels   []Label // added to every series; see CheckLabel
	// EndpointLabels are added to the series of one endpoint (a config
	// file's [[endpoint]] labels); they win over Labels of the same name.
	EndpointLabels map[string][]Label
	// Every is how often a held value is sent again (and the energy
	// counter with it): the grid of multiples of Every since the epoch.
	Every time.Duration
	// Lag is how far a live push (Run, Sync) stays behind each live
	// stream session's last commit.
	Lag time.Duration
	// Poll is how often Run looks for new readings.
	Poll time.Duration
	// LiveSince is when this recorder started: a session of the file
	// still open but started before it belongs to a recorder that died,
	// and counts as ended. Zero treats every open session as live.
	LiveSince time.Time
	// MaxSamples bounds the samples of one request.
	MaxSamples int
	// Concurrency is how many requests of one window may be in flight
	// at once, when each series is in one of them (the samples of a
	// series always arrive in order).
	Concurrency int
	// MaxBackoff caps the wait between attempts at a request.
	MaxBackoff time.Duration
	// Client sends the requests; it bounds each with its Timeout.
	Client *http.Client
	// Logger receives failures and recoveries; never the token.
	Logger *slog.Logger

	pos     *position // acknowledged
	series  map[store.SeriesKey]*seriesSamples
	refusal refusalLog
	window  int64 // ms, adapted

	samples, requests, skippedSamples, skippedRequests, retries, through atomic.Int64
}

// New returns a Sender for db and r with default settings.
func New(db *store.DB, r Receiver) *Sender {
	return &Sender{DB: db, Receiver: r, Every: DefaultEvery, Lag: DefaultLag, Poll: DefaultPoll,
		MaxSamples: DefaultMaxSamples, Concurrency: DefaultConcurrency, MaxBackoff: DefaultMaxBackoff,
		Client: &http.Client{Timeout: DefaultRequestTimeout, Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			ResponseHeaderTimeout: DefaultRequestTimeout,
			MaxIdleConnsPerHost:   2,
		}},
		Logger: slog.Default(), series: map[store.SeriesKey]*seriesSamples{}, window: int64(time.Minute / time.Millisecond)}
}

// Check says whether the settings can be used.
func (s *Sender) Check() error {
	if err := s.Receiver.Check(); err != nil {
		return err
	}
	for _, l := range s.Labels {
		if err := CheckLabel(l); err != nil {
			return err
		}
	}
	for ep, ls := range s.EndpointLabels {
		for _, l := range ls {
			if err := CheckLabel(l); err != nil {
				return fmt.Errorf("endpoint %s: %w", ep, err)
			}
		}
	}
	switch {
	case s.Every < MinEvery || s.Every > MaxEvery:
		return fmt.Errorf("re-send interval %v: want %v to %v", s.Every, MinEvery, MaxEvery)
	case s.Lag < 0:
		return fmt.Errorf("lag %v: want 0 or more", s.Lag)
	case s.MaxSamples < 1:
		return fmt.Errorf("samples per request %d: want at least 1", s.MaxSamples)
	}
	return nil
}

// Stats returns what was sent so far. It is safe to call concurrently
// with the other methods.
func (s *Sender) Stats() Stats {
	return Stats{Samples: s.samples.Load(), Requests: s.requests.Load(), SkippedSamples: s.skippedSamples.Load(),
		SkippedRequests: s.skippedRequests.Load(), Retries: s.retries.Load(), ThroughMs: s.through.Load()}
}

// Push pushes the file's samples in r as a finished recording: every
// session counts as ended. Without a start, r goes on from the
// receiver's push position (the recording's start if there is none);
// with one it starts there afresh (the energy counter has the value it
// has there). Without an end it goes to the recording's end. It returns
// once the position is at the end, or ctx is done.
func (s *Sender) Push(ctx context.Context, r query.TimeRange) error {
	if err := s.Check(); err != nil {
		return err
	}
	fromMs, toMs := int64(math.MinInt64), int64(math.MaxInt64)
	if !r.IsAll() {
		plan, err := query.NewPlan(ctx, s.DB, query.Filter{Range: r}, query.Periods{})
		if err != nil {
			return err
		}
		if r.From.Kind != query.BoundOmitted {
			fromMs = plan.Range.From
		}
		if r.To.Kind != query.BoundOmitted {
			toMs = plan.Range.To
		}
	}
	if err := s.load(ctx, fromMs); err != nil {
		return err
	}
	end, err := s.end(ctx, false)
	if err != nil {
		return err
	}
	return s.pushTo(ctx, min(end, toMs))
}

// Run follows the file while the recorder writes it, pushing every Poll
// what its live sessions have committed, Lag behind, until ctx is done;
// then it returns nil. It returns an error only when the file cannot be
// read. A receiver's failures are retried, not returned.
func (s *Sender) Run(ctx context.Context) error {
	if err := s.Check(); err != nil {
		return err
	}
	t := time.NewTicker(s.Poll)
	defer t.Stop()
	for {
		if err := s.Sync(ctx); err != nil && ctx.Err() == nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sync pushes what the file holds now, as Run does once: up to Lag
// behind the last commit of each live session, all of an ended one.
// Called after the recorder stopped, it pushes everything.
func (s *Sender) Sync(ctx context.Context) error {
	if s.pos == nil {
		if err := s.load(ctx, math.MinInt64); err != nil {
			return err
		}
	}
	end, err := s.end(ctx, true)
	if err != nil {
		return err
	}
	return s.pushTo(ctx, end)
}

// position is a push position in memory.
type position struct {
	through int64
	series  map[store.SeriesKey]store.PushedSeries
}

// load reads the receiver's position, or starts one at fromMs (the
// recording's start when math.MinInt64 and there is none).
func (s *Sender) load(ctx context.Context, fromMs int64) error {
	s.pos = &position{through: fromMs, series: map[store.SeriesKey]store.PushedSeries{}}
	if fromMs == math.MinInt64 {
		p, ok, err := s.DB.PushPosition(ctx, s.Receiver.ID())
		if err != nil {
			return err
		}
		if ok {
			s.pos.through = p.ThroughMs
			for _, ps := range p.Series {
				s.pos.series[ps.SeriesKey] = ps
			}
		}
	}
	s.through.Store(s.pos.through)
	return nil
}

// end is where the samples the file holds end: with live, Lag before
// the earliest last commit of the sessions still live; otherwise (and
// when none is live) just after the end of the last session.
func (s *Sender) end(ctx context.Context, live bool) (int64, error) {
	eps, err := s.DB.Endpoints(ctx)
	if err != nil {
		return 0, err
	}
	last, liveEnd := int64(math.MinInt64), int64(math.MaxInt64)
	since := int64(math.MinInt64)
	if !s.LiveSince.IsZero() {
		since = s.LiveSince.UnixMilli()
	}
	for _, ep := range eps {
		sessions, err := s.DB.Sessions(ctx, ep.Endpoint)
		if err != nil {
			return 0, err
		}
		for _, ses := range sessions {
			last = max(last, ses.End)
			if live && ses.Open && ses.Start >= since {
				liveEnd = min(liveEnd, ses.End-s.Lag.Milliseconds())
			}
		}
	}
	switch {
	case liveEnd != math.MaxInt64:
		return liveEnd, nil
	case last == math.MinInt64:
		return last, nil
	}
	return last + 1, nil // past the end, so that the gap after it is marked
}

// pushTo pushes window by window until the position is at to. One
// goroutine builds and encodes the next window while this one sends the
// last, so that the receiver's work and the sender's overlap; requests
// still go one at a time, in order, as a receiver that refuses
// out-of-order samples needs.
func (s *Sender) pushTo(ctx context.Context, to int64) error {
	if s.pos.through >= to {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	built := make(chan *window, 1)
	buildErr := make(chan error, 1)
	b := s.builder()
	go func() {
		defer close(built)
		buildErr <- b.run(ctx, to, built)
	}()
	var sendErr error
	for w := range built {
		if sendErr == nil {
			if sendErr = s.deliver(ctx, w); sendErr != nil {
				cancel() // the builder stops; the windows it built are dropped
			}
		}
	}
	if err := <-buildErr; sendErr == nil {
		sendErr = err
	}
	return sendErr
}

// window is one push window, built and encoded, and the position after
// it.
type window struct {
	iv      query.Interval
	bodies  [][]byte // encoded requests, in order
	samples []int    // samples per request
	series  []int    // series (pieces) per request
	split   bool     // a series is in more than one request
	next    store.PushPosition
}

// builder builds the windows of a push, on its own copy of the
// position.
type builder struct {
	s      *Sender
	pos    position
	series map[store.SeriesKey]*seriesSamples
	enc    encoder
}

func (s *Sender) builder() *builder {
	b := &builder{s: s, series: s.series, pos: position{through: s.pos.through, series: maps.Clone(s.pos.series)}}
	return b
}

// run builds the windows up to to and hands them to out.
func (b *builder) run(ctx context.Context, to int64, out chan<- *window) error {
	s := b.s
	for b.pos.through < to {
		all, err := s.DB.Series(ctx, "", false)
		if err != nil {
			return err
		}
		if len(all) == 0 {
			return nil
		}
		plan, err := query.NewPlan(ctx, s.DB, query.Filter{}, query.Periods{})
		if err != nil {
			return err
		}
		if b.pos.through == math.MinInt64 { // a first push from the recording's start
			b.pos.through = plan.Window.From
			if b.pos.through >= to {
				return nil
			}
		}
		iv := query.Interval{From: b.pos.through, To: min(to, b.pos.through+s.window)}
		w, n, err := b.build(ctx, plan, iv)
		if err != nil {
			return err
		}
		select {
		case out <- w:
		case <-ctx.Done():
			return ctx.Err()
		}
		// Aim the next window at windowSamples.
		s.window = min(max(s.window*windowSamples/max(int64(n), 1), minWindow), maxWindow)
	}
	return nil
}

// build builds and encodes the samples of every series in iv, and moves
// the builder's position to iv.To. It also returns the number of
// samples.
func (b *builder) build(ctx context.Context, plan *query.Plan, iv query.Interval) (*window, int, error) {
	s := b.s
	every := s.Every.Milliseconds()
	next := make([]store.PushedSeries, 0, len(plan.Series))
	var ts []prompb.TimeSeries
	n := 0
	for i, st := range plan.Series {
		k := st.SeriesKey
		ps, ok := b.pos.series[k]
		if !ok {
			// Its counter starts where the recording does.
			e, err := energyBefore(ctx, s.DB, k, plan.Specs[i], plan.Window.From, iv.From)
			if err != nil {
				return nil, 0, err
			}
			ps = store.PushedSeries{SeriesKey: k, EnergyUJ: e}
		}
		ss := b.series[k]
		if ss == nil {
			ss = &seriesSamples{every: every, powerLabels: s.labels(PowerMetric, k), energyLabels: s.labels(EnergyMetric, k)}
			b.series[k] = ss
		}
		ss.begin(iv.From, ps.EnergyUJ, ps.Live, ps.MW)
		err := query.Steps(ctx, s.DB, k, plan.Specs[i], iv, ss.add)
		if err != nil {
			return nil, 0, err
		}
		ss.finish(iv.To)
		ps.EnergyUJ, ps.Live, ps.MW = ss.energyUJ, ss.live, ss.lastMW
		next = append(next, ps)
		b.pos.series[k] = ps
		if len(ss.power) > 0 {
			ts = append(ts, prompb.TimeSeries{Labels: ss.powerLabels, Samples: ss.power})
		}
		if len(ss.energy) > 0 {
			ts = append(ts, prompb.TimeSeries{Labels: ss.energyLabels, Samples: ss.energy})
		}
		n += len(ss.power) + len(ss.energy)
	}
	store.SortPushedSeries(next)
	w := &window{iv: iv, next: store.PushPosition{Receiver: s.Receiver.ID(), ThroughMs: iv.To, Series: next}}
	if err := b.encode(w, ts); err != nil {
		return nil, 0, err
	}
	b.pos.through = iv.To
	return w, n, nil
}

// encode packs ts into requests of at most MaxSamples samples, in
// order, each series whole in one where it fits (one with more goes in
// pieces), and encodes them into w.
func (b *builder) encode(w *window, ts []prompb.TimeSeries) error {
	var req prompb.WriteRequest
	size := 0
	flush := func() error {
		if len(req.Timeseries) == 0 {
			return nil
		}
		body, err := b.enc.encode(&req)
		if err != nil {
			return err
		}
		w.bodies, w.samples, w.series = append(w.bodies, body), append(w.samples, size), append(w.series, len(req.Timeseries))
		req.Timeseries, size = req.Timeseries[:0], 0
		return nil
	}
	limit := b.s.MaxSamples
	for _, t := range ts {
		// A series that fits in a request goes whole into one.
		if size > 0 && size+len(t.Samples) > limit && len(t.Samples) <= limit {
			if err := flush(); err != nil {
				return err
			}
		}
		for len(t.Samples) > 0 {
			if size >= limit {
				if err := flush(); err != nil {
					return err
				}
			}
			part := t
			part.Samples = t.Samples[:min(limit-size, len(t.Samples))]
			t.Samples = t.Samples[len(part.Samples):]
			req.Timeseries = append(req.Timeseries, part)
			size += len(part.Samples)
			if len(t.Samples) > 0 {
				w.split = true // the rest goes in the next request
			}
		}
	}
	return flush()
}

// deliver sends the requests of w, each until the receiver acknowledges
// or refuses it, and then moves the position, in the file too. It
// returns only ctx's error or the store's.
func (s *Sender) deliver(ctx context.Context, w *window) error {
	if w.split || s.Concurrency <= 1 || len(w.bodies) == 1 {
		for i, body := range w.bodies {
			if err := s.sendOne(ctx, body, w.samples[i], w.series[i], w.iv); err != nil {
				return err
			}
		}
	} else {
		// Each series is in one request of the window: they may go at
		// once, the samples of each series still in order.
		sem := make(chan struct{}, s.Concurrency)
		errs := make([]error, len(w.bodies))
		var sends sync.WaitGroup
		for i, body := range w.bodies {
			sem <- struct{}{}
			sends.Add(1)
			go func() {
				defer func() { <-sem; sends.Done() }()
				errs[i] = s.sendOne(ctx, body, w.samples[i], w.series[i], w.iv)
			}()
		}
		sends.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	if err := s.DB.SetPushPosition(ctx, w.next); err != nil {
		return fmt.Errorf("store the push position: %w", err)
	}
	for _, ps := range w.next.Series {
		s.pos.series[ps.SeriesKey] = ps
	}
	s.pos.through = w.iv.To
	s.through.Store(w.iv.To)
	return nil
}

// energyBefore is the energy of series k by spec in [from, to).
func energyBefore(ctx context.Context, db *store.DB, k store.SeriesKey, spec query.Spec, from, to int64) (int64, error) {
	var e int64
	err := query.IntegrateBins(ctx, db, k, spec, query.Interval{From: from, To: to}, 0, func(_ query.Interval, res query.Result) error {
		e += res.EnergyUJ
		return nil
	})
	return e, err
}

// labels is the label set of metric for series k, sorted by name as
// the specification wants.
func (s *Sender) labels(metric string, k store.SeriesKey) []prompb.Label {
	own := s.EndpointLabels[k.Endpoint]
	ls := make([]prompb.Label, 0, 4+len(s.Labels)+len(own))
	ls = append(ls, prompb.Label{Name: "__name__", Value: metric},
		prompb.Label{Name: "device", Value: strconv.Itoa(int(k.Device))},
		prompb.Label{Name: "endpoint", Value: k.Endpoint},
		prompb.Label{Name: "kind", Value: k.Kind.String()})
	for _, l := range s.Labels {
		if !slices.ContainsFunc(own, func(o Label) bool { return o.Name == l.Name }) {
			ls = append(ls, prompb.Label{Name: l.Name, Value: l.Value})
		}
	}
	for _, l := range own {
		ls = append(ls, prompb.Label{Name: l.Name, Value: l.Value})
	}
	slices.SortFunc(ls, func(a, b prompb.Label) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return ls
}

// sendOne sends one encoded request of n samples in series series of
// window w until it is acknowledged or refused, retrying other failures
// with capped, jittered backoff. It returns only ctx's error.
func (s *Sender) sendOne(ctx context.Context, body []byte, n, series int, w query.Interval) error {
	failures := 0
	var since time.Time
	lastLogged, lastKey := time.Time{}, ""
	for {
		err := post(ctx, s.Client, &s.Receiver, body)
		switch {
		case err == nil:
			if failures > 0 {
				s.Logger.Info("remote write recovered", "receiver", s.Receiver.ID(), "failures", failures, "after", time.Since(since).Round(time.Millisecond))
			}
			s.samples.Add(int64(n))
			s.requests.Add(1)
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrRefused):
			s.skippedSamples.Add(int64(n))
			s.skippedRequests.Add(1)
			s.refusal.log(s.Logger, s.Receiver.ID(), err, n, series, w)
			return nil
		}
		if failures == 0 {
			since = time.Now()
		}
		failures++
		s.retries.Add(1)
		d := retry.Backoff(failures, s.MaxBackoff)
		// Log a changed failure at once, a repeated one every few minutes.
		if key := err.Error(); key != lastKey || time.Since(lastLogged) >= repeatLogEvery {
			s.Logger.Warn("remote write failed, retrying", "receiver", s.Receiver.ID(), "err", err, "attempt", failures, "wait", d.Round(time.Millisecond))
			lastKey, lastLogged = key, time.Now()
		}
		if !retry.Sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// repeatLogEvery is how often a failure that has not changed is logged
// again.
const repeatLogEvery = 5 * time.Minute

// refusalLog logs refused requests: a new refusal at once, the same one
// again only every repeatLogEvery, with how many were skipped meanwhile.
type refusalLog struct {
	mu      sync.Mutex
	key     string
	logged  time.Time
	skipped int
}

func (l *refusalLog) log(log *slog.Logger, receiver string, err error, samples, series int, w query.Interval) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.skipped++
	if key := err.Error(); key == l.key && time.Since(l.logged) < repeatLogEvery {
		return
	}
	log.Error("receiver refused a request; skipped it", "receiver", receiver, "err", err,
		"from", query.FormatTime(w.From), "to", query.FormatTime(w.To), "series", series, "samples", samples, "skipped_requests", l.skipped)
	l.key, l.logged, l.skipped = err.Error(), time.Now(), 0
}
