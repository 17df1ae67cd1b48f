package recorder

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/wattrec/wattrec/store"
)

// Zeusd is one zeusd daemon for one-shot reads, without a stream or a
// store: the Go counterpart of zeus's ZeusdClient. Its reads ask for the
// devices its Server selects, as DialZeusd resolved them. It is safe for
// concurrent use.
type Zeusd struct {
	ep *endpoint
}

// DialZeusd checks srv's daemon as Client.Start checks an endpoint, clock
// estimate aside: GET /discover, GET /auth/whoami when the daemon requires
// auth and token is not "" (it is sent only as a bearer header), and
// srv's selections. Its errors wrap the same sentinels as Start's:
// ErrUnreachable, ErrMissingDevice, ErrMissingScope, ErrTokenRequired.
func DialZeusd(ctx context.Context, srv Server, token string) (*Zeusd, error) {
	ep := &endpoint{srv: srv, conn: newConn(srv, token, DefaultRequestTimeout)}
	if _, err := ep.check(ctx); err != nil {
		ep.conn.close()
		return nil, err
	}
	ep.pickCounters()
	return &Zeusd{ep: ep}, nil
}

// Close releases the daemon's idle connections.
func (z *Zeusd) Close() { z.ep.conn.close() }

// Info returns what DialZeusd's checks found, as a deep copy.
func (z *Zeusd) Info() Info { return z.ep.info.clone() }

// Power reads the current power of the devices read (GET /gpu/get_power,
// GET /cpu/get_power): a Value per GPU, then per CPU package
// (store.KindCPU) and DRAM domain (store.KindDRAM), in milliwatts, each
// kind by device, with the daemon's timestamp (DaemonMs, on its own
// clock: see Time). zeusd answers for CPUs after one poll period (100 ms
// at its default 10 Hz). The error joins the failures of both kinds; the
// values of the other come back with it.
func (z *Zeusd) Power(ctx context.Context) ([]Value, error) {
	var out []Value
	var errs []error
	for _, k := range []struct {
		path   string
		ids    []int
		decode func([]Value, []byte) ([]Value, error)
	}{
		{"/gpu/get_power?gpu_ids=", z.ep.info.GPUs, decodeGPU},
		{"/cpu/get_power?cpu_ids=", z.ep.info.CPUs, decodeCPU},
	} {
		if k.ids == nil {
			continue
		}
		vals, err := z.ep.conn.getPower(ctx, k.path+joinIDs(k.ids), k.decode)
		out = append(out, vals...)
		errs = append(errs, unreachable(ctx, err))
	}
	return out, errors.Join(errs...)
}

// Energy reads the hardware energy counters of the devices read
// (GET /gpu/get_cumulative_energy, GET /cpu/get_cumulative_energy) as
// Client.ReadCounters does: in µJ since an origin of the daemon's (a
// GPU's driver load, a CPU's daemon start), so only the difference of two
// readings is energy; TakenMs is the local clock; the trigger is
// store.TriggerMark (on request). GPUs without a counter are left out
// (those /discover says lack one, and those the daemon refuses once).
// The error joins the failures; the readings got come back with it.
func (z *Zeusd) Energy(ctx context.Context) ([]store.CounterReading, error) {
	z.ep.ctr.mu.Lock()
	defer z.ep.ctr.mu.Unlock()
	out, err := z.ep.readCounters(ctx, time.Now, slog.New(slog.DiscardHandler), store.TriggerMark)
	return out, unreachable(ctx, err)
}

// Time does one round trip to GET /time: the daemon's clock (DaemonMs,
// Unix ms) read between Sent and Received on the local clock.
// EstimateClock turns a few of these into the daemon's offset.
func (z *Zeusd) Time(ctx context.Context) (ClockSample, error) {
	s, err := z.ep.conn.clockSamples(ctx, 1, time.Now)
	if err != nil {
		return ClockSample{}, unreachable(ctx, err)
	}
	return s[0], nil
}
