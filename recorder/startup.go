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
	GPUs []struct {
		ID         int    `json:"id"`
		Name       string `json:"name"`
		PCIAddress string `json:"pci_address"`
		// CumulativeEnergyAvailable is nil when the daemon does not say
		// (released zeusd 0.5.0): unknown, so the counter is tried.
		CumulativeEnergyAvailable *bool `json:"cumulative_energy_available"`
	} `json:"gpus"`
	CPUs []struct {
		ID            int  `json:"id"`
		DRAMAvailable bool `json:"dram_available"`
	} `json:"cpus"`
	EnabledAPIGroups []string `json:"enabled_api_groups"`
	AuthRequired     bool     `json:"auth_required"`
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

// Resolve applies the zeus client's selection rules for one kind (kind is
// "GPU" or "CPU", group its API group) on endpoint. It returns the devices
// to stream, or nil and the reason the kind is skipped, or an error when
// an explicit selection cannot be honoured. The error for a missing token
// wraps ErrTokenRequired.
func Resolve(endpoint, kind, group string, sel Selection, available []int, acc Access) (ids []int, skip string, err error) {
	ids, reason, err := resolve(endpoint, kind, group, sel, available, acc)
	if reason != nil {
		skip = reason.Error()
	}
	return ids, skip, err
}

// resolve is Resolve with the skip reason as an error, so that a skip for
// a missing token can wrap ErrTokenRequired too.
func resolve(endpoint, kind, group string, sel Selection, available []int, acc Access) (ids []int, skip, err error) {
	if sel.IsNone() {
		return nil, errors.New(kind + " streaming not selected (none)"), nil
	}
	refuse := func(reason error) ([]int, error, error) {
		if !sel.Set {
			return nil, reason, nil // unset selections skip quietly
		}
		return nil, nil, fmt.Errorf("endpoint %s: cannot stream %ss %s: %w", endpoint, kind, sel.String(), reason)
	}
	switch {
	case !slices.Contains(acc.Groups, group):
		return refuse(fmt.Errorf("API group %q is not enabled on the daemon (enabled: [%s])", group, strings.Join(acc.Groups, ", ")))
	case acc.AuthRequired && !acc.HasToken:
		return refuse(fmt.Errorf("%w with scope %q", ErrTokenRequired, group))
	case acc.AuthRequired && !slices.Contains(acc.Scopes, group):
		return refuse(fmt.Errorf("the token lacks scope %q (it has [%s])", group, strings.Join(acc.Scopes, ", ")))
	case len(available) == 0:
		return refuse(fmt.Errorf("the daemon has no %ss", kind))
	}
	if !sel.Set {
		return slices.Clone(available), nil, nil
	}
	var missing []int
	for _, id := range sel.IDs {
		if !slices.Contains(available, id) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("endpoint %s: %s indices %s not available; the daemon has %s %s",
			endpoint, kind, intList(missing), kind, intList(available))
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
