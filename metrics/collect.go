package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Describe sends the descriptions of the Collector's own metrics.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range ownDescs {
		ch <- d
	}
}

// Collect sends the metrics as of the last commit, and the file's size
// and the senders' state as of now.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	c.mu.Lock()
	for _, s := range c.series {
		if mw, ok := s.power(); ok {
			gauge(powerDesc, float64(mw)/1e3, s.labels...)
		}
		counter(energyDesc, float64(s.run.EnergyUJ())/1e6, s.labels...)
		counter(readingsDesc, float64(s.n), s.labels...)
		if cnt := &s.counter; cnt.have && cnt.e1 > cnt.e0 {
			gauge(ratioDesc, float64(cnt.last.EnergyUJ-cnt.first.EnergyUJ)/float64(cnt.e1-cnt.e0), s.labels...)
		}
	}
	for _, st := range c.streams {
		up := 0.0
		if st.live() {
			up = 1
		}
		gauge(upDesc, up, st.labels...)
		counter(sessionsDesc, float64(st.sessions), st.labels...)
		counter(reconnDesc, float64(st.reconnects), st.labels...)
		counter(gapsDesc, float64(st.gaps), st.labels...)
		counter(gapSecDesc, float64(st.gapMs)/1e3, st.labels...)
		events, malformed := st.events, st.malformed
		if st.has {
			events, malformed = events+st.cur.Events, malformed+st.cur.Malformed
		}
		counter(eventsDesc, float64(events), st.labels...)
		counter(malDesc, float64(malformed), st.labels...)
	}
	for ep, ce := range c.clocks {
		gauge(offsetDesc, float64(ce.OffsetUs)/1e6, ep)
		gauge(rttDesc, float64(ce.RTTUs)/1e6, ep)
	}
	gauge(pendingDesc, float64(c.pending))
	c.mu.Unlock()

	if c.Size != nil {
		if n, err := c.Size(); err == nil {
			gauge(bytesDesc, float64(n))
		} else {
			ch <- prometheus.NewInvalidMetric(bytesDesc, err)
		}
	}
	if c.Pushes != nil {
		for _, p := range c.Pushes() {
			counter(pushSamples, float64(p.Samples), p.Receiver)
			counter(pushSkipped, float64(p.SkippedSamples), p.Receiver)
			counter(pushRetries, float64(p.Retries), p.Receiver)
			gauge(pushPosition, float64(p.ThroughMs)/1e3, p.Receiver)
		}
	}
}
