package recorder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// API groups and scopes that gate the read endpoints.
const (
	groupGPURead = "gpu-read"
	groupCPURead = "cpu-read"
)

// Discovery is zeusd's GET /discover answer.
type Discovery struct {
	GPUs             []GPUInfo `json:"gpus"`
	CPUs             []CPUInfo `json:"cpus"`
	EnabledAPIGroups []string  `json:"enabled_api_groups"`
	AuthRequired     bool      `json:"auth_required"`
}

// GPUInfo is one GPU in a Discovery.
type GPUInfo struct {
	ID         int    `json:"id"`
	Name       string `json:"name"`
	PCIAddress string `json:"pci_address"` // "" from released zeusd 0.5.0
	// CumulativeEnergyAvailable is nil when the daemon does not say
	// (released zeusd 0.5.0): unknown, so the counter is tried.
	CumulativeEnergyAvailable *bool `json:"cumulative_energy_available"`
}

// CPUInfo is one CPU package in a Discovery.
type CPUInfo struct {
	ID            int  `json:"id"`
	DRAMAvailable bool `json:"dram_available"`
}

// clone returns a deep copy of d.
func (d Discovery) clone() Discovery {
	d.GPUs = slices.Clone(d.GPUs)
	for i, g := range d.GPUs {
		if g.CumulativeEnergyAvailable != nil {
			v := *g.CumulativeEnergyAvailable
			d.GPUs[i].CumulativeEnergyAvailable = &v
		}
	}
	d.CPUs = slices.Clone(d.CPUs)
	d.EnabledAPIGroups = slices.Clone(d.EnabledAPIGroups)
	return d
}

func (d *Discovery) gpuIDs() []int {
	ids := make([]int, len(d.GPUs))
	for i, g := range d.GPUs {
		ids[i] = g.ID
	}
	slices.Sort(ids)
	return ids
}

func (d *Discovery) cpuIDs() []int {
	ids := make([]int, len(d.CPUs))
	for i, c := range d.CPUs {
		ids[i] = c.ID
	}
	slices.Sort(ids)
	return ids
}

// Access is what the recorder may read from a daemon: its enabled API
// groups and, when it requires auth, whether a token was given and which
// scopes it holds.
type Access struct {
	Groups       []string
	AuthRequired bool
	HasToken     bool
	Scopes       []string
}

// missing returns why group cannot be read, wrapping ErrMissingScope (and
// ErrTokenRequired for want of a token), or nil when it can.
func (a Access) missing(group string) error {
	switch {
	case !slices.Contains(a.Groups, group):
		return fmt.Errorf("%w %q: the API group is not enabled on the daemon (enabled: [%s])", ErrMissingScope, group, strings.Join(a.Groups, ", "))
	case a.AuthRequired && !a.HasToken:
		return fmt.Errorf("%w %q: %w", ErrMissingScope, group, ErrTokenRequired)
	case a.AuthRequired && !slices.Contains(a.Scopes, group):
		return fmt.Errorf("%w %q: the token lacks it (it has [%s])", ErrMissingScope, group, strings.Join(a.Scopes, ", "))
	}
	return nil
}

// Resolve applies the zeus client's selection rules for one kind (kind is
// "GPU" or "CPU", group its API group) on endpoint. It returns the devices
// to read, or nil and the reason the kind is skipped, or an error when
// an explicit selection cannot be honoured: indices the daemon does not
// have (ErrMissingDevice), checked first as zeus does, then a group or
// scope it may not read (ErrMissingScope, and ErrTokenRequired for want
// of a token).
func Resolve(endpoint, kind, group string, sel Selection, available []int, acc Access) (ids []int, skip string, err error) {
	ids, reason, err := resolve(endpoint, kind, group, sel, available, acc)
	if reason != nil {
		skip = reason.Error()
	}
	return ids, skip, err
}

// resolve is Resolve with the skip reason as an error, so that a skip for
// a missing scope can wrap ErrMissingScope too.
func resolve(endpoint, kind, group string, sel Selection, available []int, acc Access) (ids []int, skip, err error) {
	if sel.IsNone() {
		return nil, errors.New(kind + "s not selected (none)"), nil
	}
	// zeusd lists no devices of a kind whose group is off: an empty list
	// names the reason too.
	denied := acc.missing(group)
	none := fmt.Errorf("the daemon has no %ss", kind)
	if denied != nil {
		none = fmt.Errorf("the daemon lists no %ss (%w)", kind, denied)
	}
	if !sel.Set { // every device, or skip quietly
		switch {
		case len(available) == 0:
			return nil, none, nil
		case denied != nil:
			return nil, denied, nil
		}
		return slices.Clone(available), nil, nil
	}
	refuse := func(reason error) ([]int, error, error) {
		return nil, nil, fmt.Errorf("endpoint %s: cannot read %ss %s: %w", endpoint, kind, sel.String(), reason)
	}
	var missing []int
	for _, id := range sel.IDs {
		if !slices.Contains(available, id) {
			missing = append(missing, id)
		}
	}
	switch {
	case len(missing) > 0 && len(available) == 0:
		return refuse(fmt.Errorf("%w %s: %w", ErrMissingDevice, intList(missing), none))
	case len(missing) > 0:
		return refuse(fmt.Errorf("%w %s: the daemon has %ss %s", ErrMissingDevice, intList(missing), kind, intList(available)))
	case denied != nil:
		return refuse(denied)
	}
	return slices.Clone(sel.IDs), nil, nil
}

func intList(ids []int) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Info is what an endpoint's checks found: the daemon's /discover answer,
// what the token may read, and the devices read from it.
type Info struct {
	Endpoint  string
	Discovery Discovery
	Access    Access
	// Subject and TokenExpiry are the token's, as /auth/whoami gave them:
	// empty without a token or when the daemon has auth off; a zero
	// TokenExpiry is a token that never expires.
	Subject     string
	TokenExpiry time.Time
	// GPUs and CPUs are the devices read (streamed by a Client); nil when
	// the kind is skipped, and then GPUSkip or CPUSkip says why.
	GPUs, CPUs       []int
	GPUSkip, CPUSkip string
}

// clone returns a deep copy of in.
func (in Info) clone() Info {
	in.Discovery = in.Discovery.clone()
	in.Access.Groups = slices.Clone(in.Access.Groups)
	in.Access.Scopes = slices.Clone(in.Access.Scopes)
	in.GPUs, in.CPUs = slices.Clone(in.GPUs), slices.Clone(in.CPUs)
	return in
}

// check runs the checks of ep that need no clock: GET /discover,
// GET /auth/whoami when the daemon requires auth and there is a token, and
// the device selections. It sets ep.info and returns the /discover answer
// as sent. A daemon that cannot be reached is ErrUnreachable; with both
// kinds skipped the error wraps both reasons.
func (ep *endpoint) check(ctx context.Context) ([]byte, error) {
	name := ep.srv.Endpoint()
	in := Info{Endpoint: name}
	raw, err := ep.conn.getJSON(ctx, "/discover", false, &in.Discovery)
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.Terminal() {
			return nil, fmt.Errorf("endpoint %s: %w (is it a zeusd?)", name, err)
		}
		return nil, fmt.Errorf("cannot reach zeusd at %s: %w", name, unreachable(ctx, err))
	}
	in.Access = Access{Groups: in.Discovery.EnabledAPIGroups, AuthRequired: in.Discovery.AuthRequired, HasToken: ep.conn.token != ""}
	if in.Access.AuthRequired && in.Access.HasToken {
		var who whoami
		if _, err := ep.conn.getJSON(ctx, "/auth/whoami", true, &who); err != nil {
			return nil, fmt.Errorf("endpoint %s: checking the token: %w", name, err)
		}
		in.Access.Scopes, in.Subject = who.Scopes, who.Sub
		if who.Exp != nil {
			in.TokenExpiry = time.Unix(*who.Exp, 0)
		}
	}
	var skipGPU, skipCPU error
	if in.GPUs, skipGPU, err = resolve(name, "GPU", groupGPURead, ep.srv.GPUs, in.Discovery.gpuIDs(), in.Access); err != nil {
		return nil, err
	}
	if in.CPUs, skipCPU, err = resolve(name, "CPU", groupCPURead, ep.srv.CPUs, in.Discovery.cpuIDs(), in.Access); err != nil {
		return nil, err
	}
	if in.GPUs == nil && in.CPUs == nil {
		// Both kinds are skipped, so both have a reason; wrapping them
		// keeps a missing scope or token testable with errors.Is.
		return nil, fmt.Errorf("endpoint %s: nothing to read: %w; %w", name, skipGPU, skipCPU)
	}
	if skipGPU != nil {
		in.GPUSkip = skipGPU.Error()
	}
	if skipCPU != nil {
		in.CPUSkip = skipCPU.Error()
	}
	ep.info = in
	return raw, nil
}

// whoami is zeusd's GET /auth/whoami answer.
type whoami struct {
	Sub    string   `json:"sub"`
	Scopes []string `json:"scopes"`
	Exp    *int64   `json:"exp"` // Unix s; absent for tokens that never expire
}

// clockSamples does n round trips to GET /time.
func (c *conn) clockSamples(ctx context.Context, n int, now func() time.Time) ([]ClockSample, error) {
	out := make([]ClockSample, 0, n)
	for range n {
		var t struct {
			TimestampMs *int64 `json:"timestamp_ms"`
		}
		sent := now()
		if _, err := c.getJSON(ctx, "/time", false, &t); err != nil {
			return nil, err
		}
		received := now()
		if t.TimestampMs == nil {
			return nil, fmt.Errorf("%s /time: answer has no timestamp_ms", c.endpoint)
		}
		out = append(out, ClockSample{Sent: sent, Received: received, DaemonMs: *t.TimestampMs})
	}
	return out, nil
}
