package simulator

import (
	"strconv"
	"sync"
	"time"
)

// sample is one device's reading at one tick.
type sample struct {
	power   int64 // mW: GPU power or CPU package power
	dram    int64 // mW, CPUs only
	hasDRAM bool
}

// subscriber is one live stream connection.
type subscriber struct {
	id   int64
	want []bool      // per device; nil = every device
	ch   chan []byte // JSON payloads waiting to be written
	end  chan struct{}
	// abort, written before end is closed, says to drop the connection
	// instead of ending the response cleanly.
	abort bool
}

func (sub *subscriber) wants(d int) bool { return sub.want == nil || sub.want[d] }

// hub is the poller group and subscriber set of one device kind. The
// poller runs only while there is a subscriber.
type hub struct {
	s      *Server
	kind   string // "gpu" or "cpu"
	n      int    // devices
	period int64  // poll period, ns
	read   func(k int64) []sample

	mu     sync.Mutex
	closed bool
	subs   map[int64]*subscriber
	stop   chan struct{} // closed to stop the running poller; nil when idle
	// Poller state: the values of every device at the last tick, and
	// whether they were ever sent since the poller started.
	sent   []bool
	last   []sample
	lastK  int64
	polled bool // last/lastK hold the running poller's latest tick
	fresh  bool // a subscriber arrived since the last tick (CPU sends all)
}

func newHub(s *Server, kind string, n int, period int64, read func(int64) []sample) *hub {
	return &hub{s: s, kind: kind, n: n, period: period, read: read,
		subs: make(map[int64]*subscriber), sent: make([]bool, n), last: make([]sample, n)}
}

// subscribe registers a stream for the devices in want (nil = all) and
// starts the poller if it is idle. It returns nil once the hub is closed.
func (h *hub) subscribe(want []bool) *subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	sub := &subscriber{id: h.s.nextConn.Add(1), want: want,
		ch: make(chan []byte, h.s.bufSize), end: make(chan struct{})}
	h.subs[sub.id] = sub
	h.fresh = true
	if h.stop == nil {
		h.stop = make(chan struct{})
		clear(h.sent)
		h.polled = false
		h.s.pollers.Add(1)
		go h.poll(h.stop)
	}
	return sub
}

// unsubscribe removes sub if it is still registered, stopping the poller
// with the last subscriber.
func (h *hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[sub.id] == sub {
		h.removeLocked(sub)
	}
}

// endLocked unregisters sub and tells its handler to end the stream,
// abruptly when abort is set.
func (h *hub) endLocked(sub *subscriber, abort bool) {
	sub.abort = abort
	close(sub.end)
	h.removeLocked(sub)
}

func (h *hub) removeLocked(sub *subscriber) {
	delete(h.subs, sub.id)
	if len(h.subs) == 0 && h.stop != nil {
		close(h.stop)
		h.stop = nil
		h.polled = false
	}
}

// close ends every stream cleanly and refuses new ones.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, sub := range h.subs {
		h.endLocked(sub, false)
	}
}

// dropAll aborts every stream and returns how many there were.
func (h *hub) dropAll() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.subs)
	for _, sub := range h.subs {
		h.endLocked(sub, true)
	}
	return n
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// current returns the latest polled tick and values, polling now if the
// poller is idle or has not ticked yet.
func (h *hub) current() (int64, []sample) {
	h.mu.Lock()
	if h.polled {
		k, rs := h.lastK, append([]sample(nil), h.last...)
		h.mu.Unlock()
		return k, rs
	}
	h.mu.Unlock()
	k := floorDiv(h.s.daemonNanos(), h.period)
	return k, h.read(k)
}

// maxLag is how far behind the daemon clock the poller may fall before it
// skips ticks instead of catching up on them.
const maxLag = 5 * time.Second

// poll runs the poller until stop is closed: one tick per grid point of
// the daemon clock, starting with the current one. Like a tokio interval,
// a late poller runs the missed ticks at once, so the stream holds every
// tick and matches the energy counters; only when it is more than maxLag
// behind (a stalled process, a stepped clock) does it skip to the present.
func (h *hub) poll(stop chan struct{}) {
	defer h.s.pollers.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	k := floorDiv(h.s.daemonNanos(), h.period)
	for {
		if !h.tick(k, stop) {
			return
		}
		k++
		for {
			now := h.s.daemonNanos()
			if now-k*h.period > int64(maxLag) {
				k = floorDiv(now, h.period)
			}
			wait := time.Duration(k*h.period - now)
			if wait <= 0 {
				break
			}
			timer.Reset(wait)
			select {
			case <-stop:
				return
			case <-timer.C:
			}
		}
	}
}

// tick polls every device at tick k and broadcasts what must be sent. It
// returns false when the poller was stopped.
func (h *hub) tick(k int64, stop chan struct{}) bool {
	rs := h.read(k)

	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-stop:
		return false
	default:
	}
	var ids []int
	for d, r := range rs {
		if !h.sent[d] || r != h.last[d] || (h.kind == "cpu" && h.fresh) {
			ids = append(ids, d)
			h.sent[d] = true
		}
	}
	h.last, h.lastK, h.polled, h.fresh = rs, k, true, false
	if len(ids) == 0 {
		return true
	}

	// Encode and queue the events.
	ts := floorDiv(k*h.period, 1e6)
	if h.s.cfg.Format == FormatSample {
		payloads := make([][]byte, h.n)
		for _, d := range ids {
			payloads[d] = h.appendSample(nil, ts, d, rs[d])
		}
		for _, sub := range h.subs {
			for _, d := range ids {
				if sub.wants(d) && !h.sendLocked(sub, payloads[d]) {
					break
				}
			}
		}
		return true
	}
	for _, sub := range h.subs {
		var mine []int
		for _, d := range ids {
			if sub.wants(d) {
				mine = append(mine, d)
			}
		}
		if len(mine) > 0 {
			h.sendLocked(sub, h.appendSnapshot(nil, ts, mine, rs))
		}
	}
	return true
}

// sendLocked queues b for sub without blocking. A subscriber whose buffer
// is full is dropped, and sendLocked returns false.
func (h *hub) sendLocked(sub *subscriber, b []byte) bool {
	select {
	case sub.ch <- b:
		return true
	default:
		h.endLocked(sub, true)
		return false
	}
}

// appendSample appends a per-device event:
// {"timestamp_ms":N,"gpu_id":0,"power_mw":75000} or
// {"timestamp_ms":N,"cpu_id":0,"cpu_mw":85000,"dram_mw":12000}.
func (h *hub) appendSample(b []byte, ts int64, d int, r sample) []byte {
	b = append(b, `{"timestamp_ms":`...)
	b = strconv.AppendInt(b, ts, 10)
	if h.kind == "gpu" {
		b = append(b, `,"gpu_id":`...)
		b = strconv.AppendInt(b, int64(d), 10)
		b = append(b, `,"power_mw":`...)
		b = strconv.AppendInt(b, r.power, 10)
		return append(b, '}')
	}
	b = append(b, `,"cpu_id":`...)
	b = strconv.AppendInt(b, int64(d), 10)
	b = append(b, ',')
	b = appendCPUFields(b, r)
	return append(b, '}')
}

// appendSnapshot appends an all-devices event holding devices ids:
// {"timestamp_ms":N,"power_mw":{"0":75000}} or
// {"timestamp_ms":N,"power_mw":{"0":{"cpu_mw":85000,"dram_mw":null}}}.
func (h *hub) appendSnapshot(b []byte, ts int64, ids []int, rs []sample) []byte {
	b = append(b, `{"timestamp_ms":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"power_mw":`...)
	b = h.appendPowerMap(b, ids, rs)
	return append(b, '}')
}

// appendPowerMap appends {"0":75000,...} for GPUs or
// {"0":{"cpu_mw":85000,"dram_mw":null},...} for CPUs.
func (h *hub) appendPowerMap(b []byte, ids []int, rs []sample) []byte {
	b = append(b, '{')
	for i, d := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, int64(d), 10)
		b = append(b, `":`...)
		if h.kind == "gpu" {
			b = strconv.AppendInt(b, rs[d].power, 10)
			continue
		}
		b = append(b, '{')
		b = appendCPUFields(b, rs[d])
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendCPUFields appends "cpu_mw":N,"dram_mw":N|null.
func appendCPUFields(b []byte, r sample) []byte {
	b = append(b, `"cpu_mw":`...)
	b = strconv.AppendInt(b, r.power, 10)
	b = append(b, `,"dram_mw":`...)
	if !r.hasDRAM {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, r.dram, 10)
}
