package simulator

import (
	"slices"
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

// subscriber is one live stream connection. Like a zeusd stream, which
// reads tokio watch channels, it holds at most one unwritten value per
// slot: one slot per device in the sample format, one slot for the whole
// snapshot in the snapshot format. A newer value replaces an unwritten
// one, so a connection that cannot keep up with the pollers silently
// loses intermediate values; it never blocks them, and it is never
// dropped for being slow.
type subscriber struct {
	id   int64
	want []bool // per device; nil = every device
	ids  []int  // the devices it wants, in order
	// slots, guarded by the hub's mutex, hold the values waiting to be
	// written, each with its fill order.
	slots []slot
	wake  chan struct{} // capacity 1: a slot was filled
	end   chan struct{}
	// abort, written before end is closed, says to drop the connection
	// instead of ending the response cleanly.
	abort bool
}

// slot is one unwritten value of a subscriber.
type slot struct {
	data    []byte // JSON payload; nil when empty
	seq     uint64 // the hub's fill counter when data was stored
	skipped int    // values replaced in this slot since its last write
}

func (sub *subscriber) wants(d int) bool { return sub.want == nil || sub.want[d] }

// hub is the poller group and subscriber set of one device kind. The
// poller runs only while there is a subscriber.
type hub struct {
	s        *Server
	kind     string // "gpu" or "cpu"
	n        int    // devices
	period   int64  // poll period, ns
	snapshot bool   // FormatSnapshot: one slot per subscriber
	read     func(k int64) []sample

	mu     sync.Mutex
	closed bool
	subs   map[int64]*subscriber
	stop   chan struct{} // closed to stop the running poller; nil when idle
	fills  uint64        // slot fill counter
	// Poller state: the values of every device at the last tick, and
	// whether they were ever sent since the poller started.
	sent   []bool
	last   []sample
	lastK  int64
	polled bool // last/lastK hold the running poller's latest tick
}

func newHub(s *Server, kind string, n int, period int64, read func(int64) []sample) *hub {
	return &hub{s: s, kind: kind, n: n, period: period, snapshot: s.cfg.Format == FormatSnapshot, read: read,
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
	slots := h.n
	if h.snapshot {
		slots = 1
	}
	sub := &subscriber{id: h.s.nextConn.Add(1), want: want, ids: seq(h.n), slots: make([]slot, slots),
		wake: make(chan struct{}, 1), end: make(chan struct{})}
	if want != nil {
		sub.ids = slices.DeleteFunc(sub.ids, func(d int) bool { return !want[d] })
	}
	h.subs[sub.id] = sub
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
// the daemon clock. A GPU poller starts with the current grid point; a
// CPU poller, like zeusd's RAPL poller that primes its counters first,
// one period later. Like a tokio interval, a late poller runs the missed
// ticks at once, so the energy counters and the values polled agree; a
// stream that cannot take each value in time keeps only the latest. Only
// when the poller is more than maxLag behind (a stalled process, a
// stepped clock) does it skip to the present.
func (h *hub) poll(stop chan struct{}) {
	defer h.s.pollers.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	k := floorDiv(h.s.daemonNanos(), h.period)
	if h.kind == "cpu" {
		k++
	}
	for {
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
		if !h.tick(k, stop) {
			return
		}
		k++
	}
}

// tick polls every device at tick k and hands what must be sent to the
// subscribers' slots. It returns false when the poller was stopped.
func (h *hub) tick(k int64, stop chan struct{}) bool {
	rs := h.read(k)

	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-stop:
		return false
	default:
	}
	// Like zeusd's pollers, send a device on the first tick and on change.
	var ids []int
	for d, r := range rs {
		if !h.sent[d] || r != h.last[d] {
			ids = append(ids, d)
			h.sent[d] = true
		}
	}
	h.last, h.lastK, h.polled = rs, k, true
	if len(ids) == 0 {
		return true
	}

	ts := floorDiv(k*h.period, 1e6)
	if !h.snapshot {
		for _, d := range ids {
			b := h.appendSample(nil, ts, d, rs[d])
			for _, sub := range h.subs {
				if sub.wants(d) {
					h.putLocked(sub, d, b)
				}
			}
		}
		return true
	}
	// The older daemons polled every device into one snapshot, sent it
	// when any device changed and filtered it per stream: every event
	// holds every device the stream asked for, changed or not.
	for _, sub := range h.subs {
		h.putLocked(sub, 0, h.appendSnapshot(nil, ts, sub.ids, rs))
	}
	return true
}

// putLocked stores b in slot i of sub, replacing a value not yet written,
// and wakes sub's handler.
func (h *hub) putLocked(sub *subscriber, i int, b []byte) {
	sl := &sub.slots[i]
	if sl.data != nil {
		sl.skipped++
	}
	h.fills++
	sl.data, sl.seq = b, h.fills
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

// take empties sub's oldest filled slot and returns its value and how many
// values that slot lost before it; ok is false when every slot is empty.
func (h *hub) take(sub *subscriber) (data []byte, skipped int, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	oldest := -1
	for i, sl := range sub.slots {
		if sl.data != nil && (oldest < 0 || sl.seq < sub.slots[oldest].seq) {
			oldest = i
		}
	}
	if oldest < 0 {
		return nil, 0, false
	}
	sl := &sub.slots[oldest]
	data, skipped = sl.data, sl.skipped
	*sl = slot{}
	return data, skipped, true
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
	return appendIDMap(b, ids, func(b []byte, d int) []byte {
		if h.kind == "gpu" {
			return strconv.AppendInt(b, rs[d].power, 10)
		}
		return append(appendCPUFields(append(b, '{'), rs[d]), '}')
	})
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
