package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wattrec/wattrec/store"
)

// stopCounterTimeout bounds the last counter read, which runs after the
// client's context was cancelled.
const stopCounterTimeout = 2 * time.Second

// counters is one endpoint's hardware energy counter state. mu serialises
// the endpoint's counter reads, so the device lists need no other lock.
type counters struct {
	mu   sync.Mutex
	gpus []int // streamed GPUs with a counter that the daemon did not refuse
	cpus []int // streamed CPU packages
}

// any reports whether the endpoint has a counter to read. It is called
// before the endpoint's counter goroutine starts.
func (ct *counters) any() bool { return len(ct.gpus) > 0 || len(ct.cpus) > 0 }

// initCounters picks the devices whose counters are read (pickCounters)
// and logs the GPUs left out.
func (c *Client) initCounters(ep *endpoint) {
	for _, id := range ep.pickCounters() {
		c.Logger.Info("GPU has no energy counter; not reading it", "endpoint", ep.srv.Endpoint(), "gpu", id)
	}
}

// pickCounters picks the devices whose counters are read: the GPUs read
// that /discover does not say lack one (zeusd 0.5.0 does not say either
// way: those are tried, and dropped if the daemon refuses), and the CPU
// packages read. It returns the GPUs left out.
func (ep *endpoint) pickCounters() (without []int) {
	has := map[int]bool{}
	for _, g := range ep.info.Discovery.GPUs {
		has[g.ID] = g.CumulativeEnergyAvailable == nil || *g.CumulativeEnergyAvailable
	}
	ep.ctr.gpus = nil
	for _, id := range ep.info.GPUs {
		if has[id] {
			ep.ctr.gpus = append(ep.ctr.gpus, id)
		} else {
			without = append(without, id)
		}
	}
	ep.ctr.cpus = slices.Clone(ep.info.CPUs)
	return without
}

// ReadCounters reads the hardware energy counters of every running
// endpoint now, hands the readings, marked with trigger, to the Sink
// before it returns, and returns them too. Endpoints are read at once;
// the error joins the failures of each. It returns ErrNotRunning before Start has succeeded
// and once Stop was called; Stop cancels a read in flight and waits for
// it.
func (c *Client) ReadCounters(ctx context.Context, trigger store.CounterTrigger) ([]store.CounterReading, error) {
	if !trigger.Valid() {
		return nil, fmt.Errorf("invalid counter trigger %d", trigger)
	}
	c.mu.Lock()
	if c.eps == nil || c.closing || c.runCtx.Err() != nil {
		c.mu.Unlock()
		return nil, ErrNotRunning
	}
	c.reads.Add(1) // before Stop's Wait: closing is false under the same lock
	eps, runCtx := c.eps, c.runCtx
	c.mu.Unlock()
	defer c.reads.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(runCtx, cancel)()

	errs := make([]error, len(eps))
	got := make([][]store.CounterReading, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		if !ep.ready.Load() {
			continue // still being retried (KeepTrying)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = c.readCounters(ctx, ep, trigger)
		}()
	}
	wg.Wait()
	return slices.Concat(got...), errors.Join(errs...)
}

// followCounters reads ep's counters once at start, every CounterInterval
// and a last time when ctx ends. A failed read is logged when its error
// differs from the last one logged, and the loop goes on.
func (c *Client) followCounters(ctx context.Context, ep *endpoint) {
	log := c.Logger.With("endpoint", ep.srv.Endpoint())
	var lastErr string
	failures := 0
	read := func(ctx context.Context, trigger store.CounterTrigger) {
		_, err := c.readCounters(ctx, ep, trigger)
		switch {
		case err == nil:
			if failures > 0 {
				log.Info("energy counter reads recovered", "failures", failures)
			}
			lastErr, failures = "", 0
		case ctx.Err() != nil:
			// Cancelled mid-read: the stop read follows.
		default:
			failures++
			if msg := err.Error(); msg != lastErr {
				log.Warn("energy counter read failed", "trigger", trigger.String(), "err", err)
				lastErr = msg
			}
		}
	}

	read(ctx, store.TriggerStart)
	var tick <-chan time.Time
	if c.CounterInterval > 0 {
		t := time.NewTicker(c.CounterInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			read(ctx, store.TriggerPeriodic)
		case <-ctx.Done():
			// ctx is already cancelled, but the stop reading closes the
			// recording's last counter interval: read it with a short
			// detached context. Stop waits for this goroutine, so the
			// reading reaches the Sink before Stop returns.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopCounterTimeout)
			read(sctx, store.TriggerStop)
			cancel()
			return
		}
	}
}

// readCounters reads ep's counters, emits what it got and returns the
// failures.
func (c *Client) readCounters(ctx context.Context, ep *endpoint, trigger store.CounterTrigger) ([]store.CounterReading, error) {
	ep.ctr.mu.Lock() // the emits follow the reads' order
	defer ep.ctr.mu.Unlock()
	out, err := ep.readCounters(ctx, c.Now, c.Logger, trigger)
	read := slices.Clone(out) // the Sink owns out
	if len(out) > 0 {
		c.emit(store.Batch{Counters: out})
	}
	return read, err
}

// readCounters reads ep's GPU and CPU counters, marked with trigger, and
// returns the readings and the failures. now is the clock of the
// readings' times; log hears of GPUs dropped for good. ep.ctr.mu is held.
func (ep *endpoint) readCounters(ctx context.Context, now func() time.Time, log *slog.Logger, trigger store.CounterTrigger) ([]store.CounterReading, error) {
	var out []store.CounterReading
	var gerr, cerr error
	if len(ep.ctr.gpus) > 0 {
		out, gerr = ep.readGPUCounters(ctx, now, log, trigger, out)
	}
	if len(ep.ctr.cpus) > 0 {
		path := "/cpu/get_cumulative_energy?cpu=true&dram=true&cpu_ids=" + joinIDs(ep.ctr.cpus)
		out, cerr = ep.sampleCounters(ctx, now, path, trigger, out, func(body []byte) ([]counterValue, error) {
			return decodeCPUEnergy(body, ep.ctr.cpus)
		})
	}
	return out, errors.Join(gerr, cerr)
}

// readGPUCounters reads the GPU counters. zeusd answers 400 for a whole
// request when one of its GPUs has no counter, though /discover said it
// has, or is gone (the daemon restarted without it): then each GPU is
// asked alone. Those refused for want of a counter are dropped for good;
// a GPU the daemon does not have now is asked again at the next read, so
// its counter resumes when it is back.
func (ep *endpoint) readGPUCounters(ctx context.Context, now func() time.Time, log *slog.Logger, trigger store.CounterTrigger, out []store.CounterReading) ([]store.CounterReading, error) {
	read := func(ids []int) ([]store.CounterReading, error) {
		return ep.sampleCounters(ctx, now, "/gpu/get_cumulative_energy?gpu_ids="+joinIDs(ids), trigger, out, func(body []byte) ([]counterValue, error) {
			return decodeGPUEnergy(body, ids)
		})
	}
	got, err := read(ep.ctr.gpus)
	if !isBadRequest(err) {
		return got, err
	}
	var keep []int
	var errs []error
	for _, id := range ep.ctr.gpus {
		if len(ep.ctr.gpus) > 1 {
			got, err = read([]int{id})
		}
		if isBadRequest(err) && !isUnknownDevice(err) {
			log.Info("GPU energy counter refused by the daemon; not asking for it again", "endpoint", ep.srv.Endpoint(), "gpu", id, "err", err)
			continue
		}
		keep, out, errs = append(keep, id), got, append(errs, err)
	}
	ep.ctr.gpus = keep
	return out, errors.Join(errs...)
}

// sampleCounters does one get_cumulative_energy request, decodes the
// answer with decode and appends the readings to out. A reading's time is
// the midpoint of the request's send and receive on the clock now.
func (ep *endpoint) sampleCounters(ctx context.Context, now func() time.Time, path string, trigger store.CounterTrigger,
	out []store.CounterReading, decode func([]byte) ([]counterValue, error)) ([]store.CounterReading, error) {
	var body json.RawMessage
	sent := now()
	if _, err := ep.conn.getJSON(ctx, path, true, &body); err != nil {
		return out, err
	}
	rtt := now().Sub(sent)
	if rtt < 0 {
		return out, fmt.Errorf("%s %s: negative round trip %v: the local clock stepped", ep.srv.Endpoint(), path, rtt)
	}
	vals, err := decode(body)
	if err != nil {
		err = fmt.Errorf("%s %s: %w", ep.srv.Endpoint(), path, err)
	}
	taken := roundMs(sent.UnixMicro() + rtt.Microseconds()/2)
	for _, v := range vals {
		out = append(out, store.CounterReading{Endpoint: ep.srv.Endpoint(), Kind: v.Kind, Device: v.Device,
			TakenMs: taken, RTTUs: rtt.Microseconds(), EnergyUJ: v.EnergyUJ, Trigger: trigger})
	}
	return out, err
}

// counterValue is one counter from a get_cumulative_energy answer, in µJ.
type counterValue struct {
	Kind     store.Kind
	Device   int32
	EnergyUJ int64
}

// energyField is one energy counter of a device in a
// get_cumulative_energy answer.
type energyField struct {
	kind     store.Kind
	name     string // JSON field
	toUJ     int64  // its unit in µJ
	required bool   // a missing field is an error (null is always "no value")
}

var (
	gpuEnergyFields = []energyField{{store.KindGPU, "energy_mj", 1000, true}}
	cpuEnergyFields = []energyField{{store.KindCPU, "cpu_energy_uj", 1, false}, {store.KindDRAM, "dram_energy_uj", 1, false}}
)

// decodeGPUEnergy decodes {"0":{"energy_mj":123456},...} for the GPUs ids,
// in µJ. A GPU whose energy_mj is null gives no value; one missing from
// the answer is an error, but the others still count. Devices not asked
// for are ignored.
func decodeGPUEnergy(body []byte, ids []int) ([]counterValue, error) {
	return decodeEnergy(body, ids, "GPU", gpuEnergyFields)
}

// decodeCPUEnergy decodes
// {"0":{"cpu_energy_uj":123456,"dram_energy_uj":78901},...} for the CPU
// packages ids: a store.KindCPU and a store.KindDRAM value per package,
// each only where its field is not null. A package missing from the answer
// is an error, but the others still count. Packages not asked for are
// ignored.
func decodeCPUEnergy(body []byte, ids []int) ([]counterValue, error) {
	return decodeEnergy(body, ids, "CPU", cpuEnergyFields)
}

// decodeEnergy reads fields of the devices ids from an answer keyed by
// device index, in µJ.
func decodeEnergy(body []byte, ids []int, device string, fields []energyField) ([]counterValue, error) {
	var ans map[string]map[string]json.RawMessage
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("decode answer: %v", err)
	}
	var out []counterValue
	var errs []error
	for _, id := range ids {
		dev, ok := ans[strconv.Itoa(id)]
		if !ok || dev == nil {
			errs = append(errs, fmt.Errorf("answer has no %s %d", device, id))
			continue
		}
		for _, f := range fields {
			raw := dev[f.name]
			if (raw == nil && !f.required) || (raw != nil && isNull(raw)) {
				continue // the domain is absent, or was not asked for
			}
			v, err := integer(fmt.Sprintf("%s %d %s", device, id, f.name), raw, 0, math.MaxInt64/f.toUJ)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, counterValue{f.kind, int32(id), v * f.toUJ})
		}
	}
	return out, errors.Join(errs...)
}

// isBadRequest reports whether err is zeusd's 400 answer.
func isBadRequest(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusBadRequest
}

// joinIDs formats ids as zeusd's comma-separated id list.
func joinIDs(ids []int) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(id)
	}
	return strings.Join(parts, ",")
}

// roundMs rounds µs to the nearest ms, halves away from zero.
func roundMs(us int64) int64 {
	ms, r := us/1000, us%1000
	switch {
	case r >= 500:
		ms++
	case r <= -500:
		ms--
	}
	return ms
}
