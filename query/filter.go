package query

import (
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
		var f DeviceFilter
		if err := f.UnmarshalText([]byte(part)); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// String is the filter as ParseDevices reads it: "gpu" or "gpu:0".
func (f DeviceFilter) String() string {
	if f.AnyDevice {
		return f.Kind.String()
	}
	return f.Kind.String() + ":" + strconv.Itoa(int(f.Device))
}

// MarshalText implements encoding.TextMarshaler with String's form.
func (f DeviceFilter) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText parses one device of ParseDevices' list.
func (f *DeviceFilter) UnmarshalText(text []byte) error {
	part := strings.TrimSpace(string(text))
	kindStr, devStr, hasDev := strings.Cut(part, ":")
	kind, err := store.ParseKind(kindStr)
	if err != nil {
		return Invalid("device %q: %w", part, err)
	}
	*f = DeviceFilter{Kind: kind, AnyDevice: !hasDev}
	if hasDev {
		n, err := strconv.ParseInt(devStr, 10, 32)
		if err != nil || n < 0 {
			return Invalid("device %q: %q is not a device index", part, devStr)
		}
		f.Device = int32(n)
	}
	return nil
}

func (f DeviceFilter) match(k store.SeriesKey) bool {
	kindOK := f.Kind == k.Kind || (f.Kind == store.KindCPU && k.Kind == store.KindDRAM)
	return kindOK && (f.AnyDevice || f.Device == k.Device)
}

// Filter narrows what a read covers: a time range and the series. The
// zero value covers everything.
type Filter struct {
	Range     TimeRange
	Endpoints []string
	// EndpointAliases gives an Endpoints entry the other name it may have
	// in the file ("node1" → "node1:4938"): where the file lacks the
	// entry, its alias stands in.
	EndpointAliases map[string]string
	Devices         []DeviceFilter
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
