package metrics

import (
	"strconv"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// A CPU or DRAM value covers the poll period before it, so its series'
// energy needs the period: it is inferred from the first periodSpacings
// spacings of the series' daemon times (query.PeriodOf, as the query
// infers it from the file), and until then what the series
// receives waits, at most maxWaiting steps (then the period is the best
// guess so far).
const (
	periodSpacings = 32
	maxWaiting     = 4096
)

// seriesState is one series' metrics.
type seriesState struct {
	key    store.SeriesKey
	labels []string // endpoint, kind, device
	stream *streamState
	run    query.Running
	n      uint64 // readings stored
	seq    uint64 // the last commit with a reading of the series
	seenMs int64  // that reading's time

	// Until the period is known (CPU, DRAM): what waits, and the
	// spacings so far.
	known      bool
	waiting    []step
	lastDaemon int64
	spacings   []int64
	live       bool  // in a session, while waiting
	lastMW     int64 // the last value, while waiting
	haveMW     bool

	counter struct {
		first, last store.CounterReading // hardware readings, µJ
		e0, e1      int64                // the running energy at them
		have        bool
	}
}

// step is one thing a series received, kept while its period is not
// known.
type step struct {
	op    byte // 's'tart, 'a'dd, 't'hrough, 'e'nd
	t, mw int64
}

func newSeries(k store.SeriesKey) *seriesState {
	s := &seriesState{key: k, labels: []string{k.Endpoint, k.Kind.String(), strconv.Itoa(int(k.Device))},
		run: query.Running{Rule: query.RuleOf(k.Kind, 0)}}
	s.known = s.run.Rule.Shift() == 0
	return s
}

func (s *seriesState) start(t int64) {
	if s.do(step{op: 's', t: t}) {
		s.live, s.haveMW = true, false
	}
}

func (s *seriesState) through(t int64) { s.do(step{op: 't', t: t}) }

func (s *seriesState) end(t int64) {
	if s.do(step{op: 'e', t: t}) {
		s.live, s.haveMW = false, false
	}
}

func (s *seriesState) add(r *store.Reading) {
	s.n++
	if !s.known && !r.Seed {
		if s.lastDaemon != 0 {
			s.spacings = append(s.spacings, r.DaemonMs-s.lastDaemon)
		}
		s.lastDaemon = r.DaemonMs
	}
	if s.do(step{op: 'a', t: r.TimeMs, mw: r.MilliWatts}) && s.live {
		s.lastMW, s.haveMW = r.MilliWatts, true
	}
	if !s.known && (len(s.spacings) >= periodSpacings || len(s.waiting) >= maxWaiting) {
		s.settle()
	}
}

// do applies st to the running energy, or keeps it while the period is
// not known; it reports whether it kept it.
func (s *seriesState) do(st step) (kept bool) {
	if !s.known {
		s.waiting = append(s.waiting, st)
		return true
	}
	switch st.op {
	case 's':
		s.run.Start(st.t)
	case 'a':
		s.run.Add(st.t, st.mw)
	case 't':
		s.run.Through(st.t)
	case 'e':
		s.run.End(st.t)
	}
	return false
}

// settle fixes the period and applies what waited.
func (s *seriesState) settle() {
	s.run.Rule = query.RuleOf(s.key.Kind, query.PeriodOf(s.spacings))
	s.known = true
	for _, st := range s.waiting {
		s.do(st)
	}
	s.waiting, s.spacings = nil, nil
}

// power is the value that holds, if the series has one.
func (s *seriesState) power() (mw int64, ok bool) {
	if !s.known {
		return s.lastMW, s.live && s.haveMW
	}
	return s.run.Power()
}

// counterReading takes a hardware energy counter reading of the series,
// for the ratio of the counter's increase to the integral's since the
// first (or since the counter restarted).
func (s *seriesState) counterReading(cr *store.CounterReading) {
	e := s.run.At(cr.TakenMs)
	cnt := &s.counter
	if !cnt.have || cr.EnergyUJ < cnt.last.EnergyUJ {
		cnt.first, cnt.e0, cnt.have = *cr, e, true
	}
	cnt.last, cnt.e1 = *cr, e
}
