// Package metrics is the Prometheus view of a recorder at work: the
// power and energy of each series, the health of each stream and of the
// store, served on /metrics with client_golang. A Collector sees what
// the recorder commits (it is a recorder.Observer) and keeps a few
// numbers per series and stream, so its memory does not grow with the
// recording; a scrape reads them under a lock the writer takes once per
// commit.
//
// Energy counts from the recorder's start, by the rules of the query
// package applied as the readings arrive (query.Running): it equals
// `wattrec query` over the same time, and never decreases. It trails
// the stream by the commit interval plus Collector.Lag, so that a
// reading that arrives a little late still counts where it belongs.
package metrics

import (
	"cmp"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/store"
)

// DefaultLag is how far the energy counter of a live series stays
// behind each commit.
const DefaultLag = time.Second

// PushStats is what one remote-write sender has sent, for the metrics.
type PushStats struct {
	Receiver                string
	Samples, SkippedSamples int64
	Retries                 int64
	ThroughMs               int64 // its position
}

// Collector keeps the metrics of one recorder. Set the exported fields
// before the recorder runs.
type Collector struct {
	// Lag is how far a live series' energy stays behind each commit.
	Lag time.Duration
	// Size, if set, is the file's size, read at each scrape.
	Size func() (int64, error)
	// Pushes, if set, is the state of the remote-write senders, read at
	// each scrape.
	Pushes func() []PushStats

	commit  prometheus.Histogram
	failed  prometheus.Counter
	reg     *prometheus.Registry
	sinceMs int64

	mu      sync.Mutex
	series  map[store.SeriesKey]*seriesState
	streams map[streamKey]*streamState
	clocks  map[string]store.ClockEstimate
	pending int
	// The series of the last reading's endpoint by kind and device:
	// readings come in runs of one endpoint, so a lookup is mostly an
	// index, not a hash.
	lastEP  string
	lastTab *[store.KindDRAM + 1][]*seriesState
	byEP    map[string]*[store.KindDRAM + 1][]*seriesState
	seq     uint64         // commits taken in
	refs    []*seriesState // per reading of the commit, its series
	order   []int32        // the commit's readings in time order, when needed
}

type streamKey struct {
	endpoint string
	stream   store.Stream
}

type streamState struct {
	key    streamKey
	labels []string // endpoint, stream
	series []*seriesState
	cur    store.Session // the session the stream is in, as last stored
	has    bool
	queue  []store.Session // sessions of the commit after cur, by start

	sessions, reconnects, gaps uint64
	gapMs                      int64
	events, malformed          uint64 // of the sessions before cur
}

// New returns a Collector for a recorder that started at since: energy
// counts from there.
func New(since time.Time) *Collector {
	c := &Collector{Lag: DefaultLag, sinceMs: since.UnixMilli(),
		series: map[store.SeriesKey]*seriesState{}, streams: map[streamKey]*streamState{}, clocks: map[string]store.ClockEstimate{},
		byEP: map[string]*[store.KindDRAM + 1][]*seriesState{},
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wattrec_store_commit_seconds",
			Help:    "Time one commit of the recorder's writer took (one bbolt transaction, fsynced).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "wattrec_store_commit_failures_total",
			Help: "Commits that failed (a full disk is retried; anything else stops the recorder)."}),
	}
	c.reg = prometheus.NewRegistry()
	c.reg.MustRegister(c, c.commit, c.failed, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return c
}

var _ recorder.Observer = (*Collector)(nil)

// Handler serves the metrics in the Prometheus text formats.
func (c *Collector) Handler() http.Handler {
	return promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, Timeout: 10 * time.Second})
}

// Committed takes in one commit of the recorder.
func (c *Collector) Committed(cm recorder.Commit) {
	if cm.Err != nil {
		c.failed.Inc()
	} else {
		c.commit.Observe(cm.Took.Seconds())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = cm.Pending
	if cm.Err != nil {
		return
	}
	b := cm.Batch
	for _, ce := range b.Clocks {
		if prev, ok := c.clocks[ce.Endpoint]; !ok || ce.TakenMs >= prev.TakenMs {
			c.clocks[ce.Endpoint] = ce
		}
	}

	// The commit's sessions, per stream, after the one it is in.
	touched := c.queueSessions(b.Sessions)
	// The readings, each in its session, in time order per series. They
	// come in arrival order, which is nearly always time order too; a
	// seed read at a connect can arrive before streamed events stamped
	// earlier, and then the commit's readings are taken in time order.
	c.seq++
	refs, disorder := c.refs[:0], false
	for i := range b.Readings {
		r := &b.Readings[i]
		s := c.lookup(r)
		if s.seq == c.seq && r.TimeMs < s.seenMs {
			disorder = true
		}
		s.seq, s.seenMs = c.seq, r.TimeMs
		refs = append(refs, s)
	}
	c.refs = refs
	if !disorder {
		for i, s := range refs {
			s.stream.enter(b.Readings[i].TimeMs)
			s.add(&b.Readings[i])
		}
	} else {
		order := c.order[:0]
		for i := range refs {
			order = append(order, int32(i))
		}
		slices.SortStableFunc(order, func(i, j int32) int { return cmp.Compare(b.Readings[i].TimeMs, b.Readings[j].TimeMs) })
		for _, i := range order {
			refs[i].stream.enter(b.Readings[i].TimeMs)
			refs[i].add(&b.Readings[i])
		}
		c.order = order
	}
	// Then where each session stands at the commit.
	lag := c.Lag.Milliseconds()
	for _, st := range touched {
		st.finish(lag)
	}
	for i := range b.Counters {
		cr := &b.Counters[i]
		if s := c.series[cr.Series()]; s != nil {
			s.counterReading(cr)
		}
	}
}

// queueSessions queues each stream's sessions of a commit after the one
// it is in, and returns the streams touched.
func (c *Collector) queueSessions(sessions []store.Session) []*streamState {
	var touched []*streamState
	for _, ses := range sessions {
		if ses.Start < c.sinceMs {
			continue // a session of a recorder before this one
		}
		st := c.streamOf(ses.Endpoint, ses.Stream)
		if !slices.Contains(touched, st) {
			touched = append(touched, st)
		}
		switch {
		case st.has && ses.Start == st.cur.Start:
			st.cur = ses // its latest state
		case st.has && ses.Start < st.cur.Start:
			// A piece of an earlier session, restated.
		default:
			st.queue = append(st.queue, ses)
		}
	}
	for _, st := range touched {
		slices.SortFunc(st.queue, func(a, b store.Session) int { return cmp.Compare(a.Start, b.Start) })
	}
	return touched
}

func (c *Collector) streamOf(endpoint string, stream store.Stream) *streamState {
	k := streamKey{endpoint, stream}
	st := c.streams[k]
	if st == nil {
		st = &streamState{key: k, labels: []string{endpoint, stream.String()}}
		c.streams[k] = st
	}
	return st
}

// maxIndexedDevice bounds the device ids lookup indexes.
const maxIndexedDevice = 1024

// lookup returns the series of r, creating it on its first reading.
func (c *Collector) lookup(r *store.Reading) *seriesState {
	if c.lastTab == nil || r.Endpoint != c.lastEP {
		tab := c.byEP[r.Endpoint]
		if tab == nil {
			tab = new([store.KindDRAM + 1][]*seriesState)
			c.byEP[r.Endpoint] = tab
		}
		c.lastEP, c.lastTab = r.Endpoint, tab
	}
	if !r.Kind.Valid() || r.Device < 0 || r.Device >= maxIndexedDevice {
		return c.seriesOf(r)
	}
	devs := &c.lastTab[r.Kind]
	if int(r.Device) < len(*devs) {
		if s := (*devs)[r.Device]; s != nil {
			return s
		}
	}
	s := c.seriesOf(r)
	for int(r.Device) >= len(*devs) {
		*devs = append(*devs, nil)
	}
	(*devs)[r.Device] = s
	return s
}

func (c *Collector) seriesOf(r *store.Reading) *seriesState {
	k := r.Series()
	s := c.series[k]
	if s == nil {
		s = newSeries(k)
		s.stream = c.streamOf(k.Endpoint, store.StreamOf(k.Kind))
		s.stream.series = append(s.stream.series, s)
		if st := s.stream; st.live() {
			s.start(st.cur.Start)
		}
		c.series[k] = s
	}
	return s
}

// live says the stream's current session has not ended.
func (st *streamState) live() bool { return st.has && st.cur.Open }

// enter moves the stream to the session a reading at t arrived in: the
// first that ends after t (query's rule), among the current one and
// those queued.
func (st *streamState) enter(t int64) {
	for len(st.queue) > 0 && (!st.has || (!st.cur.Open && t >= st.cur.End)) {
		st.next()
	}
}

// next ends the current session and starts the first queued one.
func (st *streamState) next() {
	ses := st.queue[0]
	st.queue = st.queue[1:]
	if st.has {
		end := st.cur.End
		if st.cur.Open {
			end = min(end, ses.Start) // an open session cannot outlast the next
		}
		for _, s := range st.series {
			s.end(end)
		}
		st.events += st.cur.Events
		st.malformed += st.cur.Malformed
		st.reconnects++
		if gap := ses.Start - end; gap > 0 {
			st.gaps++
			st.gapMs += gap
		}
	}
	st.cur, st.has = ses, true
	st.sessions++
	for _, s := range st.series {
		s.start(ses.Start)
	}
}

// finish takes the stream to where the commit leaves it: through every
// queued session, and then, if the session is live, its energy up to
// lag before the commit; else to its end.
func (st *streamState) finish(lag int64) {
	for len(st.queue) > 0 {
		st.next()
	}
	if !st.has {
		return
	}
	for _, s := range st.series {
		if st.cur.Open {
			s.through(st.cur.End - lag)
		} else {
			s.end(st.cur.End)
		}
	}
}

// Metric descriptions.
var (
	seriesLabels = []string{"endpoint", "kind", "device"}
	streamLabels = []string{"endpoint", "stream"}

	powerDesc = prometheus.NewDesc("wattrec_power_watts",
		"The value that holds now (GPU: the last reading; CPU/DRAM: the average over the last poll period); absent while the series is in a gap.", seriesLabels, nil)
	energyDesc = prometheus.NewDesc("wattrec_energy_joules_total",
		"Energy since the recorder started: the exact integral of the series' values by wattrec's rules, only while covered.", seriesLabels, nil)
	readingsDesc = prometheus.NewDesc("wattrec_readings_total", "Readings stored since the recorder started.", seriesLabels, nil)
	ratioDesc    = prometheus.NewDesc("wattrec_counter_integral_ratio",
		"The hardware energy counter's increase over the integral's, since the first counter reading (after a counter restart, since then); about 1 when no value was lost.", seriesLabels, nil)
	upDesc       = prometheus.NewDesc("wattrec_stream_up", "1 while the stream is live, 0 in a gap.", streamLabels, nil)
	sessionsDesc = prometheus.NewDesc("wattrec_stream_sessions_total", "Stream sessions (connections) since the recorder started.", streamLabels, nil)
	reconnDesc   = prometheus.NewDesc("wattrec_stream_reconnects_total", "Sessions that followed an earlier one.", streamLabels, nil)
	gapsDesc     = prometheus.NewDesc("wattrec_stream_gaps_total", "Gaps between sessions that have ended.", streamLabels, nil)
	gapSecDesc   = prometheus.NewDesc("wattrec_stream_gap_seconds_total", "Time in gaps that have ended.", streamLabels, nil)
	eventsDesc   = prometheus.NewDesc("wattrec_stream_events_total", "SSE events decoded.", streamLabels, nil)
	malDesc      = prometheus.NewDesc("wattrec_stream_malformed_events_total", "SSE events that did not decode.", streamLabels, nil)
	offsetDesc   = prometheus.NewDesc("wattrec_clock_offset_seconds",
		"The latest estimate of the daemon clock's offset (corrected = daemon + offset; positive: the daemon is behind).", []string{"endpoint"}, nil)
	rttDesc     = prometheus.NewDesc("wattrec_clock_rtt_seconds", "Round trip of the samples of the latest clock estimate: its error is at most half.", []string{"endpoint"}, nil)
	pendingDesc = prometheus.NewDesc("wattrec_store_pending_readings", "Readings received and not yet committed (grows while the disk is full).", nil, nil)
	bytesDesc   = prometheus.NewDesc("wattrec_store_bytes", "Size of the file.", nil, nil)

	pushLabels   = []string{"receiver"}
	pushSamples  = prometheus.NewDesc("wattrec_remote_write_samples_total", "Samples the receiver acknowledged.", pushLabels, nil)
	pushSkipped  = prometheus.NewDesc("wattrec_remote_write_skipped_samples_total", "Samples in requests the receiver refused with a 4xx (not retried).", pushLabels, nil)
	pushRetries  = prometheus.NewDesc("wattrec_remote_write_retries_total", "Requests that failed and were sent again.", pushLabels, nil)
	pushPosition = prometheus.NewDesc("wattrec_remote_write_position_seconds", "The push position: every sample before it was delivered.", pushLabels, nil)
	ownDescs     = []*prometheus.Desc{powerDesc, energyDesc, readingsDesc, ratioDesc, upDesc, sessionsDesc, reconnDesc, gapsDesc, gapSecDesc,
		eventsDesc, malDesc, offsetDesc, rttDesc, pendingDesc, bytesDesc, pushSamples, pushSkipped, pushRetries, pushPosition}
)
