package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/wattrec/wattrec/store"
)

// DeviceFilter selects series by kind and device. "cpu:N" also selects
// the DRAM series of package N; "gpu" alone selects every GPU.
type DeviceFilter struct {
	Kind      store.Kind
	Device    int32
	AnyDevice bool
}

// ParseDevices parses a comma-separated list such as "gpu:0,gpu:1,cpu:0",
// "dram:1" or "gpu".
func ParseDevices(s string) ([]DeviceFilter, error) {
	var out []DeviceFilter
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		kindStr, devStr, hasDev := strings.Cut(part, ":")
		kind, err := store.ParseKind(kindStr)
		if err != nil {
			return nil, fmt.Errorf("device %q: %w", part, err)
		}
		f := DeviceFilter{Kind: kind, AnyDevice: !hasDev}
		if hasDev {
			n, err := strconv.ParseInt(devStr, 10, 32)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("device %q: %q is not a device index", part, devStr)
			}
			f.Device = int32(n)
		}
		out = append(out, f)
	}
	return out, nil
}

func (f DeviceFilter) match(k store.SeriesKey) bool {
	kindOK := f.Kind == k.Kind || (f.Kind == store.KindCPU && k.Kind == store.KindDRAM)
	return kindOK && (f.AnyDevice || f.Device == k.Device)
}

// Filter narrows what a read covers. The zero value covers everything.
type Filter struct {
	FromMs, ToMs int64 // half-open [FromMs, ToMs); both zero = all time
	// FromStart and ToEnd stand for the first and last millisecond of the
	// recording; Resolve replaces them with times.
	FromStart, ToEnd bool
	Endpoints        []string
	Devices          []DeviceFilter
}

// Resolve replaces FromStart and ToEnd with the recording's span.
func (f Filter) Resolve(ctx context.Context, db *store.DB) (Filter, error) {
	if !f.FromStart && !f.ToEnd {
		return f, nil
	}
	from, to, err := Span(ctx, db)
	if err != nil {
		return f, err
	}
	if f.FromStart {
		f.FromMs, f.FromStart = from, false
	}
	if f.ToEnd {
		f.ToMs, f.ToEnd = to, false
	}
	if f.ToMs <= f.FromMs {
		return f, fmt.Errorf("empty time range: %s → %s", FormatTime(f.FromMs), FormatTime(f.ToMs))
	}
	return f, nil
}

// Range returns the filter's time range, all time when unset.
func (f Filter) Range() (from, to int64) {
	if f.FromMs == 0 && f.ToMs == 0 {
		return math.MinInt64, math.MaxInt64
	}
	return f.FromMs, f.ToMs
}

// Match reports whether series k passes the endpoint and device filters.
func (f Filter) Match(k store.SeriesKey) bool {
	if len(f.Endpoints) > 0 && !slices.Contains(f.Endpoints, k.Endpoint) {
		return false
	}
	if len(f.Devices) == 0 {
		return true
	}
	return slices.ContainsFunc(f.Devices, func(d DeviceFilter) bool { return d.match(k) })
}

// Series lists the series of db that pass f, ordered by endpoint, kind and
// device. An endpoint filter naming an endpoint the file lacks is an error
// that lists the ones it has.
func (f Filter) Series(ctx context.Context, db *store.DB) ([]store.SeriesStats, error) {
	if f.FromStart || f.ToEnd {
		return nil, errors.New("filter: resolve start/end first")
	}
	if f.FromMs != 0 || f.ToMs != 0 {
		if f.ToMs <= f.FromMs {
			return nil, fmt.Errorf("empty time range: --to %s is not after --from %s", FormatTime(f.ToMs), FormatTime(f.FromMs))
		}
	}
	eps, err := db.Endpoints(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range eps {
		names = append(names, e.Endpoint)
	}
	for _, want := range f.Endpoints {
		if !slices.Contains(names, want) {
			return nil, fmt.Errorf("endpoint %q is not in %s (it has: %s)", want, db.Path(), strings.Join(names, ", "))
		}
	}
	all, err := db.Series(ctx, "", false)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, s := range all {
		if f.Match(s.SeriesKey) {
			out = append(out, s)
		}
	}
	return out, nil
}
